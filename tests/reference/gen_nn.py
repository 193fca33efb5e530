"""Fixtures for the layers: each torch module's state_dict (under its
prefix), inputs, outputs, and the gradient of every parameter and input for
loss = sum(out * r) (+ sum(h_n * r_h) for recurrent layers).
Run: /usr/bin/python3 tests/reference/gen_nn.py"""
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import fixtures

torch.manual_seed(3)
out = {}


def record(prefix, module, loss, inputs):
    loss.backward()
    for name, p in module.named_parameters():
        out[f"{prefix}.{name}"] = p.detach().clone()
        out[f"grad.{prefix}.{name}"] = p.grad.clone()
    for key, x in inputs.items():
        if x.grad is not None:
            out[f"grad.{prefix}.{key}"] = x.grad.clone()


def rnn_case(prefix, module, lengths):
    x = torch.randn(3, 6, module.input_size, requires_grad=True)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    y, h = module(packed)
    h_n = h[0] if isinstance(h, tuple) else h
    y, _ = pad_packed_sequence(y, batch_first=True, total_length=6)
    r, rh = torch.rand(y.shape) - 0.5, torch.rand(h_n.shape) - 0.5
    record(prefix, module, (y * r).sum() + (h_n * rh).sum(), {"x": x})
    out.update({f"{prefix}.in.x": x.detach(), f"{prefix}.in.lengths": torch.tensor(lengths, dtype=torch.int32),
                f"{prefix}.out.y": y.detach(), f"{prefix}.out.h_n": h_n.detach(), f"{prefix}.r.y": r,
                f"{prefix}.r.h_n": rh})


rnn_case("gru", nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True), [6, 4, 2])
rnn_case("lstm", nn.LSTM(5, 4, num_layers=1, bidirectional=True, batch_first=True), [3, 6, 5])
rnn_case("gru1", nn.GRU(3, 5, batch_first=True), [6, 6, 6])

# Multi-head self-attention with a key padding mask and a causal mask.
mha = nn.MultiheadAttention(8, 2, batch_first=True)
with torch.no_grad():
    mha.in_proj_bias.uniform_(-0.5, 0.5)
    mha.out_proj.bias.uniform_(-0.5, 0.5)
x = torch.randn(2, 5, 8, requires_grad=True)
pad = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
y, w = mha(x, x, x, key_padding_mask=pad, attn_mask=causal)
r = torch.rand(y.shape) - 0.5
record("mha", mha, (y * r).sum(), {"x": x})
out.update({"mha.in.x": x.detach(), "mha.in.pad": pad.to(torch.int32), "mha.out.y": y.detach(),
            "mha.out.w": w.detach(), "mha.r.y": r})

# Cross attention with different lengths.
cross = nn.MultiheadAttention(8, 4, batch_first=True)
q, kv = torch.randn(2, 3, 8, requires_grad=True), torch.randn(2, 6, 8, requires_grad=True)
y, _ = cross(q, kv, kv)
r = torch.rand(y.shape) - 0.5
record("cross", cross, (y * r).sum(), {"q": q, "kv": kv})
out.update({"cross.in.q": q.detach(), "cross.in.kv": kv.detach(), "cross.out.y": y.detach(), "cross.r.y": r})

for name, norm_first, act in [("enc_post", False, "relu"), ("enc_pre", True, "gelu")]:
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=act, batch_first=True, norm_first=norm_first)
    x = torch.randn(2, 5, 8, requires_grad=True)
    y = layer(x, src_key_padding_mask=pad)
    r = torch.rand(y.shape) - 0.5
    record(name, layer, (y * r).sum(), {"x": x})
    out.update({f"{name}.in.x": x.detach(), f"{name}.out.y": y.detach(), f"{name}.r.y": r})

dec = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
t, mem = torch.randn(2, 4, 8, requires_grad=True), torch.randn(2, 5, 8, requires_grad=True)
y = dec(t, mem, tgt_mask=torch.triu(torch.ones(4, 4, dtype=torch.bool), 1))
r = torch.rand(y.shape) - 0.5
record("dec", dec, (y * r).sum(), {"tgt": t, "mem": mem})
out.update({"dec.in.tgt": t.detach(), "dec.in.mem": mem.detach(), "dec.out.y": y.detach(), "dec.r.y": r})
out["mha.in.causal"] = causal.to(torch.int32)


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, written out (same parameter names)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(h + (self.downsample(x) if self.downsample is not None else x))


class PatchEmbed(nn.Module):
    """ViT patch embedding with timm's names: proj, cls_token, pos_embed."""

    def __init__(self, c, size, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(c, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)

    def forward(self, x):
        h = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(len(x), -1, -1), h], 1) + self.pos_embed


blocks = {
    "resblock": (BasicBlock(3, 6, 2), torch.randn(2, 3, 7, 6)),
    "resblock_same": (BasicBlock(4, 4, 1), torch.randn(2, 4, 5, 5)),
    "patch": (PatchEmbed(3, 8, 4, 6), torch.randn(2, 3, 8, 8)),
    "mlp": (nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4), nn.ReLU(), nn.Linear(4, 3)), torch.randn(4, 5)),
}
for name, (module, x) in blocks.items():
    module.train()
    x.requires_grad_(True)
    y = module(x)
    r = torch.rand(y.shape) - 0.5
    record(name, module, (y * r).sum(), {"x": x})
    out.update({f"{name}.in.x": x.detach(), f"{name}.out.y": y.detach(), f"{name}.r.y": r})
    for k, v in module.state_dict().items():
        if "running" in k:
            out[f"{name}.after.{k}"] = v.clone()
fixtures.save("nn", out)
print("wrote nn fixtures")
