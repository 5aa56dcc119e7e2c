"""Generated checks: every IR op is lowered by every backend table or has a decomposition, every op
has a numpy reference, and every aten converter is registered once under a real overload name."""
import pytest

from xcomp.backends import TARGETS, get_target
from xcomp.interpreter import REGION_OPS
from xcomp.ops.registry import REGISTRY
from xcomp.passes.decompose import DECOMPOSITIONS

COMPUTE_OPS = sorted(n for n, d in REGISTRY.items() if not d.is_terminator and not d.is_structural
                     and n not in REGION_OPS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_op_lowered_or_decomposed(target):
    supported = get_target(target).supported()
    missing = [n for n in COMPUTE_OPS if n not in supported and n not in DECOMPOSITIONS]
    assert missing == [], f"{target} lacks {missing} and they have no decomposition"


def test_every_op_has_a_reference():
    assert [n for n in COMPUTE_OPS if REGISTRY[n].reference is None] == []


def test_aten_table_names_real_overloads():
    torch = pytest.importorskip("torch")
    from xcomp.frontends.aten import ATEN
    bad = []
    for name in ATEN:
        ns, op, overload = name.split(".")
        if ns == "higher_order":
            continue
        packet = getattr(getattr(torch.ops, ns), op, None)
        if packet is None or overload not in packet.overloads():
            bad.append(name)
    # converters may name ops a newer or older torch has; this pinned torch must know them all
    assert bad == [], f"aten names unknown to torch {torch.__version__}: {bad}"
