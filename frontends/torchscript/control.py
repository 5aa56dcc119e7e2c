"""Control flow: `prim::If` -> `xc.if`, `prim::Loop` -> `xc.loop`, through `convert_block` again.

A branch whose condition is known at capture time converts only the taken block. Otherwise both
blocks become regions; values leaving them must be IR values of one type on both paths (`values.py`),
static values equal on both paths stay static. Lists and tensors a region changes in place
(`aten::append`, `foo_`) leave it as extra results (if) or loop-carried values (loop).
"""
from __future__ import annotations

import torch

from xcomp import guards
from xcomp.ir import symbolic as sym
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Region, Value
from xcomp.ir.types import DType, TensorType
from xcomp.frontends.torchscript import nodes as N
from xcomp.frontends.torchscript import views
from xcomp.frontends.torchscript.symbolic import is_size
from xcomp.frontends.torchscript.convert import Converter, convert_block, functional, schema_name
from xcomp.frontends.torchscript.values import (UNINITIALIZED, RegionTypeError, _Typed, flatten, is_static,
                                                materialize, rebuild, same)


def _defined_inside(block) -> set:
    inside = set(block.inputs())
    for n in block.nodes():
        inside.update(n.outputs())
        for b in n.blocks():
            inside |= _defined_inside(b)
    return inside


def mutated_outer(blocks) -> list:
    """TorchScript values defined outside `blocks` that nodes inside change in place (appends,
    `foo_` ops), in first-seen order."""
    inside = set()
    for b in blocks:
        inside |= _defined_inside(b)
    found: list = []

    def scan(block):
        for n in block.nodes():
            name, _ = schema_name(n)
            if (name == "aten::append" or functional(name) != name) and n.inputsSize():
                for v in [n.inputsAt(0)] + views.bases(n.inputsAt(0)):
                    if v not in inside and v not in found:
                        found.append(v)
            for b in n.blocks():
                scan(b)
    for b in blocks:
        scan(b)
    return found


def convert_if(cv: Converter, node, cond) -> list:
    then_b, else_b = list(node.blocks())
    if not isinstance(cond, Value):
        env = cv.env
        outs = convert_block(cv, then_b if cond else else_b, env)
        return outs
    cond = cv.cx.cast(cv.cx.op("reshape", cond, shape=()) if cond.type.rank else cond, DType.BOOL)
    extra = mutated_outer([then_b, else_b])
    for v in extra:
        cv.env[v] = materialize(cv.cx, cv.env[v], jit_type=v.type())
    outer_b = cv.cx.b
    branches = []
    for jb in (then_b, else_b):
        blk = Block([])
        cv.cx.b = Builder(blk)
        env = dict(cv.env)
        outs = convert_block(cv, jb, env) + [env[v] for v in extra]
        branches.append((blk, outs))
    cv.cx.b = outer_b
    (tb, touts), (eb, eouts) = branches
    templates, t_leaves, e_leaves = [], [], []
    for t, e in zip(touts, eouts):
        templates.append(t if t is not UNINITIALIZED else e)
        ft, fe = flatten(t), flatten(e)
        if t is UNINITIALIZED:
            ft = [UNINITIALIZED] * len(fe)
        if e is UNINITIALIZED:
            fe = [UNINITIALIZED] * len(ft)
        if len(ft) != len(fe):
            raise RegionTypeError("the branches of an if return different tuple structures")
        t_leaves += ft
        e_leaves += fe
    static = [same(a, b) or (a is UNINITIALIZED and is_static(b)) or (b is UNINITIALIZED and is_static(a))
              for a, b in zip(t_leaves, e_leaves)]
    dyn = [i for i, s in enumerate(static) if not s]
    ty, ey = [], []
    for blk, leaves, other in ((tb, t_leaves, e_leaves), (eb, e_leaves, t_leaves)):
        cv.cx.b = Builder(blk)
        vals = []
        for i in dyn:
            like = other[i] if isinstance(other[i], Value) else None
            vals.append(materialize(cv.cx, leaves[i], like))
        (ty if blk is tb else ey).extend(vals)
    for i, (a, b) in enumerate(zip(ty, ey)):  # a number on one path, a tensor of its type on the other
        if a.type != b.type:
            cv.cx.b = Builder(tb)
            ty[i] = materialize(cv.cx, a, b)
            cv.cx.b = Builder(eb)
            ey[i] = materialize(cv.cx, b, ty[i])
            if ty[i].type != ey[i].type:
                raise RegionTypeError(f"the branches of an if give {ty[i].type} and {ey[i].type}")
    Builder(tb).create("yield", ty)
    Builder(eb).create("yield", ey)
    cv.cx.b = outer_b
    op = outer_b.create("if", [cond], regions=[Region([tb]), Region([eb])], result_types=[v.type for v in ty])
    res = iter(op.results)
    merged = [next(res) if not s else (a if a is not UNINITIALIZED else b)
              for s, a, b in zip(static, t_leaves, e_leaves)]
    n = len(touts) - len(extra)
    leaves_iter = iter(merged)
    outs = [rebuild(t, [next(leaves_iter) for _ in flatten(t)]) if t is not UNINITIALIZED else next(leaves_iter)
            for t in templates]
    for v, new in zip(extra, outs[n:]):
        cv.env[v] = new
    return outs[:n]


UNROLL_LIMIT = 64


def convert_loop(cv: Converter, node, trip, cond, *init) -> list:
    """`prim::Loop(trip, cond, *carried)` -> `xc.loop`. Only a loop that cannot be one (it grows a
    list of tensors from empty, as `[f(t) for t in xs]` does) and runs a known, small number of times
    is unrolled, as TorchScript itself unrolls loops over module lists."""
    (body_jb,) = list(node.blocks())
    if is_size(trip):  # `for i in range(x.size(1))` over a symbolic size: the count at run time
        return _size_loop(cv, node, body_jb, trip, cond, init)
    if (not isinstance(cond, Value) and not cond) or (not isinstance(trip, Value) and trip <= 0):
        return list(init)
    constants, failures = dict(cv.constants), len(cv.unsupported)
    try:
        return _xc_loop(cv, node, body_jb, trip, cond, init)
    except RegionTypeError:
        if isinstance(trip, Value) or isinstance(cond, Value) or trip > UNROLL_LIMIT:
            raise
        cv.constants, cv.unsupported[failures:] = constants, []  # forget what the dropped body made
        return _unrolled(cv, body_jb, trip, init)


def _size_loop(cv: Converter, node, body_jb, trip, cond, init) -> list:
    """A loop over a symbolic size: `xc.loop` with the size as its trip count. When a carried value
    changes kind on the first iteration (an Optional state starting as None, as `nn.LSTMCell` stepped
    from no state does), that iteration is peeled (the program then assumes the size is >= 1)."""
    constants, failures = dict(cv.constants), len(cv.unsupported)
    if not isinstance(cond, Value) and not cond:
        return list(init)
    try:
        return _xc_loop(cv, node, body_jb, cv.cx.tensor(str(trip), DType.I64), cond, init)
    except RegionTypeError:
        if isinstance(cond, Value):
            raise
        cv.constants, cv.unsupported[failures:] = constants, []
    guards.require(str(trip), ">=", 1, "a loop over a size whose first iteration is peeled")
    vals = _unrolled(cv, body_jb, 1, init, with_cond=True)
    cond, vals = vals[0], vals[1:]
    rest = cv.cx.tensor(str(sym.sub(trip, 1)) if not isinstance(sym.sub(trip, 1), int) else sym.sub(trip, 1),
                        DType.I64)
    return _xc_loop(cv, node, body_jb, rest, cond, vals, offset=1)


def _unrolled(cv: Converter, body_jb, trip: int, init, with_cond: bool = False) -> list:
    params = list(body_jb.inputs())
    vals = list(init)
    cond = True
    for i in range(trip):
        env = cv.env
        env[params[0]] = i
        for p, v in zip(params[1:], vals):
            env[p] = v
        outs = convert_block(cv, body_jb, env)
        cond, vals = outs[0], outs[1:]
        if with_cond:
            return [cond] + vals
        if isinstance(cond, Value):
            raise RegionTypeError("a loop that grows a list of tensors exits on a value known only at run time")
        if not cond:
            break
    return [cond] + vals if with_cond else vals


def _xc_loop(cv: Converter, node, body_jb, trip, cond, init, offset: int = 0) -> list:
    cx = cv.cx
    extra = mutated_outer([body_jb])
    templates = list(init) + [cv.env[v] for v in extra]
    jit_types = [o.type() for o in node.outputs()] + [v.type() for v in extra]
    leaves, kinds = [], []
    for t, jt in zip(templates, jit_types):
        for leaf in flatten(t):
            leaves.append(leaf)
            kinds.append(jt)
    carried = [materialize(cx, x, jit_type=jt if not isinstance(x, tuple) else None)
               if not _passthrough(x) else x for x, jt in zip(leaves, kinds)]
    dyn = [i for i, x in enumerate(carried) if isinstance(x, Value)]
    body = Block([TensorType((), DType.I64)] + [carried[i].type for i in dyn])
    inner_leaves = list(carried)
    for j, i in enumerate(dyn):
        inner_leaves[i] = body.args[j + 1]
    it = iter(inner_leaves)
    inner_templates = [rebuild(t, [next(it) for _ in flatten(t)]) for t in templates]
    env = dict(cv.env)
    params = list(body_jb.inputs())
    env[params[0]] = body.args[0]
    if offset:  # a peeled loop counts from `offset`
        outer_b, cx.b = cx.b, Builder(body)
        env[params[0]] = cx.op("add", body.args[0], cx.const(offset, DType.I64))
        cx.b = outer_b
    for p, v in zip(params[1:], inner_templates):
        env[p] = v
    n = len(init)
    for v, val in zip(extra, inner_templates[n:]):
        env[v] = val
    outer_b = cx.b
    cx.b = Builder(body)
    try:
        outs = convert_block(cv, body_jb, env)
        next_cond, next_vals = outs[0], outs[1:] + [env[v] for v in extra]
        next_leaves = [leaf for t in next_vals for leaf in flatten(t)]
        if len(next_leaves) != len(carried) or not all(
                same(carried[i], next_leaves[i]) for i in range(len(carried)) if i not in dyn):
            raise RegionTypeError("a loop-carried value changes kind between iterations (None to a value)")
        ys = [materialize(cx, next_leaves[i], body.args[j + 1]) for j, i in enumerate(dyn)]
        for j, y in zip(dyn, ys):
            if y.type != carried[j].type:
                raise RegionTypeError(f"a loop-carried value changes type from {carried[j].type} to {y.type}")
        c = materialize(cx, next_cond if next_cond is not None else True, _Typed(TensorType((), DType.BOOL)))
        cx.b.create("yield", [c] + ys)
    finally:
        cx.b = outer_b
    trip_v = cx.tensor(trip if isinstance(trip, Value) else int(min(trip, 2**63 - 1)), DType.I64)
    cond_v = cx.cast(cx.tensor(cond, DType.BOOL), DType.BOOL)
    op = cx.b.create("loop", [trip_v, cond_v] + [carried[i] for i in dyn], regions=[Region([body])],
                     result_types=[carried[i].type for i in dyn])
    final = list(carried)
    for r, i in zip(op.results, dyn):
        final[i] = r
    it = iter(final)
    results = [rebuild(t, [next(it) for _ in flatten(t)]) for t in templates]
    for v, new in zip(extra, results[n:]):
        cv.env[v] = new
    return results[:n]


def _passthrough(x) -> bool:
    """Carried values that stay as they are: None, strings, dtypes, devices."""
    return x is None or isinstance(x, (str, torch.dtype, torch.device))


def _control(kind: str, doc: str):
    def register(fn):
        N.node(kind, doc=doc)(fn)
        return fn
    return register


_control("prim::If", "`xc.if` with two regions; folded to one block when the condition is known")(convert_if)
_control("prim::Loop", "`xc.loop` (for and while forms, carried values, early exit; the trip count may be a "
                      "symbolic size, its first iteration peeled when a carried Optional starts as None)")(convert_loop)
