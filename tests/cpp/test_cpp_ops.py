"""Every op on the `cpp` target against torch eager, through the op tests' own cases
(tests/ops/*: shape, indexing, factory, reduction, linalg, nn).

Compiling is per program, so the cases run in groups: each group is one function computing all its
cases (outputs concatenated), captured and built once; a group that does not pass is redone case by
case so a failure names its case.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close

pytestmark = needs_cpp

from ops import test_reduction_linalg_nn as RL  # noqa: E402
from ops import test_shape_indexing_factory as SIF  # noqa: E402

GROUP = 16


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)] if isinstance(out, (tuple, list)) else []


def _case(name, dtype=torch.float32):
    """(fn, inputs) of an op-test case, with the tests' own seeding and module setup."""
    if name in SIF.CASES:
        return SIF.CASES[name]
    torch.manual_seed(sum(map(ord, name)))
    fn, make = RL.CASES[name]
    if isinstance(fn, nn.Module):
        fn.eval()
        if isinstance(fn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                fn.running_mean.uniform_(-1, 1)
                fn.running_var.uniform_(0.5, 2)
        fn = fn.to(dtype)
    return fn, [x.to(dtype) if x.is_floating_point() else x for x in make()]


def _run(names, dtype=torch.float32, scale=1.0) -> None:
    cases = [(n, *_case(n, dtype)) for n in names]
    counts = [len(inputs) for _, _, inputs in cases]

    def fn(*tensors):
        outs, i = [], 0
        for (_, f, _), k in zip(cases, counts):
            outs.extend(_flat(f(*tensors[i:i + k])))
            i += k
        return tuple(outs)
    tensors = [t for _, _, inputs in cases for t in inputs]
    with torch.no_grad():
        expected = _flat(fn(*tensors))
    program = xcomp.capture(fn, tensors)
    arrays = [(t.float() if t.dtype == torch.bfloat16 else t).numpy() for t in tensors]
    got = xcomp.compile(program, target="cpp")(*arrays)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        tol = "bfloat16" if e.dtype == torch.bfloat16 else None
        e = e.detach().numpy() if e.dtype != torch.bfloat16 else e.float().numpy()
        g = np.asarray(g)
        assert g.dtype == e.dtype, f"output {i}: dtype {g.dtype} != {e.dtype}"
        assert_close(g, e, dtype=tol or str(e.dtype), scale=scale, msg=f"output {i} of {names}")


ALL = sorted(SIF.CASES) + sorted(RL.CASES)
GROUPS = {f"{g[0]}..{g[-1]}": g for g in (ALL[i:i + GROUP] for i in range(0, len(ALL), GROUP))}


@pytest.mark.parametrize("group", GROUPS)
def test_op_cases_on_cpp(group):
    names = GROUPS[group]
    try:
        _run(names)
    except Exception:
        failures = []
        for n in names:
            try:
                _run([n])
            except Exception as e:
                failures.append(f"{n}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}")
        assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_cases_on_cpp(dtype):
    """The op tests' float16 list in float16 and bfloat16 (computed in float32, stored in 16 bits)."""
    try:
        _run(RL.FLOAT16, dtype, scale=2.0)
    except Exception:
        failures = []
        for n in RL.FLOAT16:
            try:
                _run([n], dtype, scale=2.0)
            except Exception as e:
                failures.append(f"{n}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}")
        assert not failures, "\n".join(failures)
