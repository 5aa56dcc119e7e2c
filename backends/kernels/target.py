"""The `metal` and `cuda` targets: fused groups as generated kernels, everything else as MLX built-ins.

Both run one MLX graph: `xc.fused` ops become one custom kernel each (`codegen.plan`), standalone
row ops (softmax, norms, logsumexp) become one-op row kernels, and every other op (matmul,
convolution, gathers, views) runs through the MLX lowering table. A group whose kernel cannot be
generated, or whose kernel variants all measure slower than MLX built-ins (eager or under
mx.compile) on the first call (tuning is on by default; XCOMP_KERNEL_TUNE=0 turns it off), runs as
MLX built-ins: the target is never slower than MLX eager or mx.compile on a group it tuned. After the first call the whole graph runs under mx.compile unless
the program has data-dependent control flow (XCOMP_MX_COMPILE=0 keeps it eager).
"""
from __future__ import annotations

import os

from xcomp.backends.kernels import codegen
from xcomp.backends.mlx.target import MLXEvaluator, MLXTarget, load_table, mlx_unavailable
from xcomp.errors import LoweringError
from xcomp.interpreter import REGION_OPS, has_data_dependent_control
from xcomp.ir.core import Block, Operation, Program, Region
from xcomp.logs import get_logger
from xcomp.ops import registry
from xcomp.ops.structural import FusionKind
from xcomp.rewrite import replace_uses
from xcomp.tuning_cache import persisted

# standalone ops worth one kernel each: MLX runs them as several kernels (plain reductions and
# single arithmetic ops are already one MLX kernel)
STANDALONE_ROW_OPS = ("xc.softmax", "xc.log_softmax", "xc.logsumexp", "xc.layer_norm", "xc.rms_norm", "xc.var")
STANDALONE_EW_OPS = ("xc.gelu", "xc.silu", "xc.mish", "xc.softplus", "xc.elu", "xc.hardswish",
                     "xc.hardsigmoid", "xc.leaky_relu", "xc.frac", "xc.copysign", "xc.hypot", "xc.fmod")


def wrap_row_ops(program: Program) -> int:
    """Put each standalone row op or composite activation into its own `xc.fused` group."""
    count = 0
    kinds = {**{n: FusionKind.REDUCTION for n in STANDALONE_ROW_OPS},
             **{n: FusionKind.ELEMENTWISE for n in STANDALONE_EW_OPS}}
    for func in program.funcs.values():
        for op in list(func.body.ops):
            if op.name not in kinds:
                continue
            body = Block([v.type for v in op.operands])
            inner = Operation(op.opdef, list(body.args), dict(op.attrs), [r.type for r in op.results])
            body.append(inner)
            body.append(Operation(registry.get("yield"), list(inner.results), {}, []))
            fused = Operation(registry.get("fused"), list(op.operands), {"kind": kinds[op.name]},
                              [r.type for r in op.results], [Region([body])], op.loc)
            _replace(func.body, op, fused)
            count += 1
    return count


def _replace(block: Block, old: Operation, new: Operation) -> None:
    block.ops[block.ops.index(old)] = new
    new.parent = block
    replace_uses(block, old.results, new.results)


def plans(program: Program, dialect: str) -> list[tuple[Operation, codegen.KernelPlan | LoweringError]]:
    """Every fused op of `program` with its kernel plan, or the reason it has none."""
    out = []
    for op in program.walk():
        if op.name == "xc.fused":
            try:
                out.append((op, codegen.plan(op, dialect)))
            except LoweringError as e:
                out.append((op, e))
    return out


def source(program: Program, dialect: str) -> str:
    """The source of every kernel `program` runs on `dialect` (works without a GPU).

    Give an optimized program (`xcomp.optimize(p, target)`); standalone row ops are wrapped first.
    """
    from xcomp.api import clone
    p = clone(program)
    wrap_row_ops(p)
    parts = []
    for op, pl in plans(p, dialect):
        if isinstance(pl, LoweringError):
            parts.append(f"// group {op.attrs['kind'].value}: runs as MLX built-ins ({pl})\n")
        else:
            pre = f"// MLX prelude: {pl.prelude.name}\n" if pl.prelude is not None else ""
            parts.append(pre + pl.spec.full_source())
    return "\n".join(parts)


class Decisions(list):
    """Tuning decisions; each is also logged on the `kernels` component (`XCOMP_LOGS=kernels`)."""

    def append(self, text: str) -> None:
        get_logger("kernels").debug("%s", text)
        super().append(text)


BINDING_MEMO = 64   # size bindings a KernelEvaluator keeps (oldest dropped first)


class _Binding:
    """One binding of the size names (`env`) and what a call at it computes once: each group's
    choice key (`KernelEvaluator._key`) and each op's concrete attributes and types."""

    __slots__ = ("env", "keys", "concrete")

    def __init__(self, env: dict):
        self.env, self.keys, self.concrete = env, {}, {}


class KernelEvaluator(MLXEvaluator):
    """The MLX evaluator with fused ops run as generated kernels (or MLX built-ins as fallback).

    With tuning (the default on GPU targets; XCOMP_KERNEL_TUNE=0 turns it off), the first time a
    fused op runs, each of its kernel variants (`codegen.variants`) and the MLX built-ins are timed
    on the actual inputs and the fastest is kept for the op: the target is never slower than MLX
    eager or than the group's built-ins under mx.compile (both are timed too). `decisions` records
    what was chosen and why.

    A program with symbolic sizes runs the same way: a group's kernels read their sizes at run time
    (one source for every size), so the choice is made once per group and size class
    (`codegen.size_class`: e.g. rows whose length divides by the vector width or not), keyed
    `(op, class)` in `choice` (static groups: `op`), and timed on the first call in that class.
    """

    def __init__(self, program: Program, dialect: str):
        super().__init__(program)
        from xcomp.backends.kernels import runtime
        self.dialect, self.rt = dialect, runtime
        self.choice: dict[object, object] = {}
        self.tune = runtime.tuning()
        self.decisions: list[str] = Decisions()
        self._class_of: dict[Operation, object] = {}   # op -> sizes -> size class (None: one source)
        self.size_class: tuple = ()                    # the class of the group being chosen
        self._chosen: set = set()                      # input shapes whose every group is chosen
        # per size binding, what depends only on it (see `bind_sizes`); bounded, oldest dropped first
        self._bindings: dict[tuple, _Binding] = {}
        self._at: _Binding | None = None               # the binding of the call in progress
        self.binds = 0                                 # bindings computed (not found in the memo)

    def bind_sizes(self, func, inputs) -> dict[str, int]:
        """The values of the size names at this call, memoized per exact input shapes (a binding
        that fails, e.g. on a guard, raises every time: only successful ones are kept). The call's
        binding also memoizes each group's choice key and each op's concrete attributes and types."""
        key = (func.name, tuple(getattr(x, "shape", None) for x in inputs))
        try:
            at = self._bindings.get(key)
        except TypeError:   # (shapes that are not hashable: bind without the memo)
            self._at = None
            return super().bind_sizes(func, inputs)
        if at is None:
            self.binds += 1
            at = _Binding(super().bind_sizes(func, inputs))
            if len(self._bindings) >= BINDING_MEMO:
                self._bindings.pop(next(iter(self._bindings)))
            self._bindings[key] = at
        self._at = at
        return at.env

    def _key(self, op: Operation):
        """`op`, or `(op, size class)` for a group whose source depends on the sizes' class."""
        at = self._at if self._at is not None and self._at.env is self.sizes else None
        if at is not None and op in at.keys:
            return at.keys[op]
        if op not in self._class_of:
            self._class_of[op] = codegen.size_class_of(op, self.dialect)
        f = self._class_of[op]
        key = op if f is None or not self.sizes else (op, f(self.sizes))
        if at is not None:
            at.keys[op] = key
        return key

    def _concrete(self, op: Operation) -> tuple[dict, list]:
        """`guards.concrete_op(op, self.sizes)`, memoized with the call's binding."""
        at = self._at if self._at is not None and self._at.env is self.sizes else None
        if at is not None and op in at.concrete:
            return at.concrete[op]
        from xcomp.guards import concrete_op
        out = concrete_op(op, self.sizes)
        if at is not None:
            at.concrete[op] = out
        return out

    def apply(self, op: Operation, args: list) -> list:
        if not self.sizes or id(op) in self.plans:
            return super().apply(op, args)
        attrs, types = self._concrete(op)   # (as Lowering.apply: the rule sees this call's sizes)
        return list(self.table[op.name](args, attrs, list(types)))

    def op(self, op: Operation, env: dict) -> list:
        if op.name != "xc.fused":
            return super().op(op, env)
        args = [env[v] for v in op.operands]
        key = self._key(op)
        if key not in self.choice:
            self.size_class = key[1] if isinstance(key, tuple) else ()
            self.choice[key] = self._choose(op, env, args)
        pl = self.choice[key]
        if pl is None:
            return super().op(op, env)
        if callable(pl):   # the group's MLX built-ins under mx.compile
            return list(pl(*args))
        return self._run(pl, args)

    def needs_choice(self, inputs) -> bool:
        """Whether a call with `inputs` meets a group (or a size class of one) not chosen yet: the
        tuner times it eagerly, so that call runs outside mx.compile."""
        seen = tuple(tuple(getattr(x, "shape", ())) for x in inputs)
        if seen in self._chosen:
            return False
        saved, saved_at = self.sizes, self._at
        self.sizes = self.bind_sizes(self.program.main, inputs)
        try:
            if any(self._key(op) not in self.choice for op in self.program.walk() if op.name == "xc.fused"):
                return True
        finally:
            self.sizes, self._at = saved, saved_at
        self._chosen.add(seen)
        return False

    def _run(self, pl: codegen.KernelPlan, args: list) -> list:
        return self.rt.run_plan(pl, args, lambda a: self._prelude(pl, a), self.sizes)

    @persisted   # xcomp.tuning_cache: a choice timed by an earlier process is read back, not timed again
    def _choose(self, op: Operation, env: dict, args: list):
        """The plan to run `op` with (None: MLX built-ins)."""
        what = op.attrs["kind"].value + (f" {dict(self.size_class)}" if self.size_class else "")
        cls = self.size_class
        try:
            plans = codegen.variants(op, self.dialect, cls) if self.tune else [codegen.plan(op, self.dialect, None, cls)]
        except LoweringError as e:
            self.decisions.append(f"{what}: MLX built-ins ({e})")
            return None
        if not self.tune:
            return plans[0]
        timed = []
        for pl in plans:
            try:
                timed.append((self.rt.median_seconds(lambda: self._run(pl, args)), pl))
            except RuntimeError as e:   # e.g. a launch the device refuses: try the next variant
                self.decisions.append(f"{pl.spec.name}: kernel failed ({str(e)[:200]})")
        t_mlx = self.rt.median_seconds(lambda: super(KernelEvaluator, self).op(op, env))
        group = self._compiled_group(op)
        t_compiled = self.rt.median_seconds(lambda: group(*args))
        if not timed:
            self.decisions.append(f"{what}: every kernel failed -> MLX built-ins")
            return None
        t_best, best = min(timed, key=lambda tp: tp[0])
        tried = ", ".join(f"{p.spec.kind}[{_params(p.spec)}] {t * 1e6:.1f}" for t, p in timed)
        head = (f"{best.spec.name}{f' {dict(cls)}' if cls else ''}: kernels (us) {tried}; MLX {t_mlx * 1e6:.1f} us, "
                f"mx.compile {t_compiled * 1e6:.1f} us -> ")
        if t_best <= min(t_mlx, t_compiled):
            self.decisions.append(head + f"kernel [{_params(best.spec)}]")
            return best
        if t_compiled < t_mlx:
            self.decisions.append(head + "MLX built-ins under mx.compile")
            return group
        self.decisions.append(head + "MLX built-ins")
        return None

    def _compiled_group(self, op: Operation):
        """The group's MLX built-ins as one `mx.compile`d function of its operands (a tuning
        candidate: MLX fuses the group's elementwise ops itself)."""
        def group(*xs):
            return MLXEvaluator.op(self, op, dict(zip(op.operands, xs)))
        return self.mx.compile(group)

    def _prelude(self, pl: codegen.KernelPlan, args: list):
        anchor = pl.prelude
        block_args = anchor.parent.args
        vals = [args[block_args.index(v)] for v in anchor.operands]
        if self.sizes:   # a symbolic program: the anchor's attributes and types at this call's sizes
            attrs, types = self._concrete(anchor)
            return self.impls[anchor.name](vals, attrs, list(types))[0]
        return self.impls[anchor.name](vals, anchor.attrs, [r.type for r in anchor.results])[0]


def _params(spec: codegen.KernelSpec) -> str:
    """A kernel's launch shape in a few words (for tuning decisions)."""
    return spec.source.lstrip().splitlines()[0].lstrip("/ ")


class KernelTarget(MLXTarget):
    """Shared by `metal` and `cuda`: differs in dialect and in the device MLX must have."""

    symbolic_sizes = True   # kernels read their sizes at run time: one build for every size binding

    dialect = ""
    device = ""

    @property
    def pipeline(self):
        from xcomp.passes import PASSES
        from xcomp.passes.manager import DEFAULT_PIPELINE
        return tuple(n for n in DEFAULT_PIPELINE if n in PASSES)

    def device_available(self, mx) -> bool:
        raise NotImplementedError

    def unavailable_reason(self):
        why = mlx_unavailable()
        if why:
            return why
        import mlx.core as mx
        if not self.device_available(mx):
            return (f"MLX has no {self.device} here; target '{self.name}' runs only there "
                    f"(kernel source can still be emitted: xcomp.backends.kernels.target.source)")
        return None

    def supported(self) -> set[str]:
        return set(load_table()) | set(REGION_OPS)

    def build(self, program: Program):
        """A runner over MLX arrays. The first call runs eagerly (choosing each group's kernel or
        MLX built-ins); later calls run the whole graph under mx.compile when the program has no
        data-dependent control flow (XCOMP_MX_COMPILE=0 keeps every call eager). A program with
        symbolic sizes is built once: a call that brings a size class not chosen yet runs eagerly,
        and mx.compile traces each new shape again over the same kernels."""
        from xcomp.backends.kernels import runtime
        wrap_row_ops(program)
        ev = KernelEvaluator(program, self.dialect)
        self.evaluator = ev

        def run(inputs):
            return ev.run(list(inputs))
        if has_data_dependent_control(program) or not runtime.mx_compile_enabled():
            return run
        import mlx.core as mx
        compiled = mx.compile(run)
        state = {"calls": 0}
        from xcomp.guards import symbolic_args
        symbolic = symbolic_args(program)

        def call(inputs):
            state["calls"] += 1
            if state["calls"] == 1 or state.get("eager") or (symbolic and ev.needs_choice(inputs)):
                return run(inputs)   # (a size class not chosen yet: its tuning runs eagerly)
            if state["calls"] > 2:
                return compiled(list(inputs))
            try:   # the first compiled call is evaluated here, so a failure falls back to eager
                outs = compiled(list(inputs))
                mx.eval(outs)
                return outs
            except Exception as e:  # noqa: BLE001  (any MLX failure: stay eager, say why)
                state["eager"] = True
                ev.decisions.append(f"mx.compile failed ({type(e).__name__}: {str(e)[:200]}) -> eager")
                return run(inputs)
        return call

    def source(self, program: Program) -> str:
        """Every generated kernel of `program` (an optimized program), as one listing."""
        return source(program, self.dialect)

    def export(self, program: Program, path: str) -> str:
        """Write the IR with its weights and `kernels.<ext>` holding every kernel's source."""
        from xcomp.serialize import save
        out = save(program, path)
        from xcomp.backends.kernels.exprs import DIALECTS
        ext = DIALECTS[self.dialect].file_ext
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, f"kernels.{ext}"), "w") as f:
            f.write(self.source(program))
        return out


class MetalTarget(KernelTarget):
    name = "metal"
    dialect = "metal"
    device = "Metal GPU (an Apple GPU: macOS with Apple silicon)"

    def device_available(self, mx) -> bool:
        return bool(mx.metal.is_available())


class CudaTarget(KernelTarget):
    name = "cuda"
    dialect = "cuda"
    device = "CUDA GPU (MLX's CUDA backend: pip install mlx[cuda] on Linux with an NVIDIA GPU)"

    def device_available(self, mx) -> bool:
        return bool(mx.cuda.is_available())
