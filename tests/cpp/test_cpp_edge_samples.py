"""Samples the every-sample OpInfo run found failing on `cpp` alone: row ops over a 0-d value and
statistics over empty tensors, against torch eager."""
import pytest
import torch

import xcomp
from helpers import assert_close

CASES = [
    ("softmax 0-d", lambda a: torch.softmax(a, 0), torch.tensor(2.5)),
    ("log_softmax 0-d", lambda a: torch.log_softmax(a, 0), torch.tensor(-1.0)),
    ("softmin 0-d", lambda a: torch.nn.functional.softmin(a, 0), torch.tensor(0.3)),
    ("std of empty", lambda a: torch.std(a), torch.zeros(0)),
    ("std_mean of empty", lambda a: torch.std_mean(a), torch.zeros(0)),
    ("var_mean over an empty dim", lambda a: torch.var_mean(a, dim=0), torch.zeros(0, 5)),
]


@pytest.mark.parametrize("name,fn,x", CASES, ids=[c[0] for c in CASES])
def test_cpp_edge_sample_matches_eager(name, fn, x):
    got = xcomp.compile(fn, target="cpp")(x)
    want = fn(x)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, msg=name)
