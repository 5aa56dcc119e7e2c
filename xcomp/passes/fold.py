"""Constant folding through the op definitions' numpy references, with a size bound.

An op whose operands are all constants (`xc.constant`, `xc.dense`), or a factory made from its
attributes alone (`xc.full`, `xc.arange`: masks, position ids), is evaluated with its
definition's reference (the interpreter's casting rules included) and replaced by a constant: a 0-d
result becomes `xc.constant`, a larger one `xc.dense`. A result is folded only when it has at most
`FOLD_LIMIT` elements or no more than its largest input, so folding never balloons a program
(`broadcast_to` of a scalar to a big shape stays an op).

Arithmetic over symbolic sizes folds too: `add`/`sub`/`mul`/`floor_div`/`remainder` of `xc.size`
values and integer constants becomes one `xc.size` holding the canonical expression (`xc.size
{value = "S"}` times 2 plus `xc.size {value = "T"}` is `xc.size {value = "2*S+T"}`); a size with no
name left is an int and then folds to a constant. CSE merges equal sizes (equal canonical text).
"""
from __future__ import annotations

import numpy as np

from xcomp.interpreter import _reference_impl
from xcomp.ir import symbolic as sym
from xcomp.ir.core import Program, Value
from xcomp.ir.types import TensorType
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import Pat, PatternSet, apply_patterns, constant_value

FOLD_LIMIT = 1024  # elements


def foldable_op(op) -> bool:
    """A pure compute op with a reference whose results are static tensors (factories included)."""
    d = op.opdef
    return (not op.regions and d.reference is not None and not d.is_structural
            and d.has(Trait.PURE) and all(isinstance(r.type, TensorType) and r.type.is_static for r in op.results))


def _foldable(v: Value) -> bool:
    return foldable_op(v.op)


def within_bound(out: np.ndarray, inputs: list[np.ndarray], limit: int = FOLD_LIMIT) -> bool:
    """True when a folded result of this size does not grow the program."""
    return out.size <= max(limit, max((np.size(i) for i in inputs), default=0))


def materialize(b, array: np.ndarray, t: TensorType) -> Value:
    """A constant op holding `array` with type `t` (0-d: `xc.constant`, else `xc.dense`)."""
    array = np.asarray(array).astype(t.dtype.np)
    if array.ndim == 0:
        return b.op("constant", value=array.item(), dtype=t.dtype)
    return b.op("dense", value=array, dtype=t.dtype)


def evaluate(op, args: list[np.ndarray]) -> np.ndarray | None:
    """`op`'s first result on `args` by its reference, or None when the reference cannot evaluate
    it or the result would grow the program (see `within_bound`)."""
    t = op.results[0].type
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(_reference_impl(op.opdef)(args, op.attrs, [t])[0])
    except Exception:  # an op the reference cannot evaluate on these values stays as it is
        return None
    if out.shape != tuple(t.shape) or not within_bound(out, args):
        return None
    return out


def _fold(m) -> Value | None:
    out = evaluate(m.op, [constant_value(v) for v in m.op.operands])
    return None if out is None else materialize(m.b, out, m.op.results[0].type)


# -- arithmetic over symbolic sizes (`xc.size`): folded into one size expression ---------------------
SIZE_ARITH = {"xc.add": sym.add, "xc.sub": sym.sub, "xc.mul": sym.mul,
              "xc.floor_div": lambda a, b: sym.floordiv(a, b) if isinstance(b, int) and b > 0 else None,
              "xc.remainder": lambda a, b: sym.mod(a, b) if isinstance(b, int) and b > 0 else None}


def _size_of(v: Value):
    """The size a 0-d integer value holds: an `xc.size` expression or an integer constant, else None."""
    if not isinstance(v.type, TensorType) or v.type.shape != () or not v.type.dtype.is_int or v.op is None:
        return None
    if v.op.name == "xc.size":
        return v.op.attrs["value"]
    c = constant_value(v)
    return int(c) if c is not None else None


def _size_arith(v: Value) -> bool:
    return v.op is not None and v.op.name in SIZE_ARITH and v.type.shape == () and v.type.dtype.is_int \
        and any(o.op is not None and o.op.name == "xc.size" for o in v.op.operands) \
        and all(_size_of(o) is not None for o in v.op.operands)


def _fold_sizes(m) -> Value | None:
    a, b = (_size_of(o) for o in m.op.operands)
    try:
        value = SIZE_ARITH[m.op.name](a, b)
    except sym.SymbolicError:
        return None
    if value is None:
        return None
    return m.b.op("size", value=value, dtype=m.op.results[0].type.dtype)


FOLDING = PatternSet([(Pat(where=_foldable, each=Pat.const()), _fold), (Pat(where=_size_arith), _fold_sizes)])


@register_pass
class FoldConstants(Pass):
    """Replace ops over constants by their value."""

    name = "fold_constants"

    def run(self, program: Program) -> bool:
        return apply_patterns(program, FOLDING)
