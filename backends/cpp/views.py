"""Strided views that float32 matmul operands read in place (no copy).

A chain of `xc.transpose`, `xc.slice` and `xc.reshape` between a buffer and the operand of a matmul
(attention's heads: the packed q/k/v projection reshaped, permuted, sliced and transposed per head)
is a strided view of that buffer whenever every matrix of the operand has one unit stride: the GEMM
then reads it with a leading dimension, a transpose flag and one offset per batch (ops_linalg), and
the chain emits nothing. `absorbed_views(program)` picks the view ops of `@main` whose results reach
only such operands (directly, through other absorbed views, or as the anchor operands of a matmul
epilogue group), and those whose result is contiguous anyway (a transpose of dims of size 1); each
of them lowers to a `Buf` with `view` (ops_shape), or a plain `Buf` at an offset when contiguous.
"""
from __future__ import annotations

from xcomp.ir.core import Operation, Program, Value
from xcomp.ir.types import DType, TensorType
from xcomp.ops.structural import FusionKind

VIEW_OPS = ("xc.transpose", "xc.slice", "xc.reshape")
MIN_ROWS = 64     # an A view over a shared B whose rows are no one run: GEMMs of this many rows at least


def contiguous(shape) -> tuple:
    """The view of a C-contiguous array of `shape`: per dim, its (size, stride) parts."""
    out, acc = [], 1
    for n in reversed(shape):
        out.append(((n, acc),) if n != 1 else ())
        acc *= n
    return tuple(reversed(out))


def simple_strides(view: tuple):
    """Element strides of a view whose every dim is one run (0 for dims of size 1), else None."""
    if any(len(d) > 1 for d in view):
        return None
    return tuple(d[0][1] if d else 0 for d in view)


def apply_view(op: Operation, view: tuple):
    """(element offset, view) of `op`'s result as a view of its input's `view`, or None.

    A view holds per dim the (size, stride) parts it is made of, outer first: a reshape that merges
    dims which are not one run keeps them as parts (attention's batch x heads), and a later reshape
    that splits them again gives back single strides."""
    out = tuple(op.results[0].type.shape)
    if 0 in out or any(n == 0 for d in view for n, _ in d):
        return None                      # (empty: nothing to read)
    if op.name == "xc.transpose":
        return 0, tuple(view[p] for p in op.attrs["perm"])
    if op.name == "xc.slice":
        ax = op.attrs["axis"] % len(view)
        start, step = op.attrs["start"], op.attrs.get("step", 1)
        if not isinstance(start, int) or not isinstance(step, int) or len(view[ax]) > 1:
            return None
        st = view[ax][0][1] if view[ax] else 0
        dim = ((out[ax], st * step),) if out[ax] != 1 else ()
        return start * st, view[:ax] + (dim,) + view[ax + 1:]
    seq = [p for d in view for p in d]
    res, i = [], 0
    for n in out:
        group, need = [], n
        while need > 1:
            if i >= len(seq):
                return None
            size, st = seq[i]
            if size <= need:
                if need % size:
                    return None
                group.append((size, st))
                need //= size
                i += 1
            else:
                if size % need:
                    return None
                group.append((need, st * (size // need)))
                seq[i] = (size // need, st)
                need = 1
        res.append(_merged(group))
    return (0, tuple(res)) if i == len(seq) else None


def _merged(parts: list) -> tuple:
    out = []
    for size, st in parts:
        if out and out[-1][1] == size * st:
            out[-1] = (out[-1][0] * size, st)
        else:
            out.append((size, st))
    return tuple(out)


def gemm_layout(shape: tuple, st: tuple):
    """How a GEMM reads each matrix (last two dims) of a view: (stored transposed, leading
    dimension), or None when no stride of the matrix is 1 (or its rows overlap)."""
    (r, c), (sr, sc) = shape[-2:], st[-2:]
    if (c == 1 or sc == 1) and (r == 1 or sr >= c):
        return False, max(sr if r > 1 else c, 1)
    if (r == 1 or sr == 1) and (c == 1 or sc >= r):
        return True, max(sc if c > 1 else r, 1)
    return None


def rows_collapse(shape: tuple, st: tuple):
    """The row stride when the leading dims and the rows of a view are one run of rows (one GEMM
    over all of them), else None."""
    dims = [(n, s) for n, s in zip(shape[:-1], st[:-1]) if n != 1]
    if not dims:
        return max(shape[-1], 1)
    if any(dims[k][1] != dims[k + 1][0] * dims[k + 1][1] for k in range(len(dims) - 1)):
        return None
    return dims[-1][1]


def absorbed_views(program: Program) -> set:
    """The view ops of `@main` that lower to strided views (see the module docstring)."""
    body = program.main.body
    layout: dict[Value, tuple] = {}          # value -> (shape, strides) for view results
    for op in body.ops:
        if op.name not in VIEW_OPS or not _static(op.operands[0]) or not _static(op.results[0]):
            continue
        x = op.operands[0]
        if x.type.dtype is not DType.F32:
            continue
        v = apply_view(op, layout[x] if x in layout else contiguous(tuple(x.type.shape)))
        if v is not None:
            layout[op.results[0]] = v[1]
    uses = _uses(program)
    accepted: set = set()
    for op in reversed(body.ops):
        v = op.results[0] if op.results else None
        if v in layout and (is_contiguous(v.type.shape, layout[v]) or uses.get(v) and all(
                _takes_view(top, inner, v, layout, accepted) for top, inner in uses[v])):
            accepted.add(op)
    return accepted


def is_contiguous(shape, view: tuple) -> bool:
    """Whether a view is C-contiguous storage of `shape` (from its offset on): a transpose that only
    moves dims of size 1, a slice of the leading dim; then any reader may take it as it is."""
    return simple_strides(view) == simple_strides(contiguous(tuple(shape)))


def written_views(program: Program) -> dict:
    """{matmul op: transpose op} for the float32 matmuls of `@main` whose result only a transpose
    that keeps rows reads (attention's heads merged back): the GEMM writes each matrix of its
    result straight into the transpose's buffer, with a leading dimension and per-batch offsets."""
    uses = _uses(program)
    out = {}
    for op in program.main.body.ops:
        vals = list(op.operands) + list(op.results)
        if op.name != "xc.matmul" or not all(_static(v) and v.type.dtype is DType.F32 and len(v.type.shape) >= 2
                                             and all(d > 0 for d in v.type.shape) for v in vals):
            continue
        us = uses.get(op.results[0], [])
        if len(us) == 1 and us[0][0] is not None and us[0][0] is us[0][1] and us[0][0].name == "xc.transpose":
            perm = list(us[0][0].attrs["perm"])
            if perm[-1] == len(perm) - 1:
                out[op] = us[0][0]
    return out


def written_strides(t: Operation) -> tuple:
    """Element strides, in the transpose `t`'s result, of each dim of its operand."""
    perm = list(t.attrs["perm"])
    zs = strides(t.results[0].type.shape)
    return tuple(zs[perm.index(k)] for k in range(len(perm)))


def strides(shape) -> list[int]:
    """Element strides of a C-contiguous array of `shape`."""
    out, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        out[i] = acc
        acc *= shape[i]
    return out


def _uses(program: Program) -> dict:
    """value -> [(top-level op of @main, the op nested in it that reads the value)] ((None, None): returned)."""
    uses: dict[Value, list] = {}
    for o in program.main.body.ops:
        for inner in o.walk():
            for u in inner.operands:
                uses.setdefault(u, []).append((o, inner))
    for r in program.main.outputs:
        uses.setdefault(r, []).append((None, None))
    return uses


def _static(v: Value) -> bool:
    return isinstance(v.type, TensorType) and all(isinstance(d, int) for d in v.type.shape)


def _takes_view(top, inner, v: Value, layout: dict, accepted: set) -> bool:
    """Whether the use of `v` by `inner` (nested in the top-level op `top`) reads a strided view."""
    if top is None or inner is not top:
        return False
    if top.name in VIEW_OPS:
        return top in accepted
    if top.name == "xc.matmul":
        return all(_matmul_takes(top, i, v, layout) for i, o in enumerate(top.operands) if o is v)
    if top.name == "xc.fused" and top.attrs.get("kind") == FusionKind.MATMUL_EPILOGUE:
        block = top.regions[0].block
        anchor = block.ops[0]
        args = [a for a, o in zip(block.args, top.operands) if o is v]
        return anchor.name == "xc.matmul" and all(
            a in anchor.operands and all(a not in o.operands for o in block.ops[1:])
            and all(_matmul_takes(anchor, i, v, layout) for i, o in enumerate(anchor.operands) if o is a)
            for a in args) and len(v.type.shape) >= 3   # (2-d anchors may run in row blocks: fused.py)
    return False


def _matmul_takes(mm: Operation, i: int, v: Value, layout: dict) -> bool:
    """Whether operand `i` of matmul `mm` may be the view of `v`: each matrix read with a leading
    dimension, and an A whose B is one matrix for every batch read as one GEMM."""
    shape, st = tuple(v.type.shape), simple_strides(layout[v])
    other = mm.operands[1 - i].type
    if len(shape) < 2 or len(other.shape) < 2 or other.dtype is not DType.F32 or st is None \
            or gemm_layout(shape, st) is None:
        return False
    if i == 0 and len(shape) > 2 and len(other.shape) <= 2:   # rows of one GEMM per batch, at least MIN_ROWS
        return not mm.attrs["transpose_a"] and not gemm_layout(shape, st)[0] and (
            rows_collapse(shape, st) is not None or max(shape[:-1]) >= MIN_ROWS)
    return True
