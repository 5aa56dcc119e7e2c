"""Common subexpression elimination: pure ops with equal names, operands and attributes merge.

Value numbering over each block in order (regions included; a region sees the values numbered in
its enclosing blocks unless it is isolated). Operands of COMMUTATIVE ops are ordered first, so
`a+b` and `b+a` merge. Weights merge by name; constants by dtype and value.
"""
from __future__ import annotations

import numpy as np

from xcomp.ir.core import Block, Program
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import replace_uses


def _attr_key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, float) and v != v:
        return ("nan",)
    if isinstance(v, (list, tuple)):
        return tuple(_attr_key(x) for x in v)
    return (type(v).__name__, v)


def op_key(op):
    """A hashable key equal for ops that compute the same values (None: never merge)."""
    if not op.opdef.has(Trait.PURE) or op.regions or op.opdef.is_terminator:
        return None
    ids = [id(v) for v in op.operands]
    if op.opdef.has(Trait.COMMUTATIVE):
        ids.sort()
    return (op.name, tuple(ids), tuple(sorted((k, _attr_key(v)) for k, v in op.attrs.items())),
            tuple(r.type for r in op.results))


def _cse_block(block: Block, scope: Block, seen: dict) -> bool:
    changed = False
    for op in list(block.ops):
        for r in op.regions:
            inner = {} if op.opdef.has(Trait.ISOLATED) else dict(seen)
            changed |= _cse_block(r.block, scope, inner)
        key = op_key(op)
        if key is None:
            continue
        if key in seen:
            replace_uses(scope, op.results, seen[key].results)
            block.ops.remove(op)
            changed = True
        else:
            seen[key] = op
    return changed


@register_pass
class CommonSubexpressions(Pass):
    name = "cse"

    def run(self, program: Program) -> bool:
        return any([_cse_block(f.body, f.body, {}) for f in program.funcs.values()])
