"""Time to the first result of the GPT block in a fresh process, cold and warm (xcomp's compile cache).

    python benchmarks/first_call.py [--targets mlx cpp] [--rounds 5]

Each round and target runs two fresh processes (subprocess) on one new, empty XCOMP_CACHE_DIR: the
first is cold (nothing cached: passes, code generation and the C++ compiler run; TMPDIR is new as
well, so MLX's own CPU kernel cache starts empty), the second is warm (the same cache: the optimized
program, the C++ library and MLX's kernels are found). Each process builds `xcomp.zoo.gpt_block`,
then times `xcomp.compile(model, target)(x)` split into

- capture: torch.export and the conversion to IR, and storing the capture (cold); the capture
  cache's key and lookup (warm: `xcomp.frontends.capture_cache`, torch.export skipped, weights read
  from the module; the process never imports torch._dynamo);
- program: the compile cache's lookup and load (warm), or the pass pipeline and storing (cold);
- build: the target's build: for cpp the library (warm: the index and library found, loaded with
  ctypes; cold: code generation and the compiler), for mlx the evaluator;
- run: the rest, chiefly the first call itself (for mlx its mx.compile trace).

`total` runs from before `xcomp.compile` to after the first call (imports of torch and the model's
construction come before); the goal is a warm total under 50 ms. Rounds alternate the targets; the
table holds medians. Bytecode is written to a folder of its own
(PYTHONPYCACHEPREFIX) and a discarded first process fills it, so no process pays for compiling
Python sources (as an installed package would not). Writes benchmarks/results/first_call.md/.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PHASES = ("capture", "program", "build", "run")


def child(target: str) -> None:
    """One process: the GPT block compiled for `target`, phases timed; prints one JSON line."""
    t_start = time.perf_counter()
    import torch

    import xcomp
    import xcomp.api as api
    from xcomp import program_cache
    from xcomp.backends import get_target
    from xcomp.zoo import MODELS
    t_imported = time.perf_counter()
    spent = dict.fromkeys(PHASES[:-1], 0.0)
    cpu = dict.fromkeys(PHASES[:-1], 0.0)   # this process's CPU seconds (all threads), less load-bound

    def timed(phase, fn):
        def wrapper(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[phase] += time.perf_counter() - t0
                cpu[phase] += time.process_time() - c0
        return wrapper
    api._capture = timed("capture", api._capture)
    program_cache.optimize = timed("program", program_cache.optimize)
    cls = type(get_target(target))
    cls.build = timed("build", cls.build)
    model, inputs = MODELS["gpt_block"]()
    import resource

    def cpu_now():   # this process and the children it waited for (the C++ compiler, MLX's kernel JIT)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime
    t0, c0 = time.perf_counter(), cpu_now()
    fast = xcomp.compile(model, target=target)
    with torch.no_grad():
        y = fast(*inputs)
    total, total_cpu = time.perf_counter() - t0, cpu_now() - c0
    with torch.no_grad():
        err = float((y - model(*inputs)).abs().max())
    dynamo = "torch._dynamo" in sys.modules   # before the eager check below (which imports nothing of it)
    report, captured = fast.cache[fast._last_key].report, fast.cache[fast._last_key].captured
    out = {k: v * 1e3 for k, v in spent.items()}
    out["run"] = total * 1e3 - sum(out.values())
    out.update(total=total * 1e3, after_capture=total * 1e3 - out["capture"], imports=(t_imported - t_start) * 1e3,
               after_capture_cpu=(total_cpu - cpu["capture"]) * 1e3, total_cpu=total_cpu * 1e3,
               capture_hit=bool(captured.cached), dynamo=dynamo,
               **{f"{k}_cpu": v * 1e3 for k, v in cpu.items()},
               hit=isinstance(report, program_cache.CachedReport), max_abs_err=err)
    print(json.dumps(out))


def run_child(target: str, cache_dir: str, tmp: str, pycache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(XCOMP_CACHE_DIR=cache_dir, TMPDIR=tmp, PYTHONPYCACHEPREFIX=pycache, XCOMP_PROGRESS="0")
    env.pop("XCOMP_CACHE", None)
    r = subprocess.run([sys.executable, __file__, "--child", target], env=env, capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{target} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(medians: dict, rounds: int) -> str:
    head = ("| target | start | capture ms | program ms | build ms | run ms | after capture ms | (CPU ms) | total ms | "
            "(CPU ms) | capture from cache | program from cache | torch._dynamo imported | max abs err |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|")
    rows = []
    for (target, start), m in medians.items():
        rows.append(f"| {target} | {start} | " + " | ".join(
            f"{m[k]:.1f}" for k in PHASES + ("after_capture", "after_capture_cpu", "total", "total_cpu"))
            + f" | {m['capture_hits']}/{rounds} | {m['hits']}/{rounds} | {m['dynamo']}/{rounds} | {m['max_abs_err']:.1e} |")
    return "\n".join([head] + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["mlx", "cpp"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    work = tempfile.mkdtemp(prefix="xcomp-first-call-")
    pycache = os.path.join(work, "pycache")
    samples: dict = {}
    try:
        for target in args.targets:   # fills the bytecode folder; not counted
            d = tempfile.mkdtemp(dir=work)
            run_child(target, os.path.join(d, "cache"), d, pycache)
        for r in range(args.rounds):
            order = args.targets[r % len(args.targets):] + args.targets[:r % len(args.targets)]
            for target in order:
                d = tempfile.mkdtemp(dir=work)
                cold = run_child(target, os.path.join(d, "cache"), d, pycache)
                warm = run_child(target, os.path.join(d, "cache"), d, pycache)
                samples.setdefault((target, "cold"), []).append(cold)
                samples.setdefault((target, "warm"), []).append(warm)
                shutil.rmtree(d, ignore_errors=True)
                print(f"round {r + 1} {target}: cold {cold['total']:.0f} ms (after capture {cold['after_capture']:.0f}), "
                      f"warm {warm['total']:.1f} ms (CPU {warm['total_cpu']:.1f}; capture {warm['capture']:.1f}, "
                      f"hits: capture {warm['capture_hit']}, program {warm['hit']}; dynamo {warm['dynamo']})",
                      file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {}
    for key, runs in samples.items():
        m = {k: statistics.median(s[k] for s in runs)
             for k in PHASES + ("after_capture", "after_capture_cpu", "total", "total_cpu", "imports")}
        m["hits"] = sum(s["hit"] for s in runs)
        m["capture_hits"] = sum(s["capture_hit"] for s in runs)
        m["dynamo"] = sum(s["dynamo"] for s in runs)
        m["max_abs_err"] = max(s["max_abs_err"] for s in runs)
        medians[key] = m
    sys.path.insert(0, HERE)
    from host import host
    import mlx.core as mx
    import torch
    machine = host(torch=torch.__version__, mlx=mx.__version__, load_average=round(os.getloadavg()[0], 1))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "first_call.json"), "w") as f:
        json.dump({"machine": machine, "rounds": args.rounds,
                   "medians": {f"{t}/{s}": m for (t, s), m in medians.items()},
                   "samples": {f"{t}/{s}": v for (t, s), v in samples.items()}}, f, indent=1)
    text = (f"# First call of the GPT block in a fresh process: cold and warm compile cache\n\n"
            f"{table(medians, args.rounds)}\n\n"
            f"Medians of {args.rounds} interleaved rounds (`python benchmarks/first_call.py`). "
            "`xcomp.zoo.gpt_block` (batch 2, 32 tokens, width 128, 4 heads). Cold: an empty XCOMP_CACHE_DIR and "
            "TMPDIR (torch.export, pass pipeline, C++ code generation and compiler, MLX's CPU kernel JIT all run); warm: a "
            "second process on the same folders. capture = torch.export and conversion to IR (cold), the capture cache's "
            "key and lookup (warm: torch.export skipped, weights read from the module); program = the pass "
            "pipeline (cold) or the compile cache's lookup and IR parse (warm); build = the target's build "
            "(cpp: code generation and g++ cold, the cached library loaded warm); run = the first call and the "
            "rest (cold cpp: the compiler probe, kept under the cache root); after capture = program + build + run; total = "
            "from before `xcomp.compile` to after the first call, the goal being under 50 ms warm; (CPU ms) = the CPU "
            "time spent (after capture; in total) by the process (all its threads) and the children it waited for (g++, "
            "MLX's kernel compiler): less bound to the machine's load than wall time. Imports "
            f"(torch, xcomp) come before and are not counted: median {statistics.median(m['imports'] for m in medians.values()):.0f} ms.\n\n"
            f"Machine: {json.dumps(machine)}\n")
    with open(os.path.join(RESULTS, "first_call.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
