"""Build the MIL program of an optimized IR program: inputs, the lowering, outputs.

Interface rules of Core ML models that the IR does not have: inputs and outputs are tensors of rank
>= 1 in fp32/fp16/int32, so 0-d values and host scalars travel as 1-element tensors and bool values
as int32 (reshaped and cast inside the program). The IR signature is kept in the package's metadata
so the runners can give results back in the IR's shapes and dtypes.
"""
from __future__ import annotations

import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import Function, Program as MILProgram, get_new_symbol, types

from xcomp.backends.coreml.elementwise import as_bool, as_dtype
from xcomp.backends.coreml.flexible import flexible_inputs
from xcomp.backends.coreml.lowering import CoreMLLowering, mil_name
from xcomp.backends.coreml.table import MIL_DTYPE, floats_as
from xcomp.errors import LoweringError
from xcomp.ir.core import Program
from xcomp.ir.types import ScalarType, TensorType

_MIL_TYPES = {"fp32": types.fp32, "fp16": types.fp16, "int32": types.int32}


def _interface(t, what: str) -> dict:
    """How one IR input/output type travels through the model interface."""
    if isinstance(t, ScalarType):
        t = TensorType((), t.dtype)
    if not isinstance(t, TensorType):
        raise LoweringError(f"coreml: {what} of type {t} (only tensors and scalars cross a Core ML model's interface)")
    if 0 in t.shape:
        raise LoweringError(f"coreml: {what} of type {t} (Core ML tensors have no zero-size dims)")
    mil = MIL_DTYPE[t.dtype]
    return {"ir_shape": list(t.shape), "ir_dtype": t.dtype.value,
            "shape": list(t.shape) or [1], "dtype": "int32" if mil == "bool" else mil}


def build_mil(program: Program, opset, shape_bounds=None, enumerated=None, float16: bool = False):
    """(MIL program, flexible `ct.TensorType` inputs or None, the IR signature as plain data).
    Symbolic dims become MIL symbols; `flexible.py` turns them into RangeDims or EnumeratedShapes.
    `float16`: every float value computed in fp16 (weights and constants stored in fp16), float32
    inputs and outputs cast at the edges, as coremltools' float16 precision does."""
    import coremltools as ct
    func = program.main
    taken: set[str] = set()
    names = func.arg_names if len(func.arg_names) == len(func.args) else [f"input_{i}" for i in range(len(func.args))]
    ins = [dict(_interface(a.type, f"input {n}"), name=mil_name(n, taken)) for n, a in zip(names, func.args)]
    symbols: dict[str, object] = {}
    specs = {}
    for spec in ins:
        shape = [symbols.setdefault(d, get_new_symbol()) if isinstance(d, str) else d for d in spec["shape"]]
        specs[spec["name"]] = mb.placeholder(shape=shape, dtype=_MIL_TYPES[spec["dtype"]])
    outs = [dict(_interface(v.type, f"output {i}"), name=mil_name(f"output_{i}", taken))
            for i, v in enumerate(func.outputs)]
    import coremltools as ct
    if opset is not None and opset >= ct.target.iOS18:   # attention as MIL's scaled_dot_product_attention
        from xcomp.backends.coreml.passes import raise_attention
        program = raise_attention(program)
        func = program.main
    lowering = CoreMLLowering(program, opset)
    with Function(specs, opset_version=opset) as mil_func, floats_as("fp16" if float16 else None):
        args = [_unwrap(mil_func.inputs[s["name"]], s, a.type, float16) for s, a in zip(ins, func.args)]
        results = lowering.run(args)
        named: set = set()
        mil_func.set_outputs([_wrap(v, s, named) for v, s in zip(results, outs)])
    mil = MILProgram()
    mil.add_function("main", mil_func)
    guards = list(getattr(program, "guards", ()))
    flexible = flexible_inputs(ct, _NP, ins, guards, shape_bounds, enumerated)
    return mil, flexible, {"inputs": ins, "outputs": outs, "guards": [str(g) for g in guards]}


_NP = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32}


def _unwrap(v, spec: dict, t, float16: bool):
    """The model input as the program sees it: 0-d and bool restored, floats in fp16 for float16."""
    if not spec["ir_shape"]:
        v = mb.reshape(x=v, shape=np.array([], np.int32))
    if MIL_DTYPE[t.dtype] == "bool":
        v = as_bool(v)
    if float16 and spec["dtype"] == "fp32":
        v = mb.cast(x=v, dtype="fp16")
    return v


def _wrap(v, spec: dict, named: set):
    """A program result as the model outputs it: rank >= 1, no bools, in the interface's dtype,
    under its output name (the producing op's result renamed; an identity only for inputs,
    constants and repeated results)."""
    dtype = types.builtin_to_string(v.dtype)
    if dtype == "bool":
        v = as_dtype(v, "int32")
    if dtype.startswith("fp") and dtype != spec["dtype"]:   # a float16 program's fp32 output
        if v.rank == 0:
            v = mb.reshape(x=v, shape=np.array([1], np.int32))
        return mb.cast(x=v, dtype=spec["dtype"], name=spec["name"])
    if v.rank == 0:
        return mb.reshape(x=v, shape=np.array([1], np.int32), name=spec["name"])
    if v.op is None or v.op.op_type == "const" or id(v) in named:
        return mb.identity(x=v, name=spec["name"])
    named.add(id(v))
    v.name = spec["name"]
    return v
