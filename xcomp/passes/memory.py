"""Memory planning: liveness of intermediates and buffer reuse, for backends that allocate (C++).

`plan_memory(program)` walks `@main` in order (a fused group is one step; its body's temporaries
live in registers) and gives every intermediate tensor a live interval `[defined, last use]`.
VIEW ops alias their operand, so the operand lives as long as its views. Intermediates are
assigned to buffers greedily in definition order: a buffer whose last occupant has died and whose
size fits is reused (best fit), else a new buffer is allocated. Inputs, weights and outputs are
never reused (the caller owns them).

Symbolic sizes: every interval and buffer also has its size as a size expression (`size`,
`buffer_sizes`, `xcomp.ir.symbolic`); a symbolic intermediate reuses a free buffer whose size is a
whole multiple of its own for every binding (equal expressions, or `4*S*T` for `2*S*T`).
`bytes_at(sizes)` gives the arena a backend allocates for one call's sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from xcomp.ir import symbolic as sym
from xcomp.ir.core import Program, Value
from xcomp.ir.types import TensorType
from xcomp.ops.registry import Trait


@dataclass
class Interval:
    """The life of one intermediate: defined at step `start`, last read at step `end`."""

    value: Value
    start: int
    end: int
    nbytes: int | None     # None: symbolic size
    size: int | str = 0    # bytes as a size expression (an int when static)


@dataclass
class MemoryPlan:
    """Buffer assignment of `@main`'s intermediates.

    intervals: one per intermediate tensor (views excluded: they alias `alias_of`).
    buffer_of: value -> buffer index; buffers: size in bytes of each buffer (None: symbolic).
    """

    intervals: list[Interval] = field(default_factory=list)
    buffer_of: dict = field(default_factory=dict)
    buffers: list = field(default_factory=list)
    alias_of: dict = field(default_factory=dict)
    buffer_sizes: list = field(default_factory=list)  # bytes of each buffer as a size expression

    def bytes_at(self, sizes: dict) -> int:
        """Bytes of all buffers for one binding of the symbolic sizes (`{"S": 128}`)."""
        return sum(sym.evaluate(b, sizes) for b in self.buffer_sizes)

    @property
    def naive_bytes(self) -> int:
        """Bytes if every intermediate had its own buffer."""
        return sum(i.nbytes or 0 for i in self.intervals)

    @property
    def planned_bytes(self) -> int:
        return sum(b or 0 for b in self.buffers)

    def __str__(self) -> str:
        return (f"{len(self.intervals)} intermediates in {len(self.buffers)} buffers: "
                f"{self.planned_bytes} bytes planned, {self.naive_bytes} without reuse")


def _nbytes(t) -> int | None:
    if isinstance(t, TensorType) and t.is_static:
        return t.numel * t.dtype.itemsize
    return None


def _size(t) -> int | str:
    return sym.mul(sym.product(t.shape), t.dtype.itemsize) if isinstance(t, TensorType) else 0


def _holds(buffer: int | str, need: int | str) -> bool:
    """Whether a buffer of `buffer` bytes holds `need` bytes for every binding of the sizes."""
    if isinstance(buffer, int) and isinstance(need, int):
        return buffer >= need
    ratio = sym.exact_div(buffer, need)
    return isinstance(ratio, int) and ratio >= 1


def plan_memory(program: Program, func: str = "main", views=frozenset(), into=None) -> MemoryPlan:
    """Liveness and buffer reuse for the intermediates of `func` (see the module docstring). `views`:
    ops a backend lowers to views of their operand (as it does VIEW ops); `into`: {value: the value
    of its only reader that its producer writes instead} (that value then lives from the producer on)."""
    into = into or {}
    written = set(into.values())
    body = program.funcs[func].body
    plan = MemoryPlan()
    root: dict[Value, Value] = {}     # view result -> the intermediate it aliases
    start, end, pinned = {}, {}, set(body.args)
    for step, op in enumerate(body.ops):
        for inner in op.walk():
            for v in inner.operands:
                r = root.get(v, v)
                end[r] = max(end.get(r, step), step)
        if op.opdef.is_terminator:
            pinned.update(root.get(v, v) for v in op.operands)
            continue
        if op.opdef.is_structural:
            pinned.update(op.results)
            continue
        if (op.opdef.has(Trait.VIEW) or op in views) and op.operands:
            for r in op.results:
                root[r] = root.get(op.operands[0], op.operands[0])
                plan.alias_of[r] = root[r]
            continue
        for r in op.results:
            if r in into:
                start[into[r]], root[r] = step, into[r]
                end.setdefault(into[r], step)
            elif isinstance(r.type, TensorType) and r not in written:
                start[r] = step
                end.setdefault(r, step)
    free: list[int] = []               # buffer indices whose occupant died
    expiring: list[tuple[int, int]] = []
    for v in sorted(start, key=lambda v: start[v]):
        if v in pinned:
            continue
        iv = Interval(v, start[v], end[v], _nbytes(v.type), _size(v.type))
        plan.intervals.append(iv)
        for item in [e for e in expiring if e[0] < iv.start]:
            expiring.remove(item)
            free.append(item[1])
        fits = [b for b in free if _holds(plan.buffer_sizes[b], iv.size)]
        if fits:
            buf = min(fits, key=lambda b: (isinstance(plan.buffer_sizes[b], str), plan.buffers[b] or 0))
            free.remove(buf)
        else:
            buf = len(plan.buffers)
            plan.buffers.append(iv.nbytes)
            plan.buffer_sizes.append(iv.size)
        plan.buffer_of[v] = buf
        expiring.append((iv.end, buf))
    return plan
