"""Frontends: framework programs in, xcomp IR out. `aten/` is the op table they share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xcomp.ir.core import Program


@dataclass
class Captured:
    """What a frontend returns: the program, the pytree spec of the outputs (None: a flat tuple, or
    the value itself when there is one output), and how it was captured."""

    program: Program
    out_spec: Any = None
    source: str = ""
