"""Golden kernel sources: the generated Metal and CUDA listings of a few groups, byte for byte.

Regenerate with XCOMP_UPDATE_GOLDEN=1 after an intended change, and read the diff.
"""
from __future__ import annotations

import os

import pytest

from cases import CASES, fused_op, fused_program
from xcomp.backends.kernels import codegen

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
NAMES = ["chain_f32", "bias_gelu", "int_ops", "softmax", "layer_norm", "logsumexp_mean"]


@pytest.mark.parametrize("dialect", ["metal", "cuda"])
@pytest.mark.parametrize("name", NAMES)
def test_golden_source(name, dialect):
    src = codegen.plan(fused_op(fused_program(*CASES[name])), dialect).spec.full_source()
    path = os.path.join(GOLDEN, f"{name}.{dialect}.txt")
    if os.environ.get("XCOMP_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(src)
    with open(path) as f:
        assert src == f.read(), f"{path} differs; XCOMP_UPDATE_GOLDEN=1 regenerates it"
