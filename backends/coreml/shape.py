"""Core ML lowerings of shape ops (views, concat, pad, tile, roll, tril/triu)."""
from __future__ import annotations

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import select
from xcomp.backends.coreml.sizes import has_symbolic, run_sizes
from xcomp.backends.coreml.table import lowers, scalar_like, unsupported
from xcomp.ops.shape import PadMode, pad_widths


@lowers("reshape")
def _reshape(args, attrs, out):
    """A constant target shape (one symbolic dim as -1), or one built from the input sizes."""
    shape = out[0].shape
    if not has_symbolic(shape):
        return mb.reshape(x=args[0], shape=np.array(shape, np.int32))
    sizes = run_sizes()
    source = list(sizes.operand_types[0].shape)
    unit = _unit_dims_only(source, list(shape))
    if unit is not None:    # only 1-dims added or removed: no shape to build
        kind, axes = unit
        return mb.squeeze(x=args[0], axes=axes) if kind == "squeeze" else mb.expand_dims(x=args[0], axes=axes)
    return mb.reshape(x=args[0], shape=sizes.reshape_target(shape, source))


def _unit_dims_only(source: list, target: list):
    """("squeeze" | "expand_dims", axes) when `target` is `source` with only size-1 dims removed or
    inserted (one direction), else None."""
    longer, shorter, kind = (source, target, "squeeze") if len(source) > len(target) else (target, source, "expand_dims")
    if len(longer) == len(shorter):
        return None
    axes, j = [], 0
    for i, d in enumerate(longer):
        if j < len(shorter) and d == shorter[j]:
            j += 1
        elif d == 1:
            axes.append(i)
        else:
            return None
    return (kind, axes) if j == len(shorter) else None


@lowers("transpose")
def _transpose(args, attrs, out):
    return mb.transpose(x=args[0], perm=list(attrs["perm"]))


@lowers("broadcast_to")
def _broadcast_to(args, attrs, out):
    x, shape = args[0], out[0].shape
    if x.rank < len(shape):
        x = mb.expand_dims(x=x, axes=list(range(len(shape) - x.rank)))
    reps = [s if d == 1 else 1 for d, s in zip(x.shape, shape)]   # MIL's static 1s are broadcast
    if all(r == 1 for r in reps):
        return x
    return mb.tile(x=x, reps=run_sizes().shape(reps, False) if has_symbolic(reps) else np.array(reps, np.int32))


def slice_axis(x, axis: int, start, end, step: int = 1):
    """x[start:end:step] along `axis` (normalized bounds; a symbolic bound is built at run time)."""
    rank = x.rank
    begin, stop = [0] * rank, [0] * rank
    begin[axis], stop[axis] = start, end
    stride = [1] * rank
    stride[axis] = step
    mask = [i != axis for i in range(rank)]
    bound = lambda b: run_sizes().shape(b, False) if has_symbolic(b) else np.array(b, np.int32)  # noqa: E731
    return mb.slice_by_index(x=x, begin=bound(begin), end=bound(stop),
                             stride=np.array(stride, np.int32), begin_mask=mask, end_mask=mask)


@lowers("slice")
def _slice(args, attrs, out):
    return slice_axis(args[0], attrs["axis"] % args[0].rank, attrs["start"], attrs["end"], attrs["step"])


@lowers("concat")
def _concat(args, attrs, out):
    if len(args) == 1:
        return args[0]
    return mb.concat(values=list(args), axis=attrs["axis"] % args[0].rank)


@lowers("flip")
def _flip(args, attrs, out):
    return mb.reverse(x=args[0], axes=[a % args[0].rank for a in attrs["axes"]])


def _circular(x, axis, lo, hi):
    n = x.shape[axis]
    parts = ([slice_axis(x, axis, n - lo, n)] if lo else []) + [x] + ([slice_axis(x, axis, 0, hi)] if hi else [])
    return mb.concat(values=parts, axis=axis) if len(parts) > 1 else x


@lowers("pad")
def _pad(args, attrs, out):
    x = args[0]
    widths = pad_widths(attrs["pads"], x.rank)
    for ax, (lo, hi) in enumerate(widths):          # negative pads crop
        if lo < 0 or hi < 0:
            n = x.shape[ax]
            x = slice_axis(x, ax, max(-lo, 0), n - max(-hi, 0))
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if not any(lo or hi for lo, hi in grow):
        return x
    mode = attrs["mode"]
    if mode is PadMode.CIRCULAR:
        for ax, (lo, hi) in enumerate(grow):
            if lo or hi:
                x = _circular(x, ax, lo, hi)
        return x
    first = next(i for i, (lo, hi) in enumerate(grow) if lo or hi)
    if mode is not PadMode.CONSTANT and x.rank - first > 2 and x.rank > 2:
        raise unsupported("pad", "Core ML reflect/replicate pads only the last two dims")
    pads = np.array([p for lo_hi in grow for p in lo_hi], np.int32)
    mil_mode = {PadMode.CONSTANT: "constant", PadMode.REFLECT: "reflect", PadMode.REPLICATE: "replicate"}[mode]
    kw = {"constant_val": scalar_like(attrs["value"], x)} if mode is PadMode.CONSTANT else {}
    return mb.pad(x=x, pad=pads, mode=mil_mode, **kw)


@lowers("roll")
def _roll(args, attrs, out):
    x = args[0]
    for shift, ax in zip(attrs["shifts"], attrs["axes"]):
        ax %= x.rank
        n = x.shape[ax]
        s = shift % n if n else 0
        if s:
            x = mb.concat(values=[slice_axis(x, ax, n - s, n), slice_axis(x, ax, 0, n - s)], axis=ax)
    return x


@lowers("tile")
def _tile(args, attrs, out):
    x, reps = args[0], list(attrs["repeats"])
    if len(reps) > x.rank:
        x = mb.reshape(x=x, shape=np.array((1,) * (len(reps) - x.rank) + tuple(x.shape), np.int32))
    reps = [1] * (x.rank - len(reps)) + reps
    return x if all(r == 1 for r in reps) else mb.tile(x=x, reps=reps)


def _tri(lower: bool):
    def rule(args, attrs, out):
        x, k = args[0], attrs["diagonal"]
        n, m = out[0].shape[-2], out[0].shape[-1]
        if isinstance(n, int) and isinstance(m, int):    # a constant mask
            keep = np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)
            return select(cond=keep, a=x, b=scalar_like(0, x))
        return _band(x, k, lower)
    return rule


def _band(x, k: int, lower: bool):
    """tril/triu over symbolic sizes with `mb.band_part` (keeps j - i <= upper and i - j <= lower):
    tril(k >= 0) and triu(k <= 0) are one band; the others keep the complement of a band of ones."""
    if lower and k >= 0:
        return mb.band_part(x=x, lower=np.int32(-1), upper=np.int32(k))
    if not lower and k <= 0:
        return mb.band_part(x=x, lower=np.int32(-k), upper=np.int32(-1))
    lo, up = (-k - 1, -1) if lower else (-1, k - 1)
    band = mb.band_part(x=mb.fill(shape=mb.shape(x=x), value=np.int32(1)), lower=np.int32(lo), upper=np.int32(up))
    return select(cond=mb.equal(x=band, y=np.int32(0)), a=x, b=scalar_like(0, x))


lowers("tril")(_tri(True))
lowers("triu")(_tri(False))
