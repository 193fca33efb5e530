"""PyTorch twin of `mml bench epoch CONFIG`: the multimodal config's model
(sequential image and audio encoders, GMU fusion, MLP head) built layer for
layer from the same JSON, trained with the same Adam, batch size and epoch
(a shuffled pass over the training manifest, then accuracy on the validation
manifest at batch 256), data loading included.

Loading: the first epoch reads the JSONL manifests and decodes every sample
in a DataLoader (PNG with PIL, WAV with the standard library, log-mel with
torchaudio: the config's n_fft, hop, n_mels, frames and per-utterance
normalisation, as mml's featurizer); the decoded tensors are kept in memory
and later epochs gather batches from there, as mml does after its load.
Prints one JSON line: load_seconds 0 (the decoding is in epoch 1),
epoch_seconds, peak RSS of this process and of its DataLoader workers.
Usage: fusion.py CONFIG THREADS EPOCHS WORKERS"""
import json
import os
import resource
import sys
import time
import wave

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from PIL import Image

N_CLASSES = 10


def sequential(layers, shape):
    """nn.Sequential of mml's "sequential" encoder layers for inputs of `shape`
    (without the batch axis); returns it and its output width."""
    mods = []
    x = torch.zeros(1, *shape)
    for spec in layers:
        kind = spec["type"]
        if kind == "unsqueeze":
            m = nn.Unflatten(1, (1, x.shape[1]))
        elif kind == "conv2d":
            m = nn.Conv2d(x.shape[1], spec["out"], spec["kernel"], padding=spec.get("padding", 0))
        elif kind == "relu":
            m = nn.ReLU()
        elif kind == "max_pool2d":
            m = nn.MaxPool2d(spec["kernel"])
        elif kind == "flatten":
            m = nn.Flatten()
        elif kind == "linear":
            m = nn.Linear(x.shape[1], spec["out"])
        else:
            raise SystemExit(f"fusion.py: encoder layer type {kind!r} is not mirrored here")
        x = m(x)
        mods.append(m)
    return nn.Sequential(*mods), x.shape[1]


class GMU(nn.Module):
    """h_i = tanh(W_i x_i); z = softmax over modalities of W_z [x_1; x_2]; h = sum_i z_i h_i."""

    def __init__(self, dims, out):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, out) for d in dims)
        self.gate = nn.Linear(sum(dims), len(dims) * out)
        self.out = out

    def forward(self, xs):
        u = torch.stack([torch.tanh(p(x)) for p, x in zip(self.proj, xs)], 1)
        z = torch.softmax(self.gate(torch.cat(xs, 1)).view(-1, len(xs), self.out), 1)
        return (u * z).sum(1)


class FusionNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        model, data = cfg["model"], cfg["data"]
        fusion = model["fusion"]
        if fusion["type"] != "gmu" or set(model["encoders"]) != {"image", "audio"}:
            raise SystemExit("fusion.py: mirrors image and audio encoders with GMU fusion only")
        img, aud = data["image"], data["audio"]
        self.image, di = sequential(model["encoders"]["image"]["layers"], (img["channels"], img["height"], img["width"]))
        self.audio, da = sequential(model["encoders"]["audio"]["layers"], (aud["n_mels"], aud["frames"]))
        self.fusion = GMU([di, da], fusion.get("out", 64))
        sizes = [fusion.get("out", 64)] + model.get("head", {}).get("hidden", []) + [N_CLASSES]
        head = []
        for i in range(len(sizes) - 1):
            head += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i + 2 < len(sizes) else [])
        self.head = nn.Sequential(*head)

    def forward(self, image, audio):
        return self.head(self.fusion([self.image(image), self.audio(audio)]))


class Manifest(torch.utils.data.Dataset):
    """Decodes one sample per item, as mml's featurizer does."""

    def __init__(self, path, data):
        self.dir = os.path.dirname(path)
        self.rows = [json.loads(line) for line in open(path) if line.strip()]
        a = data["audio"]
        self.frames = a["frames"]
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=a["rate"], n_fft=a["n_fft"], hop_length=a["hop"],
                                                        n_mels=a["n_mels"], f_max=a["rate"] / 2)
        self.db = torchaudio.transforms.AmplitudeToDB(stype="power")
        self.normalize = a.get("normalize", True)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        r = self.rows[i]
        img = np.asarray(Image.open(os.path.join(self.dir, r["image"])).convert("L"), dtype=np.float32) / 255.0
        with wave.open(os.path.join(self.dir, r["audio"])) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        spec = self.db(self.mel(torch.from_numpy(pcm)))[:, :self.frames]
        if self.normalize:
            spec = (spec - spec.mean()) / torch.sqrt(spec.var(unbiased=False) + 1e-5)
        audio = torch.zeros(spec.shape[0], self.frames)
        audio[:, :spec.shape[1]] = spec
        return torch.from_numpy(img).unsqueeze(0), audio, r["label"], i


class Split:
    """A manifest decoded once through a DataLoader, then kept in memory."""

    def __init__(self, path, data, workers):
        self.ds = Manifest(path, data)
        self.workers = workers
        self.x = None

    def batches(self, size, shuffle, gen):
        if self.x is None:  # first pass: decode, keep each sample where its index says
            n = len(self.ds)
            loader = torch.utils.data.DataLoader(self.ds, batch_size=size, shuffle=shuffle, num_workers=self.workers,
                                                 generator=gen)
            x = y = None
            for img, audio, label, idx in loader:
                if x is None:
                    x = (torch.empty(n, *img.shape[1:]), torch.empty(n, *audio.shape[1:]))
                    y = torch.empty(n, dtype=torch.long)
                x[0][idx], x[1][idx], y[idx] = img, audio, label
                yield img, audio, label
            self.x, self.y = x, y
            return
        n = len(self.y)
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        for s in range(0, n, size):
            idx = order[s:s + size]
            yield self.x[0][idx], self.x[1][idx], self.y[idx]


def main():
    path, threads, epochs, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    cfg = json.load(open(path))
    torch.manual_seed(cfg["train"].get("seed", 0))
    data, train = cfg["data"], cfg["train"]
    base = os.path.dirname(os.path.abspath(path))
    splits = {k: Split(os.path.join(base, data[k]), data, workers) for k in ("train", "val")}
    model = FusionNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=train["optimizer"]["lr"])
    gen = torch.Generator().manual_seed(0)
    secs = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for img, audio, label in splits["train"].batches(train["batch_size"], True, gen):
            opt.zero_grad()
            F.cross_entropy(model(img, audio), label).backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.inference_mode():
            for img, audio, label in splits["val"].batches(256, False, gen):
                correct += (model(img, audio).argmax(1) == label).sum().item()
        secs.append(round(time.perf_counter() - t0, 3))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    workers_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "threads": threads, "workers": workers, "fusion": "gmu",
                      "train_samples": len(splits["train"].ds), "load_seconds": 0.0, "from_cache": False,
                      "epoch_seconds": secs, "val_accuracy": correct / len(splits["val"].ds),
                      "peak_rss_mb": round(own, 1), "workers_peak_rss_mb": round(workers_rss, 1)}))


if __name__ == "__main__":
    main()
