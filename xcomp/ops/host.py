"""Host-value ops: TorchScript lists that change at run time, and the asserts scripted code keeps.

Lists whose contents are known when a program is captured stay Python lists in the frontend; only a
list that a loop or branch appends to becomes an IR value (`!xc.list<T>`), updated functionally:
`xc.list_append` returns a new list. `xc.raise` is a check the program keeps: running it raises
`xcomp.ScriptRaiseError` with the scripted message (TorchScript's `prim::RaiseException`).
"""
from __future__ import annotations

import numpy as np

from xcomp.errors import ScriptRaiseError
from xcomp.ir.types import DType, ListType, TensorType
from xcomp.ops.registry import AttrKind, define, req


def _same_list(types, a):
    if not isinstance(types[0], ListType):
        raise TypeError(f"expected a list, got {types[0]}")
    return [types[0]]


def _element(types, a):
    if not isinstance(types[0], ListType):
        raise TypeError(f"expected a list, got {types[0]}")
    return [types[0].element]


define("list_append", _same_list, lambda args, a, out: [list(args[0]) + [args[1]]], operands=2,
       doc="A new list: the list operand with one element appended (TorchScript `aten::append`).")
define("list_get", _element, lambda args, a, out: [args[0][int(np.asarray(args[1]))]], operands=2,
       doc="Element `index` (a 0-d integer tensor, negative counts from the end) of a list.")
define("list_len", lambda types, a: [TensorType((), DType.I64)],
       lambda args, a, out: [np.asarray(len(args[0]), np.int64)], operands=1,
       doc="The length of a list as a 0-d int64 tensor.")


def _raise(args, a, out):
    raise ScriptRaiseError(a["message"])


define("raise", lambda types, a: [], _raise, attrs={"message": req(AttrKind.STR)}, traits=(), operands=0,
       doc="Raise `ScriptRaiseError(message)` when run (a scripted `raise`/`assert` on a taken branch).")
