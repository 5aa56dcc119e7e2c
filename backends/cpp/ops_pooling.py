"""C++ rules of pooling: max/avg over (dilated, padded, ceil-mode) windows and adaptive windows,
one `xc_pool` helper over the last pooled dims (with torch's flat indices of the maxima)."""
from __future__ import annotations

from xcomp.backends.cpp.lower import rule
from xcomp.backends.cpp.sizes import prod
from xcomp.errors import LoweringError
from xcomp.ops.pooling import pool_geometry


def _pool(lw, op, args, mode: int, adaptive: bool):
    x = args[0]
    outs = [lw.out(op, i) for i in range(len(op.results))]
    y = outs[0]
    if adaptive:
        nsp = len(op.attrs["output_size"])
        k = s = p = d = (1,) * nsp
    else:
        k, s, p, d = pool_geometry(op.attrs, op.name[3:])
        nsp = len(k)
    if nsp > 3:
        raise LoweringError("the cpp target pools up to 3 dims")
    P = prod(x.shape[:len(x.shape) - nsp])
    pad3 = lambda v, fill: ", ".join(str(t) for t in list(v) + [fill] * (3 - len(v)))
    geom = lw.fresh("pool")
    cip = "true" if op.attrs.get("count_include_pad", True) else "false"
    div = op.attrs.get("divisor_override") or 0
    lw.const_table(
        f"static const xc_pool_geom {geom} = {{{nsp}, {P}, {{{pad3(x.shape[len(x.shape) - nsp:], 1)}}}, "
        f"{{{pad3(y.shape[len(y.shape) - nsp:], 1)}}}, {{{pad3(k, 1)}}}, {{{pad3(s, 1)}}}, {{{pad3(p, 0)}}}, "
        f"{{{pad3(d, 1)}}}, {'true' if adaptive else 'false'}, {cip}, {div}}};")
    idx = outs[1].ptr if len(outs) > 1 else "nullptr"
    if y.numel:
        lw.emit(f"xc_pool<{x.sty}>({y.ptr}, {idx}, {x.ptr}, {geom}, {mode});")
    return outs


rule("max_pool")(lambda lw, op, args: _pool(lw, op, args, 0, False))
rule("avg_pool")(lambda lw, op, args: _pool(lw, op, args, 1, False))
rule("adaptive_max_pool")(lambda lw, op, args: _pool(lw, op, args, 0, True))
rule("adaptive_avg_pool")(lambda lw, op, args: _pool(lw, op, args, 1, True))
