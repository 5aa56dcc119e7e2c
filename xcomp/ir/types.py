"""IR types: tensors (shape + dtype, dims may be named symbols), scalars, lists and none.

Printed in MLIR builtin syntax where MLIR has one (`tensor<4x?xf32, ["B"]>`, `f32`, `i64`,
`none`); xcomp's own types use the `!xc.` prefix (`!xc.list<i64>`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

import numpy as np

Dim = Union[int, str]  # a static size, or a symbolic size in canonical text (`xcomp.ir.symbolic`)


class DType(enum.Enum):
    """Element types. The value is the MLIR spelling."""

    F64 = "f64"
    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"
    I64 = "i64"
    I32 = "i32"
    I16 = "i16"
    I8 = "i8"
    U8 = "ui8"
    BOOL = "i1"

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_int(self) -> bool:
        return self in _INTS

    @property
    def is_bool(self) -> bool:
        return self is DType.BOOL

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self]

    @property
    def np(self) -> np.dtype:
        """The numpy dtype used to hold values of this type (bfloat16 computes in float32)."""
        return np.dtype(_NUMPY[self])

    @staticmethod
    def from_numpy(dt) -> "DType":
        dt = np.dtype(dt)
        for k, v in _NUMPY.items():
            if k is not DType.BF16 and np.dtype(v) == dt:
                return k
        raise TypeError(f"no xcomp dtype for numpy dtype {dt}")

    def __repr__(self) -> str:
        return f"DType.{self.name}"


_FLOATS = {DType.F64, DType.F32, DType.F16, DType.BF16}
_INTS = {DType.I64, DType.I32, DType.I16, DType.I8, DType.U8}
_ITEMSIZE = {DType.F64: 8, DType.F32: 4, DType.F16: 2, DType.BF16: 2, DType.I64: 8, DType.I32: 4,
             DType.I16: 2, DType.I8: 1, DType.U8: 1, DType.BOOL: 1}
_NUMPY = {DType.F64: "float64", DType.F32: "float32", DType.F16: "float16", DType.BF16: "float32",
          DType.I64: "int64", DType.I32: "int32", DType.I16: "int16", DType.I8: "int8",
          DType.U8: "uint8", DType.BOOL: "bool"}


class Type:
    """Base of all IR types."""


@dataclass(frozen=True)
class TensorType(Type):
    """A ranked tensor; each dim is an int or a symbolic size (canonical expression text over
    named sizes, see `xcomp.ir.symbolic`; kept canonical so equal sizes compare equal)."""

    shape: tuple[Dim, ...]
    dtype: DType

    def __post_init__(self):
        shape = tuple(self.shape)
        if any(isinstance(d, str) for d in shape):
            from xcomp.ir.symbolic import canon
            shape = tuple(canon(d) if isinstance(d, str) else d for d in shape)
        object.__setattr__(self, "shape", shape)
        for d in self.shape:
            if not (isinstance(d, str) or (isinstance(d, (int, np.integer)) and d >= 0)):
                raise ValueError(f"bad tensor dim {d!r}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def numel(self) -> int:
        if not self.is_static:
            raise ValueError(f"{self} has symbolic dims")
        return int(np.prod(self.shape, dtype=np.int64))

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        dims = "".join(f"{'?' if isinstance(d, str) else d}x" for d in self.shape)
        syms = [d for d in self.shape if isinstance(d, str)]
        enc = (", [" + ", ".join(f'"{s}"' for s in syms) + "]") if syms else ""
        return f"tensor<{dims}{self.dtype.value}{enc}>"


@dataclass(frozen=True)
class ScalarType(Type):
    """A host scalar (TorchScript int/float/bool)."""

    dtype: DType

    def __str__(self) -> str:
        return self.dtype.value


@dataclass(frozen=True)
class ListType(Type):
    """A host list of a single element type (TorchScript `List[T]`)."""

    element: Type

    def __str__(self) -> str:
        return f"!xc.list<{self.element}>"


@dataclass(frozen=True)
class NoneType(Type):
    """The type of TorchScript's None."""

    def __str__(self) -> str:
        return "none"


def tensor(shape, dtype: DType = DType.F32) -> TensorType:
    """Shorthand: `tensor((4, 8), DType.F32)`."""
    return TensorType(tuple(shape), dtype)


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """Numpy broadcasting over static or symbolic dims; raises ValueError when incompatible."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dim: Dim = 1
        for s in shapes:
            j = i - (rank - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1 or d == dim:
                continue
            if dim == 1:
                dim = d
            else:
                raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(dim)
    return tuple(out)

