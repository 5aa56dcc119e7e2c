"""docs/mlx_primitives.md is generated from the MLX frontend's table and must not go stale."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("mlx.core")

from xcomp.frontends.mlx import IR_OPS, PRIMITIVES  # noqa: E402
from xcomp.frontends.mlx.docs import NOT_MAPPED, render  # noqa: E402
from xcomp.ops.registry import REGISTRY  # noqa: E402

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "mlx_primitives.md")


def test_doc_is_current():
    with open(DOC) as f:
        assert f.read() == render(), "regenerate: python -m xcomp.frontends.mlx.docs > docs/mlx_primitives.md"


def test_mapped_and_unmapped_are_disjoint():
    assert not set(NOT_MAPPED) & set(PRIMITIVES)


def test_named_ir_ops_exist():
    """The first word of every IR op list names a registered op (the docs do not drift from the IR)."""
    for name, ops in IR_OPS.items():
        first = ops.split(",")[0].split(" ")[0].split("/")[0]
        assert first.startswith("(") or f"xc.{first}" in REGISTRY, (name, ops)
