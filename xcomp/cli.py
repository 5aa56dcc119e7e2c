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
    for name in TARGETS:
        why = get_target(name).unavailable_reason()
        print(f"{name:<10} {'runs here' if not why else 'cannot run here: ' + why}")
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
    p.set_defaults(run=_targets)
    args = parser.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch's own pytree
    from xcomp.errors import XcompError
    try:
        return args.run(args)
    except XcompError as e:
        print(f"xcomp: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
