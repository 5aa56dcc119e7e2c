"""`CoreMLLowering`: the lowering driver's Core ML user. Values are MIL Vars built with `mb`.

Slices that tile a value along one axis (q, k, v out of one projection) become one `mb.split`.
Region rules: `xc.if` becomes `mb.cond` (both branches built, outer values captured), `xc.loop`
becomes `mb.while_loop` over (iteration, trip count, flag, carried values...), `xc.fused` groups
are inlined (MIL's own passes fuse again) and `xc.call` inlines the callee. Host scalars (a loop
count, a flag) are 0-d MIL tensors inside the program.
"""
from __future__ import annotations

import re

import numpy as np
from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import as_bool, as_dtype
from xcomp.backends.coreml.sizes import RunSizes
from xcomp.backends.coreml.table import const, table_for
from xcomp.backends.lowering import Lowering, call_func, inline_body
from xcomp.errors import LoweringError, XcompError
from xcomp.ir.core import Operation
from xcomp.ir.types import TensorType


def mil_name(name: str, taken: set[str] | None = None) -> str:
    """`name` as a MIL identifier (letters, digits, underscores, not starting with a digit), unique in `taken`."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "v"
    if out[0].isdigit():
        out = "v_" + out
    if taken is not None:
        base, i = out, 1
        while out in taken:
            out, i = f"{base}_{i}", i + 1
        taken.add(out)
    return out


def _emit_cond(lw: "CoreMLLowering", op: Operation, args: list, env: dict) -> list:
    pred = as_bool(args[0])
    if pred.rank:
        pred = mb.reshape(x=pred, shape=np.array([], np.int32))

    def branch(i):
        def fn():
            outs = lw.block(op.regions[i].block, dict(env))
            return tuple(outs) if len(outs) != 1 else outs[0]
        return fn
    out = mb.cond(pred=pred, _true_fn=branch(0), _false_fn=branch(1))
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _emit_while(lw: "CoreMLLowering", op: Operation, args: list, env: dict) -> list:
    trip, flag, carried = as_dtype(args[0], "int32"), as_bool(args[1]), list(args[2:])
    body = op.regions[0].block
    scalar = lambda v: v if v.rank == 0 else mb.reshape(x=v, shape=np.array([], np.int32))  # noqa: E731

    def cond(i, n, c, *vs):
        return mb.logical_and(x=mb.less(x=i, y=n), y=c)

    def step(i, n, c, *vs):
        inner = dict(env)
        inner.update(zip(body.args, [i] + list(vs)))
        out = lw.block(body, inner)
        return tuple([mb.add(x=i, y=np.int32(1)), n, scalar(as_bool(out[0]))] + list(out[1:]))
    init = [mb.const(val=np.int32(0)), scalar(trip), scalar(flag)] + carried
    return list(mb.while_loop(_cond=cond, _body=step, loop_vars=tuple(init)))[3:]


class CoreMLLowering(Lowering):
    """Lowers an optimized program into the MIL function being built (inside `mb`'s context)."""

    region_ops = {"xc.if": _emit_cond, "xc.loop": _emit_while, "xc.fused": inline_body,
                  "xc.call": call_func}

    def __init__(self, program, opset=None):
        super().__init__(program, table=load_table(opset))
        self.names: set[str] = set()
        self.split_of: dict[Operation, tuple[int, int]] = {}   # slice op -> (split group, index)
        self.splits: list[tuple] = []                           # (source, axis, sizes) per group
        self.split_outs: dict[int, list] = {}
        self.run_sizes = RunSizes()   # symbolic sizes as MIL values (sizes.py), bound by `run`

    def run(self, inputs, func: str = "main"):
        """Lower `func`; its symbolic sizes are read from the inputs' shapes first."""
        self.run_sizes = RunSizes()
        self.run_sizes.bind(inputs, [a.type for a in self.program.funcs[func].args])
        return super().run(inputs, func)

    def block(self, block, env):
        self._plan_splits(block)
        return super().block(block, env)

    def _plan_splits(self, block) -> None:
        """Slices of one value along one axis that tile it exactly become one `mb.split`."""
        groups: dict[tuple, list[Operation]] = {}
        for op in block.ops:
            if op.name == "xc.slice" and op.attrs["step"] == 1 and op not in self.split_of:
                src = op.operands[0]
                if isinstance(src.type, TensorType) and isinstance(src.type.shape[op.attrs["axis"] % src.type.rank], int):
                    groups.setdefault((src, op.attrs["axis"] % src.type.rank), []).append(op)
        for (src, axis), ops in groups.items():
            ops = sorted(ops, key=lambda o: o.attrs["start"])
            bounds = [(o.attrs["start"], o.attrs["end"]) for o in ops]
            tiles = (len(ops) > 1 and bounds[0][0] == 0 and bounds[-1][1] == src.type.shape[axis]
                     and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])) and all(lo < hi for lo, hi in bounds))
            if tiles:
                self.splits.append((src, axis, [hi - lo for lo, hi in bounds]))
                for i, o in enumerate(ops):
                    self.split_of[o] = (len(self.splits) - 1, i)

    def op(self, op, env):
        if op not in self.split_of:
            return super().op(op, env)
        group, index = self.split_of[op]
        if group not in self.split_outs:
            src, axis, sizes = self.splits[group]
            outs = mb.split(x=env[src], split_sizes=np.array(sizes, np.int32), axis=axis)
            self.split_outs[group] = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        return [self.split_outs[group][index]]

    def weight(self, name, type):
        w = const(self.program.weights[name], type)
        return mb.const(val=w, name=mil_name("w_" + name, self.names))

    def apply(self, op, args):
        empty = [t for t in (r.type for r in op.results) if isinstance(t, TensorType) and 0 in t.shape]
        if empty:
            raise LoweringError(f"coreml cannot lower {op.name}: Core ML tensors have no zero-size dims ({empty[0]})")
        self.run_sizes.operand_types = [v.type for v in op.operands]   # for rules over symbolic sizes
        try:
            return super().apply(op, args)
        except XcompError:
            raise
        except Exception as e:  # MIL's builder refused the op (types, ranks it does not support)
            where = f" at {op.loc}" if op.loc else ""
            raise LoweringError(f"coreml cannot lower {op.name}{where}: {type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''}") from e


def load_table(opset=None) -> dict:
    """Import every Core ML lowering family and return the filled table (with the rules of later
    opsets up to deployment target `opset`)."""
    from xcomp.backends.coreml import elementwise, factory, nn, reduction, shape  # noqa: F401
    return table_for(opset)
