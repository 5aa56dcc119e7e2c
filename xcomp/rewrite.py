"""Declarative rewrites: patterns as data, run by one driver.

A rewrite is a pair `(pattern, fn)`. The pattern is a tree of `Pat` nodes matched against the
value an op produces (the *root*); `fn(m)` receives a `Match` (bindings by name, the root op and a
`Builder` that inserts before the root) and returns the replacement value(s), or None to decline.
A `PatternSet` indexes its rules by op name and trait; `apply_patterns(program, patterns)` runs
them to a fixpoint over every block (regions included), as tinygrad's `graph_rewrite` does::

    X = Pat.var("x")
    CANON = PatternSet([
        (Pat("mul", X, Pat.splat(1)), lambda m: m.x),          # x * 1 -> x
        (Pat("neg", Pat("neg", X)), lambda m: m.x),            # --x -> x
    ])

Operands of COMMUTATIVE ops match in either order. A name bound twice must bind the same value
(`Pat("sub", X, X)` is `x - x`). A replacement whose type differs from the root's result type is
refused, so a pattern need not repeat broadcasting rules. Also here: small IR utilities the passes
share (`replace_uses`, `clone_op`, `constant_value`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Operation, Program, Region, Value
from xcomp.ops.registry import Trait

CONSTANT_OPS = ("xc.constant", "xc.dense")


def constant_value(v: Value) -> Optional[np.ndarray]:
    """The numpy value of `v` when an `xc.constant`/`xc.dense` op produces it, else None."""
    op = v.op
    if op is None or op.name not in CONSTANT_OPS:
        return None
    return np.asarray(op.attrs["value"]).astype(op.attrs["dtype"].np)


def splat_value(v: Value) -> Optional[Any]:
    """The single element of a constant whose elements are all equal (a Python scalar), else None."""
    c = constant_value(v)
    if c is None or c.size == 0:
        return None
    first = c.reshape(-1)[0]
    return first.item() if np.all(c == first) else None


OpSpec = Union[str, Trait, tuple, None]


class Pat:
    """A pattern node: matches a value whose producing op fits `op` and whose operands match `src`.

    op: an op name (`"mul"` or `"xc.mul"`), a tuple of names, a `Trait`, or None (any op).
    src: operand patterns; omitted means any operands. `each` matches every operand (variadic).
    attrs: exact attribute values the op must have, or a predicate on the attrs dict.
    where: a predicate on the matched value. name: bind the matched value under this name.
    """

    def __init__(self, op: OpSpec = None, *src: "Pat", name: str | None = None,
                 attrs: dict | Callable[[dict], bool] | None = None,
                 where: Callable[[Value], bool] | None = None, each: "Pat | None" = None,
                 any_value: bool = False):
        self.ops = self._names(op)
        self.trait = op if isinstance(op, Trait) else None
        self.src = src if src else None
        self.name, self.attrs, self.where, self.each = name, attrs, where, each
        self.any_value = any_value

    @staticmethod
    def _names(op: OpSpec) -> Optional[frozenset]:
        if op is None or isinstance(op, Trait):
            return None
        names = (op,) if isinstance(op, str) else op
        return frozenset(n if "." in n else f"xc.{n}" for n in names)

    # constructors ----------------------------------------------------------------------------
    @staticmethod
    def var(name: str, where: Callable[[Value], bool] | None = None) -> "Pat":
        """Any value (a block argument or any op's result), bound as `name`."""
        return Pat(name=name, where=where, any_value=True)

    @staticmethod
    def const(name: str | None = None, where: Callable[[np.ndarray], bool] | None = None) -> "Pat":
        """A constant (`xc.constant`/`xc.dense`), optionally satisfying `where(array)`."""
        pred = (lambda v: where(constant_value(v))) if where else None
        return Pat(CONSTANT_OPS, name=name, where=pred)

    @staticmethod
    def splat(value: Any, name: str | None = None) -> "Pat":
        """A constant whose every element equals `value`."""
        def pred(v):
            s = splat_value(v)
            return s is not None and s == value and isinstance(s, bool) == isinstance(value, bool)
        return Pat(CONSTANT_OPS, name=name, where=pred)

    # matching --------------------------------------------------------------------------------
    def match(self, v: Value, binds: dict) -> Iterator[dict]:
        """Yield every extension of `binds` under which this pattern matches `v`."""
        if self.name is not None and self.name in binds and binds[self.name] is not v:
            return
        if not self.any_value or self.ops or self.trait:
            op = v.op
            if op is None or (self.ops is not None and op.name not in self.ops):
                return
            if self.trait is not None and not op.opdef.has(self.trait):
                return
            if self.attrs is not None:
                if callable(self.attrs):
                    if not self.attrs(op.attrs):
                        return
                elif any(op.attrs.get(k) != want for k, want in self.attrs.items()):
                    return
        if self.where is not None and not self.where(v):
            return
        new = dict(binds)
        if self.name is not None:
            new[self.name] = v
        op = v.op
        if self.each is not None:
            yield from _match_all(op.operands, [self.each] * len(op.operands), new)
            return
        if self.src is None:
            yield new
            return
        if len(op.operands) != len(self.src):
            return
        orders = [list(op.operands)]
        if op.opdef.has(Trait.COMMUTATIVE) and len(op.operands) == 2:
            orders.append(list(reversed(op.operands)))
        for operands in orders:
            yield from _match_all(operands, list(self.src), new)


def _match_all(values: list, pats: list, binds: dict) -> Iterator[dict]:
    if not pats:
        yield binds
        return
    for b in pats[0].match(values[0], binds):
        yield from _match_all(values[1:], pats[1:], b)


class Match:
    """What a rewrite function receives: bindings as attributes, `op` (the root) and `b` (a Builder)."""

    def __init__(self, op: Operation, binds: dict, builder: Builder):
        self.op, self.b, self.binds = op, builder, binds

    def __getattr__(self, name: str) -> Value:
        try:
            return self.__dict__["binds"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Value:
        return self.binds[name]


Rewrite = Callable[[Match], Union[Value, Sequence[Value], None]]


@dataclass
class PatternSet:
    """An ordered list of (pattern, rewrite) rules, indexed by the root's op name or trait."""

    rules: list[tuple[Pat, Rewrite]] = field(default_factory=list)

    def __post_init__(self):
        self.by_name: dict[str, list[tuple[Pat, Rewrite]]] = {}
        self.generic: list[tuple[Pat, Rewrite]] = []
        for rule in self.rules:
            if rule[0].ops is None:
                self.generic.append(rule)
            else:
                for n in rule[0].ops:
                    self.by_name.setdefault(n, []).append(rule)

    def __add__(self, other: "PatternSet") -> "PatternSet":
        return PatternSet(self.rules + other.rules)

    def candidates(self, op: Operation) -> list[tuple[Pat, Rewrite]]:
        return self.by_name.get(op.name, []) + self.generic

    def rewrite(self, op: Operation) -> Optional[list[Value]]:
        """Try every rule on `op`; the first that returns a well-typed replacement wins."""
        if len(op.results) != 1 or op.parent is None:
            return None
        block = op.parent
        for pat, fn in self.candidates(op):
            for binds in pat.match(op.results[0], {}):
                index = block.ops.index(op)
                n_before = len(block.ops)
                out = fn(Match(op, binds, Builder(block, index, op.loc)))
                if out is None:
                    _drop_inserted(block, index, len(block.ops) - n_before)
                    continue
                outs = [out] if isinstance(out, Value) else list(out)
                if [v.type for v in outs] != [r.type for r in op.results] or outs == op.results:
                    _drop_inserted(block, index, len(block.ops) - n_before)
                    continue
                return outs
        return None


def _drop_inserted(block: Block, index: int, count: int) -> None:
    del block.ops[index:index + count]


def blocks_of(program: Program) -> Iterator[tuple[Block, Block]]:
    """Every (block, enclosing function body) pair, regions included."""
    for f in program.funcs.values():
        yield f.body, f.body
        for op in f.walk():
            for r in op.regions:
                yield r.block, f.body


def replace_uses(scope: Block, old: Sequence[Value], new: Sequence[Value]) -> None:
    """Make every op under `scope` (at any depth) use `new[i]` in place of `old[i]`."""
    table = dict(zip(old, new))
    for top in scope.ops:
        for op in top.walk():
            if any(v in table for v in op.operands):
                op.operands = [table.get(v, v) for v in op.operands]


def apply_patterns(program: Program, patterns: PatternSet, max_sweeps: int = 50) -> bool:
    """Rewrite with `patterns` until nothing matches; replaced pure roots are erased. Returns changed."""
    changed_any = False
    for _ in range(max_sweeps):
        changed = False
        for block, scope in list(blocks_of(program)):
            for op in list(block.ops):
                if op.parent is not block or op not in block.ops:
                    continue
                outs = patterns.rewrite(op)
                if outs is None:
                    continue
                replace_uses(scope, op.results, outs)
                if op.opdef.has(Trait.PURE):
                    block.ops.remove(op)
                    op.parent = None
                changed = True
        changed_any |= changed
        if not changed:
            return changed_any
    return changed_any


def clone_op(op: Operation, mapping: dict[Value, Value]) -> Operation:
    """A copy of `op` (regions included) with operands looked up in `mapping`, which gains its results."""
    regions = []
    for r in op.regions:
        blk = Block()
        for a in r.block.args:
            mapping[a] = blk.add_arg(a.type, a.hint)
        for inner in r.block.ops:
            blk.append(clone_op(inner, mapping))
        regions.append(Region([blk]))
    new = Operation(op.opdef, [mapping.get(v, v) for v in op.operands], dict(op.attrs),
                    [v.type for v in op.results], regions, op.loc)
    for a, b in zip(op.results, new.results):
        mapping[a] = b
        b.hint = a.hint
    return new
