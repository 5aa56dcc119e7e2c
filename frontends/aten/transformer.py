"""The fast-path ops of `nn.TransformerEncoderLayer` / `nn.MultiheadAttention` as IR compositions.

Scripted encoder layers call `aten::_transformer_encoder_layer_fwd` (and attention
`aten::_native_multi_head_attention`) when their fast-path checks pass, as they do at inference.
Masks follow those kernels: `mask_type` 0 is an attention mask [T, S], 1 a key padding mask [B, S],
2 a merged mask [B, H, T, S]; a bool mask marks the positions to *ignore* (the xc.sdpa mask marks
those to keep), a float mask is added to the scores.
"""
from __future__ import annotations

from xcomp.frontends.aten import aten


def _linear(cx, x, w, b):
    y = cx.op("matmul", x, cx.tensor(w, x.type.dtype), transpose_b=True)
    return cx.op("add", y, cx.tensor(b, x.type.dtype)) if b is not None else y


def _heads(cx, x, heads: int):
    b, t, e = x.type.shape
    return cx.op("transpose", cx.op("reshape", x, shape=(b, t, heads, e // heads)), perm=(0, 2, 1, 3))


def _merge_heads(cx, x):
    b, h, t, d = x.type.shape
    return cx.op("reshape", cx.op("transpose", x, perm=(0, 2, 1, 3)), shape=(b, t, h * d))


def _sdpa_mask(cx, mask, mask_type, dtype, batch: int):
    if mask is None:
        return []
    if mask_type == 1 or (mask_type is None and mask.type.rank == 2 and mask.type.shape[0] == batch
                          and batch != mask.type.shape[1]):
        b, s = mask.type.shape
        mask = cx.op("reshape", mask, shape=(b, 1, 1, s))
    if mask.type.dtype.is_bool:
        return [cx.op("logical_not", mask)]
    return [cx.tensor(mask, dtype)]


def attention(cx, q, k, v, heads, qkv_w, qkv_b, proj_w, proj_b, mask=None, mask_type=None):
    """Multi-head attention with packed in-projection weights; returns [B, T, E]."""
    dt = q.type.dtype
    e = q.type.shape[-1]
    w = cx.tensor(qkv_w, dt)
    bias = cx.tensor(qkv_b, dt) if qkv_b is not None else None
    parts = []
    for i, x in enumerate((q, k, v)):
        wi = cx.op("slice", w, axis=0, start=i * e, end=(i + 1) * e, step=1)
        bi = cx.op("slice", bias, axis=0, start=i * e, end=(i + 1) * e, step=1) if bias is not None else None
        parts.append(_heads(cx, _linear(cx, x, wi, bi), heads))
    m = _sdpa_mask(cx, mask, mask_type, dt, q.type.shape[0])
    att = cx.op("sdpa", *parts, *m)
    return _linear(cx, _merge_heads(cx, att), proj_w, proj_b)


@aten("aten._transformer_encoder_layer_fwd.default")
def encoder_layer(cx, src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu,
                  norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
                  ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None, mask_type=None):
    dt = cx.out_dtype
    x = cx.tensor(src, dt)

    def norm(y, w, b):
        return cx.op("layer_norm", y, cx.tensor(w, dt), cx.tensor(b, dt), normalized_ndim=1, eps=float(eps))

    def self_attention(y):
        return attention(cx, y, y, y, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, mask_type)

    def feed_forward(y):
        h = _linear(cx, y, ffn_weight_1, ffn_bias_1)
        h = cx.op("gelu", h) if use_gelu else cx.op("relu", h)
        return _linear(cx, h, ffn_weight_2, ffn_bias_2)

    if norm_first:
        x = cx.op("add", x, self_attention(norm(x, norm_weight_1, norm_bias_1)))
        return cx.op("add", x, feed_forward(norm(x, norm_weight_2, norm_bias_2)))
    x = norm(cx.op("add", x, self_attention(x)), norm_weight_1, norm_bias_1)
    return norm(cx.op("add", x, feed_forward(x)), norm_weight_2, norm_bias_2)


@aten("aten._native_multi_head_attention.default")
def native_mha(cx, query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias,
               mask=None, need_weights=True, average_attn_weights=True, mask_type=None):
    if need_weights and 1 in cx.used_outputs():
        raise NotImplementedError("attention weights output of the fast path")
    dt = cx.out_dtype
    out = attention(cx, cx.tensor(query, dt), cx.tensor(key, dt), cx.tensor(value, dt), num_head, qkv_weight,
                    qkv_bias, proj_weight, proj_bias, mask, mask_type)
    return [out, None]
