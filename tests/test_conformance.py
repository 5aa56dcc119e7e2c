"""Conformance with PyTorch's OpInfo database (see xcomp/conformance.py).

Default tier: every OpInfo named like an op of the aten table, on its first float32 sample, on the
reference, MLX and C++ targets: no wrong results and no crashes (an op may still be reported unsupported
by a clean UnsupportedOpError). Slow tier: every sample of every OpInfo, with the pass counts.
Values are compared with tests/helpers.py `assert_close` (per-dtype tolerances, scaled only for the
ops in `conformance.OP_TOL_SCALE`).
"""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("expecttest")

from xcomp import conformance as C  # noqa: E402
from xcomp.conformance_report import format_table, summary  # noqa: E402

from opinfo_cases import groups, helpers_check, in_table_opinfos  # noqa: E402

TARGETS = ["reference", "mlx"]
# the first-sample check also runs on cpp (one C++ build per group of OpInfos; builds are cached)
FIRST_SAMPLE_TARGETS = TARGETS + ["cpp"]
DEFAULT_SAMPLES = 1


OPINFOS = in_table_opinfos()


GROUP = 12  # OpInfos captured together in one program (one torch.export per group)
GROUPS = groups(OPINFOS, GROUP)


@pytest.mark.parametrize("group", GROUPS)
def test_opinfo_first_sample(group):
    with C.cached_cia_ops():
        results = C.check_opinfos([OPINFOS[n] for n in GROUPS[group]], FIRST_SAMPLE_TARGETS, DEFAULT_SAMPLES,
                                  helpers_check)
    bad = [f"{r.name} ({t}): {r.status[t]}: {r.reason[t]}" for r in results for t in FIRST_SAMPLE_TARGETS
           if r.status[t] in (C.FAIL, C.ERROR)]
    assert not bad, "\n".join(bad)


def test_grouped_and_single_checks_agree():
    db = {C.full_name(o): o for o in C.load_op_db()}
    ops = [db[n] for n in ("add", "special.zeta", "sin", "randn_like", "nn.functional.gelu")]
    with C.cached_cia_ops():
        grouped = C.check_opinfos(ops, TARGETS, 2)
        single = [C.check_opinfo(o, TARGETS, 2) for o in ops]
    assert [(r.name, r.status, r.samples) for r in grouped] == [(r.name, r.status, r.samples) for r in single]


def test_harness_classifies_outcomes():
    """A passing op, a skipped random op, an unsupported op, and an explicit xfail."""
    db = {C.full_name(o): o for o in C.load_op_db()}
    with C.cached_cia_ops():
        add = C.check_opinfo(db["add"], TARGETS, 2)
        assert add.status == {"reference": C.PASS, "mlx": C.PASS} and add.samples == 2
        rand = C.check_opinfo(db["randn_like"], TARGETS, 2)
        assert set(rand.status.values()) == {C.SKIP} and "random" in rand.reason["mlx"]
        zeta = C.check_opinfo(db["special.zeta"], TARGETS, 1)
        assert zeta.status["reference"] == C.UNSUPPORTED and "aten.special_zeta" in zeta.missing[0]

        def wrong(name):
            def check(actual, expected):
                raise AssertionError("deliberately wrong")
            return check
        failing = C.check_opinfo(db["sin"], TARGETS, 1, wrong)
        assert failing.status["reference"] == C.FAIL and "deliberately wrong" in failing.reason["reference"]
        C.XFAIL[("sin", "mlx")] = "test entry"
        try:
            xf = C.check_opinfo(db["sin"], TARGETS, 1, wrong)
        finally:
            del C.XFAIL[("sin", "mlx")]
        assert xf.status == {"reference": C.FAIL, "mlx": C.XFAIL}


def test_command_prints_table_and_totals(capsys):
    assert C.main(["--ops", "abs,mul,special.zeta", "--limit-samples", "1", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| `abs` | 1 | pass | pass |" in out
    assert "| `special.zeta` |" in out and "unsupported" in out
    assert "reference: 2 ops passing" in out and "passing on all of reference, mlx: 2 ops" in out


def test_import_xcomp_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, xcomp, xcomp.conformance; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_full_op_db():
    """Every float32 sample of every OpInfo; at least 150 ops pass on both targets."""
    report = C.run(TARGETS, make_check=helpers_check)
    print(format_table(report))
    bad = [f"{r.name} ({t}): {r.status[t]}: {r.reason[t]}" for r in report.results for t in TARGETS
           if r.status[t] in (C.FAIL, C.ERROR) and C.in_table(_by_name(r.name))]
    assert len(report.passing_all()) >= 150, summary(report)
    assert not bad, "\n".join(bad)


def _by_name(name: str):
    return next(o for o in C.load_op_db() if C.full_name(o) == name)
