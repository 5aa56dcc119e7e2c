"""docs/torchscript.md is generated: it must match what the code supports."""
import os

from xcomp.frontends.torchscript.nodes import NODES, markdown

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "torchscript.md")


def test_docs_torchscript_is_current():
    with open(DOC) as f:
        committed = f.read()
    assert committed == markdown(), ("docs/torchscript.md is stale: run "
                                     "`python -m xcomp.frontends.torchscript.nodes --markdown > docs/torchscript.md`")


def test_control_flow_nodes_are_listed():
    text = markdown()
    for kind in ("prim::If", "prim::Loop", "prim::RaiseException", "aten::append.t"):
        assert kind in NODES and f"`{kind}`" in text
