"""TorchScript control flow (issue 9's frontend) through the coreml target: a data-dependent `if`
becomes `mb.cond`, a `while` with a tensor condition `mb.while_loop`; checked on the saved package
in float32 and float16 against TorchScript eager, for inputs that take each branch."""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("coremltools")
pytest.importorskip("xcomp.frontends.torchscript")
os.environ.setdefault("TQDM_DISABLE", "1")

import xcomp  # noqa: E402
from xcomp.backends.coreml.evaluate import evaluate_package, load_package  # noqa: E402

from helpers import assert_close  # noqa: E402


class Branchy(torch.nn.Module):
    def forward(self, x, n: int):
        if bool(x.sum() > 0):
            y = torch.relu(x) * 2
        else:
            y = torch.tanh(x) - 1
        i = 0
        while i < n and bool(y.abs().sum() < 100):
            y = y * 1.5 + 0.1
            i += 1
        return y


class Accumulate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        h = x
        for _ in range(3):
            h = torch.sigmoid(self.fc(h)) + h
            if bool(h.mean() > 1.0):
                h = h / 2
        return h


def _mil_kinds(path) -> set[str]:
    program, _ = load_package(path)
    kinds: set[str] = set()

    def walk(block):
        for op in block.operations:
            kinds.add(op.op_type)
            for b in op.blocks:
                walk(b)
    walk(program.functions["main"])
    return kinds


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_scripted_branch_and_while(precision, tmp_path):
    model = torch.jit.script(Branchy().eval())
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    path = xcomp.export(model, (x, 4), target="coreml", path=str(tmp_path / "b.mlpackage"),
                        compute_precision=precision)
    assert {"cond", "while_loop"} <= _mil_kinds(path)
    for xx in (x.abs() + 0.1, -x.abs() - 0.1, x * 30):   # then-branch, else-branch, loop exits at once
        outs, _ = evaluate_package(path, [xx.numpy()])
        assert_close(outs[0], model(xx, 4).numpy(), dtype="float16" if precision == "float16" else None)


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_scripted_loop_with_inner_branch(precision, tmp_path):
    torch.manual_seed(0)
    model = torch.jit.script(Accumulate().eval())
    x = torch.randn(4, 8)
    path = xcomp.export(model, (x,), target="coreml", path=str(tmp_path / "a.mlpackage"),
                        compute_precision=precision)
    for xx in (x, x + 3):
        outs, _ = evaluate_package(path, [xx.numpy()])
        with torch.no_grad():
            assert_close(outs[0], model(xx).numpy(), dtype="float16" if precision == "float16" else None)
