"""The generated C++ of a captured function, for tests that check what the `cpp` generator wrote."""
from __future__ import annotations

import pytest

import xcomp
from xcomp.backends.cpp.emit import emit_program


def optimized(fn, inputs):
    """`fn` captured on `inputs` and optimized for `cpp` (the program, without its pass records)."""
    p = xcomp.optimize(xcomp.capture(fn, inputs), "cpp")
    return p[0] if isinstance(p, tuple) else p


def run_body(fn, inputs) -> str:
    """The generated `xc_run` body of `fn` on `inputs`."""
    src = emit_program(optimized(fn, inputs)).source
    return src[src.index("int xc_run("):src.index("const char* xc_error")]


def _cpp_unavailable() -> str | None:
    from xcomp.backends import get_target
    return get_target("cpp").unavailable_reason()


needs_cpp = pytest.mark.skipif(_cpp_unavailable() is not None, reason="needs a C++ compiler")
"""The module mark of the tests that build generated C++ (`pytestmark = needs_cpp`)."""
