"""mlx-source: the zoo models and the TorchScript cases converted to an MLX module that runs with
MLX alone (a fresh interpreter without xcomp, torch or numpy), compared with PyTorch eager."""
from __future__ import annotations

import ast
import os
import py_compile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlx.core")

import xcomp  # noqa: E402
from helpers import assert_close  # noqa: E402
from isolated import run_isolated  # noqa: E402

ZOO = ["mlp", "cnn", "encoder_layer", "gpt_block"]


def _leaves(out) -> list[np.ndarray]:
    if isinstance(out, (list, tuple)):
        return [x for o in out for x in _leaves(o)]
    return [out.detach().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)]


def _np_args(args) -> list:
    return [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_runs_with_mlx_alone(name, tmp_path):
    from xcomp.zoo import MODELS
    model, inputs = MODELS[name]()
    out = xcomp.export(f"zoo:{name}", target="mlx-source", path=str(tmp_path / name))
    got = run_isolated(out, _np_args(inputs))
    with torch.no_grad():
        want = _leaves(model(*inputs))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, scale=10, msg=name)


def test_emitted_module_is_deterministic_formatted_and_compiles(tmp_path):
    a = xcomp.export("zoo:gpt_block", target="mlx-source", path=str(tmp_path / "a"))
    b = xcomp.export("zoo:gpt_block", target="mlx-source", path=str(tmp_path / "b"))
    for f in ("model.py", "weights.safetensors"):
        assert open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read(), f
    py_compile.compile(os.path.join(a, "model.py"), doraise=True)
    text = open(os.path.join(a, "model.py")).read()
    head = text.splitlines()[:4]
    assert "zoo:gpt_block" in head[1] and "x 2x32x128:float32" in head[2]
    assert all(len(line) <= 160 and line == line.rstrip() for line in text.splitlines())
    assert "import xcomp" not in text and "torch" not in text.split("class Model")[0].split("\n", 6)[-1]
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert "Model" in names and "load" in names


def test_weights_load_with_mx_load_and_load_weights(tmp_path):
    import mlx.core as mx
    out = xcomp.export("zoo:mlp", target="mlx-source", path=str(tmp_path / "m"))
    from xcomp.backends.mlx_source.target import import_module
    module = import_module(out)
    saved = mx.load(os.path.join(out, "weights.safetensors"))
    model = module.Model()
    model.load_weights(list(saved.items()))
    assert {k for k, _ in __import__("mlx.utils").utils.tree_flatten(model.parameters())} == set(saved)


def _assert_safe(text: str) -> None:
    tree = ast.parse(text)   # valid Python
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "__import__" not in calls and "print" not in calls and "exec" not in calls
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "self"}
    assert all(a.isidentifier() and not a.startswith("_") for a in attrs)
    for line in text.splitlines():   # names from the model appear only in comments
        code = line.split("#", 1)[0]
        assert "__import__" not in code and "print(1)" not in code
        assert "import os" not in code or line == "import os"
    assert text.count("\nimport os\n") == 1


def test_hostile_names_give_valid_safe_source(tmp_path):
    """A traced module with a submodule `__import__('os')` and parameters `class`, `self`; torch.export
    itself cannot capture a parameter called `class`, TorchScript can."""
    from port_models import hostile
    model, inputs = hostile()
    traced = torch.jit.trace(model, inputs)
    out = xcomp.export(traced, inputs, target="mlx-source", path=str(tmp_path / "h"))
    _assert_safe(open(os.path.join(out, "model.py")).read())
    with torch.no_grad():
        want = model(*inputs).numpy()
    assert_close(run_isolated(out, _np_args(inputs))[0], want)


def test_hostile_weight_and_argument_names_in_a_program(tmp_path):
    """Names straight in the IR (weights, arguments), past any frontend's own cleaning."""
    from xcomp.ir.builder import build_program
    from xcomp.ir.types import DType, TensorType
    t = TensorType((2, 3), DType.F32)
    names = ["__import__('os').weight", "class", "x\nimport os", "mx", "_private", "9lives", "parameters"]
    weights = {n: np.full((2, 3), i + 1, np.float32) for i, n in enumerate(names)}

    def body(b, x, y):
        acc = b.op("add", x, y)
        for n in names:
            w = b.create("weight", (), {"name": n}, result_types=[t]).result
            acc = b.op("add", acc, w)
        return acc
    program = build_program([t, t], body, weights)
    program.main.arg_names[:] = ["def", "print(1)"]
    from xcomp.backends import get_target
    out = get_target("mlx-source").export(program, str(tmp_path / "p"))
    text = open(os.path.join(out, "model.py")).read()
    _assert_safe(text)
    assert "def __call__(self, def_, print_1):" in text
    x, y = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    assert_close(run_isolated(out, [x, y])[0], x + y + sum(weights.values()))


def _scripted(case):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torchscript"))
    import ts_cases as C
    table = {
        "sign_branch_pos": (C.sign_branch, lambda: (torch.rand(3, 4) + 0.1,)),
        "sign_branch_neg": (C.sign_branch, lambda: (-torch.rand(3, 4) - 0.1,)),
        "square_per_dim": (C.square_per_dim, lambda: (torch.randn(3, 4),)),
        "newton_sqrt": (C.newton_sqrt, lambda: (torch.rand(5) + 1, 1e-5, 20)),
        "greedy_decode": (C.greedy_decode, lambda: (torch.randn(1, 6), torch.randn(6, 6), 3, 5)),
        "layers": (lambda: C.seeded(C.Layers), lambda: (torch.randn(2, 6),)),
        "heads": (lambda: C.seeded(C.Heads), lambda: (torch.randn(2, 4, 8),)),
        "conv_bn_branch": (lambda: C.seeded(C.ConvBNBranch), lambda: (torch.randn(1, 3, 8, 8),)),
        "lstm": (lambda: C.seeded(C.Recurrent, "lstm"), lambda: (torch.randn(2, 3, 4),)),
        "encoder": (lambda: C.seeded(C.Encoder), lambda: (torch.randn(2, 5, 8),)),
    }
    make, args = table[case]
    torch.manual_seed(1)
    fn = make if not isinstance(make, type(lambda: 0)) or make.__name__ != "<lambda>" else make()
    return torch.jit.script(fn), args()


TS_CASES = ["sign_branch_pos", "sign_branch_neg", "square_per_dim", "newton_sqrt", "greedy_decode", "layers",
            "heads", "conv_bn_branch", "lstm", "encoder"]


@pytest.mark.parametrize("case", TS_CASES)
def test_torchscript_pt_to_mlx_source(case, tmp_path):
    scripted, args = _scripted(case)
    pt = str(tmp_path / f"{case}.pt")
    torch.jit.save(scripted, pt)
    out = xcomp.export(pt, args, target="mlx-source", path=str(tmp_path / case))
    text = open(os.path.join(out, "model.py")).read()
    assert f"TorchScript file {case}.pt" in text.splitlines()[1]
    got = run_isolated(out, _np_args(args))
    with torch.no_grad():
        want = _leaves(scripted(*args))
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want):
        assert_close(g.reshape(np.shape(w)), w, scale=10, msg=case)


def test_control_flow_is_python(tmp_path):
    scripted, args = _scripted("newton_sqrt")
    out = xcomp.export(scripted, args, target="mlx-source", path=str(tmp_path / "n"))
    text = open(os.path.join(out, "model.py")).read()
    assert "while go:" in text and "if as_bool(" in text
    assert "def __call__(self, a, tol=1e-05, cap=20):" in text


def test_export_needs_no_mlx(tmp_path):
    """mlx-source export where MLX cannot be imported writes the same bytes."""
    import subprocess
    import sys
    code = ("import sys, warnings; warnings.filterwarnings('ignore'); sys.modules['mlx'] = None; "
            "sys.modules['mlx.core'] = None; import xcomp; "
            f"xcomp.export('zoo:mlp', target='mlx-source', path={str(tmp_path / 'no')!r})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    xcomp.export("zoo:mlp", target="mlx-source", path=str(tmp_path / "yes"))
    for f in ("model.py", "weights.safetensors"):
        assert (tmp_path / "no" / f).read_bytes() == (tmp_path / "yes" / f).read_bytes(), f
