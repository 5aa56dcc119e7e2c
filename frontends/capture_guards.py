"""What a cached torch.export capture depends on: the guards of the capture cache's key.

`capture_key(fn, args, dynamic)` describes everything that decides what torch.export and the ATen
converters make of `fn` called on `args`, or raises `Unhashable` (then nothing is cached: a stale
capture giving a wrong answer is the worst outcome, a capture taken again only costs time):

- torch's and Python's versions, the default dtype, grad and inference mode, and whether any
  global module hook, torch function mode or dispatch mode is active (then: not cached);
- every input: kind, type, shape, dtype, strides, device, requires_grad, the nesting of lists and
  tuples, constant arguments by value; the dynamic-dim spec;
- the module tree: every submodule's path and class, its simple attributes (int, float, str, bool,
  None, dtypes and tuples, lists, sets and dicts of them; `training` included), its parameters'
  and buffers' names, shapes, dtypes and strides (not their values: weights are read from the live
  module when a cached capture is loaded). A submodule with hooks, an FX GraphModule, a script
  module, a tensor-valued plain attribute or any attribute of another type: not cached;
- code: every class outside torch (the module classes and their bases) by the sha256 of its
  source file and each function of its body; every function by its code objects, defaults,
  closure cells and the globals its code names (recursively for functions, classes and modules
  outside torch, numpy and the standard library, each with its source file's sha256). Code
  without a source file (`python -c`, a notebook cell) is not cached.

Torch, numpy and the standard library are known by name (their version is in the key); anything
else is hashed by content. `Unhashable` says what stopped it (logged under XCOMP_LOGS=cache).

Not seen: state code reads from outside its module, arguments and globals (environment variables,
files, torch's global flags beyond those above), torch/numpy/standard-library functions replaced
in-process, and ATen converters removed in-process (added or replaced ones are: `converters`).
"""
from __future__ import annotations

import enum
import hashlib
import os
import sys
import types
from typing import Any

_TRUSTED = frozenset({"torch", "numpy", "builtins"}) | frozenset(sys.stdlib_module_names)
_SIMPLE = (type(None), bool, int, float, complex, str, bytes)
_MAX_OBJECTS = 20000            # a walk through more code than this is not cached
_FILES: dict[tuple, str] = {}   # (path, size, mtime_ns) -> sha256, per process
# nn.Module internals: the tree walk reads these itself; dicts of hooks must be empty
_MODULE_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})


class Unhashable(Exception):
    """Something the capture depends on that the key cannot describe reliably: not cached."""


def file_digest(path: str) -> str:
    """sha256 of a source file's bytes (remembered per path, size and modification time)."""
    try:
        st = os.stat(path)
    except OSError:
        raise Unhashable(f"source file {path!r} cannot be read") from None
    key = (path, st.st_size, st.st_mtime_ns)
    digest = _FILES.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = _FILES[key] = hashlib.sha256(f.read()).hexdigest()
    return digest


def _trusted(module_name: str | None) -> bool:
    return bool(module_name) and module_name.partition(".")[0] in _TRUSTED


class _Walk:
    """One key's walk: texts appended to `parts`, objects already described named by `seen`."""

    def __init__(self):
        self.parts: list[str] = []
        self.seen: dict[int, str] = {}
        self.keep: list = []   # described objects stay alive for the walk (ids stay unique)
        self.files: set[str] = set()

    def _once(self, obj, label: str) -> str | None:
        """None the first time `obj` is met (the caller describes it), else a reference to it."""
        if id(obj) in self.seen:
            return f"ref:{self.seen[id(obj)]}"
        if len(self.seen) > _MAX_OBJECTS:
            raise Unhashable(f"more than {_MAX_OBJECTS} objects reached from the code")
        self.seen[id(obj)] = f"{label}#{len(self.seen)}"
        self.keep.append(obj)
        return None

    def source(self, path: str) -> str:
        if not path or path.startswith("<") or not os.path.isfile(path):
            raise Unhashable(f"code without a source file ({path or 'unknown'})")
        self.files.add(path)
        return file_digest(path)

    # -- values ---------------------------------------------------------------------------------
    def value(self, v: Any) -> str:
        """A canonical text for `v`, or `Unhashable`."""
        t = type(v)
        if t in _SIMPLE:
            return f"{t.__name__}:{v!r}"
        if t in (tuple, list):
            return f"{t.__name__}(" + ",".join(self.value(x) for x in v) + ")"
        if t in (set, frozenset):
            return f"{t.__name__}(" + ",".join(sorted(self.value(x) for x in v)) + ")"
        if t is dict:
            return "dict(" + ",".join(sorted(f"{self.value(k)}={self.value(x)}" for k, x in v.items())) + ")"
        torch = sys.modules.get("torch")
        if torch is not None:
            if t is torch.Size:
                return f"Size{tuple(v)}"
            if t in (torch.dtype, torch.device, torch.layout, torch.memory_format):
                return f"{t.__name__}:{v}"
            if isinstance(v, torch.Tensor):
                raise Unhashable("a tensor that is no parameter or buffer")
        if isinstance(v, enum.Enum):
            return f"enum:{self.cls(t)}.{v.name}"
        if isinstance(v, type):
            return self.cls(v)
        if isinstance(v, types.FunctionType):
            return self.function(v)
        if isinstance(v, types.ModuleType):
            return self.module(v)
        if isinstance(v, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            owner = getattr(v, "__self__", None)
            mod = getattr(v, "__module__", None) or (owner.__name__ if isinstance(owner, types.ModuleType) else None)
            if (owner is None or isinstance(owner, types.ModuleType)) and _trusted(mod):
                return f"builtin:{mod}.{v.__qualname__}"
            raise Unhashable(f"a built-in method bound to {type(owner).__name__}")
        if t in (staticmethod, classmethod):
            return f"{t.__name__}({self.value(v.__func__)})"
        if t is property:
            return f"property({self.value(v.fget)},{self.value(v.fset)},{self.value(v.fdel)})"
        mod = getattr(t, "__module__", "")
        if mod.startswith("torch._ops") or type(v).__name__ in ("OpOverloadPacket", "OpOverload"):
            return f"op:{v}"
        raise Unhashable(f"a value of type {mod}.{t.__qualname__}")

    def module(self, m: types.ModuleType) -> str:
        if _trusted(m.__name__):
            return f"module:{m.__name__}"
        ref = self._once(m, m.__name__)
        if ref:
            return ref
        return f"module:{m.__name__}:{self.source(getattr(m, '__file__', None) or '')}"

    def cls(self, c: type) -> str:
        """A class by name when torch, numpy or the standard library defines it, else by its source
        file's sha256, the functions and values of its body and its bases."""
        name = f"{c.__module__}.{c.__qualname__}"
        if _trusted(c.__module__):
            torch = sys.modules.get("torch")
            if torch is not None and issubclass(c, (torch.fx.GraphModule, torch.jit.ScriptModule)):
                raise Unhashable(f"{name} (its code is per instance)")
            return f"class:{name}"
        ref = self._once(c, name)
        if ref:
            return ref
        mod = sys.modules.get(c.__module__)
        out = [f"class:{name}:{self.source(getattr(mod, '__file__', None) or '')}"]
        out += [f"base={self.cls(b)}" for b in c.__bases__]
        for k, v in c.__dict__.items():
            if k in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "_abc_impl",
                     "__annotations__", "__parameters__", "__orig_bases__", "__static_attributes__",
                     "__firstlineno__"):
                continue
            out.append(f"{k}={self.value(v)}")
        return "{" + ";".join(out) + "}"

    def function(self, f: types.FunctionType) -> str:
        """A function by name when it is torch's, numpy's or the standard library's, else by its
        code, defaults, closure, attributes, source file and the globals its code names."""
        name = f"{f.__module__}.{f.__qualname__}"
        if _trusted(f.__module__) and not f.__code__.co_filename.startswith("<"):
            return f"fn:{name}"
        ref = self._once(f, name)
        if ref:
            return ref
        out = [f"fn:{name}", self.source(f.__code__.co_filename), self.code(f.__code__, f.__globals__),
               f"defaults={self.value(f.__defaults__)}", f"kwdefaults={self.value(f.__kwdefaults__)}"]
        for cell in f.__closure__ or ():
            try:
                out.append(f"cell={self.value(cell.cell_contents)}")
            except ValueError:   # an empty cell
                out.append("cell=<empty>")
        out += [f"attr {k}={self.value(v)}" for k, v in sorted(f.__dict__.items())]
        return "{" + ";".join(out) + "}"

    def code(self, co: types.CodeType, globs: dict) -> str:
        out = [co.co_code.hex(), repr(co.co_names), repr(co.co_varnames), repr(co.co_freevars),
               repr(co.co_cellvars), str(co.co_flags), str(co.co_argcount), str(co.co_kwonlyargcount)]
        for c in co.co_consts:
            out.append(self.code(c, globs) if isinstance(c, types.CodeType) else self.value(c))
        for n in co.co_names:   # attribute names as well: a global of the same name counts too
            if n in globs:
                v = globs[n]
                out.append(f"global {n}={self.value(v)}")
                if isinstance(v, types.ModuleType) and not _trusted(v.__name__):   # `mylib.helper`
                    out += [f"{n}.{a}={self.value(getattr(v, a))}" for a in co.co_names if hasattr(v, a)]
        return "code(" + ",".join(out) + ")"

    # -- torch ------------------------------------------------------------------------------------
    def tensor(self, t) -> str:
        torch = sys.modules["torch"]
        if type(t) not in (torch.Tensor, torch.nn.Parameter):
            raise Unhashable(f"a tensor of type {type(t).__qualname__}")
        return (f"{type(t).__name__}{tuple(t.shape)}:{t.dtype}:{t.device}:{t.layout}:{tuple(t.stride())}"
                f":{t.storage_offset()}:{t.requires_grad}")

    def module_tree(self, root) -> str:
        """Every submodule (shared ones once, then by path): class, attributes, parameters, buffers."""
        out, paths = [], {}
        for path, m in root.named_modules(remove_duplicate=False):
            if id(m) in paths:
                out.append(f"[{path}] = [{paths[id(m)]}]")
                continue
            paths[id(m)] = path
            lines = [f"[{path}] {self.cls(type(m))}"]
            for k, v in sorted(m.__dict__.items()):
                if k in _MODULE_SLOTS:
                    continue
                if "hooks" in k and isinstance(v, dict):
                    if v:
                        raise Unhashable(f"module '{path}' has {k}")
                    continue
                try:
                    lines.append(f"{k}={self.value(v)}")
                except Unhashable as e:
                    raise Unhashable(f"attribute '{path}.{k}': {e}") from None
            for k, p in m._parameters.items():
                lines.append(f"param {k}=" + ("None" if p is None else self.tensor(p)))
            for k, b in m._buffers.items():
                lines.append(f"buffer {k}=" + ("None" if b is None else self.tensor(b)))
            lines.append("children=" + ",".join(f"{k}:{c is None}" for k, c in m._modules.items()))
            out.append("\n".join(lines))
        return "\n".join(out)

    def argument(self, a) -> str:
        from xcomp.arrays import kind_of
        kind = kind_of(a)
        if kind == "torch":
            return f"torch:{self.tensor(a)}"
        if kind is not None:
            return f"{kind}:{type(a).__module__}.{type(a).__qualname__}{tuple(a.shape)}:{a.dtype}:" + \
                   str(getattr(a, "strides", ""))
        if type(a) in (list, tuple):
            return f"{type(a).__name__}[" + ",".join(self.argument(x) for x in a) + "]"
        return f"const:{self.value(a)}"


def global_state() -> str:
    """Process-wide torch state a capture reads; `Unhashable` when a hook or mode is active."""
    torch = sys.modules["torch"]
    mm = torch.nn.modules.module
    for name in dir(mm):
        v = getattr(mm, name)
        if name.startswith("_global_") and isinstance(v, dict) and v:
            raise Unhashable(f"global module hooks ({name})")
    if torch._C._len_torch_function_stack():
        raise Unhashable("a torch function mode is active")
    from torch.utils._python_dispatch import _get_current_dispatch_mode
    if _get_current_dispatch_mode() is not None:
        raise Unhashable("a dispatch mode is active")
    return (f"torch {torch.__version__}; python {sys.version}; default dtype {torch.get_default_dtype()}; "
            f"grad {torch.is_grad_enabled()}; inference {torch.is_inference_mode_enabled()}")


def converters() -> str:
    """ATen converters registered from outside xcomp (the table is xcomp's files otherwise)."""
    aten = sys.modules.get("xcomp.frontends.aten")
    if aten is None:   # not imported: nothing registered anything into it
        return ""
    extra = sorted(f"{k}={getattr(v, '__module__', '')}.{getattr(v, '__qualname__', repr(v))}"
                   for k, v in aten.ATEN.items() if not getattr(v, "__module__", "").startswith("xcomp."))
    return ";".join(extra)


def describe(fn, args, dynamic) -> tuple[str, list[str]]:
    """(the key's text, the source files it hashed) of capturing `fn` on `args` with `dynamic`."""
    torch = sys.modules["torch"]
    w = _Walk()
    parts = [global_state(), converters()]
    if isinstance(fn, torch.nn.Module):
        parts += [w.cls(type(fn)), w.module_tree(fn)]
    elif isinstance(fn, types.FunctionType):
        parts.append(w.function(fn))
    else:
        raise Unhashable(f"a callable of type {type(fn).__qualname__}")
    parts += [f"arg {w.argument(a)}" for a in args]
    try:
        parts.append(f"dynamic {w.value(dynamic)}")
    except Unhashable as e:
        raise Unhashable(f"dynamic= spec: {e}") from None
    return "\n".join(parts), sorted(w.files)
