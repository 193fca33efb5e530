"""PyTorch twin of `mml bench infer`: forward passes of the (a) CNN or of a
multimodal config's fusion model on synthetic inputs in inference mode; the
median time of ITERS passes after a tenth as many warm-up passes, and peak
RSS, as one JSON line.
Usage: infer.py cnn|fusion THREADS BATCH ITERS [CONFIG]"""
import json
import resource
import statistics
import sys
import time

import torch

from fusion import FusionNet
from train import make_model


def main():
    name, threads, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if name == "fusion":
        cfg = json.load(open(sys.argv[5]))
        model = FusionNet(cfg)
        img, aud = cfg["data"]["image"], cfg["data"]["audio"]
        inputs = (torch.randn(batch, img["channels"], img["height"], img["width"]),
                  torch.randn(batch, aud["n_mels"], aud["frames"]))
    else:
        model = make_model("cnn")
        inputs = (torch.randn(batch, 1, 28, 28),)
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(-(iters // 10 + 2), iters):
            t0 = time.perf_counter()
            model(*inputs)
            if i >= 0:
                times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "model": name, "batch": batch, "threads": threads,
                      "median_ms": round(1e3 * med, 4), "samples_per_second": round(batch / med, 1),
                      "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
