"""The `mx.fast` primitives, as GPU builds report them (CPU builds run their fallbacks and report the
ops those are made of): RMSNorm, LayerNorm, RoPE and ScaledDotProductAttention.

RMSNorm and LayerNorm map to the IR norms, attention to `xc.sdpa`; RoPE has no IR op and becomes the
same composition as MLX's own fallback (positions, inverse frequencies, cos/sin, rotated halves).
"""
from __future__ import annotations

import math

import numpy as np

from xcomp.frontends.mlx.table import Unsupported, primitive
from xcomp.ir.types import DType


@primitive("RMSNorm", "rms_norm")
def rms_norm(cx, inputs, args):
    x, w = inputs
    dt = x.type.dtype
    if w.type.rank == 0:
        w = cx.op("broadcast_to", cx.cast(w, dt), shape=tuple(x.type.shape[-1:]))
    return [cx.op("rms_norm", x, cx.cast(w, dt), normalized_ndim=1, eps=float(args[-1]))]


@primitive("LayerNorm", "layer_norm")
def layer_norm(cx, inputs, args):
    x, params = inputs[0], list(inputs[1:])
    dt = x.type.dtype
    params = [cx.op("broadcast_to", cx.cast(p, dt), shape=tuple(x.type.shape[-1:])) if p.type.rank == 0
              else cx.cast(p, dt) for p in params]
    return [cx.op("layer_norm", x, *params, normalized_ndim=1, eps=float(args[-1]))]


def _positions(cx, x4, offset, scale):
    """scale * (arange(T) + offset) in float32, shaped to broadcast against x4's (B, N, T) dims."""
    T = x4.type.shape[2]
    pos = cx.op("arange", start=0, end=T, step=1, dtype=DType.F32)
    off = cx.cast(offset, DType.F32)
    if off.type.numel > 1:
        off = cx.reshape(off, (off.type.numel, 1, 1))
    elif off.type.rank:
        off = cx.reshape(off, ())
    pos = cx.op("add", pos, off)
    return cx.op("mul", pos, cx.const(scale, DType.F32))


def _inverse_frequencies(cx, inputs, dims: int, base: float):
    """1 / freqs when given, else base ** (-i / (dims / 2)) for i < dims / 2 (MLX's default)."""
    if len(inputs) > 2:
        return cx.op("reciprocal", cx.cast(inputs[2], DType.F32))
    half = dims // 2
    return cx.array(np.exp(np.arange(0, -half, -1) * (math.log(base) / half)).astype(np.float32), DType.F32)


def _rotate(cx, x4, cos, sin, dims: int, traditional: bool, forward: bool):
    """The first `dims` features of x4 rotated in pairs (interleaved when `traditional`, else halves)."""
    B, N, T, D = x4.type.shape
    half = dims // 2
    step, starts = (2, (0, 1)) if traditional else (1, (0, half))
    ends = (dims, dims) if traditional else (half, dims)
    x1, x2 = (cx.op("slice", x4, axis=3, start=s, end=e, step=step) for s, e in zip(starts, ends))
    mul = lambda a, b: cx.op("mul", a, b)  # noqa: E731
    if forward:
        outs = [cx.op("sub", mul(x1, cos), mul(x2, sin)), cx.op("add", mul(x1, sin), mul(x2, cos))]
    else:
        outs = [cx.op("add", mul(x2, sin), mul(x1, cos)), cx.op("sub", mul(x2, cos), mul(x1, sin))]
    if traditional:  # interleave the pairs back
        outs = [cx.reshape(o, (B, N, T, half, 1)) for o in outs]
        outs = [cx.reshape(cx.op("concat", *outs, axis=4), (B, N, T, dims))]
    if dims < D:
        outs.append(cx.op("slice", x4, axis=3, start=dims, end=D))
    return cx.op("concat", *outs, axis=3) if len(outs) > 1 else outs[0]


@primitive("RoPE", "arange, add, mul, cos, sin, slice, sub, concat, reshape")
def rope(cx, inputs, args):
    dims, traditional, base, scale = args[:4]
    forward = args[4] if len(args) > 4 else True
    x, offset = inputs[0], inputs[1]
    shape = tuple(x.type.shape)
    if x.type.rank < 3:
        raise Unsupported("RoPE of an input with fewer than 3 dims")
    lead = int(np.prod(shape[1:-2], dtype=np.int64))  # as MLX: (B, heads..., T, D) -> (B, N, T, D)
    x4 = cx.reshape(x, (shape[0], lead, shape[-2], shape[-1]))
    pos = _positions(cx, x4, offset, scale)
    theta = cx.op("mul", cx.reshape(pos, tuple(pos.type.shape) + (1,)), _inverse_frequencies(cx, inputs, dims, base))
    cos, sin = (cx.cast(cx.op(f, theta), x.type.dtype) for f in ("cos", "sin"))
    return [cx.reshape(_rotate(cx, x4, cos, sin, dims, traditional, forward), shape)]


def bottom_right_causal(q_len: int, k_len: int) -> np.ndarray:
    """MLX's causal mask: query i sees keys j <= i + (k_len - q_len) (aligned at the bottom right)."""
    offset = max(k_len - q_len, 0)
    return np.arange(q_len)[:, None] + offset >= np.arange(k_len)[None, :]


@primitive("ScaledDotProductAttention", "sdpa")
def sdpa(cx, inputs, args):
    scale, causal = float(args[0]), bool(args[1])
    has_sinks = bool(args[2]) if len(args) > 2 else False
    if has_sinks:
        raise Unsupported("attention sinks")
    if len(args) > 3 and args[3]:
        raise Unsupported("attention returning its logsumexp (training)")
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    gqa = q.type.shape[-3] != k.type.shape[-3]
    q_len, k_len = q.type.shape[-2], k.type.shape[-2]
    if causal and q_len != k_len:
        mask = cx.array(bottom_right_causal(q_len, k_len), DType.BOOL)
        causal = False
    operands = [q, k, v] + ([mask] if mask is not None else [])
    return [cx.op("sdpa", *operands, scale=scale, is_causal=causal, enable_gqa=gqa)]
