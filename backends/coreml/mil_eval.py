"""xcomp's own numpy semantics for the MIL ops that coremltools gives no `value_inference`.

Only ops without an Apple oracle are here (conv, conv_transpose, batch_norm, silu, pools); control
flow (`cond`, `while_loop`) is run by the package evaluator itself. Each rule reads the loaded op's
inputs by their MIL names (`vals["x"]`) and the declared output shapes, and returns the output arrays; convolutions and pools reuse
the op definitions' references (`xcomp.ops`), computing in float64 and rounding to the MIL dtype.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from xcomp.ops.linalg import _conv_ref
from xcomp.ops.pooling import _avg_pool_ref, _max_pool_ref

MIL_EVAL: dict[str, Callable] = {}


def evaluates(name: str):
    def register(fn):
        MIL_EVAL[name] = fn
        return fn
    return register


def _pads(vals, nsp: int, what: str) -> tuple[list[int], list[int]]:
    kind = str(vals.get("pad_type", "custom")).lower()
    pad = [int(p) for p in np.asarray(vals.get("pad", [0] * 2 * nsp)).reshape(-1)]
    if kind == "valid":
        return [0] * nsp, [0] * nsp
    if kind != "custom":
        raise NotImplementedError(f"{what} with pad_type={kind}")
    return pad[0::2], pad[1::2]


def _ints(v, nsp):
    return tuple(int(s) for s in np.asarray(v).reshape(-1)) if v is not None else (1,) * nsp


@evaluates("conv")
def _conv(vals, shapes):
    x, w = vals["x"], vals["weight"]
    nsp = w.ndim - 2
    lo, hi = _pads(vals, nsp, "conv")
    attrs = {"stride": _ints(vals.get("strides"), nsp), "padding": tuple(lo) + tuple(hi),
             "dilation": _ints(vals.get("dilations"), nsp), "groups": int(vals.get("groups", 1)),
             "transposed": False, "output_padding": (0,)}
    args = [x, w] + ([vals["bias"]] if vals.get("bias") is not None else [])
    return [_conv_ref(args, attrs, None)[0].astype(x.dtype)]


@evaluates("conv_transpose")
def _conv_transpose(vals, shapes):
    x, w = vals["x"], vals["weight"]
    nsp = w.ndim - 2
    lo, hi = _pads(vals, nsp, "conv_transpose")
    stride, dil = _ints(vals.get("strides"), nsp), _ints(vals.get("dilations"), nsp)
    ks = w.shape[2:]
    natural = [(n - 1) * s - a - b + d * (k - 1) + 1
               for n, s, a, b, d, k in zip(x.shape[2:], stride, lo, hi, dil, ks)]
    want = vals.get("output_shape")
    outpad = tuple(int(o) - n for o, n in zip(np.asarray(want).reshape(-1)[2:], natural)) if want is not None else (0,) * nsp
    attrs = {"stride": stride, "padding": tuple(lo) + tuple(hi), "dilation": dil,
             "groups": int(vals.get("groups", 1)), "transposed": True, "output_padding": outpad}
    args = [x, w] + ([vals["bias"]] if vals.get("bias") is not None else [])
    return [_conv_ref(args, attrs, None)[0].astype(x.dtype)]


@evaluates("batch_norm")
def _batch_norm(vals, shapes):
    x = vals["x"]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    f = lambda k, d: np.asarray(vals[k] if vals.get(k) is not None else d, np.float64).reshape(shape)  # noqa: E731
    y = (x.astype(np.float64) - f("mean", 0)) / np.sqrt(f("variance", 1) + float(vals.get("epsilon", 1e-5)))
    return [(y * f("gamma", 1) + f("beta", 0)).astype(x.dtype)]


@evaluates("silu")
def _silu(vals, shapes):
    x = vals["x"].astype(np.float64)
    return [(x / (1 + np.exp(-x))).astype(vals["x"].dtype)]


def _pool(ref, is_max: bool):
    def run(vals, shapes):
        x = vals["x"]
        k = _ints(vals["kernel_sizes"], 0)
        lo, hi = _pads(vals, len(k), "pool")
        if lo != hi:
            raise NotImplementedError("asymmetric pool padding")
        attrs = {"kernel": k, "stride": _ints(vals.get("strides"), len(k)), "padding": tuple(lo),
                 "ceil_mode": bool(vals.get("ceil_mode", False))}
        if is_max:
            attrs.update(dilation=(1,), with_indices=False)
        else:
            attrs.update(count_include_pad=not bool(vals.get("exclude_padding_from_average", False)),
                         divisor_override=None)
        out = [type("Declared", (), {"shape": tuple(shapes[0])})()]
        return [np.asarray(ref([x.astype(np.float64)], attrs, out)[0]).astype(x.dtype)]
    return run


MIL_EVAL["max_pool"] = _pool(_max_pool_ref, True)
MIL_EVAL["avg_pool"] = _pool(_avg_pool_ref, False)


@evaluates("shape")
def _shape(vals, shapes):
    """The run-time shape (coremltools' value_inference gives the declared one, symbols included)."""
    return [np.array(np.shape(vals["x"]), np.int32)]
