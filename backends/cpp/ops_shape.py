"""C++ rules of views and data movement: reshape (free), transpose, slice, flip, broadcast_to, pad,
roll, tile (one remap helper, `xc_remap`, with a per-dim source map), concat, tril/triu."""
from __future__ import annotations

from xcomp.backends.cpp.lower import Buf, rule, shape_of
from xcomp.backends.cpp.sizes import dim, max1, prod
from xcomp.backends.cpp.views import apply_view, contiguous, is_contiguous, strides
from xcomp.ops.shape import PadMode, pad_widths

# xc_dim kinds (templates/cpp/ops.h)
AFFINE, WRAP, REFLECT, CLAMP = 0, 1, 2, 3


def remap(lw, op, x: Buf, dims: list[tuple], fill=0) -> list[Buf]:
    """out[o] = x[sum_d map_d(o_d) * stride_d]; dims: (size, stride, kind, a, b, n) per output dim."""
    y = lw.out(op)
    if y.numel == 0:
        return [y]
    name = lw.fresh("dims")
    rows = ", ".join("{" + ", ".join(str(dim(v) if isinstance(v, str) else v) for v in d) + "}" for d in dims) \
        or "{1, 0, 0, 1, 0, 1}"
    lw.const_table(f"static const xc_dim {name}[{max(len(dims), 1)}] = {{{rows}}};")
    fill_v = f"xc_from<{y.sty}>((double)({float(fill)!r}))"
    lw.emit(f"xc_remap<{y.sty}>({y.ptr}, {x.ptr}, {len(dims)}, {name}, {fill_v});")
    return [y]


def as_view(op, x: Buf) -> Buf:
    """`op`'s result as a strided view of `x` (an op of `CppLowering.views`): no code."""
    off, view = apply_view(op, x.view if x.view is not None else contiguous(x.shape))
    t = op.results[0].type
    ptr = x.ptr if off == 0 else f"({x.ptr} + {off})"
    return Buf(ptr, t.dtype, shape_of(t), None if is_contiguous(t.shape, view) else view)


@rule("reshape")
def _reshape(lw, op, args):
    if op in lw.views:
        return [as_view(op, args[0])]
    t = op.results[0].type
    return [Buf(args[0].ptr, t.dtype, shape_of(t))]


@rule("transpose")
def _transpose(lw, op, args):
    x = args[0]
    if op in lw.written:        # its operand's producer wrote it (views.written_views)
        return [lw.written[op]]
    if op in lw.views:
        return [as_view(op, x)]
    st = strides(x.shape)
    return remap(lw, op, x, [(x.shape[p], st[p], AFFINE, 1, 0, x.shape[p]) for p in op.attrs["perm"]])


@rule("slice")
def _slice(lw, op, args):
    x = args[0]
    if op in lw.views:
        return [as_view(op, x)]
    st = strides(x.shape)
    ax = op.attrs["axis"] % len(x.shape)
    out = shape_of(op.results[0].type)
    dims = [(out[d], st[d], AFFINE, dim(op.attrs["step"]) if d == ax else 1,
             dim(op.attrs["start"]) if d == ax else 0, x.shape[d]) for d in range(len(x.shape))]
    return remap(lw, op, x, dims)


@rule("flip")
def _flip(lw, op, args):
    x = args[0]
    st = strides(x.shape)
    axes = {a % max(len(x.shape), 1) for a in op.attrs["axes"]}
    return remap(lw, op, x, [(n, st[d], AFFINE, -1 if d in axes else 1, n - 1 if d in axes else 0, n)
                             for d, n in enumerate(x.shape)])


@rule("broadcast_to")
def _broadcast_to(lw, op, args):
    x = args[0]
    out = shape_of(op.results[0].type)
    lead = len(out) - len(x.shape)
    st = [0] * lead + strides(x.shape)
    src = (1,) * lead + tuple(x.shape)
    return remap(lw, op, x, [(n, st[d] if src[d] != 1 else 0, AFFINE, 1, 0, max1(n)) if src[d] == n
                             else (n, 0, AFFINE, 0, 0, 1) for d, n in enumerate(out)])


@rule("tile")
def _tile(lw, op, args):
    x = args[0]
    out = shape_of(op.results[0].type)
    lead = len(out) - len(x.shape)
    src = (1,) * lead + tuple(x.shape)
    st = [0] * lead + strides(x.shape)
    return remap(lw, op, x, [(n, st[d], WRAP, 1, 0, max1(src[d])) for d, n in enumerate(out)])


@rule("roll")
def _roll(lw, op, args):
    x = args[0]
    st = strides(x.shape)
    shift = [0] * len(x.shape)
    for s, a in zip(op.attrs["shifts"], op.attrs["axes"]):
        shift[a % len(x.shape)] += s
    return remap(lw, op, x, [(n, st[d], WRAP, 1, shift[d], max1(n)) for d, n in enumerate(x.shape)])


_PAD_KIND = {PadMode.REFLECT: REFLECT, PadMode.REPLICATE: CLAMP, PadMode.CIRCULAR: WRAP}


@rule("pad")
def _pad(lw, op, args):
    x = args[0]
    st = strides(x.shape)
    out = shape_of(op.results[0].type)
    widths = pad_widths(op.attrs["pads"], len(x.shape))
    mode = op.attrs["mode"]
    if mode is PadMode.CONSTANT:
        dims = [(out[d], st[d], AFFINE, 1, -lo, x.shape[d]) for d, (lo, hi) in enumerate(widths)]
    else:
        dims = [(out[d], st[d], _PAD_KIND[mode], 1, lo, x.shape[d]) for d, (lo, hi) in enumerate(widths)]
    return remap(lw, op, x, dims, fill=op.attrs["value"] if x.dtype.is_float else int(op.attrs["value"]))


@rule("concat")
def _concat(lw, op, args):
    y = lw.out(op)
    ax = op.attrs["axis"] % len(y.shape)
    rows = prod(y.shape[:ax])
    ld = prod(y.shape[ax:])
    col = 0
    for x in args:
        cols = prod(x.shape[ax:])
        if cols and rows:
            lw.emit(f"xc_place<{y.sty}>({y.ptr}, {x.ptr}, {rows}, {cols}, {ld}, {col});")
        col += cols
    return [y]


def _tri(lower: bool):
    def lower_tri(lw, op, args):
        x = args[0]
        y = lw.out(op)
        rows, cols = x.shape[-2], x.shape[-1]
        batch = prod(x.shape[:-2])
        lw.emit(f"xc_tri<{y.sty}>({y.ptr}, {x.ptr}, {batch}, {rows}, {cols}, {op.attrs['diagonal']}, "
                f"{'true' if lower else 'false'});")
        return [y]
    return lower_tri


rule("tril")(_tri(True))
rule("triu")(_tri(False))
