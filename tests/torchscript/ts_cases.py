"""The TorchScript cases of issue 9, each with argument tuples that take different paths."""
from __future__ import annotations

import math
import warnings
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn


def square_per_dim(x):
    for _ in range(x.dim()):
        x = x * x
    return x


def sign_branch(x):
    if x.sum() > 0:
        return x * 2
    else:
        return x * -1


def greedy_decode(x: Tensor, w: Tensor, eos: int, max_len: int) -> List[int]:
    tokens: List[int] = []
    h = x
    for _ in range(max_len):
        h = torch.tanh(h @ w)
        t = int(h.argmax())
        tokens.append(t)
        if t == eos:
            break
    return tokens


def newton_sqrt(a: Tensor, tol: float, cap: int) -> Tuple[Tensor, int]:
    x = a
    i = 0
    while bool((x * x - a).abs().max() > tol) and i < cap:
        x = 0.5 * (x + a / x)
        i += 1
    return x, i


class OptionalBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        y = self.fc(x)
        if bias is not None:
            y = y + bias
        return torch.relu(y)


class Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(6, 6) for _ in range(3)])

    def forward(self, x: Tensor) -> Tuple[Tensor, List[Tensor]]:
        outs: List[Tensor] = []
        for layer in self.layers:
            x = torch.tanh(layer(x))
            outs.append(x)
        return x, outs


class Heads(nn.Module):
    """int/float attributes and size() arithmetic for a reshape."""

    def __init__(self):
        super().__init__()
        self.heads = 2
        self.scale = 0.5
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.size(0), x.size(1), x.size(2)
        y = self.proj(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        return (y * self.scale).reshape(b, self.heads * t, d // self.heads)


class ConvBNBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(self.conv(x))
        if y.mean() > 0:
            y = torch.relu(y)
        else:
            y = torch.sigmoid(y)
        return y


class Recurrent(nn.Module):
    def __init__(self, cell: str):
        super().__init__()
        self.rnn = nn.LSTM(4, 5, batch_first=True) if cell == "lstm" else nn.GRU(4, 5, batch_first=True)

    def forward(self, x: Tensor):
        return self.rnn(x)


class LSTMWithState(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 5, num_layers=2, batch_first=True)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        return self.rnn(x, (h, c))


class GRUWithState(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True)

    def forward(self, x: Tensor, h: Tensor) -> Tuple[Tensor, Tensor]:
        return self.rnn(x, h)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return self.enc(x, src_key_padding_mask=mask)


def seeded(cls, *a):
    torch.manual_seed(0)
    return cls(*a).eval()


def inplace_ops(x: Tensor, m: Tensor) -> Tensor:
    """In-place ops (kept by TorchScript), one of them inside a data-dependent branch."""
    y = x.clone()
    y.masked_fill_(m, 0.0)
    y.add_(1.0)
    if bool(y.sum() > 4.0):
        y.mul_(2.0)
    else:
        y.sub_(3.0)
    return y


def warns(x: Tensor) -> Tensor:
    if x.dim() > 1:
        warnings.warn("flattening a matrix")
        x = x.flatten()
    return x * 3


def nested_tuple(x: Tensor, n: int) -> Tuple[Tensor, List[Tensor], int]:
    outs: List[Tensor] = [x]
    for i in range(n):
        outs.append(outs[-1] * 2)
    return x.sum(), outs, n * 2


class EncoderNested(nn.Module):
    """nn.TransformerEncoder with its defaults: a padding mask takes the nested-tensor path."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 2)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return self.enc(x, src_key_padding_mask=mask)


def combine(xs: List[Tensor], hc: Tuple[Tensor, Tensor], scale: float, flag: bool) -> Tuple[Tensor, List[Tensor]]:
    """List[Tensor] and tuple arguments, float and bool constants of the signature."""
    total = hc[0] * scale
    for x in xs:
        total = total + x
    if flag:
        total = total * hc[1]
    return total, [t * 2 for t in xs]


def grab_bag(x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor, float, int]:
    """Common scripted idioms: shape arithmetic, dtype moves, item(), torch.tensor, chunk, cat."""
    b, d = x.shape[0], x.shape[-1]
    scale = math.sqrt(d)
    z = x.float().to(torch.float64).type_as(y) / scale
    a, c = z.chunk(2, dim=-1)
    w = torch.cat([c, a], dim=-1) + torch.tensor([1.0, 2.0, 3.0, 4.0])
    n = len(x) + x.size(1) // 2
    m = w.masked_fill(w > 1.5, float("-inf")).softmax(-1)
    return m.view(-1)[: b * 2], torch.arange(n).to(x.dtype), float(m.max().item()), int(n)


class Cells(nn.Module):
    """nn.LSTMCell and nn.GRUCell stepped over a sequence, with and without initial state."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(4, 5)
        self.gru = nn.GRUCell(4, 5)

    def forward(self, xs: Tensor, h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        state: Optional[Tuple[Tensor, Tensor]] = None if h0 is None else (h0, h0)
        g = h0
        for t in range(xs.size(1)):
            state = self.lstm(xs[:, t], state)
            g = self.gru(xs[:, t], g)
        assert state is not None and g is not None
        return state[0], g


class BiLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 3, num_layers=2, bidirectional=True)

    def forward(self, x: Tensor):
        return self.rnn(x)


def slice_assign(x: Tensor, h: Tensor) -> Tensor:
    """Writes through views: `out[:, t] = ...` in a loop, `out[0, 1:] = ...` in a branch."""
    out = torch.zeros(x.size(0), x.size(1), h.size(0))
    for t in range(x.size(1)):
        out[:, t] = x[:, t].unsqueeze(-1) * h
    if bool(x.sum() > 0):
        out[0, 1:] = 7.0
    return out


def view_write(x: Tensor) -> Tensor:
    y = x.clone()
    z = y.view(-1)
    z.add_(1.0)
    return y


def sibling_view_write(x: Tensor) -> Tensor:
    y = x.clone()
    a = y.view(-1)
    b = y.view(2, -1)
    a.mul_(2.0)
    return b
