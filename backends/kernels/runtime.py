"""Building, caching and launching generated kernels through MLX's custom kernel API.

`mx.fast.metal_kernel` / `mx.fast.cuda_kernel` objects are built once per kernel (the name holds a
hash of the source; a static group's kernel is generated per shape signature, a symbolic group's
once per size class) and kept in `KERNELS`. A launch passes the inputs row-contiguous (MLX copies
strided ones), 0-d arrays as one-element vectors, and returns lazy MLX arrays, so kernels compose
with the rest of the MLX graph. A kernel with run-time sizes gets its grid, output shapes and
`sizes` input (int64) from the call's binding of the size names (`KernelSpec.bind`).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

from xcomp.backends.kernels.codegen import KernelPlan, KernelSpec

KERNELS: dict[tuple[str, str], Any] = {}


def _factory(dialect: str):
    import mlx.core as mx
    return {"metal": mx.fast.metal_kernel, "cuda": mx.fast.cuda_kernel}[dialect]


def kernel(spec: KernelSpec):
    """The MLX kernel object of `spec`, built on first use."""
    key = (spec.dialect, spec.name)
    if key not in KERNELS:
        KERNELS[key] = _factory(spec.dialect)(name=spec.name, input_names=spec.input_names,
                                             output_names=spec.output_names, source=spec.source,
                                             header=spec.header, ensure_row_contiguous=True)
    return KERNELS[key]


LAUNCH_MEMO = 64   # size bindings whose launch parameters a kernel keeps (oldest dropped first)


def launch_params(spec: KernelSpec, sizes: dict | None = None) -> tuple:
    """(grid, threadgroup, output shapes, shapes passed to MLX, output dtypes, `sizes` array or None)
    of `spec` at the binding `sizes`: computed by `spec.bind` on the first launch at a binding,
    then reused (memoized per binding in `spec.launches`, at most LAUNCH_MEMO bindings; the `sizes`
    input is an immutable MLX array, passed again at every launch)."""
    key = tuple(sizes.items()) if sizes else ()
    hit = spec.launches.get(key)
    if hit is not None:
        return hit
    import mlx.core as mx

    from xcomp.backends.mlx.dtypes import mx_dtype
    at = spec.bind(sizes or {})
    out_shapes = [tuple(s) for s in at.output_shapes]
    hit = (at.grid, at.threadgroup, out_shapes, [s if len(s) else (1,) for s in out_shapes],
           [mx_dtype(t) for t in spec.output_dtypes],
           mx.array(at.sizes, dtype=mx.int64) if spec.sizes else None)
    if len(spec.launches) >= LAUNCH_MEMO:
        spec.launches.pop(next(iter(spec.launches)))
    spec.launches[key] = hit
    return hit


def launch(spec: KernelSpec, inputs: list, sizes: dict | None = None) -> list:
    """Run `spec` on MLX arrays (its sizes bound at `sizes`, the values of the size names, when it
    has run-time sizes); returns its outputs (lazy)."""
    import mlx.core as mx
    grid, threadgroup, out_shapes, shapes, dtypes, size_array = launch_params(spec, sizes)
    if not all(grid):   # no rows or no elements: the outputs are empty
        return [mx.zeros(s, dtype=dt) for s, dt in zip(out_shapes, dtypes)]
    arrays = [x.reshape(1) if x.ndim == 0 else x for x in inputs]
    if size_array is not None:
        arrays.append(size_array)
    outs = kernel(spec)(inputs=arrays, grid=grid, threadgroup=threadgroup,
                        output_shapes=shapes, output_dtypes=dtypes)
    return [o.reshape(s) if s != sh else o for o, s, sh in zip(outs, out_shapes, shapes)]


def run_plan(kplan: KernelPlan, args: list, prelude: Callable[[list], Any] | None = None,
             sizes: dict | None = None) -> list:
    """Run a fused op's plan: the MLX prelude (matmul/conv) first when there is one, then the kernel
    (split-row plans: the partials kernel, then the kernel over the inputs and the partials).
    `sizes`: the values of the size names at this call (plans of groups with symbolic dims)."""
    anchor = prelude(args) if kplan.prelude is not None else None
    inputs = [anchor if i < 0 else args[i] for i in kplan.input_map]
    if kplan.partials is not None:   # split rows: the partials launch, then the combining one
        inputs = inputs + launch(kplan.partials, inputs, sizes)
    return launch(kplan.spec, inputs, sizes)


def median_seconds(fn: Callable[[], list], repeat: int = 7, batch: int = 8, warmup: int = 1) -> float:
    """Seconds per call of `fn()`: median over `repeat` batches of `batch` calls, each queued for the
    device as soon as it is made (mx.async_eval), then synchronized once per batch (after `warmup`
    calls), so launch overhead overlaps device work. The tuner and the GPU benchmarks time MLX this way."""
    import mlx.core as mx
    for _ in range(warmup):
        mx.eval(fn())
    mx.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outs = []
        for _ in range(batch):
            outs.append(fn())
            mx.async_eval(outs[-1])
        mx.synchronize()
        times.append((time.perf_counter() - t0) / batch)
    return sorted(times)[len(times) // 2]


def tuning() -> bool:
    """Whether each group's kernel variants are timed against MLX built-ins on first call (the
    fastest kept). On by default for GPU targets; XCOMP_KERNEL_TUNE=0 turns it off (default kernels)."""
    return os.environ.get("XCOMP_KERNEL_TUNE", "1") not in ("", "0")


def mx_compile_enabled() -> bool:
    """Whether the targets run the whole MLX graph under mx.compile (XCOMP_MX_COMPILE=0 turns it off)."""
    return os.environ.get("XCOMP_MX_COMPILE", "1") not in ("", "0")
