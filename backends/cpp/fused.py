"""Fused groups as C++ loops, from the kernel graph (`kernels/graph.py`) and the cpp dialect of the
expression table Metal and CUDA use.

- elementwise groups: one loop over the output, split across threads with `xc_parallel_for`. Dims
  that every operand reads as one run are merged; if the innermost merged dim is long, the loop is
  rows x columns with a `#pragma omp simd` column loop (broadcast operands read per row or per
  column), else one flat loop with index arithmetic for broadcast operands;
- row groups (softmax, norms, logsumexp, sum/mean/max/var with their prologue and epilogue): one
  task per block of rows; each reduction is one pass over the row (a cheap one with ROW_STREAMS
  accumulators), then the epilogue pass stores; a first reduction followed by a transcendental pass
  (softmax's max, then exp) runs for the next row inside that pass (`_ahead`);
- matmul/conv epilogue groups: the anchor through its op rule (GEMM), then the elementwise rest over
  its result.

A group whose graph cannot be built (a reduction over leading axes, ...) is lowered op by op.
"""
from __future__ import annotations

import re

from xcomp.backends.cpp.lower import Buf, CppLowering, load, shape_of, store
from xcomp.backends.cpp.sizes import (at_least, broadcast_strides, cdiv_expr, collapse, index_expr, prod,
                                      spell)
from xcomp.backends.kernels.codegen import Emitter, _needed, epilogue_block, render
from xcomp.backends.kernels.exprs import CPP_DIALECT, flit
from xcomp.backends.kernels.graph import IDENTITY, ROW_OPS, Graph, build_graph, reduced_trailing
from xcomp.errors import LoweringError
from xcomp.ir.core import Block, Operation
from xcomp.ir.types import DType
from xcomp.ops import registry
from xcomp.ops.structural import FusionKind

ELEMENTS_PER_TASK = 1 << 14     # grain of elementwise loops
ROW_ELEMENTS_PER_TASK = 1 << 13  # grain of row loops, in elements
MIN_SIMD_COLUMNS = 16            # shorter inner dims run as one flat loop
EPILOGUE_BLOCK_BYTES = 1 << 20   # GEMM output bytes per block of a matmul epilogue (about an L2)
MIN_BLOCK_ROWS = 32
# accumulators of a row reduction whose elements are cheap (a norm's sums, softmax's max): one is a
# chain of one dependent add per vector, which bounds the pass; several over as many parts of the row
# run in parallel (layer norm 1024x4096, 1 thread CPU time, interleaved: 6.14 -> 4.79 ms, torch eager 5.05)
ROW_STREAMS = 4


def emitter(g: Graph) -> Emitter:
    """The statement emitter of a group, spelling run-time sizes as the cpp target does (`xs_S`)."""
    return Emitter(CPP_DIALECT, g, sv=spell)


cindex = index_expr   # the C++ index expression over static or run-time sizes (sizes.py)


def row_inputs(g: Graph, full: tuple, k: int, em: Emitter, in_shapes: list[tuple]):
    """Rows R, row length L and the template data of each input of a row loop over the last `k`
    axes of `full` (mode: perrow, vec for a contiguous row, general; base and column offsets)."""
    lead, trail = list(full[:len(full) - k]), list(full[len(full) - k:])
    L, R = prod(trail), prod(lead)
    inputs = []
    for node, shape in zip(g.inputs, in_shapes):
        aligned = (1,) * (len(full) - len(shape)) + tuple(shape)
        if len(shape) <= len(full) and all(a == 1 or a == f for a, f in zip(aligned, full)):
            st = broadcast_strides(tuple(shape), tuple(full))
        else:   # a per-row value shaped like `full` without its reduced axes
            st = broadcast_strides(tuple(shape), tuple(lead)) + [0] * k
        row_st, col_st = st[:len(lead)], st[len(lead):]
        mode = "perrow" if not node.row else "vec" if collapse(trail, col_st) == [(L, 1)] else "general"
        inputs.append({"mode": mode, "base": index_expr(lead, row_st, "row"), "cty": em.cty(node),
                       "col": index_expr(trail, col_st, "col"), "var": em.ref(node), "node": node})
    return R, L, inputs


def merge_dims(shape: tuple, strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge neighbouring dims of `shape` that every operand (element strides) reads as one run."""
    dims = [i for i, s in enumerate(shape) if s != 1]
    out_shape: list[int] = []
    out_st: list[list[int]] = [[] for _ in strides]
    for i in dims:
        if out_shape and all(st[i] * shape[i] == ost[-1] or (st[i] == 0 and ost[-1] == 0)
                             for st, ost in zip(strides, out_st)):
            out_shape[-1] *= shape[i]
            for st, ost in zip(strides, out_st):
                ost[-1] = st[i] if st[i] else 0
            continue
        out_shape.append(shape[i])
        for st, ost in zip(strides, out_st):
            ost.append(st[i])
    return out_shape or [1], [o or [0] for o in out_st]


def loop_sty(b: Buf) -> str:
    """The element type a vectorized loop reads or writes `b` through: bool storage as unsigned char
    (GCC does not vectorize loads or stores of `bool`; a masked softmax's exp loop stayed scalar)."""
    return "unsigned char" if b.dtype is DType.BOOL else b.sty


def loop_ptr(b: Buf, const: bool) -> str:
    """`b.ptr` as a pointer to loop_sty(b)."""
    if b.dtype is not DType.BOOL:
        return b.ptr
    return f"({'const ' if const else ''}unsigned char*)({b.ptr})"


def emit_elementwise(lw: CppLowering, g: Graph, out_shape: tuple, ins: list[Buf], outs: list[Buf],
                     comment: str, block: tuple[str, str] | None = None,
                     callback: tuple[str, str] | None = None) -> None:
    """`block` = (first row, row count) C expressions: only those rows of a 2-d output, whose first
    input holds just those rows (a GEMM's row block, still in cache). `callback` = (name, statement):
    the loop over flat element ranges as a lambda `name(c0, c1)` that `statement` (in its scope) calls."""
    em = emitter(g)
    stmts = em.stmts(g.nodes)
    n = prod(out_shape)
    if n == 0:
        return
    strides = [broadcast_strides(tuple(b.shape), tuple(out_shape)) for b in ins]
    if block:
        shape, st = list(out_shape), strides
    else:
        shape, st = merge_dims(tuple(out_shape), strides)
    C = shape[-1]
    two_level = not callback and (block is not None or (len(shape) > 1 and at_least(C, MIN_SIMD_COLUMNS)))
    R = block[1] if block else (n // C if two_level else 1)
    grow = f"{block[0]} + r" if block else "r"
    inputs, pointers = [], {}
    for k, (node, b, s) in enumerate(zip(g.inputs, ins, st)):
        if b.numel == 1:
            inputs.append({"var": em.ref(node), "cty": em.cty(node), "mode": "scalar",
                           "load0": load(b.dtype, f"{b.ptr}[0]")})
            continue
        # a task-local copy of the pointer: one captured by reference is re-read at every element
        pointers.setdefault(b.ptr, {"name": f"lp{len(pointers)}", "ptr": loop_ptr(b, True), "sty": loop_sty(b)})
        b = Buf(pointers[b.ptr]["name"], b.dtype, b.shape)
        i = {"var": em.ref(node), "cty": em.cty(node), "sty": loop_sty(b), "ptr": b.ptr, "p": f"p{k}"}
        if two_level:
            base = cindex(shape[:-1], s[:-1], "r" if (block and k == 0) else f"({grow})")
            if s[-1] == 0:
                i.update(mode="perrow", load_row=load(b.dtype, f"{b.ptr}[{base}]"))
            else:
                col = "c" if s[-1] == 1 else f"c * {s[-1]}"
                i.update(mode="row", base=base, load_col=load(b.dtype, f"p{k}[{col}]"))
        else:
            i.update(mode="index", load_index=load(b.dtype, f"{b.ptr}[{cindex(shape, s, 'c')}]"))
        inputs.append(i)
    outputs = [{"sty": loop_sty(b), "ptr": loop_ptr(b, False), "store": store(b.dtype, em.ref(o))}
               for o, b in zip(g.outputs, outs)]
    if two_level:
        grain = cdiv_expr(ELEMENTS_PER_TASK, C)
    else:
        R, C, grain = 1, n, ELEMENTS_PER_TASK
        for i in inputs:
            if i["mode"] == "row":
                i["mode"] = "index"
    lw.emit(render("cpp", "elementwise", comment=comment, R=R if two_level else 1, C=C, grain=grain,
                   inputs=inputs, outputs=outputs, stmts=stmts, flat=not two_level, grow=grow,
                   pointers=list(pointers.values()), callback=callback[0] if callback else "",
                   after=callback[1] if callback else "").rstrip("\n"))


def emit_rows(lw: CppLowering, g: Graph, full: tuple, k: int, ins: list[Buf], outs: list[Buf],
              comment: str) -> None:
    em = emitter(g)
    R, L, specs = row_inputs(g, full, k, em, [tuple(b.shape) for b in ins])
    if R == 0:
        return
    # every buffer as a local pointer of the task: a pointer captured by reference is re-read at
    # each element (GCC then vectorizes stores as scatters through a gathered pointer)
    local: dict[str, str] = {}
    pointers = []

    def local_ptr(b: Buf, const: bool) -> str:
        if b.ptr not in local:
            local[b.ptr] = f"lp{len(local)}"
            pointers.append({"name": local[b.ptr], "ptr": loop_ptr(b, const), "sty": loop_sty(b), "const": const})
        elif not const:
            pointers[int(local[b.ptr][2:])]["const"] = False
        return local[b.ptr]
    for b in outs:
        local_ptr(b, False)
    ins = [Buf(local_ptr(b, True), b.dtype, b.shape) for b in ins]
    outs = [Buf(local[b.ptr], b.dtype, b.shape) for b in outs]
    inputs = []
    for spec, b in zip(specs, ins):
        var = spec["var"]
        inputs.append({"mode": spec["mode"], "var": var, "cty": spec["cty"], "sty": loop_sty(b), "ptr": b.ptr,
                       "base": spec["base"], "node": spec["node"],
                       "load_row": load(b.dtype, f"{b.ptr}[{spec['base']}]"),
                       "load_vec": load(b.dtype, f"p_{var}[col]"),
                       "load_general": load(b.dtype, f"{b.ptr}[{spec['base']} + {spec['col']}]")})

    def uses(nodes):
        ids = {id(n) for n in nodes}
        return [dict(i, node=None) for i in inputs if id(i["node"]) in ids]

    row_outs = [(o, b) for o, b in zip(g.outputs, outs) if o.row]
    red_outs = [(o, b) for o, b in zip(g.outputs, outs) if not o.row]
    stash, stash_buf = _stash(g, row_outs)
    phases = []
    for node in g.nodes:
        if node.kind == "reduce":
            body = _needed(node.args, row_only=True)
            keep = [f"{stash_buf.ptr}[row * {L} + col] = {em.ref(stash)};"] \
                if stash is not None and stash in body and node is _last_reduce(g) else []
            acc, value = f"acc{em.ids[node]}", em.ref(node.args[0])
            n = 1 if any(b.kind == "ew" and b.op in EXPENSIVE for b in body) else ROW_STREAMS
            nan = not node.attrs.get("nan_reaches_outputs")   # graph.mark_nan_reaching_outputs
            phases.append({"kind": "reduce", "op": node.op, "acc": acc,
                           "ident": flit(IDENTITY[node.op]), "stmts": em.stmts(body),
                           "value": value, "var": em.ref(node), "inputs": uses(body),
                           "stash": keep, "streams": n, "carry": "", "next": None, "nan": nan,
                           "updates": [_update(node.op, f"{acc}_{j}" if n > 1 else acc, value, nan)
                                       for j in range(n)]})
        elif node.kind == "ew" and not node.row:
            phases.append({"kind": "scalar", "stmts": [em.stmt(node)]})
    for o, b in row_outs:
        if b.numel != R * L:
            raise LoweringError(f"row group output of shape {b.shape} is not a full row")
    for o, b in red_outs:
        if b.numel != R:
            raise LoweringError(f"row group output of shape {b.shape} is not one value per row")
    if stash is not None:    # the final pass reads the stashed value instead of recomputing it
        stash.row = False
        final_nodes = _needed([o for o, _ in row_outs], row_only=True)
        stash.row = True
        final_nodes = [n for n in final_nodes if n is not stash]
        final = {"stmts": [f"const float {em.ref(stash)} = {stash_buf.ptr}[row * {L} + col];"]
                 + em.stmts(final_nodes), "inputs": uses(final_nodes)}
    else:
        final_nodes = _needed([o for o, _ in row_outs], row_only=True)
        final = {"stmts": em.stmts(final_nodes), "inputs": uses(final_nodes)}
    row_stores = [f"{b.ptr}[row * {L} + col] = {store(b.dtype, em.ref(o))};" for o, b in row_outs]
    red_stores = [f"{b.ptr}[row] = {store(b.dtype, em.ref(o))};" for o, b in red_outs]
    grain = cdiv_expr(ROW_ELEMENTS_PER_TASK, L)
    lw.emit(render("cpp", "row", comment=comment, R=R, L=L, grain=grain, pointers=pointers,
                   inputs=[dict(i, node=None) for i in inputs], phases=phases, final=final,
                   row_outputs=row_stores, red_outputs=red_stores, ahead=_ahead(phases)).rstrip("\n"))


EXPENSIVE = {"xc.exp", "xc.exp2", "xc.expm1", "xc.log", "xc.log1p", "xc.log2", "xc.tanh", "xc.erf",
             "xc.sigmoid", "xc.gelu", "xc.silu", "xc.pow", "xc.sin", "xc.cos"}


def _update(op: str, acc: str, v: str, nan: bool = True) -> list[str]:
    """The statements folding value `v` into accumulator `acc` of a sum / max / min (a max or min
    also ORs whether `v` is NaN into `acc`_nan, unless `nan` is False)."""
    if op == "sum":
        return [f"{acc} += {v};"]
    return [f"{acc} = {v} {'>' if op == 'max' else '<'} {acc} ? {v} : {acc};"] + \
        ([f"{acc}_nan |= {v} != {v};"] if nan else [])


_VALUE = re.compile(r"\b([av]\d+)\b")   # the names of a row loop's inputs and values (a0, v3)
_ROW = re.compile(r"\brow\b")


def _next_row(text: str) -> str:
    """Statements or index expressions of a row loop rewritten for the next row (`nrow`), values renamed."""
    return _ROW.sub("nrow", _VALUE.sub(r"\1_n", text))


def _ahead(phases: list[dict]) -> dict | None:
    """Run the first reduction of each row inside the previous row's transcendental pass (softmax: the
    max of row r + 1 in the exp pass of row r), so the first read of a row from memory overlaps that
    compute instead of running alone; the template then gives each task's first row its own pass.
    Marks the phases (`carry` on the first, `next` on the host) and returns the template's data, or
    None when the row has no such pass (norms, a lone sum) or a per-row value precedes the reduction."""
    if not phases or phases[0]["kind"] != "reduce" or phases[0]["stash"]:
        return None
    hosts = [p for p in phases[1:] if p["kind"] == "reduce" and p["streams"] == 1]
    if not hosts:
        return None
    first, host = phases[0], hosts[-1]
    carry, acc = f"{first['acc']}_ahead", f"{first['acc']}_nx"
    ins = [dict(i, var=f"{i['var']}_n", base=_ROW.sub("nrow", i["base"]), load_row=_ROW.sub("nrow", i["load_row"]),
                load_vec=i["load_vec"].replace(f"p_{i['var']}[", f"p_{i['var']}_n["),
                load_general=_ROW.sub("nrow", i["load_general"])) for i in first["inputs"]]
    host["next"] = {"acc": acc, "op": first["op"], "ident": first["ident"], "carry": carry, "inputs": ins,
                    "nan": first["nan"],
                    "stmts": [_next_row(s) for s in first["stmts"]],
                    "updates": _update(first["op"], acc, _next_row(first["value"]), first["nan"])}
    first["carry"] = carry
    return {"carry": carry, "first": dict(first, carry=""), "inputs": ins, "host": f"{host['op']} of {host['value']}"}


def _last_reduce(g: Graph):
    reds = g.reductions
    return reds[-1] if reds else None


def _stash(g: Graph, row_outs: list):
    """(node, output buffer): a transcendental value the last reduction pass computes and the final
    pass needs again (softmax's exp(x - max)), kept in the float32 output row between the passes
    instead of being recomputed; (None, None) when there is none."""
    last = _last_reduce(g)
    f32_outs = [b for o, b in row_outs if b.dtype.name == "F32"]
    if last is None or len(f32_outs) != 1 or len(row_outs) != 1:
        return None, None
    in_pass = set(map(id, _needed(last.args, row_only=True)))
    final = _needed([o for o, _ in row_outs], row_only=True)
    shared = [n for n in final if id(n) in in_pass and n.kind == "ew"]
    users = {id(a) for n in final if id(n) not in in_pass for a in n.args}
    frontier = [n for n in shared if id(n) in users]

    def costly(n):
        return n.kind == "ew" and (n.op in EXPENSIVE or any(costly(a) for a in n.args if a.row))
    if len(frontier) == 1 and costly(frontier[0]):
        return frontier[0], f32_outs[0]
    return None, None


def _row_ops(block: Block) -> list[Operation]:
    return [o for o in block.ops if o.name in ROW_OPS]


def emit_block(lw: CppLowering, block: Block, ins: list[Buf], outs: list[Buf], comment: str) -> None:
    """Emit an elementwise or row body `block` reading `ins` and writing `outs` (LoweringError,
    before anything is emitted, when no loop skeleton fits)."""
    for b in ins:
        if b.dtype.itemsize == 0:
            raise LoweringError("empty dtype")
    types = [a.type for a in block.args]
    rows = _row_ops(block)
    if rows:
        x = rows[0].operands[0].type
        full, k = shape_of(x), reduced_trailing(rows[0])
        g = build_graph(block, types, full, k)
        emitter(g).stmts(g.nodes)        # every expression exists before emitting
        emit_rows(lw, g, full, k, ins, outs, comment)
    else:
        g = build_graph(block, types)
        if len({tuple(b.shape) for b in outs}) != 1:
            raise LoweringError("elementwise group with outputs of several shapes")
        emitter(g).stmts(g.nodes)
        emit_elementwise(lw, g, tuple(outs[0].shape), ins, outs, comment)


def emit_group(lw: CppLowering, op: Operation, args: list[Buf]) -> list[Buf]:
    """The region rule of `xc.fused`: one loop nest, or op by op when no skeleton fits."""
    block = op.regions[0].block
    kind = op.attrs["kind"]
    try:
        if kind in (FusionKind.MATMUL_EPILOGUE, FusionKind.CONV_EPILOGUE):
            return _epilogue(lw, op, args)
        _check(block, args)
        outs = [lw.out(op, i) for i in range(len(op.results))]
        emit_block(lw, block, args, outs, f"fused {kind.value} group of {len(block.ops) - 1} ops")
        return outs
    except LoweringError:
        return lw.region_body(block, args)


def _check(block: Block, args: list[Buf]) -> None:
    """Raise LoweringError now (before lines are emitted) when the block has no loop skeleton."""
    types = [a.type for a in block.args]
    rows = _row_ops(block)
    if rows:
        x = rows[0].operands[0].type
        g = build_graph(block, types, shape_of(x), reduced_trailing(rows[0]))
    else:
        g = build_graph(block, types)
    emitter(g).stmts(g.nodes)


def _epilogue(lw: CppLowering, op: Operation, args: list[Buf]) -> list[Buf]:
    block = op.regions[0].block
    anchor, sub, used = epilogue_block(op)
    g = build_graph(sub, [a.type for a in sub.args])
    emitter(g).stmts(g.nodes)
    anchor_args = [args[block.args.index(v)] for v in anchor.operands]
    if anchor.name == "xc.conv":
        return _conv_epilogue(lw, op, anchor, anchor_args, g, args, used, block)
    scale = _scalar_scale(anchor, sub)
    if scale is not None:
        from xcomp.backends.cpp.ops_linalg import scaled_matmul
        done = scaled_matmul(lw, anchor, anchor_args, scale, op)
        if done is not None:
            return done
    rows = _row_blocks(anchor, anchor_args, g, op)
    M = shape_of(anchor.results[0].type)[0] if rows else 0
    if rows and isinstance(M, int):
        return _blocked_matmul_epilogue(lw, op, anchor, anchor_args, g, args, used, block, rows)
    if rows:   # a run-time M: GEMM row blocks only where this call's M is more than one, as a static program
        outs = [lw.out(op, i) for i in range(len(op.results))]
        lw.emit(f"if ({M} > {rows}) {{")
        lw.depth += 1
        _blocked_matmul_epilogue(lw, op, anchor, anchor_args, g, args, used, block, rows, outs)
        lw.depth -= 1
        lw.emit("} else {")
        lw.depth += 1
        _gemm_then_epilogue(lw, op, anchor, anchor_args, g, args, used, block, outs)
        lw.depth -= 1
        lw.emit("}")
        return outs
    return _gemm_then_epilogue(lw, op, anchor, anchor_args, g, args, used, block)


def _scalar_scale(anchor: Operation, sub: Block):
    """The constant c when a matmul's whole epilogue is `result * c` (c a scalar), else None."""
    ops = [o for o in sub.ops if not o.opdef.is_terminator]
    if anchor.name != "xc.matmul" or len(sub.args) != 1 or len(ops) != 2 or [o.name for o in ops] != [
            "xc.constant", "xc.mul"]:
        return None
    const, mul = ops
    value = const.attrs.get("value")
    if (sub.terminator.operands != [mul.results[0]] or set(mul.operands) != {sub.args[0], const.results[0]}
            or shape_of(const.results[0].type) != () or not isinstance(value, (int, float))):
        return None
    return float(value)


def _gemm_then_epilogue(lw, op, anchor, anchor_args, g, args, used, block, outs=None) -> list[Buf]:
    (result,) = lw.apply(anchor, anchor_args)
    outs = outs or [lw.out(op, i) for i in range(len(op.results))]
    ins = [result] + [args[block.args.index(a)] for a in used]
    emit_elementwise(lw, g, tuple(outs[0].shape), ins, outs, f"epilogue of {anchor.name}")
    return outs


def _conv_epilogue(lw, op, anchor, anchor_args, g, args, used, block) -> list[Buf]:
    """A convolution whose direct kernel runs: the epilogue as its callback, on each block of output
    rows just computed (still in cache); any other: the convolution, then the epilogue."""
    from xcomp.backends.cpp.ops_linalg import conv
    outs = [lw.out(op, i) for i in range(len(op.results))]
    ins = [args[block.args.index(a)] for a in used]
    fused = []

    def per_tile(result: Buf, call: str) -> None:
        name = lw.fresh("epi")
        emit_elementwise(lw, g, tuple(outs[0].shape), [result] + ins, outs,
                         "epilogue of xc.conv, run by the kernel per block of output rows",
                         callback=(name, f"{call}, {name});"))
        fused.append(name)

    same = all(tuple(b.shape) == tuple(shape_of(anchor.results[0].type)) for b in outs)
    # one float32 output that is not the convolution's own result: the kernel writes it and the
    # epilogue updates each block in place (one buffer instead of two, half the memory traffic)
    inplace = (same and len(outs) == 1 and outs[0].dtype is DType.F32 and anchor_args[0].dtype is DType.F32
               and not any(o.kind == "input" and o.value == 0 for o in g.outputs))
    (result,) = conv(lw, anchor, anchor_args, epilogue=per_tile if same else None,
                     out=outs[0] if inplace else None)
    if not fused:
        emit_elementwise(lw, g, tuple(outs[0].shape), [result] + ins, outs, f"epilogue of {anchor.name}")
    return outs


def _row_blocks(anchor: Operation, anchor_args: list[Buf], g: Graph, op: Operation) -> int:
    """Rows per GEMM block when a float32 2-d matmul's output is too big to stay in cache between
    the GEMM and its epilogue (0: one GEMM, then the epilogue)."""
    if anchor.name != "xc.matmul" or any(len(b.shape) != 2 or b.dtype.name != "F32" for b in anchor_args):
        return 0
    M, N = shape_of(anchor.results[0].type)
    if g.outputs and any(o.kind == "input" and o.value == 0 for o in g.outputs):
        return 0      # the GEMM's own result is an output: it needs the whole buffer
    if any(shape_of(r.type) != (M, N) for r in op.results) or not at_least(N, MIN_SIMD_COLUMNS):
        return 0
    if not isinstance(N, int):
        return 0      # a symbolic row length: one GEMM, then the epilogue
    rows = max(MIN_BLOCK_ROWS, EPILOGUE_BLOCK_BYTES // (4 * N))
    return rows if not isinstance(M, int) or rows < M else 0   # a symbolic M: decided per call


def _blocked_matmul_epilogue(lw, op, anchor, anchor_args, g, args, used, block, rows, outs=None) -> list[Buf]:
    a, b = anchor_args
    M, N = shape_of(anchor.results[0].type)
    ta, tb = anchor.attrs["transpose_a"], anchor.attrs["transpose_b"]
    K = a.shape[0] if ta else a.shape[1]
    lw.uses_blas = True
    tile = lw.scratch(a.dtype, (rows, N), "tile")
    outs = outs or [lw.out(op, i) for i in range(len(op.results))]
    ins = [Buf(tile.ptr, tile.dtype, (M, N))] + [args[block.args.index(x)] for x in used]
    lw.emit(f"for (int64_t rb = 0; rb < {M}; rb += {rows}) {{")
    lw.depth += 1
    lw.emit(f"const int64_t rn = std::min<int64_t>({rows}, {M} - rb);",
            f"xc_sgemm({'true' if ta else 'false'}, {'true' if tb else 'false'}, rn, {N}, {K}, 1.0f, "
            f"{a.ptr} + {'rb' if ta else f'rb * {K}'}, {M if ta else K}, {b.ptr}, {K if tb else N}, 0.0f, "
            f"{tile.ptr}, {N});")
    emit_elementwise(lw, g, (M, N), ins, outs, "epilogue of xc.matmul on rows [rb, rb + rn)", block=("rb", "rn"))
    lw.depth -= 1
    lw.emit("}")
    return outs


def single_op_block(op: Operation) -> Block:
    """A block holding a copy of `op` over block arguments, yielding its results."""
    body = Block([v.type for v in op.operands])
    inner = Operation(op.opdef, list(body.args), dict(op.attrs), [r.type for r in op.results])
    body.append(inner)
    body.append(Operation(registry.get("yield"), list(inner.results), {}, []))
    return body
