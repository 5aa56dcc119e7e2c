"""The nesting of an MLX function's outputs (tuples, lists, dicts, None and Python numbers around
arrays), kept so compiled functions return what the function returned. MLX's own export takes a flat
list of arrays; this flattens before it and rebuilds after, without torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEAF = "array"


@dataclass
class OutSpec:
    """How to rebuild the outputs: `tree` mirrors the returned value with array leaves marked, and
    `mx_dtypes` are MLX's dtypes of the flat outputs (restored where the IR widened them)."""

    tree: Any
    mx_dtypes: list = field(default_factory=list)

    def unflatten(self, flat: list):
        """The function's output structure filled with `flat` (MLX arrays get MLX's dtypes back)."""
        restored = [_as_dtype(a, dt) for a, dt in zip(flat, self.mx_dtypes)] + list(flat[len(self.mx_dtypes):])
        return _build(self.tree, iter(restored))


def _as_dtype(a, dtype):
    """An MLX array `a` cast to `dtype` (the IR widened uint32 to i64); anything else unchanged."""
    if type(a).__module__.startswith("mlx") and a.dtype != dtype:
        return a.astype(dtype)
    return a


def flatten(value, is_array) -> tuple[list, Any]:
    """(array leaves in order, tree) of a returned value."""
    leaves: list = []

    def walk(v):
        if is_array(v):
            leaves.append(v)
            return LEAF
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return ("tuple", [walk(x) for x in v])
        if isinstance(v, list):
            return ("list", [walk(x) for x in v])
        if isinstance(v, dict):
            return ("dict", [(k, walk(x)) for k, x in v.items()])
        if v is None or isinstance(v, (bool, int, float, str)):
            return ("const", v)
        raise TypeError(f"an MLX function may return arrays in tuples, lists and dicts; got {type(v).__name__}")
    return leaves, walk(value)


def _build(tree, items):
    if tree == LEAF:
        return next(items)
    kind, body = tree
    if kind == "tuple":
        return tuple(_build(t, items) for t in body)
    if kind == "list":
        return [_build(t, items) for t in body]
    if kind == "dict":
        return {k: _build(t, items) for k, t in body}
    return body
