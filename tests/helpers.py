"""Shared test helpers: compare against PyTorch/MLX eager with per-dtype tolerances."""
from __future__ import annotations

import numpy as np

from xcomp.arrays import to_numpy

from xcomp.tolerances import tolerance  # noqa: F401  (the one table, re-exported for tests)


def assert_close(actual, expected, *, dtype: str | None = None, scale: float = 1.0, msg: str = ""):
    """Shape and dtype kind first, then values within the tolerance of `expected`'s dtype."""
    dname = dtype or str(getattr(expected, "dtype", np.asarray(expected).dtype))
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{msg} shape {a.shape} != expected {e.shape}"
    if e.dtype == np.bool_ or e.dtype.kind in "iu":
        assert a.dtype.kind == e.dtype.kind or (e.dtype == np.bool_ and a.dtype == np.bool_), \
            f"{msg} dtype {a.dtype} != {e.dtype}"
        np.testing.assert_array_equal(a, e, err_msg=msg)
        return
    rtol, atol = tolerance(dname, scale)
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True, err_msg=msg)


def max_error(actual, expected) -> float:
    a, e = to_numpy(actual).astype(np.float64), to_numpy(expected).astype(np.float64)
    if a.size == 0:
        return 0.0
    d = np.abs(a - e)
    d = d[~(np.isnan(a) & np.isnan(e))]
    return float(d.max()) if d.size else 0.0
