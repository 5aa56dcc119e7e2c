"""Which input sizes torch.export treats as symbolic, and the names they get in the IR.

`xcomp.compile(..., dynamic=...)` hands the torch frontend one `{axis: name}` per tensor input
(`xcomp.dynamic.normalize`). `export_program` exports with:

- a name (`"batch"`): a torch `Dim(name, min=1)` (one per name, so inputs sharing a name share the
  size). torch then proves the program for every size >= 1, or raises if the program forces the
  size (a `CaptureError`).
- `None` (`dynamic=True`): first `Dim.AUTO`, which finds the dims the program proves static; the
  dims left symbolic are then exported again as `Dim(min=1)` named `<input>_<axis>` (one per torch
  symbol), so the program holds for size 1 too. The dims torch then reports it cannot prove from 1
  (a pooling window of 2, a branch on size 1) stay `Dim.AUTO` in one more export (torch.export's own
  contract for them: sizes >= 2, and torch assumes derived sizes are not 1 either); when that fails
  too, the first `Dim.AUTO` export is kept.
- a torch `Dim`: used as given.

Example inputs whose dynamic dims are 0 or 1 are traced at size 2 (torch specialises sizes 0 and 1
to constants); the values of example inputs never reach the program.
"""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from torch.export import Dim

from xcomp.frontends.aten.symbolic import RENAMES


def _upsized(example: Sequence[Any], dynamic) -> tuple:
    out = []
    for x, axes in zip(example, dynamic):
        for axis in (axes or {}):
            if axis < x.dim() and x.shape[axis] < 2:
                shape = list(x.shape)
                shape[axis] = 2
                x = torch.zeros(shape, dtype=x.dtype) if x.shape[axis] == 0 else \
                    torch.cat([x, x], dim=axis)
        out.append(x)
    return tuple(out)


def _spec(module, example, dynamic, dims: dict, auto=()) -> tuple:
    specs = []
    for x, axes in zip(example, dynamic):
        spec = {}
        for axis, name in (axes or {}).items():
            if name is None or name in auto:
                spec[axis] = Dim.AUTO
            elif isinstance(name, str):
                spec[axis] = dims.setdefault(name, Dim(name, min=1))
            else:
                spec[axis] = name
        specs.append(spec or None)
    return (tuple(specs),) if type(module).__name__ == "_FunctionModule" else tuple(specs)


def _export(module, example, dynamic, auto=()):
    return torch.export.export(module, tuple(example), strict=False,
                               dynamic_shapes=_spec(module, example, dynamic, {}, auto))


def _violated(error: Exception, names) -> set[str]:
    """The dims a torch constraint violation names ("Not all values of x_2 = ... satisfy ...")."""
    import re
    found = set(re.findall(r"Not all values of (\w+) ", str(error)))
    return found & set(names)


def _user_tensor_nodes(ep) -> list:
    from torch.export.graph_signature import InputKind
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    users = [placeholders[s.arg.name] for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    return [n for n in users if isinstance(n.meta.get("val"), torch.Tensor)]


def _named_after(ep, dynamic) -> list:
    """`dynamic` with each AUTO dim that stayed symbolic named after its first input and axis, and
    the AUTO dims torch made static dropped."""
    names: dict[str, str] = {}
    out = []
    for node, axes in zip(_user_tensor_nodes(ep), dynamic):
        named = {}
        for axis, name in (axes or {}).items():
            size = node.meta["val"].shape[axis]
            if name is not None:
                named[axis] = name
            elif isinstance(size, torch.SymInt) and not size.node.is_constant() and hasattr(size.node.expr, "name"):
                named[axis] = names.setdefault(size.node.expr.name, f"{node.name}_{axis}")
        out.append(named)
    return out


def export_program(module, example_inputs: Sequence[Any], dynamic):
    """(ExportedProgram, the dynamic dims as exported: one {axis: name} per tensor input)."""
    if not dynamic:
        return torch.export.export(module, tuple(example_inputs), strict=False), None
    upsized = _upsized(example_inputs, dynamic)
    try:
        return _export_dynamic(module, upsized, dynamic)
    except Exception:  # noqa: BLE001  (size 2 is invalid for the program: trace the example as given)
        if all(a is b for a, b in zip(upsized, example_inputs)):
            raise
        return _export_dynamic(module, tuple(example_inputs), dynamic)


def _export_dynamic(module, example, dynamic):
    if not any(name is None for axes in dynamic for name in (axes or {}).values()):
        return _export(module, example, dynamic), dynamic
    auto = _export(module, example, dynamic)
    named = _named_after(auto, dynamic)
    generated = {n for axes in named for n in axes.values() if isinstance(n, str)}
    try:
        return _export(module, example, named), named
    except Exception as e:  # noqa: BLE001  (torch cannot prove size 1 for some dims)
        violated = _violated(e, generated)
    if violated:  # those dims as Dim.AUTO (torch's own >= 2 contract), the others from 1
        try:
            ep = _export(module, example, named, violated)
            return ep, [{a: (None if n in violated else n) for a, n in axes.items()} for axes in named]
        except Exception:  # noqa: BLE001
            pass
    return auto, dynamic


@contextlib.contextmanager
def rename_sizes(ep, dynamic):
    """While converting `ep`, give the sizes of the named input dims their names."""
    names: dict[str, str] = {}
    for node, axes in zip(_user_tensor_nodes(ep), dynamic or []):
        for axis, name in (axes or {}).items():
            size = node.meta["val"].shape[axis]
            want = name if isinstance(name, str) else getattr(name, "__name__", None)
            if want and isinstance(size, torch.SymInt) and not size.node.is_constant():
                if hasattr(size.node.expr, "name"):
                    names.setdefault(size.node.expr.name, want)
    token = RENAMES.set(names)
    try:
        yield names
    finally:
        RENAMES.reset(token)
