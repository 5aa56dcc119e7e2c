"""Which input sizes torch.export treats as symbolic, and the names they get in the IR.

`xcomp.compile(..., dynamic=...)` hands the torch frontend one `{axis: name}` per tensor input
(`xcomp.dynamic.normalize`): a name (`"batch"`) becomes a torch `Dim` of that name (one `Dim` per
name, so inputs sharing a name share the size, and torch raises if the program forces it static),
`None` becomes `Dim.AUTO` (symbolic unless the program proves it static), and a torch `Dim` is used as
given. In the IR the named sizes keep the user's names; the others keep torch's (`s0`, `s77`).
"""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from torch.export import Dim

from xcomp.errors import CaptureError
from xcomp.frontends.aten.symbolic import RENAMES


def export_dynamic_shapes(module, example_inputs: Sequence[Any], dynamic):
    """torch.export's `dynamic_shapes` for `module` called with `example_inputs` (None: static)."""
    if not dynamic:
        return None
    dims: dict[str, Any] = {}
    specs = []
    for x, axes in zip(example_inputs, dynamic):
        spec = {}
        for axis, name in (axes or {}).items():
            if axis >= x.dim():
                raise CaptureError(f"dynamic: axis {axis} of an input of rank {x.dim()}")
            if name is None:
                spec[axis] = Dim.AUTO
            elif isinstance(name, str):
                spec[axis] = dims.setdefault(name, Dim(name, min=1))
            else:
                spec[axis] = name
        specs.append(spec or None)
    varargs = type(module).__name__ == "_FunctionModule"
    return (tuple(specs),) if varargs else tuple(specs)


@contextlib.contextmanager
def rename_sizes(ep, dynamic):
    """While converting `ep`, give the sizes of the named input dims their user names."""
    names: dict[str, str] = {}
    if dynamic:
        from torch.export.graph_signature import InputKind
        placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
        users = [placeholders[s.arg.name] for s in ep.graph_signature.input_specs
                 if s.kind == InputKind.USER_INPUT]
        tensors = [n for n in users if isinstance(n.meta.get("val"), torch.Tensor)]
        for node, axes in zip(tensors, dynamic):
            for axis, name in (axes or {}).items():
                size = node.meta["val"].shape[axis]
                want = name if isinstance(name, str) else getattr(name, "__name__", None)
                if want and isinstance(size, torch.SymInt) and not size.node.is_constant():
                    expr = size.node.expr
                    if hasattr(expr, "name"):
                        names.setdefault(expr.name, want)
    token = RENAMES.set(names)
    try:
        yield names
    finally:
        RENAMES.reset(token)
