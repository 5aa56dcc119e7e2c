"""OpInfo conformance on the `coreml` target through the package evaluator (float32 precision).

Each group of OpInfos is captured once, optimized for coreml, saved as an `.mlpackage`, reloaded
and evaluated op by op (coremltools' value_inference where it exists, xcomp's own MIL semantics for
the rest: see backends/coreml/evaluate.py). No op may give a wrong result or crash; an op may be
reported unsupported by a clean LoweringError / UnsupportedOpError. The default tier checks a
cross-section of every op family; the slow tier every in-table OpInfo's first sample and
(`test_full_coreml_op_db`) every sample, counting the passing ops: at least 250.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("expecttest")
pytest.importorskip("coremltools")
os.environ.setdefault("TQDM_DISABLE", "1")

from xcomp import conformance as C  # noqa: E402

from opinfo_cases import groups, helpers_check, in_table_opinfos  # noqa: E402

TARGETS = ["coreml"]
GROUP = 16


OPINFOS = in_table_opinfos()
GROUPS = groups(OPINFOS, GROUP)


# The default tier: a cross-section of every family (one capture and one package per group); the
# slow tier runs every group.
SAMPLE = ["add", "mul", "div", "remainder", "atan2", "sin", "exp", "log1p", "sigmoid", "tanh",
          "nn.functional.gelu", "nn.functional.relu", "clamp", "where", "eq", "logical_and",
          "sum", "mean", "amax", "argmax", "cumsum", "matmul", "nn.functional.linear",
          "nn.functional.conv2d", "nn.functional.layer_norm", "softmax", "nn.functional.avg_pool2d",
          "cat", "reshape", "transpose", "nn.functional.pad", "tril", "index_select", "gather", "flip"]
DEFAULT_GROUPS = {f"sample{i}": [n for n in SAMPLE[i:i + GROUP] if n in OPINFOS]
                  for i in range(0, len(SAMPLE), GROUP)}


def _check_group(names):
    with C.cached_cia_ops():
        results = C.check_opinfos([OPINFOS[n] for n in names], TARGETS, 1, helpers_check)
    bad = [f"{r.name}: {r.status['coreml']}: {r.reason['coreml']}" for r in results
           if r.status["coreml"] in (C.FAIL, C.ERROR)]
    assert not bad, "\n".join(bad)
    return results


@pytest.mark.parametrize("group", DEFAULT_GROUPS)
def test_coreml_opinfo_cross_section(group):
    results = _check_group(DEFAULT_GROUPS[group])
    assert sum(r.status["coreml"] == C.PASS for r in results) >= len(results) - 2


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_coreml_opinfo_first_sample(group):
    _check_group(GROUPS[group])


@pytest.mark.slow
def test_full_coreml_op_db():
    """Every float32 sample of every OpInfo in the aten table: at least 250 pass, none wrong."""
    report = C.run(TARGETS, only_in_table=True, make_check=helpers_check)
    print(C.format_table(report))
    bad = [f"{r.name}: {r.status['coreml']}: {r.reason['coreml']}" for r in report.results
           if r.status["coreml"] in (C.FAIL, C.ERROR)]
    assert len(report.passing("coreml")) >= 250, C.summary(report)
    assert not bad, "\n".join(bad)
