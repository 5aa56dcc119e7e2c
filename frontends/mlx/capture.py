"""Capture MLX functions and `mlx.nn` modules with `mx.export_function(callback, fn, *args)`.

The callback receives events in order: `inputs`, `keyword_inputs`, `outputs`, `constants`, then one
`primitive` event per primitive in topological order. `record` collects them; `build` turns them
into a Program through the `PRIMITIVES` table, collecting every primitive it cannot convert and
reporting all of them at once. Module parameters travel as keyword inputs and become named weights.
"""
from __future__ import annotations

from typing import Any, Sequence

import mlx.core as mx
import numpy as np

from xcomp.errors import UnsupportedOp, UnsupportedOpError, XcompError
from xcomp.frontends.mlx.dtypes import WIDENED_BITS, WRAPPING, DTypeError, ir_dtype, to_numpy
from xcomp.frontends.mlx.table import PRIMITIVES, Context, Unsupported
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program, Value
from xcomp.ir.types import TensorType

# What MLX says when a function cannot be traced, and what xcomp tells the user instead.
TRACE_ERRORS = {
    "Attempting to eval an array during function transformations":
        "the function reads an array's value while it is being captured (a Python `if`/`while` on an "
        "array, `.item()`, `.tolist()` or `np.array(x)`): MLX's export traces the graph without "
        "values, so a data-dependent Python branch cannot be captured. Compute both sides and pick "
        "with `mx.where`, or move the branch outside the compiled function",
    "Unable to get state for primitive CustomTransforms":
        "the function uses `mx.custom_function` (with custom transforms) or `mx.checkpoint`, which "
        "`mx.export_function` refuses to export. Capture the plain function instead (custom "
        "gradients and checkpointing only matter for training)",
    "Unable to serialize primitive":
        "the function uses a primitive that `mx.export_function` cannot export",
    "Unable to get state for primitive":
        "the function uses a primitive that `mx.export_function` cannot export",
}


def record(fn, args: Sequence[Any], kwargs: dict | None = None, shapeless: bool = False) -> list[dict]:
    """The export events of `fn(*args, **kwargs)`, MLX's tracing errors translated to XcompError."""
    events: list[dict] = []
    try:
        mx.export_function(lambda e: events.append(dict(e)), fn, *args, shapeless=shapeless, **(kwargs or {}))
    except (ValueError, RuntimeError, TypeError) as e:
        for needle, why in TRACE_ERRORS.items():
            if needle in str(e):
                raise XcompError(f"cannot capture this MLX function: {why}. (MLX: {e})") from None
        raise XcompError(f"mx.export_function failed on this function: {e}") from None
    return events


def _tensor_type(shape, dtype) -> TensorType:
    return TensorType(tuple(d if isinstance(d, str) else int(d) for d in shape), ir_dtype(dtype))


class _Builder:
    """Builds the Program from the events: names -> Values, constants, unsupported primitives."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.program = Program()
        self.body = Block([])
        self.b = Builder(self.body)
        self.env: dict[str, Value] = {}
        self.known: dict[int, np.ndarray] = {}
        self.weights = weights  # keyword input name -> value: these become named weights
        self.arg_names: list[str] = []
        self.unsupported: list[UnsupportedOp] = []
        self.outputs: list[tuple] = []
        self.envs: list[dict] = []  # the size bindings a dynamic capture probed

    def inputs(self, event, keywords):
        by_name = {name: key for key, name in keywords}
        for name, shape, dtype in event["inputs"]:
            t = _tensor_type(shape, dtype)
            key = by_name.get(name)
            if key is not None and key in self.weights:
                self.program.weights[key] = self.weights[key]
                self.env[name] = self.b.create("weight", (), {"name": key}, result_types=[t]).result
            else:
                hint = key or f"x{len(self.arg_names)}"
                self.env[name] = self.body.add_arg(t, hint)
                self.arg_names.append(hint)

    def constants(self, event):
        cx = Context(self.b, [], self.known, self.program)
        for name, arr in event["constants"]:
            value = to_numpy(arr)
            dt = ir_dtype(arr.dtype)
            v = cx.const(value.item(), dt) if value.ndim == 0 else cx.array(value, dt)
            self.env[name] = v
            self.known[id(v)] = value

    def primitive(self, index: int, event):
        name = event["name"]
        sig = f"primitive #{index} ({', '.join(str(tuple(s)) for _, s, _ in event['inputs'])} -> " \
              f"{', '.join(str(tuple(s)) for _, s, _ in event['outputs'])})"
        try:
            out_types = [_tensor_type(s, d) for _, s, d in event["outputs"]]
        except DTypeError as e:
            self.unsupported.append(UnsupportedOp(name, sig, str(e)))
            return
        convert = PRIMITIVES.get(name)
        missing = [n for n, _, _ in event["inputs"] if n not in self.env]
        if convert is None or missing:
            if convert is None:
                self.unsupported.append(UnsupportedOp(name, sig, "no converter"))
            return  # inputs missing: an earlier primitive was unsupported
        cx = Context(self.b, out_types, self.known, self.program)
        try:
            results = convert(cx, [self.env[n] for n, _, _ in event["inputs"]], list(event["arguments"]))
        except Unsupported as e:
            self.unsupported.append(UnsupportedOp(name, sig, str(e)))
            return
        except (TypeError, ValueError, KeyError, IndexError) as e:  # arguments this table does not expect
            raise XcompError(f"MLX {name} at {sig} with arguments {event['arguments']}: "
                             f"{type(e).__name__}: {e}") from None
        for (out_name, _, mx_dtype), v, t in zip(event["outputs"], results, out_types):
            if tuple(v.type.shape) != t.shape and not self._same_sizes(v.type.shape, t.shape):
                raise XcompError(f"MLX {name} at {sig}: converted to {v.type}, MLX reports {t}")
            v = cx.cast(v, t.dtype)
            if name in WRAPPING and mx_dtype in WIDENED_BITS:  # unsigned wrap-around, kept exact
                v = cx.op("bitwise_and", v, cx.const((1 << WIDENED_BITS[mx_dtype]) - 1, t.dtype))
            self.env[out_name] = v

    def _same_sizes(self, ours, theirs) -> bool:
        """Symbolic shapes equal at every binding the capture probed (`dynamic.py`)."""
        from xcomp.ir import symbolic as sym
        return bool(self.envs) and len(ours) == len(theirs) and all(
            sym.evaluate(a, e) == sym.evaluate(b, e) for e in self.envs for a, b in zip(ours, theirs))

    def finish(self) -> Program:
        if self.unsupported:
            raise UnsupportedOpError(self.unsupported, "the MLX frontend")
        outs = [self.env[name] for name, _, _ in self.outputs]
        self.b.create("return", outs)
        self.program.funcs["main"] = Func("main", self.body, self.arg_names)
        return self.program


def build(events: list[dict], weights: dict[str, np.ndarray] | None = None, envs: list[dict] | None = None) -> Program:
    """A Program from `mx.export_function` callback events. Keyword inputs named in `weights` become
    `xc.weight`s with those names and values; other inputs become function arguments. `envs`: the
    size bindings of a dynamic capture (`dynamic.py`), whose shapes hold size expressions."""
    if envs:
        from xcomp import guards
        from xcomp.guards import Guard
        with guards.collect() as found:
            program = _build(events, weights, envs)
        program.guards = guards.merge([Guard(n, ">=", 1) for n in envs[0]], found)
        return program
    return _build(events, weights, [])


def _build(events: list[dict], weights, envs: list[dict]) -> Program:
    pb = _Builder(weights or {})
    pb.envs = envs
    by_type: dict[str, list] = {}
    for e in events:
        by_type.setdefault(e["type"], []).append(e)
    keywords = [kw for e in by_type.get("keyword_inputs", []) for kw in e["keywords"]]
    try:
        for e in by_type.get("inputs", []):
            pb.inputs(e, keywords)
        for e in by_type.get("constants", []):
            pb.constants(e)
    except DTypeError as e:
        raise XcompError(f"cannot capture this MLX function: {e}") from None
    pb.outputs = [o for e in by_type.get("outputs", []) for o in e["outputs"]]
    for i, e in enumerate(by_type.get("primitive", [])):
        pb.primitive(i, e)
    return pb.finish()
