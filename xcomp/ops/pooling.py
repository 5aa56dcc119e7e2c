"""Pooling ops of the nn family: max_pool, avg_pool (N-d, torch semantics incl. ceil_mode,
count_include_pad, divisor_override) and adaptive_avg_pool / adaptive_max_pool.

Each pools the last `len(kernel)` (or `len(output_size)`) dims; at least one leading (channel) dim
is required. An empty `stride` means the kernel size. Per-dim attributes given as one value apply to
every pooled dim.
"""
from __future__ import annotations

import itertools

import numpy as np

from xcomp import guards
from xcomp.ir import symbolic as sym
from xcomp.ir.types import DType, TensorType
from xcomp.ops.registry import AttrKind, Trait, attr, define, req

PURE = Trait.PURE


def pool_geometry(a, name: str):
    """(kernel, stride, padding, dilation) as per-dim tuples from a pooling op's attrs."""
    k = tuple(a["kernel"])
    nsp = len(k)

    def per_dim(v, what, default):
        v = tuple(v) if v else default
        v = v * nsp if len(v) == 1 else v
        if len(v) != nsp:
            raise ValueError(f"xc.{name}: {what} has {len(v)} values for a {nsp}-d kernel")
        return v
    return (k, per_dim(a["stride"], "stride", k), per_dim(a["padding"], "padding", (0,)),
            per_dim(a.get("dilation", (1,)), "dilation", (1,)))


def pool_out_size(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """torch's pooling output size (a ceil-mode window must start inside the padded input)."""
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def _pool_infer(name, float_only):
    def infer(types, a):
        (x,) = types
        if not isinstance(x, TensorType) or x.dtype.is_bool or (float_only and not x.dtype.is_float):
            raise TypeError(f"xc.{name} needs a {'floating-point' if float_only else 'numeric'} tensor, got {x}")
        k, s, p, d = pool_geometry(a, name)
        nsp = len(k)
        if nsp < 1 or x.rank < nsp + 1:
            raise TypeError(f"xc.{name}: a {nsp}-d kernel needs a tensor of rank >= {nsp + 1}, got {x}")
        out = []
        for i in range(nsp):
            n = x.shape[x.rank - nsp + i]
            if isinstance(n, str) and a["ceil_mode"]:
                raise TypeError(f"xc.{name} with ceil_mode needs static pooled dims, got {x}")
            if k[i] < 1 or s[i] < 1 or d[i] < 1 or p[i] < 0 or 2 * p[i] > k[i]:
                raise ValueError(f"xc.{name}: bad window kernel={k} stride={s} padding={p} dilation={d}")
            if isinstance(n, str):  # floor mode stays affine: (n + 2p - d(k-1) - 1) // s + 1
                guards.require(n, ">=", d[i] * (k[i] - 1) + 1 - 2 * p[i], f"xc.{name} window over {n}")
                out.append(sym.add(sym.floordiv(sym.add(n, 2 * p[i] - d[i] * (k[i] - 1) - 1), s[i]), 1))
                continue
            o = pool_out_size(n, k[i], s[i], p[i], d[i], a["ceil_mode"])
            if o < 1:
                raise ValueError(f"xc.{name}: output size {o} along pooled dim {i} is not positive")
            out.append(o)
        y = TensorType(x.shape[:x.rank - nsp] + tuple(out), x.dtype)
        return [y, y.with_dtype(DType.I64)] if a.get("with_indices") else [y]
    return infer


def pool_windows(x: np.ndarray, a, name: str, fill):
    """A view (lead..., out..., kernel...) of the padded input's pooling windows."""
    k, s, p, d = pool_geometry(a, name)
    nsp = len(k)
    lead = x.ndim - nsp
    outs = [pool_out_size(x.shape[lead + i], k[i], s[i], p[i], d[i], a["ceil_mode"]) for i in range(nsp)]
    pads = [(0, 0)] * lead
    for i in range(nsp):
        need = (outs[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1
        pads.append((p[i], max(0, need - x.shape[lead + i] - p[i])))
    xp = np.pad(x, pads, constant_values=fill)
    span = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
    v = np.lib.stride_tricks.sliding_window_view(xp, span, axis=tuple(range(lead, x.ndim)))
    v = v[(Ellipsis,) + tuple(slice(None, None, dd) for dd in d)]
    sel = tuple(slice(0, (o - 1) * ss + 1, ss) for o, ss in zip(outs, s))
    return v[(slice(None),) * lead + sel]


def pool_offsets(x_shape, a, name: str, out_shape):
    """Padding per dim and, for each kernel offset, the strided index selecting its window elements.

    Shared by the numpy reference and the MLX lowering: output element o takes, at kernel offset
    k, padded input element o*stride + k*dilation.
    """
    k, s, p, d = pool_geometry(a, name)
    nsp = len(k)
    lead = len(x_shape) - nsp
    outs = out_shape[lead:]
    pads = [(0, 0)] * lead
    for i in range(nsp):
        need = (outs[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1
        pads.append((p[i], max(0, need - x_shape[lead + i] - p[i])))
    offsets = [(slice(None),) * lead + tuple(slice(o * d[i], o * d[i] + (outs[i] - 1) * s[i] + 1, s[i])
                                             for i, o in enumerate(offset))
               for offset in itertools.product(*(range(kk) for kk in k))]
    return pads, offsets


def flat_positions(x_shape, nsp: int) -> np.ndarray:
    """Each element's flat index within its pooled (last nsp) dims, as torch's pooling indices."""
    spatial = tuple(x_shape[len(x_shape) - nsp:])
    return np.arange(int(np.prod(spatial)), dtype=np.int64).reshape(spatial)


def _max_pool_ref(args, a, out):
    """Scan the kernel offsets in order, keeping the first maximum (the last NaN), as torch does."""
    x = args[0]
    nsp = len(a["kernel"])
    pads, offsets = pool_offsets(x.shape, a, "max_pool", out[0].shape)
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xp = np.pad(x, pads, constant_values=low)
    ip = np.pad(np.broadcast_to(flat_positions(x.shape, nsp), x.shape), pads, constant_values=-1)
    y = np.full(out[0].shape, low, x.dtype)
    idx = np.full(out[0].shape, -1, np.int64)
    for sel in offsets:
        v, i = xp[sel], ip[sel]
        with np.errstate(invalid="ignore"):
            take = (i >= 0) & ((v > y) | (idx < 0) | (np.isnan(v) if x.dtype.kind == "f" else False))
        y, idx = np.where(take, v, y), np.where(take, i, idx)
    return [y, idx] if a["with_indices"] else [y]


def avg_divisor(x_shape, a):
    """Per-output divisors of avg_pool, broadcastable over the output."""
    k, s, p, _ = pool_geometry(a, "avg_pool")
    nsp = len(k)
    div = np.ones(())
    for i in range(nsp):
        n = x_shape[len(x_shape) - nsp + i]
        o = pool_out_size(n, k[i], s[i], p[i], 1, a["ceil_mode"])
        start = np.arange(o) * s[i] - p[i]
        end = np.minimum(start + k[i], n + p[i])
        size = end - start if a["count_include_pad"] else np.minimum(end, n) - np.maximum(start, 0)
        div = np.multiply.outer(div, size.astype(np.float64))
    return div


def _avg_pool_ref(args, a, out):
    x = args[0].astype(np.float64)
    v = pool_windows(x, a, "avg_pool", 0.0)
    nsp = len(a["kernel"])
    total = v.sum(axis=tuple(range(-nsp, 0)))
    div = a["divisor_override"] if a["divisor_override"] else avg_divisor(x.shape, a)
    return [total / div]


_POOL = {"kernel": req(AttrKind.INTS), "stride": attr(AttrKind.INTS, ()), "padding": attr(AttrKind.INTS, (0,)),
         "ceil_mode": attr(AttrKind.BOOL, False)}

define("max_pool", _pool_infer("max_pool", False), _max_pool_ref, operands=1, traits=(PURE,),
       attrs={**_POOL, "dilation": attr(AttrKind.INTS, (1,)), "with_indices": attr(AttrKind.BOOL, False)},
       doc="Max over (dilated) windows; padding never wins. `with_indices` adds a second result: "
           "the i64 flat index of each maximum within the pooled dims (torch's indices).")
define("avg_pool", _pool_infer("avg_pool", True), _avg_pool_ref, operands=1, traits=(PURE,),
       attrs={**_POOL, "count_include_pad": attr(AttrKind.BOOL, True), "divisor_override": attr(AttrKind.INT)},
       doc="Mean over windows; the divisor counts padding when `count_include_pad`, or is "
           "`divisor_override` when given.")


def adaptive_bounds(n: int, o: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows: [floor(i*n/o), ceil((i+1)*n/o)) for each output i."""
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


def _adaptive_infer(name, float_only):
    def infer(types, a):
        (x,) = types
        if not isinstance(x, TensorType) or x.dtype.is_bool or (float_only and not x.dtype.is_float):
            raise TypeError(f"xc.{name} needs a {'floating-point' if float_only else 'numeric'} tensor, got {x}")
        o = tuple(a["output_size"])
        if not o or x.rank < len(o) + 1 or any(v < 1 for v in o):
            raise TypeError(f"xc.{name}: output_size {o} does not fit {x}")
        for n in x.shape[x.rank - len(o):]:
            if isinstance(n, str) or n < 1:
                raise TypeError(f"xc.{name} needs static, non-empty pooled dims, got {x}")
        y = TensorType(x.shape[:x.rank - len(o)] + o, x.dtype)
        return [y, y.with_dtype(DType.I64)] if a.get("with_indices") else [y]
    return infer


def _adaptive_ref(reduce):
    def run(args, a, out):
        if a.get("with_indices"):
            return adaptive_max_with_indices(args[0], a["output_size"])
        x = args[0].astype(np.float64) if reduce is np.mean else args[0]
        o = a["output_size"]
        for i, size in enumerate(o):
            axis = x.ndim - len(o) + i
            parts = [reduce(np.take(x, range(lo, hi), axis=axis), axis=axis, keepdims=True)
                     for lo, hi in adaptive_bounds(x.shape[axis], size)]
            x = np.concatenate(parts, axis=axis)
        return [x]
    return run


def adaptive_windows(x_shape, output_size):
    """(window index, flat input positions of its elements) for every output position, row-major."""
    nsp = len(output_size)
    spatial = tuple(x_shape[len(x_shape) - nsp:])
    positions = flat_positions(x_shape, nsp)
    bounds = [adaptive_bounds(n, o) for n, o in zip(spatial, output_size)]
    for window in itertools.product(*bounds):
        sel = tuple(slice(lo, hi) for lo, hi in window)
        yield (Ellipsis,) + sel, positions[sel].reshape(-1)


def first_max_or_last_nan(flat: np.ndarray) -> np.ndarray:
    """torch's max-pool choice along the last axis: the first maximum, or the last NaN if any."""
    nan = np.isnan(flat) if flat.dtype.kind == "f" else np.zeros(flat.shape, bool)
    last_nan = flat.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    return np.where(nan.any(axis=-1), last_nan, np.argmax(flat, axis=-1))


def adaptive_max_with_indices(x: np.ndarray, output_size) -> list[np.ndarray]:
    lead = x.shape[:x.ndim - len(output_size)]
    values, indices = [], []
    for sel, positions in adaptive_windows(x.shape, output_size):
        flat = x[sel].reshape(lead + (-1,))
        local = first_max_or_last_nan(flat)
        values.append(np.take_along_axis(flat, local[..., None], -1)[..., 0])
        indices.append(positions[local])
    shape = lead + tuple(output_size)
    return [np.stack(values, -1).reshape(shape), np.stack(indices, -1).reshape(shape)]


define("adaptive_avg_pool", _adaptive_infer("adaptive_avg_pool", True), _adaptive_ref(np.mean),
       attrs={"output_size": req(AttrKind.INTS)}, operands=1, traits=(PURE,),
       doc="Mean over torch's adaptive windows of the last len(output_size) dims.")
define("adaptive_max_pool", _adaptive_infer("adaptive_max_pool", False), _adaptive_ref(np.max),
       attrs={"output_size": req(AttrKind.INTS), "with_indices": attr(AttrKind.BOOL, False)},
       operands=1, traits=(PURE,),
       doc="Max over torch's adaptive windows of the last len(output_size) dims; `with_indices` adds "
           "the i64 flat index of each maximum within the pooled dims.")
