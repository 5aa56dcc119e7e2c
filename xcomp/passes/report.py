"""Figures for docs/passes.md: ops before/after optimization, kernels per call and fused groups.

    python -m xcomp.passes.report            # the table (markdown)
    python -m xcomp.passes.report --groups   # plus every fused group per model and target

Models are the test suite's (`xcomp.zoo`: MLP, CNN with conv/bn/pool/residual,
nn.TransformerEncoderLayer, a GPT-style block). Targets are every registered target plus
`primitives`, a target whose table holds only primitive ops (what a generated-kernel backend
without composite lowerings sees: softmax, norms, gelu and sdpa are decomposed before fusion).
"""
from __future__ import annotations

import argparse
import sys

from xcomp.passes.decompose import primitive_ops
from xcomp.passes.manager import DEFAULT_PIPELINE


class PrimitiveTarget:
    """A stand-in target lowering only primitives (every composite gets decomposed)."""

    name = "primitives"
    pipeline = DEFAULT_PIPELINE
    max_kernel_buffers = 31

    def supported(self) -> set[str]:
        return primitive_ops()

    def unavailable_reason(self):
        return None


def targets() -> list:
    from xcomp.backends import TARGETS, get_target
    return [get_target(n) for n in sorted(TARGETS)] + [PrimitiveTarget()]


def measure(model_name: str, target) -> dict:
    """Capture a zoo model and run `target`'s pipeline; ops, kernels and groups before and after."""
    from xcomp.api import capture, clone
    from xcomp.api import compute_ops
    from xcomp.passes import run_pipeline
    from xcomp.passes.fuse import fusion_groups, kernels_per_call
    from xcomp.zoo import MODELS
    model, inputs = MODELS[model_name]()
    program = capture(model, inputs)
    optimized = clone(program)
    run_pipeline(optimized, list(target.pipeline), target=target)
    return {"model": model_name, "target": target.name,
            "ops_before": compute_ops(program), "ops_after": compute_ops(optimized),
            "kernels_before": kernels_per_call(program), "kernels_after": kernels_per_call(optimized),
            "groups": [str(g) for g in fusion_groups(optimized)]}


def table(rows: list[dict]) -> str:
    head = ("| model | target | ops before | ops after | kernels/call before | kernels/call after "
            "| fused groups |\n|---|---|---:|---:|---:|---:|---:|")
    body = [f"| {r['model']} | {r['target']} | {r['ops_before']} | {r['ops_after']} | "
            f"{r['kernels_before']} | {r['kernels_after']} | {len(r['groups'])} |" for r in rows]
    return "\n".join([head] + body)


def main(argv=None) -> int:
    from xcomp.zoo import MODELS
    ap = argparse.ArgumentParser(prog="python -m xcomp.passes.report", description=__doc__.splitlines()[0])
    ap.add_argument("--groups", action="store_true", help="list every fused group")
    ap.add_argument("--models", nargs="*", default=sorted(MODELS))
    args = ap.parse_args(argv)
    rows = []
    for m in args.models:
        for t in targets():
            try:
                rows.append(measure(m, t))
            except Exception as e:  # a model a frontend cannot capture yet: report it, go on
                print(f"{m} on {t.name}: {type(e).__name__}: {str(e).splitlines()[0]}", file=sys.stderr)
    print(table(rows))
    if args.groups:
        for r in rows:
            print(f"\n{r['model']} / {r['target']}:")
            for i, g in enumerate(r["groups"]):
                print(f"  {i:>2}. {g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
