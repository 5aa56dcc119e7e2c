"""CPU benchmark of the zoo models: xcomp targets against their peers, in one run.

    python benchmarks/models_cpu.py [--models mlp cnn ...] [--repeat 30] [--no-inductor]

Peers: PyTorch eager, torch.compile (Inductor), MLX eager (the captured program run op by op with
MLX, no passes and no mx.compile), mx.compile of that same op-by-op function. xcomp: `mlx` (passes +
mx.compile) and `reference` (numpy). Writes benchmarks/results/models_cpu.{json,md} with the machine.
Times are the median of `repeat` calls per column, taken in interleaved rounds (every column in turn,
after warm-up); ratios are peer time / xcomp mlx time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from host import host  # noqa: E402  (benchmarks/host.py: the machine record every benchmark writes)

HERE = os.path.dirname(os.path.abspath(__file__))


ROUNDS = 5


def interleaved(cols: dict, repeat: int, settle_s: float = 0.0, clock=time.perf_counter) -> dict:
    """Seconds per call of each column: ROUNDS rounds, each timing every column in turn (so load
    from other processes and clock changes hit all columns alike) over `repeat` // ROUNDS calls after
    warm-up; the median over all calls. `settle_s`: sleep before each column (lets the previous
    column's spinning worker threads go idle). `clock`: e.g. time.thread_time (CPU time of the calling
    thread: for single-threaded columns on a busy machine)."""
    per_round = max(1, repeat // ROUNDS)
    times = {k: [] for k in cols}
    for _ in range(ROUNDS):
        for k, fn in cols.items():
            if settle_s:
                time.sleep(settle_s)
            for _ in range(2):
                fn()
            for _ in range(per_round):
                t0 = clock()
                fn()
                times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> dict:
    import mlx.core as mx
    import torch
    return host(torch=torch.__version__, mlx=mx.__version__, mlx_device=str(mx.default_device()))


def bench_model(name: str, repeat: int, inductor: bool) -> dict:
    import mlx.core as mx
    import torch

    import xcomp
    from xcomp.backends.mlx.target import MLXEvaluator
    from xcomp.zoo import MODELS

    model, inputs = MODELS[name]()
    xs_np = [x.numpy() for x in inputs]
    xs_mx = [mx.array(x) for x in xs_np]
    row: dict = {"model": name}
    cols = {}
    with torch.no_grad():
        expected = model(*inputs).numpy()
        cols["torch_eager"] = lambda: model(*inputs)
        if inductor:
            compiled = torch.compile(model)
            compiled(*inputs)
            cols["torch_compile"] = lambda: compiled(*inputs)
    captured = xcomp.capture(model, inputs)
    eager = MLXEvaluator(captured)
    cols["mlx_eager"] = lambda: mx.eval(eager.run(xs_mx))
    mx_compiled = mx.compile(lambda *a: eager.run(list(a)))
    cols["mx_compile"] = lambda: mx.eval(mx_compiled(*xs_mx))
    fast = xcomp.compile(model, target="mlx")
    out = fast(*xs_mx)
    cols["xcomp_mlx"] = lambda: mx.eval(fast(*xs_mx))
    ref = xcomp.compile(model, target="reference")
    cols["xcomp_reference"] = lambda: ref(*xs_np)
    with torch.no_grad():
        row.update(interleaved(cols, repeat))
    row["xcomp_mlx_max_error"] = float(np.max(np.abs(np.array(out) - expected)))
    row["ops_captured"] = captured.op_count()
    row["ops_optimized"] = fast.program().op_count()
    return row


PEERS = ["torch_eager", "torch_compile", "mlx_eager", "mx_compile"]


def to_markdown(rows: list[dict], info: dict) -> str:
    cols = ["torch_eager", "torch_compile", "mlx_eager", "mx_compile", "xcomp_mlx", "xcomp_reference"]
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, {info['system']}; torch {info['torch']}, "
             f"MLX {info['mlx']} ({info['mlx_device']}); {info['date']}", "",
             "Median ms per call (ratio = peer time / xcomp mlx time; >1 means xcomp is faster):", "",
             "| model | " + " | ".join(cols) + " | ops captured -> optimized |",
             "|---|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = []
        for c in cols:
            if c not in r:
                cells.append("n/a")
                continue
            ratio = f" ({r[c] / r['xcomp_mlx']:.2f}x)" if c in PEERS else ""
            cells.append(f"{r[c] * 1e3:.3f}{ratio}")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {r['ops_captured']} -> {r['ops_optimized']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from xcomp.zoo import MODELS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=sorted(MODELS))
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--no-inductor", action="store_true", help="skip torch.compile (slow to compile on CPU)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    info = machine()
    rows = [bench_model(m, args.repeat, not args.no_inductor) for m in args.models]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "models_cpu.json"), "w") as f:
        json.dump({"machine": info, "rows": rows}, f, indent=2)
    md = to_markdown(rows, info)
    with open(os.path.join(args.out, "models_cpu.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
