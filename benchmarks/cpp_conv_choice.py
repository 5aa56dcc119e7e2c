"""How the cpp target picks a convolution kernel per shape: the direct kernel against im2col + GEMM
on a few shapes (depthwise, thin stem, regular 3x3), interleaved rounds, medians.

Run: python benchmarks/cpp_conv_choice.py  (writes benchmarks/results/cpp_conv_choice.{json,md})
"""
from __future__ import annotations

import json
import os
import platform
import statistics
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
}
ROUNDS, CALLS = 9, 5
CHOSEN = ops_linalg.DIRECT_MAX_TAPS


def compiled(x, w, groups, pad, taps):
    ops_linalg.DIRECT_MAX_TAPS = taps
    fn = xcomp.compile(lambda t: F.conv2d(t, w, padding=pad, groups=groups), target="cpp")
    fn(x)
    return fn


def main():
    torch.manual_seed(0)
    rows = []
    for name, (xs, ws, groups, pad) in SHAPES.items():
        x, w = torch.randn(xs), torch.randn(ws)
        direct, im2col = compiled(x, w, groups, pad, 10 ** 9), compiled(x, w, groups, pad, 0)
        ops_linalg.DIRECT_MAX_TAPS = CHOSEN
        times = {"direct": [], "im2col": []}
        for _ in range(ROUNDS):
            for label, fn in (("direct", direct), ("im2col", im2col)):
                t0 = time.perf_counter()
                for _ in range(CALLS):
                    fn(x)
                times[label].append((time.perf_counter() - t0) / CALLS * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        taps = ws[1] * ws[2] * ws[3]
        rows.append({"shape": name, "taps": taps, "direct_ms": round(med["direct"], 4),
                     "im2col_ms": round(med["im2col"], 4), "faster": min(med, key=med.get),
                     "chosen": "direct" if taps <= CHOSEN else "im2col"})
        print(rows[-1])
    out = {"machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
           "load_average": os.getloadavg(), "rounds": ROUNDS, "calls_per_round": CALLS, "rows": rows}
    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cpp_conv_choice")
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"Convolution kernel choice on cpp ({out['machine']}, load average {out['load_average'][0]:.1f})\n\n"
                "| shape | taps (cin/groups x k) | direct ms | im2col+GEMM ms | faster | chosen |\n|---|---:|---:|---:|---|---|\n")
        for r in rows:
            f.write(f"| {r['shape']} | {r['taps']} | {r['direct_ms']} | {r['im2col_ms']} | {r['faster']} | {r['chosen']} |\n")


if __name__ == "__main__":
    main()
