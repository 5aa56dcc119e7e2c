"""Cold build of the GPT block with the `cpp` target against torch.compile's cold compile, side by side.

    python benchmarks/cpp_cold_build.py [--rounds 5] [--before DIR] [--after DIR] [--threads 2]
                                        [--out benchmarks/results] [--name cpp_cold_build]

Each round runs, each in a fresh Python process with torch imported and the model built:
  - xcomp: `xcomp.compile(model, target="cpp")` to the first result with an empty XCOMP_CACHE_DIR (so
    the compiler probe, the capture, the passes, code generation, the prebuilt parts and g++ all run),
    with the time of each phase (wall and CPU time of the process and its children);
  - the same for `--before DIR`, an older checkout of xcomp (e.g. `git archive <commit> | tar -x -C DIR`)
    imported in place of this one by remapping the editable install's packages (`--after DIR`: the
    same for the newer side; default: this checkout);
  - torch.compile: `torch.compile(model)` to the first result with an empty TORCHINDUCTOR_CACHE_DIR
    (what benchmarks/cpp_cpu.py reports as torch.compile's cold compile).
  - xcomp, "prebuilt parts cached": the same with a cache folder that keeps only what does not depend on
    the program (`probes/`, `cpp-prebuilt/`: the compiler probe and backends/cpp/prebuilt.py's parts,
    made by one unmeasured run first): a new program on a machine where xcomp has built before.
Medians over the rounds; the variants alternate within a round, so a busy machine disturbs them alike.
Writes <name>.json and <name>.md (with the machine, benchmarks/host.py) into --out.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from host import host  # noqa: E402

_MODEL = r"""
import json, os, resource, sys, time
def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
import torch
torch.set_num_threads(int(os.environ["XCOMP_NUM_THREADS"]))
from xcomp import zoo
torch.manual_seed(0)
m, x = zoo.gpt_block(batch=1, seq=128, dim=256, heads=4)
m = m.eval()
"""

_XCOMP = _MODEL + r"""
import xcomp
from xcomp import api, program_cache
from xcomp.backends.cpp import build as B, emit as E, runtime as R, toolchain as T
spent = {}
def timed(mod, name, key):
    real = getattr(mod, name, None)
    if real is None:
        return
    def wrapper(*a, **k):
        t, c = time.perf_counter(), cpu()
        try:
            return real(*a, **k)
        finally:
            w, cc = spent.get(key, (0.0, 0.0))
            spent[key] = (w + time.perf_counter() - t, cc + cpu() - c)
    setattr(mod, name, wrapper)
timed(T, "_probe", "probe"); timed(api, "_capture", "capture"); timed(program_cache, "optimize", "passes")
timed(E, "emit_program", "emit"); timed(B, "_compile", "compile"); timed(R, "load", "load")
try:
    from xcomp.backends.cpp import prebuilt
    timed(prebuilt, "for_unit", "wait_prebuilt")
except ImportError:
    pass
t0, c0 = time.perf_counter(), cpu()
f = xcomp.compile(m, target="cpp")
with torch.inference_mode():
    y = f(*x)
total, ctotal = time.perf_counter() - t0, cpu() - c0
with torch.inference_mode():
    err = float((y - m(*x)).abs().max())
print(json.dumps({"total_s": total, "total_cpu_s": ctotal, "max_error": err,
                  **{k + "_s": w for k, (w, c) in spent.items()}, **{k + "_cpu_s": c for k, (w, c) in spent.items()}}))
"""

_INDUCTOR = _MODEL + r"""
torch._dynamo.reset()
t0, c0 = time.perf_counter(), cpu()
compiled = torch.compile(m)
with torch.inference_mode():
    compiled(*x)
print(json.dumps({"total_s": time.perf_counter() - t0, "total_cpu_s": cpu() - c0}))
"""

# Imports the xcomp of another checkout: the editable install maps xcomp's packages to folders
_SITECUSTOMIZE = r"""
import os
root = os.environ.get("XCOMP_BENCH_CODE_ROOT")
if root:
    import glob, importlib, sys
    for path in sys.path:
        for finder in glob.glob(os.path.join(path, "__editable___xcomp_*_finder.py")):
            f = importlib.import_module(os.path.basename(finder)[:-3])
            for name, folder in list(f.MAPPING.items()):
                f.MAPPING[name] = os.path.join(root, os.path.basename(folder) if name != "xcomp" else "xcomp")
            for name, folders in list(f.NAMESPACES.items()):
                f.NAMESPACES[name] = [os.path.join(root, "templates", os.path.basename(p)) for p in folders]
"""


def run(script: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def variant_env(threads: int, code_root: str | None, site: str) -> dict:
    env = {**os.environ, "XCOMP_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    env.pop("XCOMP_CACHE", None)
    if code_root:
        env["XCOMP_BENCH_CODE_ROOT"] = os.path.abspath(code_root)
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    return env


def median(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


KEPT = "after, prebuilt parts cached"
PHASES = ("total", "probe", "capture", "passes", "emit", "wait_prebuilt", "compile", "load")


def markdown(result: dict) -> str:
    m, med = result["machine"], result["median"]
    tc = med["torch.compile"]["total_s"]
    lines = [f"# GPT block cold build: xcomp `cpp` against torch.compile ({m['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; {m['system']}; Python {m['python']}, torch {m['torch']}; "
             f"compiler {m['compiler']} ({m['flags']}); BLAS {m['blas']}. Load average at the start: "
             f"{m.get('load_average', '-')}. {result['rounds']} interleaved rounds, medians; each run a fresh process "
             f"with torch imported and the model built, XCOMP_NUM_THREADS={result['threads']}.", "",
             "`xcomp.zoo.gpt_block(batch=1, seq=128, dim=256, heads=4)`: `xcomp.compile(m, target='cpp')` to the "
             "first result with an empty cache folder (probe, capture, passes, code generation, g++, load), and "
             "`torch.compile(m)` to the first result with an empty Inductor cache. Seconds, wall clock (CPU "
             "seconds of the process and its compilers in parentheses).", "",
             "| variant | total | compiler probe | capture | passes | code generation | wait for prebuilt parts "
             "| g++ | load | total / torch.compile |",
             "|---|" + "---:|" * 9]
    for name, d in med.items():
        if name == "torch.compile":
            continue
        cells = []
        for p in PHASES:
            w, c = d.get(f"{p}_s"), d.get(f"{p}_cpu_s")
            cells.append("-" if w is None else f"{w:.2f} ({c:.2f})")
        lines.append(f"| xcomp cpp, {name} | " + " | ".join(cells) + f" | {d['total_s'] / tc:.2f} |")
    t = med["torch.compile"]
    lines.append(f"| torch.compile (Inductor) | {t['total_s']:.2f} ({t['total_cpu_s']:.2f}) |" + " |" * 7 + " 1.00 |")
    lines += ["", "Every round (total seconds, wall):", ""]
    for name, rows in result["runs"].items():
        lines.append(f"- {name}: " + ", ".join(f"{r['total_s']:.2f}" if "total_s" in r else r.get("error", "?")
                                               for r in rows))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--before", help="an older checkout of xcomp to compare with (its folder)")
    p.add_argument("--after", help="the checkout of the newer side (default: the installed xcomp)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--name", default="cpp_cold_build")
    args = p.parse_args(argv)
    import torch

    from xcomp.backends.cpp.toolchain import toolchain
    info = host(torch=torch.__version__)
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as probe_cache:  # probed afresh, as the runs below probe it
        os.environ["XCOMP_CACHE_DIR"] = probe_cache
        tc = toolchain()
        del os.environ["XCOMP_CACHE_DIR"]
    info["compiler"], info["flags"], info["blas"] = tc.version, " ".join(tc.flags), tc.blas.describe()
    runs: dict[str, list[dict]] = {"before": [], "after": []} if args.before else {"after": []}
    runs[KEPT] = []
    runs["torch.compile"] = []
    with tempfile.TemporaryDirectory() as site, tempfile.TemporaryDirectory() as kept:
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write(_SITECUSTOMIZE)
        warm = {**variant_env(args.threads, args.after, site), "XCOMP_CACHE_DIR": kept}
        run(_XCOMP, warm)                                  # a first build (whole), then one that makes the parts
        for entry in ("captures", "programs", "cpp-index"):
            shutil.rmtree(os.path.join(kept, entry), ignore_errors=True)
        run(_XCOMP, warm)
        for i in range(args.rounds):
            for name in runs:
                root = {"before": args.before, "after": args.after, KEPT: args.after}.get(name)
                env = variant_env(args.threads, root, site)
                with tempfile.TemporaryDirectory() as cache:
                    env["XCOMP_CACHE_DIR"] = env["TORCHINDUCTOR_CACHE_DIR"] = cache
                    if name == KEPT:
                        for entry in os.listdir(kept):   # keep only what no program decides
                            if entry not in ("probes", "cpp-prebuilt"):
                                shutil.rmtree(os.path.join(kept, entry), ignore_errors=True)
                        env["XCOMP_CACHE_DIR"] = kept
                    r = run(_INDUCTOR if name == "torch.compile" else _XCOMP, env)
                runs[name].append(r)
                print(f"round {i + 1} {name}: {json.dumps(r)}", flush=True)
    keys = sorted({k for rows in runs.values() for r in rows for k in r if k.endswith("_s")})
    med = {name: {k: median(rows, k) for k in keys if median(rows, k) is not None} for name, rows in runs.items()}
    result = {"machine": info, "rounds": args.rounds, "threads": args.threads, "before": args.before, "after": args.after,
              "median": med, "runs": runs}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    text = markdown(result)
    with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
