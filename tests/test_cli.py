"""The `xcomp` command: demo table, show, export, targets, errors."""
import os

import numpy as np

import xcomp
from xcomp.cli import main
from xcomp.demo import format_table, run


def test_targets_lists_reference(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "reference  runs here" in out


def test_show_parses_and_prints(tmp_path, capsys):
    text = ('module {\n  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {\n'
            '    %0 = "xc.neg"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>\n'
            '    %1 = "xc.neg"(%0) : (tensor<4xf32>) -> tensor<4xf32>\n'
            '    func.return %1 : tensor<4xf32>\n  }\n}\n')
    path = tmp_path / "p.mlir"
    path.write_text(text)
    assert main(["show", str(path)]) == 0
    assert capsys.readouterr().out == text


def test_show_reports_parse_errors_with_position(tmp_path, capsys):
    path = tmp_path / "bad.mlir"
    path.write_text('module {\n  func.func @main(%arg0: tensor<4xf32>) -> (tensor<4xf32>) {\n'
                    '    %0 = "xc.nope"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>\n')
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:10: unknown op 'xc.nope'" in err


def test_export_writes_a_loadable_program(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert main(["export", "zoo:mlp", "--target", "reference", "-o", str(out)]) == 0
    program = xcomp.load(str(out))
    assert sorted(os.listdir(out)) == ["program.mlir", "weights.safetensors"]
    from xcomp.zoo import mlp
    model, (x,) = mlp()
    got = xcomp.interpret(program, [x.numpy()])[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_demo_rows_are_accurate():
    rows = run("mlp", repeat=2)
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["target"] for r in ok} >= {"reference", "mlx"}
    for r in ok:
        assert r["max_error"] < 1e-4, r
        assert r["eager_ms"] > 0 and r["compiled_ms"] > 0
    table = format_table(rows)
    assert "reference" in table and "max |err| vs eager" in table and "vs eager" in table
    ref = next(r for r in ok if r["target"] == "reference")
    assert f"{ref['eager_ms'] / ref['compiled_ms']:.2f}x" in table   # the speedup column


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    import json
    from xcomp.cache import Cache
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path))
    cache = Cache("cpp")
    cache.get("k" * 64, lambda d: open(os.path.join(d, "lib.so"), "wb").write(b"x" * 100))
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    cpp = next(n for n in info["namespaces"] if n["namespace"] == "cpp")
    assert info["root"] == str(tmp_path) and cpp["entries"] == 1 and cpp["bytes"] >= 100
    assert main(["cache", "clear"]) == 0
    assert "cleared 1 entries" in capsys.readouterr().out
    assert cache.info().entries == 0


def test_conformance_verb_passes_its_options_through(capsys):
    assert main(["conformance", "--ops", "sin", "--limit-samples", "1", "--targets", "reference"]) == 0
    assert "reference: 1 ops passing" in capsys.readouterr().out
