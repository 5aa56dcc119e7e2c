"""The MLX primitive table: primitive name -> converter, filled by the family modules beside this one.

A converter is `fn(cx, inputs, args) -> list[Value]`: `cx` is the `Context` of the primitive being
converted (builder, the event's output types, helpers), `inputs` the IR values of the primitive's
inputs and `args` its state as `mx.export_function` reports it (scalars, shape tuples, int lists,
dtypes, enums as ints). A converter that meets a case it cannot express raises `Unsupported` with the
reason; the frontend collects those and reports them all at once.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from xcomp.ir.builder import Builder
from xcomp.ir.core import Program, Value
from xcomp.ir.types import DType, TensorType

Converter = Callable[..., list]
PRIMITIVES: dict[str, Converter] = {}
IR_OPS: dict[str, str] = {}  # primitive -> the IR op(s) it becomes, for docs/mlx_primitives.md


class Unsupported(Exception):
    """A primitive (or one of its argument values) the IR cannot express; the message says why."""


def primitive(name: str, ir: str):
    """Register the decorated converter for MLX primitive `name`; `ir` names the IR op(s) it emits."""
    def register(fn: Converter) -> Converter:
        if name in PRIMITIVES:
            raise ValueError(f"MLX primitive {name} registered twice")
        PRIMITIVES[name] = fn
        IR_OPS[name] = ir
        return fn
    return register


class Context:
    """What a converter sees: the builder, the primitive's output types and constant values."""

    def __init__(self, builder: Builder, out_types: list[TensorType], constants: dict[int, np.ndarray],
                 program: Program):
        self.b = builder
        self.out_types = out_types
        self._constants = constants  # id(Value) -> numpy value of values known at capture
        self.program = program

    @property
    def out(self) -> TensorType:
        return self.out_types[0]

    def op(self, name: str, *operands: Value, **attrs) -> Value:
        return self.b.op(name, *operands, **attrs)

    def ops(self, name: str, *operands: Value, **attrs) -> list[Value]:
        return self.b.ops(name, *operands, **attrs)

    def const(self, value, dtype: DType) -> Value:
        """A 0-d tensor constant of `dtype`."""
        value = bool(value) if dtype.is_bool else int(value) if dtype.is_int else float(value)
        return self.op("constant", value=value, dtype=dtype)

    def dense(self, value: np.ndarray, dtype: DType) -> Value:
        """A small constant tensor written inline."""
        return self.op("dense", value=np.ascontiguousarray(value), dtype=dtype)

    def array(self, value: np.ndarray, dtype: DType) -> Value:
        """A constant tensor: inline when small, else an out-of-line weight named `__const<n>`."""
        if value.size <= 16:
            return self.dense(value, dtype)
        name = f"__const{len(self.program.weights)}"
        self.program.weights[name] = np.ascontiguousarray(value, dtype.np if dtype is not DType.BF16 else np.float32)
        return self.b.create("weight", (), {"name": name}, result_types=[TensorType(value.shape, dtype)]).result

    def cast(self, v: Value, dtype: DType) -> Value:
        return v if v.type.dtype == dtype else self.op("cast", v, dtype=dtype)

    def reshape(self, v: Value, shape) -> Value:
        return v if tuple(v.type.shape) == tuple(shape) else self.op("reshape", v, shape=tuple(shape))

    def known(self, v: Value) -> np.ndarray | None:
        """The value of `v` when it is a constant of the captured function, else None."""
        return self._constants.get(id(v))
