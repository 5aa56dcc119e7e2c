"""Decompositions of composite ops into primitives, applied only where a target's table lacks them.

`DECOMPOSITIONS` maps an op name to `fn(m) -> Value`, a rewrite in the pattern driver's form
(`m.op` is the composite, `m.b` a Builder inserting before it). The `decompose` pass turns the
entries for ops missing from `target.supported()` into patterns and runs them to a fixpoint, so a
decomposition may use other composites (sdpa uses softmax) and they decompose in turn when the
target lacks them too. Norms in half precision compute in float32 and cast back.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from xcomp.ir import symbolic as sym

from xcomp.ir.core import Program, Value
from xcomp.ir.types import DType
from xcomp.ops import registry
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import Pat, PatternSet, apply_patterns

DECOMPOSITIONS: dict[str, Callable] = {}


def decomposes(name: str):
    """Register the decomposition of op `name` (`"softmax"` or `"xc.softmax"`)."""
    def register(fn):
        DECOMPOSITIONS[name if "." in name else f"xc.{name}"] = fn
        return fn
    return register


def _c(b, value, dtype: DType) -> Value:
    return b.op("constant", value=float(value) if dtype.is_float else value, dtype=dtype)


def _wide(b, x: Value) -> Value:
    """x in float32 when it is f16/bf16 (normalization statistics), else x."""
    return b.op("cast", x, dtype=DType.F32) if x.type.dtype in (DType.F16, DType.BF16) else x


def _narrow(b, y: Value, like: Value) -> Value:
    return b.op("cast", y, dtype=like.type.dtype) if y.type.dtype != like.type.dtype else y


@decomposes("softmax")
def _softmax(m):
    b, x, ax = m.b, m.op.operands[0], (m.op.attrs["axis"],)
    e = b.op("exp", b.op("sub", x, b.op("amax", x, axes=ax, keepdim=True)))
    return b.op("div", e, b.op("sum", e, axes=ax, keepdim=True))


@decomposes("log_softmax")
def _log_softmax(m):
    b, x, ax = m.b, m.op.operands[0], (m.op.attrs["axis"],)
    z = b.op("sub", x, b.op("amax", x, axes=ax, keepdim=True))
    return b.op("sub", z, b.op("log", b.op("sum", b.op("exp", z), axes=ax, keepdim=True)))


@decomposes("logsumexp")
def _logsumexp(m):
    b, x, a = m.b, m.op.operands[0], m.op.attrs
    mx = b.op("amax", x, axes=a["axes"], keepdim=True)
    mx = b.op("where", b.op("isfinite", mx), mx, _c(b, 0, x.type.dtype))
    s = b.op("sum", b.op("exp", b.op("sub", x, mx)), axes=a["axes"], keepdim=True)
    out = b.op("add", b.op("log", s), mx)
    return out if a["keepdim"] else b.op("reshape", out, shape=tuple(m.op.results[0].type.shape))


@decomposes("var")
def _var(m):
    b, x, a = m.b, m.op.operands[0], m.op.attrs
    d = b.op("sub", x, b.op("mean", x, axes=a["axes"], keepdim=True))
    s = b.op("sum", b.op("mul", d, d), axes=a["axes"], keepdim=a["keepdim"])
    axes = a["axes"] or tuple(range(x.type.rank))
    n = sym.product([x.type.shape[i] for i in axes])
    if isinstance(n, int):
        return b.op("div", s, _c(b, max(n - a["correction"], 0), x.type.dtype))
    # a symbolic count: max(n - correction, 0) at run time, as a size value
    count = b.op("sub", b.op("cast", b.op("size", value=n), dtype=x.type.dtype), _c(b, a["correction"], x.type.dtype))
    count = b.op("maximum", count, _c(b, 0, x.type.dtype))
    return b.op("div", s, count)


def _normalize(b, x: Value, axes, eps: float, center: bool = True) -> Value:
    """(x - mean) / sqrt(var + eps) over `axes` (without centering: x / sqrt(mean(x^2) + eps))."""
    if center:
        x = b.op("sub", x, b.op("mean", x, axes=axes, keepdim=True))
    var = b.op("mean", b.op("mul", x, x), axes=axes, keepdim=True)
    return b.op("mul", x, b.op("rsqrt", b.op("add", var, _c(b, eps, x.type.dtype))))


def _affine(b, y: Value, params: list, shape=None) -> Value:
    if shape is not None:
        params = [b.op("reshape", p, shape=shape) for p in params]
    if params:
        y = b.op("mul", y, _narrow(b, _wide(b, params[0]), y))
    if len(params) > 1:
        y = b.op("add", y, _narrow(b, _wide(b, params[1]), y))
    return y


@decomposes("layer_norm")
def _layer_norm(m):
    b, x, a = m.b, m.op.operands[0], m.op.attrs
    axes = tuple(range(x.type.rank - a["normalized_ndim"], x.type.rank))
    y = _normalize(b, _wide(b, x), axes, a["eps"])
    return _narrow(b, _affine(b, y, m.op.operands[1:]), x)


@decomposes("rms_norm")
def _rms_norm(m):
    b, x, a = m.b, m.op.operands[0], m.op.attrs
    axes = tuple(range(x.type.rank - a["normalized_ndim"], x.type.rank))
    y = _normalize(b, _wide(b, x), axes, a["eps"], center=False)
    return _narrow(b, _affine(b, y, m.op.operands[1:]), x)


@decomposes("group_norm")
def _group_norm(m):
    b, x, a = m.b, m.op.operands[0], m.op.attrs
    shape = x.type.shape
    if not x.type.is_static:
        return None
    group_size = (shape[1] // a["groups"]) * math.prod(shape[2:])
    g = b.op("reshape", _wide(b, x), shape=(shape[0], a["groups"], group_size))
    y = b.op("reshape", _normalize(b, g, (2,), a["eps"]), shape=tuple(shape))
    per_channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    return _narrow(b, _affine(b, y, m.op.operands[1:], per_channel), x)


@decomposes("batch_norm")
def _batch_norm(m):
    b, (x, mean, var, *params), a = m.b, m.op.operands, m.op.attrs
    shape = (1, x.type.shape[1]) + (1,) * (x.type.rank - 2)
    scale = b.op("rsqrt", b.op("add", var, _c(b, a["eps"], var.type.dtype)))
    if params:
        scale = b.op("mul", scale, params[0])
    shift = b.op("mul", mean, scale)
    if len(params) > 1:
        shift = b.op("sub", params[1], shift)
    else:
        shift = b.op("neg", shift)
    y = b.op("mul", x, b.op("reshape", scale, shape=shape))
    return b.op("add", y, b.op("reshape", shift, shape=shape))


@decomposes("gelu")
def _gelu(m):
    b, x = m.b, m.op.operands[0]
    dt = x.type.dtype
    if m.op.attrs["approximate"].value == "tanh":
        cube = b.op("mul", b.op("mul", x, x), x)
        inner = b.op("add", x, b.op("mul", cube, _c(b, 0.044715, dt)))
        t = b.op("tanh", b.op("mul", inner, _c(b, math.sqrt(2 / math.pi), dt)))
    else:
        t = b.op("erf", b.op("mul", x, _c(b, 1 / math.sqrt(2), dt)))
    return b.op("mul", b.op("mul", x, _c(b, 0.5, dt)), b.op("add", t, _c(b, 1.0, dt)))


@decomposes("silu")
def _silu(m):
    x = m.op.operands[0]
    return m.b.op("mul", x, m.b.op("sigmoid", x))


@decomposes("sdpa")
def _sdpa(m):
    b, (q, k, v, *mask), a = m.b, m.op.operands, m.op.attrs
    dt = q.type.dtype
    if a["enable_gqa"] and q.type.rank >= 3 and k.type.shape[-3] != q.type.shape[-3]:
        k, v = (_repeat_heads(b, t, q.type.shape[-3]) for t in (k, v))
    scale = a["scale"] if a["scale"] is not None else 1.0 / math.sqrt(q.type.shape[-1])
    s = b.op("mul", b.op("matmul", q, k, transpose_b=True), _c(b, scale, dt))
    neg_inf = _c(b, -np.inf, dt)
    if a["is_causal"]:
        ql, kl = q.type.shape[-2], k.type.shape[-2]
        keep = b.op("dense", value=np.tril(np.ones((ql, kl), dtype=bool)), dtype=DType.BOOL)
        s = b.op("where", keep, s, neg_inf)
    if mask:
        s = b.op("where", mask[0], s, neg_inf) if mask[0].type.dtype is DType.BOOL else b.op("add", s, mask[0])
    return b.op("matmul", b.op("softmax", s, axis=-1), v)


def _repeat_heads(b, t: Value, heads: int) -> Value:
    shape = tuple(t.type.shape)
    rep = heads // shape[-3]
    x = b.op("reshape", t, shape=shape[:-2] + (1,) + shape[-2:])
    x = b.op("broadcast_to", x, shape=shape[:-2] + (rep,) + shape[-2:])
    return b.op("reshape", x, shape=shape[:-3] + (heads,) + shape[-2:])


def primitive_ops() -> set[str]:
    """Every registered op that has no decomposition: the table of a target with only primitives."""
    return {n for n in registry.REGISTRY if n not in DECOMPOSITIONS}


def decomposition_patterns(supported: set[str]) -> PatternSet:
    """Patterns decomposing every op with a decomposition that `supported` lacks."""
    return PatternSet([(Pat(name), fn) for name, fn in DECOMPOSITIONS.items()
                       if name not in supported and name in registry.REGISTRY])


@register_pass
class Decompose(Pass):
    """Decompose the composites the target cannot lower (nothing without a target)."""

    name = "decompose"

    def run(self, program: Program) -> bool:
        if self.target is None:
            return False
        return apply_patterns(program, decomposition_patterns(set(self.target.supported())))


@decomposes("size")
def _size(m):
    """A symbolic size as the count of a tensor of that many ones (targets without `xc.size`)."""
    b, a = m.b, m.op.attrs
    ones = b.op("full", shape=(a["value"],), value=1, dtype=DType.I64)
    return _narrow(b, b.op("sum", ones, axes=(0,)), m.op.results[0])
