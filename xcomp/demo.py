"""The main job: compile a small transformer block written in PyTorch for every target that runs on
this machine and print (target, max error vs eager, eager time, compiled time, speedup over eager:
eager time / compiled time, above 1 when the compiled program is faster)."""
from __future__ import annotations

import time

import numpy as np


def _timeit(fn, repeat: int = 20) -> float:
    fn()  # warm up (and compile)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(model_name: str = "gpt_block", repeat: int = 20) -> list[dict]:
    """Compile `model_name` from xcomp.zoo for every runnable target; returns one row per target."""
    import torch

    import xcomp
    from xcomp.arrays import to_numpy
    from xcomp.backends import TARGETS, get_target
    from xcomp.zoo import MODELS

    model, inputs = MODELS[model_name]()
    with torch.no_grad():
        expected = model(*inputs)
        eager = _timeit(lambda: model(*inputs), repeat)
    rows = []
    for name in TARGETS:
        target = get_target(name)
        why = target.unavailable_reason()
        if why:
            rows.append({"target": name, "status": f"skipped: {why}"})
            continue
        fast = xcomp.compile(model, target=name)
        if target.array_kind == "mlx":  # time the MLX graph including evaluation
            import mlx.core as mx
            xs = [mx.array(to_numpy(x)) for x in inputs]
            out = fast(*xs)
            call = lambda: mx.eval(fast(*xs))  # noqa: E731
        else:
            xs = [to_numpy(x) for x in inputs]
            out = fast(*xs)
            call = lambda: fast(*xs)  # noqa: E731
        err = float(np.max(np.abs(to_numpy(out).astype(np.float64) - to_numpy(expected).astype(np.float64))))
        compiled = _timeit(call, repeat)
        prog = fast.program()
        rows.append({"target": name, "status": "ok", "max_error": err, "eager_ms": eager * 1e3,
                     "compiled_ms": compiled * 1e3, "ops": prog.op_count()})
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'target':<10} {'max |err| vs eager':>19} {'eager ms':>9} {'compiled ms':>12} "
            f"{'vs eager':>9} {'ops':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['target']:<10} {r['status']}")
        else:
            speedup = f"{r['eager_ms'] / r['compiled_ms']:.2f}x"
            lines.append(f"{r['target']:<10} {r['max_error']:>19.3e} {r['eager_ms']:>9.3f} "
                         f"{r['compiled_ms']:>12.3f} {speedup:>9} {r['ops']:>5}")
    return "\n".join(lines)


def main(model_name: str = "gpt_block") -> int:
    import platform
    print(f"xcomp demo: {model_name} (xcomp.zoo) on {platform.machine()} {platform.system()}, "
          f"compiled for every target that runs here\n")
    rows = run(model_name)
    print(format_table(rows))
    return 0 if all(r["status"] != "ok" or r["max_error"] < 1e-3 for r in rows) else 1
