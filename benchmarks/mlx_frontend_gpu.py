"""The MLX frontend's Llama block on an NVIDIA GPU (MLX's CUDA backend): xcomp `cuda` against MLX eager
and mx.compile, and the primitives a GPU build reports (the fast ones: RMSNorm, RoPE, attention).

    python benchmarks/mlx_frontend_gpu.py [--sizes medium,large]

For each size: the primitives the GPU build reports for the block, the max abs error of xcomp `cuda`
(and `mlx`) against MLX eager on the same GPU, ops captured and optimized, kernels per call, and time
per call. Timing: MLX's own GPU method (`runtime.median_seconds`: calls queued as made, one sync per
batch), columns in ROUNDS interleaved rounds, the median over rounds. Writes mlx_frontend_gpu.{json,md}
to $OUT when set, else to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

ROUNDS, REPEAT, BATCH, WARMUP = 5, 5, 10, 2


def run_size(size: str, targets=("cuda", "mlx")) -> dict:
    import mlx.core as mx
    import xcomp
    from mlx_model_set import llama_block
    from xcomp.backends.kernels.runtime import median_seconds
    from xcomp.frontends.mlx import record
    from xcomp.passes.fuse import fusion_groups, kernels_per_call

    block, config, shape = llama_block(size)
    x = mx.random.normal(shape)
    want = block(x)
    prims: dict[str, int] = {}
    for e in record(lambda a: block(a), [x]):
        if e["type"] == "primitive":
            prims[e["name"]] = prims.get(e["name"], 0) + 1
    row = {"config": config, "input_shape": list(shape), "gpu_primitives": prims, "targets": list(targets)}
    cols = {"mlx_eager": block, "mx_compile": mx.compile(lambda a: block(a))}
    for target in targets:
        fast = xcomp.compile(block, target=target)
        got = fast(x)
        row[f"max_abs_err_{target}"] = float(np.max(np.abs(np.array(got) - np.array(want))))
        row[f"ops_{target}"] = [fast.program(optimized=False).op_count(), fast.program().op_count()]
        row[f"kernels_per_call_{target}"] = kernels_per_call(fast.program())
        row[f"fused_groups_{target}"] = len(fusion_groups(fast.program()))
        cols[f"xcomp_{target}"] = fast
    cols = {k: (lambda f: (lambda: f(x)))(f) for k, f in cols.items()}
    times = {k: [] for k in cols}
    for _ in range(ROUNDS):
        for k, fn in cols.items():
            times[k].append(median_seconds(fn, REPEAT, BATCH, WARMUP))
    med = {k: statistics.median(v) for k, v in times.items()}
    row["ms_per_call"] = {k: v * 1e3 for k, v in med.items()}
    row["ratio_vs_xcomp"] = {k: v / med[f"xcomp_{targets[0]}"] for k, v in med.items()}
    return row


def machine() -> dict:
    import mlx.core as mx
    gpu = ""
    try:
        import subprocess
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gpu": gpu, "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "mlx": mx.__version__, "mlx_device": str(mx.default_device()),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def markdown(res: dict) -> str:
    m = res["machine"]
    out = [f"GPU: {m['gpu']}; MLX {m['mlx']} ({m['mlx_device']}); Python {m['python']}; {m['date']}", "",
           f"Timing: {ROUNDS} interleaved rounds; per round MLX's median over {REPEAT} batches of {BATCH} "
           "queued calls (one sync per batch); the median over rounds.", ""]
    for size, r in res["sizes"].items():
        out += [f"## Llama block, {size}: input {tuple(r['input_shape'])}, hidden {r['config']['hidden_size']}, "
                f"{r['config']['num_attention_heads']}/{r['config']['num_key_value_heads']} heads, "
                f"FFN {r['config']['intermediate_size']}", "",
                "Primitives the GPU build reports: " + ", ".join(f"{k} x{v}" for k, v in sorted(r["gpu_primitives"].items())),
                "",
                "- max abs error vs MLX eager: " + ", ".join(f"{t} {r['max_abs_err_' + t]:.1e}" for t in r["targets"]),
                "- ops captured -> optimized, kernels per call: " + "; ".join(
                    f"{t} {r['ops_' + t][0]} -> {r['ops_' + t][1]}, {r['fused_groups_' + t]} fused groups, "
                    f"{r['kernels_per_call_' + t]} kernels" for t in r["targets"]), "",
                f"| column | ms per call | time / xcomp {r['targets'][0]} |", "|---|---|---|"]
        out += [f"| {k} | {v:.3f} | {r['ratio_vs_xcomp'][k]:.2f}x |" for k, v in r["ms_per_call"].items()]
        out.append("")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="medium,large")
    ap.add_argument("--targets", default="cuda,mlx", help="xcomp targets; the first is the ratios' base")
    args = ap.parse_args(argv)
    res = {"machine": machine(), "sizes": {}}
    out_dir = os.environ.get("OUT") or os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    for size in args.sizes.split(","):
        res["sizes"][size] = run_size(size, tuple(args.targets.split(",")))
        with open(os.path.join(out_dir, "mlx_frontend_gpu.json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(out_dir, "mlx_frontend_gpu.md"), "w") as f:
            f.write(markdown(res))
        print(markdown(res), flush=True)


if __name__ == "__main__":
    main()
