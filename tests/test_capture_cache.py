"""The capture cache (xcomp.frontends.capture_cache): a hit skips torch.export and reads weights from
the live module; what changes a capture (attributes, closures, input specs, source files) misses;
what cannot be described (a tensor or object attribute) is not cached; corrupt entries are rebuilt;
XCOMP_CACHE=0 and cache=False keep nothing.

Every test runs on a fresh XCOMP_CACHE_DIR and the `reference` target (no C++ build), comparing with
eager torch.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import xcomp  # noqa: E402
from xcomp.frontends import capture_cache, torch_export  # noqa: E402
from xcomp.frontends.capture_guards import Unhashable, describe  # noqa: E402


class Net(torch.nn.Module):
    """A layer norm (eps an attribute of a torch class), a linear and a flag of the user's class."""

    def __init__(self, eps: float = 1e-5, gelu: bool = True, dim: int = 8):
        super().__init__()
        self.norm = torch.nn.LayerNorm(dim, eps=eps)
        self.fc = torch.nn.Linear(dim, dim)
        self.gelu = gelu

    def forward(self, x):
        y = self.fc(self.norm(x))
        return torch.nn.functional.gelu(y) if self.gelu else torch.relu(y)


def x(*shape, dtype=torch.float32):
    return torch.randn(*shape if shape else (2, 8)).to(dtype)


@pytest.fixture
def exports(monkeypatch):
    """The torch.export captures taken (the frontend's `capture_module` calls)."""
    calls = []
    real = torch_export.capture_module
    monkeypatch.setattr(torch_export, "capture_module", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def run(model, *args, **options):
    """(output, the Captured the compiled function used)."""
    f = xcomp.compile(model, target="reference", **options)
    out = f(*args)
    return out, f.cache[f._last_key].captured


def entries(cache_dir) -> int:
    d = cache_dir / capture_cache.NAMESPACE
    return sum(1 for e in d.iterdir() if not e.name.startswith(".")) if d.is_dir() else 0


def test_hit_skips_export_and_matches_eager(cache_dir, exports):
    torch.manual_seed(0)
    m, a = Net().eval(), x()
    y0, cap0 = run(m, a)
    assert len(exports) == 1 and not cap0.cached and entries(cache_dir) == 1
    y1, cap1 = run(m, a)
    assert len(exports) == 1 and cap1.cached.startswith(str(cache_dir))
    assert cap1.source == cap0.source == "torch.export"
    torch.testing.assert_close(y1, m(a), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y1, y0)
    assert str(cap1.program) == str(cap0.program)
    assert cap1.program.main.arg_names == cap0.program.main.arg_names


def test_changed_weights_give_the_new_answer(cache_dir, exports):
    torch.manual_seed(0)
    m, a = Net().eval(), x()
    run(m, a)
    with torch.no_grad():
        m.fc.weight.mul_(-2.0)
        m.norm.bias.add_(0.5)
    y, cap = run(m, a)
    assert cap.cached and len(exports) == 1
    torch.testing.assert_close(y, m(a), rtol=1e-5, atol=1e-5)
    other = Net().eval()   # another instance, other weights: the same capture, its own weights
    y, cap = run(other, a)
    assert cap.cached and len(exports) == 1
    torch.testing.assert_close(y, other(a), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change", ["eps", "flag", "shape", "dtype", "training"])
def test_what_changes_the_capture_misses(cache_dir, exports, change):
    torch.manual_seed(0)
    m, a = Net().eval(), x()
    run(m, a)
    if change == "eps":
        m = Net(eps=1e-2).eval()
    elif change == "flag":
        m = Net(gelu=False).eval()
    elif change == "shape":
        a = x(3, 8)
    elif change == "dtype":
        a, m = x(dtype=torch.float64), m.double()
    else:
        m.train()
    y, cap = run(m, a)
    assert not cap.cached and len(exports) == 2 and entries(cache_dir) == 2
    with torch.no_grad():
        torch.testing.assert_close(y, m.eval()(a), rtol=1e-5, atol=1e-5)


def test_a_closure_value_is_part_of_the_key(cache_dir, exports):
    """zoo.gpt_block's class reads `heads` from its factory's closure: same weights, other program."""
    from xcomp import zoo
    m4, (a,) = zoo.gpt_block(batch=1, seq=4, dim=8, heads=4)
    m2, _ = zoo.gpt_block(batch=1, seq=4, dim=8, heads=2)
    m2.load_state_dict(m4.state_dict())
    run(m4, a)
    y, cap = run(m2, a)
    assert not cap.cached and len(exports) == 2
    with torch.no_grad():
        torch.testing.assert_close(y, m2(a), rtol=1e-5, atol=1e-5)


def test_a_changed_source_file_misses(cache_dir, exports, tmp_path, monkeypatch):
    src = tmp_path / "capture_user_model.py"
    src.write_text(textwrap.dedent("""
        import torch
        class Scale(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 4)
            def forward(self, x):
                return self.fc(x) * 2.0
    """))
    spec = importlib.util.spec_from_file_location("capture_user_model", src)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "capture_user_model", mod)
    spec.loader.exec_module(mod)
    m, a = mod.Scale().eval(), x(2, 4)
    run(m, a)
    assert run(m, a)[1].cached
    src.write_text(src.read_text() + "\n# edited: the file's sha256 changes\n")
    _, cap = run(m, a)
    assert not cap.cached and len(exports) == 2


class Holder(torch.nn.Module):
    def __init__(self, extra):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.extra = extra

    def forward(self, x):
        return self.fc(x) + (self.extra if isinstance(self.extra, torch.Tensor) else 0.0)


@pytest.mark.parametrize("extra", [object(), {"k": object()}, torch.ones(4)], ids=["object", "dict", "tensor"])
def test_an_attribute_the_key_cannot_hold_is_not_cached(cache_dir, exports, extra):
    m, a = Holder(extra).eval(), x(2, 4)
    with pytest.raises(Unhashable):
        describe(m, [a], None)
    run(m, a)
    y, cap = run(m, a)
    assert not cap.cached and len(exports) == 2 and entries(cache_dir) == 0
    with torch.no_grad():
        torch.testing.assert_close(y, m(a), rtol=1e-5, atol=1e-5)


def test_hooks_and_code_without_a_file_are_not_cached(cache_dir):
    m = Net().eval()
    handle = m.fc.register_forward_hook(lambda mod, inp, out: out * 2)
    with pytest.raises(Unhashable, match="hooks"):
        describe(m, [x()], None)
    handle.remove()
    describe(m, [x()], None)
    scope: dict = {}
    exec("def f(a):\n    return a * 2\n", scope)
    with pytest.raises(Unhashable, match="source file"):
        describe(scope["f"], [x()], None)


def test_a_plain_function_reads_its_globals(cache_dir, exports):
    y, cap = run(scaled, x())
    assert not cap.cached
    global FACTOR
    FACTOR, old = 3.0, FACTOR
    try:
        a = x()
        y, cap = run(scaled, a)
        assert not cap.cached and len(exports) == 2
        torch.testing.assert_close(y, scaled(a))
    finally:
        FACTOR = old


FACTOR = 2.0


def scaled(a):
    return torch.tanh(a) * FACTOR


def test_a_corrupt_entry_is_captured_again(cache_dir, exports):
    m, a = Net().eval(), x()
    run(m, a)
    (entry,) = [e for e in (cache_dir / capture_cache.NAMESPACE).iterdir() if not e.name.startswith(".")]
    with open(entry / capture_cache.PROGRAM, "a") as f:
        f.write("garbage")
    y, cap = run(m, a)
    assert not cap.cached and len(exports) == 2
    torch.testing.assert_close(y, m(a), rtol=1e-5, atol=1e-5)
    assert run(m, a)[1].cached and len(exports) == 2   # rebuilt


@pytest.mark.parametrize("off", ["env", "option"])
def test_cache_off_keeps_no_capture(cache_dir, exports, monkeypatch, off):
    m, a = Net().eval(), x()
    if off == "env":
        monkeypatch.setenv("XCOMP_CACHE", "0")
    options = {"cache": False} if off == "option" else {}
    run(m, a, **options)
    _, cap = run(m, a, **options)
    assert not cap.cached and len(exports) == 2 and entries(cache_dir) == 0


@pytest.mark.slow
def test_a_warm_process_imports_no_dynamo(cache_dir):
    code = textwrap.dedent("""
        import json, sys, torch, xcomp
        from xcomp import zoo
        m, xs = zoo.gpt_block(batch=1, seq=8, dim=16, heads=2)
        f = xcomp.compile(m, target="reference")
        y = f(*xs)
        print(json.dumps({"dynamo": "torch._dynamo" in sys.modules, "cached": bool(f.cache[f._last_key].captured.cached),
                          "err": float((y - m(*xs)).abs().max())}))
    """)
    import json
    env = {**os.environ, "XCOMP_CACHE_DIR": str(cache_dir)}
    outs = [json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1]) for _ in range(2)]
    assert outs[0]["dynamo"] and not outs[0]["cached"], outs
    assert not outs[1]["dynamo"] and outs[1]["cached"] and outs[1]["err"] < 1e-4, outs


class Nested(torch.nn.Module):
    """Nested outputs and a constant argument (the module is exported bound: weights under `inner.`)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, a, scale: float):
        y = self.fc(a) * scale
        return {"y": y, "pair": (y + 1.0, torch.tanh(y))}


def test_nested_outputs_and_constant_arguments_hit(cache_dir, exports):
    m, a = Nested().eval(), x(2, 4)
    run(m, a, 3.0)
    y, cap = run(m, a, 3.0)
    assert cap.cached and len(exports) == 1
    want = m(a, 3.0)
    assert set(y) == {"y", "pair"} and isinstance(y["pair"], tuple)
    torch.testing.assert_close(y["y"], want["y"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y["pair"][1], want["pair"][1], rtol=1e-5, atol=1e-5)
    _, cap = run(m, a, 2.0)   # another constant: another capture
    assert not cap.cached and len(exports) == 2
    assert not any(s.training for s in m.modules())   # capturing the bound module left it in eval mode
