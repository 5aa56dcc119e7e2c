"""Fused groups used by the kernel tests: one table of (name, operand types, body, kind)."""
from __future__ import annotations

import numpy as np

from xcomp.guards import concrete_type
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program, Region
from xcomp.ir.types import DType, tensor
from xcomp.ops.elementwise import GeluApproximate
from xcomp.ops.structural import FusionKind

F32, F16, BF16, I32, BOOL = DType.F32, DType.F16, DType.BF16, DType.I32, DType.BOOL
EW, RED, MM = FusionKind.ELEMENTWISE, FusionKind.REDUCTION, FusionKind.MATMUL_EPILOGUE


def fused_program(in_types, body, kind) -> Program:
    """A program whose main is one `xc.fused` op of `kind` around `body(builder, *args)`."""
    blk = Block(list(in_types))
    b = Builder(blk)
    outs = body(b, *blk.args)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    b.create("yield", outs)
    main = Block(list(in_types))
    mb = Builder(main)
    op = mb.create("fused", main.args, {"kind": kind}, [Region([blk])], [o.type for o in outs])
    mb.create("return", op.results)
    return Program({"main": Func("main", main, [f"x{i}" for i in range(len(in_types))])})


def fused_op(program: Program):
    return next(op for op in program.walk() if op.name == "xc.fused")


def _c(b, v, dt=F32):
    return b.op("constant", value=v, dtype=dt)


def _chain(b, x):  # tanh-GELU, sigmoid, mul, sub
    g = b.op("gelu", x, approximate=GeluApproximate.TANH)
    return b.op("sub", b.op("mul", g, b.op("sigmoid", x)), x)


def _softmax_decomposed(b, x):
    m = b.op("amax", x, axes=(-1,), keepdim=True)
    e = b.op("exp", b.op("sub", x, m))
    return b.op("div", e, b.op("sum", e, axes=(-1,), keepdim=True))


CASES = {
    "chain_f32": ([tensor((3, 1000), F32)], _chain, EW),
    "chain_f16": ([tensor((2, 333), F16)], _chain, EW),
    "silu_mul_bf16": ([tensor((4, 96), BF16)] * 2, lambda b, x, y: b.op("mul", b.op("silu", x), y), EW),
    "math_mix": ([tensor((257,), F32)] * 2, lambda b, x, y: [
        b.op("add", b.op("erf", x), b.op("atan2", x, y)),
        b.op("where", b.op("gt", x, y), b.op("log1p", b.op("abs", y)), b.op("expm1", x)),
        b.op("pow", x, b.op("constant", value=3.0, dtype=F32))], EW),
    "int_ops": ([tensor((5, 50), I32)] * 2, lambda b, x, y: [
        b.op("floor_div", x, y), b.op("remainder", x, y), b.op("gt", b.op("mul", x, y), _c(b, 7, I32))], EW),
    "bias_gelu": ([tensor((6, 130), F32), tensor((130,), F32)],
                  lambda b, x, w: b.op("gelu", b.op("add", x, w)), EW),
    "col_row_scalar": ([tensor((4, 1, 33), F32), tensor((5, 1), F32), tensor((), F32)],
                       lambda b, x, y, s: b.op("mul", b.op("add", x, y), s), EW),
    "softmax": ([tensor((5, 300), F32)], lambda b, x: b.op("softmax", x, axis=-1), RED),
    "softmax_bf16": ([tensor((3, 256), BF16)], lambda b, x: b.op("softmax", x, axis=1), RED),
    "softmax_decomposed": ([tensor((4, 77), F32)], _softmax_decomposed, RED),
    "log_softmax": ([tensor((3, 200), F32)], lambda b, x: b.op("log_softmax", x, axis=-1), RED),
    "layer_norm": ([tensor((4, 2, 100), F32), tensor((100,), F32), tensor((100,), F32)],
                   lambda b, x, w, bb: b.op("layer_norm", x, w, bb, normalized_ndim=1, eps=1e-5), RED),
    "layer_norm_f16": ([tensor((3, 512), F16), tensor((512,), F16)],
                       lambda b, x, w: b.op("layer_norm", x, w, normalized_ndim=1), RED),
    "rms_norm_residual": ([tensor((4, 384), F32), tensor((4, 384), F32), tensor((384,), F32)],
                          lambda b, x, r, w: [b.op("rms_norm", b.op("add", x, r), w, normalized_ndim=1),
                                              b.op("add", x, r)], RED),
    "logsumexp_mean": ([tensor((6, 129), F32)], lambda b, x: [
        b.op("logsumexp", x, axes=(-1,)), b.op("mean", b.op("square", x), axes=(-1,), keepdim=True)], RED),
    "var_amin_center": ([tensor((2, 3, 64), F32)], lambda b, x: [
        b.op("var", x, axes=(-1,), keepdim=False),
        b.op("sub", x, b.op("amin", x, axes=(-1,), keepdim=True))], RED),
    "wide_rows": ([tensor((2, 5000), F32)], lambda b, x: b.op("softmax", x, axis=-1), RED),
    # a whole number of CUDA blocks at every unroll (no tail), with a broadcast input
    "exact_bias_silu": ([tensor((16, 2048), F32), tensor((2048,), F32)],
                        lambda b, x, w: b.op("mul", b.op("silu", x), b.op("add", x, w)), EW),
}


# -- symbolic sizes --------------------------------------------------------------------------------
I64 = DType.I64


def _mask(b, i, j, full):   # GPT block's causal mask: ~((i - j <= 0) & full)
    le = b.op("le", b.op("sub", i, j), b.op("constant", value=0, dtype=I64))
    return b.op("bitwise_not", b.op("logical_and", le, full))


def _masked_softmax(b, m, x):
    ninf = b.op("constant", value=-np.inf, dtype=DType.F32)
    return b.op("softmax", b.op("where", m, ninf, x), axis=-1)


def residual_layer_norm(b, x, r, w, bb):
    s = b.op("add", x, r)
    return [s, b.op("layer_norm", s, w, bb, normalized_ndim=1, eps=1e-5)]


def _bias_gelu(b, x, bias):
    return b.op("gelu", b.op("add", x, bias), approximate=GeluApproximate.TANH)


# groups with symbolic dims (GPT-block style): name -> (operand types, body, kind); run at DYNAMIC_SIZES
DYNAMIC_SIZES = [{"B": 1, "S": 1}, {"B": 2, "S": 7}, {"B": 3, "S": 16}, {"B": 1, "S": 33}, {"B": 2, "S": 100}]
DYNAMIC = {
    "causal_mask": ([tensor((1, "S"), I64), tensor(("S", 1), I64), tensor(("S", "S"), BOOL)], _mask, EW),
    "masked_softmax": ([tensor(("S", "S"), BOOL), tensor(("B", 4, "S", "S"))], _masked_softmax, RED),
    "residual_layer_norm": ([tensor(("B", "S", 32))] * 2 + [tensor((32,))] * 2, residual_layer_norm, RED),
    "bias_gelu": ([tensor(("S", 128)), tensor((128,))], _bias_gelu, EW),
    "layer_norm_over_seq": ([tensor(("B", "S")), tensor(("S",)), tensor(("S",))],
                            lambda b, x, w, bb: b.op("layer_norm", x, w, bb, normalized_ndim=1), RED),
    "var_mean_over_seq": ([tensor(("B", 3, "S"))], lambda b, x: [
        b.op("var", x, axes=(-1,), keepdim=False), b.op("mean", b.op("square", x), axes=(-1,), keepdim=True),
        b.op("logsumexp", x, axes=(-1,))], RED),
}


def dynamic_inputs(name, in_types, env, rng) -> list[np.ndarray]:
    """Random inputs of a DYNAMIC case at the binding `env` (the causal mask's own inputs)."""
    types = [concrete_type(t, env) for t in in_types]
    xs = random_inputs(types, rng)
    if name == "causal_mask":
        S = env["S"]
        xs = [np.arange(S, dtype=np.int64).reshape(1, S), np.arange(S, dtype=np.int64).reshape(S, 1),
              np.ones((S, S), bool)]
    if name == "masked_softmax":   # the causal mask (the diagonal kept: no row all -inf)
        S = env["S"]
        xs[0] = np.triu(np.ones((S, S), bool), 1)
    return xs


def random_inputs(in_types, rng) -> list[np.ndarray]:
    out = []
    for t in in_types:
        if t.dtype.is_float:
            a = rng.standard_normal(t.shape).astype(np.float32) * 2
            out.append(a.astype(t.dtype.np))
        elif t.dtype is BOOL:
            out.append(rng.random(t.shape) > 0.5)
        else:
            a = rng.integers(-20, 20, size=t.shape).astype(t.dtype.np)
            out.append(np.where(a == 0, 3, a).astype(t.dtype.np))
    from xcomp.interpreter import round_to_bf16
    return [round_to_bf16(a) if t.dtype is BF16 else a for a, t in zip(out, in_types)]
