"""Model conversion: `xcomp convert SOURCE --to TARGET -o OUT` and `xcomp.export(SOURCE, ...)`.

A SOURCE is a TorchScript `.pt` file, an MLX `.mlxfn` file, or `module:attr` naming a Python
factory that returns an `nn.Module` (torch or MLX) or `(module, example_inputs)`; Python callers
may also pass the module itself. Inputs are written `NAME:SHAPE:DTYPE` (`x:1x3x224x224:f32`; a
0-d tensor is `x::f32`) or, for host scalars, `NAME=VALUE` (`steps=4`, `scale=0.5`, `causal=true`).
"""
from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from xcomp.errors import XcompError

# exit codes of `xcomp convert` that scripts can rely on
EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_UNSUPPORTED, EXIT_MALFORMED = 0, 1, 2, 3, 4

# `--to` names -> xcomp targets (`ir` is the captured program optimized, as MLIR text + weights)
CONVERT_TARGETS = {"mlx-source": "mlx-source", "coreml": "coreml", "cpp": "cpp", "ir": "reference",
                   "metal": "metal", "cuda": "cuda"}

DTYPES = {"f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16", "i64": "int64",
          "i32": "int32", "i16": "int16", "i8": "int8", "u8": "uint8", "bool": "bool"}


SOURCE_KEY = "xcomp.source"   # program.metadata entry written by `annotate`


class UsageError(XcompError):
    """A bad command line: an input spec, a SOURCE that names nothing, an unknown `--to`."""


@dataclass(frozen=True)
class InputSpec:
    """One input of the converted model: a tensor (shape, dtype) or a host scalar (value)."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = ""
    value: Any = None

    @property
    def is_tensor(self) -> bool:
        return bool(self.dtype)

    def __str__(self) -> str:
        if not self.is_tensor:
            return f"{self.name}={self.value!r}"
        return f"{self.name}:{'x'.join(map(str, self.shape))}:{self.dtype}"


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_input(text: str) -> InputSpec:
    """`x:1x3x224x224:f32` or `steps=4` as an InputSpec; UsageError saying what is wrong."""
    if "=" in text and ":" not in text:
        name, _, raw = text.partition("=")
        if not _NAME.match(name):
            raise UsageError(f"--input {text!r}: {name!r} is not a name")
        low = raw.strip().lower()
        if low in ("true", "false"):
            return InputSpec(name, value=low == "true")
        for cast in (int, float):
            try:
                return InputSpec(name, value=cast(raw))
            except ValueError:
                pass
        raise UsageError(f"--input {text!r}: host scalars are int, float or bool (true/false), got {raw!r}")
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(f"--input {text!r}: expected NAME:SHAPE:DTYPE (x:1x3x224x224:f32) or NAME=VALUE (steps=4)")
    name, shape, dtype = parts
    if not _NAME.match(name):
        raise UsageError(f"--input {text!r}: {name!r} is not a name")
    if dtype not in DTYPES:
        raise UsageError(f"--input {text!r}: unknown dtype {dtype!r}; one of {', '.join(DTYPES)}")
    dims = shape.lower().split("x") if shape else []
    if not all(d.isdigit() for d in dims):
        raise UsageError(f"--input {text!r}: shape {shape!r} must be sizes joined by 'x' (1x3x224x224)")
    return InputSpec(name, tuple(int(d) for d in dims), dtype)


def random_inputs(specs: Sequence[InputSpec], kind: str, seed: int = 0) -> list:
    """Inputs for `specs`: normal floats, small integers, random bools (host scalars as given),
    as torch tensors (`kind="torch"`), MLX arrays (`"mlx"`) or numpy arrays."""
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        if not s.is_tensor:
            out.append(s.value)
            continue
        np_dtype = "float32" if s.dtype == "bf16" else DTYPES[s.dtype]
        if s.dtype == "bool":
            a = rng.random(s.shape) < 0.5
        elif np.dtype(np_dtype).kind in "iu":
            a = rng.integers(0, 8, s.shape).astype(np_dtype)
        else:
            a = rng.standard_normal(s.shape).astype(np_dtype)
        out.append(a if kind == "numpy" else _convert_dtype(a, kind, s))
    return out


def _convert_dtype(a: np.ndarray, kind: str, s: InputSpec):
    """numpy -> torch/MLX with the spec's dtype (bfloat16 included)."""
    if kind == "torch":
        import torch
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.to(torch.bfloat16) if s.dtype == "bf16" else t
    import mlx.core as mx
    x = mx.array(a)
    return x.astype(mx.bfloat16) if s.dtype == "bf16" else x


@dataclass
class Source:
    """A resolved SOURCE: what to capture, example inputs it came with, where it came from."""

    fn: Any
    inputs: list | None = None
    description: str = ""
    kind: str = "torch"   # the array kind its inputs take: "torch" or "mlx"
    notes: list[str] = field(default_factory=list)


def resolve_source(source: Any, inputs: Sequence[Any] | None = None) -> Source:
    """Resolve a SOURCE (path, `module:attr` or a callable) into a `Source`."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.endswith(".mlxfn"):
            _must_exist(text)
            return Source(text, _list(inputs), f"MLX function file {os.path.basename(text)}", "mlx")
        if text.endswith(".pt") or text.endswith(".pth") or os.path.exists(text):
            _must_exist(text)
            return Source(text, _list(inputs), f"TorchScript file {os.path.basename(text)}", "torch")
        if ":" in text:
            return _factory(text, inputs)
        raise UsageError(f"SOURCE {text!r}: no such file; expected a .pt file, an .mlxfn file or module:attr")
    return Source(source, _list(inputs), f"Python object {type(source).__name__}", _kind_of_callable(source))


def _list(inputs):
    return list(inputs) if inputs is not None else None


def _must_exist(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"SOURCE {path!r}: no such file")


def _kind_of_callable(fn) -> str:
    nn = sys.modules.get("mlx.nn")
    return "mlx" if nn is not None and isinstance(fn, nn.Module) else "torch"


def _factory(spec: str, inputs) -> Source:
    """`module:attr`: a factory (called with no arguments) or a module object."""
    module_name, _, attr = spec.partition(":")
    if module_name in ("zoo", "xcomp.zoo"):
        module_name = "xcomp.zoo"
    if not module_name or not attr or not all(_NAME.match(p) for p in module_name.split(".") + attr.split(".")):
        raise UsageError(f"SOURCE {spec!r}: expected module:attr (a Python module and a factory in it)")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"SOURCE {spec!r}: cannot import {module_name} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"SOURCE {spec!r}: {module_name} has no attribute {attr}")
        obj = getattr(obj, part)
    if module_name == "xcomp.zoo" and isinstance(obj, dict):
        raise UsageError(f"SOURCE {spec!r}: name a model factory")
    made = obj() if callable(obj) and not _is_module(obj) else obj
    given = None
    if isinstance(made, tuple) and len(made) == 2 and callable(made[0]):
        made, given = made
    if not callable(made):
        raise UsageError(f"SOURCE {spec!r}: the factory returned {type(made).__name__}, not a module")
    example = _list(inputs) if inputs is not None else (list(given) if given is not None else None)
    return Source(made, example, f"{spec} ({type(made).__name__})", _kind_of_callable(made))


def _is_module(obj) -> bool:
    for name in ("torch.nn", "mlx.nn"):
        nn = sys.modules.get(name)
        if nn is not None and isinstance(obj, nn.Module):
            return True
    return False


def describe_inputs(inputs: Sequence[Any] | None) -> str:
    """`2x64 float32, steps=4`-style description of example inputs (for headers and reports)."""
    from xcomp.arrays import kind_of
    parts = []
    for x in inputs or []:
        if kind_of(x) is not None:
            parts.append("x".join(str(int(d)) for d in x.shape) + f" {str(x.dtype).split('.')[-1]}")
        else:
            parts.append(repr(x))
    return ", ".join(parts)


def argument_names(fn: Any, count: int) -> list[str]:
    """The names of `fn`'s first `count` positional parameters (a module's forward, a scripted
    function's schema), or `arg0`, `arg1`, ... where they are unknown."""
    import inspect
    names: list[str] = []
    schema = getattr(fn, "schema", None) or getattr(getattr(fn, "forward", None), "schema", None)
    if schema is not None:
        names = [a.name for a in schema.arguments if a.name != "self"]
    else:
        target = getattr(fn, "forward", None) or getattr(fn, "__call__", None) or fn
        try:
            params = inspect.signature(target).parameters.values()
            names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            names = []
    names = names[:count]
    return names + [f"arg{i}" for i in range(len(names), count)]


def annotate(program, src: Source, example: Sequence[Any] | None, names: Sequence[str] | None = None) -> None:
    """Record in `program.metadata[SOURCE_KEY]` where it was converted from (`converted_from`) and,
    when the inputs are flat, every argument in order (`arguments`: name, and the value of host
    scalars, which are constants of the converted program). Kept in one dict (not text), so saved
    IR directories stay as they were; `mlx-source` writes it into its header and call signature."""
    from xcomp.arrays import kind_of
    example = list(example or [])
    info = program.metadata.setdefault(SOURCE_KEY, {})
    info.setdefault("converted_from", f"{src.description} with inputs {describe_inputs(example)}")
    flat = all(kind_of(x) is not None or isinstance(x, (bool, int, float)) for x in example)
    tensors = sum(1 for x in example if kind_of(x) is not None)
    if not example or not flat or tensors != len(program.main.args):
        return
    names = list(names) if names else argument_names(src.fn, len(example))
    info["arguments"] = [
        {"name": n, "tensor": kind_of(x) is not None, **({} if kind_of(x) is not None else {"value": x})}
        for n, x in zip(names, example)]
