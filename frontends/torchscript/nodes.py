"""TorchScript's Python-level nodes: constants, lists, tuples, scalar arithmetic, queries, raises.

`NODES` maps a node kind (`prim::TupleConstruct`) or a kind with its overload (`aten::add.int`) to
a handler `fn(cv, node, *inputs) -> list of outputs` (see `values.py` for what inputs and outputs
are). `SCALAR_OPS` maps TorchScript's int/float/bool arithmetic to the IR op it becomes when an
operand is known only at run time; with every operand known at capture time it folds in Python.
Nodes in neither table go through the shared aten table (`xcomp.frontends.aten.ATEN`), or fold at
capture time when every input is known and no output is a tensor (`convert.fold_static`).

`python -m xcomp.frontends.torchscript.nodes --markdown` prints the supported node kinds
(`docs/torchscript.md` is generated from it).
"""
from __future__ import annotations

import math
import operator

from xcomp.ir.core import Value
from xcomp.ir.types import DType, TensorType
from xcomp.ir import symbolic as sym
from xcomp.frontends.torchscript.symbolic import has_size, is_size, size_arith, size_expr, size_of
from xcomp.frontends.torchscript.values import JIT_SCALARS, UNINITIALIZED

NODES: dict[str, object] = {}
TORCH_DTYPE_CODES = ("uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
                     "complex32", "complex64", "complex128", "bool", "qint8", "quint8", "qint32", "bfloat16")


def node(*kinds: str, doc: str = ""):
    def register(fn):
        for k in kinds:
            if k in NODES:
                raise ValueError(f"{k} registered twice")
            NODES[k] = fn
        fn.node_doc = doc or " ".join((fn.__doc__ or "").split())
        return fn
    return register


def out_scalar_dtype(node, i: int = 0) -> DType | None:
    return JIT_SCALARS.get(node.outputsAt(i).type().kind())


# -- constants, tuples, lists ----------------------------------------------------------------------
@node("prim::Constant")
def constant(cv, node):
    """Constants: tensors become weights or inline constants, the rest Python values."""
    out = node.output()
    if out.type().kind() == "TensorType":
        value = out.toIValue()
        if not hasattr(value, "detach"):  # traced graphs keep 0-d tensor constants as numbers
            import torch
            value = torch.tensor(value, dtype=out.type().dtype())
        return [cv.tensor_constant(value, out.debugName())]
    value = out.toIValue()
    if isinstance(value, list) and value and hasattr(value[0], "detach"):
        return [[cv.tensor_constant(t, f"{out.debugName()}.{i}") for i, t in enumerate(value)]]
    return [value]


@node("prim::GetAttr")
def get_attr(cv, node, obj):
    """An attribute freezing left in place: parameters become weights, the rest Python values."""
    value = getattr(obj, node.s("name"))
    if hasattr(value, "detach"):
        return [cv.tensor_constant(value, node.output().debugName().split(".")[0] + "." + node.s("name"))]
    return [value]


@node("prim::ListConstruct")
def list_construct(cv, node, *items):
    """A Python list of the items (an IR list only if a loop or branch changes it)."""
    return [list(items)]


@node("prim::TupleConstruct")
def tuple_construct(cv, node, *items):
    """A Python tuple of the items."""
    return [tuple(items)]


@node("prim::ListUnpack", "prim::TupleUnpack")
def unpack(cv, node, seq):
    """The items of a list or tuple known at capture time."""
    if isinstance(seq, Value):
        raise NotImplementedError("unpacking a list whose length is known only at run time")
    return list(seq)


@node("prim::TupleIndex")
def tuple_index(cv, node, seq, index):
    """An item of a tuple."""
    return [seq[index]]


@node("aten::__getitem__.t", "aten::select.t")
def list_getitem(cv, node, seq, index):
    """An item of a list: folded, or `xc.list_get` for a list or index known at run time."""
    if isinstance(seq, Value):
        return [cv.cx.op("list_get", seq, cv.cx.tensor(index, DType.I64))]
    if isinstance(index, Value):
        return [cv.cx.op("list_get", cv.materialize(seq), index)]
    return [seq[index]]


@node("aten::len.t")
def list_len(cv, node, seq):
    """Length of a list: folded, or `xc.list_len`."""
    return [cv.cx.op("list_len", seq)] if isinstance(seq, Value) else [len(seq)]


@node("aten::append.t")
def append(cv, node, seq, item):
    """Append: in place on a Python list, `xc.list_append` (a new IR list) on an IR list."""
    if isinstance(seq, Value):
        el = seq.type.element
        item = cv.materialize(item, like_type=el)
        new = cv.cx.b.create("list_append", [seq, item], result_types=[seq.type]).result
        cv.rebind(node.inputsAt(0), new)
        return [new]
    seq.append(item)
    return [seq]


@node("aten::format")
def format_(cv, node, fmt, *args):
    """String formatting (messages of raises), folded."""
    return [fmt.format(*args) if all(not isinstance(a, Value) for a in args) else fmt]


@node("prim::RaiseException")
def raise_exception(cv, node, message, *cls):
    """A raise the program keeps: `xc.raise`, taken only on the branch that raises."""
    name = (cls[0] if cls and isinstance(cls[0], str) else "Exception").replace("builtins.", "")
    cv.cx.b.create("raise", [], {"message": f"{name}: {message}"})
    return []


@node("aten::warn")
def warn(cv, node, *args):
    """`warnings.warn` in scripted code: noted in explain(), dropped from the program."""
    cv.notes.append(f"script warning: {args[0] if args else ''}")
    return []


@node("prim::Uninitialized")
def uninitialized(cv, node):
    """The outputs of a branch that raises."""
    return [UNINITIALIZED]


@node("prim::unchecked_cast", "aten::detach", "aten::contiguous", "aten::clone", "aten::dropout",
      "aten::feature_dropout", "aten::alpha_dropout", "aten::feature_alpha_dropout")
def identity(cv, node, x, *rest):
    """Casts of Optional types, detach/contiguous/clone, dropout at inference: the value itself."""
    return [x]


# -- queries ---------------------------------------------------------------------------------------
@node("aten::size.int", "aten::size")
def size(cv, node, x, dim=None):
    """Static sizes fold to ints; symbolic ones (`dynamic=`) are size expressions (`symbolic.py`)."""
    shape = [size_of(d) for d in getattr(x, "dense", x).type.shape]
    return [shape if dim is None else shape[dim]]


@node("aten::select.int")
def select(cv, node, x, dim, index):
    """`x[..., i, ...]`: the shared converter for a known index, `xc.take` for one known only at run
    time (a loop's iteration)."""
    if not isinstance(index, Value) and not isinstance(x.type.shape[dim % x.type.rank], str):
        from xcomp.frontends.torchscript.convert import convert_aten
        return convert_aten(cv, node, "aten::select", "int", [x, dim, index])
    cx = cv.cx
    dim = dim % x.type.rank
    if not isinstance(index, Value):  # a known index on a symbolic axis: a one-element slice
        n = x.type.shape[dim]
        start = sym.add(n, index) if index < 0 else index
        one = cx.op("slice", x, axis=dim, start=start, end=sym.add(start, 1), step=1)
        return [cx.op("reshape", one, shape=tuple(d for i, d in enumerate(x.type.shape) if i != dim))]
    i = cx.cast(index, DType.I64)
    n = cx.tensor(size_of(x.type.shape[dim]), DType.I64)
    i = cx.op("where", cx.op("lt", i, cx.const(0, DType.I64)), cx.op("add", i, n), i)
    return [cx.op("take", x, i, axis=dim)]


@node("aten::len.Tensor")
def tensor_len(cv, node, x):
    """`len(tensor)`: its first size (an int, or a size expression)."""
    return [size_of(x.type.shape[0])]


@node("aten::type_as")
def type_as(cv, node, x, other):
    """`x.type_as(other)`: a cast to other's dtype."""
    return [cv.cx.cast(x, other.type.dtype)]


@node("aten::tensor", "aten::as_tensor")
def tensor_literal(cv, node, data, dtype=None, *rest):
    """`torch.tensor(data)` with data known at capture time: a constant."""
    import torch
    if not all(not isinstance(v, Value) for v in _leaves(data)):
        raise NotImplementedError("torch.tensor of values known only at run time")
    dt = getattr(torch, TORCH_DTYPE_CODES[dtype]) if isinstance(dtype, int) else dtype
    return [cv.tensor_constant(torch.tensor(data, dtype=dt), "tensor")]


def _leaves(x):
    return [leaf for e in x for leaf in _leaves(e)] if isinstance(x, (list, tuple)) else [x]


@node("aten::dim", "prim::dtype", "aten::numel", "prim::device", "prim::layout", "aten::is_floating_point")
def tensor_query(cv, node, x):
    """rank, dtype, numel, device, floating-point: known from the IR type."""
    import torch
    t = getattr(x, "dense", x).type  # a nested tensor (kept dense) answers for its dense form
    answers = {"aten::dim": lambda: t.rank, "aten::numel": lambda: size_of(sym.product(t.shape)),
               "prim::dtype": lambda: TORCH_DTYPE_CODES.index(_torch_name(t.dtype)),
               "prim::device": lambda: torch.device("cpu"), "prim::layout": lambda: 0,
               "aten::is_floating_point": lambda: t.dtype.is_float}
    return [answers[node.kind()]()]


def _torch_name(dt: DType) -> str:
    from xcomp.frontends.torch_export import XCOMP_TO_TORCH
    return str(XCOMP_TO_TORCH[dt]).replace("torch.", "")


@node("aten::is_grad_enabled", "aten::is_autocast_enabled", "aten::is_autocast_cpu_enabled",
      "prim::requires_grad", "prim::is_cuda", "prim::is_mps", "prim::is_sparse",
      "prim::is_quantized", "prim::is_meta", "prim::is_xpu", "aten::_has_compatible_shallow_copy_type",
      "aten::is_nested", "prim::is_mkldnn", "aten::requires_grad")
def inference_query(cv, node, *args):
    """Grad, autocast, nested and device queries: False at inference on the CPU (so scripted nn
    modules take their plain path)."""
    return [False]


@node("aten::__is__", "aten::__isnot__")
def is_(cv, node, a, b):
    """`is None` / `is not None`: folded (a value is None or not at capture time)."""
    same = (a is None) == (b is None) if (a is None or b is None) else a is b
    return [same if node.kind() == "aten::__is__" else not same]


# -- numbers ---------------------------------------------------------------------------------------
def _to_scalar(cv, x, dt: DType):
    """A tensor or number as the scalar TorchScript wants (`int(t)`, `float(t)`, `bool(t)`)."""
    if isinstance(x, Value) and cv.known(x) is not None:
        x = cv.known(x)
    if isinstance(x, Value):
        if isinstance(x.type, TensorType) and x.type.rank:
            x = cv.cx.op("reshape", x, shape=())
        return cv.cx.cast(x, dt)
    py = {DType.I64: int, DType.F64: float, DType.BOOL: bool}[dt]
    return py(x.item() if hasattr(x, "item") else x)


@node("aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "prim::ImplicitTensorToNum", "aten::item",
      "aten::IntImplicit", "aten::FloatImplicit", "aten::BoolImplicit")
def to_number(cv, node, x):
    """Tensor or number to int/float/bool (a 0-d tensor at run time)."""
    dt = out_scalar_dtype(node)
    if cv.sizes is not None and dt is DType.I64:  # a size carried as a tensor (traced graphs)
        s = x if is_size(x) else size_expr(x)
        if s is not None:
            return [s]
    if is_size(x):
        return [cv.cx.tensor(str(x), dt or DType.I64)]
    if isinstance(x, Value) and cv.known(x) is not None:
        x = cv.known(x)
        x = x.item() if dt is None else x
    if dt is None:  # Scalar / number: keep the tensor's own dtype
        if isinstance(x, Value):
            return [cv.cx.op("reshape", x, shape=()) if x.type.rank else x]
        return [x]
    return [_to_scalar(cv, x, dt)]


@node("prim::NumToTensor", "aten::scalar_to_tensor")
def num_to_tensor(cv, node, x, *rest):
    """A number as a 0-d tensor (int64, float64 or bool, as torch makes it)."""
    if isinstance(x, Value):
        return [x]
    if is_size(x):  # a size as a 0-d tensor (traced graphs: size -> NumToTensor -> arithmetic -> Int)
        return [cv.cx.tensor(str(x), DType.I64)]
    dt = DType.BOOL if isinstance(x, bool) else DType.I64 if isinstance(x, int) else DType.F64
    return [cv.cx.const(x, dt)]


SCALAR_OPS = {
    "add": (operator.add, "add"), "sub": (operator.sub, "sub"), "mul": (operator.mul, "mul"),
    "div": (operator.truediv, "div"), "floordiv": (operator.floordiv, "floor_div"),
    "remainder": (operator.mod, "remainder"), "pow": (operator.pow, "pow"),
    "eq": (operator.eq, "eq"), "ne": (operator.ne, "ne"), "lt": (operator.lt, "lt"),
    "le": (operator.le, "le"), "gt": (operator.gt, "gt"), "ge": (operator.ge, "ge"),
    "__and__": (operator.and_, "logical_and"), "__or__": (operator.or_, "logical_or"),
    "__xor__": (operator.xor, "logical_xor"), "min": (min, "minimum"), "max": (max, "maximum"),
}
SCALAR_UNARY = {"__not__": (operator.not_, "logical_not"), "neg": (operator.neg, "neg"),
                "floor": (math.floor, "floor"), "ceil": (math.ceil, "ceil"), "sqrt": (math.sqrt, "sqrt"),
                "exp": (math.exp, "exp"), "log": (math.log, "log")}


def scalar_op(cv, node, base: str, args: list):
    """int/float/bool arithmetic and comparisons: Python when every operand is known, else the IR
    op on 0-d tensors (operands promoted as Python does: bool < int < float)."""
    py, ir = (SCALAR_OPS.get(base) or SCALAR_UNARY[base])
    if has_size(args):  # sizes: symbolic arithmetic, a decided comparison, or xc.size values below
        out = size_arith(base, args)
        if out is not None:
            return [out]
    elif all(not isinstance(a, Value) for a in args):
        return [py(*args)]
    def rank(a):
        if isinstance(a, Value):
            return 2 if a.type.dtype.is_float else 1 if a.type.dtype.is_int else 0
        return 2 if isinstance(a, float) else 0 if isinstance(a, bool) else 1
    top = max(rank(a) for a in args)
    if ir.startswith("logical"):
        top = 0
    dt = (DType.BOOL, DType.I64, DType.F64)[top]
    if base == "div":
        dt = DType.F64
    out = cv.cx.op(ir, *[cv.cx.tensor(a, dt) for a in args])
    want = out_scalar_dtype(node)
    return [cv.cx.cast(out, want) if want is not None else out]


def is_scalar_node(node) -> bool:
    """A TorchScript number op (all outputs int/float/bool, none a tensor) that `scalar_op` handles."""
    kind = node.kind()
    base = kind.split("::", 1)[1]
    return (kind.startswith(("aten::", "prim::")) and (base in SCALAR_OPS or base in SCALAR_UNARY)
            and node.outputsSize() == 1 and out_scalar_dtype(node) is not None
            and all(i.type().kind() != "TensorType" for i in node.inputs()))


def markdown() -> str:
    """The table of supported TorchScript node kinds (docs/torchscript.md)."""
    from xcomp.frontends.torchscript import convert  # noqa: F401  (registers prim::If, prim::Loop)
    rows = ["| node kinds | what they become |", "|---|---|"]
    by_handler: dict = {}
    for kind in sorted(NODES):
        by_handler.setdefault(NODES[kind], []).append(kind)
    for fn, kinds in sorted(by_handler.items(), key=lambda kv: kv[1][0]):
        rows.append(f"| {', '.join(f'`{k}`' for k in kinds)} | {fn.node_doc} |")
    for base in sorted(SCALAR_OPS) + sorted(SCALAR_UNARY):
        ir = (SCALAR_OPS.get(base) or SCALAR_UNARY[base])[1]
        rows.append(f"| `aten::{base}` (int/float/bool overloads) | folded, or `xc.{ir}` on 0-d tensors at run time |")
    head = ("# TorchScript node kinds\n\nGenerated by `python -m xcomp.frontends.torchscript.nodes --markdown`; "
            "`tests/torchscript/test_docs.py` fails when this file is stale.\n\n"
            "A `.pt` file is code: loading one runs TorchScript's unpickler and any code it names. xcomp "
            "loads it only through `torch.jit.load(map_location=\"cpu\")`, never Python's `pickle`, but "
            "trust a `.pt` file as you would trust code.\n\n"
            "## Python-level and control-flow nodes\n\n")
    tail = ("\n\n## aten nodes\n\nEvery other `aten::` node goes through the aten table shared with "
            "torch.export (`xcomp.frontends.aten.ATEN`; `python -m xcomp.frontends.torchscript.nodes --aten` "
            "lists it), with the overload read from the node's schema and in-place `foo_` converted as `foo`. "
            "TorchScript keeps some ops torch.export decomposes; these have compositions of their own: "
            "`aten::lstm`, `aten::gru` (unrolled over the static sequence length), "
            "`aten::_transformer_encoder_layer_fwd` and `aten::_native_multi_head_attention` (the encoder "
            "fast path). A node whose inputs are all known at capture time and whose outputs are not "
            "tensors folds by running it (`torch.ops`) at capture time.\n")
    return head + "\n".join(rows) + tail


def aten_names() -> list[str]:
    """The aten ops (with overloads) TorchScript nodes can map to."""
    from xcomp.frontends.aten import ATEN
    return sorted(k.replace("aten.", "aten::", 1) for k in ATEN if k.startswith("aten."))


if __name__ == "__main__":
    import sys
    from xcomp.frontends.torchscript import nodes as _registered  # the module the converters register in
    if "--markdown" in sys.argv:
        print(_registered.markdown(), end="")
    elif "--aten" in sys.argv:
        print("\n".join(_registered.aten_names()))
    else:
        print("\n".join(sorted(_registered.NODES)))
