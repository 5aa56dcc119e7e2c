"""Dynamic shapes on the cpp target: the GPT block called at 20 sequence lengths, static (one C++
library built per length) against one symbolic program (one library, sizes as run-time arguments),
beside torch.compile(dynamic=True); and per-call time of the dynamic program against the static one
at the same length.

    python benchmarks/cpp_dynamic_shapes.py [--lengths 20] [--repeat 30] [--no-inductor] [--out NAME]

Totals are wall time for all calls, compilation included (capture, passes, C++ code generation and
compiler), each output a torch tensor. Every xcomp column starts from an empty cache folder of its
own (XCOMP_CACHE_DIR), so no library or optimized program comes from an earlier run; torch.compile
runs with Inductor's on-disk caches disabled (`--inductor-cache` keeps them). Per-call times are
medians over interleaved rounds (benchmarks/models_cpu.py), both programs compiled beforehand.
Writes benchmarks/results/<out>.{json,md} with the machine.
"""
from __future__ import annotations

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from dynamic_shapes import parser, torch_columns, total_time, workload, write_results  # noqa: E402
from models_cpu import interleaved  # noqa: E402


def main(argv=None) -> int:
    ap = parser("cpp_dynamic_shapes")
    ap.add_argument("--settle", type=float, default=0.02, help="seconds of sleep before each column's calls")
    args = ap.parse_args(argv)
    model, ls, xs, expected, load_before = workload(args)
    batch, dim = xs[0].shape[0], xs[0].shape[2]

    import torch

    import xcomp

    totals, stats, errors = {}, {}, {}
    columns = [("cpp static", False), ("cpp dynamic", {"x": {1: "seq"}}),
               ("cpp dynamic batch+seq", {"x": {0: "batch", 1: "seq"}}), ("cpp automatic", None)]
    for label, dynamic in columns:
        with tempfile.TemporaryDirectory(prefix="xcomp-bench-") as root:
            os.environ["XCOMP_CACHE_DIR"] = root     # cold: no library or program from earlier runs
            compiled = xcomp.compile(model, target="cpp", dynamic=dynamic)
            outs = []
            totals[label] = total_time(lambda x: outs.append(compiled(x)), xs)
            os.environ.pop("XCOMP_CACHE_DIR")
        s = compiled.stats
        stats[label] = {"captures": s.captures, "builds": s.builds, "libraries": s.specializations or s.builds,
                        "static_ops": list(s.static_ops)}
        errors[label] = max(float((o - e).abs().max()) for o, e in zip(outs, expected))
        print(f"{label:>22}: {totals[label]:8.2f} s  {stats[label]}  max error {errors[label]:.2e}", flush=True)
    torch_columns(model, xs, expected, totals, errors, inductor=not args.no_inductor, width=22)

    per_call = []
    dyn = xcomp.compile(model, target="cpp", dynamic={"x": {1: "seq"}})
    for t in args.per_call:
        x = torch.randn(batch, t, dim)
        xn = x.numpy()
        static = xcomp.compile(model, target="cpp", dynamic=False)
        dyn(xn), static(xn)   # compile both for this length (numpy in and out: no torch copies)
        runners = [c.cache[c._last_key].runner for c in (static, dyn)]
        # (torch eager is left out here: timed after torch.compile in this process it read 100+ ms)
        cols = {"static": lambda: static(xn), "dynamic": lambda: dyn(xn)}
        secs = interleaved(cols, args.repeat, settle_s=args.settle)
        for r in runners:     # one thread each: the generated code alone, no thread pools competing
            r.set_threads(1)
        one = interleaved({"static": lambda: static(xn), "dynamic": lambda: dyn(xn)}, args.repeat, settle_s=args.settle)
        for r in runners:
            r.set_threads(0)
        row = {"length": t, **{k: v * 1e3 for k, v in secs.items()}, "dynamic/static": secs["dynamic"] / secs["static"],
               "static 1 thread": one["static"] * 1e3, "dynamic 1 thread": one["dynamic"] * 1e3,
               "dynamic/static 1 thread": one["dynamic"] / one["static"]}
        per_call.append(row)
        print(f"length {t}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "length"), flush=True)

    write_results(args, load_before, ls, markdown, totals_s=totals, stats=stats, max_abs_error=errors,
                  per_call_ms=per_call)
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Dynamic shapes on cpp: {r['model']}, {len(r['lengths'])} calls at {len(r['lengths'])} sequence lengths",
             "", f"Machine: {m['cpu']} ({m['cores']} cores, shared: 1-minute load average "
             f"{m['load_average'][0]} at the start, {m['load_average'][1]} at the end), {m['system']}, torch {m['torch']}, "
             f"{m['date']}. Lengths: {r['lengths']}. Every xcomp column starts from an empty cache folder; "
             f"Inductor's caches {'kept' if r['inductor_caches'] else 'disabled'}.", "",
             "| column | total for all calls (s) | captures | C++ libraries built | max abs error |",
             "|---|---:|---:|---:|---:|"]
    for k, v in r["totals_s"].items():
        s = r["stats"].get(k, {})
        err = r["max_abs_error"].get(k)
        lines.append(f"| {k} | {v:.2f} | {s.get('captures', '-')} | {s.get('libraries', '-')} | "
                     f"{'-' if err is None else f'{err:.1e}'} |")
    t = r["totals_s"]
    if "cpp static" in t and "cpp dynamic" in t:
        lines += ["", f"One symbolic program is {t['cpp static'] / t['cpp dynamic']:.1f}x faster than building per length"
                  + (f"; torch.compile(dynamic=True) takes {t['torch.compile dynamic'] / t['cpp dynamic']:.2f}x"
                     " the dynamic program's time" if "torch.compile dynamic" in t else "") + "."]
    lines += ["", f"Per call (ms, median of {r['repeat']} calls in interleaved rounds, compiled beforehand; numpy in "
              "and out; each library's default threads, then one thread each):", "",
              "| length | static | dynamic | dynamic / static | static, 1 thread | dynamic, 1 thread | "
              "dynamic / static, 1 thread |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["per_call_ms"]:
        lines.append(f"| {row['length']} | {row['static']:.3f} | {row['dynamic']:.3f} | {row['dynamic/static']:.3f} | "
                     f"{row['static 1 thread']:.3f} | {row['dynamic 1 thread']:.3f} | "
                     f"{row['dynamic/static 1 thread']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
