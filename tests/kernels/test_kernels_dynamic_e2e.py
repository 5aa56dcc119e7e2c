"""A GPT-style block compiled once for `cuda`/`metal` with a symbolic batch and sequence length,
run end to end without a GPU: MLX (CPU) runs the matmuls and views, every generated kernel runs in
the C++ emulation (emulated_runtime.py). Called at many lengths, it is correct against torch eager
every time, with one capture, one build and each kernel source compiled once."""
from __future__ import annotations

import pytest

mx = pytest.importorskip("mlx.core")
torch = pytest.importorskip("torch")

from emulate import CXX  # noqa: E402
from emulated_runtime import EmulatedRuntime  # noqa: E402
from helpers import assert_close  # noqa: E402

pytestmark = pytest.mark.skipif(CXX is None, reason="needs g++ to compile the emulated kernels")

LENGTHS_FAST = [1, 2, 7, 16, 33]
LENGTHS = [1, 2, 7, 16, 33, 100, 257, 512]     # the 8 lengths, 1 to 512


def _compile_emulated(monkeypatch, tmp_path, target):
    import xcomp
    from xcomp import backends
    from xcomp.backends.kernels import runtime
    from xcomp.zoo import gpt_block
    monkeypatch.setattr(backends, "require_runnable", lambda t: None)   # no GPU: kernels emulated
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "0")
    monkeypatch.setenv("XCOMP_MX_COMPILE", "0")   # (emulated launches cannot be traced by mx.compile)
    rt = EmulatedRuntime(str(tmp_path))
    monkeypatch.setattr(runtime, "run_plan", rt.run_plan)
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    return model, xcomp.compile(model, target=target, dynamic={"x": {0: "batch", 1: "seq"}}), rt


def _run(model, compiled, rt, lengths):
    kernels = []
    for i, t in enumerate(lengths):
        x = torch.randn(1 + i % 3, t, 32)
        with torch.no_grad():
            want = model(x)
        assert_close(compiled(x), want, scale=4.0, msg=f"length {t}")
        kernels.append(rt.builds)
    return kernels


def _check(model, compiled, rt, lengths):
    builds = _run(model, compiled, rt, lengths)
    assert (compiled.stats.captures, compiled.stats.builds, compiled.stats.specializations) == (1, 1, 0)
    from xcomp.backends.kernels.codegen import KernelPlan
    ev = compiled.target.evaluator
    groups = {k[0] if isinstance(k, tuple) else k for k in ev.choice}
    # one source per group and size class (at most two classes a group: rows whose symbolic length
    # divides by 4 or not; elementwise kernels under or over 2^20 elements), each compiled once
    chosen = {pl.spec.name for pl in ev.choice.values() if isinstance(pl, KernelPlan)}
    assert rt.builds == len(rt.exes) == len(chosen), (builds, sorted(chosen))
    assert len(ev.choice) <= 2 * len(groups) and rt.builds <= 2 * len(groups), (builds, len(groups))
    assert builds[3] == builds[4], builds   # length 33 (a class already met) builds nothing
    assert rt.launches >= len(groups) * len(lengths)
    code = [ln for ln in compiled.source().splitlines() if not ln.lstrip().startswith("//")]
    assert any("sizes[" in ln for ln in code)
    assert not any("batch" in ln or "seq" in ln for ln in code)   # size names stay in the listing's comments


@pytest.mark.parametrize("target", ["cuda", pytest.param("metal", marks=pytest.mark.slow)])
def test_gpt_block_one_build_every_length(target, monkeypatch, tmp_path):
    _check(*_compile_emulated(monkeypatch, tmp_path, target), LENGTHS_FAST)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cuda", "metal"])
def test_gpt_block_eight_lengths_to_512(target, monkeypatch, tmp_path):
    _check(*_compile_emulated(monkeypatch, tmp_path, target), LENGTHS)


def test_gpt_block_under_mx_compile_every_length(monkeypatch):
    """The whole graph under mx.compile (traced again per shape over the same kernels): each
    launch bound to its call's sizes (grid and output shapes as the built-ins compute them); a call
    bringing a new size class runs eagerly first. Kernels are stood in by the group's MLX built-ins
    (mx.compile cannot trace the emulation)."""
    import xcomp
    from xcomp import backends
    from xcomp.backends.kernels import runtime
    from xcomp.backends.kernels.codegen import KernelPlan
    from xcomp.backends.mlx.target import MLXEvaluator
    from xcomp.zoo import gpt_block
    monkeypatch.setattr(backends, "require_runnable", lambda t: None)
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "0")
    monkeypatch.setenv("XCOMP_MX_COMPILE", "1")
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target="cuda", dynamic={"x": {0: "batch", 1: "seq"}})
    launches = []

    def run_plan(kplan, args, prelude=None, sizes=None):
        ev = compiled.target.evaluator
        op = next(k[0] if isinstance(k, tuple) else k for k, v in ev.choice.items() if v is kplan)
        outs = MLXEvaluator.op(ev, op, dict(zip(op.operands, args)))
        launch = kplan.spec.bind(sizes)
        assert [tuple(o.shape) for o in outs] == [tuple(s) for s in launch.output_shapes]
        launches.append((kplan.spec.name, launch.grid))
        return outs
    monkeypatch.setattr(runtime, "run_plan", run_plan)
    for i, t in enumerate([3, 8, 8, 5, 5, 16, 16, 7]):
        x = torch.randn(1 + i % 2, t, 32)
        with torch.no_grad():
            assert_close(compiled(x), model(x), scale=4.0, msg=f"length {t}")
    ev = compiled.target.evaluator
    assert all(isinstance(v, KernelPlan) for v in ev.choice.values())
    assert not any("mx.compile failed" in d for d in ev.decisions), ev.decisions
    assert (compiled.stats.captures, compiled.stats.builds) == (1, 1)
    assert len({name for name, _ in launches}) <= len(ev.choice) and len({g for _, g in launches}) > 3
