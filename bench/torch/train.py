"""PyTorch twins of `mml bench train`: the same models, shapes, batch size and
optimizer (Adam 1e-3) on synthetic batches; samples/s after 3 warm-up steps
and peak RSS, as one JSON line. Run by scripts/bench.sh with Debian's
/usr/bin/python3 and MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set.
Usage: train.py cnn|gru|transformer THREADS [STEPS]"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(40, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.gru(x)[1][-1])


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 128)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True,
                                                               norm_first=True) for _ in range(2))
        self.head = nn.Linear(128, 10)

    def forward(self, t):
        x = self.embed(t)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


def make_model(name):
    """(a) CNN, (b) GRU or (c) Transformer, as mml bench train builds them."""
    return {
        "cnn": lambda: nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                     nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)),
        "gru": GRUNet,
        "transformer": TransformerNet,
    }[name]()


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    B = 64
    model = make_model(name)
    make = {"cnn": lambda: torch.randn(B, 1, 28, 28), "gru": lambda: torch.randn(B, 50, 40),
            "transformer": lambda: torch.randint(0, 1000, (B, 64))}[name]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # batches made before the clock starts and reused in turn, as mml does
    pool = [(make(), torch.randint(0, 10, (B,))) for _ in range(4)]
    t0 = 0.0
    for s in range(steps + 3):
        if s == 3:
            t0 = time.perf_counter()
        x, y = pool[s % 4]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "model": name, "batch": B, "threads": threads,
                      "samples_per_second": round(steps * B / secs, 1), "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
