"""The `xcomp convert` verb: resolve SOURCE, capture, optimize, write the target's artifact, and
optionally check it against the source; a report line per step, exit codes for scripts."""
from __future__ import annotations

import contextlib
import sys
import traceback
from typing import Any, Callable, Sequence

import numpy as np

from xcomp.convert.sources import (CONVERT_TARGETS, EXIT_MALFORMED, EXIT_OK, EXIT_OTHER, EXIT_UNSUPPORTED,
                                   EXIT_USAGE, SOURCE_KEY, InputSpec, UsageError, annotate, describe_inputs, parse_input,
                                   random_inputs, resolve_source)
from xcomp.errors import FormatError, LoweringError, ParseError, TargetError, UnsupportedOpError, XcompError


def exit_code(e: BaseException) -> int:
    """The documented exit code of an error (see `xcomp convert --help`)."""
    if isinstance(e, (UsageError, TargetError)):
        return EXIT_USAGE
    if isinstance(e, (UnsupportedOpError, LoweringError)):
        return EXIT_UNSUPPORTED
    if isinstance(e, (FormatError, ParseError)):
        return EXIT_MALFORMED
    return EXIT_OTHER


class Steps:
    """The conversion steps as one progress bar (`xcomp.progress`: tqdm on a terminal, silent
    otherwise or with XCOMP_PROGRESS=0)."""

    def __init__(self, total: int):
        from xcomp.progress import progress
        self.bar = progress(total=total, desc="convert")

    def step(self, what: str) -> None:
        self.bar.set_description(what)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def convert(source: str, to: str, out: str, inputs: Sequence[str], check: bool = False,
            say: Callable[[str], None] = print) -> int:
    """Convert `source` for `--to` target `to` into `out`; prints the report through `say`.
    Returns 0 or raises an XcompError (whose `exit_code` the CLI returns)."""
    import xcomp
    from xcomp.backends import TARGETS, get_target
    from xcomp.backends.coverage import coverage
    from xcomp.passes.fuse import fusion_groups
    if to not in CONVERT_TARGETS:
        raise UsageError(f"--to {to!r}: one of {', '.join(CONVERT_TARGETS)}")
    target_name = CONVERT_TARGETS[to]
    if target_name not in TARGETS:
        raise UsageError(f"--to {to}: target '{target_name}' is not available in this build")
    specs = [parse_input(s) for s in inputs]
    steps = Steps(5 if check else 4)
    try:
        src = resolve_source(source)
        steps.step("loading")
        example = random_inputs(specs, src.kind) if specs else src.inputs
        if example is None and src.kind == "mlx" and isinstance(src.fn, str):
            example = _mlxfn_inputs(src.fn)
        if example is None and src.kind != "mlx":
            raise UsageError(f"SOURCE {source}: give its inputs with --input NAME:SHAPE:DTYPE (e.g. x:1x3x224x224:f32)")
        target = get_target(target_name)
        captured = xcomp.api._capture(src.fn, list(example or []))
        program = captured.program
        program.metadata[SOURCE_KEY] = {"converted_from": f"{src.description} with inputs {_spec_text(specs, example)}"}
        annotate(program, src, example, [s.name for s in specs] if specs else None)
        steps.step("captured")
        say(f"captured {src.description} with {captured.source}: {program.op_count()} ops, "
            f"{len(program.weights)} weights; inputs {_spec_text(specs, example)}")
        optimized, report = xcomp.optimize(program, target_name)
        steps.step("optimized")
        say(f"optimized for {to}: {program.op_count()} -> {optimized.op_count()} ops, "
            f"{len(fusion_groups(optimized))} fused groups")
        missing = coverage(target, optimized)
        if missing:
            raise LoweringError(_missing_report(to, optimized, missing))
        path = target.export(optimized, out)
        steps.step("written")
        say(f"wrote {to} to {path}")
        if check:
            _check(src, example, target, optimized, path, say)
            steps.step("checked")
    finally:
        steps.close()
    return EXIT_OK


def _mlxfn_inputs(path: str) -> list:
    """Random inputs of an .mlxfn file's first signature."""
    import mlx.core as mx
    from xcomp.frontends.mlx.mlxfn import read_signature
    positional, _ = read_signature(path)
    mx.random.seed(0)
    return [mx.random.normal(s).astype(d) if mx.issubdtype(d, mx.floating) else mx.zeros(s, dtype=d)
            for s, d in positional]


def _spec_text(specs: Sequence[InputSpec], example) -> str:
    return ", ".join(map(str, specs)) if specs else (describe_inputs(example) or "(from the file)")


def _missing_report(to: str, program, missing: list[str]) -> str:
    lines = [f"target {to} lacks {len(missing)} op(s):"]
    for name in missing:
        locs = sorted({str(op.loc) for op in program.walk() if op.name == name and op.loc})
        lines.append(f"  {name}" + (f" at {', '.join(locs)}" if locs else ""))
    return "\n".join(lines)


def _source_outputs(src, example) -> list[np.ndarray]:
    """The source model's own outputs (torch or MLX eager), flattened, as numpy."""
    from xcomp.arrays import to_numpy
    if src.kind == "mlx":
        import mlx.core as mx
        fn = mx.import_function(src.fn) if isinstance(src.fn, str) else src.fn
        out = fn(*example)
        from mlx.utils import tree_flatten
        return [to_numpy(v) for _, v in tree_flatten(out)] if not isinstance(out, mx.array) else [to_numpy(out)]
    import torch
    from torch.utils import _pytree
    fn = src.fn
    if isinstance(fn, str):
        from xcomp.frontends.torchscript import load
        fn = load(fn)[0]
    with torch.no_grad():
        out = fn(*example)
    return [to_numpy(x) for x in _pytree.tree_leaves(out) if isinstance(x, torch.Tensor)]


def _artifact_outputs(target, optimized, path: str, example) -> list[np.ndarray]:
    """The written artifact's outputs (mlx-source: the emitted module imported from `path`)."""
    from xcomp.arrays import convert, kind_of, to_numpy
    tensors = [x for x in example if kind_of(x) is not None]
    native = [convert(t, target.array_kind, a.type) for t, a in zip(tensors, optimized.main.args)]
    load = getattr(target, "load_artifact", None)
    runner = load(path) if load is not None else target.build(optimized)
    return [to_numpy(o) for o in runner(native)]


def _check(src, example, target, optimized, path: str, say) -> None:
    from xcomp.errors import NumericsError
    from xcomp.tolerances import tolerance
    why = target.unavailable_reason()
    if why:
        say(f"check skipped: target {target.name} cannot run here ({why})")
        return
    if example is None:
        raise UsageError("--check needs inputs (--input ...)")
    want = _source_outputs(src, example)
    got = _artifact_outputs(target, optimized, path, example)
    if len(want) != len(got):
        raise NumericsError(f"check: the artifact gives {len(got)} outputs, the source {len(want)}")
    worst = 0.0
    for i, (w, g) in enumerate(zip(want, got)):
        rtol, atol = tolerance(w.dtype.name if w.dtype.name != "float64" else "float32")
        if w.shape != g.shape:
            raise NumericsError(f"check: output {i} has shape {g.shape}, the source {w.shape}")
        err = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if w.size else 0.0
        worst = max(worst, err)
        if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol * 10, atol=atol * 10, equal_nan=True):
            raise NumericsError(f"check: output {i} differs from the source by up to {err:.3g}")
    say(f"check: {len(got)} output(s) match the source on random inputs (max abs error {worst:.3g})")


def main(args) -> int:
    """Run the verb from parsed arguments (see `xcomp.cli`); one error line unless --debug."""
    try:
        return convert(args.source, args.to, args.output, args.input or [], args.check)
    except Exception as e:  # noqa: BLE001 - every failure becomes one line and an exit code
        if args.debug:
            traceback.print_exc()
        lines = str(e).strip().splitlines() or [type(e).__name__]
        if isinstance(e, XcompError):
            print(f"xcomp convert: error: {lines[0]}", file=sys.stderr)
            for extra in lines[1:] if isinstance(e, (UnsupportedOpError, LoweringError)) else []:
                print(extra, file=sys.stderr)
        else:
            print(f"xcomp convert: error: {type(e).__name__}: {lines[0]}", file=sys.stderr)
        return exit_code(e)


def add_parser(sub) -> None:
    """Register `xcomp convert` on the CLI's subparsers."""
    p = sub.add_parser(
        "convert", help="convert a .pt, .mlxfn or module:attr model for a target",
        description="Convert a model: SOURCE is a TorchScript .pt file, an MLX .mlxfn file or module:attr "
                    "(a factory returning an nn.Module, or (module, example_inputs)).",
        epilog="exit codes: 0 done, 2 usage, 3 unsupported ops, 4 malformed input, 1 other")
    p.add_argument("source", help="model.pt, fn.mlxfn or module:attr")
    p.add_argument("--to", required=True, choices=list(CONVERT_TARGETS), help="what to write")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--input", action="append", metavar="SPEC",
                   help="NAME:SHAPE:DTYPE (x:1x3x224x224:f32) or NAME=VALUE (steps=4), in argument order")
    p.add_argument("--check", action="store_true", help="run the artifact against the source on random inputs")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=main)
