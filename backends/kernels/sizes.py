"""Run-time sizes of generated kernels: one kernel source for every binding of a group's symbolic dims.

A fused group whose types hold symbolic dims (`tensor<?x?x32xf32, ["B", "S"]>`) is generated once:
every size the source needs (element counts, row lengths and counts, index sizes and strides, threads
and chunks per row) is read at the top of the body from one small int64 input, `sizes`, whose values
the host computes per call from the binding of the names (`KernelSpec.bind`), as it computes the
grid, the threadgroup and the output shapes. A static group has no `sizes` input and keeps its
constant-folded source, byte for byte.

Host sizes are canonical size expressions (`xcomp.ir.symbolic`: ints or strings such as `"32*B*S"`)
or tuples `(fn, *args)` over them for what a polynomial cannot say (`("row_threads", "S", 1)`,
`("cdiv", "S", 128)`), evaluated by `host_value` through the `HOST_FNS` table.

Choices that a size would decide in a static kernel (vector width when the row length divides it,
vectors per thread for large tensors) are made per size class (`size_class`): a few booleans
evaluated per call, each class with its own source (built once) and its own tuning decision.
Everything a static kernel assumes from divisibility (no tail, `col < L` checks dropped) is checked
at run time instead: never a wrong answer for a size the class did not foresee.
"""
from __future__ import annotations

from typing import Any, Mapping

from xcomp.ir import symbolic as sym

SIZES_INPUT = "sizes"   # the kernel input holding the run-time sizes (int64)


def _row_threads(L: int) -> int:
    from xcomp.backends.kernels.codegen import default_row_threads
    return default_row_threads(L)


HOST_FNS = {
    "cdiv": lambda a, b: -(-a // b),
    "mul": lambda a, b: a * b,
    "max": max,
    "row_threads": _row_threads,
}


def is_static(d) -> bool:
    return isinstance(d, int)


def host_value(e, env: Mapping[str, int]) -> int:
    """The value of a host size at a binding of the size names."""
    if isinstance(e, int):
        return e
    if isinstance(e, tuple):
        return int(HOST_FNS[e[0]](*[host_value(a, env) for a in e[1:]]))
    return int(sym.evaluate(e, env))


def host(fn: str, *args):
    """`(fn, *args)`, folded to an int when every argument is one."""
    if all(isinstance(a, int) for a in args):
        return int(HOST_FNS[fn](*args))
    return (fn,) + tuple(args)


class SizeVars:
    """The run-time sizes one kernel reads: each distinct symbolic size gets a variable `xs<i>`
    (loaded from `sizes[i]`); static sizes spell as themselves."""

    def __init__(self, ctype: str):
        self.ctype = ctype
        self.exprs: list = []

    def __call__(self, d) -> Any:
        """`d` itself when static, else the C variable holding it."""
        if not isinstance(d, (str, tuple)):   # static, or a size object that spells itself (cpp)
            return d
        d = d if isinstance(d, tuple) else sym.canon(d)
        if isinstance(d, int):
            return d
        if d not in self.exprs:
            self.exprs.append(d)
        return f"xs{self.exprs.index(d)}"

    def decls(self) -> list[str]:
        """The body's first lines: every size variable read from the sizes input."""
        return [f"const {self.ctype} xs{i} = ({self.ctype}){SIZES_INPUT}[{i}];" for i in range(len(self.exprs))]


def spell(v, suffix: str = "") -> str:
    """A size in source: an int with its literal suffix (`300L`), a variable as it is (`xs0`)."""
    return f"{v}{suffix}" if isinstance(v, int) else str(v)


def dim_mul(a, b):
    """a * b over dims: ints and canonical size texts through `xcomp.ir.symbolic` (so equal sizes
    compare equal), other size objects (the cpp target's `Sz`) through their own arithmetic."""
    if isinstance(a, (int, str)) and isinstance(b, (int, str)):
        return sym.mul(a, b)
    return a * b


def dim_prod(dims):
    out = 1
    for d in dims:
        out = dim_mul(out, d)
    return out
