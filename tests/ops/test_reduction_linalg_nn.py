"""Reduction, linalg and nn ops through torch.export -> xcomp -> {reference, mlx} against torch eager."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import xcomp
from helpers import assert_close

TARGETS = ["reference", "mlx"]


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def rand_int(*shape, high=5, dtype=torch.int32):
    return torch.randint(-high, high, shape, dtype=dtype)


# name -> (fn, input factory); inputs are made with a fixed seed per case
REDUCTIONS = {
    "sum_all": (lambda x: x.sum(), lambda: [randn(3, 4, 5)]),
    "sum_dims_keepdim": (lambda x: x.sum((0, -1), keepdim=True), lambda: [randn(3, 4, 5)]),
    "sum_int_promotes": (lambda x: x.sum(1), lambda: [rand_int(3, 4)]),
    "sum_bool": (lambda x: (x > 0).sum(-1), lambda: [randn(3, 4)]),
    "sum_dtype_kwarg": (lambda x: x.sum(1, dtype=torch.float64), lambda: [randn(3, 4)]),
    "mean_all": (lambda x: x.mean(), lambda: [randn(3, 4, 5)]),
    "mean_dims": (lambda x: x.mean((1, 2)), lambda: [randn(2, 3, 4, 5)]),
    "prod_dim": (lambda x: x.prod(-1), lambda: [randn(3, 4)]),
    "prod_all_int": (lambda x: x.prod(), lambda: [rand_int(2, 3, high=3)]),
    "amax_amin": (lambda x: (x.amax((0, 2)), x.amin(-1, keepdim=True)), lambda: [randn(3, 4, 5)]),
    "max_dim": (lambda x: x.max(1), lambda: [randn(3, 4, 5)]),
    "min_dim_keepdim": (lambda x: x.min(-1, keepdim=True), lambda: [randn(3, 4)]),
    "max_min_all": (lambda x: (x.max(), x.min()), lambda: [randn(3, 4)]),
    "argmax_argmin": (lambda x: (x.argmax(1), x.argmin(), x.argmax(-1, keepdim=True)), lambda: [randn(3, 4, 5)]),
    "var_std": (lambda x: (x.var(1), x.std(), x.var((0, 2), correction=0, keepdim=True)), lambda: [randn(3, 4, 5)]),
    "var_mean": (lambda x: torch.var_mean(x, -1), lambda: [randn(3, 4)]),
    "any_all": (lambda x: ((x > 0).any(), (x > 0).any(1), (x > 1).all(-1), (x > -3).all(), (x > 0).any((0, 1))),
                lambda: [randn(3, 4, 5)]),
    "cumsum_cumprod": (lambda x: (x.cumsum(1), x.cumprod(-1)), lambda: [randn(3, 4)]),
    "cumsum_int": (lambda x: x.cumsum(0), lambda: [rand_int(4, 3)]),
    "logsumexp": (lambda x: (x.logsumexp(1), x.logsumexp((0, 2), keepdim=True)), lambda: [randn(3, 4, 5)]),
    "vector_norm": (lambda x: (torch.linalg.vector_norm(x), x.norm(dim=1), torch.linalg.vector_norm(x, 1, -1),
                               torch.linalg.vector_norm(x, float("inf"), 0), torch.linalg.vector_norm(x, 3)),
                    lambda: [randn(3, 4)]),
}

LINALG = {
    "mm": (lambda a, b: a @ b, lambda: [randn(4, 5), randn(5, 6)]),
    "bmm": (torch.bmm, lambda: [randn(2, 4, 5), randn(2, 5, 3)]),
    "matmul_broadcast": (lambda a, b: a @ b, lambda: [randn(2, 3, 4, 5), randn(5, 6)]),
    "matmul_batch_broadcast": (lambda a, b: a @ b, lambda: [randn(2, 1, 4, 5), randn(3, 5, 2)]),
    "matmul_vec": (lambda a, b, v: (a @ v, v @ b, v @ v, b.T @ v), lambda: [randn(4, 5), randn(5, 6), randn(5)]),
    "matmul_int": (lambda a, b: a @ b, lambda: [rand_int(3, 4, dtype=torch.int64), rand_int(4, 2, dtype=torch.int64)]),
    "addmm": (lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), lambda: [randn(6), randn(4, 5), randn(5, 6)]),
    "baddbmm": (lambda c, a, b: torch.baddbmm(c, a, b, alpha=0.5), lambda: [randn(2, 4, 3), randn(2, 4, 5), randn(2, 5, 3)]),
    "linear": (nn.Linear(5, 6), lambda: [randn(2, 3, 5)]),
    "linear_nobias": (nn.Linear(5, 6, bias=False), lambda: [randn(3, 5)]),
    "conv1d": (nn.Conv1d(3, 4, 3, stride=2, padding=1), lambda: [randn(2, 3, 11)]),
    "conv2d": (nn.Conv2d(3, 4, 3, padding=1), lambda: [randn(2, 3, 8, 8)]),
    "conv2d_groups_dilation": (nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 1), groups=2),
                               lambda: [randn(2, 4, 9, 7)]),
    "conv2d_depthwise_nobias": (nn.Conv2d(4, 4, 3, groups=4, bias=False), lambda: [randn(1, 4, 6, 6)]),
    "conv2d_same": (nn.Conv2d(3, 2, 4, padding="same"), lambda: [randn(1, 3, 7, 7)]),
    "conv3d": (nn.Conv3d(2, 3, 3, padding=1, stride=2), lambda: [randn(1, 2, 5, 6, 7)]),
    "conv_transpose1d": (nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1), lambda: [randn(2, 3, 6)]),
    "conv_transpose2d": (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, dilation=2),
                         lambda: [randn(1, 4, 5, 4)]),
    "conv_transpose2d_bigpad": (nn.ConvTranspose2d(2, 3, 2, stride=3, padding=2), lambda: [randn(1, 2, 5, 5)]),
    "conv_transpose3d": (nn.ConvTranspose3d(2, 2, 2, stride=2), lambda: [randn(1, 2, 3, 3, 3)]),
}

NN = {
    "softmax": (lambda x: (x.softmax(-1), x.softmax(0)), lambda: [randn(3, 4, 5)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda: [randn(3, 4, 5)]),
    "softmax_dtype": (lambda x: F.softmax(x, -1, dtype=torch.float64), lambda: [randn(3, 4)]),
    "layer_norm": (nn.LayerNorm(8), lambda: [randn(2, 3, 8)]),
    "layer_norm_2d_noaffine": (nn.LayerNorm((3, 8), elementwise_affine=False), lambda: [randn(2, 3, 8)]),
    "layer_norm_bias_only": (lambda x, b: F.layer_norm(x, (8,), None, b), lambda: [randn(2, 8), randn(8)]),
    "rms_norm": (nn.RMSNorm(8), lambda: [randn(2, 3, 8)]),
    "rms_norm_eps": (nn.RMSNorm((3, 8), eps=1e-3, elementwise_affine=False), lambda: [randn(2, 3, 8)]),
    "group_norm": (nn.GroupNorm(2, 4), lambda: [randn(2, 4, 5, 5)]),
    "group_norm_3d": (nn.GroupNorm(3, 6, affine=False), lambda: [randn(2, 6, 7)]),
    "instance_norm": (nn.InstanceNorm2d(3), lambda: [randn(2, 3, 5, 5)]),
    "batch_norm": (nn.BatchNorm2d(4), lambda: [randn(2, 4, 5, 5)]),
    "batch_norm_1d": (nn.BatchNorm1d(4, affine=False), lambda: [randn(3, 4)]),
    "max_pool2d": (nn.MaxPool2d(3, 2, padding=1), lambda: [randn(2, 3, 9, 8)]),
    "max_pool2d_ceil_dilation": (nn.MaxPool2d(3, 2, padding=1, dilation=2, ceil_mode=True), lambda: [randn(1, 2, 11, 10)]),
    "max_pool1d": (nn.MaxPool1d(2), lambda: [randn(2, 3, 9)]),
    "max_pool3d": (nn.MaxPool3d(2, 2), lambda: [randn(1, 2, 5, 6, 4)]),
    "avg_pool2d": (nn.AvgPool2d(3, 2, padding=1), lambda: [randn(2, 3, 9, 8)]),
    "avg_pool2d_exclude_ceil": (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                lambda: [randn(1, 3, 10, 7)]),
    "avg_pool2d_divisor": (nn.AvgPool2d(2, divisor_override=3), lambda: [randn(1, 2, 6, 6)]),
    "avg_pool1d": (nn.AvgPool1d(3, 2), lambda: [randn(2, 3, 9)]),
    "avg_pool3d": (nn.AvgPool3d(2), lambda: [randn(1, 2, 4, 4, 6)]),
    "adaptive_avg_pool2d": (nn.AdaptiveAvgPool2d((3, 2)), lambda: [randn(2, 3, 7, 6)]),
    "adaptive_avg_pool2d_1": (nn.AdaptiveAvgPool2d(1), lambda: [randn(2, 3, 7, 6)]),
    "adaptive_avg_pool1d": (nn.AdaptiveAvgPool1d(4), lambda: [randn(2, 3, 10)]),
    "adaptive_avg_pool3d": (nn.AdaptiveAvgPool3d((2, 3, 1)), lambda: [randn(1, 2, 5, 6, 3)]),
    "adaptive_max_pool2d": (nn.AdaptiveMaxPool2d((3, 4)), lambda: [randn(2, 3, 7, 9)]),
    "sdpa": (F.scaled_dot_product_attention, lambda: [randn(2, 4, 6, 8), randn(2, 4, 7, 8), randn(2, 4, 7, 8)]),
    "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    lambda: [randn(2, 4, 6, 8), randn(2, 4, 6, 8), randn(2, 4, 6, 8)]),
    "sdpa_float_mask_scale": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.2),
                              lambda: [randn(2, 2, 5, 8), randn(2, 2, 6, 8), randn(2, 2, 6, 4), randn(5, 6)]),
    "sdpa_bool_mask": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m > -1),
                       lambda: [randn(2, 2, 5, 8), randn(2, 2, 5, 8), randn(2, 2, 5, 8), randn(5, 5)]),
    "sdpa_3d": (F.scaled_dot_product_attention, lambda: [randn(3, 5, 8), randn(3, 6, 8), randn(3, 6, 8)]),
    "mha": (nn.MultiheadAttention(8, 2, batch_first=True), lambda: [randn(2, 5, 8), randn(2, 5, 8), randn(2, 5, 8)]),
}

CASES = {**REDUCTIONS, **LINALG, **NN}


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)] if isinstance(out, (tuple, list)) else []


def _run_case(name, dtype=torch.float32, scale=1.0):
    """Capture the case once, run it on every target, compare each output with torch eager."""
    torch.manual_seed(sum(map(ord, name)))
    fn, make = CASES[name]
    if isinstance(fn, nn.Module):
        fn.eval()
        if isinstance(fn, (nn.BatchNorm1d, nn.BatchNorm2d)):  # non-trivial running statistics
            with torch.no_grad():
                fn.running_mean.uniform_(-1, 1)
                fn.running_var.uniform_(0.5, 2)
        fn = fn.to(dtype)
    inputs = [x.to(dtype) if x.is_floating_point() else x for x in make()]
    with torch.no_grad():
        exp = _flat(fn(*inputs))
    program = xcomp.capture(fn, inputs)
    for target in TARGETS:
        out = _flat(xcomp.compile(program, target=target)(*inputs))
        assert len(out) == len(exp), f"{name}: {len(out)} outputs, expected {len(exp)}"
        for i, (o, e) in enumerate(zip(out, exp)):
            assert o.dtype == e.dtype, f"{name} output {i} on {target}: dtype {o.dtype} != {e.dtype}"
            assert_close(o, e, scale=scale, msg=f"{name} output {i} on {target}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_float32(name):
    _run_case(name)


FLOAT16 = ["sum_dims_keepdim", "mean_dims", "amax_amin", "softmax", "log_softmax", "layer_norm", "rms_norm",
           "group_norm", "batch_norm", "mm", "linear", "conv2d", "max_pool2d", "avg_pool2d",
           "adaptive_avg_pool2d", "sdpa", "sdpa_causal"]


@pytest.mark.parametrize("name", FLOAT16)
def test_op_float16(name):
    _run_case(name, torch.float16, scale=2.0)


# -- models-lite ----------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """conv-bn-relu-conv-bn + identity, then max pool, adaptive pool and a linear head."""

    def __init__(self, c=4):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.pool, self.head = nn.MaxPool2d(2), nn.Linear(c, 3)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)) + x)
        y = F.adaptive_avg_pool2d(self.pool(y), 1).flatten(1)
        return self.head(y)


class AttentionBlock(nn.Module):
    """Pre-norm attention with softmax written out, then an MLP: layer norm + softmax + matmuls."""

    def __init__(self, d=16):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        x = x + self.proj(att @ v)
        return x + self.mlp(self.ln2(x))


@pytest.mark.parametrize("model,shape", [(ResidualBlock, (2, 4, 8, 8)), (AttentionBlock, (2, 5, 16))])
def test_models_lite(model, shape):
    torch.manual_seed(0)
    m = model().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    x = torch.randn(shape)
    with torch.no_grad():
        expected = m(x)
    program = xcomp.capture(m, [x])
    for target in TARGETS:
        assert_close(xcomp.compile(program, target=target)(x), expected, scale=10,
                     msg=f"{model.__name__} on {target}")


# -- converters directly (paths torch.export's decompositions do not produce) ---------------------
def _fx_program(fn, inputs):
    """An un-decomposed torch.export graph converted without run_decompositions."""
    from xcomp.frontends.torch_export import _FunctionModule, from_exported
    ep = torch.export.export(_FunctionModule(fn), tuple(inputs), strict=False)
    return from_exported(ep, decompose=False).program


UNDECOMPOSED = {
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
             [randn(1, 2, 4, 8), randn(1, 2, 4, 8), randn(1, 2, 4, 8)], "xc.sdpa"),
    "sdpa_gqa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                 [randn(1, 4, 3, 8), randn(1, 2, 5, 8), randn(1, 2, 5, 8)], "xc.sdpa"),
    "layer_norm": (lambda x, w: F.layer_norm(x, (6,), w), [randn(2, 6), randn(6)], "xc.layer_norm"),
    "rms_norm": (lambda x: F.rms_norm(x, (6,)), [randn(2, 6)], "xc.rms_norm"),
    "group_norm": (lambda x: F.group_norm(x, 2), [randn(2, 4, 3)], "xc.group_norm"),
    "conv_transpose": (lambda x, w: F.conv_transpose2d(x, w, stride=2), [randn(1, 2, 3, 3), randn(2, 3, 2, 2)],
                       "xc.conv"),
    "linear": (lambda x, w, b: F.linear(x, w, b), [randn(3, 4), randn(5, 4), randn(5)], "xc.matmul"),
    "matmul": (lambda a, b: a @ b, [randn(2, 3, 4), randn(4)], "xc.matmul"),
    "std": (lambda x: x.std(1, keepdim=True), [randn(3, 4)], "xc.var"),
    "adaptive_avg": (lambda x: F.adaptive_avg_pool1d(x, 3), [randn(2, 3, 8)], "xc.adaptive_avg_pool"),
    "max_pool1d": (lambda x: F.max_pool1d(x, 3, 2, 1), [randn(2, 3, 8)], "xc.max_pool"),
}


@pytest.mark.parametrize("name", sorted(UNDECOMPOSED))
def test_undecomposed_converters(name):
    fn, inputs, op = UNDECOMPOSED[name]
    program = _fx_program(fn, inputs)
    assert op in {o.name for o in program.walk()}, str(program)
    with torch.no_grad():
        expected = fn(*inputs)
    for target in TARGETS:
        out = xcomp.compile(program, target=target)(*[x.numpy() for x in inputs])
        assert_close(out, expected, msg=f"{name} on {target}")


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 3, 2, padding=1, dilation=2, ceil_mode=True, return_indices=True),
    lambda x: F.max_pool2d(x, (3, 2), 1, padding=1, return_indices=True),
    lambda x: F.adaptive_max_pool2d(x, (3, 4), return_indices=True),
], ids=["max_pool", "max_pool_rect", "adaptive_max_pool"])
def test_pool_indices(fn):
    """Indices follow torch: first maximum in window order, last NaN, padding never chosen."""
    torch.manual_seed(0)
    x = randn(2, 3, 7, 9)
    x[0, 0, :3, :3] = -float("inf")
    x[1, 1, 2, 2:4] = float("nan")
    x[1, 2, :3, :3] = 1.0
    values, indices = fn(x)
    program = xcomp.capture(fn, [x])
    for target in TARGETS:
        got_values, got_indices = xcomp.compile(program, target=target)(x)
        assert torch.equal(got_indices, indices), target
        assert_close(got_values, values, msg=target)


def test_unused_pool_indices_are_not_built():
    program = xcomp.capture(lambda x: F.max_pool2d(x, 2, return_indices=True)[0], [randn(1, 2, 6, 6)])
    (pool,) = [op for op in program.walk() if op.name == "xc.max_pool"]
    assert len(pool.results) == 1 and not pool.attrs["with_indices"]


def test_ir_text_round_trips():
    m = ResidualBlock().eval()
    program = xcomp.capture(m, [torch.randn(1, 4, 8, 8)])
    text = str(program)
    assert '"xc.conv"' in text and '"xc.batch_norm"' in text and '"xc.max_pool"' in text
    again = xcomp.parse(text, program.weights)
    assert str(again) == text
    xcomp.verify(again)


@pytest.mark.parametrize("op,attrs,shapes,message", [
    ("xc.sum", {"axes": (3,)}, [(2, 3)], "out of range"),
    ("xc.sum", {"axes": (1, -1)}, [(2, 3)], "repeated"),
    ("xc.matmul", {}, [(2, 3), (4, 5)], "inner dims"),
    ("xc.conv", {"groups": 2}, [(1, 3, 5, 5), (4, 2, 3, 3)], "input channels"),
    ("xc.max_pool", {"kernel": (2, 2), "padding": (2,)}, [(1, 2, 5, 5)], "bad window"),
    ("xc.layer_norm", {"normalized_ndim": 1}, [(2, 3), (4,)], "parameter"),
])
def test_infer_rejects_bad_shapes(op, attrs, shapes, message):
    from xcomp.ir.types import DType, TensorType
    from xcomp.ops import get
    d = get(op)
    with pytest.raises((TypeError, ValueError), match=message):
        d.infer([TensorType(s, DType.F32) for s in shapes], d.normalize_attrs(attrs))

