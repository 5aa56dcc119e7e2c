"""Every mapped MLX primitive against MLX eager on random inputs, over shapes and dtypes and on the
`reference` and `mlx` targets; the fast primitives (reported only by GPU builds) from constructed
export events. A coverage test checks that every table entry is exercised here."""
from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

import xcomp  # noqa: E402
from helpers import assert_close  # noqa: E402
from mlx_frontend.fast_events import FAST_CASES  # noqa: E402
from mlx_frontend.mlx_cases import CASES  # noqa: E402
from xcomp.arrays import to_numpy  # noqa: E402
from xcomp.frontends.mlx import PRIMITIVES, record  # noqa: E402

TARGETS = ("reference", "mlx")


def _params():
    for case in CASES:
        for shape in case.shapes:
            for dt in case.dtypes:
                yield pytest.param(case, shape, dt, id=f"{case.name or case.primitive}-{shape}-{dt}")


def _name(mx_dtype) -> str:
    return str(mx_dtype).split(".")[-1]


def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("case,shape,dtype", list(_params()))
def test_primitive_against_mlx_eager(case, shape, dtype):
    rng = np.random.default_rng(0)
    args = case.args(shape, dtype, rng)
    names = {e["name"] for e in record(case.fn, args) if e["type"] == "primitive"}
    assert case.primitive in names, f"{case.name} reports {sorted(names)}, not {case.primitive}"
    expected = _flat(case.fn(*args))
    for target in TARGETS:
        got = _flat(xcomp.compile(case.fn, target=target)(*args))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert isinstance(g, mx.array) and g.dtype == e.dtype, (target, g, e)
            if case.compare is not None:
                g, e = case.compare(g, e)
            assert_close(g, e, dtype=_name(e.dtype), msg=f"{case.name} on {target}")


@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: c.name)
def test_fast_primitive_events(case):
    """RMSNorm, LayerNorm, RoPE and attention as a GPU build reports them, against mx.fast eager."""
    from xcomp.frontends.mlx import build
    from xcomp.interpreter import interpret
    args = case.args()
    program = build(case.events(args))
    assert case.primitive not in {op.name for op in program.walk()}
    got = interpret(program, [to_numpy(a) for a in args])[0]
    expected = case.eager(*args)
    assert_close(got, expected, dtype=_name(expected.dtype), msg=case.name)


def test_every_mapped_primitive_is_tested():
    tested = {c.primitive for c in CASES} | {c.primitive for c in FAST_CASES} | NO_CPU_EMISSION
    assert sorted(set(PRIMITIVES) - tested) == []


# Primitives this CPU build never reports from a Python function (identity or shapeless-only), each
# exercised through constructed events in fast_events.py instead.
NO_CPU_EMISSION = set()
