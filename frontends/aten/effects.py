"""Side effects in exported graphs: torch.export threads a token through `with_effects` calls.

Runtime checks that only raise on invalid input (linalg's error checks, asserts) carry no data and
are dropped; any other side-effecting op is reported as unsupported.
"""
from __future__ import annotations


from xcomp.frontends.aten import aten

CHECK_ONLY = {"aten._linalg_check_errors.default", "aten._assert_async.msg", "aten._assert_async.default",
              "aten._assert_scalar.default", "aten._functional_assert_async.msg"}


@aten("higher_order.with_effects.default")
def with_effects(cx, token, op, *args, **kwargs):
    if str(op) not in CHECK_ONLY:
        raise NotImplementedError(f"side-effecting op {op}")
    return [token]
