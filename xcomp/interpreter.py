"""A table-driven evaluator of programs, shared by the numpy reference and the MLX backend.

An evaluator walks a function's ops in order, looks each op up in its `impls` table (op name ->
`fn(args, attrs, out_types) -> list`), and evaluates ops that hold regions (if, loop, call, fused)
through the `REGION_OPS` table, so the same control-flow semantics serve every array library.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from xcomp.errors import LoweringError
from xcomp.ir.core import Block, Func, Operation, Program
from xcomp.ir.types import DType, TensorType

Impl = Callable[[list, dict, list], Sequence[Any]]


class Evaluator:
    """Runs programs op by op with one table of implementations.

    Subclasses (or instances) provide `impls`, `weight(name, type)` and `truthy(x)`/`to_int(x)`
    for control flow.
    """

    def __init__(self, program: Program, impls: dict[str, Impl]):
        self.program = program
        self.impls = impls
        missing = sorted({op.name for op in program.walk()
                          if op.name not in impls and op.name not in REGION_OPS
                          and not op.opdef.is_terminator and op.name != "xc.weight"})
        if missing:
            raise LoweringError(f"{type(self).__name__} has no implementation of: {', '.join(missing)}")
        self.weights = {}

    # hooks ------------------------------------------------------------------------------------
    def weight(self, name: str, type: TensorType):
        return self.program.weights[name]

    def truthy(self, x) -> bool:
        return bool(np.asarray(x).reshape(()).item())

    def to_int(self, x) -> int:
        return int(np.asarray(x).reshape(()).item())

    # evaluation -------------------------------------------------------------------------------
    def run(self, inputs: Sequence[Any], func: str = "main") -> list:
        return self.call(self.program.funcs[func], list(inputs))

    def call(self, func: Func, args: list) -> list:
        if len(args) != len(func.args):
            raise TypeError(f"@{func.name} takes {len(func.args)} inputs, got {len(args)}")
        return self.block(func.body, dict(zip(func.args, args)))

    def block(self, block: Block, env: dict) -> list:
        for op in block.ops:
            if op.opdef.is_terminator:
                return [env[v] for v in op.operands]
            outs = self.op(op, env)
            for r, o in zip(op.results, outs):
                env[r] = o
        return []

    def op(self, op: Operation, env: dict) -> list:
        args = [env[v] for v in op.operands]
        if op.name in REGION_OPS:
            return REGION_OPS[op.name](self, op, args, env)
        if op.name == "xc.weight":
            if op.attrs["name"] not in self.weights:
                self.weights[op.attrs["name"]] = self.weight(op.attrs["name"], op.results[0].type)
            return [self.weights[op.attrs["name"]]]
        return list(self.impls[op.name](args, op.attrs, [r.type for r in op.results]))


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


def _eval_fused(ev: Evaluator, op: Operation, args: list, env: dict) -> list:
    body = op.regions[0].block
    return ev.block(body, dict(zip(body.args, args)))


def _eval_call(ev: Evaluator, op: Operation, args: list, env: dict) -> list:
    return ev.call(ev.program.funcs[op.attrs["callee"].name], args)


REGION_OPS = {"xc.if": _eval_if, "xc.loop": _eval_loop, "xc.fused": _eval_fused, "xc.call": _eval_call}
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
