"""MLX lowerings of shape ops: one table entry per op. Result shapes come from the IR types."""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.table import lowers
from xcomp.ops.shape import PadMode, pad_widths


def _axis_slice(ndim: int, axis: int, s: slice) -> tuple:
    idx = [slice(None)] * ndim
    idx[axis] = s
    return tuple(idx)


@lowers("reshape")
def _reshape(args, a, out):
    return mx.reshape(args[0], out[0].shape)


@lowers("transpose")
def _transpose(args, a, out):
    return mx.transpose(args[0], a["perm"])


@lowers("broadcast_to")
def _broadcast_to(args, a, out):
    return mx.broadcast_to(args[0], out[0].shape)


@lowers("slice")
def _slice(args, a, out):
    x = args[0]
    return x[_axis_slice(x.ndim, a["axis"], slice(a["start"], a["end"], a["step"]))]


@lowers("concat")
def _concat(args, a, out):
    return mx.concatenate(list(args), axis=a["axis"])


@lowers("flip")
def _flip(args, a, out):
    x = args[0]
    idx = [slice(None)] * x.ndim
    for ax in a["axes"]:
        idx[ax] = slice(None, None, -1)
    return x[tuple(idx)]


@lowers("roll")
def _roll(args, a, out):
    return mx.roll(args[0], a["shifts"], a["axes"])


def _circular(x, axis: int, lo: int, hi: int):
    n = x.shape[axis]
    parts = [x[_axis_slice(x.ndim, axis, slice(n - lo, n))]] if lo > 0 else []
    parts.append(x)
    if hi > 0:
        parts.append(x[_axis_slice(x.ndim, axis, slice(0, hi))])
    return mx.concatenate(parts, axis=axis) if len(parts) > 1 else x


_MX_PAD = {PadMode.REFLECT: "reflect", PadMode.REPLICATE: "edge"}


@lowers("pad")
def _pad(args, a, out):
    x, mode = args[0], a["mode"]
    widths = pad_widths(a["pads"], x.ndim)
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if mode is PadMode.CONSTANT:
        y = mx.pad(x, grow, constant_values=mx.array(a["value"]).astype(x.dtype))
    elif mode is PadMode.CIRCULAR:
        y = x
        for ax, (lo, hi) in enumerate(grow):
            y = _circular(y, ax, lo, hi)
    else:
        y = mx.pad(x, grow, mode=_MX_PAD[mode])
    crop = tuple(slice(-min(lo, 0), y.shape[i] + min(hi, 0)) for i, (lo, hi) in enumerate(widths))
    return y[crop]


def _tri_mask(x, k: int, lower: bool):
    n, m = x.shape[-2], x.shape[-1]
    rows = mx.arange(n).reshape(n, 1)
    cols = mx.arange(m).reshape(1, m)
    return (cols - rows <= k) if lower else (cols - rows >= k)


@lowers("tril")
def _tril(args, a, out):
    x = args[0]
    return mx.where(_tri_mask(x, a["diagonal"], True), x, mx.zeros((), x.dtype))


@lowers("triu")
def _triu(args, a, out):
    x = args[0]
    return mx.where(_tri_mask(x, a["diagonal"], False), x, mx.zeros((), x.dtype))


@lowers("tile")
def _tile(args, a, out):
    x = args[0]
    reps = a["repeats"]
    x = mx.reshape(x, (1,) * (len(reps) - x.ndim) + tuple(x.shape))
    if 0 in reps or x.size == 0:
        return mx.zeros(out[0].shape, x.dtype)
    return mx.tile(x, reps)
