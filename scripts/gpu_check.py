"""The one scripted check of the `cuda` target on an NVIDIA GPU (MLX's CUDA backend).

Every kernel kind of tests/kernels/cases.py (elementwise, broadcast, row reductions with
prologue/epilogue, float32/float16/bfloat16/int), a matmul epilogue, and whole programs through
the fusion pipeline run as generated CUDA kernels and are compared with MLX eager on the same GPU
(and the reference interpreter), on fresh random inputs drawn per run; the zoo models (MLP, CNN,
TransformerEncoderLayer, GPT-style block) compile end to end and are compared with MLX eager and
PyTorch eager. Groups with symbolic dims (tests/kernels/cases.py DYNAMIC) run as one kernel per
size class at several sizes, and a GPT block compiled with a dynamic batch and sequence
(`--only dynamic_gpt_block,dynamic_encoder_layer`; the encoder layer too) runs at 8 lengths (1 to 512) against PyTorch eager, reporting builds
and its per-call time against the static program. Outputs are poisoned: MLX
allocates them uninitialized, and every element is checked. Prints one line per check and a
summary; writes $OUT/gpu_check.json when OUT is set. Exit status 1 if any check fails.
`--only name,name` runs only those cases (e.g. the row cases after a row-kernel change).
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "kernels"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

os.environ.setdefault("XCOMP_KERNEL_TUNE", "0")   # check the generated kernels, not fallbacks
import mlx.core as mx  # noqa: E402

from cases import (CASES, DYNAMIC, DYNAMIC_SIZES, EW, MM, RED, dynamic_inputs, fused_program,  # noqa: E402
                   random_inputs)
from helpers import assert_close  # noqa: E402
from xcomp.api import optimize  # noqa: E402
from xcomp.backends import get_target  # noqa: E402
from xcomp.backends.kernels import codegen, runtime  # noqa: E402
from xcomp.backends.mlx.dtypes import mx_dtype  # noqa: E402
from xcomp.backends.mlx.target import MLXEvaluator  # noqa: E402
from xcomp.interpreter import interpret  # noqa: E402
from xcomp.ir.builder import build_program  # noqa: E402
from xcomp.ir.types import DType, tensor  # noqa: E402


def _mm_epilogue(b, x, w, bias, res):
    y = b.op("matmul", x, w)
    return b.op("add", b.op("gelu", b.op("add", y, bias)), res)


EXTRA = {"matmul_bias_gelu_residual": ([tensor((64, 96)), tensor((96, 80)), tensor((80,)), tensor((64, 80))],
                                       _mm_epilogue, MM)}


unfused_program = build_program  # a program of plain (unfused) ops around `body`


def _mlp(b, x, w1, b1, w2, b2):
    h = b.op("gelu", b.op("add", b.op("matmul", x, w1), b1))
    return b.op("add", b.op("add", b.op("matmul", h, w2), b2), x)


def _norms(b, x, w, bb):
    ln = b.op("layer_norm", x, w, bb, normalized_ndim=1)
    sm = b.op("softmax", b.op("mul", ln, b.op("constant", value=0.5, dtype=DType.F32)), axis=-1)
    return [sm, b.op("rms_norm", b.op("add", x, sm), w, normalized_ndim=1)]


PROGRAMS = {
    "pipeline_mlp": ([tensor((128, 256)), tensor((256, 512)), tensor((512,)), tensor((512, 256)), tensor((256,))], _mlp),
    "pipeline_norms": ([tensor((64, 1000)), tensor((1000,)), tensor((1000,))], _norms),
}


def mlx_eager(program, arrays):
    """MLX eager of `program`: its composites the MLX table lacks (gelu, silu, var) decomposed first,
    as the `mlx` target's pipeline does."""
    decomposed, _ = optimize(program, "mlx", passes=["decompose"])
    return MLXEvaluator(decomposed).run(arrays)


def to_mx(arrays, types):
    return [mx.array(a).astype(mx_dtype(t.dtype)) for a, t in zip(arrays, types)]


def rel_norm_error(got, want) -> float:
    """|got - want| / |want| (Frobenius norms, float64): the measure for results of TF32 matmuls."""
    g64, w64 = np.array(got.astype(mx.float32), np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(g64 - w64) / np.linalg.norm(w64))


def check(name, program, in_types, rng, results):
    t0 = time.perf_counter()
    try:
        inputs = random_inputs(in_types, rng)
        target = get_target("cuda")
        opt, _ = optimize(program, "cuda")
        runner = target.build(opt)
        got = runner(to_mx(inputs, in_types))
        mx.eval(got)
        again = runner(to_mx(inputs, in_types))   # second call: the whole graph under mx.compile
        mx.eval(again)
        compile_failed = [d for d in target.evaluator.decisions if "mx.compile failed" in d]
        assert not compile_failed, compile_failed[0]
        for i, (g, a) in enumerate(zip(got, again)):
            assert_close(a, g, dtype="float32", scale=1.0, msg=f"{name} output {i}: compiled call vs first call")
        eager = mlx_eager(program, to_mx(inputs, in_types))
        want = interpret(program, inputs)
        kernels = sum(1 for op in opt.walk() if op.name == "xc.fused")
        fell_back = [d for d in target.evaluator.decisions if "built-ins" in d]
        dt = in_types[0].dtype
        dname = "bfloat16" if dt is DType.BF16 else str(dt.np)
        tf32 = any(op.name == "xc.matmul" for op in program.walk())
        for i, (g, e, w) in enumerate(zip(got, eager, want)):
            assert_close(g, e, dtype=dname, scale=2.0, msg=f"{name} output {i} vs MLX eager")
            if tf32:  # MLX's CUDA float32 matmul runs in TF32: compare by relative norm (METHOD.md: ~3e-4)
                rel = rel_norm_error(g, w)
                assert rel < 2e-3, f"{name} output {i}: relative error {rel:.2e} vs reference"
            else:
                assert_close(g, np.asarray(w), dtype=dname, scale=2.0, msg=f"{name} output {i} vs reference")
        results.append({"check": name, "ok": True, "kernels": kernels, "fallbacks": fell_back,
                        "seconds": round(time.perf_counter() - t0, 3)})
        print(f"PASS {name:<28} kernels={kernels} fallbacks={len(fell_back)}", flush=True)
    except Exception as e:  # noqa: BLE001  (report every failure, keep checking)
        results.append({"check": name, "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"FAIL {name:<28} {type(e).__name__}: {str(e)[:600]}", flush=True)
        traceback.print_exc(limit=3)


def check_model(name, results):
    """A zoo model end to end: `xcomp.compile(model, target="cuda")` on MLX arrays (first call and
    the compiled second call) against MLX eager of the captured program on the same GPU, and against
    PyTorch eager on the CPU (relative norm: MLX's CUDA float32 matmul runs in TF32)."""
    import torch

    import xcomp
    from xcomp.zoo import MODELS
    t0 = time.perf_counter()
    try:
        model, inputs = MODELS[name]()
        with torch.no_grad():
            want = model(*inputs).double().numpy()
        xs = [mx.array(x.numpy()) for x in inputs]
        f = xcomp.compile(model, target="cuda")
        got, again = f(*xs), None
        mx.eval(got)
        again = f(*xs)
        mx.eval(again)
        assert_close(again, got, dtype="float32", scale=1.0, msg=f"{name}: compiled call vs first call")
        eager = mlx_eager(xcomp.capture(model, inputs), xs)[0]
        assert_close(got, eager, dtype="float32", scale=4.0, msg=f"{name} vs MLX eager")
        rel = rel_norm_error(got, want)
        assert rel < 2e-3, f"{name}: relative error {rel:.2e} vs torch eager"
        kernels = sum(1 for op in f.program().walk() if op.name == "xc.fused")
        results.append({"check": f"model {name}", "ok": True, "kernels": kernels, "rel_err_vs_torch": float(rel),
                        "seconds": round(time.perf_counter() - t0, 3)})
        print(f"PASS model {name:<22} fused groups={kernels} rel err vs torch {rel:.1e}", flush=True)
    except Exception as e:  # noqa: BLE001  (report every failure, keep checking)
        results.append({"check": f"model {name}", "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"FAIL model {name:<22} {type(e).__name__}: {str(e)[:600]}", flush=True)
        traceback.print_exc(limit=3)


def check_variants(name, program, in_types, rng, results):
    """Every kernel variant the tuner may pick, launched directly, against MLX eager."""
    t0 = time.perf_counter()
    try:
        inputs = random_inputs(in_types, rng)
        op = next(o for o in program.walk() if o.name == "xc.fused")
        eager = mlx_eager(program, to_mx(inputs, in_types))
        dt = in_types[0].dtype
        dname = "bfloat16" if dt is DType.BF16 else str(dt.np)
        plans = codegen.variants(op, "cuda")
        for pl in plans:
            if pl.prelude is not None:
                continue
            got = runtime.run_plan(pl, to_mx(inputs, in_types))
            mx.eval(got)
            for i, (g, e) in enumerate(zip(got, eager)):
                assert_close(g, e, dtype=dname, scale=2.0, msg=f"{name} variant {pl.spec.source.splitlines()[0]} output {i}")
        results.append({"check": f"{name} variants", "ok": True, "variants": len(plans),
                        "seconds": round(time.perf_counter() - t0, 3)})
        print(f"PASS {name + ' variants':<28} {len(plans)} variants", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append({"check": f"{name} variants", "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"FAIL {name + ' variants':<28} {type(e).__name__}: {str(e)[:600]}", flush=True)


LONG_ROWS = {   # tuning variants (split rows included) at long rows (several rows only, to stay quick)
    "softmax_long": ([tensor((8, 32768))], lambda b, x: b.op("softmax", x, axis=-1), RED),
    "rms_norm_long": ([tensor((8, 32768)), tensor((32768,))],
                      lambda b, x, w: b.op("rms_norm", x, w, normalized_ndim=1, eps=1e-6), RED),
    "layer_norm_long": ([tensor((8, 32768)), tensor((32768,)), tensor((32768,))],
                        lambda b, x, w, bb: b.op("layer_norm", x, w, bb, normalized_ndim=1), RED),
    "logsumexp_long": ([tensor((16, 16384))], lambda b, x: b.op("logsumexp", x, axes=(-1,)), RED),
    "layer_norm_4096": ([tensor((16, 4096)), tensor((4096,)), tensor((4096,))],
                        lambda b, x, w, bb: b.op("layer_norm", x, w, bb, normalized_ndim=1), RED),
    "gelu_big": ([tensor((1 << 21,))], lambda b, x: b.op("gelu", x), EW),
    "silu_mul_tail": ([tensor(((1 << 20) + 12,)), tensor(((1 << 20) + 12,))], lambda b, x, y: b.op("mul", b.op("silu", x), y), EW),
}


def check_dynamic(name, in_types, body, kind, rng, results):
    """A group with symbolic dims built once for `cuda` and called at every binding of
    DYNAMIC_SIZES (first call eager, then under mx.compile), against MLX eager and the reference;
    the kernels it builds are at most one per size class."""
    t0 = time.perf_counter()
    try:
        program = fused_program(in_types, body, kind)
        opt, _ = optimize(program, "cuda")
        target = get_target("cuda")
        runner = target.build(opt)
        before = len(runtime.KERNELS)
        for env in DYNAMIC_SIZES + DYNAMIC_SIZES[::-1]:   # each size twice: eager then compiled
            inputs = dynamic_inputs(name, in_types, env, rng)
            args = to_mx(inputs, in_types)
            got = runner(args)
            mx.eval(got)
            eager = mlx_eager(program, to_mx(inputs, in_types))
            want = interpret(program, inputs)
            for i, (g, e, w) in enumerate(zip(got, eager, want)):
                assert_close(g, e, dtype="float32", scale=2.0, msg=f"{name} at {env} output {i} vs MLX eager")
                assert_close(g, np.asarray(w), dtype="float32", scale=2.0, msg=f"{name} at {env} output {i} vs reference")
        built = len(runtime.KERNELS) - before
        fell_back = [d for d in target.evaluator.decisions if "built-ins" in d or "failed" in d]
        assert built <= 2, f"{built} kernels built for one group"
        results.append({"check": f"dynamic {name}", "ok": True, "kernels_built": built, "fallbacks": fell_back,
                        "sizes": len(DYNAMIC_SIZES), "seconds": round(time.perf_counter() - t0, 3)})
        print(f"PASS dynamic {name:<20} {len(DYNAMIC_SIZES)} sizes, kernels built={built} "
              f"fallbacks={len(fell_back)}", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append({"check": f"dynamic {name}", "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"FAIL dynamic {name:<20} {type(e).__name__}: {str(e)[:600]}", flush=True)
        traceback.print_exc(limit=3)


DYNAMIC_LENGTHS = [1, 2, 7, 16, 33, 100, 257, 512]


def check_dynamic_model(results, name="gpt_block", dim=256, heads=4, lengths=DYNAMIC_LENGTHS, timed=(128, 512)):
    """A zoo model (the GPT block, the encoder layer) compiled once with a symbolic batch and
    sequence (`dynamic=True`) on `cuda`, called at 8 lengths (1 to 512, batch 1 to 3), each call
    twice (eager, then under mx.compile) against PyTorch eager (relative norm: TF32 matmuls);
    reports captures, builds, kernels built, and the per-call time against the static program at
    two lengths."""
    import torch

    import xcomp
    from xcomp.zoo import MODELS
    t0 = time.perf_counter()
    check = f"dynamic {name}"
    try:
        model, _ = MODELS[name](batch=2, seq=8, dim=dim, heads=heads)
        f = xcomp.compile(model, target="cuda", dynamic=True)
        before = len(runtime.KERNELS)
        built_after = []
        worst = 0.0
        for i, t in enumerate(lengths):
            x = torch.randn(1 + i % 3, t, dim)
            with torch.no_grad():
                want = model(x).double().numpy()
            xs = mx.array(x.numpy())
            for _ in range(2):
                got = f(xs)
                mx.eval(got)
                rel = rel_norm_error(got, want)
                assert rel < 2e-3, f"length {t}: relative error {rel:.2e} vs torch eager"
                worst = max(worst, rel)
            built_after.append(len(runtime.KERNELS) - before)
        groups = sum(1 for op in f.program().walk() if op.name == "xc.fused")
        stats = f.stats
        assert (stats.captures, stats.builds, stats.specializations) == (1, 1, 0), str(stats)
        assert built_after[-1] <= groups + 2, f"{built_after[-1]} kernels for {groups} groups"
        timing = {}
        for t in timed:   # per call: the dynamic program against the static one at one length
            x = mx.array(torch.randn(2, t, dim).numpy())
            static = xcomp.compile(model, target="cuda", dynamic=False)
            for g in (f, static):
                mx.eval(g(x))
                mx.eval(g(x))
            td = runtime.median_seconds(lambda: f(x))
            ts = runtime.median_seconds(lambda: static(x))
            timing[t] = {"dynamic_us": round(td * 1e6, 1), "static_us": round(ts * 1e6, 1),
                         "ratio": round(td / ts, 3)}
        results.append({"check": check, "ok": True, "lengths": list(lengths),
                        "captures": stats.captures, "builds": stats.builds, "kernels_built": built_after,
                        "fused_groups": groups, "worst_rel_err": worst, "per_call": timing,
                        "seconds": round(time.perf_counter() - t0, 3)})
        print(f"PASS {check} {len(lengths)} lengths: captures={stats.captures} builds={stats.builds} "
              f"kernels built after each length={built_after} (groups {groups}) worst rel err {worst:.1e}; "
              f"per call dynamic/static {timing}", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append({"check": check, "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        print(f"FAIL {check} {type(e).__name__}: {str(e)[:600]}", flush=True)
        traceback.print_exc(limit=3)


def _selected(table: dict, only: set | None) -> dict:
    return {k: v for k, v in table.items() if only is None or k in only}


def main() -> int:
    """`--only a,b,...` limits the checks to those case names (kernel cases, programs, long rows)."""
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    print(f"mlx {mx.__version__}, cuda available: {mx.cuda.is_available()}, device: {mx.default_device()}")
    if not mx.cuda.is_available():
        print("MLX has no CUDA device here")
        return 2
    rng = np.random.default_rng(int(time.time()))
    results: list = []
    for name, (in_types, body, kind) in _selected({**CASES, **EXTRA}, only).items():
        check(name, fused_program(in_types, body, kind), in_types, rng, results)
    for name, (in_types, body) in _selected(PROGRAMS, only).items():
        check(name, unfused_program(in_types, body), in_types, rng, results)
    for name, (in_types, body, kind) in _selected({**CASES, **LONG_ROWS}, only).items():
        check_variants(name, fused_program(in_types, body, kind), in_types, rng, results)
    for name, (in_types, body, kind) in _selected(DYNAMIC, only).items():
        check_dynamic(name, in_types, body, kind, rng, results)
    from xcomp.zoo import MODELS
    for name in _selected(MODELS, only):
        check_model(name, results)
    for name in ("gpt_block", "encoder_layer"):
        if only is None or f"dynamic_{name}" in only:
            check_dynamic_model(results, name)
    ok = sum(r["ok"] for r in results)
    print(f"gpu_check: {ok}/{len(results)} passed; {len(runtime.KERNELS)} kernels built")
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gpu_check.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "results": results}, f, indent=1)
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
