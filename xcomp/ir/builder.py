"""Builds operations into a block, inferring result types from the op definitions."""
from __future__ import annotations

from typing import Any, Sequence

from xcomp.ir.core import Block, Func, Location, Operation, Program, Region, Value
from xcomp.ir.types import Type
from xcomp.ops import registry


class Builder:
    """Appends ops to `block` (or inserts at `index`), tagging each with the current location."""

    def __init__(self, block: Block, index: int | None = None, loc: Location | None = None):
        self.block = block
        self.index = index
        self.loc = loc

    def create(self, name: str, operands: Sequence[Value] = (), attrs: dict[str, Any] | None = None,
               regions: Sequence[Region] = (), result_types: Sequence[Type] | None = None) -> Operation:
        """Create an op (attributes checked against its schema) and insert it."""
        opdef = registry.get(name)
        a = opdef.normalize_attrs(attrs or {})
        if opdef.num_operands is not None and len(operands) != opdef.num_operands:
            raise TypeError(f"{opdef.name} takes {opdef.num_operands} operands, got {len(operands)}")
        if result_types is None:
            result_types = list(opdef.infer([v.type for v in operands], a))
        op = Operation(opdef, list(operands), a, list(result_types), list(regions), self.loc)
        if self.index is None:
            self.block.append(op)
        else:
            self.block.insert(self.index, op)
            self.index += 1
        return op

    def op(self, name: str, *operands: Value, **attrs: Any) -> Value:
        """Create a single-result op and return its result."""
        return self.create(name, operands, attrs).result

    def ops(self, name: str, *operands: Value, **attrs: Any) -> list[Value]:
        """Create an op and return all of its results."""
        return self.create(name, operands, attrs).results


def build_program(in_types: Sequence[Type], body, weights: dict | None = None) -> Program:
    """A program whose @main takes `in_types` and returns what `body(builder, *args)` returns
    (a Value or a list of Values). The guards that building needed (symbolic sizes) are the program's."""
    from xcomp import guards
    main = Block(list(in_types))
    b = Builder(main)
    with guards.collect() as found:
        outs = body(b, *main.args)
    b.create("return", list(outs) if isinstance(outs, (list, tuple)) else [outs])
    return Program({"main": Func("main", main, [f"x{i}" for i in range(len(in_types))])}, dict(weights or {}),
                   guards=guards.merge([], found))
