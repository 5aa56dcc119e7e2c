"""The capture cache: torch.export captures kept on disk, so a warm start skips torch.export.

`xcomp.compile` and `xcomp.export` look a torch.export capture up here first (namespace "captures"
of `xcomp.cache`). The key (`capture_guards.describe`) holds torch's version, xcomp's files (the
frontends' by content, the rest as `program_cache.source_fingerprint`), the inputs' specs, the
dynamic-dim spec, the module tree (classes, simple attributes, parameter and buffer names, shapes
and dtypes) and the code involved (source files by sha256, closures, referenced globals). Anything
it cannot describe reliably (a tensor attribute, a hook, code without a source file, an object of
an unknown type) means: not cached.

An entry holds the captured IR text (`capture.mlir`, weights by name: `xc.weight {name}`) and
`capture.json` (each weight's shape and dtype, argument and value names, weight dtypes, metadata,
the output pytree spec as torch's JSON, the capture's source label). No pickle. Weights are not
stored: a hit reads them from the live module by name (parameters and buffers), so changed weights
give the new answer. A capture is stored only when its IR text reads back exactly and every weight
is a parameter or buffer of the module (a lifted constant, such as a tensor made in `forward` or a
plain tensor attribute, is not). A hit imports neither torch._dynamo nor the torch.export frontend.

`cache=False` (`xcomp.compile`, `xcomp.export`) or `XCOMP_CACHE=0` turns it off, as for programs.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Callable

from xcomp.cache import Cache, content_key
from xcomp.frontends import Captured
from xcomp.frontends.capture_guards import Unhashable, describe, file_digest
from xcomp.ir.core import Program
from xcomp.logs import get_logger

_LOG = get_logger("cache")
_KEY_VERSION = "xcomp-captures-1"
NAMESPACE = "captures"
PROGRAM = "capture.mlir"
INFO = "capture.json"


class _NotStored(Exception):
    """The capture cannot be stored (see the module docstring): it is used, nothing is cached."""


# the frontends' files a torch.export capture runs (the TorchScript and MLX frontends are not among them)
_CAPTURE_DIRS = ("", "aten")


@functools.lru_cache(maxsize=None)
def frontend_fingerprint() -> str:
    """sha256 over the torch.export capture's Python files (the frontends' own files and the ATen
    table, path and content), once per process."""
    import xcomp.frontends
    root = os.path.dirname(os.path.abspath(xcomp.frontends.__file__))
    parts = []
    for sub in _CAPTURE_DIRS:
        folder = os.path.join(root, sub)
        for n in sorted(os.listdir(folder)):
            if n.endswith(".py"):
                parts.append(f"{sub}/{n}={file_digest(os.path.join(folder, n))}")
    return content_key(*parts)


def capture_key(fn, args: list, dynamic) -> str:
    """The cache key of capturing `fn` on `args` with the dynamic dims `dynamic`; `Unhashable`
    when something the capture depends on cannot be described."""
    from xcomp.program_cache import source_fingerprint
    import numpy
    text, _ = describe(fn, args, dynamic)
    return content_key(_KEY_VERSION, source_fingerprint(), frontend_fingerprint(), f"numpy {numpy.__version__}", text)


def _live_tensors(fn, args: list) -> dict[str, Any]:
    """Parameters and buffers of `fn` by the names torch.export gives its weights (a module
    called with non-tensor arguments is exported bound, as the submodule `inner`)."""
    torch = sys.modules["torch"]
    if not isinstance(fn, torch.nn.Module):
        return {}
    from xcomp.arrays import kind_of
    prefix = "" if all(kind_of(a) is not None for a in args) else "inner."
    out = {prefix + n: p for n, p in fn.named_parameters(remove_duplicate=False)}
    out.update((prefix + n, b) for n, b in fn.named_buffers(remove_duplicate=False))
    return out


def _weight_array(t):
    """A live weight as the frontend reads it (bfloat16 widened to float32, as numpy lacks it)."""
    torch = sys.modules["torch"]
    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def _values(program):
    from xcomp.program_cache import _values as values
    return values(program)


# -- store ------------------------------------------------------------------------------------------
def _is_live(arr, t) -> bool:
    """Whether the captured weight `arr` is the live tensor `t` (same memory, or same values)."""
    torch = sys.modules["torch"]
    if tuple(arr.shape) != tuple(t.shape):
        return False
    if t.device.type == "cpu" and t.dtype != torch.bfloat16:
        return arr.__array_interface__["data"][0] == t.data_ptr() or not t.numel()
    import numpy as np
    return bool(np.array_equal(arr, _weight_array(t)))


def _write(d: str, captured: Captured, fn, args: list) -> None:
    from torch.utils import _pytree

    from xcomp.ir.printer import print_program
    from xcomp.program_cache import round_trip_error
    program = captured.program
    if captured.rebuild is not None or not all(isinstance(n, str) for n in captured.notes):
        raise _NotStored("the capture restructures its outputs itself")
    live = _live_tensors(fn, args)
    weights = {}
    for name, arr in sorted(program.weights.items()):
        t = live.get(name)
        if t is None or not _is_live(arr, t):
            raise _NotStored(f"weight '{name}' is no parameter or buffer of the module")
        weights[name] = {"shape": list(t.shape), "dtype": str(t.dtype)}
    text = print_program(program)
    error = round_trip_error(text, program)
    if error:
        raise _NotStored(f"the captured IR {error}")
    try:
        out_spec = None if captured.out_spec is None else _pytree.treespec_dumps(captured.out_spec)
        info = {"weights": weights, "out_spec": out_spec, "source": captured.source,
                "array_kind": captured.array_kind, "notes": list(captured.notes),
                "metadata": program.metadata,
                "weight_dtypes": {k: getattr(v, "value", str(v)) for k, v in sorted(program.weight_dtypes.items())},
                "arg_names": {n: list(f.arg_names) for n, f in sorted(program.funcs.items())},
                "hints": {str(i): v.hint for i, v in enumerate(_values(program)) if v.hint},
                "created": time.time()}
        info_text = json.dumps(info, indent=1, sort_keys=True)
    except Exception as e:  # noqa: BLE001 - an output structure or metadata JSON cannot hold
        raise _NotStored(f"{type(e).__name__}: {e}") from None
    with open(os.path.join(d, PROGRAM), "w") as f:
        f.write(text)
    with open(os.path.join(d, INFO), "w") as f:
        f.write(info_text)


# -- load -------------------------------------------------------------------------------------------
class _TextProgram(Program):
    """A hit's captured program kept as its IR text until its functions or guards are first read;
    then it is parsed and is a plain `Program` from there on. When the optimized program comes from
    the program cache as well (whose key hashes this text: `unparsed`), it is never parsed."""

    def __init__(self, text: str, weights: dict, arg_names: dict, hints: dict, source_name: str):
        # not Program.__init__: `funcs` and `guards` come from the text
        self.__dict__.update(weights=weights, weight_dtypes={}, metadata={}, _text=text, _arg_names=arg_names,
                             _hints=hints, _source=source_name)

    @property
    def unparsed(self) -> tuple[str, dict]:
        """(IR text, argument names per function) of the program, not parsed."""
        return self._text, self._arg_names

    def _parse(self) -> Program:
        from xcomp.ir.parser import parse
        d = self.__dict__
        p = parse(d["_text"], self.weights, source_name=d["_source"])
        for name, arg_names in d["_arg_names"].items():
            p.funcs[name].arg_names = list(arg_names)
        if d["_hints"]:
            for i, v in enumerate(_values(p)):
                v.hint = d["_hints"].get(str(i), "")
        for k in ("_text", "_arg_names", "_hints", "_source"):
            del d[k]
        d.update(funcs=p.funcs, guards=p.guards)
        self.__class__ = Program
        return self

    funcs = property(lambda self: self._parse().funcs, lambda self, v: setattr(self._parse(), "funcs", v))
    guards = property(lambda self: self._parse().guards, lambda self, v: setattr(self._parse(), "guards", v))


def _read(d: str, fn, args: list) -> Captured:
    from torch.utils import _pytree

    from xcomp.ir.types import DType
    with open(os.path.join(d, INFO)) as f:
        info = json.load(f)
    live = _live_tensors(fn, args)
    weights = {}
    for name, meta in info["weights"].items():
        t = live[name]
        if list(t.shape) != meta["shape"] or str(t.dtype) != meta["dtype"]:
            raise ValueError(f"weight '{name}' is {tuple(t.shape)} {t.dtype}, the entry says {meta}")
        weights[name] = _weight_array(t)
    path = os.path.join(d, PROGRAM)
    with open(path) as f:
        program = _TextProgram(f.read(), weights, info["arg_names"], info["hints"], path)
    program.weight_dtypes = {k: DType(v) for k, v in info["weight_dtypes"].items()}
    program.metadata = info["metadata"]
    spec = info["out_spec"]
    return Captured(program, None if spec is None else _pytree.treespec_loads(spec), info["source"],
                    info["array_kind"], notes=list(info["notes"]), cached=d)


def capture(fn, args: list, dynamic, run: Callable[[Any, list, Any], Captured], use_cache: bool | None,
            on_miss: Callable[[], None] | None = None) -> Captured:
    """`run(fn, args, dynamic)` (a torch.export capture) through the capture cache; `on_miss()`
    (the target's background preparation) runs before a capture that is not read from it."""
    from xcomp.program_cache import enabled

    def capture_now() -> Captured:
        if on_miss is not None:
            on_miss()
        return run(fn, args, dynamic)
    if not enabled(use_cache):
        return capture_now()
    try:
        key = capture_key(fn, args, dynamic)
    except Unhashable as e:
        _LOG.debug("capture not cached: %s", e)
        return capture_now()
    cache = Cache(NAMESPACE)
    hit = cache.lookup(key)
    if hit:
        try:
            captured = _read(hit, fn, args)
            _LOG.debug("hit %s/%s: torch.export skipped", NAMESPACE, key[:16])
            return captured
        except Exception as e:  # noqa: BLE001 - an entry that passed its checksums but does not load
            _LOG.debug("unreadable entry %s/%s (%s: %s): capturing again", NAMESPACE, key[:16], type(e).__name__, e)
            cache.remove(key)
    captured = capture_now()
    try:
        cache.get(key, lambda d: _write(d, captured, fn, args))
    except _NotStored as e:
        _LOG.debug("not cached %s/%s: %s", NAMESPACE, key[:16], e)
    except OSError as e:   # a cache folder that cannot be written: captured without it
        _LOG.debug("cache unusable (%s): %s", cache.dir, e)
    return captured
