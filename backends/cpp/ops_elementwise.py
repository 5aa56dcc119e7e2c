"""C++ rules of standalone elementwise ops: each is a one-op group through the same loop skeleton
and expression table as fused groups (fused.py)."""
from __future__ import annotations

from xcomp.backends.cpp.fused import emit_block, single_op_block
from xcomp.backends.cpp.lower import rule
from xcomp.ops.registry import REGISTRY, Trait


def elementwise(lw, op, args):
    outs = [lw.out(op, i) for i in range(len(op.results))]
    emit_block(lw, single_op_block(op), args, outs, op.name)
    return outs


rule(*[n for n, d in REGISTRY.items() if d.has(Trait.ELEMENTWISE)])(elementwise)
