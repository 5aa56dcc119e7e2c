"""aten softmax, normalization and attention ops -> xc nn ops (pooling lives in `pooling`).

Ops with several torch results (`native_layer_norm` -> y, mean, rstd; `native_batch_norm` ...)
return every result; statistics are built only when the graph uses them (the driver wires the
getitem nodes). A missing weight with a bias present becomes a ones weight, so the IR op always has
its parameters in order. Training-mode batch norm and instance norm normalize with batch
statistics computed from xc reductions.
"""
from __future__ import annotations

import numpy as np
import torch

from xcomp.frontends.aten import aten
from xcomp.ops.reduction import normalize_axis


def used_outputs(cx) -> set[int]:
    """Indices of the current op's results that the program reads."""
    return cx.used_outputs()


def ones(cx, shape, dtype):
    return cx.constant_array(np.ones(tuple(shape), dtype.np), dtype)


def params(cx, weight, bias, shape, dtype) -> list:
    """[weight[, bias]] operands in `dtype`; a lone bias gets a ones weight."""
    if weight is None and bias is None:
        return []
    w = cx.tensor(weight, dtype) if weight is not None else ones(cx, shape, dtype)
    return [w] if bias is None else [w, cx.tensor(bias, dtype)]


# -- softmax ---------------------------------------------------------------------------------------
def _softmax(op: str):
    def conv(cx, x, dim, half_to_float_or_dtype=None):
        x = cx.tensor(x, cx.out_dtype)
        return cx.op(op, x, axis=normalize_axis(dim, x.type.rank, op))
    return conv


aten("aten._softmax.default", "aten.softmax.int")(_softmax("softmax"))
aten("aten._log_softmax.default", "aten.log_softmax.int")(_softmax("log_softmax"))


# -- layer norm / rms norm -------------------------------------------------------------------------
def _stats(cx, x, axes, eps, keepdim=True):
    """(mean, rstd) of x over `axes`, rstd = 1/sqrt(biased var + eps)."""
    mean = cx.op("mean", x, axes=axes, keepdim=keepdim)
    var = cx.op("var", x, axes=axes, keepdim=keepdim, correction=0.0)
    return mean, cx.op("rsqrt", cx.op("add", var, cx.const(eps, var.type.dtype)))


@aten("aten.native_layer_norm.default")
def native_layer_norm(cx, x, normalized_shape, weight, bias, eps):
    y = layer_norm(cx, x, normalized_shape, weight, bias, eps)
    used = used_outputs(cx)
    if not used & {1, 2}:
        return [y, None, None]
    n = len(normalized_shape)
    types = cx.out_types()
    xs = cx.tensor(x, types[1].dtype)
    mean, rstd = _stats(cx, xs, tuple(range(xs.type.rank - n, xs.type.rank)), eps)
    return [y, mean, rstd]


@aten("aten.layer_norm.default")
def layer_norm(cx, x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    return cx.op("layer_norm", x, *params(cx, weight, bias, normalized_shape, dt),
                 normalized_ndim=len(normalized_shape), eps=float(eps))


@aten("aten.rms_norm.default")
def rms_norm(cx, x, normalized_shape, weight=None, eps=None):
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    if eps is None:
        from xcomp.frontends.torch_export import XCOMP_TO_TORCH
        eps = torch.finfo(XCOMP_TO_TORCH[dt]).eps
    return cx.op("rms_norm", x, *params(cx, weight, None, normalized_shape, dt),
                 normalized_ndim=len(normalized_shape), eps=float(eps))


@aten("aten._fused_rms_norm.default")
def fused_rms_norm(cx, x, normalized_shape, weight, eps):
    y = rms_norm(cx, x, normalized_shape, weight, eps)
    if 1 in used_outputs(cx):
        raise NotImplementedError("_fused_rms_norm rstd output")
    return [y, None]


# -- group norm / instance norm --------------------------------------------------------------------
@aten("aten.group_norm.default")
def group_norm(cx, x, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    return cx.op("group_norm", x, *params(cx, weight, bias, (x.type.shape[1],), dt),
                 groups=int(num_groups), eps=float(eps))


@aten("aten.native_group_norm.default")
def native_group_norm(cx, x, weight, bias, n, c, hxw, group, eps):
    y = group_norm(cx, x, group, weight, bias, eps)
    if not used_outputs(cx) & {1, 2}:
        return [y, None, None]
    g = cx.op("reshape", cx.tensor(x, cx.out_types()[1].dtype), shape=(int(n), int(group), (int(c) // int(group)) * int(hxw)))
    mean, rstd = _stats(cx, g, (2,), eps, keepdim=False)
    return [y, mean, rstd]


@aten("aten.instance_norm.default")
def instance_norm(cx, x, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    if not use_input_stats:
        return batch_norm(cx, x, weight, bias, running_mean, running_var, False, momentum, eps, cudnn_enabled)
    return group_norm(cx, x, x.type.shape[1], weight, bias, eps)


# -- batch norm ------------------------------------------------------------------------------------
def batch_norm_values(cx, x, weight, bias, mean, var, eps, training: bool):
    """(y, batch mean, batch biased var): running statistics in inference (batch stats None),
    batch statistics in training or when no running statistics are given."""
    dt = cx.out_dtype
    x = cx.tensor(x, dt)
    c = x.type.shape[1]
    batch = None
    if training or mean is None or var is None:
        axes = (0,) + tuple(range(2, x.type.rank))
        mean = cx.op("mean", x, axes=axes)
        var = cx.op("var", x, axes=axes, correction=0.0)
        batch = (mean, var)
    y = cx.op("batch_norm", x, cx.tensor(mean, dt), cx.tensor(var, dt), *params(cx, weight, bias, (c,), dt),
              eps=float(eps))
    return y, batch


def _saved_stats(cx, batch, eps) -> list:
    """torch's (save_mean, save_invstd): batch mean and 1/sqrt(var + eps), or the empty tensors
    inference mode returns."""
    if batch is None:
        return [cx.constant_array(np.zeros(t.shape, t.dtype.np), t.dtype) for t in cx.out_types()[1:3]]
    mean, var = batch
    return [mean, cx.op("rsqrt", cx.op("add", var, cx.const(eps, var.type.dtype)))]


@aten("aten.batch_norm.default")
def batch_norm(cx, x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):
    return batch_norm_values(cx, x, weight, bias, running_mean, running_var, eps, training)[0]


def _batch_norm_with_stats(cx, x, weight, bias, mean, var, training, eps):
    y, batch = batch_norm_values(cx, x, weight, bias, mean, var, eps, training)
    return [y, *_saved_stats(cx, batch, eps)] if used_outputs(cx) & {1, 2} else [y, None, None]


@aten("aten._native_batch_norm_legit_no_training.default")
def batch_norm_no_training(cx, x, weight, bias, running_mean, running_var, momentum, eps):
    return _batch_norm_with_stats(cx, x, weight, bias, running_mean, running_var, False, eps)


@aten("aten.native_batch_norm.default", "aten._native_batch_norm_legit.default")
def native_batch_norm(cx, x, weight, bias, running_mean, running_var, training, momentum, eps):
    return _batch_norm_with_stats(cx, x, weight, bias, running_mean, running_var, training, eps)


@aten("aten._native_batch_norm_legit.no_stats")
def batch_norm_no_stats(cx, x, weight, bias, training, momentum, eps):
    return _batch_norm_with_stats(cx, x, weight, bias, None, None, True, eps)


@aten("aten._native_batch_norm_legit_functional.default")
def batch_norm_functional(cx, x, weight, bias, running_mean, running_var, training, momentum, eps):
    """(y, save_mean, save_invstd, new running mean, new running var); training blends the batch
    statistics (unbiased variance) into the running ones with `momentum`."""
    y, batch = batch_norm_values(cx, x, weight, bias, running_mean, running_var, eps, training)
    saved = _saved_stats(cx, batch, eps)
    if batch is None:
        return [y, *saved, running_mean, running_var]
    mean, var = batch
    n = 1
    for i, d in enumerate(x.type.shape):
        n *= d if i != 1 else 1
    unbiased = cx.op("mul", var, cx.const(n / max(n - 1, 1), var.type.dtype))
    blended = []
    for run, cur in ((running_mean, mean), (running_var, unbiased)):
        dt = run.type.dtype
        keep = cx.op("mul", run, cx.const(1 - momentum, dt))
        blended.append(cx.op("add", keep, cx.op("mul", cx.cast(cur, dt), cx.const(momentum, dt))))
    return [y, *saved, *blended]


@aten("aten.dropout.default")
def dropout(cx, x, p, train):
    """Dropout as torch.export keeps it: the value itself at inference (random in training)."""
    if train and p:
        raise NotImplementedError("dropout in training mode (it would make results random)")
    return cx.tensor(x)


# -- attention -------------------------------------------------------------------------------------
def sdpa(cx, q, k, v, mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """softmax(q k^T * scale + mask) v; dropout is refused (it would make results random)."""
    if dropout_p:
        raise NotImplementedError("attention dropout")
    dt = cx.out_dtype
    operands = [cx.tensor(q, dt), cx.tensor(k, dt), cx.tensor(v, dt)]
    if mask is not None:
        operands.append(mask if mask.type.dtype.is_bool else cx.tensor(mask, dt))
    return cx.op("sdpa", *operands, scale=None if scale is None else float(scale),
                 is_causal=bool(is_causal), enable_gqa=bool(enable_gqa))


def _only_output(cx, y, what: str):
    extra = used_outputs(cx) - {0}
    if extra:
        raise NotImplementedError(f"{what} auxiliary outputs {sorted(extra)}")
    return [y] + [None] * (len(cx.out_types()) - 1)


@aten("aten.scaled_dot_product_attention.default")
def scaled_dot_product_attention(cx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None,
                                 enable_gqa=False):
    return sdpa(cx, q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)


@aten("aten._scaled_dot_product_flash_attention_for_cpu.default")
def sdpa_flash_cpu(cx, q, k, v, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    return _only_output(cx, sdpa(cx, q, k, v, attn_mask, dropout_p, is_causal, scale), "flash attention")


@aten("aten._scaled_dot_product_efficient_attention.default")
def sdpa_efficient(cx, q, k, v, attn_bias, compute_log_sumexp, dropout_p=0.0, is_causal=False, *, scale=None):
    return _only_output(cx, sdpa(cx, q, k, v, attn_bias, dropout_p, is_causal, scale), "efficient attention")


@aten("aten._scaled_dot_product_flash_attention.default")
def sdpa_flash(cx, q, k, v, dropout_p=0.0, is_causal=False, return_debug_mask=False, *, scale=None):
    return _only_output(cx, sdpa(cx, q, k, v, None, dropout_p, is_causal, scale), "flash attention")


@aten("aten._scaled_dot_product_attention_math.default")
def sdpa_math(cx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, dropout_mask=None, *, scale=None,
              enable_gqa=False):
    return _only_output(cx, sdpa(cx, q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa), "math attention")
