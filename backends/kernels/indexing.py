"""Index arithmetic of the generated kernels: the element offset of an input read at a linear index
of the output, with sizes and strides static (folded in as constants) or symbolic (spelled through
a `SizeVars`, read from the kernel's `sizes` input at run time)."""
from __future__ import annotations

from xcomp.backends.kernels.sizes import dim_mul


def broadcast_strides(shape: tuple, full: tuple) -> list[int]:
    """Element strides of a row-contiguous `shape` read at each index of `full` (0: broadcast)."""
    aligned = (1,) * (len(full) - len(shape)) + tuple(shape)
    strides, acc = [0] * len(full), 1
    for i in range(len(full) - 1, -1, -1):
        strides[i] = 0 if aligned[i] == 1 and full[i] != 1 else acc
        acc = dim_mul(acc, aligned[i])
    return strides


def collapse(sizes: list, strides: list) -> list[tuple]:
    """Drop size-1 dims and merge neighbours that are one run in memory (sizes and strides static
    or symbolic: a symbolic dim is kept even where it may be 1, which indexes the same)."""
    dims = [(s, st) for s, st in zip(sizes, strides) if s != 1]
    out: list[tuple] = []
    for s, st in dims:
        if out and out[-1][1] == dim_mul(st, s):
            out[-1] = (dim_mul(out[-1][0], s), st)
        else:
            out.append((s, st))
    return out


def _static(d):
    return d


def index_expr(sizes: list, strides: list, var: str, sv=_static) -> str:
    """C expression of the element offset at linear index `var` over `sizes` (row-major); `sv`
    spells symbolic sizes and strides (a `SizeVars`)."""
    dims = collapse(sizes, strides)
    terms, inner = [], 1
    for i in range(len(dims) - 1, -1, -1):
        s, st = dims[i]
        c = var if inner == 1 else f"({var} / {sv(inner)})"
        if i > 0:
            c = f"({c} % {sv(s)})"
        if st:
            terms.append(c if st == 1 else f"{c} * {sv(st)}")
        inner = dim_mul(inner, s)
    return " + ".join(reversed(terms)) or "0"
