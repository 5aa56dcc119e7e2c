"""The Core ML lowering table: op name -> `rule(args, attrs, out_types) -> list[Var]`.

Rules call coremltools' MIL builder (`mb`) on MIL Vars and return one Var per result. Family modules
fill the table with `@lowers("add")`. Shared helpers (dtype names, constants, axis lists) live here.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from xcomp.errors import LoweringError
from xcomp.ir.types import DType, TensorType

COREML_OPS: dict[str, Callable] = {}
# Rules for MIL ops of a later opset: op name -> (deployment target name, rule). They join the table
# only for programs built for that target or later (`table_for`), and are not in `supported()`, so the
# pass pipeline still decomposes those ops for every target; the builder raises them back
# (`passes.raise_attention`) where the opset has the op.
COREML_OPS_SINCE: dict[str, tuple[str, Callable]] = {}

# IR dtype -> MIL dtype name. Core ML ML programs compute in fp32/fp16, int32 and bool: 64-bit and
# bfloat16 values are held in the nearest type MIL has (the runner casts results back).
MIL_DTYPE = {DType.F64: "fp32", DType.F32: "fp32", DType.BF16: "fp32", DType.F16: "fp16",
             DType.I64: "int32", DType.I32: "int32", DType.I16: "int32", DType.I8: "int32",
             DType.U8: "int32", DType.BOOL: "bool"}
MIL_NUMPY = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}


def lowers(*names: str, since: str | None = None):
    """Register one rule for ops `xc.<name>`; the rule returns one Var or a list of Vars. `since`
    ("iOS18"): the rule needs that deployment target (see `COREML_OPS_SINCE`)."""
    def register(fn):
        for n in names:
            key = n if "." in n else f"xc.{n}"
            if key in COREML_OPS or key in COREML_OPS_SINCE:
                raise ValueError(f"Core ML lowering for {key} registered twice")
            if since is None:
                COREML_OPS[key] = _as_list(fn)
            else:
                COREML_OPS_SINCE[key] = (since, _as_list(fn))
        return fn
    return register


def table_for(opset) -> dict[str, Callable]:
    """The rules for a program built for deployment target `opset` (a `ct.target`, or None)."""
    if opset is None:
        return COREML_OPS
    import coremltools as ct
    newer = {k: fn for k, (since, fn) in COREML_OPS_SINCE.items() if opset >= getattr(ct.target, since)}
    return {**COREML_OPS, **newer} if newer else COREML_OPS


def _as_list(fn):
    def run(args, attrs, out_types):
        out = fn(args, attrs, out_types)
        return list(out) if isinstance(out, (list, tuple)) else [out]
    return run


# The MIL dtype of every float value while a program is built for float16 precision ("fp16"), or
# None (floats as MIL_DTYPE maps them). Building in float16 directly gives what coremltools'
# `add_fp16_cast` pass makes of a float32 program, at a fraction of its cost (see `build_mil`).
_FLOATS: dict[str, str | None] = {"as": None}


@contextlib.contextmanager
def floats_as(dtype: str | None):
    """While active, `mil_dtype` gives `dtype` for every float IR dtype."""
    before, _FLOATS["as"] = _FLOATS["as"], dtype
    try:
        yield
    finally:
        _FLOATS["as"] = before


def mil_dtype(t) -> str:
    """The MIL dtype name holding values of IR dtype (or tensor type) `t`."""
    d = MIL_DTYPE[t.dtype if isinstance(t, TensorType) else t]
    return _FLOATS["as"] if _FLOATS["as"] and d.startswith("fp") else d


def np_dtype(t) -> type:
    return MIL_NUMPY[mil_dtype(t)]


INT32 = np.iinfo(np.int32)


def const(value, like_type) -> np.ndarray:
    """A numpy constant in the MIL dtype of IR type `like_type` (MIL makes it a const op). 64-bit
    integers must fit in int32, except the int64 extremes (TorchScript's "no limit" loop counts),
    which saturate."""
    a = np.asarray(value)
    want = np_dtype(like_type)
    if want is np.int32 and a.dtype.kind in "iu" and a.size:
        big = np.iinfo(np.int64)
        a = np.where(a == big.max, INT32.max, np.where(a == big.min, INT32.min, a))
        if a.max() > INT32.max or a.min() < INT32.min:
            raise LoweringError(f"coreml: integer constant {a.max() if a.max() > INT32.max else a.min()} "
                                "does not fit Core ML's int32")
    return a.astype(want)


def dtype_name(var) -> str:
    """The MIL dtype name of a Var (fp32, fp16, int32, bool)."""
    from coremltools.converters.mil.mil import types
    return types.builtin_to_string(var.dtype)


def is_float(var) -> bool:
    return dtype_name(var).startswith("fp")


def scalar_like(value, var) -> np.ndarray:
    """A 0-d constant with `var`'s MIL dtype."""
    return np.asarray(value).astype(MIL_NUMPY[dtype_name(var)])


def axes_of(axes, rank: int) -> list[int]:
    """Reduction axes: empty means all."""
    return [a % rank for a in axes] if axes else list(range(rank))


def unsupported(op: str, why: str) -> LoweringError:
    return LoweringError(f"coreml cannot lower xc.{op}: {why}")
