"""Fused groups used by the kernel tests: one table of (name, operand types, body, kind)."""
from __future__ import annotations

import numpy as np

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
