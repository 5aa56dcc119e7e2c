"""The tuner's choice per fused group (KernelEvaluator._choose), on the CPU with a fake runtime.

Kernels cannot launch here, so the fake runtime runs each candidate through MLX built-ins and
reports scripted times: kernels first (one per variant), then MLX eager, then the group under
mx.compile. The tuner must keep the fastest of the three kinds.
"""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

from cases import CASES, fused_op, fused_program, random_inputs  # noqa: E402
from helpers import assert_close  # noqa: E402
from xcomp.backends.kernels import codegen  # noqa: E402
from xcomp.backends.kernels.target import KernelEvaluator  # noqa: E402
from xcomp.interpreter import interpret  # noqa: E402


class FakeRuntime:
    """Times candidates by script: `kernel` seconds for each kernel variant, then `eager`, then
    `compiled`; running a plan evaluates the group with MLX built-ins."""

    def __init__(self, ev, kernel, eager, compiled, n_kernels):
        self.ev, self.script = ev, [kernel] * n_kernels + [eager, compiled]
        self.calls = 0

    def run_plan(self, plan, args, prelude, sizes=None):
        op = fused_op(self.ev.program)
        return KernelEvaluator.__mro__[1].op(self.ev, op, dict(zip(op.operands, args)))

    def median_seconds(self, fn):
        mx.eval(fn())
        t = self.script[self.calls]
        self.calls += 1
        return t


@pytest.mark.parametrize("times,expect", [
    ((1.0, 2.0, 3.0), "kernel"),
    ((3.0, 2.0, 1.0), "compiled"),
    ((3.0, 1.0, 2.0), "builtins"),
])
def test_tuner_keeps_the_fastest_of_kernels_eager_and_mx_compile(monkeypatch, times, expect):
    name = "chain_f32"
    types, body, kind = CASES[name][:3]
    program = fused_program(types, body, kind)
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "1")
    ev = KernelEvaluator(program, "cuda")
    n = len(codegen.variants(fused_op(program), "cuda"))
    ev.rt = FakeRuntime(ev, *times, n_kernels=n)
    xs = random_inputs(types, np.random.default_rng(0))
    outs = ev.run([mx.array(x) for x in xs])
    choice = ev.choice[fused_op(ev.program)]   # the evaluator may hold a decomposed copy
    kinds = {"kernel": isinstance(choice, codegen.KernelPlan),
             "compiled": callable(choice) and not isinstance(choice, codegen.KernelPlan),
             "builtins": choice is None}
    assert kinds[expect], (choice, ev.decisions)
    assert "mx.compile" in ev.decisions[-1]
    assert_close(np.array(outs[0]), interpret(program, xs)[0])


def test_tuner_chooses_once_per_size_class(monkeypatch):
    """A group with a symbolic row length: one tuning per size class (the length a multiple of the
    vector width or not), none for a later size in a class already chosen; correct at every size."""
    from cases import DYNAMIC, dynamic_inputs
    types, body, kind = DYNAMIC["layer_norm_over_seq"]
    program = fused_program(types, body, kind)
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "1")
    ev = KernelEvaluator(program, "cuda")
    timings = []

    class Cycle(FakeRuntime):
        def median_seconds(self, fn):
            mx.eval(fn())
            timings.append(1)
            return [1.0, 2.0, 3.0][(len(timings) - 1) % 3]   # kernel, MLX eager, mx.compile
    ev.rt = Cycle(ev, 1.0, 2.0, 3.0, n_kernels=1)
    rng = np.random.default_rng(0)
    for S in (16, 7, 32, 9, 4):
        env = {"B": 3, "S": S}
        xs = dynamic_inputs("layer_norm_over_seq", types, env, rng)
        outs = ev.run([mx.array(x) for x in xs])
        assert_close(np.array(outs[0]), interpret(program, xs)[0], msg=f"S={S}")
    op = fused_op(ev.program)
    assert sorted(k[1] for k in ev.choice) == [(("vec", False),), (("vec", True),)]
    assert all(k[0] is op and isinstance(v, codegen.KernelPlan) for k, v in ev.choice.items())
    assert len(timings) == 2 * 3 and len(ev.decisions) == 2 and "{'vec': False}" in " ".join(ev.decisions)
