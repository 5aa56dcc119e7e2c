"""Binding a call's arguments to a TorchScript graph, converting it, and restructuring outputs."""
from __future__ import annotations

import numpy as np

from xcomp.errors import UnsupportedOpError, XcompError
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program, Value
from xcomp.ir.types import ListType
from xcomp.frontends import Captured
from xcomp.frontends.torch_export import meta_type
from xcomp.frontends.torchscript.convert import POISON, Converter, convert_block, flatten_all
from xcomp.frontends.torchscript.load import script_graph
from xcomp.frontends.torchscript.values import JIT_SCALARS


def _bind(body: Block, arg, name: str):
    """A call argument as converted values: tensors become inputs of @main."""
    import torch
    if isinstance(arg, torch.Tensor):
        return body.add_arg(meta_type(arg), name)
    if isinstance(arg, (list, tuple)):
        vals = [_bind(body, a, f"{name}_{i}") for i, a in enumerate(arg)]
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


def capture_script(fn, args: list) -> Captured:
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
    for v, a in zip(inputs[1 if skip_self else 0:], full):
        n0 = len(body.args)
        env[v] = _bind(body, a, _clean(v.debugName()))
        names += [arg.hint for arg in body.args[n0:]]
    outs = convert_block(cv, graph.block(), env)
    if cv.unsupported:
        raise UnsupportedOpError(cv.unsupported, "TorchScript")
    if any(o is POISON for o in flatten_all(outs)):
        raise XcompError("TorchScript conversion produced no value for an output")
    (result,) = outs
    cv.cx.b.loc = None
    flat: list[Value] = []
    spec = _spec(cv, result, list(graph.outputs())[0].type(), flat)
    cv.cx.b.create("return", flat)
    program.funcs["main"] = Func("main", body, names)
    path, extra = SOURCES.get(fn, (None, {})) if hasattr(fn, "_c") else (None, {})
    if path is not None:
        program.metadata.update({"torchscript.file": path, **{f"torchscript.extra.{k}": v for k, v in extra.items()}})
    kind = "TorchScript function" if module is None else "TorchScript module"
    return Captured(program, None, f"{kind}{' from ' + path if path else ''} (frozen, inlined)",
                    rebuild=lambda outs, to_kind: _restructure(spec, iter(outs), to_kind), notes=list(cv.notes))


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
