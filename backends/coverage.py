"""Which ops of a program a target lowers, directly or through a decomposition."""
from __future__ import annotations

from xcomp.ir.core import Program


def coverage(target, program: Program) -> list[str]:
    """Op names in `program` that `target` cannot lower (empty list: full coverage)."""
    supported = target.supported()
    missing = set()
    for op in program.walk():
        if op.opdef.is_terminator or op.opdef.is_structural or op.name in supported:
            continue
        missing.add(op.name)
    return sorted(missing)
