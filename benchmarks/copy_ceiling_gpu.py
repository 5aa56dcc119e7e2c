"""What a plain copy reaches through MLX arrays on this GPU, against PyTorch: the ceiling for every
MLX-based column of `kernels_gpu.py` (xcomp `cuda`, MLX eager, mx.compile).

For 128 MB and 512 MB moved (half read, half written), float32:
- MLX `x + 0`, one evaluation per call (how every MLX column is timed) and four chained copies per
  evaluation (per-copy time without MLX's per-evaluation cost);
- a hand-written vectorized streaming copy through `mx.fast.cuda_kernel` (several launch shapes): what
  any custom kernel, xcomp's included, can do on MLX's buffers;
- torch `clone` and `x + 0` on PyTorch's own buffers.
Timing as in kernels_gpu.py: median over batches of calls, each queued as made, one synchronize per
batch. Writes $OUT/copy_ceiling_gpu.json and prints a table.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

import mlx.core as mx

REPEAT, WARMUP, BATCH = 9, 3, 20
COPY = """
  const long base = (long)blockIdx.x * {per} + threadIdx.x;
  const float4* p = reinterpret_cast<const float4*>(x);
  float4* q = reinterpret_cast<float4*>(out);
  float4 a[{unroll}];
#pragma unroll
  for (int u = 0; u < {unroll}; ++u) a[u] = __ldcs(p + base + u * {threads});
#pragma unroll
  for (int u = 0; u < {unroll}; ++u) __stcs(q + base + u * {threads}, a[u]);
"""


def timed_mx(fn) -> float:
    """Seconds per call, each call's output queued with mx.async_eval as it is made."""
    for _ in range(WARMUP):
        mx.eval(fn())
    ts = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        outs = []
        for _ in range(BATCH):
            outs.append(fn())
            mx.async_eval(outs[-1])
        mx.synchronize()
        ts.append((time.perf_counter() - t0) / BATCH)
    return sorted(ts)[len(ts) // 2]


def timed_torch(fn) -> float:
    import torch
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        for _ in range(BATCH):
            fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) / BATCH)
    return sorted(ts)[len(ts) // 2]


def copy_kernel(n: int, threads: int, unroll: int):
    per = threads * unroll
    k = mx.fast.cuda_kernel(name=f"copy_{threads}_{unroll}", input_names=["x"], output_names=["out"],
                            source=COPY.format(per=per, unroll=unroll, threads=threads))
    return lambda x: k(inputs=[x], grid=(n // 4 // per * threads, 1, 1), threadgroup=(threads, 1, 1),
                       output_shapes=[x.shape], output_dtypes=[x.dtype])[0]


def main() -> int:
    assert mx.cuda.is_available(), "MLX has no CUDA device"
    rows = []
    for n in (16 * 1024 * 1024, 64 * 1024 * 1024):
        moved = 2 * n * 4
        r = {"MB moved": moved // 2**20}
        x = mx.random.normal((n,))
        mx.eval(x)
        r["mlx x+0, one per eval"] = moved / timed_mx(lambda: x + 0) / 1e9
        r["mlx x+0, four per eval"] = 4 * moved / timed_mx(lambda: (((x + 0) + 0) + 0) + 0) / 1e9
        own = {}
        for threads, unroll in ((128, 4), (256, 4), (256, 8), (512, 4)):
            f = copy_kernel(n, threads, unroll)
            assert bool(mx.array_equal(f(x), x)), "copy kernel is wrong"
            own[f"{threads}x{unroll}"] = moved / timed_mx(lambda f=f: f(x)) / 1e9
        r["own copy kernel (best launch shape)"] = max(own.values())
        r["own copy kernel, per launch shape"] = own
        del x
        try:
            import torch
            xt = torch.randn(n, device="cuda")
            r["torch clone"] = moved / timed_torch(lambda: xt.clone()) / 1e9
            r["torch x+0"] = moved / timed_torch(lambda: xt + 0) / 1e9
            del xt
        except ImportError:
            pass
        rows.append(r)
        print(", ".join(f"{k} {v:.0f}" for k, v in r.items() if not isinstance(v, dict)), flush=True)
    meta = {"device": _device(), "mlx": mx.__version__, "python": platform.python_version(),
            "timing": f"median over {REPEAT} batches of {BATCH} calls, each queued as made"}
    with open(os.path.join(os.environ.get("OUT", "."), "copy_ceiling_gpu.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0


def _device() -> str:
    try:
        import torch
        return torch.cuda.get_device_name()
    except ImportError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
