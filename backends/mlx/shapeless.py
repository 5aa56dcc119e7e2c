"""`mx.compile(shapeless=True)` for programs with symbolic sizes, where the lowered graph allows it.

MLX traces a function once per input shape under `mx.compile`; with `shapeless=True` it traces once
and replays the graph at every shape. That is only right when nothing the trace computed in Python
depends on the sizes: the MLX calls, their arguments and the helpers' shape reads must be the same at
every binding (`mx.reshape(x, (2, 16, 4))` bakes 16 in; `mx.softmax(x, axis=-1)` does not).

`blockers(program)` finds the ops that break this, by lowering each op's rule at two different
bindings of the size names and comparing what MLX would be called with: the rule chosen, its
positional and keyword arguments, and whether it is a helper that reads `.shape`/`.size` of an
operand with a symbolic dim. No blockers: the `mlx` target compiles shapeless; otherwise it keeps one
traced graph per concrete shape (MLX's own cache under `mx.compile`), and `Runner.reason` says why.
The shapeless graph is checked cheaply on every call (each result's shape against the program's
result types at that call's sizes); a mismatch or an MLX error falls back to per-shape compilation
for good, so a missed dependency costs speed, never a wrong shape.
"""
from __future__ import annotations

import re

from xcomp.guards import bind_types, concrete_op, concrete_type
from xcomp.ir import symbolic as sym
from xcomp.ir.types import TensorType

_SHAPE_READ = re.compile(r"\.(shape|size)\b")


def _bindings(program) -> list[dict[str, int]]:
    names: list[str] = []
    for op in program.walk():
        for v in list(op.operands) + list(op.results):
            for d in getattr(v.type, "shape", ()):
                for n in sym.names(d) if isinstance(d, str) else ():
                    if n not in names:
                        names.append(n)
    for a in program.main.args:
        for d in getattr(a.type, "shape", ()):
            for n in sym.names(d) if isinstance(d, str) else ():
                if n not in names:
                    names.append(n)
    return [{n: 12 + 5 * k for k, n in enumerate(names)}, {n: 30 + 7 * k for k, n in enumerate(names)}]


def _reads_shapes(rule) -> bool:
    import inspect
    from xcomp.backends.mlx.table import helper_closure
    if not callable(rule.callee):
        return False
    try:
        return any(_SHAPE_READ.search(inspect.getsource(f)) for f in helper_closure(rule.callee).values())
    except (OSError, TypeError):
        return True


def _lowered(op, env, rule):
    from xcomp.backends.mlx.table import Shape
    attrs, outs = concrete_op(op, env)
    ins = []
    for o in op.operands:
        t = concrete_type(o.type, env)
        ins.append(Shape(t.shape, t.dtype.is_float) if isinstance(t, TensorType) else o)
    chosen = rule.select(attrs, ins, outs)
    _, pos, kw = chosen.arguments(list(ins), attrs, ins, outs)
    return chosen, pos, kw


def reshape_plan(in_shape, out_shape) -> list[tuple[str, dict]] | None:
    """A reshape as MLX calls that replay at any size, or None. MLX's shapeless replay infers the
    one -1 of a reshape, and the shapes of flatten/unflatten-to-static-sizes/expand_dims/squeeze (an
    unflatten's -1 and every explicit size are baked in). So: a target shape with one symbolic dim is
    a reshape with -1 there; otherwise the dims both shapes share at either end stay and the middle
    is flattened to one axis and split into static sizes."""
    a, b = list(in_shape), list(out_shape)
    if sum(isinstance(d, str) for d in b) <= 1:
        return [("reshape", {"shape": tuple(-1 if isinstance(d, str) else d for d in b)})]
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
        s += 1
    mid_in, mid_out = a[p:len(a) - s], b[p:len(b) - s]
    if len(mid_out) > 1 and any(isinstance(d, str) for d in mid_out):
        return None
    steps: list[tuple[str, dict]] = []
    if not mid_in:
        steps.append(("expand_dims", {"axis": p}))
    elif len(mid_in) > 1:
        steps.append(("flatten", {"start_axis": p, "end_axis": p + len(mid_in) - 1}))
    if not mid_out:
        steps.append(("squeeze", {"axis": p}))
    elif len(mid_out) > 1:
        steps.append(("unflatten", {"axis": p, "shape": tuple(mid_out)}))
    return steps


def _sources(program) -> dict[str, tuple[int, int]]:
    """Size name -> (input, axis) of an input dim that is exactly that name."""
    out: dict[str, tuple[int, int]] = {}
    for i, arg in enumerate(program.main.args):
        for axis, d in enumerate(getattr(arg.type, "shape", ())):
            if isinstance(d, str) and sym.is_name(d):
                out.setdefault(d, (i, axis))
    return out


def _ones(mx, inputs, src):
    """A vector of ones as long as input `src[0]`'s axis `src[1]`, computed from that input (a
    reduction over its other axes), so a shapeless replay gives it the new length."""
    x = inputs[src[0]]
    others = tuple(a for a in range(x.ndim) if a != src[1])
    return mx.ones_like(mx.sum(x, axis=others) if others else x, dtype=mx.float32)


def _arange_plan(op, sources):
    from xcomp.backends.mlx.dtypes import mx_dtype
    n, (start, step) = op.results[0].type.shape[0], (op.attrs["start"], op.attrs["step"])
    if n not in sources or isinstance(start, str) or isinstance(step, str):
        return None
    dtype, src = op.results[0].type.dtype, sources[n]

    def run(mx, args, inputs):
        pos = mx.cumsum(_ones(mx, inputs, src), axis=0) - 1
        return (start + step * pos).astype(mx_dtype(dtype))
    return run


def _full_plan(op, sources):
    from xcomp.backends.mlx.dtypes import mx_dtype
    from xcomp.ops.factory import fill_value
    t = op.results[0].type
    if isinstance(op.attrs["value"], str) or any(isinstance(d, str) and d not in sources for d in t.shape):
        return None
    value = fill_value(op.attrs["value"], t.dtype).item()

    def run(mx, args, inputs):
        work = mx.float32 if t.dtype.is_bool else mx_dtype(t.dtype)
        out = mx.array(value, dtype=work)
        for axis, d in enumerate(t.shape):
            if isinstance(d, str):
                v = _ones(mx, inputs, sources[d]) * 0
            elif d != 1:
                v = mx.zeros((d,))
            else:
                continue
            out = out + v.astype(work).reshape([-1 if a == axis else 1 for a in range(t.rank)])
        if out.ndim < t.rank:  # every dim 1
            out = out.reshape([1] * t.rank)
        return out.astype(mx_dtype(t.dtype))
    return run


def _reshape_plan(op, sources):
    src, dst = op.operands[0].type.shape, op.results[0].type.shape
    steps = reshape_plan(src, dst)
    if steps is None:
        return None

    def run(mx, args, inputs):
        x = args[0]
        for name, kw in steps:
            x = getattr(mx, name)(x, **kw)
        return x
    return run


def _slice_plan(op, sources):
    """A slice of a static axis that is one of its equal blocks (a chunk: `qkv[..., D:2*D]`), as
    the block axis split off (`mx.unflatten`), a one-hot weighting and a sum over it: MLX has no
    shapeless slice (Slice, Split and Gather cannot replay at a new shape)."""
    x = op.operands[0]
    axis, start, end, step = (op.attrs[k] for k in ("axis", "start", "end", "step"))
    n = x.type.shape[axis]
    if not all(isinstance(v, int) for v in (n, start, end, step)) or step != 1 or end <= start:
        return None
    length = end - start
    if n % length or start % length:
        return None
    blocks, k = n // length, start // length
    onehot = [0.0] * blocks
    onehot[k] = 1.0
    rank = x.type.rank

    def run(mx, args, inputs):
        y = mx.unflatten(args[0], axis, (blocks, length))
        w = mx.array(onehot, dtype=y.dtype).reshape([-1 if a == axis else 1 for a in range(rank + 1)])
        return mx.sum(y * w, axis=axis)
    return run


def _sdpa_reads_static(op) -> bool:
    """`nn.sdpa` reads q/k's head count and head size (and, only when causal, their lengths, to
    build the mask: MLX's own causal mask also replays wrongly at a new length): safe when those are
    static and the attention is not causal."""
    q, k = op.operands[0].type.shape, op.operands[1].type.shape
    return not op.attrs["is_causal"] and len(q) >= 3 and all(isinstance(d, int) for d in (q[-1], k[-1], q[-3], k[-3]))


# helpers that read operand shapes, and when what they read cannot change with the sizes
STATIC_READS = {"xc.sdpa": _sdpa_reads_static}


def _reads_only_static(op) -> bool:
    check = STATIC_READS.get(op.name)
    return check is not None and check(op)


PLANS = {"xc.reshape": _reshape_plan, "xc.arange": _arange_plan, "xc.full": _full_plan, "xc.slice": _slice_plan}
# MLX calls a shapeless graph cannot replay at a new shape (no output_shapes, or a baked shape)
NOT_SHAPELESS = {"[]", "mx.take", "mx.take_along_axis", "mx.split", "mx.slice", "mx.slice_update",
                 "mx.put_along_axis", "mx.gather_mm", "mx.as_strided", "mx.pad", "mx.repeat", "mx.tile",
                 "mx.topk"}


def plans(program) -> dict[int, object]:
    """id(op) -> `run(mx, args, inputs)`: a shape-agnostic lowering of each op with symbolic sizes
    that has one (`PLANS`: reshapes through `reshape_plan`; arange and full over input sizes built
    from those inputs, as a cumulative sum of ones and a broadcast sum of zero vectors)."""
    sources = _sources(program)
    out = {}
    for op in program.walk():
        make = PLANS.get(op.name)
        if make is None:
            continue
        types = [v.type for v in list(op.operands) + list(op.results)]
        if op.name == "xc.slice" or any(isinstance(d, str) for t in types for d in getattr(t, "shape", ())):
            run = make(op, sources)
            if run is not None:
                out[id(op)] = run
    return out


def blockers(program) -> list[str]:
    """The ops whose MLX lowering depends on the sizes (`op name: why`), empty when a shapeless
    trace of the program is valid at every binding (reshapes with a `reshape_plan` count as
    shape-agnostic: the `mlx` target lowers them through the plan)."""
    from xcomp.backends.mlx.table import MLX_RULES
    from xcomp.backends.mlx.target import load_table
    load_table()
    envs = _bindings(program)
    found: list[str] = []
    planned = plans(program)
    for op in program.walk():
        if op.opdef.is_terminator or op.regions or op.name == "xc.weight" or id(op) in planned:
            continue
        rule = MLX_RULES.get(op.name)
        if rule is None:
            continue
        callees = {r.callee_name for r in (rule.alternatives or (rule,))}
        if callees & NOT_SHAPELESS:
            found.append(f"{op.name}: MLX cannot replay {', '.join(sorted(callees & NOT_SHAPELESS))} shapeless")
            continue
        symbolic = any(isinstance(d, str) for v in list(op.operands) + list(op.results)
                       for d in getattr(v.type, "shape", ())) or any(
            isinstance(v, str) or (isinstance(v, tuple) and any(isinstance(d, str) for d in v))
            for v in op.attrs.values())
        if not symbolic:
            continue
        try:
            a, b = (_lowered(op, env, rule) for env in envs)
        except Exception as e:  # noqa: BLE001  (a rule that cannot even be asked: not shapeless)
            found.append(f"{op.name}: {type(e).__name__}")
            continue
        if a[0] is not b[0] or a[1] != b[1] or a[2] != b[2]:
            diff = sorted(k for k in set(a[2]) | set(b[2]) if a[2].get(k) != b[2].get(k)) or ["arguments"]
            found.append(f"{op.name}: {', '.join(diff)} follow the sizes")
        elif _reads_shapes(a[0]) and any(isinstance(d, str) for o in op.operands for d in getattr(o.type, "shape", ())) \
                and not _reads_only_static(op):
            found.append(f"{op.name}: helper {a[0].callee_name} reads operand shapes")
    return found


class Runner:
    """Runs an MLX function compiled shapeless, checking result shapes; falls back to per-shape
    `mx.compile` (for good) on a mismatch or an MLX error. `shapeless` says which is in use,
    `reason` why not shapeless."""

    def __init__(self, fn, program, reason: str = ""):
        import mlx.core as mx
        self.program = program
        self.arg_types = [a.type for a in program.main.args]
        self.result_types = list(program.main.result_types)
        self.per_shape = mx.compile(fn)
        self.shapeless = not reason
        self.reason = reason
        self.compiled = mx.compile(fn, shapeless=True) if self.shapeless else None
        self._checked: set = set()

    def __call__(self, inputs):
        inputs = list(inputs)
        if not self.shapeless:
            return self.per_shape(inputs)
        try:
            outs = self.compiled(inputs)
        except Exception as e:  # noqa: BLE001  (MLX cannot replay this graph shapeless)
            self._give_up(f"MLX refused the shapeless graph: {type(e).__name__}: {str(e).splitlines()[0]}")
            return self.per_shape(inputs)
        key = tuple(tuple(x.shape) for x in inputs)
        if key not in self._checked:
            env = bind_types(self.arg_types, [tuple(x.shape) for x in inputs])
            want = [tuple(concrete_type(t, env).shape) for t in self.result_types if isinstance(t, TensorType)]
            got = [tuple(o.shape) for o, t in zip(outs, self.result_types) if isinstance(t, TensorType)]
            if got != want:
                self._give_up(f"the shapeless graph gave shapes {got} where the program says {want}")
                return self.per_shape(inputs)
            self._checked.add(key)
        return outs

    def _give_up(self, why: str) -> None:
        self.shapeless, self.reason, self.compiled = False, why, None
