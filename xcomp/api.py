"""The Python API: `compile`, `capture`, `optimize`, `export`."""
from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from xcomp.arrays import convert, kind_of, to_numpy
from xcomp.frontends import Captured
from xcomp.errors import NumericsError, XcompError
from xcomp.ir.core import Program
from xcomp.ir.types import TensorType
from xcomp.tolerances import tolerance



def _is_tensor_like(x) -> bool:
    return kind_of(x) is not None


def _leaves(x) -> list:
    """The tensors in an argument: itself, or those nested in its lists and tuples, in order."""
    if _is_tensor_like(x):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for e in x for t in _leaves(e)]
    return []


def _split_args(args: Sequence[Any]):
    """Tensor arguments (program inputs, nested lists and tuples flattened) and the arguments
    holding no tensor (constants of the signature)."""
    tensors = [t for a in args for t in _leaves(a)]
    consts = tuple((i, a) for i, a in enumerate(args) if not _leaves(a))
    return tensors, consts


def _fill(x, tensors):
    """`x` with its tensors replaced, in order, by the next items of the iterator `tensors`."""
    if _is_tensor_like(x):
        return next(tensors)
    if isinstance(x, (list, tuple)) and _leaves(x):
        return type(x)(_fill(e, tensors) for e in x)
    return x


def _bind(fn, args: Sequence[Any]):
    """`fn` as a function of the (flattened) tensor arguments only, other arguments fixed."""
    fixed = list(args)

    def bound(*tensors):
        it = iter(tensors)
        return fn(*[_fill(a, it) for a in fixed])
    bound.__wrapped__ = fn  # frontends find the user's function or module behind the binding
    return bound


def capture(fn, example_inputs: Sequence[Any], dynamic=False, cache: bool | None = False) -> Program:
    """Capture `fn` (nn.Module, FX GraphModule, function, MLX function, TorchScript module or
    function, or the path of a `.pt` file) on example inputs as a Program (the frontend comes from
    `FRONTENDS`). `dynamic` marks input dims symbolic as in `compile` (True, or `{"x": {0: "batch"}}`).
    `cache` (default False here): True or None (XCOMP_CACHE) reads and writes torch.export captures
    in the capture cache (`xcomp.frontends.capture_cache`), as `compile` and `export` do."""
    from xcomp.dynamic import normalize
    args = list(example_inputs)
    return _capture(fn, args, normalize(dynamic, fn, args), cache).program


def _frontend(module: str, what: str):
    import importlib
    try:
        return importlib.import_module(f"xcomp.frontends.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"xcomp.frontends.{module}":
            raise
        raise XcompError(f"this xcomp has no frontend for {what} yet") from None


def _is_torch_callable(fn) -> bool:
    """nn.Modules (FX GraphModules and TorchScript modules included) go through a torch frontend."""
    import sys
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(fn, (torch.nn.Module, torch.jit.ScriptFunction))


def _is_mlx_module(fn) -> bool:
    import sys
    nn = sys.modules.get("mlx.nn")
    return nn is not None and isinstance(fn, nn.Module)


def _is_path(fn, suffix: str = "") -> bool:
    return isinstance(fn, (str, os.PathLike)) and os.fspath(fn).endswith(suffix)


def _torch_inputs(tensors: list) -> list:
    return [convert(t, "torch") if kind_of(t) != "torch" else t for t in tensors]


def _capture_program(fn, args, dynamic):
    return Captured(fn, source="Program")


def _capture_mlxfn(fn, args, dynamic):
    return _frontend("mlx", "MLX functions").load_mlxfn(fn, _split_args(args)[0] or None)


def _claims_mlx(fn, args) -> bool:
    kinds = {kind_of(t) for t in _split_args(args or [])[0]}
    return ("mlx" in kinds or _is_mlx_module(fn)) and not _is_torch_callable(fn)


def _capture_mlx(fn, args, dynamic):
    mlx_frontend = _frontend("mlx", "MLX functions (mx.export_function)")
    program, out_spec = mlx_frontend.capture_function(_bind(fn, args), _split_args(args)[0], dynamic)
    return Captured(program, out_spec, "mlx.export_function")


def _claims_torchscript(fn, args) -> bool:
    return _frontend("torchscript", "TorchScript modules").claims(fn, args)


def _capture_torchscript(fn, args, dynamic):
    tensors = iter(_torch_inputs(_split_args(args)[0]))
    return _frontend("torchscript", "TorchScript modules").capture(fn, [_fill(a, tensors) for a in args], dynamic)


def _prepare_torchscript(fn):
    return _frontend("torchscript", "TorchScript modules").prepare(fn)


def _capture_torch_export(fn, args, dynamic, cache: bool | None = False, on_miss=None):
    from xcomp.frontends import capture_cache   # a hit skips torch.export (an entry of an earlier process)
    return capture_cache.capture(fn, args, dynamic, _export, cache, on_miss)


def _export(fn, args, dynamic):
    from xcomp.frontends import torch_export
    target = fn if all(_is_tensor_like(a) for a in args) else _bind(fn, args)
    return torch_export.capture_module(target, _torch_inputs(_split_args(args)[0]), dynamic)


@dataclass(frozen=True)
class Frontend:
    """A frontend entry: `claims(fn, args)` says whether it takes `fn` (args may be None before the
    first call), `capture(fn, args, dynamic)` returns a `Captured`, and `prepare(fn)` (optional) runs
    once in `compile()` (a `.pt` path is loaded there, so a bad file fails at once). `cached`: its
    `capture` takes `cache=` (the on-disk capture cache, `xcomp.frontends.capture_cache`)."""

    name: str
    claims: Callable[[Any, Any], bool]
    capture: Callable[[Any, list, bool], Captured]
    prepare: Callable[[Any], Any] | None = None
    cached: bool = False


# Tried in order, as targets come from TARGETS; the last entry claims everything.
FRONTENDS: list[Frontend] = [
    Frontend("program", lambda fn, args: isinstance(fn, Program), _capture_program),
    Frontend("mlx file", lambda fn, args: _is_path(fn, ".mlxfn"), _capture_mlxfn),
    Frontend("torchscript", _claims_torchscript, _capture_torchscript, _prepare_torchscript),
    Frontend("mlx", _claims_mlx, _capture_mlx),
    Frontend("torch.export", lambda fn, args: True, _capture_torch_export, cached=True),
]


def frontend_for(fn, args=None) -> Frontend:
    """The first entry of FRONTENDS that claims `fn` called with `args`."""
    return next(f for f in FRONTENDS if f.claims(fn, args))


def _capture(fn, args: list, dynamic: bool = False, cache: bool | None = False, on_miss=None) -> Captured:
    """`fn` captured by its frontend; `cache` (False, True, None: XCOMP_CACHE) as in `capture`;
    `on_miss()` runs before a capture that is not read from the capture cache."""
    frontend = frontend_for(fn, args)
    if frontend.cached:
        return frontend.capture(fn, args, dynamic, cache=cache, on_miss=on_miss)
    if on_miss is not None:
        on_miss()
    return frontend.capture(fn, args, dynamic)


def optimize(program: Program, target: str = "reference", passes: Sequence[str] | None = None,
             debug: bool | None = None):
    """Run `target`'s pass pipeline (or the named `passes`) on a copy of `program`.

    Returns `(optimized_program, report)`; the report lists each pass with whether it changed the
    program, its time and the op counts before and after (see `xcomp.passes.PipelineReport`).
    """
    from xcomp.backends import get_target
    from xcomp.passes import run_pipeline
    t = get_target(target)
    p = clone(program)
    report = run_pipeline(p, list(t.pipeline if passes is None else passes), debug, target=t)
    return p, report


def clone(program: Program) -> Program:
    """A deep copy of the program's IR sharing the weight arrays."""
    weights = program.weights
    program.weights = {}
    try:
        p = copy.deepcopy(program)
    finally:
        program.weights = weights
    p.weights = dict(weights)
    return p


@dataclass
class _Entry:
    captured: Captured
    optimized: Program
    report: Any
    runner: Callable
    compile_seconds: float
    checked: bool = False
    spec: Any = None  # the dynamic dims it was captured with (xcomp.dynamic), None when static


class Compiled:
    """A compiled callable. Compiles lazily on first call and caches per input signature."""

    def __init__(self, fn, target: str, example_inputs=None, dynamic=None,
                 passes: Sequence[str] | None = None, check: bool = False, *,
                 check_inputs: Sequence[Sequence[Any]] | None = None, original=None, cache: bool | None = None,
                 **target_options):
        from xcomp.backends import get_target
        from xcomp.backends import require_runnable
        from xcomp.dynamic import Stats
        prepare = frontend_for(fn).prepare
        self.fn = prepare(fn) if prepare is not None else fn  # a .pt path loads here: bad files fail at once
        self.notes: list[str] = []
        self.target = get_target(target).with_options(**target_options)
        require_runnable(self.target)  # fail at compile time, naming the missing device or library
        self.dynamic = dynamic
        self.passes = passes
        self.check = check
        self.program_cache = cache  # the on-disk program cache (xcomp.program_cache): None = XCOMP_CACHE
        self.cache: dict[Any, _Entry] = {}
        self.stats = Stats()  # captures, builds, calls, guard failures (xcomp.dynamic)
        self._admitted: dict[Any, Any] = {}   # call signature -> key of the symbolic entry that runs it
        self._structures: dict[Any, list] = {}  # signature without sizes -> keys of its entries
        self._last_key = None
        self._fast_plan = None  # (entry, [(shape, torch dtype)]): the last call's, see _fast_call
        if example_inputs is not None:
            self._entry(list(example_inputs))
        if check_inputs is not None:
            if not _claims_torchscript(self.fn, None):
                raise XcompError("check_inputs= checks TorchScript (traced) modules and functions")
            ts = _frontend("torchscript", "TorchScript modules")
            self.notes += ts.check_trace(self, self.fn, original, [list(a) for a in check_inputs])

    @staticmethod
    def signature(args: Sequence[Any]):
        def sig(a):
            k = kind_of(a)
            if k is not None:
                return (k, tuple(a.shape), str(a.dtype))
            if isinstance(a, (list, tuple)) and _leaves(a):
                return (type(a).__name__, tuple(sig(e) for e in a))
            return ("const", type(a).__name__, repr(a))
        return tuple(sig(a) for a in args)

    def _entry(self, args: list) -> _Entry:
        from xcomp import dynamic as dyn
        key = self.signature(args)
        self._last_key = self._admitted.get(key, key)
        if self._last_key in self.cache:
            return self.cache[self._last_key]
        struct, shapes = dyn.structure(args), [tuple(t.shape) for t in _split_args(args)[0]]
        spec = dyn.normalize(self.dynamic, self.fn, args)
        for skey in self._structures.get(struct, []):  # a symbolic program whose guards hold
            e = self.cache[skey]
            if e.spec is None or not dyn.static_dims_match(e.optimized, shapes):
                continue
            try:
                dyn.admit(e.optimized, shapes)
            except XcompError:
                self.stats.guard_failures += 1
                if self.dynamic is not None:
                    raise
                spec = False  # automatic: a static program for these shapes
                break
            self._admitted[key] = self._last_key = skey
            return e
        if self.dynamic is None and spec is None and self._structures.get(struct):
            entries = [self.cache[k] for k in self._structures[struct]]  # widen the latest symbolic one
            last = next((e for e in reversed(entries) if e.spec is not None), entries[-1])
            spec = dyn.widen(last.optimized, shapes, last.spec)
        t0 = time.perf_counter()
        try:
            cap, opt, report, runner = self._compile(args, spec)
        except XcompError as e:
            if not (self.dynamic is None and spec):
                raise
            self.notes.append(f"automatic dynamic sizes failed ({str(e).splitlines()[0]}); compiled static")
            spec = None
            cap, opt, report, runner = self._compile(args, spec)
        symbolic = any(isinstance(d, str) for a in opt.main.args for d in getattr(a.type, "shape", ()))
        entry = _Entry(cap, opt, report, runner, time.perf_counter() - t0, spec=(spec or []) if symbolic else None)
        if symbolic:
            key = ("symbolic", struct, len(self.cache))
            dyn.admit(opt, shapes)
            self._admitted[self.signature(args)] = key
        elif spec and any(spec) and not cap.source.startswith("torch"):
            note = f"{cap.source} captures static shapes: dynamic= applies to torch.export captures"
            if note not in self.notes:
                self.notes.append(note)
        self._last_key = key
        self.cache[key] = entry
        self._structures.setdefault(struct, []).append(key)
        return entry

    def _compile(self, args: list, spec):
        """Capture (with the dynamic dims `spec`), optimize and build for `target`."""
        try:
            cap = _capture(self.fn, args, spec or None, self.program_cache, on_miss=self.target.prepare)
        except Exception as e:
            if not spec or isinstance(e, XcompError):
                raise
            from xcomp.errors import CaptureError  # a converter without symbolic sizes, said as xcomp's
            raise CaptureError(f"capturing with symbolic sizes {spec} failed: {type(e).__name__}: {e}") from e
        self.stats.captures += 1
        from xcomp import program_cache  # a hit skips the pass pipeline (an entry written by an earlier process)
        opt, report, _ = program_cache.optimize(cap.program, self.target, self.passes, self.program_cache)
        self.stats.builds += 1
        from xcomp.guards import symbolic_args
        if symbolic_args(opt):
            from xcomp.specialize import per_size, static_size_ops
            needs = static_size_ops(self.target, opt)
            if needs is not None:   # one static build per size binding
                self.stats.static_ops = needs
                return cap, opt, report, per_size(opt, self._specialized_build)
        return cap, opt, report, self.target.build(opt)

    def _specialized_build(self, program: Program):
        self.stats.specializations += 1
        return self.target.build(program)

    def _fast_call(self, args):
        """The call of the last entry for CPU torch tensors of exactly its static shapes and dtypes
        (a model called again and again): no signature, conversions or structure walk beyond what
        that entry was seen to need. None when the arguments are anything else."""
        entry, specs = self._fast_plan
        if len(args) != len(specs):
            return None
        torch = sys.modules["torch"]
        native = []
        for a, (shape, dtype) in zip(args, specs):
            if type(a) is not torch.Tensor or a.dtype != dtype or a.shape != shape or not a.is_cpu:
                return None
            native.append(a.detach().numpy() if a.requires_grad else a.numpy())
        self.stats.calls += 1
        outs = entry.runner(native)   # (torch.from_numpy refuses negative strides: such a result is copied)
        return self._structure(entry.captured, [torch.from_numpy(o if min(o.strides, default=0) >= 0 else o.copy())
                                                for o in outs], "torch")

    def _plan_fast(self, entry, args, tensors, native, raw, outs) -> None:
        """Remember `entry` for _fast_call when this call was its plain case: every argument a CPU torch
        tensor handed over as it is, every result a numpy array returned as its torch view."""
        self._fast_plan = None
        torch = sys.modules.get("torch")
        if (torch is None or entry.spec is not None or (self.check and not entry.checked)
                or self.target.array_kind != "numpy" or len(tensors) != len(args)
                or any(type(t) is not torch.Tensor or t.device.type != "cpu" or t.dtype == torch.bfloat16
                       or n.dtype != t.numpy(force=True).dtype for t, n in zip(args, native))
                or any(not isinstance(r, np.ndarray) or type(o) is not torch.Tensor or min(r.strides, default=0) < 0
                       or o.dtype != torch.from_numpy(r).dtype for r, o in zip(raw, outs))):
            return
        self._fast_plan = (entry, [(t.shape, t.dtype) for t in args])

    def __call__(self, *args):
        if self._fast_plan is not None:
            got = self._fast_call(args)
            if got is not None:
                return got
        args = list(args)
        self.stats.calls += 1
        entry = self._entry(args)
        tensors, _ = _split_args(args)
        kinds = {kind_of(t) for t in tensors}
        # no array arguments (`lambda: torch.arange(10)`): outputs of the frontend's kind
        out_kind = kinds.pop() if len(kinds) == 1 else entry.captured.array_kind if not kinds else ""
        out_kind = out_kind or "numpy"
        prog = entry.optimized
        native = [convert(t, self.target.array_kind, a.type) for t, a in zip(tensors, prog.main.args)]
        raw = entry.runner(native)
        result_types = prog.main.result_types
        outs = [o if isinstance(o, list) and not isinstance(t, TensorType)  # run-time lists: the frontend's rebuild
                else convert(o, out_kind, t if isinstance(t, TensorType) else None) for o, t in zip(raw, result_types)]
        if self.check and not entry.checked:
            self._check(entry, tensors, outs)
            entry.checked = True
        self._plan_fast(entry, args, tensors, native, raw, outs)
        return self._structure(entry.captured, outs, out_kind)

    def _check(self, entry: _Entry, tensors, outs):
        from xcomp.interpreter import interpret
        ref = interpret(entry.captured.program, [to_numpy(t) for t in tensors])
        for i, (r, o) in enumerate(zip(ref, outs)):
            t = entry.optimized.main.result_types[i]
            rtol, atol = tolerance(t.dtype) if isinstance(t, TensorType) else (0.0, 0.0)
            o = to_numpy(o)
            if r.shape != o.shape or not np.allclose(o, r, rtol=rtol, atol=atol, equal_nan=True):
                err = float(np.max(np.abs(o.astype(np.float64) - r.astype(np.float64)))) if r.shape == o.shape else None
                raise NumericsError(f"target '{self.target.name}' disagrees with the reference on output {i}: "
                                    f"shape {o.shape} vs {r.shape}, max abs error {err}")

    @staticmethod
    def _structure(cap: Captured, outs: list, out_kind: str = "numpy"):
        if cap.rebuild is not None:  # a frontend's own nesting (TorchScript)
            return cap.rebuild(outs, lambda a: convert(a, out_kind))
        if hasattr(cap.out_spec, "unflatten"):  # a frontend's own output structure (MLX)
            return cap.out_spec.unflatten(outs)
        if cap.out_spec is not None:
            from torch.utils import _pytree
            return _pytree.tree_unflatten(outs, cap.out_spec)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # introspection -------------------------------------------------------------------------------
    def program(self, optimized: bool = True) -> Program:
        """The program of the last signature called (optimized, or as captured)."""
        e = self._current()
        return e.optimized if optimized else e.captured.program

    def _current(self) -> _Entry:
        if self._last_key is None:
            raise XcompError("not compiled yet: call it once or pass example_inputs")
        return self.cache[self._last_key]

    def source(self) -> str:
        """The generated kernel source of the last signature called, for targets that generate
        source (`metal`, `cuda`, `cpp`); XcompError for targets that have none."""
        emit = getattr(self.target, "source", None)
        if emit is None:
            raise XcompError(f"target '{self.target.name}' generates no kernel source; "
                             "targets with generated source: metal, cuda, cpp")
        return emit(self._current().optimized)

    def explain(self):
        """How the function was captured, optimized and lowered, per target: an
        `xcomp.ExplainReport` (fields: ops before/after, fused groups, kernels per call, fallbacks,
        passes with timings, guards, the same summary for every other target) whose `str()` is the
        readable report.
        """
        from xcomp.backends import TARGETS, get_target
        from xcomp.explain import ExplainReport, summarize, summary_line
        from xcomp.passes.fuse import fusion_groups
        e = self._current()
        prog = e.captured.program
        pipeline = list(self.target.pipeline if self.passes is None else self.passes)
        notes = [str(n) for n in list(e.captured.notes) + self.notes]
        cached = f" (from the capture cache: {e.captured.cached})" if e.captured.cached else ""
        lines = [f"captured with {e.captured.source}{cached}: {prog.op_count()} ops, {len(prog.weights)} weights",
                 f"target '{self.target.name}': pipeline {pipeline}"]
        lines += [f"  note: {n}" for n in notes]
        mine = summarize(self.target, prog, e.optimized)
        lines.append(summary_line(mine))
        groups = [str(g) for g in fusion_groups(e.optimized)]
        lines += [f"    group {i}: {g}" for i, g in enumerate(groups)]
        if e.report.records:
            lines.append("passes:\n" + "\n".join("  " + ln for ln in str(e.report).splitlines()))
        kinds: dict[str, int] = {}
        for op in e.optimized.walk():
            if not op.opdef.is_structural and op.name != "xc.fused":
                kinds[op.name] = kinds.get(op.name, 0) + 1
        lines.append("op histogram: " + ", ".join(f"{k}x{v}" for k, v in sorted(kinds.items())))
        lines.append("other targets:")
        others: dict = {}
        for name in sorted(TARGETS):
            if name == self.target.name:
                continue
            try:
                optimized, _ = optimize(prog, name)
                others[name] = summarize(get_target(name), prog, optimized)
                lines.append(summary_line(others[name]))
            except XcompError as err:
                others[name] = f"cannot optimize: {err}"
                lines.append(f"  {name:<10} cannot optimize: {err}")
        guards = [str(g) for g in e.optimized.guards]
        if e.optimized.guards or e.spec:
            lines.append("symbolic sizes: " + ", ".join(f"{a.hint or i}: {a.type}" for i, a in enumerate(e.optimized.main.args))
                         + "\nguards: " + ("; ".join(guards) or "none"))
        lines.append(f"compiled in {e.compile_seconds * 1e3:.1f} ms; {len(self.cache)} signature(s) cached; "
                     f"stats: {self.stats}")
        return ExplainReport(
            target=self.target.name, source=e.captured.source, pipeline=pipeline, ops_before=mine.ops_before,
            ops_after=mine.ops_after, weights=len(prog.weights), groups=groups,
            kernels_per_call=mine.kernels_per_call, fallbacks=mine.fallbacks, passes=list(e.report.records),
            histogram=dict(sorted(kinds.items())), other_targets=others, guards=guards, notes=notes,
            compile_seconds=e.compile_seconds, signatures_cached=len(self.cache), text="\n".join(lines))


def compute_ops(program: Program) -> int:
    """Compute ops of a program, counting the ops inside fused groups but not the groups themselves."""
    return program.op_count()


def compile(fn, target: str = "mlx", example_inputs: Sequence[Any] | None = None, dynamic=None,
            passes: Sequence[str] | None = None, check: bool = False, *,
            check_inputs: Sequence[Sequence[Any]] | None = None, original=None, cache: bool | None = None,
            **target_options) -> Compiled:
    """Compile `fn` for `target`. Returns a callable that compiles on first call per signature.

    Torch tensors in give torch tensors out, numpy gives numpy, MLX arrays give MLX arrays, with the
    nesting of the function's outputs. Non-tensor positional arguments are constants of the signature.
    `dynamic` (see `xcomp.dynamic`): None (default) compiles static sizes first and recompiles once
    with symbolic sizes in the dims that change; True makes every input dim symbolic; a dict names
    dims (`{"x": {0: "batch", 1: "seq"}}`); False compiles each input shape on its own. A symbolic
    program checks its guards on every call (`xcomp.GuardError`). `compiled.stats` counts captures,
    builds and calls.
    `target_options` go to the target (e.g. `compute_precision="float32"` for `coreml`).
    `cache=False` skips the on-disk program cache (`xcomp.program_cache`; default: on unless
    XCOMP_CACHE=0): a process compiling a program that an earlier one compiled skips the passes,
    and one capturing a module an earlier one captured skips torch.export (the capture cache,
    `xcomp.frontends.capture_cache`; weights are read from the module, never from the cache).

    `fn` may be a TorchScript module or function, or the path of a `.pt` file (loaded at once with
    `torch.jit.load(map_location="cpu")`; a `.pt` file is code: trust it as you would trust code).
    `check_inputs=[args, ...]` (traced modules) runs each argument tuple through the compiled module,
    the TorchScript module and `original` (the Python callable it was traced from), raising
    `xcomp.TraceCheckError` naming the first divergence, as `torch.jit.trace(check_inputs=)` does.
    """
    return Compiled(fn, target, example_inputs, dynamic, passes, check, check_inputs=check_inputs,
                    original=original, cache=cache, **target_options)


def export(fn, example_inputs: Sequence[Any] | None = None, target: str = "reference", path: str = "xcomp_out",
           dynamic=False, cache: bool | None = None, **target_options) -> str:
    """Capture, optimize and write `target`'s artifact to `path` (works where the target cannot run).

    `fn` is what `compile` takes, or a SOURCE as `xcomp convert` takes it: a `.pt` or `.mlxfn` path,
    or `"module:attr"` naming a factory of an nn.Module or of `(module, example_inputs)` (whose
    inputs are used when `example_inputs` is None). `target_options` configure the target (for
    `coreml`: `compute_precision`, `minimum_deployment_target`, `compute_units`, as in `ct.convert`;
    `shape_bounds`/`enumerated` for symbolic sizes). `dynamic` marks input dims symbolic as in
    `capture` (the artifact then serves every size the target supports; default: static). `cache`
    as in `compile`: the optimized program, and for `coreml` the package, come from the on-disk
    cache when an earlier export made them (`xcomp.program_cache`)."""
    from xcomp.backends import get_target
    from xcomp.convert.sources import annotate, resolve_source
    t = get_target(target).with_options(**target_options)
    src = resolve_source(fn, example_inputs)
    if src.inputs is None and src.kind != "mlx":
        raise XcompError(f"export of {src.description} needs example_inputs")
    program = capture(src.fn, src.inputs or [], dynamic=dynamic, cache=cache)
    annotate(program, src, src.inputs)
    from xcomp import program_cache
    optimized, _, key = program_cache.optimize(program, t, None, cache)
    return program_cache.export(t, optimized, path, key, cache)
