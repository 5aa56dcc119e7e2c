"""How the cpp target picks a convolution kernel per shape: the direct kernel against im2col + GEMM
on a few shapes (depthwise, thin stem, regular 3x3), with torch eager's conv2d as the reference
column, interleaved rounds, medians; then the zoo ResNet-style CNN (xcomp/zoo.py cnn) at batch 1 and
8, torch eager against xcomp cpp. Everything is compiled before any timing; 2 threads each
(torch.set_num_threads(2), XCOMP_NUM_THREADS=2).

Run: python benchmarks/cpp_conv_choice.py  (writes benchmarks/results/cpp_conv_choice.{json,md})
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("XCOMP_NUM_THREADS", "2")
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import xcomp
from xcomp.backends.cpp import ops_linalg

# name: (input shape, weight shape, groups, padding)
SHAPES = {
    "depthwise 3x3, 32 ch, 32x32": ((1, 32, 32, 32), (32, 1, 3, 3), 32, 1),
    "depthwise 3x3, 64 ch, 56x56, batch 4": ((4, 64, 56, 56), (64, 1, 3, 3), 64, 1),
    "stem 3x3, 3 -> 16 ch, 32x32": ((1, 3, 32, 32), (16, 3, 3, 3), 1, 1),
    "regular 3x3, 16 -> 16 ch, 32x32": ((1, 16, 32, 32), (16, 16, 3, 3), 1, 1),
    "regular 3x3, 32 -> 32 ch, 32x32": ((1, 32, 32, 32), (32, 32, 3, 3), 1, 1),
    "regular 3x3, 64 -> 64 ch, 16x16, batch 4": ((4, 64, 16, 16), (64, 64, 3, 3), 1, 1),
    "regular 3x3, 16 -> 16 ch, 16x16, batch 8": ((8, 16, 16, 16), (16, 16, 3, 3), 1, 1),
    "regular 3x3, 128 -> 128 ch, 8x8, batch 4": ((4, 128, 8, 8), (128, 128, 3, 3), 1, 1),
    "regular 3x3, 256 -> 256 ch, 14x14": ((1, 256, 14, 14), (256, 256, 3, 3), 1, 1),
}
ROUNDS, CALLS = 9, 5
NOTE = (
    "\nOn the shared 2-core box (other sessions' builds and tests running) torch eager's column is not "
    "trustworthy (likely its 2-thread OpenMP barriers waiting for descheduled threads; not verified): one shape's median moved "
    "between 0.2 and 45 ms from run to run (the CNN: 0.95-32 ms at batch 1). The direct/im2col columns are "
    "interleaved against each other; quiet-machine peer figures are in cpp_cpu.md.\n")
SETTLE_S = 0.2  # OpenBLAS and pool workers spin ~0.1 s after a call: let them sleep first
CHOSEN = ops_linalg.DIRECT_MAX_TAPS


def compiled(x, w, groups, pad, taps):
    # a cache root of its own: the program cache is keyed by the IR text, not by DIRECT_MAX_TAPS, so
    # a shared root would hand the second variant the first one's library
    os.environ["XCOMP_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"xcomp-conv-choice-{taps}-")
    ops_linalg.DIRECT_MAX_TAPS = taps
    fn = xcomp.compile(lambda t: F.conv2d(t, w, padding=pad, groups=groups), target="cpp")
    fn(x)
    return fn


def timed(fns: dict, x, rounds: int = ROUNDS, calls: int = CALLS) -> dict:
    """Median ms per call of each function, in interleaved rounds."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for label, fn in fns.items():
            time.sleep(SETTLE_S)  # the column before's spinning worker threads go idle first
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(x)
            times[label].append((time.perf_counter() - t0) / calls * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def cnn_rows() -> list[dict]:
    """The zoo CNN at batch 1 and 8, torch eager against xcomp cpp in interleaved rounds."""
    from xcomp.zoo import cnn
    torch.set_num_threads(2)
    rows = []
    for batch in (1, 8):
        model, (x,) = cnn(batch=batch)
        fn = xcomp.compile(model, target="cpp")
        fn(x)
        with torch.no_grad():
            med = timed({"eager": model, "cpp": fn}, x, rounds=15, calls=20 if batch == 1 else 5)
        rows.append({"batch": batch, "eager_ms": round(med["eager"], 4), "cpp_ms": round(med["cpp"], 4),
                     "eager_over_cpp": round(med["eager"] / med["cpp"], 2)})
    return rows


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    # torch eager first, before any xcomp library is loaded: with the 18 libraries of the table in
    # the process, eager's convolutions ran 50-300x slower on the shared box (cause not found)
    eager, data = {}, {}
    for name, (xs, ws, groups, pad) in SHAPES.items():
        x, w = torch.randn(xs), torch.randn(ws)
        data[name] = (x, w)
        with torch.no_grad():
            eager[name] = timed({"eager": lambda t, w=w, g=groups, p=pad: F.conv2d(t, w, padding=p, groups=g)}, x)["eager"]
    # the zoo CNN in a process of its own (one library loaded), both columns interleaved there
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--cnn"], capture_output=True, text=True, check=True)
    zoo = json.loads(r.stdout.strip().splitlines()[-1])
    built = {}
    for name, (xs, ws, groups, pad) in SHAPES.items():
        x, w = data[name]
        built[name] = (x, {"direct": compiled(x, w, groups, pad, 10 ** 9), "im2col": compiled(x, w, groups, pad, 0)})
    ops_linalg.DIRECT_MAX_TAPS = CHOSEN
    rows = []
    for name, (xs, ws, groups, pad) in SHAPES.items():
        x, fns = built[name]
        with torch.no_grad():
            med = timed(fns, x)
        taps = ws[1] * ws[2] * ws[3]
        rows.append({"shape": name, "taps": taps, "eager_ms": round(eager[name], 4), "direct_ms": round(med["direct"], 4),
                     "im2col_ms": round(med["im2col"], 4), "faster": min(("direct", "im2col"), key=med.get),
                     "chosen": "direct" if taps <= CHOSEN else "im2col"})
        print(rows[-1])
    for row in zoo:
        print(row)
    cnn_rows_ = zoo
    out = {"machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
           "load_average": os.getloadavg(), "rounds": ROUNDS, "calls_per_round": CALLS, "rows": rows,
           "zoo_cnn": cnn_rows_}
    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpp_conv_choice")
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"Convolution kernel choice on cpp ({out['machine']}, load average {out['load_average'][0]:.1f}, "
                "2 threads; median ms per call; torch eager timed before any xcomp library was loaded, "
                "direct and im2col in interleaved rounds)\n\n"
                "| shape | taps (cin/groups x k) | torch eager | direct | im2col+GEMM | faster | chosen |\n"
                "|---|---:|---:|---:|---:|---|---|\n")
        for r in rows:
            f.write(f"| {r['shape']} | {r['taps']} | {r['eager_ms']} | {r['direct_ms']} | {r['im2col_ms']} | "
                    f"{r['faster']} | {r['chosen']} |\n")
        f.write("\nZoo ResNet-style CNN 3x32x32 (xcomp/zoo.py cnn), in a process of its own, interleaved rounds\n\n| batch | torch eager | xcomp cpp | eager / cpp |\n"
                "|---:|---:|---:|---:|\n")
        for r in cnn_rows_:
            f.write(f"| {r['batch']} | {r['eager_ms']} | {r['cpp_ms']} | {r['eager_over_cpp']} |\n")
        f.write(NOTE)


if __name__ == "__main__":
    if sys.argv[1:] == ["--cnn"]:
        print(json.dumps(cnn_rows()))
    else:
        main()
