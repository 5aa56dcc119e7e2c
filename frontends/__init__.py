"""Frontends: framework programs in, xcomp IR out. `aten/` is the op table they share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from xcomp.ir.core import Program


@dataclass
class Captured:
    """What a frontend returns: the program, the pytree spec of the outputs (None: a flat tuple, or
    the value itself when there is one output), how it was captured, and the frontend's array kind
    ("torch", "mlx"; "" for none), which outputs take when the call has no array arguments."""

    program: Program
    out_spec: Any = None
    source: str = ""
    array_kind: str = ""
    # TorchScript: restructures the outputs itself (`rebuild(outs, to_kind)`, `to_kind` converting one
    # array to the caller's kind) for nestings and run-time-length lists a pytree spec cannot hold;
    # `notes` (tracer and script warnings) are shown by explain()
    rebuild: Optional[Callable[[list, Callable], Any]] = None
    notes: list = field(default_factory=list)
    # the capture cache's entry it was loaded from (`xcomp.frontends.capture_cache`); "" when captured
    cached: str = ""
