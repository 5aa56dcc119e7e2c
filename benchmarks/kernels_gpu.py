"""xcomp `cuda` vs MLX eager vs mx.compile (vs mx.fast) vs PyTorch eager vs torch.compile, on one GPU.

Workloads: a long elementwise chain, GELU, SiLU-multiply, softmax / layer norm / rms norm (rows of
4096 and 32768), an MLP block and a transformer block.

Timing: every call is queued for the GPU as soon as it is made (MLX: `mx.async_eval` per call;
PyTorch launches eagerly) and each batch of calls is synchronized once, so launch overhead overlaps
GPU work the same way for every column. The columns of a workload are timed in ROUNDS interleaved
rounds (each round times every column in turn; the median over rounds is kept), so clock or thermal
drift hits all columns alike. Achieved GB/s = (bytes read + bytes written, each tensor once) / time.
Copy ceilings come from the same run: a large copy (MLX x + 0 and torch clone, 512 MB moved) and, per
workload and interleaved with its columns, a copy moving the same number of bytes (short kernels pay
launch overhead that a large copy hides).

xcomp runs with its defaults: on the first call each group's kernel variants and MLX built-ins are
timed and the fastest kept (the choices are in the JSON's `decisions`); later calls run the whole
graph under mx.compile. Writes $OUT/kernels_gpu.json and $OUT/kernels_gpu.md after every workload (a
run cut short keeps what it measured). `--only a,b` runs the workloads whose names contain one of
those strings (e.g. `--only 32768`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import time

import numpy as np

import mlx.core as mx  # noqa: E402

from xcomp.api import optimize  # noqa: E402
from xcomp.backends import get_target  # noqa: E402
from xcomp.backends.kernels.runtime import median_seconds  # noqa: E402
from xcomp.ir.builder import build_program  # noqa: E402
from xcomp.ir.types import DType, tensor  # noqa: E402
from xcomp.ops.elementwise import GeluApproximate  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch columns stay empty
    torch = None

REPEAT, WARMUP, BATCH, ROUNDS = 5, 2, 20, 5
TORCH_DT = {DType.F32: "float32", DType.BF16: "bfloat16", DType.F16: "float16"}
MX_DT = {DType.F32: mx.float32, DType.BF16: mx.bfloat16, DType.F16: mx.float16}


def timed(fn, framework: str) -> float:
    """Seconds per call: median over REPEAT batches of BATCH calls, each queued as soon as it is made,
    then synchronized once per batch. MLX: the tuner's own timing (`runtime.median_seconds`, calls
    queued with mx.async_eval); PyTorch launches eagerly."""
    if framework == "mx":
        return median_seconds(fn, REPEAT, BATCH, WARMUP)
    for _ in range(WARMUP):
        fn()
        torch.cuda.synchronize()
    ts = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        outs = [fn() for _ in range(BATCH)]
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / BATCH)
        del outs
    return sorted(ts)[len(ts) // 2]


def copy_ceilings(nbytes: int) -> dict:
    """GB/s of a plain copy moving `nbytes` in all (half read, half written): MLX x + 0, torch clone."""
    n = max(1, nbytes // 8)
    xm = mx.random.normal((n,))
    mx.eval(xm)
    out = {"mlx x+0": nbytes / timed(lambda: xm + 0, "mx") / 1e9}
    if torch is not None:
        xt = torch.randn(n, device="cuda")
        out["torch clone"] = nbytes / timed(lambda: xt.clone(), "torch") / 1e9
    return out


def interleaved(cols: dict) -> dict:
    """Seconds per call of each column: ROUNDS rounds, each timing every column in turn (so clock or
    thermal drift hits all columns alike); the median over rounds."""
    times = {k: [] for k in cols}
    for _ in range(ROUNDS):
        for k, (fn, framework) in cols.items():
            times[k].append(timed(fn, framework))
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


program = build_program  # a program of plain (unfused) ops around `body`


# -- workloads: (xcomp body, mlx fn, mx.fast fn or None, torch fn), shapes, dtype ---------------------
def chain_x(b, x):
    g = b.op("gelu", x, approximate=GeluApproximate.TANH)
    return b.op("sub", b.op("mul", g, b.op("sigmoid", x)), x)


def chain_m(x):
    g = 0.5 * x * (1 + mx.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return g * mx.sigmoid(x) - x


def chain_t(x):
    return F.gelu(x, approximate="tanh") * torch.sigmoid(x) - x


def ln_x(b, x, w, bb):
    return b.op("layer_norm", x, w, bb, normalized_ndim=1, eps=1e-5)


def ln_m(x, w, bb):
    mu = mx.mean(x, axis=-1, keepdims=True)
    d = x - mu
    return d * mx.rsqrt(mx.mean(d * d, axis=-1, keepdims=True) + 1e-5) * w + bb


def rms_x(b, x, w):
    return b.op("rms_norm", x, w, normalized_ndim=1, eps=1e-6)


def rms_m(x, w):
    return x * mx.rsqrt(mx.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w


def mlp_x(b, x, w1, b1, w2, b2, residual=None):
    """gelu(x @ w1 + b1) @ w2 + b2 + residual (x by default)."""
    h = b.op("gelu", b.op("add", b.op("matmul", x, w1), b1), approximate=GeluApproximate.TANH)
    return b.op("add", b.op("add", b.op("matmul", h, w2), b2), x if residual is None else residual)


def mlp_m(x, w1, b1, w2, b2):
    h = nn_gelu_m(x @ w1 + b1)
    return h @ w2 + b2 + x


def nn_gelu_m(x):
    return 0.5 * x * (1 + mx.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def mlp_t(x, w1, b1, w2, b2):
    return F.gelu(x @ w1 + b1, approximate="tanh") @ w2 + b2 + x


B, T, D, H = 8, 1024, 1024, 16


def block_x(b, x, lw, lb, wq, wk, wv, wo, l2w, l2b, w1, b1, w2, b2):
    def heads(v):
        return b.op("transpose", b.op("reshape", v, shape=(B, T, H, D // H)), perm=(0, 2, 1, 3))
    h = b.op("layer_norm", x, lw, lb, normalized_ndim=1)
    q, k, v = (heads(b.op("matmul", h, w)) for w in (wq, wk, wv))
    o = b.op("sdpa", q, k, v, is_causal=True)
    o = b.op("reshape", b.op("transpose", o, perm=(0, 2, 1, 3)), shape=(B * T, D))
    x2 = b.op("add", b.op("matmul", o, wo), x)
    h2 = b.op("layer_norm", x2, l2w, l2b, normalized_ndim=1)
    return mlp_x(b, h2, w1, b1, w2, b2, residual=x2)


def block_m(x, lw, lb, wq, wk, wv, wo, l2w, l2b, w1, b1, w2, b2):
    def heads(v):
        return v.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)
    h = mx.fast.layer_norm(x, lw, lb, 1e-5)
    q, k, v = heads(h @ wq), heads(h @ wk), heads(h @ wv)
    o = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(D // H), mask="causal")
    x2 = o.transpose(0, 2, 1, 3).reshape(B * T, D) @ wo + x
    h2 = mx.fast.layer_norm(x2, l2w, l2b, 1e-5)
    return nn_gelu_m(h2 @ w1 + b1) @ w2 + b2 + x2


def block_t(x, lw, lb, wq, wk, wv, wo, l2w, l2b, w1, b1, w2, b2):
    def heads(v):
        return v.reshape(B, T, H, D // H).transpose(1, 2)
    h = F.layer_norm(x, (D,), lw, lb, 1e-5)
    o = F.scaled_dot_product_attention(heads(h @ wq), heads(h @ wk), heads(h @ wv), is_causal=True)
    x2 = o.transpose(1, 2).reshape(B * T, D) @ wo + x
    h2 = F.layer_norm(x2, (D,), l2w, l2b, 1e-5)
    return F.gelu(h2 @ w1 + b1, approximate="tanh") @ w2 + b2 + x2


def softmax_x(b, x):
    return b.op("softmax", x, axis=-1)


def workloads():
    n = 64 * 1024 * 1024
    out = []
    out.append(("elementwise chain 64M f32", [(n,)], DType.F32, chain_x, chain_m, None, chain_t))
    out.append(("GELU (tanh) 64M f32", [(n,)], DType.F32,
                lambda b, x: b.op("gelu", x, approximate=GeluApproximate.TANH), nn_gelu_m, None,
                lambda x: F.gelu(x, approximate="tanh")))
    out.append(("SiLU-mul 2x32M f32", [(n // 2,), (n // 2,)], DType.F32,
                lambda b, x, y: b.op("mul", b.op("silu", x), y), lambda x, y: x * mx.sigmoid(x) * y, None,
                lambda x, y: F.silu(x) * y))
    for rows, L in ((16384, 4096), (512, 32768)):
        out.append((f"softmax {rows}x{L} f32", [(rows, L)], DType.F32, softmax_x,
                    lambda x: mx.exp(x - mx.max(x, -1, keepdims=True)) / mx.sum(mx.exp(x - mx.max(x, -1, keepdims=True)), -1, keepdims=True),
                    lambda x: mx.softmax(x, axis=-1, precise=True), lambda x: torch.softmax(x, -1)))
        out.append((f"layer norm {rows}x{L} f32", [(rows, L), (L,), (L,)], DType.F32, ln_x, ln_m,
                    lambda x, w, bb: mx.fast.layer_norm(x, w, bb, 1e-5),
                    lambda x, w, bb, L=L: F.layer_norm(x, (L,), w, bb, 1e-5)))
        out.append((f"rms norm {rows}x{L} f32", [(rows, L), (L,)], DType.F32, rms_x, rms_m,
                    lambda x, w: mx.fast.rms_norm(x, w, 1e-6),
                    lambda x, w: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w))
    out.append(("MLP block 8192x2048->8192 bf16", [(8192, 2048), (2048, 8192), (8192,), (8192, 2048), (2048,)],
                DType.BF16, mlp_x, mlp_m, None, mlp_t))
    out.append((f"transformer block B{B} T{T} D{D} bf16",
                [(B * T, D), (D,), (D,), (D, D), (D, D), (D, D), (D, D), (D,), (D,), (D, 4 * D), (4 * D,),
                 (4 * D, D), (D,)], DType.BF16, block_x, block_m, None, block_t))
    return out


def bytes_moved(shapes, dt, outs=1, out_shape=None) -> int:
    elems = sum(int(np.prod(s)) for s in shapes) + outs * int(np.prod(out_shape or shapes[0]))
    return elems * dt.itemsize


def main() -> int:
    out_dir = os.environ.get("OUT", ".")
    assert mx.cuda.is_available(), "MLX has no CUDA device"
    dev = torch.cuda.get_device_name() if torch is not None else "?"
    rows = []
    # copy ceiling
    ceiling = copy_ceilings(2 * 256 * 1024 * 1024)
    print(f"device {dev}; copy ceiling " + ", ".join(f"{k} {v:.0f} GB/s" for k, v in ceiling.items()), flush=True)
    cuda = get_target("cuda")
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    for name, shapes, dt, xbody, mfn, fastfn, tfn in workloads():
        if only is not None and not any(o in name for o in only):
            continue
        rng = np.random.default_rng(0)
        host = [rng.standard_normal(s).astype(np.float32) * (0.05 if len(s) == 2 and "block" in name and s[0] != B * T and s[0] != 8192 else 1.0)
                for s in shapes]
        if "block" in name:
            host = [h * (1 / math.sqrt(s[0]) if len(s) == 2 and i > 0 else 1.0) for i, (h, s) in enumerate(zip(host, shapes))]
        margs = [mx.array(h).astype(MX_DT[dt]) for h in host]
        mx.eval(margs)
        prog = program([tensor(s, dt) for s in shapes], xbody)
        opt, _ = optimize(prog, "cuda")
        runner = cuda.build(opt)
        r = {"workload": name}
        out_shape = tuple(prog.main.result_types[0].shape)
        nbytes = bytes_moved(shapes, dt, 1, out_shape)
        r["bytes"] = nbytes
        res_x = runner(margs)   # first call: tuning
        mx.eval(res_x)
        r["decisions"] = list(cuda.evaluator.decisions)
        ref = np.array(mfn(*margs).astype(mx.float32))
        got = np.array((res_x[0] if isinstance(res_x, list) else res_x).astype(mx.float32))
        r["max_rel_err_vs_mlx"] = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
        cm = mx.compile(mfn)
        cols = {"xcomp cuda": (lambda: runner(margs), "mx"), "MLX eager": (lambda: mfn(*margs), "mx"),
                "mx.compile": (lambda: cm(*margs), "mx")}
        if fastfn is not None:
            cols["mx.fast"] = (lambda: fastfn(*margs), "mx")
        copy_m = mx.random.normal((nbytes // 8,))
        cols["copy: mlx x+0"] = (lambda: copy_m + 0, "mx")
        if torch is not None:
            targs = [torch.from_numpy(h).to("cuda", getattr(torch, TORCH_DT[dt])) for h in host]
            copy_t = torch.randn(nbytes // 8, device="cuda")
            cols["torch eager"] = (lambda: tfn(*targs), "torch")
            cols["copy: torch clone"] = (lambda: copy_t.clone(), "torch")
            try:
                ct = torch.compile(tfn)
                with torch.no_grad():
                    ct(*targs)
                cols["torch.compile"] = (lambda: ct(*targs), "torch")
            except Exception as e:  # noqa: BLE001
                r["torch.compile error"] = f"{type(e).__name__}: {e}"[:300]
        with torch.no_grad() if torch is not None else contextlib.nullcontext():
            r.update(interleaved(cols))
        r["copy ceiling same bytes"] = {k[len("copy: "):]: nbytes / r.pop(k) / 1e9 for k in list(r) if k.startswith("copy: ")}
        for k in ("xcomp cuda", "MLX eager", "mx.compile", "mx.fast", "torch eager", "torch.compile"):
            if k in r:
                r[k + " GB/s"] = nbytes / r[k] / 1e9
        rows.append(r)
        print(f"{name:<40} " + "  ".join(f"{k.replace(' GB/s', '')}={r[k]:.0f}" for k in r if k.endswith("GB/s"))
              + f"  err={r['max_rel_err_vs_mlx']:.1e}", flush=True)
        for d in r["decisions"]:
            print("    " + d[:1500], flush=True)
        write(out_dir, dev, ceiling, rows)
        margs = res_x = cols = None   # free this workload's arrays before clearing MLX's cache
        mx.clear_cache()
    write(out_dir, dev, ceiling, rows, final=True)
    return 0


def write(out_dir, dev, ceiling, rows, final=False):
    """The JSON and the markdown table of the rows so far."""
    copy_bw = max(ceiling.values())
    meta = {"device": dev, "mlx": mx.__version__, "torch": torch.__version__ if torch else None,
            "python": platform.python_version(), "copy_ceiling_GBps": ceiling, "repeat": REPEAT,
            "timing": f"{ROUNDS} rounds over all columns in turn; per round the median over {REPEAT} batches of"
                      f" {BATCH} calls, each queued as made (MLX async_eval per call), one synchronize per batch;"
                      " the median over rounds"}
    with open(os.path.join(out_dir, "kernels_gpu.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    cols = ["xcomp cuda", "MLX eager", "mx.compile", "mx.fast", "torch eager", "torch.compile"]
    lines = [f"Device: {dev}; MLX {mx.__version__}; torch {meta['torch']}. Copy ceiling: "
             + ", ".join(f"{k} {v:.0f} GB/s" for k, v in ceiling.items()) + ".", "",
             "| workload | " + " | ".join(cols) + " | copy, same bytes: MLX / torch | xcomp % of large copy"
             " | xcomp % of same-bytes copy (MLX / torch) | xcomp vs best peer |",
             "|---|" + "---|" * (len(cols) + 4)]
    for r in rows:
        best_peer = max(r.get(c + " GB/s", 0) for c in cols[1:])
        x = r["xcomp cuda GB/s"]
        cells = [f"{r[c + ' GB/s']:.0f} GB/s ({r[c] * 1e3:.2f} ms)" if c + " GB/s" in r else "-" for c in cols]
        same = r["copy ceiling same bytes"]
        sm, st = same.get("mlx x+0", float("nan")), same.get("torch clone", float("nan"))
        lines.append(f"| {r['workload']} | " + " | ".join(cells) + f" | {sm:.0f} / {st:.0f} GB/s"
                     f" | {100 * x / copy_bw:.0f}% | {100 * x / sm:.0f}% / {100 * x / st:.0f}% | {x / best_peer:.2f}x |")
    with open(os.path.join(out_dir, "kernels_gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if final:
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
