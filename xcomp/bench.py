"""`xcomp bench MODEL --targets mlx reference --against eager torch.compile`: median times and ratios.

Every contestant (an xcomp target, `dynamo:<target>` for `torch.compile(backend="xcomp")` on that
target, PyTorch eager, `torch.compile` with inductor) is built and run
once before timing (compilation is not timed; its time is reported apart). Timing runs in
interleaved rounds: each round times every contestant once, in an order rotated from round to
round, so drifts of the machine (frequency, other load) reach all of them alike. Each measurement
calls the model `calls_per_time` times (calibrated so one measurement lasts about `min_seconds`); the
result is the median per call over the rounds, with its ratio to eager and to the fastest.
Outputs are checked against eager first (max abs error), so a fast wrong answer shows up as one.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from xcomp.errors import XcompError

PEERS = ("eager", "torch.compile")


@dataclass
class Entry:
    name: str
    median_s: float
    times_s: list[float]
    calls_per_time: int
    build_s: float
    max_abs_error: float | None
    vs_eager: float | None = None    # eager median / this median (> 1: faster than eager)
    vs_best: float | None = None     # fastest median / this median (1.0: the fastest)


@dataclass
class BenchReport:
    model: str
    rounds: int
    entries: list[Entry]
    machine: dict = field(default_factory=dict)

    def table(self) -> str:
        head = f"{'contestant':<16} {'median ms':>10} {'vs eager':>9} {'vs best':>8} {'max err':>9} {'build s':>8}"
        rows = [head, "-" * len(head)]
        for e in self.entries:
            rows.append(f"{e.name:<16} {e.median_s * 1e3:>10.3f} {_ratio(e.vs_eager):>9} {_ratio(e.vs_best):>8} "
                        f"{'-' if e.max_abs_error is None else f'{e.max_abs_error:.1e}':>9} {e.build_s:>8.2f}")
        rows.append(f"{self.model}: medians of {self.rounds} interleaved rounds; {self.machine.get('machine', '')}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy as np
    info = {"machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
                       f"{platform.python_version()}", "processor": platform.processor(),
            "numpy": np.__version__}
    if hasattr(os, "getloadavg"):  # other work on the machine while timing (1-minute average)
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import mlx.core as mx
        info["mlx"] = mx.__version__
    except ImportError:
        pass
    return info


def contestants(model, inputs: Sequence[Any], targets: Sequence[str], against: Sequence[str]) -> dict[str, Callable]:
    """name -> a callable of no arguments running the model once (and waiting for its result)."""
    import xcomp
    unknown = [a for a in against if a not in PEERS]
    if unknown:
        raise XcompError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    runs: dict[str, Callable] = {}
    runs["eager"] = lambda: model(*inputs)  # always run: the reference for errors and ratios
    if "torch.compile" in against:
        import torch
        compiled = torch.compile(model)
        runs["torch.compile"] = lambda: compiled(*inputs)
    for t in targets:
        if t.startswith("dynamo:"):  # torch.compile(backend="xcomp") on that target
            import torch
            fast = torch.compile(model, backend="xcomp", options={"target": t.removeprefix("dynamo:")})
        else:
            fast = xcomp.compile(model, target=t)
        runs[t] = lambda fast=fast: fast(*inputs)
    return runs


def bench(model, inputs: Sequence[Any], targets: Sequence[str], against: Sequence[str] = ("eager",),
          rounds: int = 10, min_seconds: float = 0.02, name: str = "model") -> BenchReport:
    """Time the contestants in interleaved rounds (see the module doc)."""
    import torch
    from xcomp.arrays import to_numpy
    import numpy as np
    with torch.no_grad():
        runs = contestants(model, inputs, targets, against)
        build, outputs = {}, {}
        for n, run in runs.items():
            t0 = time.perf_counter()
            outputs[n] = run()  # first call: compiles, and gives the output to check
            build[n] = time.perf_counter() - t0
        number = {n: _calibrate(run, min_seconds) for n, run in runs.items()}
        times: dict[str, list[float]] = {n: [] for n in runs}
        names = list(runs)
        for r in range(rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                for _ in range(number[n]):
                    runs[n]()
                times[n].append((time.perf_counter() - t0) / number[n])
    from torch.utils._pytree import tree_leaves
    expected = [to_numpy(x).astype(np.float64) for x in tree_leaves(outputs["eager"])]
    entries = []
    for n in names:
        got = [to_numpy(x).astype(np.float64) for x in tree_leaves(outputs[n])]
        same = len(got) == len(expected) and all(g.shape == e.shape for g, e in zip(got, expected))
        err = max((float(np.max(np.abs(g - e))) for g, e in zip(got, expected) if e.size), default=0.0) \
            if same else None
        entries.append(Entry(n, statistics.median(times[n]), times[n], number[n], build[n], err))
    eager = entries[0].median_s
    best = min(e.median_s for e in entries)
    for e in entries:
        e.vs_eager, e.vs_best = eager / e.median_s, best / e.median_s
    shown = [e for e in entries if e.name != "eager" or "eager" in against]
    return BenchReport(name, rounds, shown, machine())


def _calibrate(run: Callable, min_seconds: float) -> int:
    """Calls per measurement so that one measurement lasts about `min_seconds` (from the fastest
    of three calls, so one slow call does not shorten every measurement)."""
    fastest = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - t0)
    return max(1, min(10000, int(min_seconds / max(fastest, 1e-9))))
