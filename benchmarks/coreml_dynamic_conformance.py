"""OpInfo conformance of the `coreml` target with dim 0 symbolic: one package per op, run at two sizes.

    python benchmarks/coreml_dynamic_conformance.py [--ops add sin ...] [--limit-s 600]

`xcomp.dynamic_conformance`'s protocol (the first float32 sample with a first dim, that dim marked
dynamic through torch.export) with the package in place of `xcomp.compile`: the program is
optimized for coreml and saved once as a flexible package (float32), and the package evaluator runs
it at the sample's size and at one more row, each compared with torch eager. Outcomes as there
(`symbolic`, `guarded`, `static`, `refused`, `unsupported`, `fail`, `error`, `skip`). Writes
benchmarks/results/coreml_dynamic_conformance.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")


def package_build(workdir: str):
    """`xcomp.dynamic_conformance`'s builder with the package in place of `xcomp.compile`: optimized
    for coreml, saved once as a flexible float32 package, run by the package evaluator."""
    def build(fn, tensors):
        import xcomp
        from xcomp.api import optimize
        from xcomp.backends.coreml.evaluate import evaluate_package
        from xcomp.backends.coreml.target import CoreMLTarget
        from xcomp.dynamic_conformance import Built
        program, _ = optimize(xcomp.capture(fn, tensors, dynamic={0: [0]}), "coreml")
        path = CoreMLTarget(compute_precision="float32").export(program, os.path.join(workdir, "op.mlpackage"))
        return Built(lambda ts: evaluate_package(path, [t.detach().numpy() for t in ts])[0],
                     lambda: isinstance(program.main.args[0].type.shape[0], str))
    return build


def check_op(opinfo, workdir: str) -> tuple[str, str]:
    from xcomp.dynamic_conformance import check_op as check
    return check(opinfo, build=package_build(workdir))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", nargs="*")
    p.add_argument("--limit-s", type=float, default=1e9, help="stop after this many seconds (partial run)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "coreml_dynamic_conformance"))
    a = p.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)
    from xcomp import conformance as cf
    from xcomp.backends.coreml.target import CoreMLTarget
    supported = CoreMLTarget().supported()
    results, start = {}, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coreml_dyn_conf_") as workdir:
        for opinfo in cf.load_op_db():
            name = cf.full_name(opinfo)
            if a.ops and name not in a.ops and opinfo.name not in a.ops:
                continue
            if not a.ops and not cf.in_table(opinfo):
                continue
            if time.perf_counter() - start > a.limit_s:
                break
            results[name] = check_op(opinfo, workdir)
            print(name, *results[name], flush=True)
    counts = Counter(o for o, _ in results.values())
    info = {"ops": len(results), "counts": dict(counts), "seconds": round(time.perf_counter() - start, 1),
            "coreml_table_ops": len(supported), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(a.out + ".json", "w") as f:
        json.dump({"info": info, "results": results}, f, indent=1)
    lines = ["# coreml with dim 0 symbolic: OpInfo packages at two sizes\n",
             f"{info['ops']} OpInfos ({info['date']}, {info['seconds']} s on the shared 2-core machine): "
             + ", ".join(f"{k} {v}" for k, v in counts.most_common()) + "\n",
             "| op | outcome | reason |", "|---|---|---|"]
    lines += [f"| {n} | {o} | {r.replace('|', '/')[:160]} |" for n, (o, r) in sorted(results.items()) if o != "symbolic"]
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(lines[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
