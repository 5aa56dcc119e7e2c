"""A fused region as a small dataflow graph of kernel nodes, composites expanded.

Nodes are inputs (block arguments), literals, elementwise ops (spelled through the expression
table), and row reductions (sum / max / min over the row). Row composites (softmax, log_softmax,
logsumexp, mean, var, layer_norm, rms_norm) expand here, by table, into those nodes, so one row
kernel skeleton serves all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xcomp.backends.kernels.sizes import dim_prod
from xcomp.errors import LoweringError
from xcomp.ir import symbolic as sym
from xcomp.ir.core import Block, Value
from xcomp.ir.types import DType, TensorType
from xcomp.ops.registry import Trait


@dataclass(eq=False)
class Node:
    """One kernel value. `kind`: input, literal, ew, reduce. `row` is True when it varies along the row."""

    kind: str
    dtype: DType
    op: str = ""                     # ew: op name (xc.add, ...); reduce: sum | max | min
    args: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    value: Any = None                # literal value, or input index
    shape: tuple = ()                # IR shape (inputs, yields)
    row: bool = True


IDENTITY = {"sum": 0.0, "max": -math.inf, "min": math.inf}


class Graph:
    """Nodes in topological order plus the yielded outputs."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []
        self.row_len: int = 1        # elements per row (reductions); 1 for elementwise groups

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def ew(self, op: str, *args: Node, dtype: DType | None = None, **attrs) -> Node:
        dt = dtype or args[0].dtype
        return self.add(Node("ew", dt, op, list(args), attrs, row=any(a.row for a in args)))

    def lit(self, value, dtype: DType) -> Node:
        return self.add(Node("literal", dtype, value=value, row=False))

    def reduce(self, op: str, x: Node) -> Node:
        if not x.dtype.is_float:
            raise LoweringError(f"row kernels reduce floating-point values only, got {x.dtype.value}")
        return self.add(Node("reduce", x.dtype, op, [x], row=False))

    @property
    def reductions(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "reduce"]


# -- composites -------------------------------------------------------------------------------
def _inverse(g: Graph, n, dt: DType) -> Node:
    """1 / n: a literal, or for a symbolic row length (an IR size text) 1 / a run-time size node
    (the GPU kernels read it from their sizes, see sizes.py)."""
    if isinstance(n, (str, tuple)):
        return g.ew("xc.reciprocal", g.add(Node("size", dt, value=n, row=False)))
    return g.lit(1.0 / n if n else math.inf, dt)   # an empty row: sum 0 times inf gives torch's NaN


def _mean(g: Graph, x: Node) -> Node:
    return g.ew("xc.mul", g.reduce("sum", x), _inverse(g, g.row_len, x.dtype))


def _softmax(g, x, a):
    e = g.ew("xc.exp", g.ew("xc.sub", x, g.reduce("max", x)))
    return g.ew("xc.mul", e, g.ew("xc.reciprocal", g.reduce("sum", e)))


def _log_softmax(g, x, a):
    s = g.ew("xc.sub", x, g.reduce("max", x))
    return g.ew("xc.sub", s, g.ew("xc.log", g.reduce("sum", g.ew("xc.exp", s))))


def _logsumexp(g, x, a):
    m = g.reduce("max", x)
    safe = g.ew("xc.where", g.ew("xc.isfinite", m, dtype=DType.BOOL), m, g.lit(0.0, x.dtype))
    s = g.reduce("sum", g.ew("xc.exp", g.ew("xc.sub", x, safe)))
    return g.ew("xc.add", g.ew("xc.log", s), safe)


def _var(g, x, a):
    d = g.ew("xc.sub", x, _mean(g, x))
    if isinstance(g.row_len, str):   # 1 / max(L - correction, 0) at run time (1 / 0 is inf)
        inv = _inverse(g, ("max", sym.sub(g.row_len, int(a["correction"])), 0), x.dtype)
        return g.ew("xc.mul", g.reduce("sum", g.ew("xc.mul", d, d)), inv)
    n = max(g.row_len - a["correction"], 0)
    return g.ew("xc.mul", g.reduce("sum", g.ew("xc.mul", d, d)), g.lit(1.0 / n if n else math.inf, x.dtype))


def _affine(g, y, params):
    if len(params) > 0:
        y = g.ew("xc.mul", y, params[0])
    if len(params) > 1:
        y = g.ew("xc.add", y, params[1])
    return y


def _layer_norm(g, x, a, *params):
    d = g.ew("xc.sub", x, _mean(g, x))
    var = _mean(g, g.ew("xc.mul", d, d))
    inv = g.ew("xc.rsqrt", g.ew("xc.add", var, g.lit(a["eps"], x.dtype)))
    return _affine(g, g.ew("xc.mul", d, inv), params)


def _rms_norm(g, x, a, *params):
    inv = g.ew("xc.rsqrt", g.ew("xc.add", _mean(g, g.ew("xc.mul", x, x)), g.lit(a["eps"], x.dtype)))
    return _affine(g, g.ew("xc.mul", x, inv), params)


def _reduction(op):
    return lambda g, x, a: g.reduce(op, x)


# op name -> (expansion(graph, *operand nodes ... ) -> node, how many trailing axes it reduces)
ROW_OPS: dict[str, Callable] = {
    "xc.sum": _reduction("sum"), "xc.amax": _reduction("max"), "xc.amin": _reduction("min"),
    "xc.mean": lambda g, x, a: _mean(g, x), "xc.var": _var, "xc.logsumexp": _logsumexp,
    "xc.softmax": _softmax, "xc.log_softmax": _log_softmax,
    "xc.layer_norm": _layer_norm, "xc.rms_norm": _rms_norm,
}


def reduced_trailing(op) -> int:
    """How many trailing axes a row op reduces; LoweringError unless they are the trailing ones."""
    x = op.operands[0].type
    if "normalized_ndim" in op.attrs:
        return op.attrs["normalized_ndim"]
    if "axis" in op.attrs:
        if op.attrs["axis"] % max(x.rank, 1) != x.rank - 1:
            raise LoweringError(f"{op.name} over axis {op.attrs['axis']}: row kernels reduce the last axis")
        return 1
    axes = sorted(a % max(x.rank, 1) for a in op.attrs.get("axes", ())) or list(range(x.rank))
    if axes != list(range(x.rank - len(axes), x.rank)):
        raise LoweringError(f"{op.name} over axes {tuple(axes)}: row kernels reduce trailing axes")
    return len(axes)


def _literal(op) -> tuple:
    v = op.attrs["value"]
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise LoweringError("dense constants larger than one element are passed as inputs")
        v = v.reshape(()).item()
    return v, op.attrs["dtype"]


def varies_along_row(shape: tuple, full: tuple, k: int) -> bool:
    """Whether an operand of `shape`, broadcast numpy-style to `full`, changes along its last `k` axes.

    Shapes that do not broadcast to `full` are taken as per-row values (`full` less its last `k`).
    """
    if len(shape) > len(full):
        return True
    aligned = (1,) * (len(full) - len(shape)) + tuple(shape)
    if any(a not in (1, f) for a, f in zip(aligned, full)):
        return False
    return any(d != 1 for d in aligned[len(full) - k:])


def build_graph(block: Block, operand_types: list, full: tuple | None = None, k: int = 0) -> Graph:
    """The graph of a fused body. Row kernels give their full shape `full` and reduced count `k`."""
    g = Graph()
    env: dict[Value, Node] = {}
    for i, (arg, t) in enumerate(zip(block.args, operand_types)):
        if not isinstance(t, TensorType):
            raise LoweringError(f"kernel inputs must be tensors, got {t}")
        row = True if full is None else varies_along_row(tuple(t.shape), full, k)
        env[arg] = g.add(Node("input", t.dtype, value=i, shape=tuple(t.shape), row=row))
        g.inputs.append(env[arg])
    for op in block.ops:
        if op.opdef.is_terminator:
            g.outputs = [env[v] for v in op.operands]
            break
        args = [env[v] for v in op.operands]
        if op.name in ("xc.constant", "xc.dense"):
            value, dt = _literal(op)
            env[op.results[0]] = g.lit(value, dt)
            continue
        if op.name in ROW_OPS:
            if full is None:
                raise LoweringError(f"{op.name} needs a row kernel")
            if reduced_trailing(op) != k:
                raise LoweringError(f"{op.name} reduces other axes than the group's other reductions")
            g.row_len = dim_prod(full[len(full) - k:])   # an int, a symbolic size, or a cpp run-time size
            node = ROW_OPS[op.name](g, *args, op.attrs) if op.name not in ("xc.layer_norm", "xc.rms_norm") \
                else ROW_OPS[op.name](g, args[0], op.attrs, *args[1:])
            node.dtype = op.results[0].type.dtype
        elif op.opdef.has(Trait.ELEMENTWISE) and len(op.results) == 1:
            # attrs as a dict: an op's own `dtype` attribute (xc.cast) is not the node's dtype
            node = g.add(Node("ew", op.results[0].type.dtype, op.name, list(args), dict(op.attrs),
                              row=any(a.row for a in args)))
        else:
            raise LoweringError(f"{op.name} cannot go into a generated kernel")
        node.shape = tuple(op.results[0].type.shape)
        env[op.results[0]] = node
    mark_nonpositive(g)
    mark_nan_reaching_outputs(g)
    return g


def mark_nonpositive(g: Graph) -> None:
    """Mark exp nodes whose argument is `x - max(x)` over the same row (softmax, log_softmax, or the
    same written out): that argument is <= 0 or NaN, so a dialect may spell the exp without the
    overflow handling (`nonpositive` attribute; the cpp dialect's xc_vexp_nonpos)."""
    for n in g.nodes:
        if n.kind == "ew" and n.op == "xc.exp" and n.dtype.is_float:
            s = n.args[0]
            if (s.kind == "ew" and s.op == "xc.sub" and s.args[1].kind == "reduce" and s.args[1].op == "max"
                    and s.args[1].args[0] is s.args[0]):
                n.attrs["nonpositive"] = True


def mark_nan_reaching_outputs(g: Graph) -> None:
    """Mark row maxima whose NaN every output gets anyway (`nan_reaches_outputs`): softmax's max m,
    used only in `x - m` (x the row it reduces) fed only to exps that a row sum adds up, with every
    output depending on such a sum. A NaN of the row then makes that sum NaN, so a dialect may take
    the max without tracking NaN (torch's max is NaN there; the outputs are NaN either way)."""
    users: dict[int, list[Node]] = {}
    for n in g.nodes:
        for a in n.args:
            users.setdefault(id(a), []).append(n)
    outs = [id(o) for o in g.outputs]
    for m in g.reductions:
        if m.op != "max":
            continue
        subs = users.get(id(m), [])
        exps = [e for s in subs for e in users.get(id(s), [])]
        sums = [r for e in exps for r in users.get(id(e), []) if r.kind == "reduce" and r.op == "sum"]
        if (subs and all(s.op == "xc.sub" and s.args == [m.args[0], m] for s in subs)
                and exps and all(e.op == "xc.exp" for e in exps) and sums
                and all(_depends(o, {id(s) for s in sums}) for o in g.outputs) and outs):
            m.attrs["nan_reaches_outputs"] = True


def _depends(n: Node, on: set[int]) -> bool:
    """Whether node `n` is one of `on` (ids) or computed from one."""
    seen: set[int] = set()
    stack = [n]
    while stack:
        x = stack.pop()
        if id(x) in on:
            return True
        if id(x) not in seen:
            seen.add(id(x))
            stack.extend(x.args)
    return False
