"""The TorchScript driver: a frozen, inlined TorchScript graph to xcomp IR.

`convert_block(cv, block, env)` converts the nodes of one block and returns its outputs; it is
called again for the blocks of `prim::If` (-> `xc.if`, or the taken block alone when the condition
is known at capture time) and `prim::Loop` (-> `xc.loop`, `for` and `while` forms alike). Lists and
tensors that a branch or loop body changes in place (`aten::append`, `add_`) leave the region as
extra results or loop-carried values.

Each node goes, in order, to: the Python-level table (`nodes.NODES`), the number ops
(`nodes.scalar_op`), a capture-time fold when every input is known and no output is a tensor, or
the aten table shared with torch.export (`ATEN["aten.<op>.<overload>"]`, the overload from
`node.schema()`, in-place `foo_` resolved to `foo`).
"""
from __future__ import annotations

import re

import numpy as np
import torch

from xcomp.errors import UnsupportedOp
from xcomp.ir.builder import Builder
from xcomp.ir.core import Value
from xcomp.ir.types import DType, TensorType
from xcomp.frontends.aten import ATEN
from xcomp.frontends.context import ConvertContext
from xcomp.frontends.torch_export import XCOMP_TO_TORCH, meta_type, to_dtype
from xcomp.frontends.torchscript import nested, views
from xcomp.frontends.torchscript import nodes as N
from xcomp.frontends.aten.symbolic import same_sizes
from xcomp.frontends.torchscript.symbolic import SymSize, has_size
from xcomp.frontends.torchscript.values import RegionTypeError, _Typed, is_static, materialize, same

POISON = type("Poison", (), {"__repr__": lambda self: "<unconverted>"})()
_SRC = re.compile(r'File "([^"]+)", line (\d+)')


class ScriptContext(ConvertContext):
    """The converter context of the TorchScript driver: result types from torch's meta kernels run
    on the operands' IR types; used results from the node's uses."""

    def __init__(self, builder: Builder, program):
        super().__init__(builder, program)
        self.types: list = []
        self.used: set[int] = set()

    def out_types(self):
        return self.types

    def used_outputs(self) -> set[int]:
        return self.used


def schema_name(node) -> tuple[str, str]:
    """(`aten::add_`, `Tensor`) for a node with a schema, else (kind, "")."""
    try:
        s = torch._C.parse_schema(node.schema())
    except Exception:
        return node.kind(), ""
    return s.name, s.overload_name


def functional(name: str) -> str:
    """`aten::add_` -> `aten::add` (dunders such as `__and__` stay)."""
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def location(node) -> str:
    """`file:line: code` of the node's TorchScript source range."""
    text = node.sourceRange() or ""
    m = _SRC.search(text)
    if not m:
        return "<unknown>"
    lines = text.splitlines()
    marks = [i for i, ln in enumerate(lines) if "~" in ln and not ln.replace("~", "").replace("<--- HERE", "").strip()]
    code = lines[marks[0] - 1].strip() if marks and marks[0] > 0 else ""
    return f"{m.group(1)}:{m.group(2)}" + (f": {code}" if code else "")


class Converter:
    """State of one conversion: the context, the value environment's rebinding, notes, errors."""

    def __init__(self, program, builder: Builder):
        self.cx = ScriptContext(builder, program)
        self.program = program
        self.unsupported: list[UnsupportedOp] = []
        self.notes: list[str] = []
        self.env_stack: list[dict] = []
        self.constants: dict[int, tuple] = {}
        self.sizes = None  # symbolic.SizeEnv when input dims are symbolic (dynamic=)

    @property
    def env(self) -> dict:
        return self.env_stack[-1]

    def rebind(self, jit_value, new) -> None:
        """After an in-place op, later reads of `jit_value` see the new value."""
        self.env[jit_value] = new

    def known(self, v: Value):
        """The value of `v` when it is computed from constants alone (traced graphs compute sizes
        as tensors: `size` -> `NumToTensor` -> arithmetic -> `Int`), else None."""
        from xcomp.passes.fold import evaluate, foldable_op
        from xcomp.rewrite import constant_value
        c = constant_value(v)
        if c is not None or v.op is None or not foldable_op(v.op) or len(v.op.results) != 1:
            return c
        if v.op.name == "xc.size" and isinstance(v.op.attrs["value"], str):  # a size known at run time
            return None
        args = [self.known(o) for o in v.op.operands]
        return None if any(a is None for a in args) else evaluate(v.op, args)

    def materialize(self, x, like_type=None):
        return materialize(self.cx, x, _Typed(like_type) if like_type is not None else None)

    def tensor_constant(self, t: torch.Tensor, name: str) -> Value:
        if id(t) in self.constants:  # one weight per parameter, however often it is read
            return self.constants[id(t)][1]
        v = self._tensor_constant(t, name)
        self.constants[id(t)] = (t, v)
        return v

    def _tensor_constant(self, t: torch.Tensor, name: str) -> Value:
        arr = t.detach().cpu()
        dt = to_dtype(arr.dtype)
        value = (arr.float() if dt is DType.BF16 else arr).numpy()
        if value.size <= 16 and not name.startswith("self."):
            return self.cx.op("dense", value=np.array(value, order="C"), dtype=dt) if value.ndim else \
                self.cx.const(value.item(), dt)
        key = re.sub(r"[^A-Za-z0-9_.]", "_", name) or "const"
        while key in self.program.weights:
            key += "_"
        self.program.weights[key] = np.array(value, order="C")
        return self.cx.b.create("weight", (), {"name": key}, result_types=[TensorType(value.shape, dt)]).result

    def fail(self, node, name: str, reason: str = "") -> None:
        self.unsupported.append(UnsupportedOp(name, location(node), reason))


def convert_block(cv: Converter, block, env: dict) -> list:
    """Convert `block`'s nodes with `env` (TorchScript value -> converted value); its outputs."""
    cv.env_stack.append(env)
    try:
        for node in block.nodes():
            ins = [env.get(v, POISON) for v in node.inputs()]
            outs = convert_node(cv, node, ins)
            for o, v in zip(node.outputs(), outs):
                env[o] = v
        return [env.get(v, POISON) for v in block.returnNode().inputs()]
    finally:
        cv.env_stack.pop()


def convert_node(cv: Converter, node, ins: list) -> list:
    n_out = node.outputsSize()
    if any(x is POISON for x in flatten_all(ins)):
        return [POISON] * n_out
    name, overload = schema_name(node)
    cv.cx.b.loc = None
    try:
        handler = N.NODES.get(f"{name}.{overload}") or N.NODES.get(name)
        if handler is not None:
            return list(handler(cv, node, *ins))
        base = name.split("::", 1)[-1]
        if N.is_scalar_node(node):
            return N.scalar_op(cv, node, base, ins)
        if is_static(ins) and not has_size(ins) and not any(_has_tensor(o.type()) for o in node.outputs()) \
                and overload is not None:
            folded = fold_static(name, overload, ins)
            if folded is not None:
                return folded
        return convert_aten(cv, node, name, overload, ins)
    except (NotImplementedError, RegionTypeError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        cv.fail(node, f"{name}{'.' + overload if overload else ''}", str(e) or type(e).__name__)
        return [POISON] * n_out


def flatten_all(x) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for e in x for leaf in flatten_all(e)]
    return [x]


def _has_tensor(t) -> bool:
    k = t.kind()
    if k == "TensorType":
        return True
    return any(_has_tensor(c) for c in t.containedTypes())


def fold_static(name: str, overload: str, ins: list):
    """Run a node whose inputs are all known (no tensor output) at capture time."""
    ns, op = name.split("::", 1)
    try:
        fn = getattr(getattr(getattr(torch.ops, ns), op), overload or "default")
        out = fn(*ins)
    except Exception:
        return None
    return list(out) if isinstance(out, tuple) else [out]


# -- aten nodes through the shared table -------------------------------------------------------------
_DTYPE_TYPES = ("ScalarType", "ScalarType?")


def aten_key(name: str, overload: str) -> str:
    ns, op = functional(name).split("::", 1)
    return f"{ns}.{op}.{overload or 'default'}"


def convert_aten(cv: Converter, node, name: str, overload: str, ins: list) -> list:
    key = aten_key(name, overload)
    conv = ATEN.get(key)
    if conv is None:
        raise NotImplementedError(f"no converter for {key}")
    schema = torch._C.parse_schema(node.schema())
    ins, keep = nested.unwrap(cv.cx, key, ins)
    args, kwargs = _arguments(schema, _plain(ins))
    cx = cv.cx
    if cv.sizes is None:
        cx.types = _meta_types(key, schema, args, kwargs, node)
    else:  # torch's meta kernels on SymInt sizes (symbolic.SizeEnv)
        with cv.sizes.active():
            cx.types = _meta_types(key, schema, args, kwargs, node, cv.sizes)
    cx.used = {i for i, o in enumerate(node.outputs()) if o.uses()}
    cx.b.loc = None
    out = conv(cx, *args, **kwargs)
    results = _results(cx, node, out, cv.sizes)
    if keep is not None:
        results[0] = nested.Nested(results[0], keep)
    if functional(name) != name and isinstance(ins[0], Value):
        cv.rebind(node.inputsAt(0), results[0])
        views.write_back(cv, node.inputsAt(0), results[0], node)  # `x[:, i] = h` changes x too
    return results


def _arguments(schema, ins: list):
    """Positional and keyword arguments as FX gives them (trailing defaults left out, dtype codes
    as torch dtypes)."""
    args, kwargs = [], {}
    for a, v in zip(schema.arguments, ins):
        if str(a.type) in _DTYPE_TYPES and isinstance(v, int):
            v = getattr(torch, N.TORCH_DTYPE_CODES[v])
        if a.kwarg_only:
            kwargs[a.name] = v
        else:
            args.append((a, v))
    while args and args[-1][0].has_default_value() and same(args[-1][1], args[-1][0].default_value):
        args.pop()
    return [v for _, v in args], kwargs


def _plain(x):
    """Sizes (`SymSize`) as plain expression strings, as torch.export's converters receive them."""
    if isinstance(x, SymSize):
        return str(x)
    if isinstance(x, list):
        return [_plain(e) for e in x]
    if isinstance(x, tuple):
        return tuple(_plain(e) for e in x)
    return x


def _meta(x, scalar_kind: str | None = None, sizes=None):
    if isinstance(x, Value):
        t = x.type
        if isinstance(t, TensorType):
            if scalar_kind in ("int", "float", "bool", "number", "Scalar"):
                return {DType.BOOL: True}.get(t.dtype, 1.0 if t.dtype.is_float else 1)
            shape = tuple(t.shape) if sizes is None else tuple(sizes.symint(d) for d in t.shape)
            return torch.empty(shape, dtype=XCOMP_TO_TORCH[t.dtype], device="meta")
        raise NotImplementedError(f"an IR {t} where torch wants a tensor or number")
    if isinstance(x, list):
        return [_meta(e, scalar_kind, sizes) for e in x]
    if isinstance(x, tuple):
        return tuple(_meta(e, scalar_kind, sizes) for e in x)
    if isinstance(x, str) and sizes is not None and "str" not in (scalar_kind or "str"):  # a size
        return sizes.symint(x)
    return x


def _meta_types(key: str, schema, args, kwargs, node, sizes=None) -> list:
    """Torch's result types: the functional overload run on meta tensors of the operands' types
    (on fake tensors with SymInt sizes when `sizes`, a `symbolic.SizeEnv`, is given)."""
    ns, op, overload = key.split(".")
    kinds = {a.name: str(a.type).rstrip("?") for a in schema.arguments}
    pos = [a for a in schema.arguments if not a.kwarg_only]
    margs = [_meta(v, kinds[a.name], sizes) for a, v in zip(pos, args)]
    mkw = {k: _meta(v, kinds[k], sizes) for k, v in kwargs.items()}
    try:
        fn = getattr(getattr(getattr(torch.ops, ns), op), overload)
        out = fn(*margs, **mkw)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise NotImplementedError(f"torch cannot infer its result types ({type(e).__name__}: {first})") from None
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [meta_type(o) if isinstance(o, torch.Tensor) else None for o in outs]


def _results(cx: ScriptContext, node, out, sizes=None) -> list:
    """Converter results as the node's outputs, cast to torch's dtypes (promotion lives in torch).
    With symbolic sizes (`sizes`), a dim torch's meta kernel specialised to its example value
    (pooling and pad decompositions guard on sizes) is checked at the example sizes: xcomp's type
    inference, the one place shapes are computed, keeps it symbolic."""
    n = node.outputsSize()
    if n == 1 and node.outputsAt(0).type().kind() in ("ListType", "TupleType"):
        outs = [list(out) if node.outputsAt(0).type().kind() == "ListType" else tuple(out)]
        return outs
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    fixed = []
    for o, want in zip(outs[:n], cx.types):
        if isinstance(o, Value) and isinstance(want, TensorType):
            if o.type.dtype != want.dtype:
                o = cx.cast(o, want.dtype)
            if not same_sizes(tuple(o.type.shape), tuple(want.shape)) and not (
                    sizes is not None and sizes.agree(o.type.shape, want.shape)):
                raise ValueError(f"converter built shape {o.type.shape}, torch says {want.shape}")
        fixed.append(o)
    return fixed + [None] * (n - len(fixed))


from xcomp.frontends.torchscript import control  # noqa: E402,F401  (registers prim::If and prim::Loop)
