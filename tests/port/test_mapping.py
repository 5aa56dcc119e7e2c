"""The ATen-to-MLX mapping table (xcomp.mapping): docs/mapping.md is what the registries and the
committed conformance results generate, its statuses agree with a fresh conformance run, and
`xcomp ops` filters and formats it."""
from __future__ import annotations

import csv
import io
import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("expecttest")

from xcomp import mapping  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def table():
    return mapping.build()


def test_committed_mapping_is_current(table):
    with open(os.path.join(ROOT, "docs", "mapping.md")) as f:
        committed = f.read()
    fresh = mapping.render(table)
    if fresh != committed:
        diff = next(f"line {i + 1}:\n  committed: {a}\n  generated: {b}" for i, (a, b) in
                    enumerate(zip(committed.splitlines() + [""], fresh.splitlines() + [""])) if a != b)
        pytest.fail(f"docs/mapping.md is stale (run `xcomp ops > docs/mapping.md`); first difference at {diff}")


def test_every_aten_converter_is_a_taken_overload(table):
    from xcomp.frontends.aten import ATEN
    taken = {o.name for o in table.overloads() if o.via == "converter"}
    registry = {o.name for o in table.overloads()}
    assert {k for k in ATEN if k in registry} <= taken
    assert len(table.rows) > 1500 and len(taken) >= 400


def test_statuses_agree_with_a_conformance_run(table):
    """Rerun a few OpInfos now: every overload their captures convert has the status the mapping
    shows on each conformance target, and the op xcomp lacks is not taken."""
    from xcomp import conformance as C
    db = {C.full_name(o): o for o in C.load_op_db()}
    by_name = {o.name: o for o in table.overloads()}
    with C.cached_cia_ops():
        results = [C.check_opinfo(db[n], table.verified, 2)
                   for n in ("add", "softmax", "nn.functional.gelu", "nn.functional.layer_norm", "special.zeta")]
    checked = 0
    for r in results:
        for overload in r.aten:
            o = by_name[overload]
            for t in table.verified:
                if r.status[t] == C.PASS:
                    assert o.status[t] == "pass", (r.name, overload, t, o.status[t])
                    checked += 1
            assert set(r.aten[overload]) <= set(o.ir_ops), (overload, r.aten[overload], o.ir_ops)
    zeta = next(r for r in results if r.name == "special.zeta")
    assert zeta.status["reference"] == C.UNSUPPORTED
    assert all(not by_name[m].mapped for m in zeta.missing)
    assert checked >= 8


def test_mlx_functions_come_from_the_mlx_table(table):
    from xcomp.backends.mlx.table import MLX_RULES, mlx_functions
    softmax = next(o for o in table.overloads() if o.name == "aten._softmax.default")
    assert softmax.ir_ops == ["xc.softmax"] and "mx.softmax" in softmax.mlx
    assert softmax.mlx == mlx_functions(MLX_RULES["xc.softmax"])
    gelu = next(o for o in table.overloads() if o.name == "aten.gelu.default")
    assert gelu.mlx == ["decomposed"]   # the decompose pass writes gelu with erf/tanh and arithmetic


def test_ops_command_filters_and_formats(capsys):
    from xcomp.cli import main
    assert main(["ops", "--op", "softmax", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["aten"] and all("softmax" in r["op"] for r in data["aten"])
    assert main(["ops", "--target", "mlx", "--format", "csv", "--op", "gelu"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and set(rows[0]) == {"aten_op", "overload", "via", "ir_ops", "mlx_functions", "mlx", "notes"}
    assert any(r["overload"] == "aten.gelu.default" and r["mlx"] == "pass" for r in rows)
    assert main(["ops", "--missing", "--target", "mlx"]) == 0
    text = capsys.readouterr().out
    body = [ln for ln in text.split("## ATen operators")[1].splitlines() if ln.startswith("| `aten::")]
    assert body and all(ln.split(" | ")[4] not in ("pass", "lowered") for ln in body)
    assert "`aten::_softmax`" not in text
