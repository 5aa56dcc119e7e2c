"""Per-dtype numerical tolerances, one table for `check=True`, the tests and the conformance harness.

(rtol, atol) by dtype name, the JAX convention (float32 1e-6 there) with room for reassociated and
fused float math.
"""
from __future__ import annotations

from xcomp.ir.types import DType

TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}
_ALIASES = {"f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def tolerance(dtype, scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) for a dtype given as a name (`float32`, `torch.float32`, `f32`), a numpy dtype or
    an xcomp DType; exact (0, 0) for integers and bool."""
    name = dtype.value if isinstance(dtype, DType) else str(getattr(dtype, "name", dtype))
    name = name.replace("torch.", "")
    name = _ALIASES.get(name, name)
    r, a = TOLERANCES.get(name, (0.0, 0.0))
    return r * scale, a * scale
