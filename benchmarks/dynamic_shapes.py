"""Dynamic shapes: the GPT block called at 20 sequence lengths, static (recompiling) against one
symbolic program, beside torch.compile(dynamic=True); and per-call time at one length.

    python benchmarks/dynamic_shapes.py [--lengths 20] [--repeat 30] [--no-inductor] [--cpp] [--out NAME]

Columns of the first table (wall time for all calls, compilation included, each output converted
to torch so the work is done): xcomp `mlx` with `dynamic=False` (every new length captures,
optimizes and builds again), `dynamic={"x": {1: "seq"}}` (one capture and build; compiled
`mx.compile(shapeless=True)` where the graph allows it), the same with `XCOMP_MLX_SHAPELESS=0`
("per-shape": MLX traces the graph once per new shape), `dynamic=None` (automatic: static first, then one symbolic recompile),
torch.compile(dynamic=True) (Inductor), and torch eager for reference. The second table times one
call at a few lengths (already compiled), in interleaved rounds: the symbolic program against the
static program compiled for that length. torch.compile runs with Inductor's on-disk caches disabled (`--inductor-cache` keeps them): xcomp's `mlx`
path has no disk cache, so both sides compile cold. `--cpp` adds the `cpp` target (symbolic programs build one
C++ library per size binding there: the capture is saved, not the compiles). Writes
benchmarks/results/dynamic_shapes.{json,md} with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models_cpu import interleaved, machine  # noqa: E402


def lengths(n: int) -> list[int]:
    """n distinct sequence lengths from 5 to 260, in a shuffled but fixed order."""
    import random
    out = sorted({5 + (255 * i) // max(n - 1, 1) for i in range(n)})
    random.Random(0).shuffle(out)
    return out


def total_time(call, xs) -> float:
    t0 = time.perf_counter()
    for x in xs:
        call(x)
    return time.perf_counter() - t0


def parser(out: str) -> argparse.ArgumentParser:
    """The options every dynamic-shapes benchmark takes (results file `out` by default)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-inductor", action="store_true")
    ap.add_argument("--per-call", type=int, nargs="*", default=[16, 64, 256])
    ap.add_argument("--out", default=out, help="results file name in benchmarks/results/")
    ap.add_argument("--inductor-cache", action="store_true",
                    help="let torch.compile use Inductor's on-disk caches (cold compiles on both sides otherwise)")
    return ap


def workload(args):
    """(model, lengths, inputs, eager outputs, load average before): the GPT block at
    `args.lengths` sequence lengths; disables Inductor's caches unless `--inductor-cache`."""
    if not args.inductor_cache:  # cold compiles on both sides
        os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    import torch

    from xcomp.zoo import gpt_block
    load_before = os.getloadavg()[0]
    model, (example,) = gpt_block()
    batch, dim = example.shape[0], example.shape[2]
    torch.manual_seed(0)
    ls = lengths(args.lengths)
    xs = [torch.randn(batch, t, dim) for t in ls]
    with torch.no_grad():
        expected = [model(x) for x in xs]
    return model, ls, xs, expected, load_before


def write_results(args, load_before, ls, markdown, **fields) -> None:
    """Write benchmarks/results/<args.out>.{json,md} (the machine, the workload and `fields`) and
    print the Markdown."""
    result = {"machine": {**machine(), "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]},
              "inductor_caches": bool(args.inductor_cache),
              "model": "gpt_block (batch 2, dim 128, 4 heads)", "lengths": ls, **fields, "repeat": args.repeat}
    out = os.path.join(HERE, "results", args.out)
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(markdown(result))
    print(markdown(result))


def torch_columns(model, xs, expected, totals, errors, eager=True, inductor=True, width=16) -> None:
    """Add torch eager and torch.compile(dynamic=True) over the same calls to `totals`/`errors`."""
    import torch
    with torch.no_grad():
        if eager:
            totals["torch eager"] = total_time(model, xs)
        if inductor:
            tc = torch.compile(model, dynamic=True)
            outs = []
            totals["torch.compile dynamic"] = total_time(lambda x: outs.append(tc(x)), xs)
            errors["torch.compile dynamic"] = max(float((o - e).abs().max()) for o, e in zip(outs, expected))
    for k in ("torch eager", "torch.compile dynamic"):
        if k in totals:
            print(f"{k:>{width}}: {totals[k]:8.2f} s", flush=True)


def main(argv=None) -> int:
    ap = parser("dynamic_shapes")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds of the xcomp columns (median kept)")
    ap.add_argument("--only-mlx", action="store_true", help="leave out torch eager and torch.compile")
    ap.add_argument("--cpp", action="store_true")
    args = ap.parse_args(argv)
    model, ls, xs, expected, load_before = workload(args)
    batch, dim = xs[0].shape[0], xs[0].shape[2]

    import mlx.core as mx
    import torch

    import xcomp

    def xcomp_call(target, dynamic):
        compiled = xcomp.compile(model, target=target, dynamic=dynamic)
        outs = []

        def call(x):
            outs.append(compiled(x))
        return compiled, call, outs

    totals, stats, errors, modes = {}, {}, {}, {}
    columns = [("mlx static", "mlx", False), ("mlx dynamic", "mlx", {"x": {1: "seq"}}),
               ("mlx dynamic per-shape", "mlx", {"x": {1: "seq"}}), ("mlx automatic", "mlx", None)]
    if args.cpp:
        columns += [("cpp static", "cpp", False), ("cpp dynamic", "cpp", {"x": {1: "seq"}})]
    runs: dict[str, list] = {label: [] for label, _, _ in columns}
    for r in range(args.rounds):  # interleaved rounds, each column compiled afresh; the median is kept
        for label, target, dynamic in columns[r % len(columns):] + columns[:r % len(columns)]:
            compiled, call, outs = xcomp_call(target, dynamic)
            os.environ["XCOMP_MLX_SHAPELESS"] = "0" if label.endswith("per-shape") else "1"
            runs[label].append(total_time(call, xs))
            os.environ.pop("XCOMP_MLX_SHAPELESS")
            stats[label] = {k: v for k, v in vars(compiled.stats).items() if isinstance(v, int)}
            runner = compiled.cache[compiled._last_key].runner
            if hasattr(runner, "shapeless"):
                modes[label] = "shapeless" if runner.shapeless else f"per shape ({runner.reason or 'asked'})"
            errors[label] = max(float((o - e).abs().max()) for o, e in zip(outs, expected))
            print(f"{label:>16}: {runs[label][-1]:8.2f} s  {stats[label]}  max error {errors[label]:.2e}", flush=True)
    for label, _, _ in columns:
        totals[label] = sorted(runs[label])[len(runs[label]) // 2]
    torch_columns(model, xs, expected, totals, errors, eager=not args.only_mlx,
                  inductor=not args.no_inductor and not args.only_mlx)

    per_call = []
    dyn = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
    per_shape = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
    for t in args.per_call:
        x = torch.randn(batch, t, dim)
        static = xcomp.compile(model, target="mlx", dynamic=False)
        xm = mx.array(x.numpy())
        dyn(xm), static(xm)   # compile both for this length (MLX arrays in and out: no torch copies)
        os.environ["XCOMP_MLX_SHAPELESS"] = "0"
        per_shape(xm)
        os.environ.pop("XCOMP_MLX_SHAPELESS")
        cols = {"static": lambda: mx.eval(static(xm)), "dynamic": lambda: mx.eval(dyn(xm)),
                "dynamic per-shape": lambda: mx.eval(per_shape(xm))}
        if not args.only_mlx:
            with torch.no_grad():
                cols["torch eager"] = lambda: model(x)
        secs = interleaved(cols, args.repeat)
        row = {"length": t, **{k: v * 1e3 for k, v in secs.items()},
               "dynamic/static": secs["dynamic"] / secs["static"],
               "per-shape/static": secs["dynamic per-shape"] / secs["static"]}
        per_call.append(row)
        print(f"length {t}: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in secs.items())
              + f"; dynamic/static {row['dynamic/static']:.3f}", flush=True)

    # the cost of a new length on an already compiled program: first call minus a repeat call,
    # shapeless against per-shape tracing, the two interleaved at each length
    news = {}
    for label, flag in (("shapeless", "1"), ("per-shape", "0")):
        os.environ["XCOMP_MLX_SHAPELESS"] = flag
        news[label] = xcomp.compile(model, target="mlx", dynamic={"x": {1: "seq"}})
        mx.eval(news[label](mx.array(xs[0].numpy())))
        os.environ.pop("XCOMP_MLX_SHAPELESS")
    extra = {k: [] for k in news}
    for i, x in enumerate(xs[1:]):
        xm = mx.array(x.numpy())
        for label in (list(news) if i % 2 == 0 else list(news)[::-1]):
            t0 = time.perf_counter()
            mx.eval(news[label](xm))
            t1 = time.perf_counter()
            mx.eval(news[label](xm))
            extra[label].append((t1 - t0) - (time.perf_counter() - t1))
    new_length_ms = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in extra.items()}
    print("new length (first call minus repeat, median ms): " +
          ", ".join(f"{k} {v:.2f}" for k, v in new_length_ms.items()), flush=True)

    write_results(args, load_before, ls, markdown, totals_s=totals, stats=stats, max_abs_error=errors,
                  per_call_ms=per_call, mlx_modes=modes, new_length_ms=new_length_ms, rounds=args.rounds)
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Dynamic shapes: {r['model']}, {len(r['lengths'])} calls at {len(r['lengths'])} sequence lengths",
             "", f"Machine: {m['cpu']} ({m['cores']} cores, shared: 1-minute load average "
             f"{m['load_average'][0]} at the start, {m['load_average'][1]} at the end), {m['system']}, torch {m['torch']}, "
             f"MLX {m['mlx']} on {m['mlx_device']}, {m['date']}. Lengths: {r['lengths']}.", "",
             f"Totals: median of {r.get('rounds', 1)} interleaved round(s), each column compiled afresh.", "",
             "| column | total for all calls (s) | captures | builds | max abs error |", "|---|---:|---:|---:|---:|"]
    for k, v in r["totals_s"].items():
        s = r["stats"].get(k, {})
        err = r["max_abs_error"].get(k)
        lines.append(f"| {k} | {v:.2f} | {s.get('captures', '-')} | {s.get('builds', '-')} | "
                     f"{'-' if err is None else f'{err:.1e}'} |")
    if r.get("mlx_modes"):
        lines += ["", "mlx dynamic programs ran " + "; ".join(f"{k}: {v}" for k, v in r["mlx_modes"].items()) + "."]
    base = r["totals_s"].get("mlx static")
    if base and "mlx dynamic" in r["totals_s"]:
        lines += ["", f"Dynamic is {base / r['totals_s']['mlx dynamic']:.1f}x faster than recompiling per length"
                  + (f"; torch.compile(dynamic=True) takes {r['totals_s']['torch.compile dynamic'] / r['totals_s']['mlx dynamic']:.1f}x"
                     " the dynamic program's time" if "torch.compile dynamic" in r["totals_s"] else "") + "."]
    if r.get("new_length_ms"):
        lines += ["", "A new length on a compiled symbolic program (first call minus a repeat call at that length, "
                  "median over the lengths, ms): " + ", ".join(f"{k} {v:.2f}" for k, v in r["new_length_ms"].items()) + "."]
    lines += ["", f"Per call (ms, median of {r['repeat']} calls in interleaved rounds, compiled beforehand):", "",
              "| length | static program | dynamic program | dynamic / static | dynamic per-shape | per-shape / static "
              "| torch eager |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["per_call_ms"]:
        lines.append(f"| {row['length']} | {row['static']:.3f} | {row['dynamic']:.3f} | {row['dynamic/static']:.3f} | "
                     f"{row.get('dynamic per-shape', float('nan')):.3f} | {row.get('per-shape/static', float('nan')):.3f} | "
                     f"{row.get('torch eager', float('nan')):.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
