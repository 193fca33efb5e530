"""Fixtures for the losses: value and input gradient of each.
Run: /usr/bin/python3 tests/reference/gen_loss.py"""
import torch
import torch.nn.functional as F

import fixtures

torch.manual_seed(2)
logits = torch.randn(6, 5) * 2
target = torch.tensor([0, 4, 2, 2, -100, 1])
weights = torch.rand(5) + 0.5
x = torch.randn(3, 4)
y = torch.randn(3, 4)
yb = torch.rand(3, 4)
p = torch.softmax(torch.randn(3, 4), -1)
CASES = {
    "ce": (lambda z: F.cross_entropy(z, target), logits),
    "ce_weighted_smooth": (lambda z: F.cross_entropy(z, target, weight=weights, label_smoothing=0.1), logits),
    "ce_smooth": (lambda z: F.cross_entropy(z, target, label_smoothing=0.2), logits),
    "mse": (lambda a: F.mse_loss(a, y), x),
    "l1": (lambda a: F.l1_loss(a, y), x),
    "smooth_l1": (lambda a: F.smooth_l1_loss(a, y, beta=0.5), x),
    "bce_logits": (lambda a: F.binary_cross_entropy_with_logits(a * 3, yb), x),
    "kl_div": (lambda a: F.kl_div(torch.log_softmax(a, -1), p, reduction="batchmean"), x),
}
out = {"logits": logits, "target": target.to(torch.int64), "weights": weights, "x": x, "y": y, "yb": yb, "p": p}
for name, (fn, inp) in CASES.items():
    v = inp.clone().requires_grad_(True)
    loss = fn(v)
    loss.backward()
    out[f"{name}.loss"] = loss.detach().reshape(1)
    out[f"{name}.grad"] = v.grad
fixtures.save("loss", out)
print("wrote loss fixtures")
