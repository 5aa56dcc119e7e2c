"""The `xcomp` command.

    xcomp demo [--model gpt_block]            compile a transformer block for every target, print a table
    xcomp conformance [...]                   the OpInfo conformance table (python -m xcomp.conformance)
    xcomp show program.mlir [--target T]      parse, verify, optionally optimize, print IR
    xcomp export MODULE:FACTORY --target T -o DIR
                                              capture a model (a factory returning (model, inputs)) and
                                              write the target's artifact
    xcomp targets                             list targets and whether they run here
    xcomp ops [--missing] [--target T] [--op NAME] [--format markdown|csv|json]
                                              the ATen-to-MLX mapping table, as in docs/mapping.md
    xcomp ops --catalog                       the IR op catalog (Markdown), as in docs/ops.md
    xcomp convert SOURCE --to T -o OUT --input x:2x64:f32 [--check]
                                              convert a .pt / .mlxfn / module:attr model (xcomp.convert)
    xcomp ir MODEL [--target T] [-o FILE]     the IR of a model, as captured or optimized for T
    xcomp explain MODEL [--target T] [--json] captured ops, passes, fused groups, kernels, fallbacks, guards
    xcomp viz MODEL -o graph.svg [--target T] [--compare]   (MODEL: MODULE:FACTORY, a saved dir, .mlir)
                                              the optimized program as a Graphviz picture (DOT always)
    xcomp bench MODEL --targets mlx reference --against eager torch.compile [--rounds N] [--json]
                                              median times and ratios in interleaved rounds
    xcomp cache info|clear [--namespace N] [--json]
                                              the on-disk compile cache (programs, cpp, coreml, tuning)
"""
from __future__ import annotations

import argparse
import importlib
import sys


def _demo(args) -> int:
    from xcomp.demo import main
    return main(args.model)


def _conformance(args) -> int:
    from xcomp.conformance import main
    return main(args.rest)


def _show(args) -> int:
    import xcomp
    with open(args.path) as f:
        text = f.read()
    program = xcomp.parse(text, source_name=args.path)
    if args.target:
        program, report = xcomp.optimize(program, target=args.target)
        print(report, file=sys.stderr)
    print(program, end="")
    return 0


def _load_factory(spec: str):
    module, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"expected MODULE:FACTORY, got {spec!r}")
    if module in ("zoo", "xcomp.zoo"):
        module = "xcomp.zoo"
        from xcomp.zoo import MODELS
        return MODELS[attr]
    return getattr(importlib.import_module(module), attr)


def _export(args) -> int:
    import xcomp
    model, inputs = _load_factory(args.model)()
    path = xcomp.export(model, inputs, target=args.target, path=args.output)
    print(f"wrote {args.target} artifact to {path}")
    return 0


def op_catalog() -> str:
    """Markdown: IR ops by family with their traits, aten names covered, and per-target coverage."""
    import collections
    from xcomp.backends import TARGETS, get_target
    from xcomp.frontends.aten import ATEN
    from xcomp.ops.registry import REGISTRY
    from xcomp.passes.decompose import DECOMPOSITIONS
    targets = {}
    for name in TARGETS:
        try:
            targets[name] = get_target(name).supported()
        except Exception as e:  # a target whose library is missing here  # noqa: BLE001
            targets[name] = e
    families = collections.defaultdict(list)
    for name, d in REGISTRY.items():
        if not d.is_terminator and not d.is_structural:
            families[d.infer.__module__.rsplit(".", 1)[-1]].append(d)
    lines = [f"{len(ATEN)} aten op overloads convert to {sum(map(len, families.values()))} IR ops.", "",
             "| family | op | traits | " + " | ".join(targets) + " |", "|---|---|---|" + "---|" * len(targets)]
    for fam in sorted(families):
        for d in sorted(families[fam], key=lambda d: d.name):
            traits = ", ".join(sorted(t.value for t in d.traits if t.value != "pure"))
            cells = ["n/a" if isinstance(s, Exception) else "yes" if d.name in s
                     else "decomposed" if d.name in DECOMPOSITIONS else "**missing**" for s in targets.values()]
            lines.append(f"| {fam} | `{d.name}` | {traits} | " + " | ".join(cells) + " |")
    lines += ["", "aten overloads: " + ", ".join(f"`{k}`" for k in sorted(ATEN))]
    return "\n".join(lines) + "\n"


def _ops(args) -> int:
    if args.catalog:
        print(op_catalog(), end="")
        return 0
    from xcomp.mapping import build, render
    print(render(build(), args.format, args.missing, args.target, args.op), end="")
    return 0


def _targets(args) -> int:
    from xcomp.backends import TARGETS, get_target
    reasons = {name: get_target(name).unavailable_reason() for name in TARGETS}
    # what a target that runs here builds with (cpp: the BLAS found), where it says
    details = {n: get_target(n).runtime_details() if not why and hasattr(get_target(n), "runtime_details") else None
               for n, why in reasons.items()}
    if args.json:
        import json
        print(json.dumps([{"name": n, "runs_here": not why, "reason": why, "details": details[n]}
                          for n, why in reasons.items()], indent=2))
        return 0
    for name, why in reasons.items():
        print(f"{name:<10} {'runs here' if not why else 'cannot run here: ' + why}"
              + (f" ({details[name]})" if details[name] else ""))
    return 0


def _model_program(spec: str):
    """The program of a MODEL argument: MODULE:FACTORY (zoo:NAME), a directory written by
    `xcomp.save`, or an IR file (`.mlir`; with the weights of a saved directory when beside it)."""
    import os
    import xcomp
    if os.path.isdir(spec) or (spec.endswith(".mlir") and os.path.basename(spec) == "program.mlir"
                               and os.path.exists(os.path.join(os.path.dirname(spec), "weights.safetensors"))):
        return xcomp.load(spec if os.path.isdir(spec) else os.path.dirname(spec) or ".")
    if spec.endswith(".mlir"):
        with open(spec) as f:
            return xcomp.parse(f.read(), source_name=spec)
    model, inputs = _load_factory(spec)()
    return xcomp.capture(model, inputs)


def _missing_weights(program) -> list[str]:
    return sorted({op.attrs["name"] for op in program.walk() if op.name == "xc.weight"} - set(program.weights))


def _require_weights(program, spec: str) -> None:
    missing = _missing_weights(program)
    if missing:
        from xcomp.errors import FormatError
        raise FormatError(f"{spec} has no values for weight(s) {', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}; give the directory written by xcomp.save")


def _ir(args) -> int:
    import xcomp
    program = _model_program(args.model)
    if args.target:
        _require_weights(program, args.model)
        program, report = xcomp.optimize(program, target=args.target)
        print(report, file=sys.stderr)
    if args.output:
        with open(args.output, "w") as f:
            f.write(str(program))
        print(f"wrote {args.output}")
    else:
        print(program, end="")
    return 0


def _explain(args) -> int:
    import xcomp
    from xcomp.errors import XcompError
    if ":" in args.model and not args.model.endswith(".mlir"):
        model, inputs = _load_factory(args.model)()
    else:  # a saved program or IR file: example inputs of its argument types
        import numpy as np
        model = _model_program(args.model)
        _require_weights(model, args.model)
        if not all(isinstance(d, int) for a in model.main.args for d in getattr(a.type, "shape", (None,))):
            raise XcompError("explain needs static argument shapes for an IR file; pass MODULE:FACTORY")
        inputs = [np.zeros(a.type.shape, a.type.dtype.np) for a in model.main.args]
    report = xcomp.compile(model, target=args.target, example_inputs=inputs).explain()
    if args.json:
        import json
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report)
    return 0


def _viz(args) -> int:
    import xcomp
    from xcomp.passes.fuse import kernels_per_call
    from xcomp.viz import compare_dot, render, to_dot
    program, title = _model_program(args.model), args.model
    if _missing_weights(program):  # an IR file alone: optimizing would need the weight values
        optimized, after = program, "as written (not optimized: the weights are not beside the IR file)"
    else:
        optimized, _ = xcomp.optimize(program, target=args.target)
        after = (f"optimized for {args.target}: {optimized.op_count()} ops, "
                 f"{kernels_per_call(optimized)} kernels per call")
    dot = (compare_dot(program, optimized, f"captured: {program.op_count()} ops", after, title) if args.compare
           else to_dot(optimized, f"{title}, {after}"))
    for path in render(dot, args.output):
        print(f"wrote {path}")
    return 0


def _bench(args) -> int:
    from xcomp.bench import bench
    model, inputs = _load_factory(args.model)()
    report = bench(model, inputs, args.targets, args.against, rounds=args.rounds, name=args.model)
    if args.json:
        import json
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0


def _cache(args) -> int:
    """`xcomp cache info|clear [--namespace N]`: the on-disk cache, namespace by namespace (xcomp.cache)."""
    import json
    from xcomp.cache import NAMESPACES, Cache, default_root, namespaces
    from xcomp.errors import XcompError
    root = default_root()
    names = namespaces(root)
    if args.namespace:
        if args.namespace not in names:
            raise XcompError(f"no cache namespace {args.namespace!r}; namespaces: {', '.join(names)}")
        names = [args.namespace]
    caches = [Cache(n, root) for n in names]
    if args.action == "clear":
        removed = {c.namespace: c.clear() for c in caches}
        print(json.dumps(removed) if args.json else
              f"cleared {sum(removed.values())} entries under {root}"
              + (f" ({args.namespace})" if args.namespace else ""))
        return 0
    infos = [c.info() for c in caches]
    if args.json:
        print(json.dumps({"root": root, "namespaces": [{**vars(i), "holds": NAMESPACES.get(i.namespace, "")}
                                                       for i in infos]}, indent=2))
        return 0
    print(f"cache root: {root} (XCOMP_CACHE_DIR; XCOMP_CACHE=0 keeps no programs, packages or tuning choices)")
    for i in infos:
        print(f"  {i.namespace:<10} {i.entries:>5} entries {i.bytes / 1e6:>9.2f} MB  "
              f"{NAMESPACES.get(i.namespace, '')}")
    print(f"  {'total':<10} {sum(i.entries for i in infos):>5} entries "
          f"{sum(i.bytes for i in infos) / 1e6:>9.2f} MB  (limit {infos[0].max_bytes / 1e6:.0f} MB per namespace, "
          "XCOMP_CACHE_MAX_MB; least recently used entries go first)" if infos else "  empty")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xcomp", description="A cross-framework ML compiler.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="compile a transformer block for every target and print a table")
    p.add_argument("--model", default="gpt_block", help="a model of xcomp.zoo")
    p.set_defaults(run=_demo)
    p = sub.add_parser("conformance", help="OpInfo conformance table", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=_conformance)
    p = sub.add_parser("show", help="parse, verify and print an IR file")
    p.add_argument("path")
    p.add_argument("--target", help="also run this target's pass pipeline")
    p.set_defaults(run=_show)
    p = sub.add_parser("export", help="write a target's artifact for a model")
    p.add_argument("model", help="MODULE:FACTORY returning (model, example_inputs), e.g. zoo:gpt_block")
    p.add_argument("--target", default="reference")
    p.add_argument("-o", "--output", default="xcomp_out")
    p.set_defaults(run=_export)
    p = sub.add_parser("ops", help="the ATen-to-MLX mapping table (docs/mapping.md), or the IR op catalog")
    p.add_argument("--missing", action="store_true", help="only ops not taken (or, with --target, not passing there)")
    p.add_argument("--target", help="only this target's status column")
    p.add_argument("--op", help="only aten ops whose name contains this")
    p.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown")
    p.add_argument("--catalog", action="store_true", help="the IR op catalog instead (docs/ops.md)")
    p.set_defaults(run=_ops)
    from xcomp.convert.run import add_parser as add_convert
    add_convert(sub)
    p = sub.add_parser("targets", help="list targets")
    p.add_argument("--json", action="store_true", help="a JSON list of {name, runs_here, reason}")
    p.set_defaults(run=_targets)
    p = sub.add_parser("cache", help="the on-disk compile cache: info (entries and size per namespace) or clear")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--namespace", help="only this namespace (programs, cpp, cpp-index, coreml, tuning)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=_cache)
    p = sub.add_parser("ir", help="print or save a model's IR, as captured or optimized for a target")
    p.add_argument("model", help="MODULE:FACTORY (e.g. zoo:mlp), a directory written by xcomp.save, or an .mlir file")
    p.add_argument("--target", help="optimize with this target's pipeline first")
    p.add_argument("-o", "--output", help="write the IR text here instead of printing it")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=_ir)
    p = sub.add_parser("explain", help="how a model is captured, optimized and lowered (compiled.explain())")
    p.add_argument("model", help="MODULE:FACTORY (e.g. zoo:mlp), a directory written by xcomp.save, or an .mlir file")
    p.add_argument("--target", default="reference", help="the target to compile for (must run here)")
    p.add_argument("--json", action="store_true", help="the report's fields as JSON")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=_explain)
    p = sub.add_parser("viz", help="draw a model's optimized program with Graphviz (fused groups as clusters)")
    p.add_argument("model", help="MODULE:FACTORY returning (model, example_inputs) (e.g. zoo:gpt_block), "
                   "a directory written by xcomp.save, or an .mlir file")
    p.add_argument("-o", "--output", default="graph.svg", help=".svg, .png, .pdf (through Graphviz's dot) or .dot")
    p.add_argument("--target", default="mlx", help="the target whose pipeline optimizes the program")
    p.add_argument("--compare", action="store_true", help="the captured and the optimized program side by side")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=_viz)
    p = sub.add_parser("bench", help="time a model on xcomp targets and peers: medians and ratios")
    p.add_argument("model", help="MODULE:FACTORY returning (model, example_inputs), e.g. zoo:gpt_block")
    p.add_argument("--targets", nargs="+", default=["mlx"],
                   help="xcomp targets to time (dynamo:T: torch.compile(backend='xcomp') on target T)")
    p.add_argument("--against", nargs="*", default=["eager"], help="peers: eager, torch.compile")
    p.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds (the median is reported)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (times, ratios, machine)")
    p.add_argument("--debug", action="store_true", help="print tracebacks")
    p.set_defaults(run=_bench)
    # `conformance` hands every argument after it (--ops, --targets, ...) to xcomp.conformance's parser
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[1:] if argv[:1] == ["conformance"] else None
    args = parser.parse_args(argv[:1] if rest is not None else argv)
    if rest is not None:
        args.rest = rest
    import warnings
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch's own pytree
    from xcomp.errors import XcompError
    try:
        return args.run(args)
    except XcompError as e:
        if getattr(args, "debug", False):
            raise
        print(f"xcomp: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a library's own error: one line, exit 1 (--debug: traceback)
        if getattr(args, "debug", False):
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"xcomp: error: {type(e).__name__}: {first} (--debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
