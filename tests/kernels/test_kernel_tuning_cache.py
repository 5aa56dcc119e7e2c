"""The tuner's choice kept across processes (xcomp.tuning_cache), on the CPU with scripted times.

As in test_tuner.py, kernels cannot launch here: the runtime's `run_plan` evaluates the group with
MLX built-ins and `median_seconds` returns scripted times (each kernel variant, then MLX eager, then
the group under mx.compile). The patches go on the runtime module itself: an evaluator whose `rt`
was replaced keeps nothing. A second evaluator stands for a second process: it must choose the same
without timing anything.
"""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

from cases import CASES, fused_op, fused_program, random_inputs  # noqa: E402
from helpers import assert_close  # noqa: E402
from xcomp import tuning_cache  # noqa: E402
from xcomp.backends.kernels import codegen, runtime  # noqa: E402
from xcomp.backends.kernels.target import KernelEvaluator  # noqa: E402
from xcomp.backends.mlx.target import MLXEvaluator  # noqa: E402
from xcomp.cache import Cache  # noqa: E402
from xcomp.interpreter import interpret  # noqa: E402

CASE = "chain_f32"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XCOMP_CACHE", raising=False)
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "1")
    return tmp_path / "cache"


class Script:
    """Scripted runtime: `times` = (each kernel, MLX eager, mx.compile); counts the timings taken."""

    def __init__(self, monkeypatch, times, n_kernels):
        self.script, self.timed, self.ev = [times[0]] * n_kernels + [times[1], times[2]], 0, None
        monkeypatch.setattr(runtime, "run_plan", self.run_plan)
        monkeypatch.setattr(runtime, "median_seconds", self.median_seconds)

    def run_plan(self, plan, args, prelude=None, *sizes):
        op = fused_op(self.ev.program)
        return MLXEvaluator.op(self.ev, op, dict(zip(op.operands, args)))

    def median_seconds(self, fn, *a, **k):
        mx.eval(fn())
        t = self.script[self.timed % len(self.script)]
        self.timed += 1
        return t


def run_case(script: Script):
    """A fresh evaluator (a new process's) on the case: (its choice, its outputs, the expected)."""
    types, body, kind = CASES[CASE][:3]
    program = fused_program(types, body, kind)
    ev = KernelEvaluator(program, "cuda")
    script.ev = ev
    xs = random_inputs(types, np.random.default_rng(0))
    outs = ev.run([mx.array(x) for x in xs])
    return ev, ev.choice[fused_op(ev.program)], np.array(outs[0]), interpret(program, xs)[0]


def kind_of(choice) -> str:
    if choice is None:
        return "builtins"
    return "kernel" if isinstance(choice, codegen.KernelPlan) else "compiled"


def n_variants() -> int:
    types, body, kind = CASES[CASE][:3]
    return len(codegen.variants(fused_op(fused_program(types, body, kind)), "cuda"))


@pytest.mark.parametrize("times,expect", [((1.0, 2.0, 3.0), "kernel"), ((3.0, 2.0, 1.0), "compiled"),
                                          ((3.0, 1.0, 2.0), "builtins")])
def test_a_second_process_reads_the_choice_back_without_timing(cache_dir, monkeypatch, times, expect):
    script = Script(monkeypatch, times, n_variants())
    _, first, outs, want = run_case(script)
    assert kind_of(first) == expect and script.timed == n_variants() + 2
    assert len(Cache("tuning")._entries()) == 1
    script.timed = 0
    ev, again, outs, want = run_case(script)
    assert script.timed == 0, "nothing timed: the stored choice is used"
    assert kind_of(again) == expect and "from the cache" in ev.decisions[-1]
    if expect == "kernel":
        assert tuning_cache.plan_text(again) == tuning_cache.plan_text(first)
    assert_close(outs, want)


def test_another_device_or_a_replaced_runtime_times_again(cache_dir, monkeypatch):
    script = Script(monkeypatch, (1.0, 2.0, 3.0), n_variants())
    run_case(script)
    real = tuning_cache.device_text
    monkeypatch.setattr(tuning_cache, "device_text", lambda m: real(m) + "-another-gpu")
    script.timed = 0
    run_case(script)
    assert script.timed == n_variants() + 2 and len(Cache("tuning")._entries()) == 2
    monkeypatch.setattr(tuning_cache, "device_text", lambda m: real(m) + "-third-gpu")
    types, body, kind = CASES[CASE][:3]
    ev = KernelEvaluator(fused_program(types, body, kind), "cuda")
    ev.rt = type("Timer", (), {"run_plan": staticmethod(script.run_plan),
                               "median_seconds": staticmethod(script.median_seconds)})()
    script.ev = ev
    ev.run([mx.array(x) for x in random_inputs(types, np.random.default_rng(0))])
    assert len(Cache("tuning")._entries()) == 2, "times from a replaced runtime are not kept"


def test_a_stale_entry_is_timed_again(cache_dir, monkeypatch):
    import json
    import os
    script = Script(monkeypatch, (1.0, 2.0, 3.0), n_variants())
    run_case(script)
    (entry,) = [d for _, d in Cache("tuning")._entries()]
    path = os.path.join(entry, tuning_cache.CHOICE)
    record = json.load(open(path))
    record["sha256"] = "0" * 64               # names a variant the generator no longer makes
    json.dump(record, open(path, "w"))
    Cache("tuning")._write_manifest(entry)    # a consistent entry with stale content
    script.timed = 0
    _, choice, outs, want = run_case(script)
    assert script.timed == n_variants() + 2 and kind_of(choice) == "kernel"
    assert_close(outs, want)
    (entry,) = [d for _, d in Cache("tuning")._entries()]
    assert json.load(open(os.path.join(entry, tuning_cache.CHOICE)))["sha256"] != "0" * 64, "replaced"
