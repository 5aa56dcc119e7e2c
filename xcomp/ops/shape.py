"""Shape ops: views and data movement (reshape, transpose, broadcast_to, slice, concat, flip, roll,
pad, tril/triu, tile).

Attributes are normalized: axes are non-negative, slices hold in-range `start <= end` with `step >= 1`
(the frontends clamp like their framework does). `infer` is the only place result shapes are
computed; reshape and broadcast_to accept one `-1` (reshape: the inferred size; broadcast_to: keep
the input's size), as torch does.
"""
from __future__ import annotations

import enum

import numpy as np

from xcomp import guards
from xcomp.ir import symbolic as sym
from xcomp.ir.types import Dim, TensorType
from xcomp.ops.registry import AttrKind, Trait, attr, define, req

PURE, VIEW = Trait.PURE, Trait.VIEW


def tensor_operands(types, name):
    """Raise unless every operand type is a tensor."""
    for t in types:
        if not isinstance(t, TensorType):
            raise TypeError(f"xc.{name} takes tensors, got {t}")


def check_axis(axis: int, rank: int, name: str) -> int:
    """Raise unless `0 <= axis < rank` (attributes hold normalized axes)."""
    if not 0 <= axis < rank:
        raise ValueError(f"xc.{name}: axis {axis} out of range for rank {rank}")
    return axis


def check_axes(axes, rank: int, name: str) -> tuple[int, ...]:
    for a in axes:
        check_axis(a, rank, name)
    if len(set(axes)) != len(axes):
        raise ValueError(f"xc.{name}: repeated axis in {tuple(axes)}")
    return tuple(axes)


def static_dim(d: Dim, name: str) -> int:
    if not isinstance(d, int):
        raise ValueError(f"xc.{name} needs a static size here, got symbol '{d}'")
    return d


def _numel(shape) -> int:
    return int(np.prod([static_dim(d, "reshape") for d in shape], dtype=np.int64))


# -- reshape ------------------------------------------------------------------------------------
def _reshape_infer(types, a):
    tensor_operands(types, "reshape")
    x, shape = types[0], list(a["shape"])
    if sum(d == -1 for d in shape) > 1 or any(isinstance(d, int) and d < -1 for d in shape):
        raise ValueError(f"xc.reshape: bad shape {tuple(shape)}")
    total = sym.product(x.shape)
    if -1 in shape:
        known = sym.product([d for d in shape if d != -1])
        if known == 0:
            raise ValueError(f"xc.reshape: cannot reshape {x} to {tuple(shape)}")
        quotient = sym.divide(total, known)
        if quotient is None:
            raise ValueError(f"xc.reshape: cannot infer -1 of {tuple(shape)} from {x} (symbolic divisor)")
        rest, remainder, c = quotient
        if sym.mod(remainder, c) != 0 and isinstance(remainder, int):
            raise ValueError(f"xc.reshape: cannot reshape {x} to {tuple(shape)}")
        guards.require(sym.mod(remainder, c), "==", 0, f"xc.reshape of {x} to {tuple(shape)}")
        shape[shape.index(-1)] = rest
    elif sym.product(shape) != total:
        if isinstance(total, int) and isinstance(sym.product(shape), int):
            raise ValueError(f"xc.reshape: cannot reshape {x} to {tuple(shape)}")
        guards.require(sym.product(shape), "==", total, f"xc.reshape of {x} to {tuple(shape)}")
    return [x.with_shape(shape)]


define("reshape", _reshape_infer, lambda args, a, out: [np.reshape(args[0], out[0].shape)],
       attrs={"shape": req(AttrKind.DIMS)}, traits=(PURE, VIEW), operands=1,
       doc="Row-major reshape; one -1 in `shape` takes the remaining size.")


# -- transpose ----------------------------------------------------------------------------------
def _transpose_infer(types, a):
    tensor_operands(types, "transpose")
    x, perm = types[0], a["perm"]
    if sorted(perm) != list(range(x.rank)):
        raise ValueError(f"xc.transpose: {perm} is not a permutation of {x.rank} axes")
    return [x.with_shape([x.shape[p] for p in perm])]


define("transpose", _transpose_infer, lambda args, a, out: [np.transpose(args[0], a["perm"])],
       attrs={"perm": req(AttrKind.INTS)}, traits=(PURE, VIEW), operands=1,
       doc="Permute axes: result axis i is input axis perm[i].")


# -- broadcast_to -------------------------------------------------------------------------------
def _broadcast_infer(types, a):
    tensor_operands(types, "broadcast_to")
    x, shape = types[0], list(a["shape"])
    if len(shape) < x.rank:
        raise ValueError(f"xc.broadcast_to: cannot broadcast {x} to fewer dims {tuple(shape)}")
    lead = len(shape) - x.rank
    out = []
    for i, d in enumerate(shape):
        src = x.shape[i - lead] if i >= lead else None
        if d == -1:
            if src is None:
                raise ValueError(f"xc.broadcast_to: -1 for a new leading axis in {tuple(shape)}")
            d = src
        elif (isinstance(d, int) and d < 0) or (src is not None and src != 1 and src != d):
            if isinstance(d, int) and d >= 0 and isinstance(src, str):
                guards.require(src, "==", d, f"xc.broadcast_to of {x} to {tuple(shape)}")
            else:
                raise ValueError(f"xc.broadcast_to: cannot broadcast {x} to {tuple(shape)}")
        out.append(d)
    return [x.with_shape(out)]


define("broadcast_to", _broadcast_infer,
       lambda args, a, out: [np.broadcast_to(args[0], out[0].shape).copy()],
       attrs={"shape": req(AttrKind.DIMS)}, traits=(PURE, VIEW), operands=1,
       doc="Numpy broadcasting to `shape`; -1 keeps the input's size (torch expand).")


# -- slice --------------------------------------------------------------------------------------
def _slice_infer(types, a):
    tensor_operands(types, "slice")
    x = types[0]
    ax = check_axis(a["axis"], x.rank, "slice")
    start, end, step = a["start"], a["end"], a["step"]
    n = x.shape[ax]
    if step < 1:
        raise ValueError(f"xc.slice: step {step} must be positive")
    what = f"xc.slice [{start}:{end}:{step}] of size {n}"
    try:
        for lo, hi in ((0, start), (start, end), (end, n)):
            guards.require(hi, ">=", lo, what)
    except ValueError:
        raise ValueError(f"xc.slice: [{start}:{end}:{step}] is not a normalized slice of size {n}") from None
    shape = list(x.shape)
    shape[ax] = sym.floordiv(sym.add(sym.sub(end, start), step - 1), step)
    return [x.with_shape(shape)]


def _slice_ref(args, a, out):
    idx = [slice(None)] * args[0].ndim
    idx[a["axis"]] = slice(a["start"], a["end"], a["step"])
    return [args[0][tuple(idx)]]


define("slice", _slice_infer, _slice_ref,
       attrs={"axis": req(AttrKind.INT), "start": req(AttrKind.SYM), "end": req(AttrKind.SYM),
              "step": attr(AttrKind.INT, 1)},
       traits=(PURE, VIEW), operands=1,
       doc="x[start:end:step] along `axis`, with 0 <= start <= end <= size and step >= 1.")


# -- concat -------------------------------------------------------------------------------------
def _concat_infer(types, a):
    tensor_operands(types, "concat")
    if not types:
        raise ValueError("xc.concat needs at least one operand")
    first = types[0]
    ax = check_axis(a["axis"], first.rank, "concat")
    total: Dim = 0
    for t in types:
        if t.dtype != first.dtype or t.rank != first.rank:
            raise TypeError(f"xc.concat needs operands of one dtype and rank, got {first} and {t}")
        if any(t.shape[i] != first.shape[i] for i in range(t.rank) if i != ax):
            raise ValueError(f"xc.concat: {first} and {t} differ outside axis {ax}")
        d = t.shape[ax]
        total = sym.add(total, d)
    shape = list(first.shape)
    shape[ax] = total
    return [first.with_shape(shape)]


define("concat", _concat_infer, lambda args, a, out: [np.concatenate(args, axis=a["axis"])],
       attrs={"axis": req(AttrKind.INT)}, traits=(PURE,),
       doc="Join tensors of one dtype along `axis` (variadic).")


# -- flip, roll ---------------------------------------------------------------------------------
def _same_with_axes(name):
    def infer(types, a):
        tensor_operands(types, name)
        check_axes(a["axes"], types[0].rank, name)
        return [types[0]]
    return infer


define("flip", _same_with_axes("flip"), lambda args, a, out: [np.flip(args[0], a["axes"]).copy()],
       attrs={"axes": req(AttrKind.INTS)}, traits=(PURE, VIEW), operands=1,
       doc="Reverse the order of elements along `axes`.")


def _roll_infer(types, a):
    if len(a["shifts"]) != len(a["axes"]):
        raise ValueError(f"xc.roll: {len(a['shifts'])} shifts for {len(a['axes'])} axes")
    tensor_operands(types, "roll")
    for ax in a["axes"]:
        check_axis(ax, types[0].rank, "roll")
    return [types[0]]


define("roll", _roll_infer, lambda args, a, out: [np.roll(args[0], a["shifts"], a["axes"])],
       attrs={"shifts": req(AttrKind.INTS), "axes": req(AttrKind.INTS)}, traits=(PURE,), operands=1,
       doc="Rotate elements along each axis by its shift (positive shifts move toward higher indices).")


# -- pad ----------------------------------------------------------------------------------------
class PadMode(enum.Enum):
    CONSTANT = "constant"
    REFLECT = "reflect"        # mirror without repeating the edge
    REPLICATE = "replicate"    # repeat the edge value
    CIRCULAR = "circular"      # wrap around


def pad_widths(pads, rank: int) -> list[tuple[int, int]]:
    """Torch pad order (last axis first: lo, hi, lo, hi, ...) as per-axis (lo, hi) pairs."""
    widths = [(0, 0)] * rank
    for i in range(len(pads) // 2):
        widths[rank - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    return widths


def _pad_infer(types, a):
    tensor_operands(types, "pad")
    x, pads, mode = types[0], a["pads"], a["mode"]
    if len(pads) % 2 or len(pads) > 2 * x.rank:
        raise ValueError(f"xc.pad: {len(pads)} pad sizes for rank {x.rank}")
    shape = list(x.shape)
    for ax, (lo, hi) in enumerate(pad_widths(pads, x.rank)):
        if lo == hi == 0:
            continue
        n = x.shape[ax]
        if isinstance(n, str):
            least = {PadMode.CONSTANT: -lo - hi, PadMode.REFLECT: max(lo, hi) + 1,
                     PadMode.REPLICATE: 1, PadMode.CIRCULAR: max(lo, hi)}[mode]
            guards.require(n, ">=", least, f"xc.pad ({lo}, {hi}) {mode.value} of size {n}")
            shape[ax] = sym.add(n, lo + hi)
            continue
        if mode is PadMode.REFLECT and (max(lo, hi) >= n or min(lo, hi) < 0):
            raise ValueError(f"xc.pad: reflect pads ({lo}, {hi}) need to be less than size {n}")
        if mode is PadMode.REPLICATE and (n == 0 or min(lo, hi) < 0):
            raise ValueError(f"xc.pad: replicate pads ({lo}, {hi}) of size {n}")
        if mode is PadMode.CIRCULAR and (max(lo, hi) > n or min(lo, hi) < 0):
            raise ValueError(f"xc.pad: circular pads ({lo}, {hi}) larger than size {n}")
        if n + lo + hi < 0:
            raise ValueError(f"xc.pad: pads ({lo}, {hi}) remove more than size {n}")
        shape[ax] = n + lo + hi
    return [x.with_shape(shape)]


_NP_PAD = {PadMode.CONSTANT: "constant", PadMode.REFLECT: "reflect", PadMode.REPLICATE: "edge",
           PadMode.CIRCULAR: "wrap"}


def _pad_ref(args, a, out):
    x = args[0]
    widths = pad_widths(a["pads"], x.ndim)
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    kw = {"constant_values": np.asarray(a["value"]).astype(x.dtype)} if a["mode"] is PadMode.CONSTANT else {}
    y = np.pad(x, grow, mode=_NP_PAD[a["mode"]], **kw)
    crop = tuple(slice(-min(lo, 0), y.shape[i] + min(hi, 0)) for i, (lo, hi) in enumerate(widths))
    return [y[crop]]


define("pad", _pad_infer, _pad_ref,
       attrs={"pads": req(AttrKind.INTS), "mode": attr(AttrKind.ENUM, PadMode.CONSTANT, enum=PadMode),
              "value": attr(AttrKind.FLOAT, 0.0)},
       traits=(PURE,), operands=1,
       doc="Pad with torch's pad order (last axis first); negative constant pads crop.")


# -- tril / triu --------------------------------------------------------------------------------
def _tri_infer(name):
    def infer(types, a):
        tensor_operands(types, name)
        if types[0].rank < 2:
            raise ValueError(f"xc.{name} needs rank >= 2, got {types[0]}")
        return [types[0]]
    return infer


define("tril", _tri_infer("tril"), lambda args, a, out: [np.tril(args[0], a["diagonal"])],
       attrs={"diagonal": attr(AttrKind.INT, 0)}, traits=(PURE,), operands=1,
       doc="Keep the lower triangle of the last two axes (on and below `diagonal`), zero the rest.")
define("triu", _tri_infer("triu"), lambda args, a, out: [np.triu(args[0], a["diagonal"])],
       attrs={"diagonal": attr(AttrKind.INT, 0)}, traits=(PURE,), operands=1,
       doc="Keep the upper triangle of the last two axes (on and above `diagonal`), zero the rest.")


# -- tile ---------------------------------------------------------------------------------------
def _tile_infer(types, a):
    tensor_operands(types, "tile")
    x, reps = types[0], a["repeats"]
    if len(reps) < x.rank or any(r < 0 for r in reps):
        raise ValueError(f"xc.tile: repeats {reps} for {x} (need one non-negative count per axis)")
    shape = (1,) * (len(reps) - x.rank) + tuple(x.shape)
    return [x.with_shape([sym.mul(d, r) for d, r in zip(shape, reps)])]


define("tile", _tile_infer, lambda args, a, out: [np.tile(args[0], a["repeats"])],
       attrs={"repeats": req(AttrKind.INTS)}, traits=(PURE,), operands=1,
       doc="torch.repeat: repeat the tensor `repeats[i]` times along axis i (new leading axes allowed).")
