"""Backends (targets). Each target is one class implementing `Target`; `TARGETS` lists them.

A target says whether it can run here (`unavailable_reason`), which ops it lowers (`supported`),
how to build a runner for a program (`build`), and how to write its artifact (`export`).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

from xcomp.errors import TargetError
from xcomp.ir.core import Program

# target name -> "module:Class", imported on first use so `import xcomp` needs no optional deps.
TARGETS: dict[str, str] = {
    "reference": "xcomp.backends.reference:ReferenceTarget",
    "mlx": "xcomp.backends.mlx.target:MLXTarget",
    "mlx-source": "xcomp.backends.mlx_source.target:MLXSourceTarget",
    "metal": "xcomp.backends.kernels.target:MetalTarget",
    "cuda": "xcomp.backends.kernels.target:CudaTarget",
    "cpp": "xcomp.backends.cpp.target:CppTarget",
    "coreml": "xcomp.backends.coreml.target:CoreMLTarget",
}


class Target:
    """Base class of targets."""

    name: str = ""
    array_kind: str = "numpy"      # the array type runners take and return: "numpy" or "mlx"
    pipeline: Sequence[str] = ()   # pass names run before `build` (see xcomp.passes)
    # Whether `build` runs programs with symbolic sizes itself (binding them from each call's
    # inputs, as `backends.lowering.Lowering` does). Otherwise `xcomp.compile` builds one program
    # specialised per size binding (`xcomp.specialize.per_size`). See `xcomp.guards` for what a
    # backend reads: the symbolic input dims, `Program.guards`, DIMS/SYM attributes.
    symbolic_sizes: bool = False

    def with_options(self, **options) -> "Target":
        """This target configured with target-specific options (`xcomp.export(..., **options)`)."""
        if options:
            raise TargetError(f"target '{self.name}' takes no options (got {', '.join(sorted(options))})")
        return self

    def unavailable_reason(self) -> str | None:
        """None when the target can run on this machine, else why not."""
        return None

    def prepare(self) -> None:
        """Start, in the background, what builds of this target may need (cpp: the prebuilt prelude and
        GEMM object). `xcomp.compile` calls it before a torch.export capture (a capture cache miss) so
        the work overlaps capture and passes; a start whose capture is cached never calls it."""

    def supported(self) -> set[str]:
        """Op names this target lowers directly."""
        raise NotImplementedError

    def build(self, program: Program) -> Callable[[Sequence[Any]], list]:
        """A runner: list of native arrays in, list of native arrays out."""
        raise NotImplementedError

    def export(self, program: Program, path: str) -> str:
        """Write this target's artifact; default: the IR text and its weights."""
        from xcomp.serialize import save
        return save(program, path)


def get_target(name: str) -> Target:
    """The target called `name`; raises TargetError for an unknown name."""
    if name not in TARGETS:
        raise TargetError(f"unknown target '{name}'; known targets: {', '.join(sorted(TARGETS))}")
    module, cls = TARGETS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def require_runnable(target: Target) -> None:
    reason = target.unavailable_reason()
    if reason:
        raise TargetError(f"target '{target.name}' cannot run on this machine: {reason}")
