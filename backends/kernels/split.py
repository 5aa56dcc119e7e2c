"""Split-row kernels: several threadgroups per row for long rows, in two launches.

One threadgroup per row leaves a GPU half idle when rows are few and long (512 rows of 32768 on 132
multiprocessors), and each group's long serial sweep limits the bytes in flight. The split form
cuts each row into `K` parts of `C = L / K` elements:

- launch 1 (`partials`): threadgroup (row, part) keeps its part in registers and reduces it into
  float32 partials, one (R, K) array per partial value, allocated by MLX as kernel outputs;
- launch 2 (`final`): threadgroup (row, part) combines the K partials of its row into the row's
  reductions, then applies the epilogue to its part (reading it again: read twice and write once;
  the parts run in reverse order, so the first ones read are the last launch 1 left in L2).

Reductions are combined by form (`reduction_forms`), read off the graph:

- `plain`: sum / max / min of values that depend on no other reduction: combined by the same op;
- `expsum`: sum(exp(X - S)) with S a per-row value of max/min reductions (softmax, log_softmax,
  logsumexp): each part sums exp(X - s_q) with s_q its own S (0 where not finite); combined as
  sum_q exp(s_q - S) * part_q (online-softmax rescaling; empty parts add nothing);
- `centered`: sum((X - M)^2) for any per-row M (variance, layer norm): each part keeps its mean m_q
  and sum((X - m_q)^2); combined as sum_q part_q + C (m_q - M)^2 (Chan's parallel variance).

A group with any other reduction has no split form (LoweringError).
"""
from __future__ import annotations

import numpy as np

from xcomp.backends.kernels.codegen import (KernelPlan, KernelSpec, MAX_CACHED, Emitter, _kernel_name,
                                            _needed, _vec, header, render, row_inputs)
from xcomp.backends.kernels.exprs import Dialect, flit
from xcomp.backends.kernels.graph import IDENTITY, Graph, Node
from xcomp.errors import LoweringError
from xcomp.ir.types import DType

SPLIT_MIN_LEN = 8192      # rows at least this long get split variants
SPLIT_MIN_BLOCKS = 2048   # threadgroups the smallest split aims for (several waves on 132 SMs)
SPLIT_MIN_PART = 1024     # elements per part at least
SPLIT_ELEMS_PER_THREAD = 16


def _depends_on_reduction(n: Node) -> bool:
    return any(m.kind == "reduce" for m in _needed([n], row_only=False) if m is not n) or n.kind == "reduce"


def reduction_forms(graph: Graph) -> list[tuple[Node, str, dict]]:
    """(reduction, form, parts) per reduction of `graph` in order; LoweringError if one has no split form."""
    out = []
    for r in graph.reductions:
        arg = r.args[0]
        if not _depends_on_reduction(arg):
            out.append((r, "plain", {"x": arg}))
            continue
        if r.op == "sum" and arg.kind == "ew" and arg.op == "xc.exp" and arg.args[0].op == "xc.sub":
            x, s = arg.args[0].args
            deps = [m for m in _needed([s], row_only=False) if m.kind == "reduce"]
            if x.row and not _depends_on_reduction(x) and not s.row and all(
                    m.op in ("max", "min") and not _depends_on_reduction(m.args[0]) for m in deps):
                out.append((r, "expsum", {"x": x, "s": s}))
                continue
        if r.op == "sum" and arg.kind == "ew" and arg.op == "xc.mul" and arg.args[0] is arg.args[1] \
                and arg.args[0].op == "xc.sub":
            x, m = arg.args[0].args
            if x.row and not _depends_on_reduction(x) and not m.row:
                out.append((r, "centered", {"x": x, "m": m}))
                continue
        raise LoweringError(f"row reduction {r.op} has no split-row form")
    return out


def split_counts(R: int, L: int) -> list[int]:
    """Parts per row worth trying: the fewest that give SPLIT_MIN_BLOCKS threadgroups, and twice
    and four times as many, each dividing L into parts of at least SPLIT_MIN_PART."""
    if L < SPLIT_MIN_LEN:
        return []
    k = 2
    while R * k < SPLIT_MIN_BLOCKS and L // (2 * k) >= SPLIT_MIN_PART:
        k *= 2
    return [c for c in (k, 2 * k, 4 * k) if L % c == 0 and L // c >= SPLIT_MIN_PART]


def split_plan(graph: Graph, full: tuple, k: int, dialect: Dialect, in_shapes: list[tuple],
               out_shapes: list[tuple], split: int, threads: int | None = None) -> KernelPlan:
    """The two-launch plan of a row group with each row cut into `split` parts."""
    em = Emitter(dialect, graph)
    R, L, inputs = row_inputs(graph, full, k, em, in_shapes)
    K = int(split)
    if K < 2 or L % K:
        raise LoweringError(f"rows of {L} do not split into {K} parts")
    C = L // K
    forms = reduction_forms(graph)
    vec = _vec([n.dtype for n in graph.inputs] + [o.dtype for o in graph.outputs])
    while vec > 1 and (L % vec or C % vec):
        vec //= 2
    if threads is None:
        threads = 32
        while threads < 1024 and threads * SPLIT_ELEMS_PER_THREAD < C:
            threads *= 2
    chunks = -(-C // (threads * vec))
    if chunks * vec > MAX_CACHED:
        raise LoweringError(f"a part of {C} does not fit in registers of {threads} threads")
    for i, o in enumerate(graph.outputs):
        n = int(np.prod(out_shapes[i], dtype=np.int64))
        if n != (R * L if o.row else R):
            raise LoweringError(f"row kernel output {i} of shape {out_shapes[i]} fits no row kernel")

    # launch 1 keeps in registers what more than one of its passes reads; launch 2 reads once
    passes = [set(map(id, _needed([p["x"]], row_only=True))) for _, f, p in forms
              for _ in range(2 if f == "centered" else 1)]   # (at most: a centered sum may reuse a plain one)
    for i in inputs:
        i["cache1"] = sum(id(i["node"]) in p for p in passes) > 1

    def uses(nodes, phase=2):
        ids = {id(n) for n in nodes}
        return [dict(i, node=None, cache=phase == 1 and i["cache1"]) for i in inputs if id(i["node"]) in ids]

    common = dict(R=R, L=L, K=K, C=C, threads=threads, vec=vec, chunks=chunks, nsg=threads // 32,
                  guard=C % (threads * vec) != 0)
    # -- launch 1: partials ----------------------------------------------------------------------
    partials: list[str] = []       # partial array names, in output order
    slot = {}                      # (reduction id, what) -> partial array name

    def new_partial(r: Node, what: str) -> str:
        name = f"p{len(partials)}"
        partials.append(name)
        slot[(id(r), what)] = name
        return name

    steps, emitted = [], set()
    for r, form, parts in forms:
        x = parts["x"]
        body = _needed([x], row_only=True)
        acc = f"acc{em.ids[r]}"
        if form == "plain":
            steps.append({"before": [], "inputs": uses(body, 1), "stmts": em.stmts(body), "acc": acc,
                          "ident": flit(IDENTITY[r.op]), "op": r.op, "tail": _fold(r.op, acc, em.ref(x)),
                          "var": em.ref(r), "store": new_partial(r, "value")})
        elif form == "expsum":
            s = parts["s"]
            before = []
            for n in _needed([s], row_only=False):
                if n.kind == "ew" and not n.row and n not in emitted:
                    emitted.add(n)
                    before.append(em.stmt(n))
            sh = f"sh{em.ids[r]}"
            before.append(f"const float {sh} = xc_isfinite({em.ref(s)}) ? {em.ref(s)} : 0.0f;")
            e = dialect.expr("xc.exp", [f"({em.ref(x)} - {sh})"], {}, DType.F32, DType.F32)
            steps.append({"before": before, "inputs": uses(body, 1), "stmts": em.stmts(body), "acc": acc,
                          "ident": "0.0f", "op": "sum", "tail": f"{acc} += {e};", "var": em.ref(r),
                          "store": new_partial(r, "value")})
        else:   # centered: the part's mean (from the part's plain sum of X if there is one), then
            # its sum of squared deviations
            mean = f"mean{em.ids[r]}"
            total = next((em.ref(q) for q, f, pq in forms[:forms.index((r, form, parts))]
                          if f == "plain" and q.op == "sum" and pq["x"] is x), None)
            if total is None:
                total = f"{mean}s"
                steps.append({"before": [], "inputs": uses(body, 1), "stmts": em.stmts(body),
                              "acc": f"{acc}s", "ident": "0.0f", "op": "sum",
                              "tail": f"{acc}s += {em.ref(x)};", "var": total, "store": None})
            steps.append({"before": [f"const float {mean} = {total} * {flit(1.0 / C)};"],
                          "inputs": uses(body, 1), "stmts": em.stmts(body), "acc": acc, "ident": "0.0f",
                          "op": "sum", "tail": f"{acc} += ({em.ref(x)} - {mean}) * ({em.ref(x)} - {mean});",
                          "var": em.ref(r), "store": new_partial(r, "m2"),
                          "store_more": [(new_partial(r, "mean"), mean)]})
    in1 = [dict(i, node=None, cache=i["cache1"]) for i in inputs]
    for i in in1:
        i["used"] = any(i["name"] == u["name"] for s in steps for u in s["inputs"]) or i["mode"] == "perrow"
    data1 = dict(common, phase="partial", inputs=in1, steps=steps, partials=partials)
    body1 = render(dialect.name, "row_split", **data1)
    spec1 = KernelSpec(_kernel_name("rowsplit", body1), "row_split_partials", dialect.name, body1,
                       header(dialect), [i["name"] for i in inputs], list(partials),
                       [(R, K)] * len(partials), [DType.F32] * len(partials),
                       (R * K * threads, 1, 1), (threads, 1, 1), list(in_shapes))
    # -- launch 2: combine and epilogue ----------------------------------------------------------
    form_of = {id(r): (f, p) for r, f, p in forms}
    phases = []
    for node in graph.nodes:
        if node.kind == "reduce":
            form, parts = form_of[id(node)]
            phases.append(_combine(em, node, form, parts, slot, K, C))
        elif node.kind == "ew" and not node.row:
            phases.append({"kind": "scalar", "stmts": [em.stmt(node)]})
    row_outs = [(i, o) for i, o in enumerate(graph.outputs) if o.row]
    final_nodes = _needed([o for _, o in row_outs], row_only=True)
    in2 = [dict(i, node=None, cache=False) for i in inputs]
    for i in in2:
        i["used"] = i["mode"] == "perrow" or any(i["name"] == u["name"] for u in uses(final_nodes))
    data2 = dict(common, phase="final", inputs=in2, phases=phases, partials=partials,
                 final={"stmts": em.stmts(final_nodes), "inputs": uses(final_nodes)},
                 row_outputs=[{"name": f"out{i}", "ctype": dialect.ctype(o.dtype), "cty": em.cty(o),
                               "var": em.ref(o)} for i, o in row_outs],
                 red_outputs=[{"name": f"out{i}", "ctype": dialect.ctype(o.dtype), "var": em.ref(o)}
                              for i, o in enumerate(graph.outputs) if not o.row])
    body2 = render(dialect.name, "row_split", **data2)
    spec2 = KernelSpec(_kernel_name("rowsplit", body2), "row_split", dialect.name, body2,
                       header(dialect), [i["name"] for i in inputs] + list(partials),
                       [f"out{i}" for i in range(len(graph.outputs))], [tuple(s) for s in out_shapes],
                       [o.dtype for o in graph.outputs], (R * K * threads, 1, 1), (threads, 1, 1),
                       list(in_shapes) + [(R, K)] * len(partials))
    return KernelPlan(spec2, partials=spec1)


def _fold(op: str, acc: str, v: str) -> str:
    return f"{acc} += {v};" if op == "sum" else f"{acc} = xc_{op}({acc}, {v});"


def _combine(em: Emitter, r: Node, form: str, parts: dict, slot: dict, K: int, C: int) -> dict:
    """Launch 2's lines that fold the K partials of reduction `r` into its row value."""
    acc, var = f"acc{em.ids[r]}", em.ref(r)
    at = "[row * %d + q]" % K
    if form == "plain":
        loop = [_fold(r.op, acc, slot[(id(r), "value")] + at)]
        ident = flit(IDENTITY[r.op])
        pre = []
    elif form == "expsum":
        s = parts["s"]
        g = f"gs{em.ids[r]}"
        pre = [f"const float {g} = {em.ref(s)};"]
        # the part's own shift: S recomputed from the part's max/min partials (names shadowed)
        loop = []
        for n in _needed([s], row_only=False):
            if n.kind == "reduce":
                loop.append(f"const float {em.ref(n)} = {slot[(id(n), 'value')]}{at};")
            elif n.kind == "ew" and not n.row:
                loop.append(em.stmt(n))
        p = f"{slot[(id(r), 'value')]}{at}"
        e = em.d.expr("xc.exp", [f"(sh - {g})"], {}, DType.F32, DType.F32)
        loop += [f"const float sh = xc_isfinite({em.ref(s)}) ? {em.ref(s)} : 0.0f;",
                 f"const float pq = {p};",
                 f"{acc} += pq == 0.0f ? 0.0f : {e} * pq;"]
        ident = "0.0f"
    else:
        m = f"gm{em.ids[r]}"
        pre = [f"const float {m} = {em.ref(parts['m'])};"]
        loop = [f"const float d = {slot[(id(r), 'mean')]}{at} - {m};",
                f"{acc} += {slot[(id(r), 'm2')]}{at} + {flit(float(C))} * d * d;"]
        ident = "0.0f"
    return {"kind": "combine", "pre": pre, "acc": acc, "ident": ident, "loop": loop, "var": var}
