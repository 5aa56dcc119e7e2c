"""CPU benchmark of the `cpp` target against the CPU peers, side by side in one run.

    python benchmarks/cpp_cpu.py [--workloads softmax mlp_b1 ...] [--repeat 30] [--threads 2]
                                 [--no-inductor] [--no-onnx] [--no-mlx] [--out benchmarks/results]
                                 [--cpu-time] [--name cpp_cpu]

Columns: PyTorch eager, torch.compile (Inductor's C++ backend; its cold compile in seconds, with an
empty Inductor cache), ONNX Runtime (`torch.onnx.export`, then an InferenceSession with all graph
optimizations), MLX CPU eager and `mx.compile` (the rows MLX has hand-written here: elementwise, norms,
softmax), and xcomp `cpp` called through `xcomp.compile` (torch tensors in and out). Threads pinned for
every column: torch.set_num_threads, ORT intra_op_num_threads, OMP_NUM_THREADS and XCOMP_NUM_THREADS
all = --threads. Times: median ms per call over models_cpu.ROUNDS interleaved rounds (every column in turn after
warm-up). Also measured: the GPT block's cold `cpp` build (capture, passes, code generation and the
compiler, empty cache) against torch.compile's cold compile, and its cached start in a fresh process.
With --cpu-time (implies --threads 1, --no-mlx, --no-build-times): per call the CPU time of the calling thread instead of the
wall clock, which other processes on a busy machine disturb far less (every column then runs on the
calling thread alone). Writes <name>.json and <name>.md (with the machine) into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from host import host  # noqa: E402
from models_cpu import interleaved  # noqa: E402  (one timing method for the CPU benchmarks)  (benchmarks/host.py: the machine record every benchmark writes)

HERE = os.path.dirname(os.path.abspath(__file__))
# Every library here keeps its worker threads spinning for a while after a call (OpenMP, ONNX
# Runtime, xcomp's pool); on 2 cores those threads would slow whichever column is timed next.
SETTLE_S = 0.2


def pin_threads(n: int) -> None:
    """Thread counts for every library, set before any of them starts its pools."""
    for var in ("OMP_NUM_THREADS", "XCOMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


# -- workloads: (torch module, inputs, MLX function or None) --------------------------------------
def _elementwise(torch, F):
    class Chain(torch.nn.Module):
        def forward(self, x):
            return F.gelu(x, approximate="tanh") * torch.sigmoid(x) - x

    def mlx(mx):
        return lambda x: 0.5 * x * (1 + mx.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) * mx.sigmoid(x) - x
    return Chain(), (torch.randn(4 * 1024 * 1024),), mlx


def _softmax(torch, F):
    class Softmax(torch.nn.Module):
        def forward(self, x):
            return torch.softmax(x, dim=-1)
    return Softmax(), (torch.randn(1024, 4096),), lambda mx: (lambda x: mx.softmax(x, axis=-1))


def _layer_norm(torch, F):
    m = torch.nn.LayerNorm(4096)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()

    def mlx(mx):
        ww, bb = mx.array(w), mx.array(b)
        return lambda x: mx.fast.layer_norm(x, ww, bb, 1e-5)
    return m, (torch.randn(1024, 4096),), mlx


def _rms_norm(torch, F):
    m = torch.nn.RMSNorm(4096, eps=1e-6)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
    w = m.weight.detach().numpy()

    def mlx(mx):
        ww = mx.array(w)
        return lambda x: mx.fast.rms_norm(x, ww, 1e-6)
    return m, (torch.randn(1024, 4096),), mlx


def _mlp(batch):
    def make(torch, F):
        m = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024))
        return m, (torch.randn(batch, 1024),), None
    return make


def _zoo(name, batch, **kw):
    def make(torch, F):
        from xcomp import zoo
        m, x = getattr(zoo, name)(batch=batch, **kw)
        return m, x, None
    return make


WORKLOADS = {
    "elementwise": ("elementwise chain 4M f32", _elementwise),
    "softmax": ("softmax 1024x4096", _softmax),
    "layer_norm": ("layer norm 1024x4096", _layer_norm),
    "rms_norm": ("rms norm 1024x4096", _rms_norm),
    "mlp_b1": ("MLP 1024-4096-1024, batch 1", _mlp(1)),
    "mlp_b32": ("MLP, batch 32", _mlp(32)),
    "cnn_b1": ("ResNet-style CNN 3x32x32, batch 1", _zoo("cnn", 1)),
    "cnn_b8": ("same, batch 8", _zoo("cnn", 8)),
    "encoder_b1": ("TransformerEncoderLayer 128x256, batch 1", _zoo("encoder_layer", 1, seq=128, dim=256, heads=4)),
    "encoder_b8": ("same, batch 8", _zoo("encoder_layer", 8, seq=128, dim=256, heads=4)),
    "gpt_b1": ("GPT-style block 128x256, batch 1", _zoo("gpt_block", 1, seq=128, dim=256, heads=4)),
    "gpt_b8": ("same, batch 8", _zoo("gpt_block", 8, seq=128, dim=256, heads=4)),
}


# build variants of the cpp target, timed as extra columns with --variants. (A variant that lets the
# BLAS run its own threads, XCOMP_CXXFLAGS=-DXC_BLAS_OWN_THREADS=1, needs a run of its own: OpenBLAS's
# thread count is one setting for the whole process.)
# "cpp own GEMM": xcomp's packed GEMM (the fallback without a BLAS, XCOMP_BLAS=none); "cpp OpenBLAS":
# scipy-openblas32 instead of the BLAS found first (oneMKL on x86-64 Linux with the mkl wheel).
VARIANTS = {"cpp openmp": {"XCOMP_OPENMP": "1"}, "cpp -O3": {"XCOMP_CXXFLAGS": "-O3"},
            "cpp own GEMM": {"XCOMP_BLAS": "none"}, "cpp OpenBLAS": {"XCOMP_BLAS": "openblas"}}


# -- columns ----------------------------------------------------------------------------------------
def onnx_session(torch, model, inputs, threads: int, tmp: str):
    import onnxruntime as ort
    path = os.path.join(tmp, "model.onnx")
    torch.onnx.export(model, inputs, path, dynamo=True, optimize=True)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs)}
    return lambda: sess.run(None, feed)


def bench_workload(key: str, args, torch, F) -> dict:
    import numpy as np

    import xcomp
    label, make = WORKLOADS[key]
    torch.manual_seed(0)
    model, inputs, mlx = make(torch, F)
    model = model.eval()
    row = {"workload": label, "key": key, "ms": {}, "notes": []}
    cols = {}
    with torch.inference_mode():
        expected = model(*inputs)
        cols["torch eager"] = lambda: model(*inputs)
    if args.inductor:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            torch._dynamo.reset()
            compiled = torch.compile(model)
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(*inputs)
            row["torch_compile_cold_s"] = time.perf_counter() - t0

        def run_compiled():
            with torch.inference_mode():
                return compiled(*inputs)
        cols["torch.compile"] = run_compiled
    if args.onnx:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                cols["ONNX Runtime"] = onnx_session(torch, model, inputs, args.threads, tmp)
        except Exception as e:  # an exporter failure is a result to report, not a crash
            row["notes"].append(f"ONNX Runtime: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    if args.mlx and mlx is not None:
        import mlx.core as mx
        fn = mlx(mx)
        xs = [mx.array(x.numpy()) for x in inputs]
        cfn = mx.compile(fn)
        cols["MLX eager"] = lambda: mx.eval(fn(*xs))
        cols["mx.compile"] = lambda: mx.eval(cfn(*xs))
    t0 = time.perf_counter()
    fast = xcomp.compile(model, target="cpp")
    got = fast(*inputs)
    row["cpp_first_call_s"] = time.perf_counter() - t0
    row["cpp_max_error"] = float((got - expected).abs().max())
    cols["xcomp cpp"] = lambda: fast(*inputs)
    for name, env in VARIANTS.items() if args.variants else ():
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            variant = xcomp.compile(model, target="cpp")
            variant(*inputs)
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        cols[name] = lambda variant=variant: variant(*inputs)
    clock = time.thread_time if args.cpu_time else time.perf_counter
    for k, v in interleaved(cols, args.repeat, SETTLE_S, clock=clock).items():
        row["ms"][k] = v * 1e3
    peers = {k: v for k, v in row["ms"].items() if k in ("torch eager", "torch.compile", "ONNX Runtime")}
    best = min(peers, key=peers.get)
    row["best_peer"] = best
    row["cpp_vs_best"] = peers[best] / row["ms"]["xcomp cpp"]
    row["cpp_vs_eager"] = row["ms"]["torch eager"] / row["ms"]["xcomp cpp"]
    print(f"{label:44s} " + "  ".join(f"{k} {v:8.3f}" for k, v in row["ms"].items())
          + f"  | cpp vs best ({best}) {row['cpp_vs_best']:.2f}x, err {row['cpp_max_error']:.1e}", flush=True)
    return row


# -- the GPT block's cold build and cached start ------------------------------------------------------
_START = r"""
import json, os, sys, time
import torch
torch.set_num_threads(int(os.environ["XCOMP_NUM_THREADS"]))
import xcomp
from xcomp import zoo
from xcomp.backends.cpp import build as B, emit as E, runtime as R
spent = {"emit": 0.0, "build": 0.0, "load": 0.0}
def timed(mod, name, key):
    real = getattr(mod, name)
    def wrapper(*a, **k):
        t = time.perf_counter(); out = real(*a, **k); spent[key] += time.perf_counter() - t; return out
    setattr(mod, name, wrapper)
timed(E, "emit_program", "emit"); timed(B, "build", "build"); timed(R, "load", "load")
m, x = zoo.gpt_block(batch=1, seq=128, dim=256, heads=4)
t0, c0 = time.perf_counter(), time.process_time()
f = xcomp.compile(m.eval(), target="cpp")
f(*x)
total, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"total_s": total, "cpu_s": cpu, "capture_cached": bool(f.cache[f._last_key].captured.cached),
                  "dynamo_imported": "torch._dynamo" in sys.modules, **{k + "_s": v for k, v in spent.items()}}))
"""


def gpt_build_times(threads: int) -> dict:
    """Cold build (empty cache) and cached start (same cache, fresh process) of the GPT block, from
    before `xcomp.compile` to after the first call: `total_s` (wall), `cpu_s` (the process's CPU
    time), `capture_cached` (the cached start took its capture from the capture cache, skipping
    torch.export) and `dynamo_imported` (whether torch._dynamo was imported)."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XCOMP_CACHE_DIR": cache, "XCOMP_NUM_THREADS": str(threads)}
        for phase in ("cold", "cached"):
            r = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, env=env, timeout=900)
            if r.returncode != 0:
                out[phase] = {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
                continue
            out[phase] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def machine(threads: int) -> dict:
    import torch

    from xcomp.backends.cpp.toolchain import toolchain
    info = host(threads=threads, torch=torch.__version__)
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    for mod in ("onnxruntime", "mlx.core"):
        try:
            info[mod.split(".")[0]] = __import__(mod, fromlist=["x"]).__version__
        except ImportError:
            pass
    tc = toolchain()
    info["compiler"], info["flags"], info["blas"] = tc.version, " ".join(tc.flags), tc.blas.describe()
    return info


def markdown(result: dict) -> str:
    m = result["machine"]
    cols = ["torch eager", "torch.compile", "ONNX Runtime", "MLX eager", "mx.compile", "xcomp cpp"]
    cols += [c for c in VARIANTS if any(c in r["ms"] for r in result["rows"])]
    lines = [f"# xcomp `cpp` on CPU ({m['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads for every column; "
             f"{m['system']}; Python {m['python']}, torch {m['torch']}, onnxruntime {m.get('onnxruntime', '-')}, "
             f"mlx {m.get('mlx', '-')}; compiler {m['compiler']} ({m['flags']}); BLAS {m['blas']}. "
             f"Load average at the start: {m.get('load_average', '-')}.", "",
             ("Median CPU ms per call of the calling thread (1 thread, --cpu-time)" if m.get("cpu_time") else
              "Median ms per call") + ", columns in interleaved rounds; torch.compile's cold compile in seconds in "
             "parentheses; last column: the best of torch eager, torch.compile and ONNX Runtime divided by "
             "xcomp `cpp` (above 1: cpp is faster).", "",
             "| workload | " + " | ".join(cols) + " | cpp max error | best peer / cpp |",
             "|---|" + "---:|" * (len(cols) + 2)]
    for r in result["rows"]:
        cells = []
        for c in cols:
            v = r["ms"].get(c)
            cell = "" if v is None else f"{v:.3f}"
            if c == "torch.compile" and "torch_compile_cold_s" in r and v is not None:
                cell += f" ({r['torch_compile_cold_s']:.1f})"
            cells.append(cell)
        lines.append(f"| {r['workload']} | " + " | ".join(cells) +
                     f" | {r['cpp_max_error']:.1e} | {r['cpp_vs_best']:.2f}x ({r['best_peer']}) |")
    notes = [n for r in result["rows"] for n in r["notes"]]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    g = result.get("gpt_build")
    if g:
        lines += ["", "GPT-style block 128x256 (batch 1), from before `xcomp.compile(..., target='cpp')` to the first "
                  "result, in a fresh process (cold: empty cache; cached: the same cache, capture and library found):", ""]
        for phase, d in g.items():
            if "error" in d:
                lines.append(f"- {phase}: error {d['error']}")
            else:
                extra = "" if "cpu_s" not in d else (
                    f" ({d['cpu_s'] * 1e3:.0f} ms CPU); capture {'from the capture cache' if d['capture_cached'] else 'by torch.export'}, "
                    f"torch._dynamo {'imported' if d['dynamo_imported'] else 'never imported'}")
                lines.append(f"- {phase}: {d['total_s'] * 1e3:.1f} ms in all{extra}; code generation {d['emit_s'] * 1e3:.0f} ms, "
                             f"build {d['build_s'] * 1e3:.0f} ms, load {d['load_s'] * 1e3:.1f} ms")
        tc = next((r.get("torch_compile_cold_s") for r in result["rows"] if r["key"] == "gpt_b1"), None)
        if tc and "total_s" in g.get("cold", {}):
            lines.append(f"- torch.compile cold compile of the same block in this run: {tc:.2f} s "
                         f"(xcomp cold / torch.compile cold = {g['cold']['total_s'] / tc:.2f})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-inductor", dest="inductor", action="store_false")
    p.add_argument("--no-onnx", dest="onnx", action="store_false")
    p.add_argument("--no-mlx", dest="mlx", action="store_false")
    p.add_argument("--no-build-times", dest="build_times", action="store_false")
    p.add_argument("--variants", action="store_true", help="also time the cpp build variants (VARIANTS)")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--cpu-time", action="store_true", help="CPU time of the calling thread, 1 thread")
    p.add_argument("--name", default="cpp_cpu", help="results file name (without .json/.md)")
    args = p.parse_args(argv)
    if args.cpu_time:  # (MLX evaluates on threads of its own, and build times are wall times)
        args.threads, args.mlx, args.build_times = 1, False, False
    pin_threads(args.threads)
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.mlx:
        try:
            import mlx.core  # noqa: F401
        except ImportError:
            args.mlx = False
    result = {"machine": {**machine(args.threads), "cpu_time": args.cpu_time}, "rows": []}
    os.makedirs(args.out, exist_ok=True)

    def write():  # after every workload, so an interrupted run keeps what it measured
        with open(os.path.join(args.out, f"{args.name}.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
            f.write(markdown(result))
    if args.build_times and "gpt_b1" in args.workloads:
        result["gpt_build"] = gpt_build_times(args.threads)
        print(json.dumps(result["gpt_build"]), flush=True)
    for key in args.workloads:
        result["rows"].append(bench_workload(key, args, torch, F))
        write()
    print(markdown(result))


if __name__ == "__main__":
    main()
