"""The `reference` target: the numpy interpreter built from the op definitions."""
from __future__ import annotations

from xcomp.backends import Target
from xcomp.passes.manager import DEFAULT_PIPELINE
from xcomp.interpreter import REGION_OPS, ReferenceInterpreter
from xcomp.ops.registry import REGISTRY


class ReferenceTarget(Target):
    name = "reference"
    array_kind = "numpy"
    pipeline = DEFAULT_PIPELINE
    symbolic_sizes = True  # the interpreter binds sizes from each call's inputs

    def supported(self) -> set[str]:
        return {n for n, d in REGISTRY.items() if d.reference is not None} | set(REGION_OPS)

    def build(self, program):
        interp = ReferenceInterpreter(program)
        return interp.run
