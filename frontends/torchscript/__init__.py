"""TorchScript frontend: scripted and traced modules, script functions and `.pt` files to xcomp IR.

    captured = capture(module_or_path, args)   # xcomp.frontends.Captured

Arguments follow the scripted signature (tensors; int/float/bool, which are constants of the
signature; `Optional[Tensor]` given or None; lists and tuples of those); tensors become the
program's inputs in the order they appear. Outputs keep the scripted nesting (`Tuple[Tensor,
List[Tensor]]`, `(out, (h, c))`, `List[int]`). The graph is frozen and inlined (`load.script_graph`)
and converted by `convert.convert_block`; every unsupported node is reported at once with its
TorchScript source line.
"""
from __future__ import annotations

import weakref
from typing import Any, Sequence

from xcomp.frontends import Captured
from xcomp.frontends.torchscript.load import ScriptFileError, is_path, load, quiet, script_graph  # noqa: F401
from xcomp.frontends.torchscript.check import check_trace  # noqa: F401


def claims(fn, inputs=None) -> bool:
    """TorchScript modules and functions, and paths (taken to be `.pt` files)."""
    import sys
    if is_path(fn):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(fn, (torch.jit.ScriptModule, torch.jit.ScriptFunction))


SOURCES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # loaded module -> (path, extra files)


def prepare(fn):
    """A path is loaded at once (errors name the file); modules and functions pass through."""
    if is_path(fn):
        module, extra = load(fn)
        SOURCES[module] = (str(fn), extra)
        return module
    return fn


def capture(fn, args: Sequence[Any], dynamic=None) -> Captured:
    """Convert `fn` (a ScriptModule, ScriptFunction or `.pt` path) called with `args`; `dynamic`
    (one {axis: name or None} per tensor input) makes those dims symbolic (`symbolic.py`)."""
    from xcomp.frontends.torchscript.bind import capture_script
    fn = prepare(fn)
    return capture_script(fn, list(args), dynamic)
