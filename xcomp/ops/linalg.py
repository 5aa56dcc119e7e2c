"""Linear algebra: matmul (torch.matmul semantics) and N-d convolution (torch layout, NC...).

`matmul` broadcasts batch dims; a 1-D left operand is a row vector and a 1-D right operand a
column vector, and the added dim is dropped from the result. `transpose_a`/`transpose_b` swap the
last two dims of a 2-D-or-more operand first (`linear` is `matmul(x, w, transpose_b=True)`).

`conv` takes (x, w) or (x, w, bias): x is (N, C_in, *spatial) or unbatched (C_in, *spatial); w is
(C_out, C_in/groups, *kernel), or (C_in, C_out/groups, *kernel) when `transposed`. `padding` holds
one value per spatial dim (both sides) or 2 per dim (all low sides, then all high sides).
"""
from __future__ import annotations

import numpy as np

from xcomp import guards
from xcomp.ir import symbolic as sym
from xcomp.ir.types import Dim, TensorType, broadcast_shapes
from xcomp.ops.registry import AttrKind, Trait, attr, define

PURE = Trait.PURE


def _same(a: Dim, b: Dim) -> bool:
    """Whether two sizes agree: equal, or symbolic and then required equal (a guard)."""
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return False
    guards.require(a, "==", b, "matching sizes")
    return True


def _matmul_infer(types, a):
    x, y = types
    for t in (x, y):
        if not isinstance(t, TensorType) or t.rank == 0:
            raise TypeError(f"xc.matmul needs tensors of rank >= 1, got {t}")
    if x.dtype != y.dtype:
        raise TypeError(f"xc.matmul needs operands of one dtype, got {x} and {y}")
    xs, ys = list(x.shape), list(y.shape)
    if a["transpose_a"] and len(xs) >= 2:
        xs[-2], xs[-1] = xs[-1], xs[-2]
    if a["transpose_b"] and len(ys) >= 2:
        ys[-2], ys[-1] = ys[-1], ys[-2]
    k_x = xs[-1]
    k_y = ys[0] if len(ys) == 1 else ys[-2]
    if not _same(k_x, k_y):
        raise TypeError(f"xc.matmul: inner dims differ, {x} @ {y}")
    rows = [] if len(xs) == 1 else [xs[-2]]
    cols = [] if len(ys) == 1 else [ys[-1]]
    try:
        batch = broadcast_shapes(tuple(xs[:-2]), tuple(ys[:-2]))
    except ValueError as e:
        raise TypeError(f"xc.matmul: {e}") from None
    return [TensorType(tuple(batch) + tuple(rows) + tuple(cols), x.dtype)]


def _matmul_ref(args, a, out):
    x, y = args
    if a["transpose_a"] and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if a["transpose_b"] and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    if x.dtype.kind == "f":
        return [np.matmul(x.astype(np.float64), y.astype(np.float64))]
    if x.dtype == np.bool_:
        return [np.matmul(x.astype(np.int64), y.astype(np.int64)) != 0]
    return [np.matmul(x, y)]


define("matmul", _matmul_infer, _matmul_ref, operands=2, traits=(PURE,),
       attrs={"transpose_a": attr(AttrKind.BOOL, False), "transpose_b": attr(AttrKind.BOOL, False)},
       doc="Matrix product with torch.matmul batching and 1-D rules.")


def conv_geometry(a, nsp: int):
    """Per-spatial-dim (stride, pad_lo, pad_hi, dilation, output_padding) from a conv's attrs."""
    def per_dim(v, name, default):
        v = tuple(v) if v else (default,)
        if len(v) == 1:
            v = v * nsp
        if len(v) != nsp:
            raise ValueError(f"xc.conv: {name} has {len(v)} values for {nsp} spatial dims")
        return v
    pad = tuple(a["padding"]) or (0,)
    if len(pad) == 2 * nsp:
        lo, hi = pad[:nsp], pad[nsp:]
    else:
        lo = hi = per_dim(pad, "padding", 0)
    return (per_dim(a["stride"], "stride", 1), lo, hi, per_dim(a["dilation"], "dilation", 1),
            per_dim(a["output_padding"], "output_padding", 0))


def _conv_infer(types, a):
    if len(types) not in (2, 3):
        raise TypeError(f"xc.conv takes (input, weight[, bias]), got {len(types)} operands")
    x, w = types[0], types[1]
    for t in types:
        if not isinstance(t, TensorType):
            raise TypeError(f"xc.conv takes tensors, got {t}")
        if t.dtype != x.dtype:
            raise TypeError(f"xc.conv needs operands of one dtype, got {[str(t) for t in types]}")
    nsp = w.rank - 2
    if nsp < 1 or x.rank not in (nsp + 1, nsp + 2):
        raise TypeError(f"xc.conv: input {x} does not match weight {w}")
    g = a["groups"]
    if g < 1:
        raise ValueError(f"xc.conv: groups must be >= 1, got {g}")
    batched = x.rank == nsp + 2
    cin = x.shape[1 if batched else 0]
    stride, lo, hi, dil, outpad = conv_geometry(a, nsp)
    if a["transposed"]:
        if not _same(w.shape[0], cin):
            raise TypeError(f"xc.conv: transposed weight {w} does not take {cin} input channels")
        cout = sym.mul(w.shape[1], g)
    else:
        if isinstance(cin, int) and isinstance(w.shape[1], int) and (cin % g or cin // g != w.shape[1]):
            raise TypeError(f"xc.conv: weight {w} does not take {cin} input channels in {g} groups")
        cout = w.shape[0]
    if len(types) == 3 and (types[2].rank != 1 or not _same(types[2].shape[0], cout)):
        raise TypeError(f"xc.conv: bias {types[2]} does not match {cout} output channels")
    spatial = []
    for i in range(nsp):
        n, k = x.shape[-nsp + i], w.shape[2 + i]
        if isinstance(k, str):
            raise TypeError("xc.conv needs static kernel sizes")
        if isinstance(n, str):  # affine in n: the output size stays an expression
            if a["transposed"]:
                o = sym.add(sym.mul(sym.sub(n, 1), stride[i]), dil[i] * (k - 1) + outpad[i] + 1 - lo[i] - hi[i])
            else:
                guards.require(n, ">=", dil[i] * (k - 1) + 1 - lo[i] - hi[i], f"xc.conv window over {n}")
                o = sym.add(sym.floordiv(sym.add(n, lo[i] + hi[i] - dil[i] * (k - 1) - 1), stride[i]), 1)
            spatial.append(o)
            continue
        if a["transposed"]:
            o = (n - 1) * stride[i] - lo[i] - hi[i] + dil[i] * (k - 1) + outpad[i] + 1
        else:
            o = (n + lo[i] + hi[i] - dil[i] * (k - 1) - 1) // stride[i] + 1
        if o < 0 or (o == 0 and n > 0):
            raise ValueError(f"xc.conv: output size {o} along spatial dim {i} is not positive")
        spatial.append(o)
    lead = (x.shape[0], cout) if batched else (cout,)
    return [TensorType(lead + tuple(spatial), x.dtype)]


def _conv_forward(x, w, groups, stride, lo, hi, dil):
    """Plain grouped N-d correlation in float64 (x batched NC..., w (C_out, C_in/g, *k))."""
    nsp = w.ndim - 2
    crop = tuple(slice(max(-l, 0), x.shape[2 + i] - max(-h, 0)) for i, (l, h) in enumerate(zip(lo, hi)))
    x = x[(slice(None), slice(None)) + crop]
    x = np.pad(x, [(0, 0), (0, 0)] + [(max(l, 0), max(h, 0)) for l, h in zip(lo, hi)])
    n, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    ks = w.shape[2:]
    win = tuple((k - 1) * d + 1 for k, d in zip(ks, dil))
    if any(x.shape[2 + i] < win[i] for i in range(nsp)):
        out_sp = tuple(0 for _ in range(nsp))
        return np.zeros((n, cout) + out_sp)
    v = np.lib.stride_tricks.sliding_window_view(x, win, axis=tuple(range(2, 2 + nsp)))
    v = v[(Ellipsis,) + tuple(slice(None, None, d) for d in dil)]           # dilate the window
    v = v[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]
    sp = v.shape[2:2 + nsp]
    v = v.reshape((n, groups, cin // groups) + sp + tuple(ks))
    wg = w.reshape((groups, cout // groups, cg) + tuple(ks))
    letters = "lmnijk"[:nsp]
    klet = "pqrstu"[:nsp]
    out = np.einsum(f"zgc{letters}{klet},goc{klet}->zgo{letters}", v, wg, optimize=True)
    return out.reshape((n, cout) + sp)


def _conv_ref(args, a, out):
    x, w = args[0].astype(np.float64), args[1].astype(np.float64)
    nsp = w.ndim - 2
    batched = x.ndim == nsp + 2
    if not batched:
        x = x[None]
    stride, lo, hi, dil, outpad = conv_geometry(a, nsp)
    g = a["groups"]
    if a["transposed"]:
        # a transposed conv is a correlation of the stride-dilated input with the flipped kernel
        cin, cog = w.shape[:2]
        ks = w.shape[2:]
        dil_shape = x.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(x.shape[2:], stride))
        xd = np.zeros(dil_shape)
        xd[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
        wt = w.reshape((g, cin // g, cog) + ks).swapaxes(1, 2).reshape((g * cog, cin // g) + ks)
        wt = wt[(slice(None), slice(None)) + tuple(slice(None, None, -1) for _ in ks)]
        plo = tuple(d * (k - 1) - p for d, k, p in zip(dil, ks, lo))
        phi = tuple(d * (k - 1) - p + op for d, k, p, op in zip(dil, ks, hi, outpad))
        y = _conv_forward(xd, wt, g, (1,) * nsp, plo, phi, dil)
    else:
        y = _conv_forward(x, w, g, stride, lo, hi, dil)
    if len(args) == 3:
        y = y + args[2].astype(np.float64).reshape((1, -1) + (1,) * nsp)
    return [y if batched else y[0]]


define("conv", _conv_infer, _conv_ref, traits=(PURE,),
       attrs={"stride": attr(AttrKind.INTS, (1,)), "padding": attr(AttrKind.INTS, (0,)),
              "dilation": attr(AttrKind.INTS, (1,)), "groups": attr(AttrKind.INT, 1),
              "transposed": attr(AttrKind.BOOL, False), "output_padding": attr(AttrKind.INTS, (0,))},
       doc="N-d grouped, strided, dilated, optionally transposed convolution with optional bias.")
