"""Training parity fixtures: three small classifiers, their initial weights,
20 batches, and the loss PyTorch reports at each of 20 Adam steps.
Run: /usr/bin/python3 tests/reference/gen_train.py"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import fixtures

torch.manual_seed(4)
STEPS, B = 20, 8


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


class TransformerClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=True) for _ in range(2))
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


models = {
    "cnn": (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)),
            lambda: torch.randn(B, 1, 8, 8)),
    "gru": (GRUClassifier(), lambda: torch.randn(B, 7, 6)),
    "transformer": (TransformerClassifier(), lambda: torch.randint(0, 20, (B, 10))),
}
out = {}
for name, (model, make_batch) in models.items():
    for k, v in model.state_dict().items():
        out[f"{name}.init.{k}"] = v.clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for s in range(STEPS):
        x, y = make_batch(), torch.randint(0, 3, (B,))
        out[f"{name}.x{s}"] = x if x.is_floating_point() else x.to(torch.int32)
        out[f"{name}.y{s}"] = y.to(torch.int32)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out[f"{name}.losses"] = torch.tensor(losses)
fixtures.save("train", out)
print("wrote training fixtures")
