"""Functions and `mlx.nn.Module`s as export-ready functions: flat outputs, parameters as keywords."""
from __future__ import annotations

from typing import Any, Sequence

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from xcomp.frontends.mlx.capture import build, record
from xcomp.frontends.mlx.dtypes import to_numpy
from xcomp.frontends.mlx.structure import OutSpec, flatten
from xcomp.ir.core import Program


def _is_array(x) -> bool:
    return isinstance(x, mx.array)


def find_module(fn):
    """The `mlx.nn.Module` behind `fn` (itself, or what xcomp's argument binding wraps), else None."""
    inner = getattr(fn, "__wrapped__", fn)
    return inner if isinstance(inner, nn.Module) else None


def materialize(module: nn.Module) -> None:
    """Evaluate every array the module holds, parameters and private buffers (such as RoPE
    frequency tables built lazily), so capture sees their values rather than their initializers."""
    arrays = [v for _, v in tree_flatten(module.parameters())]
    for m in module.modules():
        arrays += [v for k, v in m.items() if isinstance(v, mx.array)]
        arrays += [v for v in vars(m).values() if isinstance(v, mx.array)]
    mx.eval(arrays)


def _flattened(fn):
    """(flat, spec): `fn` returning its array leaves as a list; `spec["tree"]` is set to the output
    structure on each call."""
    spec: dict = {}

    def flat(*a, **kw):
        leaves, spec["tree"] = flatten(fn(*a), _is_array)
        if not leaves:
            raise ValueError("the function returns no MLX arrays")
        return leaves
    return flat, spec


def capture(fn, args: Sequence[Any], dynamic=None) -> tuple[Program, OutSpec]:
    """Capture `fn(*args)` (MLX arrays in `args`); an `mlx.nn.Module` keeps its parameters as weights
    named by their paths. Returns the program and the structure of the outputs. `dynamic` (one
    {axis: name or None} per array argument) makes those dims symbolic (`dynamic.py`)."""
    if dynamic and any(dynamic):
        return _capture_dynamic(fn, args, dynamic)
    flat, spec = _flattened(fn)
    module = find_module(fn)
    if module is None:
        events = record(flat, args)
        return build(events), _out_spec(spec, events)
    materialize(module)
    original = module.parameters()
    params = dict(tree_flatten(original))

    def with_params(*a, **kw):
        module.update(tree_unflatten(list(kw.items())))
        return flat(*a)
    try:
        events = record(with_params, args, params)
    finally:
        module.update(original)  # a module left holding tracer arrays fails on its next call
    weights = {k: to_numpy(v) for k, v in params.items()}
    return build(events, weights), _out_spec(spec, events)


def _out_spec(spec: dict, events: list[dict]) -> OutSpec:
    outs = [o for e in events if e["type"] == "outputs" for o in e["outputs"]]
    return OutSpec(spec.get("tree"), [d for _, _, d in outs])


def _capture_dynamic(fn, args: Sequence[Any], dynamic) -> tuple[Program, OutSpec]:
    """Shapeless exports at the example sizes and two probes, unified into one symbolic program.
    Dims `dynamic=True` left unnamed stay static where the function cannot take another size (its
    export fails or its graph changes when that size alone changes) or where the program pins them
    (a guard `x0_2 == 16` from a Linear layer); a named dim pinned so is an error."""
    from xcomp.errors import CaptureError
    from xcomp.frontends.mlx.dynamic import bindings, inputs_at, same_graph, size_names, unify
    from xcomp.guards import pinned
    from xcomp.errors import XcompError
    names = size_names(args, dynamic)
    auto = {n for i, axes in enumerate(names) for a, n in axes.items()
            if (dynamic[i] or {}).get(a, (dynamic[i] or {}).get(a - args[i].ndim)) is None}
    flat, spec = _flattened(fn)
    module = find_module(fn)
    weights = None
    if module is not None:
        materialize(module)
        original = module.parameters()
        params = dict(tree_flatten(original))
        weights = {k: to_numpy(v) for k, v in params.items()}

    def record_at(env, names):
        inputs = inputs_at(args, names, env)
        if module is None:
            return record(flat, inputs, shapeless=True)

        def with_params(*a, **kw):
            module.update(tree_unflatten(list(kw.items())))
            return flat(*a)
        try:
            return record(with_params, inputs, params, shapeless=True)
        finally:
            module.update(original)  # a module left holding tracer arrays fails on its next call

    def drop(names, gone):
        return [{a: n for a, n in axes.items() if n not in gone} for axes in names]
    if auto:  # which unnamed dims can change alone
        base_env = bindings(args, names)[0]
        base = record_at(base_env, names)
        fixed = set()
        for n in auto:
            try:
                if not same_graph(base, record_at({**base_env, n: base_env[n] * 2}, names)):
                    fixed.add(n)
            except XcompError:
                fixed.add(n)
        names = drop(names, fixed)
    for _ in range(8):
        if not any(names):
            return capture(fn, args)
        envs = bindings(args, names)
        try:
            streams = [record_at(env, names) for env in envs]
        except XcompError as e:
            raise XcompError(f"capturing with symbolic sizes at probe sizes {envs[1:]}: {e}") from None
        program = build(unify(streams, envs, names), weights, envs)
        pins = pinned(program.guards)
        if not pins:
            return program, _out_spec(spec, streams[0])
        named = {n: p for n, p in pins.items() if n not in auto}
        if named:
            what = "; ".join(f"size '{n}' must be {v} ({g})" for n, (v, g) in named.items())
            raise CaptureError(f"the MLX function is static in dims named in dynamic=: {what}. Leave those "
                               "dims out of dynamic= (or use dynamic=True, which keeps them static)")
        names = drop(names, set(pins))
    raise XcompError("MLX capture with dynamic sizes did not settle which dims are static")
