"""What the OpInfo conformance tests share: the in-table OpInfos, their grouping into programs, and
the per-op comparison (tests/test_conformance.py, tests/coreml/test_coreml_conformance.py)."""
from __future__ import annotations

import numpy as np

from xcomp import conformance as C

from helpers import assert_close


def helpers_check(name: str):
    """`assert_close` with the op's tolerance scale, plus exact dtype equality."""
    scale = C.OP_TOL_SCALE.get(name, (1.0, ""))[0]

    def check(actual: np.ndarray, expected: np.ndarray):
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
        assert_close(actual, expected, scale=scale)
    return check


def in_table_opinfos() -> dict:
    """Every OpInfo named like an aten op of the table and not skipped, by full name."""
    import warnings
    warnings.filterwarnings("ignore")
    return {C.full_name(o): o for o in C.load_op_db() if C.in_table(o) and not C.skip_reason(o)}


def groups(names, size: int) -> dict:
    """`names` (sorted) in groups of `size`, keyed "first..last" (one captured program per group)."""
    names = sorted(names)
    return {f"{g[0]}..{g[-1]}": g for g in (names[i:i + size] for i in range(0, len(names), size))}
