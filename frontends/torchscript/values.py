"""What a TorchScript value is while converting, and how values cross region boundaries.

During conversion every TorchScript value maps to one of:
- an IR `Value`: a tensor, or a scalar known only at run time (a 0-d tensor: `int` -> i64,
  `float` -> f64, `bool` -> i1), or a list that changes at run time (`!xc.list<T>`);
- a Python value known at capture time: int/float/bool/str/None/dtype/device, a Python list or
  tuple of converted values (shapes are static, so `size()`, `dim()` and their arithmetic fold).
`UNINITIALIZED` stands for `prim::Uninitialized` (the outputs of a branch that raises).

Values that leave an `xc.if` branch or travel around an `xc.loop` must be IR values of one type on
every path: `materialize` makes them so, `flatten`/`rebuild` take tuples apart and put them back.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from xcomp.errors import XcompError
from xcomp.ir.core import Value
from xcomp.ir.types import DType, ListType, TensorType
from xcomp.frontends.torchscript.symbolic import SymSize

UNINITIALIZED = type("Uninitialized", (), {"__repr__": lambda self: "<uninitialized>"})()

SCALAR_DTYPES = {bool: DType.BOOL, int: DType.I64, float: DType.F64}
JIT_SCALARS = {"IntType": DType.I64, "FloatType": DType.F64, "BoolType": DType.BOOL}


class RegionTypeError(XcompError):
    """A value that differs in type between the paths of a branch or the iterations of a loop."""


def is_static(x) -> bool:
    """True when `x` holds no IR value (its whole value is known at capture time)."""
    if isinstance(x, Value):
        return False
    if isinstance(x, (list, tuple)):
        return all(is_static(e) for e in x)
    return True


def flatten(x) -> list:
    """Leaves of nested tuples (lists that hold IR values are leaves: they become IR lists)."""
    if isinstance(x, tuple):
        return [leaf for e in x for leaf in flatten(e)]
    return [x]


def rebuild(template, leaves: list):
    """`template`'s tuple nesting filled with `leaves` (consumed in order)."""
    it = iter(leaves)

    def go(t):
        return tuple(go(e) for e in t) if isinstance(t, tuple) else next(it)
    return go(template)


def jit_elem_dtype(jit_type) -> DType | None:
    kind = jit_type.kind()
    if kind == "ListType":
        return JIT_SCALARS.get(jit_type.getElementType().kind())
    return JIT_SCALARS.get(kind)


def materialize(cx, x, like: Any = None, jit_type=None) -> Value:
    """`x` as an IR value: numbers become 0-d tensors, Python lists IR lists. `like` (an IR value
    of the other path) gives the type wanted; an UNINITIALIZED leaf becomes zeros of that type."""
    want = like.type if isinstance(like, (Value, _Typed)) else None
    if x is UNINITIALIZED:
        if want is None:
            raise RegionTypeError("a value is uninitialized on every path")
        return zeros(cx, want)
    if isinstance(x, Value):
        if want is not None and isinstance(want, TensorType) and isinstance(x.type, TensorType) \
                and x.type.shape == want.shape and x.type.dtype != want.dtype and x.type.rank == 0:
            return cx.cast(x, want.dtype)
        return x
    if isinstance(x, SymSize):  # a size crossing a region: its value at run time
        dt = want.dtype if isinstance(want, TensorType) else DType.I64
        return cx.tensor(str(x), dt)
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.ndarray):
        dt = want.dtype if isinstance(want, TensorType) else SCALAR_DTYPES[type(x)]
        return cx.const(x, dt)
    if isinstance(x, list):
        if isinstance(want, ListType):
            el = want.element
        elif jit_type is not None and jit_elem_dtype(jit_type) is not None:
            el = TensorType((), jit_elem_dtype(jit_type))
        elif x:
            el = materialize(cx, x[0]).type
        else:
            raise RegionTypeError("an empty list of tensors crosses a branch or loop (its element shape is unknown)")
        items = [materialize(cx, e, _Typed(el)) for e in x]
        return cx.b.create("list", items, result_types=[ListType(el)]).result
    raise RegionTypeError(f"a {type(x).__name__} value cannot cross a branch or loop at run time")


class _Typed:
    """A stand-in carrying only a type, for `materialize(like=...)`."""

    def __init__(self, type):
        self.type = type


def zeros(cx, t) -> Value:
    if isinstance(t, TensorType):
        return cx.op("full", shape=tuple(t.shape), value=0, dtype=t.dtype)
    if isinstance(t, ListType):
        return cx.b.create("list", [], result_types=[t]).result
    raise RegionTypeError(f"no placeholder for an uninitialized {t}")


def same(a, b) -> bool:
    """Static values equal on both paths (so they need no IR value)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return a is b
