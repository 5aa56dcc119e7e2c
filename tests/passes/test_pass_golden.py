"""Golden IR for pass outputs: `golden/<case>.in.mlir` through the case's passes must print exactly
`golden/<case>.out.mlir`. Regenerate the expected files with `XCOMP_UPDATE_GOLDEN=1 pytest ...`."""
import os
from pathlib import Path

import pytest

import xcomp
from progs import Primitives, inputs_for
from helpers import assert_close
from xcomp.api import clone
from xcomp.passes import run_pipeline
from xcomp.passes.manager import DEFAULT_PIPELINE

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("XCOMP_UPDATE_GOLDEN"))

CASES = {  # case -> (passes, target)
    "canonicalize": (["canonicalize", "dce"], None),
    "fold_cse": (["fold_constants", "cse", "dce"], None),
    "softmax_primitives": (list(DEFAULT_PIPELINE), Primitives()),
    "layer_norm_primitives": (list(DEFAULT_PIPELINE), Primitives()),
    "matmul_epilogue": (["fuse"], None),
    "inline": (["inline", "cse", "dce"], None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    passes, target = CASES[case]
    program = xcomp.parse((GOLDEN / f"{case}.in.mlir").read_text())
    out = clone(program)
    run_pipeline(out, passes, debug=True, target=target)
    text = str(out)
    expected_file = GOLDEN / f"{case}.out.mlir"
    if UPDATE:
        expected_file.write_text(text)
    assert text == expected_file.read_text(), f"{case}: pass output differs (XCOMP_UPDATE_GOLDEN=1 to accept)"
    assert str(xcomp.parse(text)) == text  # the fused IR reads back
    xs = inputs_for(program)
    for got, want in zip(xcomp.interpret(out, xs), xcomp.interpret(program, xs)):
        assert_close(got, want)
