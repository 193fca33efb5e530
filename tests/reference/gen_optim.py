"""Fixtures for the optimizers: fixed parameters and per-step gradients, the
parameters torch.optim produces after every step, and clip_grad_norm_.
Run: /usr/bin/python3 tests/reference/gen_optim.py"""
import torch

import fixtures

torch.manual_seed(1)
STEPS = 5
P0 = [torch.randn(3, 4), torch.randn(5)]
GRADS = [[torch.randn(3, 4), torch.randn(5)] for _ in range(STEPS)]

CONFIGS = {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
    "sgd_plain": lambda ps: torch.optim.SGD(ps, lr=0.2),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}

out = {f"p0.{i}": p for i, p in enumerate(P0)}
for s in range(STEPS):
    for i, g in enumerate(GRADS[s]):
        out[f"grad{s}.{i}"] = g
for name, make in CONFIGS.items():
    ps = [p.clone().requires_grad_(True) for p in P0]
    opt = make(ps)
    for s in range(STEPS):
        for p, g in zip(ps, GRADS[s]):
            p.grad = g.clone()
        opt.step()
        for i, p in enumerate(ps):
            out[f"{name}.step{s}.{i}"] = p.detach().clone()

ps = [p.clone().requires_grad_(True) for p in P0]
for p, g in zip(ps, GRADS[0]):
    p.grad = g.clone()
out["clip.norm"] = torch.nn.utils.clip_grad_norm_(ps, 1.5).reshape(1)
for i, p in enumerate(ps):
    out[f"clip.grad.{i}"] = p.grad
fixtures.save("optim", out)
print("wrote optim fixtures")
