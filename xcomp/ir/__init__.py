"""The shared IR: types, SSA values, operations with regions, printer, parser and verifier."""
from xcomp.ir.types import DType, Dim, ListType, NoneType, ScalarType, TensorType, Type, tensor  # noqa: F401
from xcomp.ir.core import Block, Func, Location, Operation, Program, Region, SymbolRef, Value  # noqa: F401
