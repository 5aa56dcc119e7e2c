"""C++ rules of reductions, row ops and scans.

Float row ops over trailing axes (softmax, log_softmax, layer/rms norm, logsumexp, sum, mean,
amax, amin, var) are one-op row groups (fused.py's skeleton, one pass per reduction). Other axes:
softmax-like ops and var/logsumexp read a transposed copy with the axes moved last; plain
reductions over one run of axes use `xc_reduce` over (outer, n, inner) directly.
"""
from __future__ import annotations

from xcomp.backends.cpp.fused import emit_block
from xcomp.backends.cpp.lower import Buf, rule, shape_of
from xcomp.backends.cpp.sizes import ir_dims, prod
from xcomp.backends.cpp.ops_shape import AFFINE
from xcomp.backends.cpp.views import strides
from xcomp.errors import LoweringError
from xcomp.ir.core import Block, Operation
from xcomp.ir.types import TensorType
from xcomp.ops import registry

ROW = ("xc.softmax", "xc.log_softmax", "xc.layer_norm", "xc.rms_norm", "xc.logsumexp", "xc.sum",
       "xc.mean", "xc.amax", "xc.amin", "xc.var")
REDUCE = {"xc.sum": "XC_SUM", "xc.prod": "XC_PROD", "xc.amax": "XC_MAX", "xc.amin": "XC_MIN",
          "xc.all": "XC_ALL", "xc.any": "XC_ANY", "xc.mean": "XC_MEAN", "xc.argmax": "XC_ARGMAX",
          "xc.argmin": "XC_ARGMIN"}

EMPTY = {"xc.prod": "1.0", "xc.all": "1.0", "xc.mean": "NAN", "xc.var": "NAN", "xc.logsumexp": "-INFINITY",
         "xc.amax": "-INFINITY", "xc.amin": "INFINITY"}


def reduced_axes(op, rank: int) -> list[int]:
    if "normalized_ndim" in op.attrs:
        return list(range(rank - op.attrs["normalized_ndim"], rank))
    if "axis" in op.attrs:
        ax = op.attrs["axis"]
        return list(range(rank)) if ax is None else [ax % max(rank, 1)]
    return sorted({a % max(rank, 1) for a in op.attrs.get("axes", ())}) or list(range(rank))


def transposed(lw, x: Buf, perm: list[int]) -> Buf:
    """A copy of `x` with its axes in `perm` order."""
    st = strides(x.shape)
    shape = tuple(x.shape[p] for p in perm)
    t = lw.scratch(x.dtype, shape)
    name = lw.fresh("dims")
    rows = ", ".join(f"{{{x.shape[p]}, {st[p]}, {AFFINE}, 1, 0, {x.shape[p]}}}" for p in perm)
    lw.const_table(f"static const xc_dim {name}[{max(len(perm), 1)}] = {{{rows or '{1, 0, 0, 1, 0, 1}'}}};")
    lw.emit(f"xc_remap<{x.sty}>({t.ptr}, {x.ptr}, {len(perm)}, {name}, xc_from<{x.sty}>(0.0));")
    return t


def _row_group(lw, op, args, outs, x: Buf, axes: list[int]) -> None:
    """`op` as a row group over `axes` of x, moved last when they are not."""
    rank = len(x.shape)
    kept = [d for d in range(rank) if d not in axes]
    perm = kept + axes
    if perm != list(range(rank)):
        if op.name not in ("xc.softmax", "xc.log_softmax", "xc.logsumexp", "xc.var", "xc.sum",
                           "xc.mean", "xc.amax", "xc.amin"):
            raise LoweringError(f"{op.name} over leading axes")
        x = transposed(lw, x, perm)
    k = len(axes)
    body = Block([TensorType(ir_dims(x.shape), x.dtype)] + [a.type for a in op.operands[1:]])
    attrs = dict(op.attrs)
    full = op.results[0].type.shape == op.operands[0].type.shape
    if "axis" in attrs:
        attrs["axis"] = rank - 1
    if "axes" in attrs:
        attrs["axes"] = tuple(range(rank - k, rank))
        attrs["keepdim"] = False
    rtypes = [TensorType(ir_dims(x.shape if full else x.shape[:rank - k]), r.type.dtype) for r in op.results]
    inner = Operation(op.opdef, list(body.args), attrs, rtypes)
    body.append(inner)
    body.append(Operation(registry.get("yield"), list(inner.results), {}, []))
    if full and perm != list(range(rank)):
        tmp = [lw.scratch(o.dtype, x.shape) for o in outs]
        emit_block(lw, body, [x] + args[1:], tmp, op.name)
        inv = [perm.index(d) for d in range(rank)]
        for o, t in zip(outs, tmp):
            back = transposed(lw, t, inv)
            lw.copy(o, back)
    else:
        emit_block(lw, body, [x] + args[1:], [Buf(o.ptr, o.dtype, shape_of(r)) for o, r in zip(outs, rtypes)],
                   op.name)


def _contiguous_run(axes: list[int]) -> bool:
    return axes == list(range(axes[0], axes[0] + len(axes))) if axes else True


@rule(*sorted(set(ROW) | set(REDUCE)))
def _reduce(lw, op, args):
    x = args[0]
    rank = len(x.shape)
    axes = reduced_axes(op, rank)
    outs = [lw.out(op, i) for i in range(len(op.results))]
    if not x.numel:       # nothing to read: each output element is the empty reduction's value
        for o in outs:
            if o.numel:
                v = EMPTY.get(op.name, 0.0)
                lw.emit(f"xc_fill<{o.sty}>({o.ptr}, {o.numel}, xc_from<{o.sty}>((double){v}));")
        return outs
    if op.name in ROW and x.dtype.is_float:
        if not rank:   # a 0-d value is one row of one element (softmax 1, log_softmax 0, ...)
            x, axes = Buf(x.ptr, x.dtype, (1,)), [0]
        _row_group(lw, op, args, outs, x, axes)
        return outs
    if op.name not in REDUCE:
        raise LoweringError(f"{op.name} on {x.dtype.value} has no C++ rule")
    if not _contiguous_run(axes):
        kept = [d for d in range(rank) if d not in axes]
        x = transposed(lw, x, kept + axes)
        axes = list(range(len(kept), rank))
    outer = prod(x.shape[:axes[0]]) if axes else x.numel
    n = prod([x.shape[a] for a in axes]) if axes else 1
    inner = prod(x.shape[axes[-1] + 1:]) if axes else 1
    y = outs[0]
    lw.emit(f"xc_reduce<{x.sty}, {y.sty}>({y.ptr}, {x.ptr}, {outer}, {n}, {inner}, {REDUCE[op.name]});")
    return outs


def _scan(multiply: bool):
    def lower_scan(lw, op, args):
        x = args[0]
        y = lw.out(op)
        if not x.shape:
            lw.copy(y, x)
            return [y]
        ax = op.attrs["axis"] % len(x.shape)
        outer = prod(x.shape[:ax])
        inner = prod(x.shape[ax + 1:])
        lw.emit(f"xc_scan<{y.sty}>({y.ptr}, {x.ptr}, {outer}, {x.shape[ax]}, {inner}, {'true' if multiply else 'false'});")
        return [y]
    return lower_scan


rule("cumsum")(_scan(False))
rule("cumprod")(_scan(True))
