"""Dead code elimination: pure ops whose results are unused are removed, at every depth."""
from __future__ import annotations

from xcomp.ir.core import Block, Program
from xcomp.ops.registry import Trait
from xcomp.passes.manager import Pass, register_pass


def _used(program: Program) -> set:
    used = set()
    for op in program.walk():
        used.update(op.operands)
    return used


def _sweep(block: Block, used: set) -> bool:
    changed = False
    for op in list(reversed(block.ops)):
        for r in op.regions:
            changed |= _sweep(r.block, used)
        if op.opdef.has(Trait.PURE) and not any(r in used for r in op.results):
            block.ops.remove(op)
            changed = True
    return changed


@register_pass
class DeadCodeElimination(Pass):
    name = "dce"

    def run(self, program: Program) -> bool:
        changed_any = False
        while True:
            changed = False
            for f in program.funcs.values():
                changed |= _sweep(f.body, _used(program))
            changed_any |= changed
            if not changed:
                break
        live = {op.attrs["name"] for op in program.walk() if op.name == "xc.weight"}
        dead = [k for k in program.weights if k not in live]
        for k in dead:
            del program.weights[k]
        return changed_any or bool(dead)
