"""The `cpp` target: the program as one generated C++17 translation unit (emit.py), built into a
shared library with the system compiler and loaded with ctypes (build.py, runtime.py).

Composites without a C++ rule (batch_norm, group_norm, sdpa) reach it decomposed by the pipeline.

Symbolic sizes: a program is built once, its sizes run-time arguments of the generated code
(`sizes.py`, `unit.py`); `static_size_ops` names the op when a rule needs a size static, and
`xcomp.compile` then builds that program per size binding (`compiled.stats.static_ops`).
"""
from __future__ import annotations

from xcomp.backends import Target
from xcomp.passes.manager import DEFAULT_PIPELINE


class CppTarget(Target):
    name = "cpp"
    array_kind = "numpy"
    pipeline = DEFAULT_PIPELINE
    symbolic_sizes = True   # sizes are arguments of the generated entry point (see static_size_ops)

    def __init__(self):
        self._emitted = None    # (program, unit or the NeedsStaticSizes raised): one emission per program

    def unavailable_reason(self) -> str | None:
        """None when a compiler is found and probed."""
        from xcomp.backends.cpp.toolchain import unavailable_reason
        return unavailable_reason()

    def prepare(self) -> None:
        """Start building the parts every unit shares (prebuilt.py) in the background: `xcomp.compile`
        calls it before capturing with torch.export (not on a start whose capture is cached, where
        computing that entry's key would cost more than the rest of the start)."""
        from xcomp.backends.cpp import prebuilt
        if self.unavailable_reason() is None:
            prebuilt.prepare()

    def runtime_details(self) -> str:
        """What builds here use (`xcomp targets`): the BLAS found and the thread runtime."""
        from xcomp.backends.cpp.toolchain import toolchain
        t = toolchain()
        return f"BLAS: {t.blas.describe()}; threads: {'OpenMP' if t.openmp else 'pthread pool'}"

    def supported(self) -> set[str]:
        from xcomp.backends.cpp.emit import load_rules
        from xcomp.backends.cpp.lower import CppLowering
        return set(load_rules()) | set(CppLowering.region_ops)

    def source(self, program) -> str:
        """The generated C++ translation unit of an optimized program."""
        from xcomp.backends.cpp.emit import emit_program
        return emit_program(program).source

    def _emit(self, program):
        from xcomp.backends.cpp.emit import emit_program
        from xcomp.backends.cpp.sizes import NeedsStaticSizes
        if self._emitted is None or self._emitted[0] is not program:
            try:
                self._emitted = (program, emit_program(program))
            except NeedsStaticSizes as e:
                self._emitted = (program, e)
        got = self._emitted[1]
        if isinstance(got, Exception):
            raise got
        return got

    def static_size_ops(self, program) -> list[str]:
        """Ops of a program with symbolic sizes whose C++ rule needs them static ([]: none, the
        program builds once with its sizes as run-time arguments)."""
        from xcomp.backends.cpp.sizes import NeedsStaticSizes
        try:
            self._emit(program)
        except NeedsStaticSizes as e:
            return [f"{e.op}: {e}"]
        return []

    def build(self, program):
        """A runner for `program`; a cached start (same IR text, generator and toolchain) runs neither
        code generation nor the compiler (`build.build_program`)."""
        import numpy as np
        from xcomp.backends.cpp.build import build_program
        from xcomp.backends.cpp.runtime import load
        from xcomp.ir.printer import print_program
        unit, library = build_program(print_program(program), lambda: self._emit(program))
        # weights as the program types them (a captured 0-d constant may be stored with shape (1,))
        weights = {n: np.asarray(program.weights[n]).reshape(shape) for n, _, shape in unit.weights}
        return load(unit, library, weights)

    def export(self, program, path: str) -> str:
        """Write the standalone CMake project (`export.export_project`: CMakeLists.txt, model.h,
        model.cpp, weights.bin + weights.json, example main.cpp) into the folder `path`. The project
        is static: a program with symbolic sizes raises TargetError (export it for the example's
        sizes, `dynamic=False`)."""
        import numpy as np
        from xcomp.backends.cpp.emit import emit_program
        from xcomp.backends.cpp.export import export_project
        from xcomp.errors import TargetError
        from xcomp.guards import symbolic_args
        if symbolic_args(program):   # model.h states every shape and byte size as a constant
            raise TargetError("the cpp project export takes static shapes: export with dynamic=False (the "
                              "example inputs' sizes); xcomp.compile(..., target='cpp', dynamic=...) runs one "
                              "library for every size")
        unit = emit_program(program)
        weights = {n: np.asarray(program.weights[n]).reshape(shape) for n, _, shape in unit.weights}
        return export_project(unit, weights, path)
