"""Symbolic sizes through the MLX frontend: one capture serves every size of the `dynamic=` dims.

`mx.export_function` reports concrete shapes only, also with `shapeless=True` (which makes the
exported graph itself shape-agnostic: a mean's divisor becomes a `NumberOfElements` primitive,
matmul broadcasting `BroadcastAxes`, instead of constants). So the function is exported shapeless
at three bindings of the dynamic dims: the example (sizes below 2 traced at 2, as torch does) and two
probes where each size name is scaled by a different factor (divisibility the function needs is
kept). The three event streams must match primitive for primitive (else a Python branch on a shape
changes the graph: `XcompError`). Every int in a shape or a primitive's arguments that differs
between the bindings is then a size expression over the names:

- a size already seen (an input dim, an earlier result's dim, keyed by its three values);
- a product of two sizes of the primitive's inputs (flattening `B, S` into `B*S`);
- `a*X + b` for a size X seen and integers a, b (`S - 1`, `2*S`, `S + 4`), checked on the third binding.

An int no expression explains is an error naming the primitive. Constants that differ between the
bindings (a Python float computed from a shape, `1 / x.shape[-1]`) are refused. The unified events
are converted as usual (`capture.build`); converters receive sizes as ints or expression strings,
type inference records the guards (`xcomp.guards`).
"""
from __future__ import annotations

from typing import Any, Sequence

import mlx.core as mx
import numpy as np

from xcomp.errors import XcompError
from xcomp.ir import symbolic as sym


def size_names(tensors: Sequence[Any], spec) -> list[dict[int, str]]:
    """`dynamic=` as one {axis: name} per tensor input (None -> `x<i>_<axis>`, as the inputs are
    named `x<i>`)."""
    out = []
    for i, (t, axes) in enumerate(zip(tensors, spec)):
        named = {}
        for axis, name in (axes or {}).items():
            name = name if isinstance(name, str) else getattr(name, "__name__", None)
            named[axis % t.ndim] = name or f"x{i}_{axis % t.ndim}"
        out.append(named)
    return out


def bindings(tensors: Sequence[Any], names: list[dict[int, str]]) -> list[dict[str, int]]:
    """The example binding (sizes below 2 as 2) and two probes, each name scaled by its own factor."""
    example: dict[str, int] = {}
    for t, axes in zip(tensors, names):
        for axis, name in axes.items():
            example.setdefault(name, max(int(t.shape[axis]), 2))
    order = list(example)
    probe1 = {n: example[n] * (k + 2) for k, n in enumerate(order)}
    probe2 = {n: example[n] * (k + 3) for k, n in enumerate(order)}
    return [example, probe1, probe2]


def inputs_at(tensors: Sequence[Any], names: list[dict[int, str]], env: dict[str, int]) -> list:
    """Zero arrays of the inputs' dtypes at binding `env` (export traces shapes, never values)."""
    out = []
    for t, axes in zip(tensors, names):
        shape = [env[axes[a]] if a in axes else int(d) for a, d in enumerate(t.shape)]
        out.append(mx.zeros(shape, dtype=t.dtype))
    return out


class Unifier:
    """Sizes keyed by their values at the bindings; `size(values)` finds the expression of an int
    that differs between bindings."""

    def __init__(self, envs: list[dict[str, int]]):
        self.envs = envs
        self.known: dict[tuple, Any] = {}
        for n in envs[0]:
            self.known.setdefault(tuple(e[n] for e in envs), n)

    def values(self, d) -> tuple:
        return tuple(sym.evaluate(d, e) for e in self.envs)

    def note(self, d) -> None:
        if isinstance(d, str):
            self.known.setdefault(self.values(d), d)

    def size(self, vals: tuple, local: Sequence = ()):
        """The size whose values at the bindings are `vals` (local: sizes of the primitive's inputs)."""
        if len(set(vals)) == 1:
            return vals[0]
        if vals in self.known:
            return self.known[vals]
        local = [d for d in local if isinstance(d, str)]
        for i, a in enumerate(local):  # products of two input sizes (flattened dims)
            for b in local[i:]:
                p = sym.mul(a, b)
                if self.values(p) == vals:
                    self.known[vals] = p
                    return p
        for x in list(local) + list(self.known.values()):  # a*x + b
            xv = self.values(x)
            if xv[1] == xv[0]:
                continue
            a, r = divmod(vals[1] - vals[0], xv[1] - xv[0])
            b = vals[0] - a * xv[0]
            if r == 0 and a and a * xv[2] + b == vals[2]:
                d = sym.add(sym.mul(a, x), b)
                self.known[vals] = d
                return d
        return None


def _same_structure(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return isinstance(b, (int, float)) and not isinstance(b, bool)
    if isinstance(a, mx.array):
        return isinstance(b, mx.array)
    return a == b or type(a) is type(b)


def _unify_value(vals: list, uni: Unifier, local: Sequence, where: str):
    """One argument (nested lists/tuples of ints, floats, dtypes, ...) at the three bindings."""
    first = vals[0]
    if isinstance(first, (list, tuple)):
        out = [_unify_value([v[i] for v in vals], uni, local, where) for i in range(len(first))]
        return type(first)(out) if isinstance(first, tuple) else out
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        if all(v == first for v in vals):
            return first
        if not all(float(v).is_integer() for v in vals):
            raise XcompError(f"{where}: the value {first} changes with the input sizes ({vals}) in a way "
                             "xcomp cannot express (not an integer size)")
        d = uni.size(tuple(int(v) for v in vals), local)
        if d is None:
            raise XcompError(f"{where}: the size {int(first)} changes with the input sizes "
                             f"({[int(v) for v in vals]}) in a way xcomp cannot express")
        return d
    return first


def _shape(vals: list, uni: Unifier, local: Sequence, where: str) -> tuple:
    out = tuple(_unify_value([tuple(int(x) for x in v) for v in vals], uni, local, where))
    for d in out:
        uni.note(d)
    return out


def same_graph(a: list[dict], b: list[dict]) -> bool:
    """Whether two event streams hold the same primitives in the same order."""
    return len(a) == len(b) and all(x["type"] == y["type"] and x.get("name") == y.get("name") for x, y in zip(a, b))


def unify(streams: list[list[dict]], envs: list[dict[str, int]], names: list[dict[int, str]]) -> list[dict]:
    """One event stream with symbolic shapes and arguments from the streams at `envs`."""
    base = streams[0]
    if not all(same_graph(base, s) for s in streams[1:]):
        raise XcompError(f"the MLX function's graph changes with the sizes of {sorted(envs[0])} (Python code "
                         "branches on a shape): capture those dims static")
    uni = Unifier(envs)
    keywords = {name for e in base if e["type"] == "keyword_inputs" for _, name in e["keywords"]}
    types: dict[str, tuple] = {}
    out_events = []
    inputs_seen = 0
    for idx, group in enumerate(zip(*streams)):
        e0 = group[0]
        kind = e0["type"]
        where = f"MLX {e0.get('name', kind)} (primitive #{idx})"
        if kind == "inputs":
            items = []
            for name, shape, dt in e0["inputs"]:
                axes = {}
                if name not in keywords:  # a positional input (parameters travel as keywords)
                    axes = names[inputs_seen] if inputs_seen < len(names) else {}
                    inputs_seen += 1
                sh = tuple(axes.get(a, int(d)) for a, d in enumerate(shape))
                for d in sh:
                    uni.note(d)
                types[name] = sh
                items.append((name, sh, dt))
            out_events.append({**e0, "inputs": items})
        elif kind == "constants":
            for j, (name, arr) in enumerate(e0["constants"]):
                others = [g["constants"][j][1] for g in group[1:]]
                if any(o.shape != arr.shape or not np.array_equal(np.array(o), np.array(arr)) for o in others):
                    raise XcompError(f"a constant of the MLX function ({name}, shape {arr.shape}) changes with the "
                                     "input sizes (a value computed from a shape in Python): compute it with MLX "
                                     "ops, or capture those dims static")
            out_events.append(e0)
        elif kind == "outputs":
            out_events.append(e0)  # shapes from the primitives that compute them
        elif kind == "primitive":
            local = [d for n, _, _ in e0["inputs"] for d in types.get(n, ())]
            outs = []
            for j, (name, shape, dt) in enumerate(e0["outputs"]):
                sh = _shape([g["outputs"][j][1] for g in group], uni, local, where)
                types[name] = sh
                outs.append((name, sh, dt))
            args = _unify_value([list(g["arguments"]) for g in group], uni, local + [d for _, s, _ in outs for d in s],
                                where)
            ins = [(n, types.get(n, s), dt) for n, s, dt in e0["inputs"]]
            out_events.append({**e0, "inputs": ins, "outputs": outs, "arguments": args})
        else:
            out_events.append(e0)
    for e in out_events:
        if e["type"] == "outputs":
            e["outputs"] = [(n, types.get(n, s), dt) for n, s, dt in e["outputs"]]
    return out_events
