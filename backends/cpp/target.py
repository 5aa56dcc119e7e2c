"""The `cpp` target: the program as one generated C++17 translation unit (emit.py), built into a
shared library with the system compiler and loaded with ctypes (build.py, runtime.py).

Composites without a C++ rule (batch_norm, group_norm, sdpa) reach it decomposed by the pipeline.
"""
from __future__ import annotations

from xcomp.backends import Target
from xcomp.passes.manager import DEFAULT_PIPELINE


class CppTarget(Target):
    name = "cpp"
    array_kind = "numpy"
    pipeline = DEFAULT_PIPELINE

    def unavailable_reason(self) -> str | None:
        from xcomp.backends.cpp.toolchain import unavailable_reason
        return unavailable_reason()

    def supported(self) -> set[str]:
        from xcomp.backends.cpp.emit import load_rules
        from xcomp.backends.cpp.lower import CppLowering
        return set(load_rules()) | set(CppLowering.region_ops)

    def source(self, program) -> str:
        """The generated C++ translation unit of an optimized program."""
        from xcomp.backends.cpp.emit import emit_program
        return emit_program(program).source

    def build(self, program):
        """A runner for `program`; a cached start (same IR text, generator and toolchain) runs neither
        code generation nor the compiler (`build.build_program`)."""
        import numpy as np
        from xcomp.backends.cpp.build import build_program
        from xcomp.backends.cpp.emit import emit_program
        from xcomp.backends.cpp.runtime import load
        from xcomp.ir.printer import print_program
        unit, library = build_program(print_program(program), lambda: emit_program(program))
        # weights as the program types them (a captured 0-d constant may be stored with shape (1,))
        weights = {n: np.asarray(program.weights[n]).reshape(shape) for n, _, shape in unit.weights}
        return load(unit, library, weights)

    def export(self, program, path: str) -> str:
        """Write the standalone CMake project (`export.export_project`: CMakeLists.txt, model.h,
        model.cpp, weights.bin + weights.json, example main.cpp) into the folder `path`."""
        import numpy as np
        from xcomp.backends.cpp.emit import emit_program
        from xcomp.backends.cpp.export import export_project
        unit = emit_program(program)
        weights = {n: np.asarray(program.weights[n]).reshape(shape) for n, _, shape in unit.weights}
        return export_project(unit, weights, path)
