"""aten view and data-movement ops -> xc shape ops (reshape, transpose, broadcast_to, slice, concat,
flip, roll, pad, tril/triu, tile).

Dims arrive possibly negative and slice bounds out of range; they are normalized here the way torch
does before they become attributes. squeeze/unsqueeze/select/stack/split/... have no IR op of their
own: they are reshapes, slices and concats.
"""
from __future__ import annotations

import torch

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.symbolic import sizes, symbolic_slice_bounds
from xcomp.ir.symbolic import add as sym_add
from xcomp.ir.core import Value
from xcomp.ops.shape import PadMode

INT_MAX = 2 ** 63 - 1


def static_int(v) -> int:
    """A Python int from an int or a SymInt with a known value; NotImplementedError otherwise."""
    if isinstance(v, torch.SymInt):
        if not v.node.is_constant():
            raise NotImplementedError(f"symbolic size {v}")
        return int(v)
    if isinstance(v, Value):
        raise NotImplementedError("a size given as a tensor")
    if isinstance(v, str):
        raise NotImplementedError(f"symbolic size {v} where xcomp needs a static one")
    return int(v)


def static_ints(vs) -> tuple[int, ...]:
    if isinstance(vs, (int, torch.SymInt)):
        return (static_int(vs),)
    return tuple(static_int(v) for v in vs)


def norm_dim(d, rank: int) -> int:
    """torch's dim wrapping (a 0-d tensor accepts dims 0 and -1)."""
    d = static_int(d)
    r = max(rank, 1)
    if not -r <= d < r:
        raise IndexError(f"dim {d} out of range for rank {rank}")
    return d + r if d < 0 else d


def norm_dims(ds, rank: int) -> tuple[int, ...]:
    return tuple(norm_dim(d, rank) for d in ([ds] if isinstance(ds, (int, torch.SymInt)) else ds))


def size(x: Value, d: int) -> int:
    n = x.type.shape[d]
    if not isinstance(n, int):
        raise NotImplementedError(f"symbolic size '{n}' of axis {d}")
    return n


def reshape(cx, x: Value, shape) -> Value:
    shape = sizes(shape)
    return x if tuple(x.type.shape) == shape else cx.op("reshape", x, shape=shape)


def transpose(cx, x: Value, perm) -> Value:
    perm = tuple(perm)
    return x if perm == tuple(range(len(perm))) else cx.op("transpose", x, perm=perm)


def slice_bounds(x: Value, dim, start=None, end=None, step=1) -> tuple[int, int, int, int]:
    """(axis, start, end, step) of x[start:end:step] along dim, clamped the way torch does."""
    ax = norm_dim(dim, x.type.rank)
    n = x.type.shape[ax]
    if isinstance(n, str) or isinstance(start, str) or isinstance(end, str):
        return symbolic_slice_bounds(ax, n, start, end, step)

    def clamp(v, default):
        v = default if v is None else static_int(v)
        v = v + n if v < 0 else v
        return min(max(v, 0), n)
    s, e = clamp(start, 0), clamp(end, n)
    step = static_int(step)
    if step < 1:
        raise ValueError(f"slice step must be positive, got {step}")
    return ax, s, max(e, s), step


def slice_axis(cx, x: Value, dim, start=None, end=None, step=1) -> Value:
    """x[start:end:step] along dim, with torch's clamping of start and end."""
    ax, s, e, step = slice_bounds(x, dim, start, end, step)
    if (s, e, step) == (0, x.type.shape[ax], 1):
        return x
    return cx.op("slice", x, axis=ax, start=s, end=e, step=step)


def squeeze_axes(cx, x: Value, axes) -> Value:
    keep = [d for i, d in enumerate(x.type.shape) if not (i in axes and d == 1)]
    return reshape(cx, x, keep)


def unsqueeze(cx, x: Value, dim) -> Value:
    d = static_int(dim)
    d = d + x.type.rank + 1 if d < 0 else d
    shape = list(x.type.shape)
    shape.insert(d, 1)
    return reshape(cx, x, shape)


def select(cx, x: Value, dim, index) -> Value:
    ax = norm_dim(dim, x.type.rank)
    i = static_int(index)
    i = i + size(x, ax) if i < 0 else i
    if not 0 <= i < size(x, ax):
        raise IndexError(f"index {index} out of range for axis {ax} of size {size(x, ax)}")
    return squeeze_axes(cx, slice_axis(cx, x, ax, i, i + 1), (ax,))


def split_sizes(cx, x: Value, split, dim) -> list[Value]:
    ax = norm_dim(dim, x.type.rank)
    out, start = [], 0
    for s in sizes(split):  # ints, or symbolic sizes (a split of a symbolic axis)
        end = sym_add(start, s)
        out.append(cx.op("slice", x, axis=ax, start=start, end=end, step=1))
        start = end
    return out


def concat(cx, xs, axis: int) -> Value:
    return xs[0] if len(xs) == 1 else cx.op("concat", *xs, axis=axis)


# -- reshape family -----------------------------------------------------------------------------
@aten("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.view_copy.default",
      "aten._reshape_alias.default", "aten._reshape_alias_copy.default")
def view(cx, x, shape, *stride):
    return reshape(cx, x, shape)


@aten("aten.view_as.default", "aten.reshape_as.default")
def view_as(cx, x, other):
    return reshape(cx, x, other.type.shape)


@aten("aten.squeeze.default", "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze_copy.default",
      "aten.squeeze_copy.dim", "aten.squeeze_copy.dims")
def squeeze(cx, x, dim=None):
    axes = range(x.type.rank) if dim is None else norm_dims(dim, x.type.rank)
    return squeeze_axes(cx, x, set(axes))


@aten("aten.unsqueeze.default", "aten.unsqueeze_copy.default")
def _unsqueeze(cx, x, dim):
    return unsqueeze(cx, x, dim)


@aten("aten.flatten.using_ints", "aten.ravel.default")
def flatten(cx, x, start_dim=0, end_dim=-1):
    if x.type.rank == 0:
        return reshape(cx, x, (1,))
    s, e = norm_dim(start_dim, x.type.rank), norm_dim(end_dim, x.type.rank)
    shape = list(x.type.shape)
    inner = 1
    for d in range(s, e + 1):
        inner *= size(x, d)
    return reshape(cx, x, shape[:s] + [inner] + shape[e + 1:])


@aten("aten.unflatten.int")
def unflatten(cx, x, dim, sizes):
    ax = norm_dim(dim, x.type.rank)
    sizes = list(static_ints(sizes))
    if -1 in sizes:
        known = 1
        for s in sizes:
            known *= s if s != -1 else 1
        sizes[sizes.index(-1)] = size(x, ax) // known if known else 0
    shape = list(x.type.shape)
    return reshape(cx, x, shape[:ax] + sizes + shape[ax + 1:])


# -- transpose family ---------------------------------------------------------------------------
@aten("aten.permute.default", "aten.permute_copy.default")
def permute(cx, x, dims):
    return transpose(cx, x, norm_dims(dims, x.type.rank))


@aten("aten.transpose.int", "aten.transpose_copy.int", "aten.swapaxes.default", "aten.swapdims.default")
def transpose_int(cx, x, dim0, dim1):
    r = x.type.rank
    if r == 0:
        return x
    a, b = norm_dim(dim0, r), norm_dim(dim1, r)
    perm = list(range(r))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(cx, x, perm)


@aten("aten.t.default", "aten.t_copy.default", "aten.mT.default", "aten.adjoint.default")
def t(cx, x):
    return x if x.type.rank < 2 else transpose_int(cx, x, -2, -1)


@aten("aten.numpy_T.default")
def numpy_t(cx, x):
    return transpose(cx, x, tuple(reversed(range(x.type.rank))))


@aten("aten.movedim.int", "aten.movedim.intlist", "aten.moveaxis.int", "aten.moveaxis.intlist")
def movedim(cx, x, source, destination):
    r = x.type.rank
    src, dst = norm_dims(source, r), norm_dims(destination, r)
    perm = [None] * r
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(i for i in range(r) if i not in src)
    return transpose(cx, x, [p if p is not None else next(rest) for p in perm])


# -- broadcast ----------------------------------------------------------------------------------
@aten("aten.expand.default", "aten.expand_copy.default")
def expand(cx, x, shape, implicit=False):
    shape = sizes(shape)
    return x if shape == tuple(x.type.shape) else cx.op("broadcast_to", x, shape=shape)


@aten("aten.expand_as.default")
def expand_as(cx, x, other):
    return cx.broadcast(x, other.type.shape)


@aten("aten.copy.default")
def copy(cx, dst, src, non_blocking=False):
    return cx.broadcast(cx.tensor(src, dst.type.dtype), dst.type.shape)


@aten("aten.alias_copy.default")
def alias_copy(cx, x):
    return x


# -- slicing ------------------------------------------------------------------------------------
@aten("aten.slice.Tensor", "aten.slice_copy.Tensor")
def slice_(cx, x, dim=0, start=None, end=None, step=1):
    return slice_axis(cx, x, dim, start, end, step)


@aten("aten.select.int", "aten.select_copy.int")
def _select(cx, x, dim, index):
    return select(cx, x, dim, index)


@aten("aten.narrow.default", "aten.narrow_copy.default")
def narrow(cx, x, dim, start, length):
    ax = norm_dim(dim, x.type.rank)
    s = static_int(start)
    s = s + size(x, ax) if s < 0 else s
    return cx.op("slice", x, axis=ax, start=s, end=s + static_int(length), step=1)


@aten("aten.split.Tensor", "aten.split_copy.Tensor", "aten.unsafe_split.Tensor")
def split(cx, x, split_size, dim=0):
    ax = norm_dim(dim, x.type.rank)
    n, s = size(x, ax), static_int(split_size)
    if n == 0:
        return [x]
    if s <= 0:
        raise ValueError(f"split size must be positive, got {s}")
    return split_sizes(cx, x, [s] * (n // s) + ([n % s] if n % s else []), ax)


@aten("aten.split_with_sizes.default", "aten.split_with_sizes_copy.default",
      "aten.unsafe_split_with_sizes.default")
def split_with_sizes(cx, x, sizes, dim=0):
    return split_sizes(cx, x, sizes, dim)


@aten("aten.chunk.default", "aten.unsafe_chunk.default")
def chunk(cx, x, chunks, dim=0):
    ax = norm_dim(dim, x.type.rank)
    n = size(x, ax)
    return split(cx, x, -(-n // static_int(chunks)), ax) if n else [x] * static_int(chunks)


@aten("aten.unbind.int", "aten.unbind_copy.int")
def unbind(cx, x, dim=0):
    ax = norm_dim(dim, x.type.rank)
    return [select(cx, x, ax, i) for i in range(size(x, ax))]


# -- joining ------------------------------------------------------------------------------------
@aten("aten.cat.default", "aten.concat.default", "aten.concatenate.default")
def cat(cx, tensors, dim=0):
    dt = cx.out_dtype
    xs = [cx.tensor(t, dt) for t in tensors]
    # torch still accepts legacy 1-d empty tensors next to tensors of any rank
    full = [x for x in xs if not (x.type.rank == 1 and x.type.shape[0] == 0)]
    if not full:
        return xs[0]
    return concat(cx, full, norm_dim(dim, full[0].type.rank))


@aten("aten.stack.default")
def stack(cx, tensors, dim=0):
    dt = cx.out_dtype
    xs = [cx.tensor(t, dt) for t in tensors]
    d = static_int(dim)
    d = d + xs[0].type.rank + 1 if d < 0 else d
    return concat(cx, [unsqueeze(cx, x, d) for x in xs], d)


# -- reordering ---------------------------------------------------------------------------------
@aten("aten.flip.default")
def flip(cx, x, dims):
    axes = tuple(sorted(set(norm_dims(dims, x.type.rank)))) if x.type.rank else ()
    return cx.op("flip", x, axes=axes) if axes else x


@aten("aten.roll.default")
def roll(cx, x, shifts, dims=()):
    shifts = static_ints(shifts)
    if not dims:
        flat = reshape(cx, x, (-1,))
        return reshape(cx, cx.op("roll", flat, shifts=shifts, axes=(0,)), x.type.shape)
    axes = norm_dims(dims, x.type.rank)
    return cx.op("roll", x, shifts=shifts, axes=axes)


@aten("aten.rot90.default")
def rot90(cx, x, k=1, dims=(0, 1)):
    a, b = norm_dims(dims, x.type.rank)
    k = static_int(k) % 4
    perm = list(range(x.type.rank))
    perm[a], perm[b] = perm[b], perm[a]
    steps = {0: lambda: x,
             1: lambda: transpose(cx, cx.op("flip", x, axes=(b,)), perm),
             2: lambda: cx.op("flip", x, axes=tuple(sorted((a, b)))),
             3: lambda: cx.op("flip", transpose(cx, x, perm), axes=(b,))}
    return steps[k]()


@aten("aten.tril.default")
def tril(cx, x, diagonal=0):
    return cx.op("tril", x, diagonal=static_int(diagonal))


@aten("aten.triu.default")
def triu(cx, x, diagonal=0):
    return cx.op("triu", x, diagonal=static_int(diagonal))


@aten("aten.repeat.default")
def repeat(cx, x, repeats):
    return cx.op("tile", x, repeats=static_ints(repeats))


@aten("aten.repeat_interleave.self_int")
def repeat_interleave(cx, x, repeats, dim=None, output_size=None):
    if dim is None:
        x, dim = reshape(cx, x, (-1,)), 0
    ax = norm_dim(dim, x.type.rank)
    shape = list(x.type.shape)
    r = static_int(repeats)
    y = unsqueeze(cx, x, ax + 1)
    y = cx.op("broadcast_to", y, shape=tuple(shape[:ax + 1] + [r] + shape[ax + 1:]))
    return reshape(cx, y, shape[:ax] + [shape[ax] * r] + shape[ax + 1:])


@aten("aten.tile.default")
def tile(cx, x, dims):
    reps = static_ints(dims)
    reps = (1,) * (x.type.rank - len(reps)) + reps
    return cx.op("tile", x, repeats=reps)


# -- padding ------------------------------------------------------------------------------------
def pad(cx, x, pads, mode: PadMode, value=0.0) -> Value:
    pads = static_ints(pads)
    if not any(pads):
        return x
    return cx.op("pad", x, pads=pads, mode=mode, value=float(0.0 if value is None else value))


@aten("aten.constant_pad_nd.default")
def constant_pad_nd(cx, x, pad_, value=0):
    return pad(cx, x, pad_, PadMode.CONSTANT, value)


@aten("aten.pad.default")
def pad_default(cx, x, pad_, mode="constant", value=None):
    return pad(cx, x, pad_, PadMode(mode), value)


_PAD_ENUM = {0: PadMode.CONSTANT, 1: PadMode.REFLECT, 2: PadMode.REPLICATE, 3: PadMode.CIRCULAR}


@aten("aten._pad_enum.default")
def pad_enum(cx, x, pad_, mode, value=None):
    return pad(cx, x, pad_, _PAD_ENUM[static_int(mode)], value)


@aten("aten._pad_circular.default")
def pad_circular(cx, x, pad_):
    return pad(cx, x, pad_, PadMode.CIRCULAR)


for _n in (1, 2, 3):
    aten(f"aten.reflection_pad{_n}d.default")(lambda cx, x, p: pad(cx, x, p, PadMode.REFLECT))
    aten(f"aten.replication_pad{_n}d.default")(lambda cx, x, p: pad(cx, x, p, PadMode.REPLICATE))
