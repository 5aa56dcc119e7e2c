"""What a plain copy reaches through MLX arrays on this GPU, against PyTorch: the ceiling for every
MLX-based column of `kernels_gpu.py` (xcomp `cuda`, MLX eager, mx.compile).

For 128 MB and 512 MB moved (half read, half written), float32:
- MLX `x + 0`, one evaluation per call (how every MLX column is timed) and four chained copies per
  evaluation (per-copy time without MLX's per-evaluation cost);
- a hand-written vectorized streaming copy through `mx.fast.cuda_kernel` (several launch shapes): what
  any custom kernel, xcomp's included, can do on MLX's buffers;
- torch `clone` and `x + 0` on PyTorch's own buffers.
Timing is kernels_gpu.py's `timed`: median over batches of calls, each queued as made, one
synchronize per batch. Writes $OUT/copy_ceiling_gpu.json and prints a table.
"""
from __future__ import annotations

import json
import os
import platform
import sys

import mlx.core as mx

from kernels_gpu import BATCH, REPEAT, timed  # the same timing as every column of the benchmark
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
        r["mlx x+0, one per eval"] = moved / timed(lambda: x + 0, "mx") / 1e9
        r["mlx x+0, four per eval"] = 4 * moved / timed(lambda: (((x + 0) + 0) + 0) + 0, "mx") / 1e9
        own = {}
        for threads, unroll in ((128, 4), (256, 4), (256, 8), (512, 4)):
            f = copy_kernel(n, threads, unroll)
            assert bool(mx.array_equal(f(x), x)), "copy kernel is wrong"
            own[f"{threads}x{unroll}"] = moved / timed(lambda f=f: f(x), "mx") / 1e9
        r["own copy kernel (best launch shape)"] = max(own.values())
        r["own copy kernel, per launch shape"] = own
        try:
            import torch
            xt = torch.randn(n, device="cuda")
            r["torch clone"] = moved / timed(lambda: xt.clone(), "torch") / 1e9
            r["torch x+0"] = moved / timed(lambda: xt + 0, "torch") / 1e9
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
