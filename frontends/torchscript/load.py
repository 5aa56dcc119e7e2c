"""Reading `.pt` files and preparing TorchScript graphs (freeze, inline) for conversion.

A `.pt` file is a zip archive holding pickled data and code. xcomp checks the archive's layout with
`zipfile` (names only) and loads it only through `torch.jit.load(map_location="cpu")`, never with
Python's `pickle`: still, a `.pt` file is code and should be trusted like code.
"""
from __future__ import annotations

import os
import warnings
import weakref
import zipfile
from pathlib import Path

from xcomp.errors import FormatError


class ScriptFileError(FormatError):
    """A `.pt` path that is not a readable TorchScript archive; the message names the file."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


def quiet():
    """A context silencing torch.jit's deprecation warnings (torch 2.13 deprecates torch.jit)."""
    ctx = warnings.catch_warnings()

    class _Quiet:
        def __enter__(self):
            ctx.__enter__()
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*torch.jit.*")
            return self

        def __exit__(self, *exc):
            return ctx.__exit__(*exc)
    return _Quiet()


def _archive_layout(path: Path) -> list[str]:
    """The archive's extra-file names; ScriptFileError when it is not a TorchScript archive."""
    if not path.exists():
        raise ScriptFileError(path, "no such file")
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise ScriptFileError(path, f"not a zip archive ({size} bytes): truncated, or not a TorchScript .pt file")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise ScriptFileError(path, f"unreadable zip archive ({e})") from None
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        raise ScriptFileError(path, "the archive has no data.pkl: not a TorchScript archive, or damaged")
    if not any("/code/" in n for n in names):
        raise ScriptFileError(path, "the archive has no code/ directory: not a TorchScript archive "
                                    "(a torch.save file? save with torch.jit.save)")
    extra = []
    for n in names:
        parts = n.split("/")
        if len(parts) >= 3 and parts[1] == "extra" and parts[-1]:
            extra.append("/".join(parts[2:]))
    return extra


def load(path: str | os.PathLike):
    """Load a TorchScript `.pt` file on the CPU. Returns `(module, extra_files)` where
    `extra_files` maps each extra file's name to its text (or bytes when not UTF-8)."""
    import torch
    p = Path(path)
    names = _archive_layout(p)
    extra = {n: "" for n in names}
    try:
        with quiet():
            module = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError/ValueError/EOFError on damaged archives
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ScriptFileError(p, f"torch.jit.load failed: {first}") from None
    decoded = {}
    for k, v in extra.items():
        try:
            decoded[k] = v.decode("utf-8") if isinstance(v, bytes) else v
        except UnicodeDecodeError:
            decoded[k] = v
    return module, decoded


def is_path(fn) -> bool:
    return isinstance(fn, (str, os.PathLike))


def script_graph(fn):
    """`(graph, self_object, schema)` ready to convert: a frozen (weights and attributes as
    constants), inlined copy of the module's forward, or the function's graph inlined."""
    import torch
    with quiet():
        if isinstance(fn, torch.jit.ScriptFunction):
            graph = fn.graph.copy()
            torch._C._jit_pass_inline(graph)
            return graph, None, fn.schema
        method = "forward" if fn._c._has_method("forward") else next(
            (m for m in fn._c._method_names() if m.startswith("forward")), None)
        if method is None:
            raise FormatError(f"{type(fn).__name__} has no forward method to compile")
        key = (method, getattr(fn, "training", False))
        cached = _FROZEN.get(fn, {})
        if key not in cached:  # freezing costs more than converting: once per module and mode
            cached[key] = _frozen(fn, method)
            _FROZEN[fn] = cached
        frozen = cached[key]
        graph = frozen._c._get_method(method).graph.copy()
        schema = frozen._c._get_method(method).schema
        torch._C._jit_pass_inline(graph)
        return graph, frozen, schema


_FROZEN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # module -> {(method, training): frozen}


def _frozen(module, method: str):
    """The module frozen for inference (a no-op for an already frozen module)."""
    import torch
    was_training = getattr(module, "training", False)
    if hasattr(module, "training"):
        module.eval()
    try:
        preserved = [method] if method != "forward" else None
        return torch.jit.freeze(module, preserved_attrs=preserved)
    except (RuntimeError, AttributeError):
        return module  # already frozen, or not freezable: GetAttr nodes are read at conversion
    finally:
        if hasattr(module, "training"):
            module.train(was_training)
