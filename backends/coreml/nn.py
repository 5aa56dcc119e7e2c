"""Core ML lowerings of linear algebra and nn ops: matmul, conv, norms, softmax, pooling.

MIL's fused ops (`layer_norm`, `batch_norm`, `softmax`, `conv` with bias) are used where their
parameters are constants, as MIL requires; otherwise the op is written out in MIL arithmetic.
"""
from __future__ import annotations

import math

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import as_dtype
from xcomp.backends.coreml.table import lowers, mil_dtype, scalar_like, unsupported
from xcomp.ops.linalg import conv_geometry
from xcomp.ops.pooling import adaptive_bounds, pool_geometry, pool_out_size
from xcomp.backends.coreml.shape import slice_axis


def is_const(v) -> bool:
    return v.val is not None


@lowers("matmul")
def _matmul(args, attrs, out):
    """A 1-d operand as torch treats it (a row of x, a column of y), made 2-d for MIL's matmul,
    whose type inference wants both ranks >= 2, and squeezed back."""
    a, b = (as_dtype(v, mil_dtype(out[0])) for v in args)
    squeeze = []
    if a.rank == 1:
        a, squeeze = mb.expand_dims(x=a, axes=[0]), squeeze + [-2]
    if b.rank == 1:
        b, squeeze = mb.expand_dims(x=b, axes=[-1]), squeeze + [-1]
    y = mb.matmul(x=a, y=b, transpose_x=attrs["transpose_a"], transpose_y=attrs["transpose_b"])
    if len(squeeze) == 2:   # vector . vector: a 0-d result (reshape: squeeze to rank 0 is mistyped)
        return mb.reshape(x=y, shape=np.array([], np.int32))
    return mb.squeeze(x=y, axes=squeeze) if squeeze else y


def _batched(x, spatial: int):
    """(x with a batch dim, whether one was added) for ops MIL defines on (N, C, *spatial)."""
    if x.rank == spatial + 1:
        return mb.expand_dims(x=x, axes=[0]), True
    return x, False


def _unbatch(y, added: bool):
    return mb.squeeze(x=y, axes=[0]) if added else y


@lowers("conv")
def _conv(args, attrs, out):
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    nsp = w.rank - 2
    stride, lo, hi, dil, _ = conv_geometry(attrs, nsp)
    x, added = _batched(x, nsp)
    pad = [p for pair in zip(lo, hi) for p in pair]
    kw = {"bias": bias} if bias is not None and is_const(bias) else {}
    if attrs["transposed"]:
        shape = out[0].shape if not added else (1,) + tuple(out[0].shape)
        symbolic = any(isinstance(d, str) for d in shape)   # output_shape must be constant: left to MIL
        y = mb.conv_transpose(x=x, weight=w, strides=list(stride), pad_type="custom", pad=pad,
                              dilations=list(dil), groups=attrs["groups"],
                              **({} if symbolic else {"output_shape": np.array(shape, np.int32)}), **kw)
        if symbolic and list(y.shape[2:]) != list(shape[2:]):
            raise unsupported("conv", f"transposed with output padding over symbolic sizes ({shape})")
    else:
        y = mb.conv(x=x, weight=w, strides=list(stride), pad_type="custom", pad=pad,
                    dilations=list(dil), groups=attrs["groups"], **kw)
    if bias is not None and not kw:
        y = mb.add(x=y, y=mb.reshape(x=bias, shape=[1, -1] + [1] * nsp))
    return _unbatch(y, added)


@lowers("softmax")
def _softmax(args, attrs, out):
    x = args[0]
    if x.rank == 0:   # 1 (NaN for an infinite or NaN x): MIL's softmax over one element
        one = mb.softmax(x=mb.reshape(x=x, shape=np.array([1], np.int32)), axis=0)
        return mb.reshape(x=one, shape=np.array([], np.int32))
    return mb.softmax(x=x, axis=attrs["axis"] % x.rank)


def _affine(y, params, rank_tail: int):
    """y * weight + bias for the optional parameters (each of shape y.shape[-rank_tail:])."""
    if len(params) > 0:
        y = mb.mul(x=y, y=params[0])
    if len(params) > 1:
        y = mb.add(x=y, y=params[1])
    return y


@lowers("sdpa", since="iOS18")
def _sdpa(args, attrs, out):
    """MIL's fused attention (iOS 18): softmax(q k^T / sqrt(E) + mask) v; another scale multiplies q
    first. torch's causal and grouped-query forms are decomposed (the builder raises only plain ones)."""
    q, k, v, *mask = args
    if attrs["is_causal"] or attrs["enable_gqa"]:
        raise unsupported("sdpa", "is_causal / enable_gqa on MIL's scaled_dot_product_attention")
    scale, e = attrs["scale"], q.shape[-1]
    if scale is not None and abs(scale * math.sqrt(e) - 1.0) > 1e-7:
        q = mb.mul(x=q, y=scalar_like(scale * math.sqrt(e), q))
    kw = {"attn_mask": mask[0]} if mask else {}
    return mb.scaled_dot_product_attention(query=q, key=k, value=v, **kw)


@lowers("layer_norm")
def _layer_norm(args, attrs, out):
    x, params = args[0], list(args[1:])
    n = attrs["normalized_ndim"]
    axes = list(range(x.rank - n, x.rank))
    eps = scalar_like(attrs["eps"], x)
    if all(is_const(p) for p in params):
        kw = dict(zip(("gamma", "beta"), params))
        return mb.layer_norm(x=x, axes=axes, epsilon=eps, **kw)
    return _affine(mb.layer_norm(x=x, axes=axes, epsilon=eps), params, n)


@lowers("batch_norm")
def _batch_norm(args, attrs, out):
    x, mean, var, params = args[0], args[1], args[2], list(args[3:])
    eps = float(attrs["eps"])
    if x.rank in (3, 4, 5) and all(is_const(p) for p in [mean, var] + params):
        kw = dict(zip(("gamma", "beta"), params))
        return mb.batch_norm(x=x, mean=mean, variance=var, epsilon=eps, **kw)
    shape = [1, -1] + [1] * (x.rank - 2)
    r = lambda v: mb.reshape(x=v, shape=shape)  # noqa: E731
    y = mb.real_div(x=mb.sub(x=x, y=r(mean)), y=mb.sqrt(x=mb.add(x=r(var), y=scalar_like(eps, x))))
    if params:
        y = mb.mul(x=y, y=r(params[0]))
    if len(params) > 1:
        y = mb.add(x=y, y=r(params[1]))
    return y


def _pool(kind: str):
    def rule(args, attrs, out):
        k, s, p, d = pool_geometry(attrs, kind)
        if attrs.get("with_indices"):
            raise unsupported(kind, "indices of the maxima (Core ML's max_pool returns values only)")
        if any(v != 1 for v in d):
            raise unsupported(kind, "dilated pooling")
        x, added = _batched(args[0], len(k))
        n = x.shape[2:]
        ceil = attrs["ceil_mode"] and any(pool_out_size(a, kk, ss, pp, 1, True) != pool_out_size(a, kk, ss, pp, 1, False)
                                          for a, kk, ss, pp in zip(n, k, s, p))
        pad = [v for pp in p for v in (pp, pp)]
        common = dict(x=x, kernel_sizes=list(k), strides=list(s), pad_type="custom", pad=pad, ceil_mode=ceil)
        if kind == "max_pool":
            y = mb.max_pool(**common)
        else:
            exclude = not attrs["count_include_pad"] and not attrs["divisor_override"]
            y = mb.avg_pool(exclude_padding_from_average=exclude, **common)
            if attrs["divisor_override"]:
                if ceil:
                    raise unsupported(kind, "divisor_override with ceil-mode edge windows")
                y = mb.mul(x=y, y=scalar_like(float(np.prod(k)) / attrs["divisor_override"], y))
        return _unbatch(y, added)
    return rule


lowers("max_pool")(_pool("max_pool"))
lowers("avg_pool")(_pool("avg_pool"))


def _adaptive(reduce: str):
    def rule(args, attrs, out):
        if attrs.get("with_indices"):
            raise unsupported("adaptive_max_pool", "indices of the maxima")
        x, sizes = args[0], attrs["output_size"]
        whole = [a for a, size in zip(range(x.rank - len(sizes), x.rank), sizes)
                 if size == 1 and x.shape[a] != 1]   # global pooling: one reduce over those axes
        if whole:
            x = getattr(mb, reduce)(x=x, axes=whole, keep_dims=True)
        for i, size in enumerate(sizes):
            axis = x.rank - len(sizes) + i
            n = x.shape[axis]
            if n == size:
                continue
            parts = [getattr(mb, reduce)(x=slice_axis(x, axis, lo, hi), axes=[axis], keep_dims=True)
                     for lo, hi in adaptive_bounds(n, size)]
            x = mb.concat(values=parts, axis=axis) if len(parts) > 1 else parts[0]
        return x
    return rule


lowers("adaptive_avg_pool")(_adaptive("reduce_mean"))
lowers("adaptive_max_pool")(_adaptive("reduce_max"))
