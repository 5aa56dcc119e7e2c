"""Factory ops: tensors made from attributes alone (full, arange).

zeros/ones/empty/full and their `_like`/`new_` forms become `full`; `arange` is the iota.
"""
from __future__ import annotations

import math

import numpy as np

from xcomp import guards
from xcomp.ir import symbolic as sym
from xcomp.ir.types import DType, TensorType
from xcomp.ops.registry import AttrKind, Trait, attr, define, req


def _full_infer(types, a):
    if any(isinstance(d, int) and d < 0 for d in a["shape"]):
        raise ValueError(f"xc.full: negative size in {a['shape']}")
    return [TensorType(a["shape"], a["dtype"])]


def fill_value(value, dtype: DType) -> np.ndarray:
    """`value` as a 0-d array of `dtype` (floats truncated toward zero for integer dtypes)."""
    if dtype.is_int and isinstance(value, float) and math.isfinite(value):
        value = math.trunc(value)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(value, np.float64 if isinstance(value, float) else None).astype(dtype.np)


def _full_ref(args, a, out):
    return [np.full(out[0].shape, fill_value(a["value"], out[0].dtype))]


define("full", _full_infer, _full_ref,
       attrs={"shape": req(AttrKind.DIMS), "value": req(AttrKind.ANY), "dtype": req(AttrKind.DTYPE)},
       traits=(Trait.PURE,), operands=0,
       doc="A tensor of `shape` filled with `value` (zeros, ones, empty, full and their variants).")


def _size_ref(args, a, out):
    if isinstance(a["value"], str):
        raise ValueError(f"xc.size: size '{a['value']}' is not bound (run through a target, which binds sizes)")
    return [np.asarray(a["value"], out[0].dtype.np)]


define("size", lambda types, a: [TensorType((), a["dtype"])], _size_ref,
       attrs={"value": req(AttrKind.SYM), "dtype": attr(AttrKind.DTYPE, DType.I64)},
       traits=(Trait.PURE,), operands=0,
       doc="A size as a 0-d tensor: `value` is an int or a symbolic size expression (`2*S`), evaluated "
           "at the sizes bound for the call (a SymInt of torch.export used as a value).")


def arange_length(start, end, step) -> int:
    """Number of elements of arange(start, end, step), as torch computes it (in double)."""
    if step == 0:
        raise ValueError("xc.arange: step must be non-zero")
    n = math.ceil((float(end) - float(start)) / float(step))
    if (end - start) * step < 0:
        raise ValueError(f"xc.arange: range [{start}, {end}) is empty in the direction of step {step}")
    return max(int(n), 0)


def _arange_infer(types, a):
    start, end, step = a["start"], a["end"], a["step"]
    if any(isinstance(v, str) for v in (start, end, step)):
        if isinstance(step, str) or not all(isinstance(v, int) for v in (step,)) or step == 0 or \
                isinstance(start, float) or isinstance(end, float):
            raise ValueError(f"xc.arange over a symbolic size needs integer start, end and step ({start}, {end}, {step})")
        span = sym.sub(end, start) if step > 0 else sym.sub(start, end)
        guards.require(span, ">=", 0, f"xc.arange({start}, {end}, {step})")
        return [TensorType((sym.floordiv(sym.add(span, abs(step) - 1), abs(step)),), a["dtype"])]
    return [TensorType((arange_length(start, end, step),), a["dtype"])]


def _arange_ref(args, a, out):
    n = out[0].shape[0]
    start, step = a["start"], a["step"]
    if all(isinstance(v, int) for v in (start, step)):
        return [(start + step * np.arange(n, dtype=np.int64)).astype(out[0].dtype.np)]
    return [(start + step * np.arange(n, dtype=np.float64)).astype(out[0].dtype.np)]


define("arange", _arange_infer, _arange_ref,
       attrs={"start": req(AttrKind.SYM), "end": req(AttrKind.SYM), "step": req(AttrKind.ANY),
              "dtype": req(AttrKind.DTYPE)},
       traits=(Trait.PURE,), operands=0,
       doc="start, start + step, ... up to (not including) end: the iota.")
