"""Inlining: every `xc.call` is replaced by a copy of its callee's body; unreferenced functions go.

Calls nest (a callee may call), so the pass repeats until no call is left; recursion (which
xcomp's frontends never produce) is refused with a VerifyError instead of looping.
"""
from __future__ import annotations

from xcomp.errors import VerifyError
from xcomp.ir.core import Block, Program
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import blocks_of, clone_op, replace_uses

MAX_DEPTH = 64


def _inline_block(program: Program, block: Block, scope: Block) -> bool:
    changed = False
    for op in list(block.ops):
        if op.name != "xc.call":
            continue
        callee = program.funcs[op.attrs["callee"].name]
        mapping = dict(zip(callee.args, op.operands))
        at = block.ops.index(op)
        for inner in callee.body.ops[:-1]:
            new = clone_op(inner, mapping)
            new.parent = block
            block.ops.insert(at, new)
            at += 1
        outs = [mapping.get(v, v) for v in callee.outputs]
        replace_uses(scope, op.results, outs)
        block.ops.remove(op)
        changed = True
    return changed


@register_pass
class Inline(Pass):
    name = "inline"

    def run(self, program: Program) -> bool:
        changed = False
        for _ in range(MAX_DEPTH):
            step = False
            for block, scope in list(blocks_of(program)):
                step |= _inline_block(program, block, scope)
            changed |= step
            if not step:
                break
        else:
            raise VerifyError(f"inline: calls still nest {MAX_DEPTH} deep (recursive functions?)")
        called = {op.attrs["callee"].name for op in program.walk() if op.name == "xc.call"}
        for name in [n for n in program.funcs if n != "main" and n not in called]:
            del program.funcs[name]
            changed = True
        return changed
