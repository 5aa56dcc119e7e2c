"""One program -> one C++17 translation unit (`CppUnit`, see unit.py).

The program's `@main` is lowered by `CppLowering` (lower.py) through the op rules of the `ops_*`
modules and the fused-group loops of fused.py; the skeleton is templates/cpp/unit.j2, with the
dialect helpers (templates/cpp/header.j2, which includes the math helpers shared with Metal and
CUDA) and the op helpers (templates/cpp/ops.h) inlined, so the unit needs only "xcomp_runtime.h".
Names in the source are generated (`x0`, `w3`, `b12`); nothing from the model reaches it.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from importlib.resources import files

from xcomp.backends.cpp.lower import CppLowering, shape_of
from xcomp.backends.cpp.sizes import NeedsStaticSizes, ir_dims
from xcomp.backends.cpp.unit import CppUnit
from xcomp.backends.kernels.codegen import render
from xcomp.backends.kernels.exprs import CPP_DIALECT
from xcomp.ir.core import Program
from xcomp.ir.types import ListType


def load_rules() -> dict:
    """Import every `ops_*` rule family and return the filled table."""
    from xcomp.backends import cpp as pkg
    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name.startswith("ops_"):
            importlib.import_module(f"{pkg.__name__}.{m.name}")
    return CppLowering.table


def _output_type(v):
    """The type an output slot describes: the value's, or a list's element type."""
    return v.type.element if isinstance(v.type, ListType) else v.type


@functools.lru_cache(maxsize=None)
def prelude() -> str:
    """The opening of every unit: `#include "xcomp_runtime.h"`, the dialect helpers
    (templates/cpp/header.j2) and the op helpers (templates/cpp/ops.h), inside an include guard
    (templates/cpp/prelude.j2). Its text is the same for every program, so builds include it
    precompiled (prebuilt.py); the unit stays one self-contained file."""
    return render("cpp", "prelude", header=render("cpp", "header", d=CPP_DIALECT.helpers()),
                  ops=files("xcomp.templates").joinpath("cpp/ops.h").read_text())


def emit_program(program: Program, name: str = "model") -> CppUnit:
    """The C++ translation unit of `program` (raises LoweringError listing every op the C++ backend
    cannot lower). Symbolic sizes become run-time sizes of `xc_run_sizes` (unit.py); a rule that
    needs one of them static raises `NeedsStaticSizes` naming its op (the target then builds per
    size binding)."""
    load_rules()
    lw = CppLowering(program)
    for op in program.walk():     # weights are declared up front, so nested regions can read them
        if op.name == "xc.weight" and op.attrs["name"] not in lw.weights:
            lw.weights[op.attrs["name"]] = lw.weight(op.attrs["name"], op.results[0].type)
    try:
        ins, outs = lw.main()
    except NeedsStaticSizes as e:
        e.op = e.op or "xc.fused"
        raise
    symbolic = bool(lw.sizes)
    if not symbolic and lw.dynamic:
        raise NeedsStaticSizes("symbolic sizes that the inputs do not bind", "xc.fused")
    safe = "".join(ch for ch in name if ch.isalnum() or ch == "_") or "model"
    source = render("cpp", "unit", name=safe, prelude=prelude(), statics=lw.statics, body=lw.lines, arena=lw.arena,
                    n_inputs=len(ins),
                    n_outputs=len(outs), n_lists=len(lw.list_outputs), n_weights=len(lw.weight_order), n_packs=lw.packs, sizes=lw.sizes,
                    prologue=lw.prologue() if symbolic else [])
    func = program.main
    return CppUnit(
        source=source,
        inputs=[(a.type.dtype, ir_dims(shape_of(a.type))) for a in func.args],
        outputs=[(t.dtype, ir_dims(shape_of(t))) for t in map(_output_type, func.outputs)],
        weights=[(w, lw.weights[w].dtype, lw.weights[w].shape) for w in lw.weight_order],
        uses_blas=lw.uses_blas, arena_bytes=lw.arena, name=safe, sizes=list(lw.sizes),
        arena_dynamic=[b.d for b in lw.dynamic], list_outputs=list(lw.list_outputs))
