"""aten pooling ops -> xc.max_pool / avg_pool / adaptive_*_pool.

The dimensionality comes from the op name (max_pool2d pools the last two dims); int or
one-element arguments are expanded per pooled dim and an empty stride means the kernel. Index
results (torch's flat positions within the pooled dims) are built only when the graph reads them
(`with_indices`).
"""
from __future__ import annotations

from xcomp.frontends.aten import aten
from xcomp.frontends.aten.linalg import per_dim
from xcomp.frontends.aten.nn import used_outputs


def _max_pool(n: int, with_indices: bool):
    def conv(cx, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        indices = with_indices and 1 in used_outputs(cx)
        ys = cx.ops("max_pool", x, kernel=per_dim(kernel_size, n),
                    stride=per_dim(stride, n) if stride not in ((), [], None) else (),
                    padding=per_dim(padding, n), dilation=per_dim(dilation, n), ceil_mode=bool(ceil_mode),
                    with_indices=indices)
        return (ys if indices else [ys[0], None]) if with_indices else ys[0]
    return conv


def _avg_pool(n: int):
    def conv(cx, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
        x = cx.tensor(x, cx.out_dtype)
        return cx.op("avg_pool", x, kernel=per_dim(kernel_size, n),
                     stride=per_dim(stride, n) if stride not in ((), [], None) else (),
                     padding=per_dim(padding, n), ceil_mode=bool(ceil_mode),
                     count_include_pad=bool(count_include_pad),
                     divisor_override=None if not divisor_override else int(divisor_override))
    return conv


def _adaptive(op: str, n: int, with_indices: bool):
    def conv(cx, x, output_size):
        x = cx.tensor(x, cx.out_dtype)
        if not with_indices:
            return cx.op(op, x, output_size=per_dim(output_size, n))
        indices = 1 in used_outputs(cx)
        ys = cx.ops(op, x, output_size=per_dim(output_size, n), with_indices=indices)
        return ys if indices else [ys[0], None]
    return conv


for _n in (1, 2, 3):
    aten(f"aten.max_pool{_n}d.default")(_max_pool(_n, False))
    aten(f"aten.max_pool{_n}d_with_indices.default")(_max_pool(_n, True))
    aten(f"aten.avg_pool{_n}d.default")(_avg_pool(_n))
    aten(f"aten.adaptive_avg_pool{_n}d.default")(_adaptive("adaptive_avg_pool", _n, False))
    aten(f"aten.adaptive_max_pool{_n}d.default")(_adaptive("adaptive_max_pool", _n, True))
    if _n > 1:
        aten(f"aten._adaptive_avg_pool{_n}d.default")(_adaptive("adaptive_avg_pool", _n, False))
