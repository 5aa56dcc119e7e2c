"""Matrix and convolution primitives: Matmul, AddMM, GatherMM, QuantizedMatmul, GatherQMM, Convolution.

MLX convolutions are channels-last (input N, spatial..., C; weight O, spatial..., C/groups); the IR's
`conv` is channels-first, so the converter transposes in and out (canonicalization folds the
transposes of weights). Input dilation (MLX's transposed convolution) inserts zeros explicitly.
"""
from __future__ import annotations

import numpy as np

from xcomp.frontends.mlx.elementwise import one_dtype
from xcomp.frontends.mlx.table import Unsupported, primitive


@primitive("Matmul", "matmul")
def matmul(cx, inputs, args):
    return [cx.op("matmul", *one_dtype(cx, inputs))]


def _flattened_from(v):
    """(x, bias) when `v` is `x` (rank >= 3) with its leading dims merged into a symbolic one, as MLX
    flattens a Linear layer's input for AddMM: `reshape(x: B, S, K -> B*S, K)`."""
    op = v.op
    if op is None or op.name != "xc.reshape" or v.type.rank != 2 or not isinstance(v.type.shape[0], str):
        return None
    x = op.operands[0]
    return x if x.type.rank >= 3 and x.type.shape[-1] == v.type.shape[-1] else None


def _unbroadcast(v):
    """The rank <= 1 value a `broadcast_to` made `v` from, else None."""
    op = v.op
    if op is not None and op.name == "xc.broadcast_to" and op.operands[0].type.rank <= 1:
        return op.operands[0]
    return None


@primitive("AddMM", "matmul, mul, add")
def addmm(cx, inputs, args):
    alpha, beta = args
    a, b, c = one_dtype(cx, inputs)
    dt = a.type.dtype
    flat_rows = None
    x, bias = _flattened_from(a), _unbroadcast(c)
    if x is not None and bias is not None:  # symbolic B*S rows: keep B, S apart (MLX re-splits them next)
        flat_rows, a, c = a.type.shape[0], x, bias
    y = cx.op("matmul", a, b)
    if alpha != 1.0:
        y = cx.op("mul", y, cx.const(alpha, dt))
    if beta != 1.0:
        c = cx.op("mul", c, cx.const(beta, dt))
    y = cx.op("add", y, c)
    return [y if flat_rows is None else cx.reshape(y, (flat_rows, y.type.shape[-1]))]


def _gathered_matmul(cx, a, b, indices, transpose_b=False):
    """a[lhs_indices] @ b[rhs_indices] (b transposed if asked), the indices counting the flattened
    batch of each operand."""
    picked = []
    for m, idx in zip((a, b), indices):
        rows, cols = m.type.shape[-2:]
        mats = cx.reshape(m, (m.type.numel // (rows * cols), rows, cols))
        picked.append(cx.op("take", mats, idx, axis=0))
    return cx.op("matmul", *picked, transpose_b=transpose_b)


@primitive("GatherMM", "reshape, take, matmul")
def gather_mm(cx, inputs, args):
    a, b = one_dtype(cx, inputs[:2])
    return [_gathered_matmul(cx, a, b, inputs[2:4])]


# bits -> (bytes per pack, values per pack): MLX packs 3-, 5- and 6-bit values across byte groups
PACKING = {2: (4, 16), 4: (4, 8), 8: (4, 4), 3: (3, 8), 5: (5, 8), 6: (3, 4)}


def _packs(cx, words, nbytes: int):
    """The packed words regrouped into packs of `nbytes` little-endian bytes, each as one integer."""
    if nbytes == 4:
        return words
    dt = words.type.dtype
    shape = tuple(words.type.shape)
    byte = cx.op("bitwise_and", cx.op("shift_right", cx.reshape(words, shape + (1,)),
                                      cx.dense(np.arange(0, 32, 8, dtype=np.int64), dt)), cx.const(255, dt))
    groups = cx.reshape(byte, shape[:-1] + (shape[-1] * 4 // nbytes, nbytes))
    weights = cx.dense(np.arange(0, 8 * nbytes, 8, dtype=np.int64), dt)
    return cx.op("sum", cx.op("shift_left", groups, weights), axes=(groups.type.rank - 1,))


def dequantize(cx, packed, scales, biases, group_size: int, bits: int):
    """MLX's affine quantization undone: packs of bytes hold values lowest bits first; then
    value * scale + bias per group of `group_size` along the last axis."""
    if bits not in PACKING:
        raise Unsupported(f"{bits}-bit quantization")
    nbytes, per_pack = PACKING[bits]
    packs = _packs(cx, packed, nbytes)
    shape = tuple(packs.type.shape)
    shifts = cx.dense(np.arange(0, bits * per_pack, bits, dtype=np.int64), packs.type.dtype)
    values = cx.op("bitwise_and", cx.op("shift_right", cx.reshape(packs, shape + (1,)), shifts),
                   cx.const((1 << bits) - 1, packs.type.dtype))
    n = shape[-1] * per_pack
    dt = scales.type.dtype
    w = cx.reshape(cx.cast(values, dt), shape[:-1] + (n // group_size, group_size))
    expand = lambda v: cx.reshape(v, tuple(v.type.shape) + (1,))  # noqa: E731
    w = cx.op("add", cx.op("mul", w, expand(scales)), expand(cx.cast(biases, dt)))
    return cx.reshape(w, shape[:-1] + (n,))


@primitive("QuantizedMatmul", "shift_right, bitwise_and, (shift_left, sum), cast, mul, add, reshape, matmul (affine)")
def quantized_matmul(cx, inputs, args):
    group_size, bits, mode, transpose = args[:4]
    if mode != 0 or len(inputs) != 4:
        raise Unsupported("a quantization mode other than affine (mxfp4, mxfp8, nvfp4)")
    x, packed, scales, biases = inputs
    w = dequantize(cx, packed, scales, biases, group_size, bits)
    return [cx.op("matmul", *one_dtype(cx, [x, w]), transpose_b=bool(transpose))]


@primitive("GatherQMM", "shift_right, bitwise_and, cast, mul, add, reshape, take, matmul (affine mode)")
def gather_qmm(cx, inputs, args):
    group_size, bits, mode, transpose = args[:4]
    if mode != 0 or len(inputs) != 6:
        raise Unsupported("a quantization mode other than affine (mxfp4, mxfp8, nvfp4)")
    x, packed, scales, biases = inputs[:4]
    w = dequantize(cx, packed, scales, biases, group_size, bits)
    return [_gathered_matmul(cx, *one_dtype(cx, [x, w]), inputs[4:6], transpose_b=bool(transpose))]


def _dilate(cx, x, axis, d):
    """Insert d - 1 zeros between the entries of `axis` (input dilation)."""
    n = x.type.shape[axis]
    shape = list(x.type.shape)
    y = cx.reshape(x, shape[:axis + 1] + [1] + shape[axis + 1:])
    pads = [0, 0] * (y.type.rank - axis - 2) + [0, d - 1]
    y = cx.op("pad", y, pads=tuple(pads))
    y = cx.reshape(y, shape[:axis] + [n * d] + shape[axis + 1:])
    return cx.op("slice", y, axis=axis, start=0, end=(n - 1) * d + 1)


@primitive("Convolution", "transpose, pad, flip, conv")
def convolution(cx, inputs, args):
    strides, lo, hi, kdil, idil, groups, flip = args
    x, w = one_dtype(cx, inputs)
    nsp = x.type.rank - 2
    for i, d in enumerate(idil):
        if d != 1:
            x = _dilate(cx, x, 1 + i, d)
    if flip:
        w = cx.op("flip", w, axes=tuple(range(1, 1 + nsp)))
    to_first = (0, nsp + 1) + tuple(range(1, nsp + 1))
    xt = cx.op("transpose", x, perm=to_first)
    wt = cx.op("transpose", w, perm=to_first)
    pad_lo, pad_hi = list(lo), list(hi)
    if min(pad_lo + pad_hi) < 0:
        raise Unsupported("a convolution with negative padding")
    y = cx.op("conv", xt, wt, stride=tuple(strides), padding=tuple(pad_lo) + tuple(pad_hi),
              dilation=tuple(kdil), groups=groups)
    return [cx.op("transpose", y, perm=(0,) + tuple(range(2, nsp + 2)) + (1,))]
