"""The SSA IR: values, operations with regions, blocks, functions and programs.

A `Program` holds functions; `@main` is the entry. An `Operation` names its `OpDef` (the single
definition of the op: attributes, type inference, reference, traits), its operand values, typed
attributes and regions. Regions hold one block whose arguments are the region's inputs; `xc.yield`
ends a region. Large constants live in `Program.weights`, referenced by `xc.weight {name}`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional

import numpy as np

from xcomp.ir.types import Type

if TYPE_CHECKING:
    from xcomp.ops.registry import OpDef

_ids = itertools.count()


class Value:
    """An SSA value: the result of an operation or an argument of a block."""

    __slots__ = ("type", "owner", "index", "uid", "hint")

    def __init__(self, type: Type, owner: "Operation | Block", index: int, hint: str = ""):
        self.type = type
        self.owner = owner
        self.index = index
        self.uid = next(_ids)
        self.hint = hint

    @property
    def op(self) -> Optional["Operation"]:
        """The producing operation, or None for a block argument."""
        return self.owner if isinstance(self.owner, Operation) else None

    def __repr__(self) -> str:
        return f"<Value {self.hint or self.uid}: {self.type}>"


@dataclass(frozen=True)
class SymbolRef:
    """A reference to a function by name (`@name` in text)."""

    name: str

    def __str__(self) -> str:
        return f"@{self.name}"


@dataclass(frozen=True)
class Location:
    """Where an op came from in the user's source (file:line), kept for error messages."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Operation:
    """One op instance. Create through `Block.append`/`Builder`, which infers result types."""

    def __init__(self, opdef: "OpDef", operands: list[Value], attrs: dict[str, Any],
                 result_types: list[Type], regions: list["Region"] | None = None,
                 loc: Location | None = None):
        self.opdef = opdef
        self.operands = list(operands)
        self.attrs = dict(attrs)
        self.results = [Value(t, self, i) for i, t in enumerate(result_types)]
        self.regions = list(regions or [])
        self.parent: Optional[Block] = None
        self.loc = loc

    @property
    def name(self) -> str:
        return self.opdef.name

    @property
    def result(self) -> Value:
        if len(self.results) != 1:
            raise ValueError(f"{self.name} has {len(self.results)} results")
        return self.results[0]

    def walk(self) -> Iterator["Operation"]:
        """This op and every op nested in its regions, in program order."""
        yield self
        for r in self.regions:
            for b in r.blocks:
                for o in b.ops:
                    yield from o.walk()

    def __repr__(self) -> str:
        return f"<Operation {self.name}>"


class Block:
    """A list of operations with typed arguments."""

    def __init__(self, arg_types: list[Type] = ()):
        self.args = [Value(t, self, i) for i, t in enumerate(arg_types)]
        self.ops: list[Operation] = []
        self.parent: Optional[Region] = None

    def add_arg(self, t: Type, hint: str = "") -> Value:
        v = Value(t, self, len(self.args), hint)
        self.args.append(v)
        return v

    def append(self, op: Operation) -> Operation:
        op.parent = self
        self.ops.append(op)
        return op

    def insert(self, index: int, op: Operation) -> Operation:
        op.parent = self
        self.ops.insert(index, op)
        return op

    @property
    def terminator(self) -> Optional[Operation]:
        return self.ops[-1] if self.ops and self.ops[-1].opdef.is_terminator else None


class Region:
    """A region: one block for everything xcomp builds (if branches, loop bodies, fused groups)."""

    def __init__(self, blocks: list[Block] | None = None):
        self.blocks = blocks or []
        for b in self.blocks:
            b.parent = self

    @property
    def block(self) -> Block:
        return self.blocks[0]


@dataclass
class Func:
    """A function: a body block whose arguments are the inputs; `xc.return` ends it."""

    name: str
    body: Block
    arg_names: list[str] = field(default_factory=list)

    @property
    def args(self) -> list[Value]:
        return self.body.args

    @property
    def outputs(self) -> list[Value]:
        return self.body.ops[-1].operands

    @property
    def result_types(self) -> list[Type]:
        return [v.type for v in self.outputs]

    def walk(self) -> Iterator[Operation]:
        for o in self.body.ops:
            yield from o.walk()


@dataclass
class Program:
    """A module of functions plus named weights (numpy arrays kept out of line) and the guards its
    symbolic sizes must satisfy (`xcomp.guards`; checked before every call)."""

    funcs: dict[str, Func] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    weight_dtypes: dict[str, Any] = field(default_factory=dict)  # name -> DType when not inferable
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. a .pt file's extra files
    guards: list = field(default_factory=list)  # xcomp.guards.Guard: what the symbolic sizes must satisfy

    @property
    def main(self) -> Func:
        return self.funcs["main"]

    def walk(self) -> Iterator[Operation]:
        for f in self.funcs.values():
            yield from f.walk()

    def op_count(self, include_nested: bool = True) -> int:
        """Compute ops: not returns/yields/weights/constants, and not the fused-group containers
        (the ops inside them count)."""
        from xcomp.ops.registry import Trait
        ops = self.walk() if include_nested else (o for f in self.funcs.values() for o in f.body.ops)
        return sum(1 for o in ops if not o.opdef.is_structural and not o.opdef.has(Trait.ISOLATED))

    def __str__(self) -> str:
        from xcomp.ir.printer import print_program
        return print_program(self)

