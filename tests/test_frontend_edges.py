"""Edge cases of the torch frontend and lowerings found by the OpInfo conformance run."""
import pytest
import torch

import xcomp
from helpers import assert_close

TARGETS = ["reference", "mlx"]


@pytest.mark.parametrize("target", TARGETS)
def test_group_norm_empty_batch(target):
    x = torch.randn(0, 4, 3)
    fn = lambda x: torch.nn.functional.group_norm(x, 2)  # noqa: E731
    out = xcomp.compile(fn, target=target)(x)
    assert out.shape == (0, 4, 3)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_descending_values_and_empty_axis(target, descending):
    x = torch.randperm(10).float().reshape(2, 5)
    fn = lambda x: torch.sort(x, dim=-1, descending=descending)  # noqa: E731
    values, indices = xcomp.compile(fn, target=target)(x)
    ev, ei = fn(x)
    assert_close(values, ev)
    assert_close(indices, ei)  # distinct values: the order is unique
    empty = torch.zeros(3, 0)
    v, i = xcomp.compile(fn, target=target)(empty)
    assert v.shape == (3, 0) and i.shape == (3, 0)


def test_effect_tokens_do_not_break_capture():
    """torch.export threads a token through linalg's error checks; the check is dropped and the op
    itself is reported by name."""
    with pytest.raises(xcomp.UnsupportedOpError) as e:
        xcomp.compile(lambda a: torch.linalg.inv(a), target="reference")(torch.eye(3) * 2)
    assert [o.name for o in e.value.ops] == ["aten.linalg_inv_ex.default"]
    assert "test_frontend_edges.py" in e.value.ops[0].location
