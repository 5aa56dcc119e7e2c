"""torch.compile(backend="xcomp") on the zoo models: op counts and times against its peers.

    python benchmarks/dynamo_backend.py [--models mlp gpt_block] [--rounds 10] [--inductor]

For each model: the ops of the graph Dynamo hands over (through AOTAutograd's core-ATen inference
graph) before and after xcomp's pipeline, beside `xcomp.compile` (torch.export) on the same model,
and the median time per call of eager, `torch.compile(backend="xcomp")` and `xcomp.compile` on
mlx and reference (plus inductor with --inductor), timed in interleaved rounds by `xcomp.bench`.
Writes benchmarks/results/dynamo_backend.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

import xcomp
from xcomp.bench import bench
from xcomp.frontends import dynamo
from xcomp.zoo import MODELS

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def op_counts(model, inputs, target: str = "mlx") -> dict:
    """Ops before -> after the pipeline through Dynamo and through torch.export."""
    built = []
    original = dynamo.GraphRunner._build

    def spy(self, gm):
        entry = original(self, gm)
        built.append((entry[2].op_count(), entry[0].op_count()))
        return entry
    dynamo.GraphRunner._build = spy
    try:
        torch._dynamo.reset()
        with torch.no_grad():
            torch.compile(model, backend="xcomp", options={"target": target})(*inputs)
    finally:
        dynamo.GraphRunner._build = original
        torch._dynamo.reset()
    direct = xcomp.compile(model, target=target)
    with torch.no_grad():
        direct(*inputs)
    return {"dynamo_graphs": len(built), "dynamo_ops": [list(b) for b in built],
            "export_ops": [direct.program(optimized=False).op_count(), direct.program().op_count()]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "gpt_block"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--inductor", action="store_true", help="also time torch.compile with inductor")
    args = parser.parse_args()
    rows, out = [], {}
    for name in args.models:
        model, inputs = MODELS[name]()
        counts = op_counts(model, inputs)
        torch._dynamo.reset()
        report = bench(model, inputs, ["dynamo:mlx", "mlx", "dynamo:reference", "reference"],
                       ["eager"] + (["torch.compile"] if args.inductor else []), rounds=args.rounds, name=name)
        out[name] = {"ops": counts, "bench": report.to_dict()}
        rows.append((name, counts, report))
        print(report.table(), flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "dynamo_backend.json"), "w") as f:
        json.dump(out, f, indent=2)
    names = [e.name for e in rows[0][2].entries]
    lines = ["| model | ops via Dynamo (before -> after) | ops via torch.export | "
             + " | ".join(f"{n} ms (vs eager)" for n in names) + " |",
             "|---|---|---|" + "---:|" * len(names)]
    for name, counts, report in rows:
        dyn = ", ".join(f"{a} -> {b}" for a, b in counts["dynamo_ops"])
        exp = "{} -> {}".format(*counts["export_ops"])
        cells = [f"{e.median_s * 1e3:.3f} ({e.vs_eager:.2f}x)" for e in report.entries]
        lines.append(f"| {name} | {dyn} | {exp} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Medians of {args.rounds} interleaved rounds; {rows[0][2].machine['machine']}, torch "
                 f"{rows[0][2].machine.get('torch')}, mlx {rows[0][2].machine.get('mlx')}, load average "
                 f"{rows[0][2].machine.get('load_avg_1m')} (a shared machine). "
                 "dynamo:T is torch.compile(backend=\"xcomp\", options={\"target\": T}).")
    with open(os.path.join(RESULTS, "dynamo_backend.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
