"""Kernel specs from fused groups: plain data for the templates, then rendered source.

`plan(op, dialect)` turns one `xc.fused` op into a `KernelPlan`: an optional MLX prelude (the
matmul or convolution of an epilogue group) and a `KernelSpec`, whose `source` and `header` are the
generated kernel body and helpers. Three skeletons (templates/<dialect>/*.j2):

- `elementwise`: every input has the output's shape or is a scalar; each thread handles `vec`
  consecutive elements (16-byte vector loads and stores on CUDA when aligned);
- `broadcast`: some input broadcasts; its index is computed from the output index with the
  shape/stride arithmetic baked in as constants;
- `row`: one threadgroup per row of length L; inputs that vary along the row are loaded once into
  registers (rows up to `MAX_CACHED` elements per thread), every reduction is a pass over them
  with a simdgroup/warp reduction and one through threadgroup memory, then the epilogue stores;
- `row_split` (split.py, a tuning variant for long rows): several threadgroups per row in two
  launches, partials then combine and epilogue.

Kernel and variable names are generated (`in0`, `v3`, `xc_row_<hash>`): nothing from the model's
names reaches the source.

Groups with symbolic dims are generated once for every size (sizes.py): their sizes come from a small
`sizes` input read at the top of the body, the grid is computed per call (`KernelSpec.bind`), and
what a static kernel decides from a size is decided per size class (`size_class`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from xcomp.backends.kernels.exprs import DIALECTS, Dialect, flit
from xcomp.backends.kernels.graph import IDENTITY, ROW_OPS, Graph, Node, build_graph, reduced_trailing
from xcomp.backends.kernels.indexing import broadcast_strides, collapse, index_expr
from xcomp.backends.kernels.sizes import (SIZES_INPUT, SizeVars, dim_mul, dim_prod, host, host_value,
                                          is_static, spell)
from xcomp.errors import LoweringError
from xcomp.ir import symbolic as sym
from xcomp.ir.core import Operation
from xcomp.ir.types import DType, TensorType
from xcomp.ops.structural import FusionKind

MAX_CACHED = 64          # row elements a thread keeps in registers per input
ROW_ELEMS_PER_THREAD = 32
ELEMENTWISE_THREADS = 256
ELEMENTWISE_UNROLL = 4   # vectors per thread (CUDA), all loads issued before the first use
UNROLL_MIN_ELEMS = 1 << 20   # below this, one vector per thread (more threads for small tensors)
ROW_UNROLL = 4           # chunks in flight per pass when a row is not kept in registers


@dataclass
class KernelSpec:
    """One generated kernel: its source, how to launch it, and its outputs (plain data)."""

    name: str
    kind: str
    dialect: str
    source: str
    header: str
    input_names: list[str]
    output_names: list[str]
    output_shapes: list[tuple]
    output_dtypes: list[DType]
    grid: tuple
    threadgroup: tuple
    input_shapes: list[tuple] = field(default_factory=list)
    sizes: list = field(default_factory=list)   # host sizes of the `sizes` input (symbolic groups)
    # runtime.launch's launch parameters per size binding (bounded; not part of the spec's value)
    launches: dict = field(default_factory=dict, repr=False, compare=False)

    def bind(self, env) -> "Launch":
        """Grid, threadgroup, output shapes and `sizes` values at a binding of the size names."""
        return Launch(tuple(host_value(g, env) for g in self.grid),
                      tuple(host_value(t, env) for t in self.threadgroup),
                      [tuple(host_value(d, env) for d in s) for s in self.output_shapes],
                      [host_value(e, env) for e in self.sizes])

    def full_source(self) -> str:
        """Header plus a readable signature and the body, as one listing."""
        d = DIALECTS[self.dialect]
        return (f"// kernel {self.name} ({self.kind}); grid {_text(self.grid)}, threadgroup {_text(self.threadgroup)}\n"
                f"{self.header}\n// inputs: {', '.join(self.input_names)}; outputs: "
                f"{', '.join(f'{n}: {d.ctype(t)}{list(s)}' for n, t, s in zip(self.output_names, self.output_dtypes, self.output_shapes))}\n"
                f"{self.source}")


@dataclass
class Launch:
    """One launch of a kernel: concrete grid, threadgroup, output shapes, `sizes` values."""

    grid: tuple
    threadgroup: tuple
    output_shapes: list
    sizes: list


def _text(t: tuple) -> str:
    """A grid or threadgroup as text: the tuple itself when static, host expressions spelled."""
    if all(isinstance(v, int) for v in t):
        return str(t)

    def one(e):
        return str(e) if not isinstance(e, tuple) else f"{e[0]}({', '.join(one(a) for a in e[1:])})"
    return "(" + ", ".join(one(v) for v in t) + ")"


@dataclass
class KernelPlan:
    """What a fused op runs: an optional MLX prelude op (matmul/conv) and then the kernel."""

    spec: KernelSpec
    prelude: Operation | None = None      # the anchor op run by MLX; its result is kernel input 0
    input_map: list[int] = field(default_factory=list)   # fused operand index per kernel input (-1: prelude)
    partials: KernelSpec | None = None    # split rows: launched first; its outputs follow spec's inputs


# -- templates ----------------------------------------------------------------------------------
_ENV = None


def environment():
    """The one Jinja2 environment (StrictUndefined) over templates/."""
    global _ENV
    if _ENV is None:
        import jinja2
        from importlib.resources import files
        _ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(files("xcomp.templates"))),
                                  undefined=jinja2.StrictUndefined, trim_blocks=True,
                                  lstrip_blocks=True, keep_trailing_newline=True)
        _ENV.filters["sz"] = spell   # a size: `300L` when static, its variable when not
    return _ENV


def render(dialect: str, template: str, **data) -> str:
    return environment().get_template(f"{dialect}/{template}.j2").render(**data)


def header(dialect: Dialect) -> str:
    """The dialect's helper header (its own helpers plus the shared templates/common/math.j2)."""
    return render(dialect.name, "header", d=dialect.helpers())


# -- statements ---------------------------------------------------------------------------------
class Emitter:
    """Spells graph nodes as C statements in one dialect."""

    def __init__(self, dialect: Dialect, graph: Graph, sv: SizeVars | None = None):
        self.d, self.g = dialect, graph
        self.sv = sv or SizeVars(dialect.size_ctype)   # the kernel's run-time sizes
        self.names: dict[Node, str] = {}
        self.ids = {n: i for i, n in enumerate(graph.nodes)}

    def cty(self, n: Node) -> str:
        return self.d.compute_type(n.dtype)

    def ref(self, n: Node) -> str:
        if n.kind == "literal":
            return self.literal(n.value, n.dtype)
        if n.kind == "input":
            return f"a{n.value}"
        if n.kind == "size":   # a run-time size as a float (the 1/L of a mean over symbolic rows)
            return f"((float){self.sv(n.value)})"
        return self.names.get(n, f"v{self.ids[n]}")

    def literal(self, v, dt: DType) -> str:
        if hasattr(v, "c_expr"):    # a value the cpp target computes from run-time sizes (1 / row length)
            return v.c_expr
        if dt.is_float:
            return flit(float(v))
        if dt.is_bool:
            return "true" if v else "false"
        v = int(v)
        return f"(({self.d.ctype(dt)}){v}{self.d.long_suffix if abs(v) >= 2 ** 31 else ''})"

    def stmt(self, n: Node) -> str:
        args = [self.ref(a) for a in n.args]
        in_dt = n.args[0].dtype if n.args else n.dtype
        e = self.d.expr(n.op, args, n.attrs, in_dt, n.dtype)
        return f"const {self.cty(n)} v{self.ids[n]} = {e};"

    def stmts(self, nodes) -> list[str]:
        return [self.stmt(n) for n in nodes if n.kind == "ew"]


def _needed(roots: list[Node], row_only: bool) -> list[Node]:
    """Nodes the roots depend on (in graph order), stopping at non-row nodes when `row_only`."""
    seen: set = set()
    order: list[Node] = []

    def visit(n: Node):
        if n in seen:
            return
        seen.add(n)
        if row_only and not n.row:
            return
        for a in n.args:
            visit(a)
        order.append(n)
    for r in roots:
        visit(r)
    return order


def _kernel_name(kind: str, source: str) -> str:
    return f"xc_{kind}_{hashlib.sha1(source.encode()).hexdigest()[:12]}"


def _vec(dtypes: list[DType]) -> int:
    return max(1, 16 // max(dt.itemsize for dt in dtypes))


# -- elementwise and broadcast ------------------------------------------------------------------
def elementwise_spec(graph: Graph, out_shape: tuple, dialect: Dialect, in_shapes: list[tuple],
                     unroll: int | None = None, threads: int = ELEMENTWISE_THREADS,
                     streaming: bool = True, size_class: dict | None = None) -> KernelSpec:
    """An elementwise kernel over `out_shape` (inputs contiguous, scalar, or broadcast).

    `unroll`: vectors per thread (CUDA; default ELEMENTWISE_UNROLL for large tensors, else 1);
    `threads` per threadgroup; `streaming`: evict-first loads and stores of contiguous data (CUDA).
    Symbolic shapes: the count and index sizes are run-time sizes, the tail is always checked,
    and `size_class["large"]` stands for "n >= UNROLL_MIN_ELEMS" in the default unroll.
    """
    em = Emitter(dialect, graph)
    sv = em.sv
    n = dim_prod(out_shape)
    inputs = []
    for node, shape in zip(graph.inputs, in_shapes):
        size = dim_prod(shape)
        mode = "contig" if tuple(shape) == tuple(out_shape) else "scalar" if size == 1 else "index"
        index = index_expr(list(out_shape), broadcast_strides(tuple(shape), tuple(out_shape)), "e", sv) \
            if mode == "index" else ""
        inputs.append({"name": f"in{node.value}", "ctype": dialect.ctype(node.dtype),
                       "cty": em.cty(node), "mode": mode, "index": index, "var": em.ref(node)})
    outputs = [{"name": f"out{i}", "ctype": dialect.ctype(o.dtype), "cty": em.cty(o), "var": em.ref(o)}
               for i, o in enumerate(graph.outputs)]
    vec = _vec([t for t in [nd.dtype for nd in graph.inputs] + [o.dtype for o in graph.outputs]])
    kind = "broadcast" if any(i["mode"] == "index" for i in inputs) else "elementwise"
    if not dialect.vector_unroll:   # Metal: one vector per thread; a pipeline may allow < 1024 threads
        unroll, threads = 1, ELEMENTWISE_THREADS
    elif unroll is None:
        large = n >= UNROLL_MIN_ELEMS if is_static(n) else bool((size_class or {}).get("large"))
        unroll = ELEMENTWISE_UNROLL if large else 1
    per_group = vec * threads * unroll
    stmts = em.stmts(graph.nodes)
    data = dict(n=sv(n), vec=vec, inputs=inputs, outputs=outputs, stmts=stmts, kind=kind,
                threads=threads, unroll=unroll, exact=sym.mod(n, per_group) == 0, hint="_cs" if streaming else "",
                decls=sv.decls())
    body = render(dialect.name, "elementwise", **data)
    groups = host("max", 1, host("cdiv", n, per_group))
    return KernelSpec(_kernel_name(kind, body), kind, dialect.name, body, header(dialect),
                      _names(inputs, sv), [o["name"] for o in outputs],
                      [tuple(out_shape)] * len(outputs), [o.dtype for o in graph.outputs],
                      (host("mul", groups, threads), 1, 1), (threads, 1, 1), list(in_shapes), list(sv.exprs))


def _names(inputs: list[dict], sv: SizeVars) -> list[str]:
    """Kernel input names: the group's inputs, then `sizes` when the kernel reads run-time sizes."""
    return [i["name"] for i in inputs] + ([SIZES_INPUT] if sv.exprs else [])


# -- rows ---------------------------------------------------------------------------------------
def default_row_threads(L: int) -> int:
    """Threads per row: enough for ROW_ELEMS_PER_THREAD elements each, 32 to 1024."""
    threads = 32
    while threads < 1024 and threads * ROW_ELEMS_PER_THREAD < L:
        threads *= 2
    return threads


def row_inputs(graph: Graph, full: tuple, k: int, em: Emitter, in_shapes: list[tuple]):
    """Rows R, row length L and the template data of each input of a row kernel over the last `k`
    axes of `full` (mode: perrow, vec for a contiguous row, general; base and column offsets)."""
    dialect = em.d
    L = dim_prod(full[len(full) - k:])      # ints, symbolic sizes, or the cpp target's run-time sizes
    R = dim_prod(full[:len(full) - k])
    lead, trail = list(full[:len(full) - k]), list(full[len(full) - k:])
    inputs = []
    for node, shape in zip(graph.inputs, in_shapes):
        aligned_ok = len(shape) <= len(full) and all(
            a in (1, f) for a, f in zip((1,) * (len(full) - len(shape)) + tuple(shape), full))
        if aligned_ok:
            st = broadcast_strides(tuple(shape), tuple(full))
        else:   # a per-row value shaped like `full` without its reduced axes
            st = broadcast_strides(tuple(shape), tuple(lead)) + [0] * k
        row_st, col_st = st[:len(lead)], st[len(lead):]
        col_dims = collapse(trail, col_st)
        base = index_expr(lead, row_st, "row", em.sv)
        if not node.row:
            mode = "perrow"
        elif col_dims == [(L, 1)]:
            mode = "vec"
        else:
            mode = "general"
        inputs.append({"name": f"in{node.value}", "ctype": dialect.ctype(node.dtype), "cty": em.cty(node),
                       "mode": mode, "base": base, "col": index_expr(trail, col_st, "col", em.sv),
                       "var": em.ref(node), "node": node})
    return R, L, inputs


def row_spec(graph: Graph, full: tuple, k: int, dialect: Dialect, in_shapes: list[tuple],
             out_shapes: list[tuple], threads: int | None = None, cache: bool = True,
             unroll: int = ROW_UNROLL, size_class: dict | None = None) -> KernelSpec:
    """A row kernel: one threadgroup per row of the last `k` axes of `full`.

    `threads` per row (default `default_row_threads`); `cache`: keep rows in registers when they
    fit (MAX_CACHED per thread); `unroll`: chunks in flight per pass otherwise.
    A symbolic row count only changes the grid (and the row offsets of broadcast inputs). A symbolic
    row length L makes L, the threads per row and the chunks per thread run-time sizes (threads
    chosen on the host per call), rows re-read per pass and every column checked against L; the
    vector width is the full one when `size_class["vec"]` (L divides by it), else 1.
    """
    em = Emitter(dialect, graph)
    sv = em.sv
    R, L, inputs = row_inputs(graph, full, k, em, in_shapes)
    vec = _vec([n.dtype for n in graph.inputs] + [o.dtype for o in graph.outputs])
    if is_static(L):
        while vec > 1 and L % vec:
            vec //= 2
        threads = threads or default_row_threads(L)
        chunks = -(-L // (threads * vec))
        cached = cache and chunks * vec <= MAX_CACHED
        unroll = max(1, min(unroll, chunks))
        guard = L % (threads * vec) != 0
        tg, nsg = threads, threads // 32
    else:
        if not (size_class or {}).get("vec", True):
            vec = 1
        tg = threads or host("row_threads", L)
        chunks, cached, guard = sv(host("cdiv", L, host("mul", tg, vec))), False, True
        threads, nsg = sv(tg), sv(host("cdiv", tg, 32))

    def uses(nodes):
        ids = {id(n) for n in nodes}
        return [dict(i, node=None) for i in inputs if id(i["node"]) in ids]

    row_outs = [(i, o) for i, o in enumerate(graph.outputs) if o.row]
    final_nodes = _needed([o for _, o in row_outs], row_only=True)
    # keep in registers only what more than one pass reads; single-pass inputs load in their pass
    passes = [set(map(id, _needed(n.args, row_only=True))) for n in graph.reductions] + [set(map(id, final_nodes))]
    for i in inputs:
        i["cache"] = cached and sum(id(i["node"]) in p for p in passes) > 1
    phases = []
    for node in graph.nodes:
        if node.kind == "reduce":
            body = _needed(node.args, row_only=True)
            phases.append({"kind": "reduce", "op": node.op, "acc": f"acc{em.ids[node]}",
                           "ident": flit(IDENTITY[node.op]), "stmts": em.stmts(body),
                           "value": em.ref(node.args[0]), "var": em.ref(node),
                           "inputs": uses(body)})
        elif node.kind == "ew" and not node.row:
            phases.append({"kind": "scalar", "stmts": [em.stmt(node)]})
    row_outs = [(i, o) for i, o in enumerate(graph.outputs) if o.row]
    red_outs = [(i, o) for i, o in enumerate(graph.outputs) if not o.row]
    for i, o in row_outs:
        if dim_prod(out_shapes[i]) != dim_mul(R, L):
            raise LoweringError(f"row kernel output {i} of shape {out_shapes[i]} is not a full row")
    for i, o in red_outs:
        if dim_prod(out_shapes[i]) != R:
            raise LoweringError(f"row kernel output {i} of shape {out_shapes[i]} is not one value per row")
    data = dict(
        R=R if is_static(R) else "(run-time)", L=sv(L), threads=threads, vec=vec, chunks=chunks,
        cached=cached, guard=guard, unroll=unroll,
        nsg=nsg, inputs=[dict(i, node=None) for i in inputs], phases=phases,
        final={"stmts": em.stmts(final_nodes), "inputs": uses(final_nodes)},
        row_outputs=[{"name": f"out{i}", "ctype": dialect.ctype(o.dtype), "cty": em.cty(o),
                      "var": em.ref(o), "slot": j} for j, (i, o) in enumerate(row_outs)],
        red_outputs=[{"name": f"out{i}", "ctype": dialect.ctype(o.dtype), "var": em.ref(o)}
                     for i, o in red_outs])
    data["decls"] = sv.decls()   # last: every size the body spells is known by now
    body = render(dialect.name, "row", **data)
    return KernelSpec(_kernel_name("row", body), "row", dialect.name, body, header(dialect),
                      _names(inputs, sv), [f"out{i}" for i in range(len(graph.outputs))],
                      [tuple(s) for s in out_shapes], [o.dtype for o in graph.outputs],
                      (host("mul", R, tg), 1, 1), (tg, 1, 1), list(in_shapes), list(sv.exprs))


# -- planning -----------------------------------------------------------------------------------
def _shapes(values) -> list[tuple]:
    """Tensor shapes (static or symbolic dims)."""
    out = []
    for v in values:
        if not isinstance(v.type, TensorType):
            raise LoweringError(f"kernels take tensors, got {v.type}")
        out.append(tuple(v.type.shape))
    return out


def _row_ops(block) -> list[Operation]:
    return [o for o in block.ops if o.name in ROW_OPS]


def plan(op: Operation, dialect: str | Dialect, variant: dict | None = None,
         size_class: tuple = ()) -> KernelPlan:
    """The kernel (and MLX prelude) for one `xc.fused` op; LoweringError when no skeleton fits.

    `variant`: launch/shape parameters of the skeleton (`unroll` for elementwise kernels;
    `threads`, `cache`, `unroll` for row kernels; `split` parts per row, and `threads`, for the
    two-launch split-row form of long rows, see split.py); None gives the defaults (`variants`
    lists others). `size_class` (`size_class(op, dialect, sizes)`): the class of the call's sizes
    a group with symbolic dims is generated for (one source per class, sizes read at run time).
    """
    d = DIALECTS[dialect] if isinstance(dialect, str) else dialect
    variant = dict(variant or {})
    if size_class:
        variant["size_class"] = dict(size_class)
    kind = op.attrs["kind"]
    block = op.regions[0].block
    out_shapes = _shapes(op.results)
    in_types = [v.type for v in op.operands]
    prelude = None
    input_map = list(range(len(op.operands)))
    if kind in (FusionKind.MATMUL_EPILOGUE, FusionKind.CONV_EPILOGUE):
        return _epilogue_plan(op, d, variant)
    _shapes(op.operands)
    rows = _row_ops(block)
    if rows:
        x = rows[0].operands[0].type
        full, k = tuple(x.shape), reduced_trailing(rows[0])
        g = build_graph(block, in_types, full, k)
        if "split" in variant:
            from xcomp.backends.kernels.split import split_plan
            variant.pop("size_class", None)
            if not _static_shape(full):
                raise LoweringError("split rows are generated for static sizes only")
            sp = split_plan(g, full, k, d, [tuple(t.shape) for t in in_types], out_shapes, **variant)
            return KernelPlan(sp.spec, prelude, input_map, sp.partials)
        spec = row_spec(g, full, k, d, [tuple(t.shape) for t in in_types], out_shapes, **variant)
    else:
        g = build_graph(block, in_types)
        shapes = {s for s, o in zip(out_shapes, g.outputs)}
        if len(shapes) != 1:
            raise LoweringError(f"elementwise group with outputs of several shapes {sorted(shapes)}")
        spec = elementwise_spec(g, out_shapes[0], d, [tuple(t.shape) for t in in_types], **variant)
    return KernelPlan(spec, prelude, input_map)


def variant_params(op: Operation) -> list[dict]:
    """Skeleton parameters worth timing against each other for `op` (the defaults first).

    Row kernels: the default threads per row, twice and half as many, and (for rows read by several
    passes) rows re-read per pass instead of kept in registers, which leaves room for more rows per
    multiprocessor on long rows; for long rows, split-row plans (several threadgroups per row).
    Elementwise kernels: several vectors per thread or one, plain instead of streaming memory
    access, and larger threadgroups.
    """
    rows = _row_ops(op.regions[0].block) if op.attrs["kind"] not in (
        FusionKind.MATMUL_EPILOGUE, FusionKind.CONV_EPILOGUE) else []
    if not rows:
        return [{}, {"unroll": 1}, {"unroll": 2 * ELEMENTWISE_UNROLL}, {"streaming": False},
                {"unroll": 1, "streaming": False}, {"unroll": 1, "threads": 1024}]
    x = rows[0].operands[0].type
    L = dim_prod(x.shape[x.rank - reduced_trailing(rows[0]):])
    if not is_static(L):   # threads per row chosen per call on the host; rows re-read per pass
        return [{}]
    t = default_row_threads(L)
    out = [{}]
    for threads in (2 * t, t // 2):
        if 32 <= threads <= 1024:
            out.append({"threads": threads})
    for threads in sorted({t, min(1024, 2 * t), max(32, t // 2)}):
        out.append({"threads": threads, "cache": False})
    from xcomp.backends.kernels.split import split_counts
    R = dim_prod(x.shape[:x.rank - reduced_trailing(rows[0])])
    if is_static(R):   # (split rows: static sizes only)
        out += [{"split": parts} for parts in split_counts(R, L)]
    return out


def variants(op: Operation, dialect: str | Dialect, size_class: tuple = ()) -> list[KernelPlan]:
    """Distinct kernel plans of `op` over `variant_params` (the default first; same source once),
    for the sizes of `size_class` when the group has symbolic dims."""
    out, seen = [], set()
    for v in variant_params(op):
        try:
            pl = plan(op, dialect, v, size_class)
        except LoweringError:
            if not v:
                raise
            continue
        if pl.spec.name not in seen:
            seen.add(pl.spec.name)
            out.append(pl)
    return out


def _static_shape(shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def size_class_of(op: Operation, dialect: str | Dialect):
    """A function `sizes -> size class` of a fused group (the `size_class` that `plan` takes), or
    None when the group's source does not depend on its sizes (static groups; row groups whose
    row length is static). A class is a tuple of (name, bool) pairs:

    - `large` (elementwise kernels, dialects that unroll): n >= UNROLL_MIN_ELEMS (vectors per thread);
    - `vec` (row kernels over a symbolic row length): L divides by the full vector width.
    """
    d = DIALECTS[dialect] if isinstance(dialect, str) else dialect
    if all(_static_shape(v.type.shape) for v in list(op.operands) + list(op.results)
           if isinstance(v.type, TensorType)):
        return None
    rows = _row_ops(op.regions[0].block) if op.attrs["kind"] not in (
        FusionKind.MATMUL_EPILOGUE, FusionKind.CONV_EPILOGUE) else []
    if not rows:
        if not d.vector_unroll:
            return None
        n = dim_prod(op.results[0].type.shape)
        return lambda env: (("large", host_value(n, env) >= UNROLL_MIN_ELEMS),)
    x = rows[0].operands[0].type
    L = dim_prod(x.shape[x.rank - reduced_trailing(rows[0]):])
    if is_static(L):
        return None
    vec = _vec([v.type.dtype for v in list(op.operands) + list(op.results) if isinstance(v.type, TensorType)])
    return lambda env: (("vec", host_value(L, env) % vec == 0),)


def size_class(op: Operation, dialect: str | Dialect, env) -> tuple:
    """The size class of `op` at the binding `env` of its size names (() when its source is one
    for every size)."""
    f = size_class_of(op, dialect)
    return f(env) if f is not None else ()


def epilogue_block(op: Operation):
    """Split a matmul/conv epilogue group: (anchor op, elementwise block over the anchor's result,
    the group's block arguments that block reads). The block's arguments are the anchor's result
    and then those arguments, in order; it yields what the group yields."""
    from xcomp.ir.core import Block
    from xcomp.ops import registry
    block = op.regions[0].block
    anchor = block.ops[0]
    rest = [o for o in block.ops[1:] if not o.opdef.is_terminator]
    # the kernel's inputs: the anchor's result, then the fused operands the rest reads
    yielded = block.terminator.operands
    used = [a for a in block.args if any(a in o.operands for o in rest) or a in yielded]
    sub = Block([anchor.results[0].type] + [a.type for a in used])
    mapping = {anchor.results[0]: sub.args[0], **dict(zip(used, sub.args[1:]))}
    clones = []
    for o in rest:
        c = Operation(o.opdef, [mapping.get(v, v) for v in o.operands], dict(o.attrs),
                      [r.type for r in o.results])
        for r, cr in zip(o.results, c.results):
            mapping[r] = cr
        clones.append(c)
    clones.append(Operation(registry.get("yield"), [mapping[v] for v in yielded], {}, []))
    sub.ops = clones
    for c in clones:
        c.parent = sub
    return anchor, sub, used


def _epilogue_plan(op: Operation, d: Dialect, variant: dict | None = None) -> KernelPlan:
    """Anchor (matmul/conv) through MLX, then the elementwise rest as one kernel over its result."""
    block = op.regions[0].block
    anchor, sub, used = epilogue_block(op)
    g = build_graph(sub, [a.type for a in sub.args])
    out_shapes = _shapes(op.results)
    if len(set(out_shapes)) != 1:
        raise LoweringError("matmul epilogue with outputs of several shapes")
    spec = elementwise_spec(g, out_shapes[0], d, [tuple(a.type.shape) for a in sub.args], **(variant or {}))
    input_map = [-1] + [block.args.index(a) for a in used]
    return KernelPlan(spec, anchor, input_map)
