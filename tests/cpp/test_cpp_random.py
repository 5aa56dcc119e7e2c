"""Random programs (hypothesis, the generator of tests/test_random_programs.py) through the whole
`cpp` path: pipeline, C++ generation, build, run, against the reference interpreter. Few examples
in the default tier: each one is a compile."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from test_random_programs import programs

pytestmark = needs_cpp


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2**16))
def test_random_programs_on_cpp(program, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(a.type.shape).astype(np.float32) for a in program.main.args]
    expected = xcomp.interpret(program, xs)
    got = xcomp.compile(program, target="cpp")(*xs)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    for g, w in zip(got, expected):
        assert_close(np.asarray(g), np.asarray(w), scale=10)
