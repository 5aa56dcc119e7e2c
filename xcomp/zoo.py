"""Small PyTorch models used by the demo, the tests and the pass/benchmark reports (needs torch).

    from xcomp.zoo import MODELS
    model, inputs = MODELS["gpt_block"]()
"""
from __future__ import annotations

import math


def _torch():
    import torch
    return torch


def mlp(batch: int = 8, dim: int = 64, hidden: int = 256):
    """Linear -> GELU -> Linear -> residual, LayerNorm."""
    torch = _torch()
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            return self.norm(x + self.fc2(torch.nn.functional.gelu(self.fc1(x))))

    torch.manual_seed(0)
    return MLP().eval(), (torch.randn(batch, dim),)


def cnn(batch: int = 2, channels: int = 16, size: int = 32):
    """Conv/BatchNorm/ReLU stem, two residual blocks, max and adaptive average pooling, linear head."""
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(x + self.bn2(self.conv2(y)))

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
            self.pool = nn.MaxPool2d(2)
            self.blocks = nn.Sequential(Block(channels), Block(channels))
            self.head = nn.Linear(channels, 10)

        def forward(self, x):
            x = self.blocks(self.pool(self.stem(x)))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    torch.manual_seed(0)
    model = CNN().eval()
    with torch.no_grad():  # non-trivial running statistics so batch norm folding is exercised
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model, (torch.randn(batch, 3, size, size),)


def encoder_layer(batch: int = 2, seq: int = 16, dim: int = 64, heads: int = 4):
    """torch.nn.TransformerEncoderLayer (batch_first, GELU, pre-norm)."""
    torch = _torch()
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                             activation="gelu", batch_first=True, norm_first=True)
    return layer.eval(), (torch.randn(batch, seq, dim),)


def gpt_block(batch: int = 2, seq: int = 32, dim: int = 128, heads: int = 4):
    """A GPT-style decoder block: pre-LayerNorm, causal multi-head attention, GELU MLP, residuals."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=-1)
            q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // heads))
            mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
            att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(b, t, c)
            x = x + self.proj(y)
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    torch.manual_seed(0)
    return Block().eval(), (torch.randn(batch, seq, dim),)


MODELS = {"mlp": mlp, "cnn": cnn, "encoder_layer": encoder_layer, "gpt_block": gpt_block}
