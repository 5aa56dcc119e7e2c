"""The aten mapping table, shared by torch.export, FX and TorchScript.

`ATEN` maps an aten op name with its overload (`"aten.add.Tensor"`) to a converter
`fn(cx, *args, **kwargs) -> Value | list[Value]`. Arguments arrive with graph nodes already
replaced by IR values; `cx` (a `xcomp.frontends.context.ConvertContext`) builds ops and knows the torch result type.
Converters live in family modules beside this one and register with `@aten(...)`.
"""
from __future__ import annotations

from typing import Callable

ATEN: dict[str, Callable] = {}


def aten(*names: str):
    """Register a converter for one or more aten op names (`aten.op.overload`).

    A name without an overload (`"aten.relu"`) registers `.default`; in-place variants
    (`aten.relu_.default`) map to the same converter.
    """
    def register(fn):
        for n in names:
            key = n if n.count(".") >= 2 else f"{n}.default"
            if key in ATEN:
                raise ValueError(f"{key} registered twice")
            ATEN[key] = fn
        return fn
    return register


def _load_families():
    import importlib
    import pkgutil
    for m in pkgutil.iter_modules(__path__):
        if not m.name.startswith("_"):
            importlib.import_module(f"{__name__}.{m.name}")


_load_families()
