"""xcomp: a cross-framework machine-learning compiler.

    import xcomp
    fast = xcomp.compile(model, target="mlx")
    y = fast(x)

`xcomp.capture` returns the IR program, `xcomp.parse` reads IR text back, `xcomp.save`/`xcomp.load`
store programs with their weights (safetensors), `xcomp.export` writes a target's artifact.
"""
from xcomp import ops as _ops  # noqa: F401  (registers every op definition)
from xcomp.errors import (CaptureError, FormatError, LoweringError, NumericsError, ParseError, ScriptRaiseError,  # noqa: F401
                          TargetError, TraceCheckError, UnsupportedOpError, VerifyError, XcompError)
from xcomp.guards import GuardError  # noqa: F401
from xcomp.ir.core import Program  # noqa: F401
from xcomp.ir.parser import parse  # noqa: F401
from xcomp.ir.verifier import verify  # noqa: F401
from xcomp.serialize import load, save  # noqa: F401
from xcomp.api import capture, compile, export, optimize  # noqa: F401
from xcomp.explain import ExplainReport  # noqa: F401
from xcomp.interpreter import interpret  # noqa: F401

__version__ = "0.1.0"
