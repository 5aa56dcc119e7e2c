"""C++ rules of gathers and scatters (take, gather, scatter, index, index_put) and sorting (sort,
topk). Negative indices count from the end; an index out of range fails the run with a message."""
from __future__ import annotations

from xcomp.backends.cpp.fused import cindex
from xcomp.backends.cpp.lower import Buf, rule, shape_of
from xcomp.backends.cpp.views import strides
from xcomp.backends.cpp.sizes import broadcast_shapes, broadcast_strides, ir_dims, prod
from xcomp.ir.types import DType, TensorType
from xcomp.ops.indexing import ScatterReduce, index_result_shape


def _ints(lw, values, ctype="int64_t") -> str:
    name = lw.fresh("c")
    vals = list(values) or [0]
    lw.const_table(f"static const {ctype} {name}[{len(vals)}] = {{{', '.join(map(str, vals))}}};")
    return name


def _fail_unless(lw, call: str, what: str) -> None:
    lw.emit(f"if (!{call}) return xc_fail(m, \"{what}: index out of range\");")


@rule("take")
def _take(lw, op, args):
    x, idx = args
    y = lw.out(op)
    ax = op.attrs["axis"] % len(x.shape)
    outer = prod(x.shape[:ax])
    inner = prod(x.shape[ax + 1:])
    if y.numel:
        _fail_unless(lw, f"xc_take<{y.sty}>({y.ptr}, {x.ptr}, {idx.ptr}, {outer}, {x.shape[ax]}, {inner}, {idx.numel})",
                     "xc.take")
    return [y]


@rule("gather")
def _gather(lw, op, args):
    x, idx = args
    y = lw.out(op)
    if not y.numel:
        return [y]
    ax = op.attrs["axis"] % len(x.shape)
    _fail_unless(lw, f"xc_gather<{y.sty}>({y.ptr}, {x.ptr}, {idx.ptr}, {len(idx.shape)}, {_ints(lw, idx.shape)}, "
                     f"{_ints(lw, strides(x.shape))}, {ax}, {x.shape[ax]})", "xc.gather")
    return [y]


_SCATTER = {ScatterReduce.NONE: "XC_S_NONE", ScatterReduce.ADD: "XC_S_ADD", ScatterReduce.MULTIPLY: "XC_S_MUL",
            ScatterReduce.AMAX: "XC_S_MAX", ScatterReduce.AMIN: "XC_S_MIN", ScatterReduce.MEAN: "XC_S_MEAN"}


@rule("scatter")
def _scatter(lw, op, args):
    x, idx, src = args
    y = lw.out(op)
    lw.copy(y, x)
    if not idx.numel:
        return [y]
    ax = op.attrs["axis"] % len(x.shape)
    count = lw.scratch(DType.I64, (x.numel,), "cnt")
    touched = lw.scratch(DType.U8, (x.numel,), "seen")
    _fail_unless(lw, f"xc_scatter<{y.sty}>({y.ptr}, {idx.ptr}, {src.ptr}, {len(idx.shape)}, {_ints(lw, idx.shape)}, "
                     f"{_ints(lw, strides(src.shape))}, {_ints(lw, strides(x.shape))}, {ax}, {x.shape[ax]}, "
                     f"{x.numel}, {_SCATTER[op.attrs['reduce']]}, {'true' if op.attrs['include_self'] else 'false'}, "
                     f"{count.ptr}, (char*){touched.ptr})", "xc.scatter")
    return [y]


def _index_setup(lw, x: Buf, idx: list[Buf], axes) -> tuple[str, str, tuple]:
    """The index geometry (static) and int64 copies of the indices broadcast to one shape."""
    axes = [a % len(x.shape) for a in axes]
    bshape = broadcast_shapes(*[tuple(i.shape) for i in idx])
    B = prod(bshape)
    ptrs = []
    for i in idx:
        t = lw.scratch(DType.I64, bshape, "ix")
        e = cindex(list(bshape), broadcast_strides(tuple(i.shape), bshape), "p")
        lw.emit(f"for (int64_t p = 0; p < {B}; ++p) {t.ptr}[p] = (int64_t){i.ptr}[{e}];")
        ptrs.append(t.ptr)
    arr = lw.fresh("ixp")
    lw.emit(f"int64_t* {arr}[{len(ptrs)}] = {{{', '.join(ptrs)}}};")
    rest = [d for d in range(len(x.shape)) if d not in axes]
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    nlead = axes[0] if adjacent else 0
    pad = lambda v: ", ".join(str(t) for t in (list(v) + [0] * (12 - len(v))))
    geom = lw.fresh("ixg")
    lw.const_table(f"static const xc_index_geom {geom} = {{{len(x.shape)}, {len(axes)}, {nlead}, {B}, "
                      f"{{{pad(x.shape)}}}, {{{pad(strides(x.shape))}}}, {{{pad(axes)}}}, {{{pad(rest)}}}}};")
    target = index_result_shape(TensorType(ir_dims(x.shape), x.dtype), [ir_dims(i.shape) for i in idx], axes)
    return geom, arr, tuple(shape_of(TensorType(tuple(target), x.dtype)))


@rule("index")
def _index(lw, op, args):
    x, idx = args[0], args[1:]
    y = lw.out(op)
    if not y.numel:
        return [y]
    geom, arr, _ = _index_setup(lw, x, idx, op.attrs["axes"])
    _fail_unless(lw, f"xc_index_walk<{y.sty}>({geom}, {arr}, [&](int64_t p, int64_t off) {{ {y.ptr}[p] = {x.ptr}[off]; }})",
                 "xc.index")
    return [y]


@rule("index_put")
def _index_put(lw, op, args):
    x, v, idx = args[0], args[1], args[2:]
    y = lw.out(op)
    lw.copy(y, x)
    geom, arr, target = _index_setup(lw, x, idx, op.attrs["axes"])
    if prod(target) == 0:
        return [y]
    e = cindex(list(target), broadcast_strides(tuple(v.shape), target), "p")
    if op.attrs["accumulate"]:
        body = f"{y.ptr}[off] = xc_from<{y.sty}>(xc_val({y.ptr}[off]) + xc_val({v.ptr}[{e}]));"
    else:
        body = f"{y.ptr}[off] = {v.ptr}[{e}];"
    _fail_unless(lw, f"xc_index_walk<{y.sty}>({geom}, {arr}, [&](int64_t p, int64_t off) {{ {body} }})", "xc.index_put")
    return [y]


def _sort(lw, op, args, k: int, descending: bool):
    x = args[0]
    vals, ids = lw.out(op, 0), lw.out(op, 1)
    if not x.shape:
        lw.copy(vals, x)
        lw.emit(f"{ids.ptr}[0] = 0;")
        return [vals, ids]
    ax = op.attrs["axis"] % len(x.shape)
    outer = prod(x.shape[:ax])
    inner = prod(x.shape[ax + 1:])
    if vals.numel:
        order = lw.scratch(DType.I64, (x.shape[ax],), "ord")
        lw.emit(f"xc_sort<{x.sty}>({vals.ptr}, {ids.ptr}, {x.ptr}, {outer}, {x.shape[ax]}, {inner}, {k}, "
                f"{'true' if descending else 'false'}, {order.ptr});")
    return [vals, ids]


@rule("sort")
def _sort_rule(lw, op, args):
    n = args[0].shape[op.attrs["axis"] % len(args[0].shape)] if args[0].shape else 1
    return _sort(lw, op, args, n, op.attrs["descending"])


@rule("topk")
def _topk(lw, op, args):
    return _sort(lw, op, args, op.attrs["k"], op.attrs["largest"])
