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
# Losses over pairs of embeddings (two float inputs each).
a, b = torch.randn(5, 6), torch.randn(5, 6)
ypm = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0])
log_scale = torch.tensor([2.659260036932778])  # ln(1/0.07), CLIP's start


def hinge(u, v, margin, hardest):
    s = u @ v.T
    d = s.diag()
    eye = torch.eye(len(s), dtype=torch.bool)
    c_rows = (margin - d[:, None] + s).clamp(min=0).masked_fill(eye, 0)
    c_cols = (margin - d[:, None] + s.T).clamp(min=0).masked_fill(eye, 0)
    if hardest:
        return (c_rows.max(1).values + c_cols.max(1).values).mean()
    return (c_rows.sum(1) + c_cols.sum(1)).mean()


def info_nce(u, v, ls):
    logits = ls.clamp(max=4.605170186).exp() * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T
    t = torch.arange(len(u))
    return (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t)) / 2


PAIRS = {
    "cosine_embedding": lambda u, v, ls: F.cosine_embedding_loss(u, v, ypm, margin=0.2),
    "margin_ranking": lambda u, v, ls: F.margin_ranking_loss(u[:, 0], v[:, 0], ypm, margin=0.3),
    "hinge_sum": lambda u, v, ls: hinge(u, v, 0.2, False),
    "hinge_hardest": lambda u, v, ls: hinge(u, v, 0.2, True),
    "info_nce": info_nce,
}
out.update({"pair.a": a, "pair.b": b, "pair.y": ypm, "pair.log_scale": log_scale})
for name, fn in PAIRS.items():
    u, v, ls = a.clone().requires_grad_(True), b.clone().requires_grad_(True), log_scale.clone().requires_grad_(True)
    loss = fn(u, v, ls)
    loss.backward()
    out[f"{name}.loss"] = loss.detach().reshape(1)
    out[f"{name}.grad_a"], out[f"{name}.grad_b"] = u.grad, v.grad
    out[f"{name}.grad_scale"] = ls.grad if ls.grad is not None else torch.zeros(1)


# Supervised contrastive loss (Khosla et al., 2020, L_out), from the formula
# term by term, in float64.
def supcon(u, v, labels, t):
    z = F.normalize(torch.cat([u, v]).double(), dim=-1)
    lab = torch.cat([labels, labels])
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [k for k in range(len(z)) if k != i]
        positives = [p for p in others if lab[p] == lab[i]]
        if not positives:
            continue
        denom = sum(torch.exp(z[i] @ z[k] / t) for k in others)
        total = total - sum(torch.log(torch.exp(z[i] @ z[p] / t) / denom) for p in positives) / len(positives)
        anchors += 1
    return total / anchors


sa, sb = torch.randn(6, 5), torch.randn(6, 5)
slabels = torch.tensor([0, 1, 0, 2, 1, 0], dtype=torch.int32)
u, v = sa.clone().requires_grad_(True), sb.clone().requires_grad_(True)
loss = supcon(u, v, slabels, 0.1)
loss.backward()
out.update({"supcon.a": sa, "supcon.b": sb, "supcon.labels": slabels, "supcon.loss": loss.detach().float().reshape(1),
            "supcon.grad_a": u.grad, "supcon.grad_b": v.grad})
fixtures.save("loss", out)
print("wrote loss fixtures")
