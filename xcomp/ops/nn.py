"""Neural-network ops: softmax, normalizations, attention (this module) and pooling (`pooling`).

Layouts are torch's (N, C, *spatial). Optional parameter operands come last and in order:
`layer_norm(x[, weight[, bias]])`, `rms_norm(x[, weight])`, `group_norm(x[, weight[, bias]])`,
`batch_norm(x, mean, var[, weight[, bias]])`, `sdpa(q, k, v[, mask])`. All need floating point.
"""
from __future__ import annotations

import math

import numpy as np

from xcomp.ir.types import DType, TensorType, broadcast_shapes
from xcomp.ops.reduction import normalize_axis
from xcomp.ops.registry import AttrKind, Trait, attr, define, req

PURE, COMPOSITE = Trait.PURE, Trait.COMPOSITE


def _floats(types, name, counts):
    if len(types) not in counts:
        raise TypeError(f"xc.{name} takes {' or '.join(map(str, counts))} operands, got {len(types)}")
    for t in types:
        if not isinstance(t, TensorType) or not t.dtype.is_float:
            raise TypeError(f"xc.{name} needs floating-point tensors, got {t}")
        if t.dtype != types[0].dtype:
            raise TypeError(f"xc.{name} needs operands of one dtype, got {[str(t) for t in types]}")


def _param_shape(types, name, first, shape):
    for t in types[first:]:
        if tuple(t.shape) != tuple(shape):
            raise TypeError(f"xc.{name}: parameter {t} should have shape {tuple(shape)}")


# -- softmax ---------------------------------------------------------------------------------------
def _softmax_infer(name):
    def infer(types, a):
        _floats(types, name, (1,))
        normalize_axis(a["axis"], types[0].rank, name)
        return [types[0]]
    return infer


def _log_softmax64(x, axis):
    x = x.astype(np.float64)
    if x.ndim == 0:
        return np.zeros_like(x)
    m = np.max(x, axis=axis, keepdims=True) if x.size else x
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


define("softmax", _softmax_infer("softmax"),
       lambda args, a, out: [np.exp(_log_softmax64(args[0], a["axis"]))],
       attrs={"axis": req(AttrKind.INT)}, traits=(PURE,), operands=1,
       doc="exp(x) / sum(exp(x)) along `axis`.")
define("log_softmax", _softmax_infer("log_softmax"),
       lambda args, a, out: [_log_softmax64(args[0], a["axis"])],
       attrs={"axis": req(AttrKind.INT)}, traits=(PURE, COMPOSITE), operands=1,
       doc="x - logsumexp(x) along `axis`.")


# -- normalizations --------------------------------------------------------------------------------
def _normalize64(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _affine(y, params, shape):
    """y * weight + bias for the optional (weight, bias) operands present."""
    if len(params) > 0:
        y = y * params[0].astype(np.float64).reshape(shape)
    if len(params) > 1:
        y = y + params[1].astype(np.float64).reshape(shape)
    return y


def _last_dims_norm_infer(name: str, operand_counts: tuple):
    """Type rule of norms over the last `normalized_ndim` dims with optional per-element params."""
    def infer(types, a):
        _floats(types, name, operand_counts)
        n = a["normalized_ndim"]
        if not 1 <= n <= types[0].rank:
            raise ValueError(f"xc.{name}: normalized_ndim {n} out of range for {types[0]}")
        _param_shape(types, name, 1, types[0].shape[-n:])
        return [types[0]]
    return infer


_layer_norm_infer = _last_dims_norm_infer("layer_norm", (1, 2, 3))
_rms_norm_infer = _last_dims_norm_infer("rms_norm", (1, 2))


def _layer_norm_ref(args, a, out):
    x = args[0].astype(np.float64)
    n = a["normalized_ndim"]
    y = _normalize64(x, tuple(range(x.ndim - n, x.ndim)), a["eps"])
    return [_affine(y, args[1:], x.shape[-n:])]


define("layer_norm", _layer_norm_infer, _layer_norm_ref, traits=(PURE,),
       attrs={"normalized_ndim": req(AttrKind.INT), "eps": attr(AttrKind.FLOAT, 1e-5)},
       doc="Normalize over the last `normalized_ndim` dims, then scale by weight and add bias.")


def _rms_norm_ref(args, a, out):
    x = args[0].astype(np.float64)
    n = a["normalized_ndim"]
    axes = tuple(range(x.ndim - n, x.ndim))
    y = x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + a["eps"])
    return [_affine(y, args[1:], x.shape[-n:])]


define("rms_norm", _rms_norm_infer, _rms_norm_ref, traits=(PURE,),
       attrs={"normalized_ndim": req(AttrKind.INT), "eps": attr(AttrKind.FLOAT, 1e-6)},
       doc="x / sqrt(mean(x^2) + eps) over the last `normalized_ndim` dims, times weight.")


def _group_norm_infer(types, a):
    _floats(types, "group_norm", (1, 2, 3))
    x = types[0]
    if x.rank < 2:
        raise TypeError(f"xc.group_norm needs (N, C, ...), got {x}")
    c = x.shape[1]
    if isinstance(c, int) and (a["groups"] < 1 or c % a["groups"]):
        raise ValueError(f"xc.group_norm: {c} channels do not split into {a['groups']} groups")
    _param_shape(types, "group_norm", 1, (c,))
    return [x]


def _group_norm_ref(args, a, out):
    x = args[0].astype(np.float64)
    n, c = x.shape[:2]
    g = x.reshape((n, a["groups"], (c // a["groups"]) * int(np.prod(x.shape[2:], dtype=np.int64))))
    y = _normalize64(g, (2,), a["eps"]).reshape(x.shape)
    return [_affine(y, args[1:], (1, c) + (1,) * (x.ndim - 2))]


define("group_norm", _group_norm_infer, _group_norm_ref, traits=(PURE,),
       attrs={"groups": req(AttrKind.INT), "eps": attr(AttrKind.FLOAT, 1e-5)},
       doc="Normalize each group of channels (with all spatial positions) per sample.")


def _batch_norm_infer(types, a):
    _floats(types, "batch_norm", (3, 4, 5))
    x = types[0]
    if x.rank < 2:
        raise TypeError(f"xc.batch_norm needs (N, C, ...), got {x}")
    _param_shape(types, "batch_norm", 1, (x.shape[1],))
    return [x]


def _batch_norm_ref(args, a, out):
    x, mean, var = (t.astype(np.float64) for t in args[:3])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + a["eps"])
    return [_affine(y, args[3:], shape)]


define("batch_norm", _batch_norm_infer, _batch_norm_ref, traits=(PURE,),
       attrs={"eps": attr(AttrKind.FLOAT, 1e-5)},
       doc="Inference batch norm with given per-channel (axis 1) mean and variance.")


# -- attention -------------------------------------------------------------------------------------
def _sdpa_infer(types, a):
    if len(types) not in (3, 4):
        raise TypeError(f"xc.sdpa takes (q, k, v[, mask]), got {len(types)} operands")
    _floats(types[:3], "sdpa", (3,))
    q, k, v = types[:3]
    if q.rank < 2 or k.rank != q.rank or v.rank != q.rank:
        raise TypeError(f"xc.sdpa needs q, k, v of one rank >= 2, got {q}, {k}, {v}")
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise TypeError(f"xc.sdpa: q {q}, k {k}, v {v} do not fit together")
    if len(types) == 4:
        m = types[3]
        if not isinstance(m, TensorType) or (m.dtype != q.dtype and m.dtype is not DType.BOOL):
            raise TypeError(f"xc.sdpa: mask must be bool or {q.dtype.value}, got {m}")
        try:
            broadcast_shapes(m.shape, q.shape[:-1] + (k.shape[-2],))
        except ValueError:
            raise TypeError(f"xc.sdpa: mask {m} does not broadcast to the scores") from None
    return [TensorType(q.shape[:-1] + v.shape[-1:], q.dtype)]


def causal_mask(length: int, source: int) -> np.ndarray:
    """torch's is_causal mask: query i sees keys j <= i (aligned at the top left)."""
    return np.tril(np.ones((length, source), dtype=bool))


def _sdpa_ref(args, a, out):
    q, k, v = (t.astype(np.float64) for t in args[:3])
    if a["enable_gqa"] and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(q.shape[-1])
    s = q @ np.swapaxes(k, -1, -2) * scale
    if a["is_causal"]:
        s = np.where(causal_mask(q.shape[-2], k.shape[-2]), s, -np.inf)
    if len(args) == 4:
        m = args[3]
        s = np.where(m, s, -np.inf) if m.dtype == np.bool_ else s + m.astype(np.float64)
    return [np.exp(_log_softmax64(s, -1)) @ v]


define("sdpa", _sdpa_infer, _sdpa_ref, traits=(PURE, COMPOSITE),
       attrs={"scale": attr(AttrKind.FLOAT), "is_causal": attr(AttrKind.BOOL, False),
              "enable_gqa": attr(AttrKind.BOOL, False)},
       doc="softmax(q @ k^T * scale + mask) @ v; scale defaults to 1/sqrt(head dim); a bool mask keeps "
           "True positions; `enable_gqa` repeats k/v heads (dim -3) to match q.")

from xcomp.ops import pooling  # noqa: E402,F401  (pooling ops register with this family)
