"""MLX lowerings of reductions and scans: one table line per op."""
from __future__ import annotations

import mlx.core as mx

from xcomp.backends.mlx.table import lowers
from xcomp.ops.reduction import normalize_axes


def _axes(x, a) -> list[int]:
    return list(normalize_axes(a["axes"], x.ndim))


def _var(x, axes, keepdim, correction):
    n = 1
    for i in axes:
        n *= x.shape[i]
    dev = x - mx.mean(x, axis=axes, keepdims=True)
    return mx.sum(dev * dev, axis=axes, keepdims=keepdim) / max(n - correction, 0.0)


REDUCE = {
    "sum": mx.sum, "prod": mx.prod, "mean": mx.mean, "amax": mx.max, "amin": mx.min,
    "any": mx.any, "all": mx.all, "logsumexp": mx.logsumexp,
}

for _name, _fn in REDUCE.items():
    lowers(_name)((lambda f: lambda args, a, out: f(args[0], axis=_axes(args[0], a), keepdims=a["keepdim"]))(_fn))

lowers("var")(lambda args, a, out: _var(args[0], _axes(args[0], a), a["keepdim"], a["correction"]))


def _arg(fn):
    def run(args, a, out):
        x = args[0]
        if a["axis"] is None or x.ndim == 0:
            return fn(x.reshape(-1), axis=0).reshape(out[0].shape)
        return fn(x, axis=a["axis"], keepdims=a["keepdim"])
    return run


lowers("argmax")(_arg(mx.argmax))
lowers("argmin")(_arg(mx.argmin))


def _scan(fn):
    return lambda args, a, out: args[0] if args[0].ndim == 0 else fn(args[0], axis=a["axis"] % args[0].ndim)


lowers("cumsum")(_scan(mx.cumsum))
lowers("cumprod")(_scan(mx.cumprod))
