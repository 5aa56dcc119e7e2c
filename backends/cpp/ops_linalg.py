"""C++ rules of matmul (batched GEMM through the runtime's `xc_sgemm`) and convolution.

Convolution: a 1x1 stride-1 unpadded kernel is one GEMM over the input as it is (no copy); 1-d/2-d
kernels with channels per group x taps <= DIRECT_MAX_TAPS the register-blocked direct kernel, 3-d
ones up to DIRECT_3D_MAX_TAPS the plain direct kernel; any other kernel im2col + GEMM per image and
group; transposed convolutions scatter directly.
Other dtypes than float32 compute in float32 copies (integer matmuls exactly, in double).
"""
from __future__ import annotations

import numpy as np

from xcomp.backends.cpp.lower import Buf, rule, shape_of
from xcomp.backends.cpp.sizes import Sz, broadcast_shapes, prod
from xcomp.backends.cpp.views import gemm_layout, rows_collapse, simple_strides, strides, written_strides
from xcomp.ir.types import DType
from xcomp.ops.linalg import conv_geometry

# reductions (input channels per group x kernel taps) up to this size run a direct kernel; larger
# ones im2col + GEMM (benchmarks/cpp_conv_choice.py measured the crossover): the register-blocked
# 1-d/2-d kernel won clearly up to 576 taps (1.5-2.6x) and tied with the row-run im2col + GEMM at
# 1152 and 2304; the plain 3-d kernel loses from about 288.
DIRECT_MAX_TAPS = 1024
DIRECT_3D_MAX_TAPS = 160


def to_f32(lw, x: Buf) -> Buf:
    if x.dtype is DType.F32:
        return x
    t = lw.scratch(DType.F32, x.shape)
    lw.emit(f"for (int64_t i = 0; i < {x.numel}; ++i) {t.ptr}[i] = (float)xc_val({x.ptr}[i]);")
    return t


def from_f32(lw, src: Buf, dst: Buf) -> None:
    if src.ptr != dst.ptr:
        lw.emit(f"for (int64_t i = 0; i < {dst.numel}; ++i) {dst.ptr}[i] = xc_from<{dst.sty}>((double){src.ptr}[i]);")


def _offsets(lw, batch_shape, out_batch, mat: int) -> str:
    lead = len(out_batch) - len(batch_shape)
    aligned = (1,) * lead + tuple(batch_shape)
    st, acc = [0] * len(aligned), mat
    for i in range(len(aligned) - 1, -1, -1):
        st[i] = 0 if aligned[i] == 1 else acc
        acc *= aligned[i]
    if any(isinstance(d, Sz) for d in list(out_batch) + st):   # run-time sizes: the table filled per call
        from xcomp.backends.cpp.fused import cindex
        nb = prod(out_batch)
        t = lw.scratch(DType.I64, (nb,), "off")
        lw.emit(f"for (int64_t p = 0; p < {nb}; ++p) {t.ptr}[p] = {cindex(list(out_batch), st, 'p')};")
        return t.ptr
    offs = [sum(c * s for c, s in zip(idx, st)) for idx in np.ndindex(*out_batch)] if out_batch else [0]
    name = lw.fresh("off")
    lw.statics.append(f"static const int64_t {name}[{len(offs)}] = {{{', '.join(map(str, offs))}}};")
    return name


def scaled_matmul(lw, op, args, alpha: float, group):
    """`alpha * matmul` as one GEMM writing the result of `group` (a matmul epilogue that only
    scales: attention's 1 / sqrt(d)), or None when the product is not a float32 one of static matrices."""
    a, b = args
    if (op.results[0].type.dtype is not DType.F32 or any(x.dtype is not DType.F32 or len(x.shape) < 2 or
                                                         not all(isinstance(d, int) for d in x.shape) for x in args)):
        return None
    return _matmul(lw, op, args, alpha, lw.out(group))


@rule("matmul")
def _matmul(lw, op, args, alpha: float = 1.0, out=None):
    a, b = args
    y = out if out is not None else None if op in lw.into else lw.out(op)
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    ash, bsh = list(a.shape), list(b.shape)
    if len(ash) == 1:
        ash, ta = [1] + ash, False
    if len(bsh) == 1:
        bsh, tb = bsh + [1], False
    M, K = (ash[-1], ash[-2]) if ta else (ash[-2], ash[-1])
    N = bsh[-2] if tb else bsh[-1]
    out_batch = broadcast_shapes(tuple(ash[:-2]), tuple(bsh[:-2]))
    nb = prod(out_batch)
    if y is None:      # written into the buffer of the transpose that reads it (views.written_views)
        t = lw.into[op]
        lw.written[t] = z = lw.out(t)
        _matmul_view(lw, a, b, z, ta, tb, M, N, K, out_batch, alpha, written_strides(t))
        return [Buf(z.ptr, z.dtype, shape_of(op.results[0].type), ())]     # (read only by `t`)
    if y.numel == 0:
        return [y]
    if K == 0:
        lw.emit(f"xc_fill<{y.sty}>({y.ptr}, {y.numel}, xc_from<{y.sty}>(0.0));")
        return [y]
    if a.view is not None or b.view is not None or alpha != 1.0:
        return _matmul_view(lw, a, b, y, ta, tb, M, N, K, out_batch, alpha)
    if ((not isinstance(nb, int) or nb > 1) and not ta and all(d == 1 for d in bsh[:-2])
            and tuple(ash[:-2]) == tuple(out_batch)):   # (a run-time batch count may be 1: one GEMM all the same)
        # one operand (B) shared by every batch of a contiguous A: a single GEMM of nb * M rows
        ash, M, nb, out_batch = [nb * M, K], nb * M, 1, ()
    oa = _offsets(lw, ash[:-2], out_batch, M * K)
    ob = _offsets(lw, bsh[:-2], out_batch, K * N)
    flags = f"{'true' if ta else 'false'}, {'true' if tb else 'false'}"
    if a.dtype.is_float:
        lw.uses_blas = True
        fa, fb = to_f32(lw, a), to_f32(lw, b)
        fy = y if y.dtype is DType.F32 else lw.scratch(DType.F32, y.shape)
        pack = "nullptr"
        if b.dtype is DType.F32 and len(bsh) == 2 and b.ptr in {w.ptr for w in lw.weights.values()}:
            pack = f"&m->packs[{lw.packs}]"     # a weight: packed for the GEMM once, at its first product
            lw.packs += 1
        lw.emit(f"xc_matmul_f32({fy.ptr}, {fa.ptr}, {fb.ptr}, {nb}, {oa}, {ob}, {M}, {N}, {K}, {flags}, {pack});")
        from_f32(lw, fy, y)
    else:
        lw.emit(f"xc_matmul_any<{y.sty}>({y.ptr}, {a.ptr}, {b.ptr}, {nb}, {oa}, {ob}, {M}, {N}, {K}, {flags});")
    return [y]


def _matmul_view(lw, a: Buf, b: Buf, y: Buf, ta: bool, tb: bool, M, N, K, out_batch, alpha: float = 1.0,
                 ys: tuple | None = None):
    """A float32 matmul of static shapes whose operands may be strided views (views.py) and whose
    result may be written with strides `ys` (into a transpose's buffer, views.written_views): each
    matrix read in place with its leading dimension (a transposed view flips the operand's transpose
    flag), one offset per batch. An A over many batches whose B is one matrix: one GEMM of all rows
    when they are one run in A and in the result, else one GEMM per batch along the longest row dim."""
    sa, fa, lda = _layout(a)
    sb, fb, ldb = _layout(b)
    ys = ys or tuple(strides(y.shape))
    ldc = ys[-2] if M > 1 else N
    nb = prod(out_batch)
    if len(a.shape) > 2 and len(b.shape) == 2 and not ta and not fa:
        rows = tuple(a.shape[:-1])
        ra, rc = rows_collapse(rows + (K,), sa), rows_collapse(rows + (N,), ys)
        if ra is not None and rc is not None:
            lda, ldc, M, nb, out_batch, sa, ys = ra, rc, prod(rows), 1, (), (), ()
        else:     # rows along the longest dim, the others as batches
            r = max(range(len(rows)), key=lambda d: rows[d])
            lda, ldc, M = sa[r], ys[r], rows[r]
            keep = [d for d in range(len(rows)) if d != r]
            out_batch = tuple(rows[d] for d in keep)
            sa, ys, nb = tuple(sa[d] for d in keep) + (0, 0), tuple(ys[d] for d in keep) + (0, 0), prod(out_batch)
            a = Buf(a.ptr, a.dtype, out_batch + (M, K))
    oa = _view_offsets(lw, a.shape[:-2], sa[:-2], out_batch)
    ob = _view_offsets(lw, b.shape[:-2], sb[:-2], out_batch)
    oc = _view_offsets(lw, out_batch, ys[:-2], out_batch)
    pack = "nullptr"
    if b.view is None and len(b.shape) == 2 and b.ptr in {w.ptr for w in lw.weights.values()}:
        pack = f"&m->packs[{lw.packs}]"
        lw.packs += 1
    lw.uses_blas = True
    flag = lambda t: "true" if t else "false"
    lw.emit(f"xc_matmul_view_f32({y.ptr}, {a.ptr}, {b.ptr}, {nb}, {oa}, {ob}, {oc}, {M}, {N}, {K}, "
            f"{flag(ta != fa)}, {flag(tb != fb)}, {lda}, {ldb}, {ldc}, {float(alpha)!r}f, {pack});")
    return [y]


def _layout(x: Buf):
    """(strides, stored transposed, leading dimension) of a matmul operand."""
    st = simple_strides(x.view) if x.view is not None else tuple(strides(x.shape))
    flip, ld = gemm_layout(tuple(x.shape), st)
    return st, flip, ld


def _view_offsets(lw, batch_shape, batch_strides, out_batch) -> str:
    """A static table of each batch's element offset (dims of size 1 broadcast)."""
    lead = len(out_batch) - len(batch_shape)
    st = [0] * lead + [s if n != 1 else 0 for n, s in zip(batch_shape, batch_strides)]
    offs = [sum(c * s for c, s in zip(idx, st)) for idx in np.ndindex(*out_batch)] if out_batch else [0]
    name = lw.fresh("off")
    lw.statics.append(f"static const int64_t {name}[{len(offs)}] = {{{', '.join(map(str, offs))}}};")
    return name


def _direct_2d(lw, fy, fx, fw, fbias, geom, nsp, in_sp, k, out_sp, stride, lo, dil, planes) -> str:
    """The register-blocked direct kernel of 1-d/2-d convolutions (`xc_conv2d_direct_f32`), as a call
    without its closing parenthesis (an epilogue callback may follow). It reads a zero-padded copy of
    the input (rows Hp x Wp, wide enough for the last 8- or 16-pixel tile) unless the input needs no
    padding and every tile's reads fit in it, and the weights packed per block of output channels:
    once, in a model slot, when they are a weight; else per call into scratch."""
    lead = lambda v, fill: [fill] * (2 - nsp) + [int(t) for t in v]
    (in1, in2), (k1, k2), (out1, out2) = lead(in_sp, 1), lead(k, 1), lead(out_sp, 1)
    (st1, st2), (pd1, pd2), (dl1, dl2) = lead(stride, 1), lead(lo, 0), lead(dil, 1)
    V = 8 if out2 <= 8 else 16
    S = st2 if st2 in (1, 2) else 0
    Hp = (out1 - 1) * st1 + (k1 - 1) * dl1 + 1
    Wp = (-(-out2 // V) * V - 1) * st2 + (k2 - 1) * dl2 + 1
    copy = pd1 != 0 or pd2 != 0 or Hp > in1 or Wp > in2
    xp = lw.scratch(DType.F32, (planes * Hp * Wp,)).ptr if copy else "nullptr"
    if fw.dtype is DType.F32 and fw.ptr in {w.ptr for w in lw.weights.values()}:
        pack, wscratch = f"&m->packs[{lw.packs}]", "nullptr"
        lw.packs += 1
    else:
        pack, wscratch = "nullptr", lw.scratch(DType.F32, (fw.numel,)).ptr
    return (f"xc_conv2d_direct_f32<{V}, {S}>({fy.ptr}, {fx.ptr}, {fw.ptr}, {fbias}, {geom}, {xp}, {Hp}, {Wp}, "
            f"{pack}, {wscratch}")


@rule("conv")
def conv(lw, op, args, epilogue=None, out=None):
    """The rule of xc.conv. `epilogue(y, call)`, when given, is called instead of emitting the direct
    kernel's call text `call` (unclosed) when that kernel runs on float32 `y`: a fused elementwise
    epilogue then runs on each block of output rows as the kernel finishes it (fused.py). `out`: the
    buffer to write instead of the op's own (the epilogue's output, which it then updates in place)."""
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    y = out if out is not None else lw.out(op)
    nsp = len(w.shape) - 2
    batched = len(x.shape) == nsp + 2
    stride, lo, hi, dil, outpad = conv_geometry(op.attrs, nsp)
    if nsp > 3:
        from xcomp.errors import LoweringError
        raise LoweringError("the cpp target convolves up to 3 spatial dims")
    N = x.shape[0] if batched else 1
    cin = x.shape[1 if batched else 0]
    out_sp = y.shape[-nsp:]
    in_sp = x.shape[-nsp:]
    G = op.attrs["groups"]
    cout = y.shape[1 if batched else 0]
    pad3 = lambda v, fill: ", ".join(str(t) for t in list(v) + [fill] * (3 - nsp))
    geom = lw.fresh("conv")
    lw.const_table(
        f"static const xc_conv_geom {geom} = {{{nsp}, {N}, {cin}, {cout}, {G}, {{{pad3(in_sp, 1)}}}, "
        f"{{{pad3(w.shape[2:], 1)}}}, {{{pad3(out_sp, 1)}}}, {{{pad3(stride, 1)}}}, {{{pad3(lo, 0)}}}, "
        f"{{{pad3(dil, 1)}}}}};")
    if y.numel == 0:
        return [y]
    lw.uses_blas = True
    fx, fw = to_f32(lw, x), to_f32(lw, w)
    fbias = to_f32(lw, bias).ptr if bias is not None else "nullptr"
    fy = y if y.dtype is DType.F32 else lw.scratch(DType.F32, y.shape)
    if op.attrs["transposed"]:
        lw.emit(f"xc_conv_transpose_f32({fy.ptr}, {fx.ptr}, {fw.ptr}, {fbias}, {geom});")
    else:
        K = int(np.prod(w.shape[2:], dtype=np.int64))
        O = prod(out_sp)
        pointwise = K == 1 and all(s == 1 for s in stride) and all(p == 0 for p in lo) and tuple(out_sp) == tuple(in_sp)
        if not pointwise and (cin // G) * K <= DIRECT_MAX_TAPS and nsp <= 2:
            call = _direct_2d(lw, fy, fx, fw, fbias, geom, nsp, in_sp, w.shape[2:], out_sp, stride, lo, dil, N * cin)
            if epilogue is not None and fy is y:
                epilogue(y, call)
            else:
                lw.emit(call + ");")
        elif not pointwise and (cin // G) * K <= min(DIRECT_MAX_TAPS, DIRECT_3D_MAX_TAPS):
            lw.emit(f"xc_conv_direct_f32({fy.ptr}, {fx.ptr}, {fw.ptr}, {fbias}, {geom});")
        else:
            col = "nullptr" if pointwise else lw.scratch(DType.F32, (cin // G * K, O)).ptr
            lw.emit(f"xc_conv_f32({fy.ptr}, {fx.ptr}, {fw.ptr}, {fbias}, {geom}, {col});")
    from_f32(lw, fy, y)
    return [y]
