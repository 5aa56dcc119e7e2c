"""The generated C++ translation unit and its calling convention (the contract between the C++
code generator, `emit.py`, and the build/load layer, `build.py`/`runtime.py`).

`emit_program(program) -> CppUnit`. `CppUnit.source` is one C++17 translation unit whose first line
is `#include "xcomp_runtime.h"` and which defines, with C linkage:

    void* xc_create(const void* const* weights);
    int   xc_run(void* model, const void* const* inputs, void* const* outputs);
    const char* xc_error(void* model);
    void  xc_destroy(void* model);

A program with symbolic sizes defines, instead of `xc_run`,

    int   xc_run_sizes(void* model, const int64_t* sizes, const void* const* inputs, void* const* outputs);

with `sizes` the values of `CppUnit.sizes` (size names, in that order) bound from the inputs' shapes
(`xcomp.guards.bind_types`; the caller checks the program's guards first). Input and output shapes
are then size expressions (`CppUnit.inputs`/`outputs` hold canonical dims: ints or size text) and
the arena grows inside the call when these sizes need more than it has.

Buffers (weights, inputs, outputs) are C-contiguous element storage:
  f32 float, f64 double, f16 IEEE half bits (uint16_t; numpy float16 bytes as they are),
  bf16 the upper 16 bits of a float32 (uint16_t; the loader converts xcomp's float32 bf16 arrays with
  round-to-nearest-even, and back), i64/i32/i16/i8/ui8 the C integer of that width, bool one byte
  (0/1, numpy bool bytes as they are).
List results (`!xc.list<T>`, indices in `CppUnit.list_outputs`): the output slot points to a
caller's `xc_list_view { int64_t n; const void* data; }` that the call fills: `n` elements of `T`
(the dtype and shape `outputs` states for that slot) stored back to back at `data`, owned by the
model and valid until its next run or `xc_destroy` (copy them out before either).

Host scalars (a `ScalarType` @main argument or result; shape `()` in `inputs`/`outputs`) are passed
through a pointer to one element of the same storage (i64 -> int64_t, f64 -> double, i1 -> uint8).
Tensors of shape `()` are one element too, so the caller need not tell the two apart.

`xc_create` copies nothing: weight pointers must stay valid for the model's life. It allocates the
arena (`arena_bytes`, also reported for information) and returns NULL on failure. `xc_run` returns 0
on success; a non-zero return means `xc_error(model)` holds a message (a failed runtime assert from
the program, an index out of range, ...). Outputs are preallocated by the caller at the shapes in
`outputs`. A model is not reentrant: one `xc_run` at a time per model (the arena is shared).

The source uses from "xcomp_runtime.h": `xc_parallel_for(n, grain, f)` (calls `f(begin, end)`),
`xc_sgemm(...)` (row-major, only when `uses_blas`), `xc_f16_to_f32`, `xc_f32_to_f16`,
`xc_bf16_to_f32`, `xc_f32_to_bf16`, and the vectorizable `xc_vexp`, `xc_vtanh`, `xc_verf` (the cpp
dialect spells exp/tanh/erf with them). Its own serial `xc_parallel_for` is compiled only when the
runtime header does not `#define XC_HAVE_PARALLEL_FOR`. The generated code defines helpers named
`xc_<math>` of the kernel dialects (xc_erf, xc_max, xc_min, xc_hypot, ...; templates/cpp/header.j2)
and the op helpers of templates/cpp/ops.h: the runtime header should not define those names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from xcomp.ir.types import DType


@dataclass
class CppUnit:
    """One program as C++ source plus what a loader needs to call it."""

    source: str                                   # the whole translation unit
    inputs: list[tuple[DType, tuple]]             # @main args in order (host scalars: shape ()); dims int or size text
    outputs: list[tuple[DType, tuple]]            # @main results in order (a list: its element's)
    weights: list[tuple[str, DType, tuple]]       # program.weights names, in xc_create's order
    uses_blas: bool                               # calls xc_sgemm
    arena_bytes: int                              # bytes of intermediates' arena (its static part)
    name: str = "model"                           # sanitized ([A-Za-z0-9_]) name for files
    sizes: list[str] = field(default_factory=list)     # size names xc_run_sizes takes ([]: static program)
    arena_dynamic: list = field(default_factory=list)  # bytes (size text) of each slot after the static part
    list_outputs: list[int] = field(default_factory=list)  # outputs that are lists (of the element in `outputs`)

    def arena_at(self, env) -> int:
        """Arena bytes a call with sizes `env` ({"S": 128}) needs (64-byte aligned slots)."""
        from xcomp.ir import symbolic as sym
        return self.arena_bytes + sum(-(-sym.evaluate(b, env) // 64) * 64 for b in self.arena_dynamic)
