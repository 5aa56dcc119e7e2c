"""Figures of the MLX frontend: primitive coverage over mlx-lm architectures, and the Llama block.

    python benchmarks/mlx_frontend.py [--repeat 50] [--skip-models]

1. Coverage: every architecture of benchmarks/mlx_model_set.py is built from a small config with random
   weights (a few also 4-bit quantized), exported (`mx.export_function` events), captured into xcomp IR and run on `reference` and
   `mlx` against MLX eager (max abs error of the logits). Counts the primitives seen over the set and how
   many the frontend maps.
2. Llama block (mlx-lm's TransformerBlock: RMSNorm, RoPE, grouped-query attention, SwiGLU, causal mask):
   ops captured and after optimization, kernels per call, and time per call of xcomp `mlx` (its fused
   program) against MLX eager and mx.compile, each call evaluated, in interleaved rounds (medians).

Writes benchmarks/results/mlx_frontend.{json,md} with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models_cpu import interleaved  # noqa: E402  (interleaved rounds, medians: one timing method)
from host import host  # noqa: E402  (benchmarks/host.py: the machine record every benchmark writes)


def machine() -> dict:
    import mlx.core as mx
    return host(mlx=mx.__version__, mlx_device=str(mx.default_device()),
                load_average_1m=round(os.getloadavg()[0], 1))  # the machine is shared: context for the timings


def coverage() -> dict:
    import mlx.core as mx
    import xcomp
    from mlx_model_set import ARCHS, QUANTIZED, build
    from xcomp.frontends.mlx import PRIMITIVES, record
    tokens = mx.array([[3, 17, 42, 5, 88, 1, 9, 60]], dtype=mx.int32)
    rows, seen = {}, {}
    for name, bits in [(a, None) for a in ARCHS] + [(a, 4) for a in QUANTIZED]:
        model, why = build(name, bits)
        name = f"{name} 4-bit" if bits else name
        if model is None:
            rows[name] = {"built": False, "why": why}
            continue
        names = sorted({e["name"] for e in record(lambda t: model(t), [tokens]) if e["type"] == "primitive"})
        for n in names:
            seen[n] = seen.get(n, 0) + 1
        row = {"built": True, "primitives": names, "unmapped": [n for n in names if n not in PRIMITIVES]}
        want = np.array(model(tokens))
        for target in ("reference", "mlx"):
            try:
                got = np.array(xcomp.compile(model, target=target)(tokens))
                row[f"max_abs_err_{target}"] = float(np.max(np.abs(got - want)))
            except xcomp.XcompError as e:
                row[f"max_abs_err_{target}"] = f"error: {str(e)[:200]}"
        row["ops_captured"] = xcomp.capture(model, [tokens]).op_count()
        rows[name] = row
        print(f"  {name}: {len(names)} primitives, err ref {row['max_abs_err_reference']}, "
              f"mlx {row['max_abs_err_mlx']}", flush=True)
    return {"architectures": rows, "seen": seen, "mapped": len(PRIMITIVES),
            "seen_mapped": sum(1 for n in seen if n in PRIMITIVES)}


CPU_SIZES = ("small", "medium")


def llama_block(repeat: int, size: str) -> dict:
    import mlx.core as mx
    import xcomp
    from mlx_model_set import llama_block as make_block
    from xcomp.frontends.mlx import record
    from xcomp.passes.fuse import fusion_groups, kernels_per_call

    block, config, shape = make_block(size)
    x = mx.random.normal(shape)
    fast = xcomp.compile(block, target="mlx")
    want = block(x)
    err = float(np.max(np.abs(np.array(fast(x)) - np.array(want))))
    captured, optimized = fast.program(optimized=False), fast.program()
    primitives = sum(1 for e in record(lambda a: block(a), [x]) if e["type"] == "primitive")
    compiled = mx.compile(lambda a: block(a))
    cols = {"mlx_eager": lambda: mx.eval(block(x)), "mx_compile": lambda: mx.eval(compiled(x)),
            "xcomp_mlx": lambda: mx.eval(fast(x))}
    times = interleaved(cols, repeat)
    return {"config": config, "input_shape": list(shape), "max_abs_err_vs_eager": err,
            "mlx_primitives_per_call": primitives, "ops_captured": captured.op_count(),
            "ops_optimized": optimized.op_count(), "fused_groups": len(fusion_groups(optimized)),
            "kernels_per_call": kernels_per_call(optimized),
            "ms_per_call": {k: v * 1e3 for k, v in times.items()},
            "ratio_vs_xcomp": {k: v / times["xcomp_mlx"] for k, v in times.items()}}


def markdown(res: dict) -> str:
    m = res["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}; MLX {m['mlx']} ({m['mlx_device']}); {m['date']}; "
           f"load average {m.get('load_average_1m')} at the start (a shared machine: timings are noisy)", ""]
    if "coverage" in res:
        c = res["coverage"]
        built = {k: v for k, v in c["architectures"].items() if v["built"]}
        out += [f"## Primitive coverage over {len(built)} mlx-lm architectures", "",
                f"{c['seen_mapped']} / {len(c['seen'])} primitives seen in the model set are mapped "
                f"({c['mapped']} mapped in all). Every architecture captured, ran on `reference` and `mlx` "
                "and is compared with MLX eager (max abs error of the logits):", "",
                "| architecture | primitives | ops captured | max err reference | max err mlx |", "|---|---|---|---|---|"]
        for k, v in built.items():
            fmt = (lambda e: f"{e:.1e}" if isinstance(e, float) else e)
            out.append(f"| {k} | {len(v['primitives'])} | {v['ops_captured']} | {fmt(v['max_abs_err_reference'])} "
                       f"| {fmt(v['max_abs_err_mlx'])} |")
        out += ["", "Primitives seen (architectures using each): " +
                ", ".join(f"{n} ({c['seen'][n]})" for n in sorted(c["seen"])), ""]
        failed = {k: v["why"] for k, v in c["architectures"].items() if not v["built"]}
        if failed:
            out += ["Did not build: " + "; ".join(f"{k}: {w}" for k, w in failed.items()), ""]
    for size, b in res["llama_block"].items():
        out += _block_markdown(size, b)
    return "\n".join(out) + "\n"


def _block_markdown(size: str, b: dict) -> list[str]:
    out = [f"## Llama block, {size} (mlx-lm TransformerBlock, causal)", "",
            f"Input {tuple(b['input_shape'])}, hidden {b['config']['hidden_size']}, "
            f"{b['config']['num_attention_heads']} heads / {b['config']['num_key_value_heads']} kv heads, "
            f"FFN {b['config']['intermediate_size']}; max abs error vs MLX eager {b['max_abs_err_vs_eager']:.1e}.", "",
            f"- MLX primitives per eager call: {b['mlx_primitives_per_call']}",
            f"- xcomp ops captured -> optimized (`mlx`): {b['ops_captured']} -> {b['ops_optimized']}, "
            f"{b['fused_groups']} fused groups, {b['kernels_per_call']} kernels per call", "",
            "| column | ms per call (median) | time / xcomp mlx |", "|---|---|---|"]
    for k, v in b["ms_per_call"].items():
        out.append(f"| {k} | {v:.3f} | {b['ratio_vs_xcomp'][k]:.2f}x |")
    return out + [""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--skip-models", action="store_true", help="only the Llama block")
    args = ap.parse_args(argv)
    res = {"machine": machine()}
    if not args.skip_models:
        res["coverage"] = coverage()
    res["llama_block"] = {size: llama_block(args.repeat, size) for size in CPU_SIZES}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mlx_frontend.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = markdown(res)
    with open(os.path.join(HERE, "results", "mlx_frontend.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
