"""MLX lowerings of shape ops: one table entry per op. Result shapes come from the IR types."""
from __future__ import annotations

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import lowers
from xcomp.ops.shape import PadMode, pad_widths


def _axis_index(ndim: int, axis: int, s: slice) -> tuple:
    idx = [slice(None)] * ndim
    idx[axis] = s
    return tuple(idx)


def circular_pad(x, axis, lo, hi):
    """Wrap `lo`/`hi` elements of the other end of `axis` around `x`."""
    n = x.shape[axis]
    index = [slice(None)] * x.ndim
    parts = []
    if lo > 0:
        index[axis] = slice(n - lo, n)
        parts.append(x[tuple(index)])
    parts.append(x)
    if hi > 0:
        index[axis] = slice(0, hi)
        parts.append(x[tuple(index)])
    return mx.concatenate(parts, axis=axis) if len(parts) > 1 else x


def pad(x, grow, crop, mode, value):
    """Pad by `grow` (per-axis (lo, hi), non-negative) in `mode` ("constant", "reflect", "edge",
    "circular"), then crop by `crop` (negative paddings)."""
    if mode == "constant":
        y = mx.pad(x, grow, constant_values=mx.array(value).astype(x.dtype))
    elif mode == "circular":
        y = x
        for axis, (lo, hi) in enumerate(grow):
            y = circular_pad(y, axis, lo, hi)
    else:
        y = mx.pad(x, grow, mode=mode)
    return y[crop]


_MX_PAD = {PadMode.CONSTANT: "constant", PadMode.REFLECT: "reflect", PadMode.REPLICATE: "edge",
           PadMode.CIRCULAR: "circular"}


def _pad_params(a, ins, outs):
    widths = pad_widths(a["pads"], ins[0].ndim)
    grown = [n + max(lo, 0) + max(hi, 0) for n, (lo, hi) in zip(ins[0].shape, widths)]
    crop = tuple(slice(-min(lo, 0), n + min(hi, 0)) for n, (lo, hi) in zip(grown, widths))
    return {"grow": [(max(lo, 0), max(hi, 0)) for lo, hi in widths], "crop": crop,
            "mode": _MX_PAD[a["mode"]], "value": a["value"]}


def triangle(x, k, lower):
    """x with the entries above (lower) or below (upper) diagonal k zeroed."""
    n, m = x.shape[-2], x.shape[-1]
    offset = mx.arange(m).reshape(1, m) - mx.arange(n).reshape(n, 1)
    keep = (offset <= k) if lower else (offset >= k)
    return mx.where(keep, x, mx.zeros((), x.dtype))


def tile(x, reps, shape):
    """x repeated `reps` times per axis (rank raised to len(reps)); `shape` is the result's."""
    x = mx.reshape(x, (1,) * (len(reps) - x.ndim) + tuple(x.shape))
    if 0 in reps or x.size == 0:
        return mx.zeros(shape, x.dtype)
    return mx.tile(x, reps)


def _flip_index(a, ins, outs):
    idx = [slice(None)] * ins[0].ndim
    for ax in a["axes"]:
        idx[ax] = slice(None, None, -1)
    return {"index": tuple(idx)}


lowers("reshape", "reshape", lambda a, ins, outs: {"shape": tuple(outs[0].shape)})
lowers("transpose", "transpose", lambda a, ins, outs: {"axes": tuple(a["perm"])})
lowers("broadcast_to", "broadcast_to", lambda a, ins, outs: {"shape": tuple(outs[0].shape)})
lowers("slice", "[]", lambda a, ins, outs: {"index": _axis_index(ins[0].ndim, a["axis"],
                                                                  slice(a["start"], a["end"], a["step"]))})
lowers("concat", "concatenate", lambda a, ins, outs: {"axis": a["axis"]}, operands=lambda args: [args])
lowers("flip", "[]", _flip_index)
lowers("roll", "roll", lambda a, ins, outs: {"shift": tuple(a["shifts"]), "axis": tuple(a["axes"])},
       positional=("shift", "axis"))
lowers("pad", pad, _pad_params)
lowers("tril", triangle, lambda a, ins, outs: {"k": a["diagonal"], "lower": True})
lowers("triu", triangle, lambda a, ins, outs: {"k": a["diagonal"], "lower": False})
lowers("tile", tile, lambda a, ins, outs: {"reps": tuple(a["repeats"]), "shape": tuple(outs[0].shape)})
