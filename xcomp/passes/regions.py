"""Region simplifications, run as part of `canonicalize` (as MLIR canonicalizes `scf.if`):

- an `xc.if` whose condition is a constant becomes the ops of the taken region;
- an `xc.if` whose regions only yield (outer values or constants) becomes one `xc.where` per result:
  `if t == eos: keep = False else: keep = True` is `keep = where(t == eos, False, True)`, so a loop
  body no longer stops to read its condition twice per iteration.

- constants and weights inside an `xc.if` or `xc.loop` move before it (same value on every path and
  iteration; a loop body stops re-issuing them).

Nothing else moves *into* or *out of* a region: computations of a branch or loop body stay where
they are, so no work is hoisted across a branch that changes results.
"""
from __future__ import annotations

from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Operation, Program
from xcomp.ir.types import TensorType
from xcomp.rewrite import CONSTANT_OPS, blocks_of, constant_value, replace_uses


def _inline_taken(block: Block, scope: Block, op: Operation) -> bool:
    cond = constant_value(op.operands[0])
    if cond is None or cond.size != 1:
        return False
    region = op.regions[0 if bool(cond.reshape(())) else 1].block
    index = block.ops.index(op)
    body, term = region.ops[:-1], region.ops[-1]
    for k, inner in enumerate(body):
        block.insert(index + k, inner)
    region.ops = [term]
    replace_uses(scope, op.results, list(term.operands))
    block.ops.remove(op)
    return True


def _only_yields(region) -> bool:
    return all(o.name in CONSTANT_OPS for o in region.block.ops[:-1])


def _to_select(block: Block, scope: Block, op: Operation) -> bool:
    if not all(_only_yields(r) for r in op.regions) or not op.results:
        return False
    if not all(isinstance(r.type, TensorType) and r.type.is_static for r in op.results):
        return False
    b = Builder(block, block.ops.index(op), op.loc)

    def outer(v, region):
        return b.create(v.op.name, [], v.op.attrs).result if v.op is not None and v.op.parent is region.block else v
    then_vals = [outer(v, op.regions[0]) for v in op.regions[0].block.ops[-1].operands]
    else_vals = [outer(v, op.regions[1]) for v in op.regions[1].block.ops[-1].operands]
    cond = op.operands[0]
    if cond.type.rank:
        cond = b.op("reshape", cond, shape=())
    outs = [b.op("where", cond, t, e) for t, e in zip(then_vals, else_vals)]
    replace_uses(scope, op.results, outs)
    block.ops.remove(op)
    return True


INVARIANT = CONSTANT_OPS + ("xc.weight",)


def _hoist_constants(region_op: Operation) -> bool:
    """Constants and weights in the regions of `region_op` (an if or loop) move before it: they are
    the same on every path and iteration, and a loop body no longer re-issues them per iteration."""
    moved = False
    outer = region_op.parent
    for r in region_op.regions:
        for op in [o for o in r.block.ops if o.name in INVARIANT]:
            r.block.ops.remove(op)
            outer.insert(outer.ops.index(region_op), op)
            moved = True
    return moved


def simplify_regions(program: Program) -> bool:
    """Apply the region simplifications everywhere; True when something changed."""
    changed = False
    for block, scope in list(blocks_of(program)):
        for op in [o for o in block.ops if o.name == "xc.if"]:
            changed |= _inline_taken(block, scope, op) or _to_select(block, scope, op)
        for op in [o for o in block.ops if o.name in ("xc.if", "xc.loop") and o.parent is block]:
            changed |= _hoist_constants(op)
    return changed

