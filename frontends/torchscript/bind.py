"""Binding a call's arguments to a TorchScript graph, converting it, and restructuring outputs."""
from __future__ import annotations

import re
import numpy as np

from xcomp import guards
from xcomp.errors import UnsupportedOpError, XcompError
from xcomp.guards import Guard
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program, Value
from xcomp.ir.types import DType, ListType
from xcomp.frontends import Captured
from xcomp.frontends.torch_export import meta_type
from xcomp.frontends.torchscript.convert import POISON, Converter, convert_block, flatten_all
from xcomp.frontends.torchscript.load import script_graph
from xcomp.frontends.torchscript.symbolic import (SizeEnv, input_type, is_size, is_traced, pinned, static_error,
                                                  traced_constants)
from xcomp.frontends.torchscript.values import JIT_SCALARS


def _bind(body: Block, arg, name: str, axes=None):
    """A call argument as converted values: tensors become inputs of @main (`axes`: an iterator of
    the `dynamic=` axes of each tensor, in order; see `symbolic.input_type`)."""
    import torch
    if isinstance(arg, torch.Tensor):
        t = meta_type(arg)
        if axes is not None:
            t = input_type(t, next(axes, None), name)
        return body.add_arg(t, name)
    if isinstance(arg, (list, tuple)):
        vals = [_bind(body, a, f"{name}_{i}", axes) for i, a in enumerate(arg)]
        return vals if isinstance(arg, list) else tuple(vals)
    return arg


def _arguments(schema, args: list, skip_self: bool) -> list:
    """The call's arguments completed with the schema's defaults."""
    params = list(schema.arguments)[1 if skip_self else 0:]
    if len(args) > len(params):
        raise XcompError(f"the scripted function takes {len(params)} arguments, got {len(args)}")
    full = list(args)
    for p in params[len(args):]:
        if not p.has_default_value():
            raise XcompError(f"missing argument '{p.name}' of the scripted function")
        full.append(p.default_value)
    return full


def capture_script(fn, args: list, dynamic=None) -> Captured:
    """Convert `fn` called with `args`; `dynamic` (one {axis: name or None} per tensor input, see
    `xcomp.dynamic`) makes those dims symbolic (`symbolic.py`). A dim the program pins to a constant
    is captured static when `dynamic=True` left it unnamed, and raises when it was named."""
    if not dynamic or not any(dynamic):
        return _capture_script(fn, args, None)
    spec = [dict(a or {}) for a in dynamic]
    for _ in range(8):
        captured, pins, auto = _capture_script(fn, args, spec)
        if not pins:
            return captured
        named = {n: p for n, p in pins.items() if n not in auto}
        if named:
            raise static_error(named, is_traced(fn))
        for name in pins:
            i, axis = auto[name]
            spec[i].pop(axis, None)
        if not any(spec):
            return _capture_script(fn, args, None)
    raise XcompError("TorchScript capture with dynamic sizes did not settle which dims are static")


def _capture_script(fn, args: list, spec):
    from xcomp.frontends.torchscript import SOURCES
    graph, module, schema = script_graph(fn)
    inputs = list(graph.inputs())
    skip_self = module is not None
    full = _arguments(schema, args, skip_self)
    program = Program()
    body = Block()
    cv = Converter(program, Builder(body))
    env: dict = {}
    if skip_self:
        env[inputs[0]] = module
    names = []
    axes = iter(spec) if spec is not None else None
    for v, a in zip(inputs[1 if skip_self else 0:], full):
        n0 = len(body.args)
        env[v] = _bind(body, a, _clean(v.debugName()), axes)
        names += [arg.hint for arg in body.args[n0:]]
    hints, auto = _size_names(body, spec, full)
    if hints:
        cv.sizes = SizeEnv(hints)
        if is_traced(fn):
            cv.notes += [f"traced module: {c}; torch.jit.trace baked it in, so the program (like the traced "
                         "module) is static there: script the model for sizes that follow the input"
                         for c in traced_constants(graph, hints)]
    with guards.collect() as found:
        outs = convert_block(cv, graph.block(), env)
    program.guards = guards.merge([Guard(n, ">=", 1) for n in hints], found)
    if cv.unsupported and spec is not None:
        pins = {n: f"must be {v} ({g})" for n, (v, g) in pinned(found).items()}
        torch_names = {n: [t for t, m in cv.sizes.renames.items() if m == n] for n in hints}
        for u in cv.unsupported if not pins else ():  # sizes an op could not take symbolically
            for n in hints:  # named in the message as ours ('S') or as torch's symbol (s29)
                if f"'{n}'" in u.reason or any(re.search(rf"\b{t}\b", u.reason) for t in torch_names[n]):
                    pins.setdefault(n, f"cannot stay symbolic in {u.name} ({u.reason})")
        if pins and not (set(pins) - set(auto)) or (set(pins) - set(auto) and is_traced(fn)):
            return None, pins, auto
    if cv.unsupported:
        raise UnsupportedOpError(cv.unsupported, "TorchScript")
    if any(o is POISON for o in flatten_all(outs)):
        raise XcompError("TorchScript conversion produced no value for an output")
    (result,) = outs
    cv.cx.b.loc = None
    flat: list[Value] = []
    out_spec = _spec(cv, result, list(graph.outputs())[0].type(), flat)
    cv.cx.b.create("return", flat)
    program.funcs["main"] = Func("main", body, names)
    path, extra = SOURCES.get(fn, (None, {})) if hasattr(fn, "_c") else (None, {})
    if path is not None:
        program.metadata.update({"torchscript.file": path, **{f"torchscript.extra.{k}": v for k, v in extra.items()}})
    kind = "TorchScript function" if module is None else "TorchScript module"
    captured = Captured(program, None, f"{kind}{' from ' + path if path else ''} (frozen, inlined)",
                        rebuild=lambda outs, to_kind: _restructure(out_spec, iter(outs), to_kind), notes=list(cv.notes))
    if spec is None:
        return captured
    return captured, {n: f"must be {v} ({g})" for n, (v, g) in pinned(program.guards).items()}, auto


def _size_names(body: Block, spec, args) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """(example size of each size name, the tensor input and axis of each name `dynamic=True` made)."""
    if spec is None:
        return {}, {}
    tensors = [t for a in args for t in _tensors(a)]
    hints, auto = {}, {}
    for i, (arg, t) in enumerate(zip(body.args, tensors)):
        for axis, d in enumerate(arg.type.shape):
            if isinstance(d, str):
                hints.setdefault(d, int(t.shape[axis]))
                if spec[i].get(axis) is None:
                    auto[d] = (i, axis)
    return hints, auto


def _tensors(a) -> list:
    import torch
    if isinstance(a, torch.Tensor):
        return [a]
    if isinstance(a, (list, tuple)):
        return [t for e in a for t in _tensors(e)]
    return []


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "arg"


def _spec(cv, x, jit_type, flat: list):
    """Record `x`'s structure for `_restructure`, appending its IR values to `flat`."""
    kind = jit_type.kind() if jit_type is not None else None
    if isinstance(x, tuple):
        kids = jit_type.elements() if kind == "TupleType" else [None] * len(x)
        return ("tuple", [_spec(cv, e, t, flat) for e, t in zip(x, kids)])
    if isinstance(x, list):
        el = jit_type.getElementType() if kind == "ListType" else None
        return ("list", [_spec(cv, e, el, flat) for e in x])
    if is_size(x):  # a size returned as a number: its value at run time
        x = cv.cx.tensor(str(x), DType.I64)
    if isinstance(x, Value):
        flat.append(x)
        if isinstance(x.type, ListType):
            el = jit_type.getElementType().kind() if kind == "ListType" else None
            return ("irlist", JIT_SCALARS.get(el))
        return ("value", JIT_SCALARS.get(kind))
    return ("const", x)


_PY = {"i64": int, "f64": float, "i1": bool}


def _number(a, dtype):
    return _PY[dtype.value](np.asarray(a).reshape(()).item() if not hasattr(a, "item") else a.item())


def _restructure(spec, outs, to_kind):
    tag, data = spec
    if tag == "tuple":
        return tuple(_restructure(s, outs, to_kind) for s in data)
    if tag == "list":
        return [_restructure(s, outs, to_kind) for s in data]
    if tag == "const":
        return data
    value = next(outs)
    if tag == "irlist":
        return [_number(e, data) if data is not None else to_kind(e) for e in value]
    return _number(value, data) if data is not None else value
