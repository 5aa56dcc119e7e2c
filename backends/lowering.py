"""The one lowering driver: walks a program's blocks and lowers each op through a backend's tables.

Every backend, whether it *evaluates* (numpy reference, MLX eager) or *emits* (Core ML's MIL
builder, C++ or MLX source), is a subclass of `Lowering` with two tables and a few hooks:

- `table: dict[str, Impl]`: op name (`"xc.add"`) -> `rule(args, attrs, out_types) -> list`. `args`
  are the backend's values for the operands (numpy arrays, `mx.array`s, MIL `Var`s, variable
  names...), `attrs` the op's typed attributes, `out_types` its result types; the rule returns one
  backend value per result. A rule that needs the lowering itself (a line buffer, a name counter)
  reads it from `lowering.current()` or the subclass overrides `apply`.
- `region_ops: dict[str, RegionImpl]`: op name -> `rule(lowering, op, args, env) -> list` for the
  ops that hold regions (`xc.if`, `xc.loop`, `xc.fused`, `xc.call`). Regions are not isolated from
  above, so `env` (value -> backend value) is passed for branches to read outer values; a rule lowers
  a region body with `lowering.block(region.block, env)`. Evaluators run the chosen branch; emitters
  build `mb.cond` / `if (...) {}` with both bodies.
- `weight(name, type)`: the backend value of a named weight (looked up once per name).
- `apply(op, args)`: lowers one non-region op through `table` (override to pass extra context).
- `block(block, env)`: the walk over a block; returns the values its terminator yields.

Construction checks the whole program first and raises one `LoweringError` naming every op the
backend cannot lower (with source lines), never failing halfway through. Tables are class
attributes; an instance may be given its own (`Lowering(program, table=...)`), which is how the
numpy reference and MLX evaluators are built (`xcomp.interpreter.Evaluator`).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, ClassVar, Sequence

from xcomp.errors import LoweringError
from xcomp.ir.core import Block, Func, Operation, Program
from xcomp.ir.types import Type

Impl = Callable[[list, dict, list], Sequence[Any]]
RegionImpl = Callable[["Lowering", Operation, list, dict], Sequence[Any]]

_active = threading.local()


class Lowering:
    """Lowers a `Program` op by op; see the module docstring for the contract."""

    table: ClassVar[dict[str, Impl]] = {}
    region_ops: ClassVar[dict[str, RegionImpl]] = {}

    def __init__(self, program: Program, table: dict[str, Impl] | None = None,
                 region_ops: dict[str, RegionImpl] | None = None):
        self.program = program
        if table is not None:
            self.table = table
        if region_ops is not None:
            self.region_ops = region_ops
        self.weights: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # values of the symbolic sizes for the run in progress
        self.check_supported()

    # capability -------------------------------------------------------------------------------
    def handles(self, name: str) -> bool:
        """Whether this lowering has a rule for op `name` (weights and terminators always)."""
        return name in self.table or name in self.region_ops or name == "xc.weight"

    def check_supported(self) -> None:
        """Raise one LoweringError listing every op of the program this lowering cannot handle."""
        missing: dict[str, list[str]] = {}
        for op in self.program.walk():
            if not op.opdef.is_terminator and not self.handles(op.name):
                missing.setdefault(op.name, []).append(str(op.loc) if op.loc else "")
        if missing:
            lines = [f"  {name}" + (f" at {', '.join(sorted(set(filter(None, locs))))}" if any(locs) else "")
                     for name, locs in sorted(missing.items())]
            raise LoweringError(f"{type(self).__name__} has no lowering for {len(missing)} op(s): "
                                f"{', '.join(sorted(missing))}\n" + "\n".join(lines))

    # hooks ------------------------------------------------------------------------------------
    def weight(self, name: str, type: Type):
        """The backend value of weight `name` (default: the program's numpy array)."""
        return self.program.weights[name]

    def apply(self, op: Operation, args: list) -> list:
        """Lower one op that holds no regions through `table`. In a program with symbolic sizes
        the rule sees the sizes of this call: attributes and result types evaluated at `sizes`."""
        if self.sizes:
            from xcomp.guards import concrete_op
            attrs, out_types = concrete_op(op, self.sizes)
            return list(self.table[op.name](args, attrs, out_types))
        return list(self.table[op.name](args, op.attrs, [r.type for r in op.results]))

    @staticmethod
    def current() -> "Lowering | None":
        """The lowering whose `run` is in progress on this thread (for rules that need context)."""
        return getattr(_active, "lowering", None)

    # the walk ---------------------------------------------------------------------------------
    def run(self, inputs: Sequence[Any], func: str = "main") -> list:
        """Lower function `func` with `inputs` as the values of its arguments; its results."""
        previous = getattr(_active, "lowering", None)
        _active.lowering = self
        self.sizes = self.bind_sizes(self.program.funcs[func], inputs)
        try:
            return self.call(self.program.funcs[func], list(inputs))
        finally:
            _active.lowering = previous

    @staticmethod
    def bind_sizes(func: Func, inputs: Sequence[Any]) -> dict[str, int]:
        """Values of the symbolic sizes of `func`'s arguments from the inputs' shapes (arrays with
        integer shapes; emitters whose values have none keep the sizes symbolic)."""
        from xcomp.guards import bind_types
        types = [a.type for a in func.args]
        if not any(isinstance(d, str) for t in types for d in getattr(t, "shape", ())):
            return {}
        shapes = [getattr(x, "shape", None) for x in inputs]
        if any(s is None or not all(isinstance(n, int) for n in s) for s, t in zip(shapes, types)
               if hasattr(t, "shape")):
            return {}
        keep = [(t, s) for t, s in zip(types, shapes) if hasattr(t, "shape")]
        return bind_types([t for t, _ in keep], [s for _, s in keep])

    def call(self, func: Func, args: list) -> list:
        if len(args) != len(func.args):
            raise TypeError(f"@{func.name} takes {len(func.args)} inputs, got {len(args)}")
        return self.block(func.body, dict(zip(func.args, args)))

    def block(self, block: Block, env: dict) -> list:
        """Lower `block`'s ops in order into `env` (value -> backend value); the yielded values."""
        for op in block.ops:
            if op.opdef.is_terminator:
                return [env[v] for v in op.operands]
            outs = self.op(op, env)
            for r, o in zip(op.results, outs):
                env[r] = o
        return []

    def op(self, op: Operation, env: dict) -> list:
        """Lower one op: region ops through `region_ops`, weights through `weight`, the rest `apply`."""
        args = [env[v] for v in op.operands]
        if op.name in self.region_ops:
            return list(self.region_ops[op.name](self, op, args, env))
        if op.name == "xc.weight":
            name = op.attrs["name"]
            if name not in self.weights:
                self.weights[name] = self.weight(name, op.results[0].type)
            return [self.weights[name]]
        return self.apply(op, args)


def inline_body(lowering: Lowering, op: Operation, args: list, env: dict) -> list:
    """Region rule for isolated single-body ops (`xc.fused`): lower the body with its arguments."""
    body = op.regions[0].block
    return lowering.block(body, dict(zip(body.args, args)))


def call_func(lowering: Lowering, op: Operation, args: list, env: dict) -> list:
    """Region rule for `xc.call`: lower the callee's body with the call's arguments."""
    return lowering.call(lowering.program.funcs[op.attrs["callee"].name], args)
