"""xcomp's own exceptions. Everything xcomp raises on bad input derives from `XcompError`."""
from __future__ import annotations

from dataclasses import dataclass


class XcompError(Exception):
    """Base class of every error xcomp raises on bad input."""


class ParseError(XcompError):
    """Malformed IR text; the message starts with `line:col`."""

    def __init__(self, message: str, line: int, col: int, source_name: str = "<text>"):
        super().__init__(f"{source_name}:{line}:{col}: {message}")
        self.line, self.col, self.reason = line, col, message


class VerifyError(XcompError):
    """A program that breaks an IR invariant (types, dominance, attributes, terminators)."""


class FormatError(XcompError):
    """A malformed saved program, weights file, `.pt` or `.mlxfn` file."""


class TargetError(XcompError):
    """An unknown target, or one that cannot run on this machine."""


class LoweringError(XcompError):
    """A backend met an op it has no lowering for (after decompositions)."""


class CompileError(XcompError):
    """A target's compiler rejected generated code; the message names the generated file and line."""


class RunError(XcompError):
    """A compiled program reported a failure while running (the message is the program's)."""


class NumericsError(XcompError):
    """`check=True` found a target disagreeing with the reference interpreter."""


class CaptureError(XcompError):
    """The frontend could not capture the function as one static graph (for example `torch.export`
    meeting a data-dependent value); the message says why in one line and what to use instead."""


class ScriptRaiseError(XcompError):
    """A compiled TorchScript program took a branch that raises (a scripted `raise` or `assert`)."""


class TraceCheckError(XcompError):
    """A traced module disagrees with the Python callable it was traced from on a `check_inputs`
    input (the trace baked in one path of data-dependent control flow)."""


@dataclass(frozen=True)
class UnsupportedOp:
    """One unsupported op occurrence: the framework's op name (with overload) and where it came from."""

    name: str
    location: str
    reason: str = ""

    def __str__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"  {self.name} at {self.location}{why}"


class UnsupportedOpError(XcompError):
    """Every op the frontend could not convert, reported at once."""

    def __init__(self, ops: list[UnsupportedOp], frontend: str = ""):
        self.ops = list(ops)
        names = sorted({o.name for o in ops})
        head = f"{len(names)} unsupported op(s){' in ' + frontend if frontend else ''}: {', '.join(names)}"
        super().__init__(head + "\n" + "\n".join(str(o) for o in ops))
