"""The converter context: what an aten converter (`frontends/aten/*.py`) may ask of a frontend.

Both torch frontends implement it: the FX driver (`torch_export.FXContext`, result types from the
nodes' FakeTensor meta) and the TorchScript driver (`torchscript.convert.ScriptContext`, result types
from torch's meta kernels run on the operands' IR types). A converter sees only this interface,
never a framework node:

- `out_types()`: the torch result types of the op being converted, one per result (`TensorType`,
  or None for a non-tensor result); `out_type` / `out_dtype` the first one.
- `used_outputs()`: indices of the results the program reads (converters skip statistics nobody uses).
- building: `op`, `ops`, `const` (0-d constant), `tensor` (a Value, Python number, symbolic size or
  torch tensor as a tensor value), `constant_array`, `cast`, `broadcast`.
"""
from __future__ import annotations

import numpy as np

from xcomp.ir.builder import Builder
from xcomp.ir.core import Program, Value
from xcomp.ir.types import DType, TensorType


class ConvertContext:
    """Base of the frontends' converter contexts: building helpers plus the result-type queries
    that each frontend answers from its own graph (`out_types`, `used_outputs`)."""

    def __init__(self, builder: Builder, program: Program):
        self.b = builder
        self.program = program

    # results of the op being converted (each frontend answers these) ------------------------
    def out_types(self) -> list[TensorType | None]:
        """Torch's result types of the op being converted (None for non-tensor results)."""
        raise NotImplementedError

    def used_outputs(self) -> set[int]:
        """Indices of the results that the program reads."""
        raise NotImplementedError

    def operand_layout(self, i: int) -> tuple[tuple[int, ...], int] | None:
        """Torch's memory layout of operand `i` (strides, storage offset) where the frontend knows
        it, else None. Only ops that address storage directly (`as_strided`) ask."""
        return None

    @property
    def out_type(self) -> TensorType:
        return self.out_types()[0]

    @property
    def out_dtype(self) -> DType:
        return self.out_type.dtype

    # building ---------------------------------------------------------------------------------
    def op(self, name: str, *operands: Value, **attrs) -> Value:
        return self.b.op(name, *operands, **attrs)

    def ops(self, name: str, *operands: Value, **attrs) -> list[Value]:
        return self.b.ops(name, *operands, **attrs)

    def const(self, value, dtype: DType) -> Value:
        """A 0-d tensor constant."""
        if dtype.is_bool:
            value = bool(value)
        elif dtype.is_int:
            value = int(value)
        else:
            value = float(value)
        return self.op("constant", value=value, dtype=dtype)

    def tensor(self, x, dtype: DType | None = None) -> Value:
        """`x` as a tensor value: a Value (cast to `dtype` if given), a Python number or a torch
        tensor (a constant)."""
        if isinstance(x, Value):
            return self.cast(x, dtype) if dtype is not None else x
        if isinstance(x, (bool, int, float)):
            if dtype is None:
                dtype = DType.BOOL if isinstance(x, bool) else DType.I64 if isinstance(x, int) else DType.F32
            return self.const(x, dtype)
        if isinstance(x, str):  # a symbolic size (xcomp.ir.symbolic) used as a value
            return self.cast(self.op("size", value=x, dtype=DType.I64), dtype or DType.I64)
        if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
            from xcomp.frontends.torch_export import to_dtype
            arr = x.detach().cpu()
            dt = to_dtype(arr.dtype)
            value = arr.float().numpy() if dt is DType.BF16 else arr.numpy()
            return self.constant_array(value, dtype or dt, dt)
        raise TypeError(f"cannot use {type(x).__name__} as a tensor")

    def constant_array(self, value: np.ndarray, dtype: DType, stored: DType | None = None) -> Value:
        """A constant tensor: inline (`xc.dense`) when small, else a named weight."""
        if value.size <= 16:
            v = self.op("dense", value=np.array(value, order="C"), dtype=stored or dtype)
        else:
            name = f"__const{len(self.program.weights)}"
            while name in self.program.weights:
                name += "_"
            self.program.weights[name] = np.array(value, order="C")
            v = self.b.create("weight", (), {"name": name},
                              result_types=[TensorType(value.shape, stored or dtype)]).result
        return self.cast(v, dtype)

    def cast(self, v: Value, dtype: DType) -> Value:
        return v if v.type.dtype == dtype else self.op("cast", v, dtype=dtype)

    def broadcast(self, v: Value, shape) -> Value:
        return v if tuple(v.type.shape) == tuple(shape) else self.op("broadcast_to", v, shape=tuple(shape))
