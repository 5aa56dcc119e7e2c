"""`xcomp viz` (Graphviz pictures of programs), `xcomp bench` (interleaved timing), `xcomp explain`,
`xcomp ir`, `targets --json`."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import xcomp
from xcomp.cli import main
from xcomp.ir.builder import build_program
from xcomp.ir.types import DType, TensorType
from xcomp.passes.fuse import fusion_groups
from xcomp.viz import compare_dot, escape, render, to_dot

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def _mlp_programs():
    from xcomp.zoo import MODELS
    model, inputs = MODELS["mlp"]()
    program = xcomp.capture(model, inputs)
    optimized, _ = xcomp.optimize(program, target="reference")
    return program, optimized


def test_dot_draws_groups_as_clusters_and_inputs_weights_outputs_distinctly():
    program, optimized = _mlp_programs()
    dot = to_dot(optimized)
    assert dot.count("subgraph cluster_") == len(fusion_groups(optimized)) > 0
    assert 'label="fused matmul_epilogue' in dot
    assert dot.count("shape=invhouse") == 1          # the one input
    assert dot.count("shape=house") == 1             # the one output
    weights = [op for op in optimized.walk() if op.name == "xc.weight"]
    assert dot.count('style="filled,rounded"') == len(weights) > 0
    assert re.search(r'label="weight fc1\.weight[^"]*\\n64x256 f32"', dot)
    nodes = set(re.findall(r"^\s*(\w+) \[label=", dot, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", dot, re.M)
    assert edges and all(a in nodes and b in nodes for a, b in edges)  # every edge joins drawn nodes


def test_compare_puts_both_programs_side_by_side():
    program, optimized = _mlp_programs()
    dot = compare_dot(program, optimized, "captured", "optimized")
    assert "subgraph cluster_b_program" in dot and "subgraph cluster_a_program" in dot
    ids = set(re.findall(r"^\s*(\w+) \[label=", dot, re.M))
    assert {i[:2] for i in ids} == {"b_", "a_"}


def test_labels_from_models_are_escaped():
    assert escape('w"eird\\name\n') == 'w\\"eird\\\\name\\n'
    p = build_program([TensorType((2,), DType.F32)], lambda b, x: [b.op("neg", x)])
    p.main.arg_names[0] = 'x"]; evil [label="'
    dot = to_dot(p)
    assert 'x\\"]; evil [label=\\"' in dot and "\nevil" not in dot


@needs_dot
def test_cli_viz_writes_dot_and_a_real_svg(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    assert main(["viz", "zoo:mlp", "-o", str(out), "--target", "reference", "--compare"]) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "fused matmul_epilogue" in svg and "captured: 7 ops" in svg
    assert (tmp_path / "graph.dot").read_text().startswith("digraph xcomp {")
    assert "wrote" in capsys.readouterr().out


@needs_dot
def test_png_through_dot(tmp_path):
    program, optimized = _mlp_programs()
    written = render(to_dot(optimized), str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(written) == 2


def test_viz_without_dot_still_writes_dot_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["viz", "zoo:mlp", "-o", str(tmp_path / "g.svg"), "--target", "reference"]) == 2
    assert "Graphviz's `dot` is not installed" in capsys.readouterr().err
    assert (tmp_path / "g.dot").exists()
    with pytest.raises(xcomp.XcompError, match="cannot write"):
        render("digraph {}", str(tmp_path / "g.jpg"))


def test_viz_of_saved_programs_and_ir_files(tmp_path):
    program, _ = _mlp_programs()
    xcomp.save(program, str(tmp_path / "saved"))
    assert main(["viz", str(tmp_path / "saved"), "-o", str(tmp_path / "s.dot"), "--target", "reference"]) == 0
    assert "fused matmul_epilogue" in (tmp_path / "s.dot").read_text()
    path = tmp_path / "p.mlir"
    path.write_text(str(program))  # no weights beside it: drawn as written
    assert main(["viz", str(path), "-o", str(tmp_path / "p.dot"), "--target", "reference"]) == 0
    text = (tmp_path / "p.dot").read_text()
    assert "layer_norm" in text and "not optimized" in text


def test_targets_json(capsys):
    assert main(["targets", "--json"]) == 0
    listed = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert listed["reference"]["runs_here"] is True and listed["reference"]["reason"] is None
    assert set(listed) == set(xcomp.backends.TARGETS)


def test_bench_json_medians_ratios_and_errors(capsys):
    assert main(["bench", "zoo:mlp", "--targets", "reference", "mlx", "--rounds", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    entries = {e["name"]: e for e in report["entries"]}
    assert list(entries) == ["eager", "reference", "mlx"]
    for e in entries.values():
        assert len(e["times_s"]) == 3 and e["median_s"] == float(np.median(e["times_s"]))
        assert e["vs_eager"] == pytest.approx(entries["eager"]["median_s"] / e["median_s"])
        assert 0 < e["vs_best"] <= 1.0
        assert e["max_abs_error"] is not None and e["max_abs_error"] < 1e-4
    assert max(e["vs_best"] for e in entries.values()) == 1.0
    assert "torch" in report["machine"] and "CPUs" in report["machine"]["machine"]


def test_bench_table_and_unknown_peer(capsys):
    assert main(["bench", "zoo:mlp", "--targets", "reference", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "median ms" in out and "vs eager" in out and "reference" in out
    assert main(["bench", "zoo:mlp", "--targets", "reference", "--against", "jax"]) == 2
    assert "unknown peer" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_against_torch_compile(capsys):
    assert main(["bench", "zoo:mlp", "--targets", "reference", "--against", "eager", "torch.compile",
                 "--rounds", "2", "--json"]) == 0
    names = [e["name"] for e in json.loads(capsys.readouterr().out)["entries"]]
    assert names == ["eager", "torch.compile", "reference"]


def test_cli_explain_text_and_json(capsys):
    assert main(["explain", "zoo:mlp", "--target", "reference"]) == 0
    first = capsys.readouterr().out.splitlines()[0]   # (an earlier test may have left the capture in the cache)
    assert re.fullmatch(r"captured with torch\.export( \(from the capture cache: .*\))?: 7 ops.*", first), first
    assert main(["explain", "zoo:mlp", "--target", "reference", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ops_before"] == 7 and data["target"] == "reference" and "text" not in data
    assert [p["name"] for p in data["passes"]] == data["pipeline"] and data["guards"] == []


def test_cli_ir_captured_optimized_and_saved(tmp_path, capsys):
    assert main(["ir", "zoo:mlp"]) == 0
    captured = xcomp.parse(capsys.readouterr().out)
    assert captured.op_count() == 7
    out = tmp_path / "opt.mlir"
    assert main(["ir", "zoo:mlp", "--target", "reference", "-o", str(out)]) == 0
    assert "xc.fused" in out.read_text()
    assert main(["explain", str(out)]) == 2  # an IR file without its weights: one clear line
    assert "has no values for weight(s)" in capsys.readouterr().err


def test_other_errors_are_one_line_and_exit_1_unless_debug(tmp_path, capsys):
    assert main(["viz", "no_such_module:factory", "-o", str(tmp_path / "g.dot")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ModuleNotFoundError" in err and "--debug" in err
    with pytest.raises(ModuleNotFoundError):
        main(["viz", "no_such_module:factory", "-o", str(tmp_path / "g.dot"), "--debug"])
