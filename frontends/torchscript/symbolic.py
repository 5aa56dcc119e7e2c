"""Symbolic sizes through TorchScript: `dynamic=` dims of the inputs stay named in the program.

With `dynamic=` (`xcomp.dynamic`), an input dim becomes a size name (`tensor<?x?x64xf32, ["B", "S"]>`)
and the driver carries sizes as follows:

- `x.size(i)`, `x.shape[i]`, `len(x)`, `x.numel()` on a symbolic dim give a `SymSize`: a Python
  `str` holding the canonical size expression (`xcomp.ir.symbolic`), so the aten converters take it
  where a shape is wanted (`view`/`reshape`/`expand`/`arange`/`zeros` sizes), as they take torch.export's
  SymInts.
- int arithmetic on sizes stays symbolic (`t // 2`, `b * t`); a comparison is folded when it holds
  for every size (`t >= 0`), else it becomes an IR comparison of `xc.size` values (a branch on it is
  an `xc.if`). Sizes that must be run-time numbers (a loop's trip count, a value crossing a region, a
  number returned) become `xc.size`.
- Traced graphs compute sizes as tensors (`aten::size` -> `prim::NumToTensor` -> tensor arithmetic
  -> `aten::Int`): `size_expr` reads such a chain back as a size, so a traced `view(b, t * h, d)`
  keeps its symbolic size. Sizes that tracing computed in Python are constants: a traced module is
  static there (see `traced_constants`).
- torch's result types come from its meta kernels run on fake tensors whose sizes are `SymInt`s of
  one `ShapeEnv` (`SizeEnv`), read back as size expressions.

Type inference records what the program assumes (`xcomp.guards`). A guard that pins a dim to a
constant (`S == 16`: a reshape to a fixed size, a traced constant) means the program is static in
that dim: with `dynamic=True` the dim is captured static, a dim named in `dynamic=` raises.
"""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

from xcomp.errors import CaptureError
from xcomp.guards import Guard, pinned  # noqa: F401  (pinned: re-exported for bind.py)
from xcomp.ir import symbolic as sym
from xcomp.ir.core import Value
from xcomp.ir.types import DType, TensorType


class SymSize(str):
    """A size known only at run time, as its canonical expression over the input size names."""

    def __repr__(self) -> str:
        return f"SymSize({str.__str__(self)!r})"


def size_of(d):
    """A dim of an IR type as the driver's value: an int, or a `SymSize`."""
    if isinstance(d, int):
        return d
    c = sym.canon(d)
    return c if isinstance(c, int) else SymSize(c)


def is_size(x) -> bool:
    return isinstance(x, SymSize)


def has_size(x) -> bool:
    """Whether `x` (nested lists/tuples included) holds a `SymSize`."""
    if isinstance(x, (list, tuple)):
        return any(has_size(e) for e in x)
    return isinstance(x, SymSize)


# int arithmetic on sizes: name -> rule(a, b) giving a size, or None when it has no size form
def _floordiv(a, b):
    return sym.floordiv(a, b) if isinstance(b, int) and b > 0 else None


def _mod(a, b):
    return sym.mod(a, b) if isinstance(b, int) and b > 0 else None


SIZE_ARITH = {"add": sym.add, "sub": sym.sub, "mul": sym.mul, "floordiv": _floordiv, "remainder": _mod,
              "neg": lambda a: sym.sub(0, a)}
SIZE_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def size_arith(base: str, args: list):
    """`base` (a TorchScript int op) on ints and sizes: a size or int, a bool when a comparison is
    decided for every size, or None (the op then runs on `xc.size` values at run time)."""
    if not all(isinstance(a, (int, SymSize)) and not isinstance(a, bool) for a in args):
        return None
    if base in SIZE_COMPARE and len(args) == 2:
        return Guard(args[0], SIZE_COMPARE[base], args[1]).decided()
    rule = SIZE_ARITH.get(base)
    if rule is None:
        return None
    try:
        out = rule(*args)
    except (ValueError, TypeError):
        return None
    return None if out is None else size_of(out)


# traced graphs: sizes carried as 0-d tensors ------------------------------------------------------
_TENSOR_ARITH = {"add": sym.add, "sub": sym.sub, "mul": sym.mul}


def size_expr(v):
    """The size a 0-d integer tensor `v` holds when it is computed from sizes (`xc.size`, integer
    constants, add/sub/mul, floor division by a constant, casts), else None."""
    from xcomp.rewrite import constant_value
    if not isinstance(v, Value) or not isinstance(v.type, TensorType) or v.type.rank != 0:
        return None
    op = v.op
    if op is None:
        return None
    name = op.name.removeprefix("xc.")
    if name == "size":
        return size_of(op.attrs["value"])
    c = constant_value(v)
    if c is not None:
        return int(c) if c.dtype.kind in "iu" else None
    if name == "cast" and (v.type.dtype.is_int or v.type.dtype is DType.F64):
        return size_expr(op.operands[0])
    args = [size_expr(o) for o in op.operands]
    if any(a is None for a in args) or not args:
        return None
    if name in _TENSOR_ARITH and len(args) == 2:
        return size_of(_TENSOR_ARITH[name](*args))
    if name in ("floor_div", "div") and isinstance(args[1], int) and args[1] > 0 and \
            (name == "floor_div" or op.attrs.get("rounding_mode") in ("floor", "trunc")):
        return size_of(sym.floordiv(args[0], args[1]))
    return None


# torch's meta kernels on symbolic sizes ---------------------------------------------------------
class SizeEnv:
    """One torch `ShapeEnv` with a `SymInt` per size name (its hint the example size), and the
    fake-tensor mode that runs torch's meta kernels on them."""

    def __init__(self, hints: dict[str, int]):
        from torch._dynamo.source import ConstantSource
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
        self.shape_env = ShapeEnv()
        self.mode = FakeTensorMode(shape_env=self.shape_env, allow_non_fake_inputs=True)
        self.symbols: dict[str, Any] = {}
        self.renames: dict[str, str] = {}
        self.hints = {n: max(int(h), 2) for n, h in hints.items()}
        for name, hint in hints.items():
            s = self.shape_env.create_symbol(max(int(hint), 2), ConstantSource(name),
                                             dynamic_dim=DimDynamic.DYNAMIC)
            self.symbols[name] = self.shape_env.create_symintnode(s, hint=max(int(hint), 2))
            self.renames[str(s)] = name

    def agree(self, ours, torchs) -> bool:
        """Whether two shapes are equal at the example sizes (torch's dims may be specialised)."""
        from xcomp.frontends.aten.symbolic import UNKNOWN
        try:
            return len(ours) == len(torchs) and all(
                t == UNKNOWN or sym.evaluate(o, self.hints) == sym.evaluate(t, self.hints) for o, t in zip(ours, torchs))
        except sym.SymbolicError:
            return False

    def symint(self, d):
        """A size (int or expression) as an int or a torch SymInt."""
        if isinstance(d, int):
            return d
        return _poly_value(sym._poly(d), self.symbols)

    @contextlib.contextmanager
    def active(self):
        """Run meta kernels on symbolic sizes; size expressions read back under our names."""
        from xcomp.frontends.aten.symbolic import RENAMES
        token = RENAMES.set(self.renames)
        try:
            with self.mode:
                yield
        finally:
            RENAMES.reset(token)


def _poly_value(p, env):
    total = 0
    for atoms, coeff in p.terms:
        term = coeff
        for a in atoms:
            if not a.op:
                v = env[a.name]
            else:
                inner = _poly_value(a.inner, env)
                v = inner // a.const if a.op == "//" else inner % a.const
            term = term * v
        total = total + term
    return total


# input types and what the program pins ----------------------------------------------------------
def input_type(t: TensorType, axes: dict | None, label: str) -> TensorType:
    """`t` with the `dynamic=` axes named (`axes`: {axis: name or None}; None -> `<label>_<axis>`)."""
    if not axes:
        return t
    shape = list(t.shape)
    for axis, name in axes.items():
        name = name if isinstance(name, str) else getattr(name, "__name__", None)
        shape[axis] = name or f"{label}_{axis}"
    return TensorType(tuple(shape), t.dtype)


def static_error(names: dict[str, str], traced: bool) -> CaptureError:
    """The error for dims named in `dynamic=` that the program fixes (name -> why)."""
    what = "; ".join(f"size '{n}' {why}" for n, why in names.items())
    hint = (" A traced module bakes sizes computed in Python into constants (torch.jit.trace records "
            "values, not size arithmetic): script the model (torch.jit.script) for sizes that follow "
            "the input, or leave those dims out of dynamic=." if traced else
            " Leave those dims out of dynamic= (or use dynamic=True, which keeps them static).")
    return CaptureError(f"the TorchScript program is static in dims named in dynamic=: {what}.{hint}")


def traced_constants(graph, hints: dict[str, int]) -> list[str]:
    """Int constants of a traced graph equal to an example size of a dynamic dim: places where
    torch.jit.trace baked a size in (notes for explain())."""
    by_value: dict[int, list[str]] = {}
    for name, v in hints.items():
        if v > 1:
            by_value.setdefault(int(v), []).append(name)
    found = []
    for node in graph.findAllNodes("prim::Constant"):
        out = node.output()
        try:
            value = out.toIValue()
        except RuntimeError:
            continue
        values = value if isinstance(value, list) else [value]
        hits = sorted({n for x in values if isinstance(x, int) and not isinstance(x, bool)
                       for n in by_value.get(x, [])})
        if hits:
            from xcomp.frontends.torchscript.convert import location
            users = [u.user for u in out.uses()]
            where = location(users[0]) if users else location(node)
            found.append(f"constant {value} at {where} equals the example size of {', '.join(hits)}")
    return found


def is_traced(fn) -> bool:
    import torch
    return isinstance(fn, torch.jit.TracedModule)
