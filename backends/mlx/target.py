"""The `mlx` target: runs the program as an MLX graph on MLX's default device."""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np

from xcomp.backends import Target
from xcomp.passes.manager import DEFAULT_PIPELINE
from xcomp.interpreter import REGION_OPS, Evaluator, has_data_dependent_control
from xcomp.ir.types import TensorType


def mlx_unavailable() -> str | None:
    try:
        import mlx.core  # noqa: F401
    except ImportError as e:
        return f"MLX is not installed ({e}); pip install 'xcomp[mlx]'"
    return None


def load_table() -> dict:
    """Import every lowering family and return the filled table."""
    from xcomp.backends import mlx as pkg
    from xcomp.backends.mlx.table import MLX_OPS
    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name not in ("target", "table", "dtypes", "source"):
            importlib.import_module(f"{pkg.__name__}.{m.name}")
    return MLX_OPS


def _decomposed(program, table):
    """`program`, with the ops the table leaves to the decompose pass (gelu, silu, ...) decomposed
    when it has any (an unoptimized program evaluated eagerly, e.g. "MLX eager" in benchmarks)."""
    from xcomp.passes.decompose import DECOMPOSITIONS
    if not any(op.name not in table and op.name in DECOMPOSITIONS for op in program.walk()):
        return program
    from xcomp.api import optimize
    return optimize(program, "mlx", passes=["decompose"])[0]


class MLXEvaluator(Evaluator):
    """Evaluates a program with MLX arrays; results are lazy MLX arrays."""

    def __init__(self, program):
        import mlx.core as mx
        from xcomp.backends.mlx.dtypes import mx_dtype
        self.mx, self.mx_dtype = mx, mx_dtype
        table = load_table()
        super().__init__(_decomposed(program, table), {k: self._checked(k, f) for k, f in table.items()})
        self.plans: dict = {}  # id(op) -> shape-agnostic MLX calls (shapeless.reshape_plan)

    def apply(self, op, args):
        plan = self.plans.get(id(op))
        if plan is not None:
            return [plan(self.mx, args, self.inputs)]
        return super().apply(op, args)

    def run(self, inputs, func: str = "main"):
        self.inputs = list(inputs)  # what shapeless plans read sizes from
        return super().run(inputs, func)

    def _checked(self, name, fn):
        def run(args, attrs, out_types):
            outs = fn(args, attrs, out_types)
            fixed = []
            for o, t in zip(outs, out_types):
                if isinstance(t, TensorType):
                    if not isinstance(o, self.mx.array):
                        o = self.mx.array(o)
                    want = self.mx_dtype(t.dtype)
                    if o.dtype != want:
                        o = o.astype(want)
                fixed.append(o)
            return fixed
        return run

    def weight(self, name, type):
        w = np.asarray(self.program.weights[name])
        return self.mx.array(w).astype(self.mx_dtype(type.dtype))

    def truthy(self, x) -> bool:
        return bool(np.asarray(x).reshape(()).item()) if not isinstance(x, self.mx.array) else bool(x.item())

    def to_int(self, x) -> int:
        return int(x.item()) if isinstance(x, self.mx.array) else int(x)

    def iteration(self, i: int):
        return self.mx.array(i, dtype=self.mx.int64)


class MLXTarget(Target):
    name = "mlx"
    symbolic_sizes = True  # sizes bound per call; mx.compile shapeless, or traced once per input shape
    array_kind = "mlx"
    pipeline = DEFAULT_PIPELINE

    def unavailable_reason(self):
        return mlx_unavailable()

    def supported(self) -> set[str]:
        return set(load_table()) | set(REGION_OPS)

    def build(self, program):
        """The program as one MLX function under `mx.compile`. With symbolic sizes: compiled
        `shapeless=True` (one trace for every size) where the lowered graph does not depend on the
        sizes (`shapeless.blockers`), else traced once per input shape; the runner's `shapeless`
        and `reason` say which and why. `XCOMP_MLX_SHAPELESS=0` turns shapeless off."""
        import os
        import mlx.core as mx
        from xcomp.guards import symbolic_args
        if has_data_dependent_control(program):
            ev = MLXEvaluator(program)
            return lambda inputs: ev.run(list(inputs))
        if not symbolic_args(program):
            ev = MLXEvaluator(program)
            compiled = mx.compile(lambda inputs: ev.run(list(inputs)))
            return lambda inputs: compiled(list(inputs))
        from xcomp.backends.mlx.shapeless import Runner, blockers, plans
        ev = MLXEvaluator(program)
        found = blockers(ev.program)
        if os.environ.get("XCOMP_MLX_SHAPELESS", "1") == "0":
            found = ["XCOMP_MLX_SHAPELESS=0"]
        if not found:
            ev.plans = plans(ev.program)
        reason = "; ".join(dict.fromkeys(found))
        return Runner(lambda inputs: ev.run(list(inputs)), program, reason)
