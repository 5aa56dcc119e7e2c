"""`xcomp convert`: sources (.pt, .mlxfn, module:attr), --check, and the documented exit codes with
one clear error line (no traceback) for bad inputs."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlx.core")

from xcomp.cli import main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(argv, capsys):
    """main() in-process: (exit code, stdout, stderr)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    try:
        code = main(argv)
    except SystemExit as e:   # argparse usage errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_module_attr_to_mlx_source_with_check(tmp_path, capsys):
    code, out, err = _run(["convert", "zoo:mlp", "--to", "mlx-source", "-o", str(tmp_path / "m"), "--check"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("captured zoo:mlp (MLP) with torch.export: 7 ops, 6 weights")
    assert lines[1].startswith("optimized for mlx-source:") and "fused groups" in lines[1]
    assert lines[2] == f"wrote mlx-source to {tmp_path / 'm'}"
    assert lines[3].startswith("check: 1 output(s) match the source")
    assert os.path.exists(tmp_path / "m" / "model.py") and err == ""   # no progress bar off a terminal


def test_pt_file_with_inputs_and_host_scalar(tmp_path, capsys):
    sys.path.insert(0, os.path.join(HERE, "..", "torchscript"))
    import ts_cases as C
    pt = str(tmp_path / "newton.pt")
    torch.jit.save(torch.jit.script(C.newton_sqrt), pt)
    # a positive input so Newton's iteration is defined: the check draws normal values, so use abs
    code, out, err = _run(["convert", pt, "--to", "mlx-source", "-o", str(tmp_path / "n"),
                           "--input", "a:5:f32", "--input", "tol=0.001", "--input", "cap=3"], capsys)
    assert code == 0, err
    text = open(tmp_path / "n" / "model.py").read()
    assert "TorchScript file newton.pt with inputs a:5:f32, tol=0.001, cap=3" in text
    assert "def __call__(self, a, tol=0.001, cap=3):" in text


def test_pt_check_runs_the_artifact(tmp_path, capsys):
    sys.path.insert(0, os.path.join(HERE, "..", "torchscript"))
    import ts_cases as C
    pt = str(tmp_path / "layers.pt")
    torch.jit.save(torch.jit.script(C.seeded(C.Layers)), pt)
    code, out, err = _run(["convert", pt, "--to", "mlx-source", "-o", str(tmp_path / "l"),
                           "--input", "x:2x6:f32", "--check"], capsys)
    assert code == 0, err
    assert "check: 4 output(s) match the source" in out


def test_ir_target_writes_program_text(tmp_path, capsys):
    code, out, err = _run(["convert", "zoo:cnn", "--to", "ir", "-o", str(tmp_path / "ir")], capsys)
    assert code == 0, err
    assert (tmp_path / "ir" / "program.mlir").read_text().startswith("func.func @main") or \
        "func.func @main" in (tmp_path / "ir" / "program.mlir").read_text()


BAD_INPUTS = [
    ("x:2xa:f32", "shape '2xa'"),
    ("x:2x3:f99", "unknown dtype 'f99'"),
    ("x:2x3", "expected NAME:SHAPE:DTYPE"),
    ("1x:2:f32", "is not a name"),
    ("steps=four", "host scalars are int, float or bool"),
]


@pytest.mark.parametrize("spec,message", BAD_INPUTS)
def test_bad_input_spec_is_a_usage_error(spec, message, tmp_path, capsys):
    code, out, err = _run(["convert", "zoo:mlp", "--to", "ir", "-o", str(tmp_path / "o"), "--input", spec], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def _truncated_pt(tmp_path) -> str:
    good = str(tmp_path / "good.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), good)
    data = open(good, "rb").read()
    bad = str(tmp_path / "truncated.pt")
    open(bad, "wb").write(data[: len(data) // 2])
    return bad


def _zip_without_code(tmp_path) -> str:
    path = str(tmp_path / "notscript.pt")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"not a pickle we would load")
    return path


@pytest.mark.parametrize("make", ["garbage_pt", "truncated_pt", "zip_without_code", "garbage_mlxfn"])
def test_malformed_source_file_exit_4(make, tmp_path, capsys):
    if make == "garbage_pt":
        path = str(tmp_path / "g.pt")
        open(path, "wb").write(b"\x00garbage" * 10)
    elif make == "truncated_pt":
        path = _truncated_pt(tmp_path)
    elif make == "zip_without_code":
        path = _zip_without_code(tmp_path)
    else:
        path = str(tmp_path / "g.mlxfn")
        open(path, "wb").write(b"nonsense")
    code, out, err = _run(["convert", path, "--to", "mlx-source", "-o", str(tmp_path / "o"),
                           "--input", "x:2x2:f32"], capsys)
    assert code == 4, err
    assert err.count("\n") == 1 and os.path.basename(path) in err and "Traceback" not in err


@pytest.mark.parametrize("source,message", [
    ("missing.pt", "no such file"),
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    ("port_models:nothing", "has no attribute nothing"),
    ("port_models:not_a_model", "not a module"),
    ("just-a-word", "expected a .pt file"),
])
def test_bad_source_is_a_usage_error(source, message, tmp_path, capsys):
    code, out, err = _run(["convert", source, "--to", "ir", "-o", str(tmp_path / "o"), "--input", "x:2:f32"], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_unsupported_ops_exit_3_listing_each_with_its_line(tmp_path, capsys):
    code, out, err = _run(["convert", "port_models:zeta", "--to", "mlx-source", "-o", str(tmp_path / "o")], capsys)
    assert code == 3
    assert "aten.special_zeta" in err and "port_models.py:" in err and "Traceback" not in err


def test_unknown_target_and_missing_inputs(tmp_path, capsys):
    code, _, err = _run(["convert", "zoo:mlp", "--to", "onnx", "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "invalid choice" in err
    pt = str(tmp_path / "lin.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), pt)
    code, _, err = _run(["convert", pt, "--to", "ir", "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "--input" in err


def test_debug_prints_the_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "xcomp", "convert", "missing.pt", "--to", "ir", "-o", str(tmp_path),
                        "--input", "x:2:f32", "--debug"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_mlxfn_to_mlx_source_with_check(tmp_path, capsys):
    import mlx.core as mx
    import mlx.nn as nn
    mx.random.seed(0)
    lin = nn.Linear(4, 3)
    mx.eval(lin.parameters())
    path = str(tmp_path / "f.mlxfn")
    mx.export_function(path, lambda x: nn.gelu(lin(x)) * 2, mx.zeros((2, 4)))
    code, out, err = _run(["convert", path, "--to", "mlx-source", "-o", str(tmp_path / "f"),
                           "--input", "x:2x4:f32", "--check"], capsys)
    assert code == 0, err
    assert out.startswith("captured MLX function file f.mlxfn") and "check: 1 output(s) match" in out
    text = open(tmp_path / "f" / "model.py").read()
    assert "def __call__(self, x):" in text
    assert max(len(line) for line in text.splitlines()) <= 160
