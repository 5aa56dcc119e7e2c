"""Core ML packages with symbolic sizes: conversion time and MIL ops, dynamic against static.

    python benchmarks/coreml_dynamic.py [--rounds 3]

For the zoo GPT block and encoder layer (zoo default dims): module to saved `.mlpackage` through
`xcomp.export(..., target="coreml")` static (one package per shape) and with a symbolic batch and
sequence (`dynamic=`, one package for every length: RangeDim 1..4096), and coremltools' own path
for a flexible sequence (`ct.convert` of a `torch.export` program with `Dim`s and `ct.RangeDim`
inputs), where it succeeds. Float16 precision for all. Then the non-const MIL ops of each package by
kind. Medians over interleaved rounds. Writes benchmarks/results/coreml_dynamic.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

MODELS = {"gpt_block": "x", "encoder_layer": "src"}


def _xcomp(model, inputs, path, dynamic):
    """xcomp.export's steps, timed apart: (path, {"capture": s, "passes + Core ML": s})."""
    import xcomp
    from xcomp.api import optimize
    from xcomp.backends import get_target
    t0 = time.perf_counter()
    program = xcomp.capture(model, inputs, dynamic=dynamic)
    t1 = time.perf_counter()
    path = get_target("coreml").export(optimize(program, "coreml")[0], path)
    return path, {"capture": t1 - t0, "passes + Core ML": time.perf_counter() - t1}


def xcomp_static(model, inputs, arg, path):
    return _xcomp(model, inputs, path, False)


def xcomp_dynamic(model, inputs, arg, path):
    return _xcomp(model, inputs, path, {arg: {0: "B", 1: "S"}})


def ct_dynamic(model, inputs, arg, path):
    """coremltools' own flexible conversion: torch.export with Dims, RangeDim inputs."""
    import coremltools as ct
    import torch
    from torch.export import Dim
    ep = torch.export.export(model, inputs, dynamic_shapes={arg: {0: Dim("B", min=1, max=4096),
                                                                   1: Dim("S", min=1, max=4096)}})
    shape = ct.Shape([ct.RangeDim(1, 4096), ct.RangeDim(1, 4096), inputs[0].shape[2]])
    ct.convert(ep.run_decompositions({}), inputs=[ct.TensorType(name=arg, shape=shape)],
               convert_to="mlprogram").save(path)
    return path, None


CONVERTERS = {"xcomp static": xcomp_static, "xcomp dynamic": xcomp_dynamic, "ct.convert dynamic": ct_dynamic}


def bench(name: str, rounds: int, workdir: str) -> dict:
    from coreml_convert import mil_ops
    from xcomp.zoo import MODELS as ZOO
    model, inputs = ZOO[name]()
    times = {k: [] for k in CONVERTERS}
    phases: dict = {}
    errors, paths = {}, {}
    for r in range(rounds):
        for k, fn in CONVERTERS.items():
            if k in errors:
                continue
            path = os.path.join(workdir, f"{name}-{k.replace(' ', '_').replace('.', '_')}-{r}.mlpackage")
            t0 = time.perf_counter()
            try:
                paths[k], split = fn(model, inputs, MODELS[name], path)
            except Exception as e:  # a converter failing is a result, recorded with its reason
                errors[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
                continue
            times[k].append(time.perf_counter() - t0)
            for phase, t in (split or {}).items():
                phases.setdefault(k, {}).setdefault(phase, []).append(t)
    row = {"model": name, "shape": list(inputs[0].shape),
           "phases": {k: {ph: statistics.median(v) for ph, v in d.items()} for k, d in phases.items()},
           "seconds": {k: statistics.median(v) for k, v in times.items() if v and k not in errors},
           "errors": errors, "mil_ops": {k: dict(mil_ops(p)) for k, p in paths.items() if k not in errors}}
    row["op_counts"] = {k: sum(v.values()) for k, v in row["mil_ops"].items()}
    return row


def markdown(rows: list, info: dict, rounds: int) -> str:
    ks = list(CONVERTERS)
    out = ["# Core ML packages with symbolic sizes: dynamic vs static\n",
           f"Machine: {info['cpu']} ({info['cores']} cores, shared), {info['system']}, Python {info['python']}, "
           f"torch {info['torch']}, coremltools {info['coremltools']}, {info['date']}. Median of {rounds} "
           "interleaved rounds; module to saved `.mlpackage` (capture, passes, MIL, ct.convert, save), "
           "float16 precision. `xcomp dynamic`: batch and sequence symbolic (RangeDim 1..4096), one package "
           "for every length; `xcomp static`: one package per shape.\n",
           "| model (example shape) | " + " | ".join(f"{k} s" for k in ks) + " | dynamic / static time | "
           + " | ".join(f"ops {k}" for k in ks) + " |",
           "|---|" + "---:|" * (2 * len(ks) + 1)]
    for r in rows:
        s, c = r["seconds"], r["op_counts"]
        ratio = f"{s['xcomp dynamic'] / s['xcomp static']:.2f}x" if {"xcomp dynamic", "xcomp static"} <= set(s) else "-"
        out.append(f"| {r['model']} {tuple(r['shape'])} | " + " | ".join(f"{s[k]:.2f}" if k in s else "fails" for k in ks)
                   + f" | {ratio} | " + " | ".join(str(c[k]) if k in c else "-" for k in ks) + " |")
    out.append("\nxcomp's time by step (median s): capture (torch.export) / passes + MIL + ct.convert + save:\n")
    for r in rows:
        for k, ph in r["phases"].items():
            out.append(f"- {r['model']}, {k}: " + " / ".join(f"{ph[p]:.2f}" for p in ("capture", "passes + Core ML")))
    out.append("\nFailures:\n")
    out += [f"- {r['model']}, {k}: {e}" for r in rows for k, e in r["errors"].items()] or ["- none"]
    out.append("\nMIL op kinds (non-const):\n")
    for r in rows:
        for k, kinds in r["mil_ops"].items():
            out.append(f"- {r['model']}, {k}: " + ", ".join(f"{n} {v}" for n, v in sorted(kinds.items())))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(HERE, "results", "coreml_dynamic"))
    a = p.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)
    import coremltools  # noqa: F401  (imported once, before any timing)
    import xcomp  # noqa: F401
    from coreml_convert import machine
    workdir = tempfile.mkdtemp(prefix="coreml_dynamic_")
    try:
        rows = []
        for name in a.models:
            rows.append(bench(name, a.rounds, workdir))
            print(json.dumps({k: rows[-1][k] for k in ("model", "seconds", "op_counts", "errors")}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info = machine()
    with open(a.out + ".json", "w") as f:
        json.dump({"machine": info, "rounds": a.rounds, "rows": rows}, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(markdown(rows, info, a.rounds))
    print(markdown(rows, info, a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
