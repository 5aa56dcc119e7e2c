"""A table-driven evaluator of programs, shared by the numpy reference and the MLX backend.

`Evaluator` is the evaluating user of the one lowering driver (`xcomp.backends.lowering.Lowering`):
its `table` (op name -> `fn(args, attrs, out_types) -> list`) comes per instance, and its region
rules (`REGION_OPS`) run control flow on the host: `xc.if` evaluates the taken branch, `xc.loop`
iterates, `xc.fused` and `xc.call` evaluate their bodies inline. The same control-flow semantics
serve every array library.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from xcomp.backends.lowering import Impl, Lowering, call_func, inline_body  # noqa: F401
from xcomp.ir.core import Operation, Program
from xcomp.ir.types import DType, TensorType


class Evaluator(Lowering):
    """Runs programs op by op with one table of implementations (`impls`).

    Subclasses provide `weight(name, type)`, `iteration(i)` and, for control flow, `truthy(x)` /
    `to_int(x)` on their array type.
    """

    def __init__(self, program: Program, impls: dict[str, Impl]):
        super().__init__(program, table=impls, region_ops=REGION_OPS)

    @property
    def impls(self) -> dict[str, Impl]:
        return self.table

    # hooks ------------------------------------------------------------------------------------
    def truthy(self, x) -> bool:
        return bool(np.asarray(x).reshape(()).item())

    def to_int(self, x) -> int:
        return int(np.asarray(x).reshape(()).item())


def _eval_if(ev: Evaluator, op: Operation, args: list, env: dict) -> list:
    region = op.regions[0] if ev.truthy(args[0]) else op.regions[1]
    return ev.block(region.block, dict(env))


def _eval_loop(ev: Evaluator, op: Operation, args: list, env: dict) -> list:
    trip, cond, carried = ev.to_int(args[0]), ev.truthy(args[1]), list(args[2:])
    body = op.regions[0].block
    i = 0
    while cond and i < trip:
        inner = dict(env)
        inner.update(zip(body.args, [ev.iteration(i)] + carried))
        out = ev.block(body, inner)
        cond, carried = ev.truthy(out[0]), out[1:]
        i += 1
    return carried


REGION_OPS = {"xc.if": _eval_if, "xc.loop": _eval_loop, "xc.fused": inline_body, "xc.call": call_func}
DATA_DEPENDENT = ("xc.if", "xc.loop")  # ops whose control flow reads values: no graph tracing (mx.compile)


def has_data_dependent_control(program: Program) -> bool:
    """True when running the program needs values on the host (xc.if / xc.loop)."""
    return any(op.name in DATA_DEPENDENT for op in program.walk())


def round_to_bf16(a: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), kept in float32."""
    a = np.array(a, np.float32, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray makes them 1-d)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, out)


def _reference_impl(opdef) -> Impl:
    def run(args, attrs, out_types):
        with np.errstate(all="ignore"):  # nan/inf results are IEEE semantics here, as in torch
            outs = opdef.reference(args, attrs, out_types)
        fixed = []
        for o, t in zip(outs, out_types):
            if isinstance(t, TensorType):
                o = np.asarray(o)
                if o.dtype != t.dtype.np:
                    with np.errstate(invalid="ignore", over="ignore"):
                        o = o.astype(t.dtype.np)
                if t.dtype is DType.BF16:
                    o = round_to_bf16(o)
                if o.shape != tuple(t.shape) and t.is_static:
                    o = np.broadcast_to(o, t.shape).copy()
            fixed.append(o)
        return fixed
    return run


def weight_value(program: Program, name: str, type: TensorType) -> np.ndarray:
    """A weight as the reference computes with it: its dtype's numpy type, bfloat16 rounded."""
    w = np.asarray(program.weights[name])
    return round_to_bf16(w) if type.dtype is DType.BF16 else w.astype(type.dtype.np, copy=False)


class ReferenceInterpreter(Evaluator):
    """The numpy reference: every op runs its definition's numpy reference implementation."""

    def __init__(self, program: Program):
        from xcomp.ops.registry import REGISTRY
        impls = {name: _reference_impl(d) for name, d in REGISTRY.items() if d.reference is not None}
        super().__init__(program, impls)

    def weight(self, name, type):
        return weight_value(self.program, name, type)

    def iteration(self, i: int):
        return np.int64(i)


def interpret(program: Program, inputs: Sequence[np.ndarray], func: str = "main") -> list[np.ndarray]:
    """Run `program` on numpy inputs with the reference interpreter."""
    return ReferenceInterpreter(program).run([np.asarray(x) for x in inputs], func)
