"""Dynamic shapes for `xcomp.compile`: which input dims are symbolic, and which compiled program a
call reuses.

`dynamic=` takes:
- `True`: every dim of every tensor input is symbolic unless the program proves it static
  (torch.export's `Dim.AUTO`; a dim of size 1 in the example stays 1, as torch specialises it).
- a dict naming dims, keyed by parameter name or tensor-input position:
  `{"x": {0: "batch", 1: "seq"}}`; dims sharing a name share the size; a value may also be a list of
  axes (`{"x": [0, 1]}`, names chosen by torch) or a torch `Dim`. Named dims that the program forces
  static are an error (torch.export's).
- `False`: every new input shape compiles its own program.
- `None` (the default): automatic. The first call compiles static; the first call whose shapes
  differ from a compiled program's only in sizes recompiles once with those dims symbolic (as
  torch.compile's automatic dynamic does); later sizes reuse that program.

Every call with a symbolic program binds the size names from its inputs and checks the program's
guards (`xcomp.guards`) before running. A failed guard raises `xcomp.GuardError` when the dims were
asked for (`True` or a dict); in automatic mode the call compiles a static program for its shapes
instead (the failing guard may be a branch torch took on the first sizes).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

from xcomp import guards
from xcomp.arrays import kind_of
from xcomp.errors import XcompError
from xcomp.ir import symbolic as sym


@dataclass
class Stats:
    """What a `Compiled` did: `captures` (frontend captures), `builds` (target builds), `calls`,
    `guard_failures` (calls whose inputs broke a symbolic program's guards), `specializations`
    (static builds of a symbolic program for one size binding, on targets without symbolic sizes),
    `static_ops` (why a target with symbolic sizes built per binding: the ops that needed static ones)."""

    captures: int = 0
    builds: int = 0
    specializations: int = 0
    calls: int = 0
    guard_failures: int = 0
    static_ops: tuple = ()


Spec = list  # one {axis: name | None | torch Dim} per tensor input


def _param_names(fn) -> list[str]:
    inner = getattr(fn, "__wrapped__", fn)
    target = getattr(inner, "forward", inner)
    schema = getattr(target, "schema", None)  # TorchScript functions and modules
    if schema is not None and hasattr(schema, "arguments"):
        return [a.name for a in schema.arguments if a.type.kind() != "ClassType"]  # not `self`
    try:
        return [p.name for p in inspect.signature(target).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _axes(value, rank: int, where: str) -> dict:
    if isinstance(value, dict):
        items = dict(value)
    elif isinstance(value, (list, tuple)):
        items = {a: None for a in value}
    elif value is None:
        return {}
    else:
        raise XcompError(f"dynamic[{where!r}] must be a dict {{axis: name}} or a list of axes, got {value!r}")
    out = {}
    for axis, name in items.items():
        if not isinstance(axis, int) or not -rank <= axis < rank:
            raise XcompError(f"dynamic[{where!r}]: axis {axis!r} out of range for rank {rank}")
        if isinstance(name, str) and not sym.is_name(name):
            raise XcompError(f"dynamic[{where!r}]: size name {name!r} is not an identifier")
        out[axis % rank] = name
    return out


def normalize(dynamic, fn, args: Sequence[Any]) -> Spec | None:
    """`dynamic=` as one {axis: name} per tensor input, or None for static sizes."""
    tensors = [(i, a) for i, a in enumerate(args) if kind_of(a) is not None]
    if dynamic is None or dynamic is False:
        return None
    if dynamic is True:
        return [{ax: None for ax in range(len(a.shape))} for _, a in tensors]
    if not isinstance(dynamic, dict):
        raise XcompError(f"dynamic= takes True, False, None or a dict {{input: {{axis: name}}}}, got {dynamic!r}")
    names = _param_names(fn)
    spec: Spec = [{} for _ in tensors]
    for key, value in dynamic.items():
        pos = names.index(key) if isinstance(key, str) and key in names else key
        if not isinstance(pos, int):
            raise XcompError(f"dynamic: {key!r} is not a parameter of the function (parameters: {names})")
        slot = [j for j, (i, _) in enumerate(tensors) if i == pos]
        if not slot:
            raise XcompError(f"dynamic: argument {key!r} is not a tensor argument of this call")
        spec[slot[0]] = _axes(value, len(tensors[slot[0]][1].shape), str(key))
    return spec


def structure(args: Sequence[Any]) -> tuple:
    """A call's signature without sizes: what a symbolic program must match to be reused."""
    def sig(a):
        k = kind_of(a)
        if k is not None:
            return (k, len(a.shape), str(a.dtype))
        if isinstance(a, (list, tuple)):
            return (type(a).__name__, tuple(sig(e) for e in a))
        return ("const", type(a).__name__, repr(a))
    return tuple(sig(a) for a in args)


def widen(program, shapes: Sequence[Sequence[int]], spec: Spec | None) -> Spec | None:
    """Automatic dynamic: `spec` plus every input dim where `shapes` differ from `program`'s static
    sizes; None when nothing differs."""
    types = [a.type for a in program.main.args]
    out = [dict(s) for s in spec] if spec else [{} for _ in types]
    changed = False
    for i, (t, shape) in enumerate(zip(types, shapes)):
        for axis, (d, n) in enumerate(zip(getattr(t, "shape", ()), shape)):
            if isinstance(d, int) and d != n and axis not in out[i]:
                out[i][axis] = None
                changed = True
    return out if changed else None


def static_dims_match(program, shapes: Sequence[Sequence[int]]) -> bool:
    """Whether every static input size of `program` equals the call's."""
    for a, shape in zip(program.main.args, shapes):
        dims = getattr(a.type, "shape", None)
        if dims is None:
            continue
        if len(dims) != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(dims, shape)):
            return False
    return True


def admit(program, shapes: Sequence[Sequence[int]]) -> dict[str, int]:
    """The size bindings of a call to symbolic `program`, after checking its guards (GuardError)."""
    env = guards.bind(program, shapes)
    guards.check(program, env)
    return env
