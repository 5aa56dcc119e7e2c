"""Per-call host work of symbolic kernels memoized per size binding: a launch at a binding already
seen reuses its grid, threadgroup, output shapes and `sizes` array (`runtime.launch_params`), and a
call at input shapes already seen reuses the evaluator's binding (the size names' values, each
group's choice key, each op's concrete attributes and types). A call at a new size still binds
afresh and is correct."""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

from cases import DYNAMIC, dynamic_inputs, fused_op, fused_program  # noqa: E402
from xcomp.backends.kernels import codegen, runtime  # noqa: E402


def _spec(name="masked_softmax", dialect="cuda", env=None):
    in_types, body, kind = DYNAMIC[name]
    op = fused_op(fused_program(in_types, body, kind))
    kplan = codegen.plan(op, dialect, size_class=codegen.size_class(op, dialect, env))
    return in_types, kplan


def test_launch_reuses_the_binding(monkeypatch):
    env1, env2 = {"B": 2, "S": 12}, {"B": 1, "S": 12}
    in_types, kplan = _spec(env=env1)
    spec = kplan.spec
    assert spec.sizes, "a symbolic group's kernel reads run-time sizes"
    binds = []
    real_bind = codegen.KernelSpec.bind
    monkeypatch.setattr(codegen.KernelSpec, "bind", lambda self, env: binds.append(dict(env)) or real_bind(self, env))
    calls = []

    def fake_kernel(spec):
        def k(inputs, grid, threadgroup, output_shapes, output_dtypes):
            calls.append((inputs[-1], grid, threadgroup, output_shapes))
            return [mx.zeros(s, dtype=d) for s, d in zip(output_shapes, output_dtypes)]
        return k
    monkeypatch.setattr(runtime, "kernel", fake_kernel)
    rng = np.random.default_rng(0)

    def launch(env):
        xs = dynamic_inputs("masked_softmax", in_types, env, rng)
        return runtime.launch(spec, [mx.array(xs[i]) for i in kplan.input_map], env)

    outs1 = launch(env1)
    outs2 = launch(dict(env1))   # an equal binding (another dict): memoized
    assert len(binds) == 1
    assert calls[0][0] is calls[1][0]   # the same `sizes` array passed again
    assert calls[0][1:] == calls[1][1:]
    assert [o.shape for o in outs1] == [o.shape for o in outs2]
    outs3 = launch(env2)   # a new binding: bound afresh, at its own sizes
    assert len(binds) == 2
    want = real_bind(spec, env2)
    sizes, grid, threadgroup, _ = calls[2]
    assert list(np.array(sizes)) == want.sizes and sizes.dtype == mx.int64
    assert (grid, threadgroup) == (want.grid, want.threadgroup)
    assert [tuple(o.shape) for o in outs3] == [tuple(s) for s in want.output_shapes]
    assert calls[2][0] is not calls[0][0] and list(np.array(calls[0][0])) == real_bind(spec, env1).sizes
    for s in range(13, 13 + runtime.LAUNCH_MEMO + 4):   # the memo stays bounded
        runtime.launch_params(spec, {"B": 1, "S": s})
    assert len(spec.launches) == runtime.LAUNCH_MEMO


def test_static_launch_is_memoized_too():
    in_types, body, kind = DYNAMIC["masked_softmax"]
    static = [t.with_shape(tuple(2 if d == "B" else 8 if d == "S" else d for d in t.shape)) for t in in_types]
    spec = codegen.plan(fused_op(fused_program(static, body, kind)), "cuda").spec
    assert not spec.sizes
    first = runtime.launch_params(spec)
    assert runtime.launch_params(spec) is first and first[-1] is None


torch = pytest.importorskip("torch")


@pytest.mark.slow   # the emulated GPT block at six shapes (~20 s); the launch memo itself is tested above
@pytest.mark.skipif(__import__("emulate").CXX is None, reason="needs g++ to compile the emulated kernels")
def test_evaluator_binds_once_per_shape(monkeypatch, tmp_path):
    """A GPT block on `cuda` (kernels emulated): calls at shapes already seen reuse the binding;
    every call, at a seen size or a new one, agrees with torch eager."""
    import xcomp
    from emulated_runtime import EmulatedRuntime
    from helpers import assert_close
    from xcomp import backends
    from xcomp.zoo import gpt_block
    monkeypatch.setattr(backends, "require_runnable", lambda t: None)
    monkeypatch.setenv("XCOMP_KERNEL_TUNE", "0")
    monkeypatch.setenv("XCOMP_MX_COMPILE", "0")
    rt = EmulatedRuntime(str(tmp_path))
    monkeypatch.setattr(runtime, "run_plan", rt.run_plan)
    model, _ = gpt_block(batch=2, seq=8, dim=32, heads=4)
    compiled = xcomp.compile(model, target="cuda", dynamic={"x": {0: "batch", 1: "seq"}})
    shapes = [(1, 5), (1, 5), (2, 9), (1, 5), (2, 9), (2, 6)]
    binds = []
    for b, t in shapes:
        x = torch.randn(b, t, 32)
        with torch.no_grad():
            assert_close(compiled(x), model(x), scale=4.0, msg=f"shape {(b, t)}")
        binds.append(compiled.target.evaluator.binds)
    assert binds == [1, 1, 2, 2, 2, 3], binds   # one binding per distinct input shape
    ev = compiled.target.evaluator
    fused = [op for op in ev.program.walk() if op.name == "xc.fused"]
    at = next(iter(ev._bindings.values()))
    assert set(at.keys) == set(fused) and at.concrete   # choice keys and concrete ops memoized
    assert compiled.stats.builds == 1
