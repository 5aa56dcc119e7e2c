"""The main job: compile a small transformer block written in PyTorch for every target that runs on
this machine and print (target, max error vs eager, eager time, compiled time, speedup over eager:
eager time / compiled time, above 1 when the compiled program is faster)."""
from __future__ import annotations

import time

import numpy as np


def _best_interleaved(fns: dict, rounds: int = 5, calls: int = 20) -> dict:
    """Seconds per call of each function: the fastest single call over `rounds` interleaved rounds
    of `calls` calls each (every round times every function in turn, so a busy moment of a shared
    machine hits them alike; the minimum is the least noisy estimate of a call's own cost)."""
    best = {k: float("inf") for k in fns}
    for fn in fns.values():
        fn()  # warm up (and compile)
    for _ in range(rounds):
        for k, fn in fns.items():
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t0)
    return best


def run(model_name: str = "gpt_block", repeat: int = 20) -> list[dict]:
    """Compile `model_name` from xcomp.zoo for every runnable target; returns one row per target.

    Each target is timed beside PyTorch eager in interleaved rounds (`repeat` calls per round), with
    the inputs eager takes (torch tensors; MLX arrays for the MLX-based targets, evaluated)."""
    import torch

    import xcomp
    from xcomp.arrays import to_numpy
    from xcomp.backends import TARGETS, get_target
    from xcomp.zoo import MODELS

    model, inputs = MODELS[model_name]()
    with torch.no_grad():
        expected = model(*inputs)
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
            out = fast(*inputs)
            call = lambda: fast(*inputs)  # noqa: E731
        err = float(np.max(np.abs(to_numpy(out).astype(np.float64) - to_numpy(expected).astype(np.float64))))
        with torch.no_grad():
            t = _best_interleaved({"eager": lambda: model(*inputs), "compiled": call}, calls=repeat)
        prog = fast.program()
        rows.append({"target": name, "status": "ok", "max_error": err, "eager_ms": t["eager"] * 1e3,
                     "compiled_ms": t["compiled"] * 1e3, "ops": prog.op_count()})
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
