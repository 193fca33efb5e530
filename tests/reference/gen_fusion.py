"""Fusion methods written plainly in PyTorch, with the parameter names the C
modules use, for tests/fusion/test_fusion.c: outputs and the gradients of
sum(out * r) with respect to the inputs and every parameter.
Two modalities (embedding sizes 5 and 3), batch 4; sample 2 lacks modality 1
and sample 3 lacks modality 0."""
import torch
import torch.nn.functional as F

import fixtures

torch.manual_seed(0)
B, D0, D1, C = 4, 5, 3, 4
PRESENT = [torch.tensor([1., 1., 1., 0.]), torch.tensor([1., 1., 0., 1.])]
MASKED = -1e9


def P(*shape):
    return (0.5 * torch.randn(*shape)).requires_grad_()


def masked_softmax(scores):  # scores [B, n, w]
    missing = torch.stack([1 - p for p in PRESENT], 1).unsqueeze(2)
    return torch.softmax(scores.masked_fill(missing > 0, MASKED), 1)


def with_one(h):
    return torch.cat([h, torch.ones(h.shape[0], 1)], 1)


def filled(h, i, params):
    p = PRESENT[i].unsqueeze(1)
    ph = params.get(f"fusion.placeholder.{i}")
    return h * p + (ph * (1 - p) if ph is not None else 0)


def concat(h, params):
    return torch.cat([filled(x, i, params) for i, x in enumerate(h)], 1)


def tensor(h, params):
    z0, z1 = with_one(filled(h[0], 0, params)), with_one(filled(h[1], 1, params))
    return torch.bmm(z0.unsqueeze(2), z1.unsqueeze(1)).reshape(B, -1)


def lowrank(h, params, rank=3, out=C):
    prod = None
    for i, x in enumerate(h):
        z = (with_one(filled(x, i, params)) @ params[f"fusion.factor.{i}.weight"].T).reshape(B, rank, out)
        prod = z if prod is None else prod * z
    return (prod * params["fusion.rank_weight"].reshape(1, rank, 1)).sum(1) + params["fusion.rank_bias"]


def projected(h, params, kind, out=C):
    u = torch.stack([torch.tanh(x @ params[f"fusion.proj.{i}.weight"].T + params[f"fusion.proj.{i}.bias"])
                     for i, x in enumerate(h)], 1)
    if kind == "attention":
        w = masked_softmax(u @ params["fusion.score.weight"].T)
    else:
        g = torch.cat(h, 1) @ params["fusion.gate.weight"].T + params["fusion.gate.bias"]
        w = masked_softmax(g.reshape(B, len(h), out))
    return (u * w).sum(1)


def late(h, params, combine):
    parts = [x @ params[f"fusion.head.{i}.weight"].T + params[f"fusion.head.{i}.bias"] for i, x in enumerate(h)]
    if combine == "poe":
        parts = [F.log_softmax(p, 1) for p in parts]
    stack = torch.stack(parts, 1)
    pres = torch.stack(PRESENT, 1)
    if combine == "learned":
        w = masked_softmax((torch.zeros(B, 2) + params["fusion.late_weight"]).unsqueeze(2))
    elif combine == "poe":
        w = pres.unsqueeze(2)
    else:
        w = (pres / pres.sum(1, keepdim=True)).unsqueeze(2)
    return (stack * w).sum(1)


def mha(q, k, v, prefix, params, pad, heads=2):
    w, b = params[prefix + ".in_proj_weight"], params[prefix + ".in_proj_bias"]
    ow, ob = params[prefix + ".out_proj.weight"], params[prefix + ".out_proj.bias"]
    out, _ = F.multi_head_attention_forward(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), q.shape[2], heads,
                                            w, b, None, None, False, 0.0, ow, ob, training=False,
                                            key_padding_mask=pad, need_weights=False)
    return out.transpose(0, 1)


def crossattn(h, seqs, pads, params, d=4):
    s = [x @ params[f"fusion.seq_proj.{i}.weight"].T + params[f"fusion.seq_proj.{i}.bias"] for i, x in enumerate(seqs)]
    parts = [h[i] * PRESENT[i].unsqueeze(1) for i in range(2)]
    for i in range(2):
        for j in range(2):
            if i == j:
                continue
            a = mha(s[i], s[j], s[j], f"fusion.cross.{i}_{j}", params, pads[j]) * PRESENT[j].reshape(B, 1, 1)
            y = F.layer_norm(s[i] + a, (d,), params[f"fusion.cross_norm.{i}_{j}.weight"],
                             params[f"fusion.cross_norm.{i}_{j}.bias"])
            parts.append(y.mean(1) * PRESENT[i].unsqueeze(1))
    return torch.cat(parts, 1)


CASES = {
    "concat": ({"type": "concat"}, {}),
    "concat_learned": ({"type": "concat", "missing": "learned"}, {"fusion.placeholder.0": (D0,), "fusion.placeholder.1": (D1,)}),
    "tensor": ({"type": "tensor"}, {}),
    "lowrank": ({"type": "lowrank", "rank": 3, "out": C},
                {"fusion.factor.0.weight": (3 * C, D0 + 1), "fusion.factor.1.weight": (3 * C, D1 + 1),
                 "fusion.rank_weight": (3,), "fusion.rank_bias": (C,)}),
    "attention": ({"type": "attention", "out": C},
                  {"fusion.proj.0.weight": (C, D0), "fusion.proj.0.bias": (C,), "fusion.proj.1.weight": (C, D1),
                   "fusion.proj.1.bias": (C,), "fusion.score.weight": (1, C)}),
    "gmu": ({"type": "gmu", "out": C},
            {"fusion.proj.0.weight": (C, D0), "fusion.proj.0.bias": (C,), "fusion.proj.1.weight": (C, D1),
             "fusion.proj.1.bias": (C,), "fusion.gate.weight": (2 * C, D0 + D1), "fusion.gate.bias": (2 * C,)}),
    "late_mean": ({"type": "late", "combine": "mean"},
                  {"fusion.head.0.weight": (C, D0), "fusion.head.0.bias": (C,), "fusion.head.1.weight": (C, D1),
                   "fusion.head.1.bias": (C,)}),
    "late_learned": ({"type": "late", "combine": "learned"},
                     {"fusion.head.0.weight": (C, D0), "fusion.head.0.bias": (C,), "fusion.head.1.weight": (C, D1),
                      "fusion.head.1.bias": (C,), "fusion.late_weight": (2,)}),
    "late_poe": ({"type": "late", "combine": "poe"},
                 {"fusion.head.0.weight": (C, D0), "fusion.head.0.bias": (C,), "fusion.head.1.weight": (C, D1),
                  "fusion.head.1.bias": (C,)}),
    "crossattn": ({"type": "crossattn", "d_model": 4, "heads": 2},
                  {"fusion.seq_proj.0.weight": (4, D0), "fusion.seq_proj.0.bias": (4,),
                   "fusion.seq_proj.1.weight": (4, D1), "fusion.seq_proj.1.bias": (4,),
                   **{f"fusion.cross.{i}_{j}.{n}": s for i, j in ((0, 1), (1, 0))
                      for n, s in (("in_proj_weight", (12, 4)), ("in_proj_bias", (12,)),
                                   ("out_proj.weight", (4, 4)), ("out_proj.bias", (4,)))},
                   **{f"fusion.cross_norm.{i}_{j}.{n}": (4,) for i, j in ((0, 1), (1, 0)) for n in ("weight", "bias")}}),
}


def run(name, params):
    h = [torch.randn(B, D0, requires_grad=True), torch.randn(B, D1, requires_grad=True)]
    seqs = [torch.randn(B, 3, D0, requires_grad=True), torch.randn(B, 2, D1, requires_grad=True)]
    pads = [None, torch.tensor([[False, False], [False, True], [False, False], [False, True]])]
    if name == "crossattn":
        out = crossattn(h, seqs, pads, params)
    elif name.startswith("concat"):
        out = concat(h, params)
    elif name.startswith("late"):
        out = late(h, params, name.split("_")[1])
    elif name in ("attention", "gmu"):
        out = projected(h, params, name)
    else:
        out = globals()[name](h, params)
    r = torch.randn_like(out)
    (out * r).sum().backward()
    t = {"h0": h[0], "h1": h[1], "s0": seqs[0], "s1": seqs[1], "pad1": pads[1].float(), "out": out, "r": r,
         "grad.h0": h[0].grad if h[0].grad is not None else torch.zeros(B, D0),
         "grad.h1": h[1].grad if h[1].grad is not None else torch.zeros(B, D1)}
    if name == "crossattn":
        t["grad.s0"], t["grad.s1"] = seqs[0].grad, seqs[1].grad
    for k, p in params.items():
        t["p." + k] = p
        t["grad.p." + k] = p.grad
    return {f"{name}.{k}": v for k, v in t.items()}


def main():
    out = {}
    for name, (cfg, shapes) in CASES.items():
        params = {k: P(*s) for k, s in shapes.items()}
        out.update(run(name, params))
    fixtures.save("fusion", out, note="tests/reference/gen_fusion.py")


if __name__ == "__main__":
    main()
