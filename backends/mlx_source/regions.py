"""Region rules of the MLX source emitter: Python control flow for `xc.if` and `xc.loop`, fused
groups inline. Each rule writes lines through the lowering (`lw.line`, `lw.block`) and returns the
names of the op's results."""
from __future__ import annotations

import numpy as np

from xcomp.ir.core import Operation


def emit_if(lw, op: Operation, args: list, env: dict) -> list:
    outs = [lw._result_name(op, i) for i in range(len(op.results))]
    for i, region in enumerate(op.regions):
        lw.line("if as_bool(%s):" % args[0] if i == 0 else "else:")
        start = len(lw.lines)
        lw.depth += 1
        ys = lw.block(region.block, dict(env))
        for o, y in zip(outs, ys):
            lw.line(f"{o} = {y}")
        if len(lw.lines) == start:
            lw.line("pass")
        lw.depth -= 1
    lw._use_helper(as_bool)
    return outs


def emit_loop(lw, op: Operation, args: list, env: dict) -> list:
    """`xc.loop(trip, cond, *carried)`: body (i, *carried) -> (cond, *carried)."""
    body = op.regions[0].block
    carried = [lw._result_name(op, i) for i in range(len(op.results))]
    go, step = lw.fresh("go"), lw.fresh("step")
    for c, a in zip(carried, args[2:]):
        lw.line(f"{c} = {a}")
    lw.line(f"{go} = as_bool({args[1]})")
    if _unbounded(op.operands[0]):   # TorchScript's `while`: the trip count is the largest int64
        lw.line(f"{step} = 0")
        lw.line(f"while {go}:")
        lw.depth += 1
    else:
        lw.line(f"for {step} in range(as_int({args[0]})):")
        lw.depth += 1
        lw.line(f"if not {go}:")
        lw.line("    break")
    i = lw.fresh("i")
    lw.line(f"{i} = mx.array({step}, dtype=mx.int64)")
    inner = dict(env)
    inner.update(zip(body.args, [i] + carried))
    ys = lw.block(body, inner)
    lw.line(f"{', '.join([go] + carried)} = as_bool({ys[0]}){''.join(', ' + y for y in ys[1:])}")
    if _unbounded(op.operands[0]):
        lw.line(f"{step} += 1")
    lw.depth -= 1
    lw._use_helper(as_bool)
    lw._use_helper(as_int)
    return carried


def _unbounded(trip) -> bool:
    """True when a loop's trip count is a constant >= 2**62 (TorchScript writes `while` so)."""
    op = trip.op
    if op is None or op.name != "xc.constant":
        return False
    value = op.attrs["value"]
    return isinstance(value, (int, float, np.integer)) and value >= 2 ** 62


def emit_fused(lw, op: Operation, args: list, env: dict) -> list:
    body = op.regions[0].block
    lw.line(f"# fused {op.attrs['kind'].value} group")
    return lw.block(body, dict(zip(body.args, args)))


def as_bool(x):
    """A host bool from a Python value or a 0-d MLX array."""
    return bool(x.item()) if hasattr(x, "item") else bool(x)


def as_int(x):
    """A host int from a Python value or a 0-d MLX array."""
    return int(x.item()) if hasattr(x, "item") else int(x)
