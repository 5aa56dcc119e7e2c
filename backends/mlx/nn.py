"""MLX lowerings of softmax, normalizations and attention (mx.fast kernels where they match).

`mx.fast.layer_norm`/`rms_norm` normalize the last axis, so several normalized dims are flattened
into one around the call. `mx.fast.scaled_dot_product_attention` takes 4-D (B, H, L, D) operands
and aligns its "causal" mask at the bottom right, so other ranks, and causal masks with L != S,
use the composed form or an explicit top-left mask.
"""
from __future__ import annotations

import math

import mlx.core as mx

from xcomp.backends.mlx.table import lowers
from xcomp.ops.nn import causal_mask


@lowers("softmax")
def _softmax(args, a, out):
    x = args[0]
    return mx.softmax(x, axis=a["axis"], precise=True) if x.ndim else mx.ones_like(x)


@lowers("log_softmax")
def _log_softmax(args, a, out):
    x = args[0]
    if x.ndim == 0 or x.size == 0:
        return mx.zeros_like(x)
    return x - mx.logsumexp(x, axis=a["axis"], keepdims=True)


def _flat_last(fast, x, params, n, eps):
    """Call a last-axis mx.fast norm on x with its last n dims (and the params) flattened."""
    if x.ndim == 0 or n == 1:
        return fast(x, *params, eps)
    shape = x.shape
    flat = x.reshape(shape[:len(shape) - n] + (-1,))
    return fast(flat, *[p.reshape(-1) if p is not None else None for p in params], eps).reshape(shape)


@lowers("layer_norm")
def _layer_norm(args, a, out):
    x, params = args[0], list(args[1:]) + [None] * (3 - len(args))
    return _flat_last(mx.fast.layer_norm, x, params, a["normalized_ndim"], a["eps"])


@lowers("rms_norm")
def _rms_norm(args, a, out):
    x, params = args[0], list(args[1:]) + [None] * (2 - len(args))
    return _flat_last(mx.fast.rms_norm, x, params, a["normalized_ndim"], a["eps"])


def _affine(y, params, shape):
    if params:
        y = y * params[0].reshape(shape)
    if len(params) > 1:
        y = y + params[1].reshape(shape)
    return y


@lowers("group_norm")
def _group_norm(args, a, out):
    x = args[0]
    n, c = x.shape[:2]
    g = x.reshape(n, a["groups"], (c // a["groups"]) * math.prod(x.shape[2:]))
    mean = mx.mean(g, axis=-1, keepdims=True)
    var = mx.var(g, axis=-1, keepdims=True)
    y = ((g - mean) * mx.rsqrt(var + a["eps"])).reshape(x.shape)
    return _affine(y, args[1:], (1, c) + (1,) * (x.ndim - 2))


@lowers("batch_norm")
def _batch_norm(args, a, out):
    x, mean, var = args[:3]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) * mx.rsqrt(var.reshape(shape) + a["eps"])
    return _affine(y, args[3:], shape)


def _combined_mask(q, k, a, mask):
    """The user's mask (bool keeps, float adds) with torch's top-left causal mask folded in."""
    if not a["is_causal"]:
        return mask
    causal = mx.array(causal_mask(q.shape[-2], k.shape[-2]))
    if mask is None:
        return causal
    if mask.dtype == mx.bool_:
        return mx.logical_and(mask, causal)
    return mx.where(causal, mask, mx.array(-math.inf, mask.dtype))


@lowers("sdpa")
def _sdpa(args, a, out):
    q, k, v = args[:3]
    mask = args[3] if len(args) == 4 else None
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(q.shape[-1])
    if q.ndim == 4 and (q.shape[1] == k.shape[1] or a["enable_gqa"]):
        if a["is_causal"] and mask is None and q.shape[-2] == k.shape[-2]:
            return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal")
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=_combined_mask(q, k, a, mask))
    if a["enable_gqa"] and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = mx.repeat(k, rep, axis=-3), mx.repeat(v, rep, axis=-3)
    s = (q * scale) @ mx.swapaxes(k, -1, -2)
    mask = _combined_mask(q, k, a, mask)
    if mask is not None:
        s = mx.where(mask, s, mx.array(-math.inf, s.dtype)) if mask.dtype == mx.bool_ else s + mask
    return mx.softmax(s, axis=-1, precise=True) @ v
