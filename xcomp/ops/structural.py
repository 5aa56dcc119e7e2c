"""Structural and control-flow ops: weights, constants, return/yield, if, loop, call, fused groups.

Ops that hold regions have no numpy reference of their own; the interpreter evaluates their regions
(see `xcomp.interpreter`).
"""
from __future__ import annotations

import enum

import numpy as np

from xcomp.ir.types import DType, ListType, NoneType, ScalarType, TensorType
from xcomp.ops.registry import AttrKind, Trait, define, req

S, T, C = Trait.STRUCTURAL, Trait.TERMINATOR, Trait.CONTROL


def _weight_type(types, a):
    raise TypeError("xc.weight takes its result type from the program's weights")


define("weight", _weight_type, None,
       attrs={"name": req(AttrKind.STR)},
       traits=(Trait.PURE, S), operands=0,
       doc="A named tensor stored out of line in Program.weights (parameters, buffers, big constants).")


def _constant_type(types, a):
    v = a["value"]
    if isinstance(v, np.ndarray):
        return [TensorType(v.shape, a["dtype"])]
    return [TensorType((), a["dtype"])]


def _constant_ref(args, a, out):
    return [np.asarray(a["value"]).astype(out[0].dtype.np)]


define("constant", _constant_type, _constant_ref,
       attrs={"value": req(AttrKind.ANY), "dtype": req(AttrKind.DTYPE)},
       traits=(Trait.PURE, S), operands=0,
       doc="A 0-d tensor constant (numbers folded from scalars in the source).")


def _dense_type(types, a):
    return [TensorType(a["value"].shape, a["dtype"])]


define("dense", _dense_type, _constant_ref,
       attrs={"value": req(AttrKind.TENSOR), "dtype": req(AttrKind.DTYPE)},
       traits=(Trait.PURE, S), operands=0,
       doc="A small tensor constant written inline (`dense<...>`).")


def _scalar_type(types, a):
    v = a["value"]
    dt = DType.BOOL if isinstance(v, bool) else DType.I64 if isinstance(v, int) else DType.F64
    return [ScalarType(dt)]


define("scalar", _scalar_type, lambda args, a, out: [a["value"]],
       attrs={"value": req(AttrKind.ANY)}, traits=(Trait.PURE, S), operands=0,
       doc="A host scalar constant (TorchScript int/float/bool).")

define("none", lambda types, a: [NoneType()], lambda args, a, out: [None], traits=(Trait.PURE, S),
       operands=0, doc="TorchScript's None.")

define("list", lambda types, a: [ListType(types[0] if types else NoneType())],
       lambda args, a, out: [list(args)], doc="Build a host list from its operands.")

define("return", lambda types, a: [], None, traits=(T, S), doc="Ends a function with its outputs.")
define("yield", lambda types, a: [], None, traits=(T, S), doc="Ends a region with its outputs.")


def _from_regions(types, a):
    """Result types of a region-holding op are the types its region yields: builders pass them."""
    raise TypeError("result types of region ops come from their regions")


define("if", _from_regions, None, traits=(C,), operands=1, regions=2,
       doc="`xc.if(cond) ({then}, {else})`: runs one region and returns what it yields.")

define("loop", _from_regions, None, traits=(C,), regions=1,
       doc="`xc.loop(trip_count, cond, *carried)`: TorchScript prim::Loop. The body takes "
           "(iteration, *carried) and yields (cond, *carried).")


class FusionKind(enum.Enum):
    """What a fused group computes, so backends pick a kernel skeleton."""

    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"        # row reductions with elementwise prologue/epilogue
    MATMUL_EPILOGUE = "matmul_epilogue"
    CONV_EPILOGUE = "conv_epilogue"


define("fused", _from_regions, None, attrs={"kind": req(AttrKind.ENUM, enum=FusionKind)},
       traits=(Trait.PURE, Trait.ISOLATED), regions=1,
       doc="A fusion group: its body sees only its block arguments (one per operand).")

define("call", _from_regions, None, attrs={"callee": req(AttrKind.SYMBOL)}, traits=(C,),
       doc="Call another function of the program.")
