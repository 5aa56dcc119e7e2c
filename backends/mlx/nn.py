"""MLX lowerings of softmax, normalizations and attention (mx.fast kernels where they match).

`mx.fast.layer_norm`/`rms_norm` normalize the last axis, so several normalized dims are flattened
into one around the call. `mx.fast.scaled_dot_product_attention` takes 4-D (B, H, L, D) operands
and aligns its "causal" mask at the bottom right, so other ranks, and causal masks with L != S,
use the composed form or an explicit top-left mask. `gelu`, `silu`, `group_norm` and `var` have
no entry: the decompose pass writes them with ops that have one.
"""
from __future__ import annotations

import math

from xcomp.backends.mlx.table import mx  # None where MLX is missing: source emission needs no MLX

from xcomp.backends.mlx.table import Expr, choose, lowers, rule


def softmax(x, axis):
    return mx.softmax(x, axis=axis, precise=True) if x.ndim else mx.ones_like(x)


def log_softmax(x, axis):
    if x.ndim == 0 or x.size == 0:
        return mx.zeros_like(x)
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


def last_dims_norm(x, weight=None, bias=None, *, fast, slots, dims, eps):
    """A last-axis mx.fast norm (`fast`, taking `slots` parameters) over the last `dims` dims of x
    (flattened into one)."""
    params = [weight, bias][:slots]
    if x.ndim == 0 or dims == 1:
        return fast(x, *params, eps)
    shape = x.shape
    flat = x.reshape(shape[:len(shape) - dims] + (-1,))
    return fast(flat, *[p.reshape(-1) if p is not None else None for p in params], eps).reshape(shape)


def batch_norm(x, mean, var, weight=None, bias=None, *, eps):
    """Inference batch norm over axis 1 with running statistics."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) * mx.rsqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def causal_keep(q, k, mask, is_causal):
    """The user's mask (bool keeps, float adds) with torch's top-left causal mask folded in."""
    if not is_causal:
        return mask
    causal = mx.tril(mx.ones((q.shape[-2], k.shape[-2]), dtype=mx.bool_))
    if mask is None:
        return causal
    if mask.dtype == mx.bool_:
        return mx.logical_and(mask, causal)
    return mx.where(causal, mask, mx.array(-math.inf, mask.dtype))


def sdpa(q, k, v, mask=None, *, scale, is_causal, enable_gqa):
    """torch's scaled_dot_product_attention (scale None: 1/sqrt(head dim))."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    if q.ndim == 4 and (q.shape[1] == k.shape[1] or enable_gqa):
        if is_causal and mask is None and q.shape[-2] == k.shape[-2]:
            return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal")
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=causal_keep(q, k, mask, is_causal))
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k, v = mx.repeat(k, rep, axis=-3), mx.repeat(v, rep, axis=-3)
    s = (q * scale) @ mx.swapaxes(k, -1, -2)
    mask = causal_keep(q, k, mask, is_causal)
    if mask is not None:
        s = mx.where(mask, s, mx.array(-math.inf, s.dtype)) if mask.dtype == mx.bool_ else s + mask
    return mx.softmax(s, axis=-1, precise=True) @ v


_SOFTMAX = rule("softmax", lambda a, ins, outs: {"axis": a["axis"], "precise": True})
_SOFTMAX_ANY_RANK = rule(softmax, lambda a, ins, outs: {"axis": a["axis"]})
choose("softmax", lambda a, ins, outs: _SOFTMAX if ins[0].ndim else _SOFTMAX_ANY_RANK, (_SOFTMAX, _SOFTMAX_ANY_RANK))
lowers("log_softmax", log_softmax, lambda a, ins, outs: {"axis": a["axis"]})
def _norm(fast: str, slots: int):
    """mx.fast.<fast> itself over the last axis; the flattening helper over several."""
    plain = rule(fast, lambda a, ins, outs: {"eps": a["eps"]}, operands=lambda args: args + [None] * (1 + slots - len(args)))
    general = rule(last_dims_norm, lambda a, ins, outs: {
        "fast": Expr(f"mx.{fast}"), "slots": slots, "dims": a["normalized_ndim"], "eps": a["eps"]})
    return (lambda a, ins, outs: plain if ins[0].ndim and a["normalized_ndim"] == 1 else general), (plain, general)


choose("layer_norm", *_norm("fast.layer_norm", 2))
choose("rms_norm", *_norm("fast.rms_norm", 1))
lowers("batch_norm", batch_norm, lambda a, ins, outs: {"eps": a["eps"]})
lowers("sdpa", sdpa, lambda a, ins, outs: {"scale": a["scale"], "is_causal": a["is_causal"],
                                            "enable_gqa": a["enable_gqa"]})
