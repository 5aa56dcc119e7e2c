"""Fusion planning: partition each block into fusion groups, written in the IR as `xc.fused` ops.

Every backend receives the same groups. The format of a group, for backends that emit kernels::

    %r:2 = "xc.fused"(%a, %w) ({
    ^bb0(%arg0: tensor<8x16xf32>, %arg1: tensor<16xf32>):     // block args mirror the operands
      %c = "xc.constant"() {dtype = f32, value = 0.5} : () -> tensor<f32>   // 0-d constants inlined
      %0 = "xc.add"(%arg0, %arg1) : ...                      // body: primitive ops in order
      %1 = "xc.mul"(%0, %c) : ...
      "xc.yield"(%0, %1) : ...                               // yield = the group's outputs
    }) {kind = "elementwise"} : (...) -> (...)

- operands are the group's inputs (tensors it reads), each once; block arguments mirror them;
- the body holds the group's ops in program order (0-d constants are copied in, not passed);
- `xc.yield` lists every value the group computes that is used outside it (or returned);
- `kind` (`FusionKind`) says which kernel skeleton fits:
  - `elementwise`: every body op is elementwise with one result shape (the iteration space);
    operands broadcast to it;
  - `reduction`: a row kernel. All reductions reduce the same full shape F over the same axes A;
    every other op has shape F (prologue/epilogue, e.g. softmax's `exp(x - max)`) or F reduced over
    A (row values, e.g. `rsqrt(var + eps)`), so softmax, log_softmax, layer/rms norm, mean/var and
    logsumexp each become one group;
  - `matmul_epilogue` / `conv_epilogue`: one `xc.matmul` / `xc.conv` (the first body op) followed by
    elementwise ops of its result shape (bias, activation, residual add, scaling).

Groups partition the ops (nothing is computed twice), never form a cycle with the ops outside them,
and read plus write at most `max_kernel_buffers` buffers (MLX caps a Metal kernel at 31; a target
may set its own `max_kernel_buffers`). Views, gathers and ops with regions stay outside groups.
`kernels_per_call(program)` counts device launches; `fusion_groups(program)` lists the groups.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Optional

from xcomp.ir.core import Block, Operation, Program, Region, Value
from xcomp.ir.types import TensorType
from xcomp.ops import registry
from xcomp.ops.registry import Trait
from xcomp.ops.structural import FusionKind
from xcomp.passes.manager import Pass, register_pass
from xcomp.rewrite import blocks_of

ANCHORS = {"xc.matmul": FusionKind.MATMUL_EPILOGUE, "xc.conv": FusionKind.CONV_EPILOGUE}
DEFAULT_MAX_BUFFERS = 31


def _last_dims(op: Operation) -> tuple[int, ...]:
    rank = op.operands[0].type.rank
    return tuple(range(rank - op.attrs["normalized_ndim"], rank))


# Row ops a target keeps whole (it lowers them itself): they join groups like a reduction over these
# axes, so `residual add -> layer_norm` is one group on MLX as well as after decomposition.
ROW_OPS = {
    "xc.softmax": lambda op: (op.attrs["axis"],),
    "xc.log_softmax": lambda op: (op.attrs["axis"],),
    "xc.layer_norm": _last_dims,
    "xc.rms_norm": _last_dims,
}
EW, RED = FusionKind.ELEMENTWISE, FusionKind.REDUCTION


def _inlined_constant(v: Value) -> bool:
    """0-d constants are copied into a group's body instead of being passed in."""
    op = v.op
    return op is not None and op.name == "xc.constant"


def reduction_axes(op: Operation) -> Optional[tuple[int, ...]]:
    """The normalized axes a REDUCTION-trait op reduces (from `axes`, `axis` or `dim`), or None."""
    t = op.operands[0].type
    if not isinstance(t, TensorType):
        return None
    for key in ("axes", "axis", "dim"):
        if key in op.attrs:
            v = op.attrs[key]
            axes = (() if v is None else (v,)) if not isinstance(v, (tuple, list)) else tuple(v)
            if not axes:
                return tuple(range(t.rank))
            return tuple(sorted(a % max(t.rank, 1) for a in axes))
    return None


@dataclass(eq=False)
class Group:
    """A set of ops planned to run as one kernel, with its iteration space."""

    ops: set
    kind: FusionKind
    shape: tuple                 # the full iteration shape F
    axes: tuple = ()             # reduced axes of F (reduction groups)
    anchor: Optional[Operation] = None

    def row_shapes(self) -> set:
        keep = tuple(1 if i in self.axes else d for i, d in enumerate(self.shape))
        drop = tuple(d for i, d in enumerate(self.shape) if i not in self.axes)
        return {self.shape, keep, drop}


def classify(op: Operation) -> Optional[Group]:
    """The one-op group `op` starts in, or None when `op` is never fused."""
    if op.regions or len(op.results) != 1 or not isinstance(op.results[0].type, TensorType):
        return None
    if not op.opdef.has(Trait.PURE) or op.opdef.is_structural:
        return None
    out = op.results[0].type.shape
    if op.name in ANCHORS:
        return Group({op}, ANCHORS[op.name], out, anchor=op)
    if op.opdef.has(Trait.ELEMENTWISE):
        return Group({op}, EW, out)
    if op.name in ROW_OPS:
        rank = op.operands[0].type.rank
        axes = tuple(sorted(a % max(rank, 1) for a in ROW_OPS[op.name](op)))
        return Group({op}, RED, op.operands[0].type.shape, axes)
    if op.opdef.has(Trait.REDUCTION) and op.operands:
        axes = reduction_axes(op)
        if axes is not None:
            return Group({op}, RED, op.operands[0].type.shape, axes)
    return None


def combine(a: Group, b: Group) -> Optional[Group]:
    """The group holding both, if their iteration spaces and kinds allow it (no cycle check here)."""
    ops = a.ops | b.ops
    if a.kind is EW and b.kind is EW:
        return Group(ops, EW, a.shape) if a.shape == b.shape else None
    if EW in (a.kind, b.kind) and RED in (a.kind, b.kind):
        r, e = (a, b) if a.kind is RED else (b, a)
        return Group(ops, RED, r.shape, r.axes) if e.shape in r.row_shapes() else None
    if a.kind is RED and b.kind is RED:
        return Group(ops, RED, a.shape, a.axes) if (a.shape, a.axes) == (b.shape, b.axes) else None
    if {a.kind, b.kind} & {FusionKind.MATMUL_EPILOGUE, FusionKind.CONV_EPILOGUE}:
        m, e = (a, b) if a.anchor is not None else (b, a)
        if e.anchor is not None or e.kind is not EW or e.shape != m.shape:
            return None
        if any(v.op in e.ops for v in m.anchor.operands):
            return None  # the elementwise ops feed the anchor: a prologue, not an epilogue
        return Group(ops, m.kind, m.shape, anchor=m.anchor)
    return None


@dataclass
class _Planner:
    """Greedy producer-into-consumer merging over one block."""

    block: Block
    max_buffers: int
    group_of: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)     # op -> top-level ops of this block using it
    escaping: set = field(default_factory=set)    # values used outside this block (or returned)

    def __post_init__(self):
        top = {}
        for op in self.block.ops:
            for inner in op.walk():
                top[inner] = op
        producer = {r: op for op in self.block.ops for r in op.results}
        for op in self.block.ops:
            self.users[op] = []
        for op in self.block.ops:
            for inner in op.walk():
                for v in inner.operands:
                    p = producer.get(v)
                    if p is not None and p is not op and op not in self.users[p]:
                        self.users[p].append(op)
                    if op.opdef.is_terminator:
                        self.escaping.add(v)
        for op in self.block.ops:
            g = classify(op)
            if g is not None:
                self.group_of[op] = g

    def unit(self, op: Operation) -> set:
        g = self.group_of.get(op)
        return g.ops if g is not None else {op}

    def creates_cycle(self, ops: set) -> bool:
        """True if some op outside `ops` is both reachable from and reaching `ops`."""
        frontier = [u for o in ops for u in self.users[o] if u not in ops]
        seen = set()
        while frontier:
            op = frontier.pop()
            if op in seen:
                continue
            seen.add(op)
            for member in self.unit(op):
                for u in self.users[member]:
                    if u in ops:
                        return True
                    if u not in seen:
                        frontier.append(u)
        return False

    def buffers(self, ops: set) -> int:
        inputs, outputs = set(), set()
        for op in ops:
            for v in op.operands:
                if (v.op not in ops) and not _inlined_constant(v):
                    inputs.add(v)
            for r in op.results:
                if r in self.escaping or any(u not in ops for u in self.users_of_value(r)):
                    outputs.add(r)
        return len(inputs) + len(outputs)

    def users_of_value(self, v: Value) -> list:
        return [u for u in self.users.get(v.op, []) if any(v in i.operands for i in u.walk())]

    def try_merge(self, producer: Operation, consumer: Operation) -> bool:
        a, b = self.group_of.get(producer), self.group_of.get(consumer)
        if a is None or b is None or a is b:
            return False
        g = combine(a, b)
        if g is None or self.buffers(g.ops) > self.max_buffers or self.creates_cycle(g.ops):
            return False
        for op in g.ops:
            self.group_of[op] = g
        return True

    def plan(self) -> list[Group]:
        for op in self.block.ops:
            if op not in self.group_of:
                continue
            for v in op.operands:
                if v.op is not None and v.op.parent is self.block:
                    self.try_merge(v.op, op)
        groups = {id(g): g for g in self.group_of.values()}
        return [g for g in groups.values() if len(g.ops) > 1]


def _materialize(block: Block, groups: list[Group]) -> None:
    """Replace each group's ops by one `xc.fused` op and re-sort the block topologically."""
    position = {op: i for i, op in enumerate(block.ops)}
    member_of = {op: g for g in groups for op in g.ops}
    users: dict[Value, set] = {}
    for u in block.ops:
        unit = id(member_of[u]) if u in member_of else id(u)
        for inner in u.walk():
            for v in inner.operands:
                users.setdefault(v, set()).add(unit)
    table, fused_of = {}, {}
    for g in groups:
        members = sorted(g.ops, key=position.get)
        inputs, outputs = [], []
        for op in members:
            for v in op.operands:
                if v.op not in g.ops and not _inlined_constant(v) and v not in inputs:
                    inputs.append(v)
            outputs.extend(r for r in op.results if users.get(r, set()) - {id(g)})
        body = Block([v.type for v in inputs])
        mapping = dict(zip(inputs, body.args))
        for op in members:
            for v in op.operands:
                if _inlined_constant(v) and v not in mapping:
                    c = v.op
                    clone = body.append(Operation(c.opdef, [], dict(c.attrs), [v.type], [], c.loc))
                    mapping[v] = clone.results[0]
            op.operands = [mapping.get(v, v) for v in op.operands]
            body.append(op)
        body.append(Operation(registry.get("yield"), list(outputs), {}, []))
        fused = Operation(registry.get("fused"), inputs, {"kind": g.kind}, [v.type for v in outputs],
                          [Region([body])], members[0].loc)
        table.update(zip(outputs, fused.results))
        fused_of[id(g)] = fused
        position[fused] = position[members[0]]
    units, placed = [], set()
    for op in block.ops:
        unit = fused_of[id(member_of[op])] if op in member_of else op
        if unit not in placed:
            placed.add(unit)
            units.append(unit)
    new_fused = set(fused_of.values())
    for u in units:
        if u in new_fused:
            u.operands = [table.get(v, v) for v in u.operands]
            continue
        for inner in u.walk():
            inner.operands = [table.get(v, v) for v in inner.operands]
    _toposort(block, units, position)


def _toposort(block: Block, units: list[Operation], position: dict) -> None:
    produced = {r: u for u in units for r in u.results}
    deps = {u: set() for u in units}
    users = {u: [] for u in units}
    for u in units:
        for inner in u.walk():
            for v in inner.operands:
                p = produced.get(v)
                if p is not None and p is not u and p not in deps[u]:
                    deps[u].add(p)
                    users[p].append(u)
    ready = [(position[u], i, u) for i, u in enumerate(units) if not deps[u]]
    heapq.heapify(ready)
    order, count = [], {u: len(deps[u]) for u in units}
    index = {u: i for i, u in enumerate(units)}
    while ready:
        _, _, u = heapq.heappop(ready)
        order.append(u)
        for w in users[u]:
            count[w] -= 1
            if count[w] == 0:
                heapq.heappush(ready, (position[w], index[w], w))
    if len(order) != len(units):
        raise AssertionError("fusion produced a cycle")  # creates_cycle prevents this
    terminator = [u for u in order if u.opdef.is_terminator]
    block.ops = [u for u in order if not u.opdef.is_terminator] + terminator
    for u in block.ops:
        u.parent = block


def fuse_block(block: Block, scope: Block, max_buffers: int = DEFAULT_MAX_BUFFERS) -> bool:
    """Plan and materialize the fusion groups of one block; returns whether any group formed."""
    planner = _Planner(block, max_buffers)
    groups = planner.plan()
    if not groups:
        return False
    _materialize(block, groups)
    return True


@register_pass
class Fuse(Pass):
    """Partition every block (but fused bodies) into fusion groups."""

    name = "fuse"

    def run(self, program: Program) -> bool:
        limit = getattr(self.target, "max_kernel_buffers", DEFAULT_MAX_BUFFERS)
        changed = False
        for block, scope in list(blocks_of(program)):
            parent = block.parent
            if parent is not None and _is_fused_body(program, block):
                continue
            changed |= fuse_block(block, scope, limit)
        if changed:
            from xcomp.passes.dce import DeadCodeElimination
            DeadCodeElimination().run(program)
        return changed


def _is_fused_body(program: Program, block: Block) -> bool:
    return any(op.name == "xc.fused" and op.regions[0].block is block for op in program.walk())


# -- what a program costs ----------------------------------------------------------------------
def _block_kernels(program: Program, block: Block) -> int:
    n = 0
    for op in block.ops:
        n += KERNELS.get(op.name, _default_kernels)(program, op)
    return n


def _default_kernels(program: Program, op: Operation) -> int:
    d = op.opdef
    return 0 if d.is_structural or d.has(Trait.VIEW) else 1


KERNELS = {  # launches per op for ops that are not one kernel each
    "xc.fused": lambda p, op: 1,
    "xc.call": lambda p, op: _block_kernels(p, p.funcs[op.attrs["callee"].name].body),
    "xc.if": lambda p, op: max(_block_kernels(p, r.block) for r in op.regions),
    "xc.loop": lambda p, op: _block_kernels(p, op.regions[0].block),
}


def kernels_per_call(program: Program, func: str = "main") -> int:
    """Device launches one call makes: one per fused group and per unfused compute op.

    Structural ops (weights, constants) and VIEW ops (reshape, transpose, slice, broadcast: strided
    views on every backend) launch nothing; `xc.if` counts its larger branch and `xc.loop` one
    iteration of its body; calls count their callee.
    """
    return _block_kernels(program, program.funcs[func].body)


@dataclass
class GroupInfo:
    """One fused group: its kind and the names of the ops inside (0-d constants left out)."""

    kind: FusionKind
    ops: list[str]

    def __str__(self) -> str:
        return f"{self.kind.value}[{', '.join(o.removeprefix('xc.') for o in self.ops)}]"


def fusion_groups(program: Program) -> list[GroupInfo]:
    """Every `xc.fused` group of the program, in program order."""
    return [GroupInfo(op.attrs["kind"], [o.name for o in op.regions[0].block.ops
                                         if not o.opdef.is_structural])
            for op in program.walk() if op.name == "xc.fused"]
