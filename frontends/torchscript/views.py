"""In-place writes through views: `x[:, i] = h` is `copy_(select(x, 1, i), h)` in TorchScript.

Converted functionally, the write gives a new value for the view; `write_back` carries it to the
tensor the view was taken from (`select` -> a scatter at the index, `slice` -> `slice_scatter`),
up the chain of views. A write through any other alias (reshape, transpose, expand, detach, ...)
is refused when the aliased tensor is read afterwards, so a program never silently misses a mutation.
"""
from __future__ import annotations

from xcomp.ir.core import Value
from xcomp.ir.types import DType
from xcomp.frontends.torchscript.symbolic import size_of

SCATTERS = ("aten::slice", "aten::select")
ALIASES = ("aten::view", "aten::reshape", "aten::transpose", "aten::unsqueeze", "aten::squeeze", "aten::expand",
           "aten::permute", "aten::t", "aten::narrow", "aten::diagonal", "aten::as_strided", "aten::flatten",
           "aten::unflatten", "aten::view_as", "aten::expand_as", "aten::alias", "aten::detach",
           "aten::contiguous", "aten::unbind", "aten::split", "aten::chunk", "aten::movedim", "aten::swapaxes",
           "aten::transpose_", "aten::squeeze_", "aten::unsqueeze_", "prim::ListUnpack")


def bases(v) -> list:
    """The TorchScript values a write to `v` also changes (the tensors `v` is a slice or index of)."""
    out = []
    node = v.node()
    while node.kind() in SCATTERS:
        v = node.inputsAt(0)
        out.append(v)
        node = v.node()
    return out


def _used_after(value, node) -> bool:
    try:
        return any(u.user.isAfter(node) for u in value.uses())
    except RuntimeError:  # positions in different blocks: assume the worst
        return True


def _check_aliases(target, writer) -> None:
    """Refuse a write through an alias when the tensor it views, or another view of that tensor, is
    read after the write (the write would be lost). Pieces of `chunk`/`split`/`unbind` do not
    overlap, so a write to one piece that nothing else reads (traced cells: `chunk` then `sigmoid_`)
    changes nothing visible."""
    path, node = [target], target.node()
    while node.kind() in ALIASES:
        path.append(node.inputsAt(0))
        node = path[-1].node()
    seen, todo = set(), [path[-1]]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v is not target and _used_after(v, writer):
            raise NotImplementedError(f"an in-place write through a {target.node().kind()} view of another tensor")
        for u in v.uses():
            user = u.user
            if user.kind() in ALIASES or user.kind() in SCATTERS:
                outs = list(user.outputs())
                todo += [o for o in outs if o in path] if user.kind() == "prim::ListUnpack" else outs


def write_back(cv, target, new: Value, writer=None) -> None:
    """After an in-place op (`writer`) gave `target` the value `new`, update the tensors it views."""
    node = target.node()
    kind = node.kind()
    if kind in ALIASES:
        _check_aliases(target, writer)
        return
    if kind not in SCATTERS:
        return
    base = node.inputsAt(0)
    env = cv.env
    args = [env[i] for i in node.inputs()]
    cx = cv.cx
    base_val = args[0]
    cx.types = [base_val.type]
    from xcomp.frontends.aten import ATEN
    if kind == "aten::slice" and _symbolic_slice(base_val, args):
        updated = _slice_scatter(cx, base_val, new, *(args + [None, None, None, 1])[1:5])
    elif kind == "aten::slice":
        dim, start, end, step = (args + [None, None, None, 1])[1:5]
        updated = ATEN["aten.slice_scatter.default"](cx, base_val, new, dim, start, end, step)
    elif isinstance(args[2], Value):  # select at an index known only at run time
        ax = args[1] % base_val.type.rank
        i = cx.cast(args[2], DType.I64)
        i = cx.op("where", cx.op("lt", i, cx.const(0, DType.I64)),
                  cx.op("add", i, cx.tensor(size_of(base_val.type.shape[ax]), DType.I64)), i)
        src = cx.op("reshape", cx.cast(new, base_val.type.dtype),
                    shape=tuple(base_val.type.shape[:ax]) + (1,) + tuple(base_val.type.shape[ax + 1:]))
        updated = cx.op("index_put", base_val, src, cx.op("reshape", i, shape=(1,)), axes=(ax,))
    else:
        updated = ATEN["aten.select_scatter.default"](cx, base_val, new, args[1], args[2])
    cv.rebind(base, updated)
    write_back(cv, base, updated, writer)


_INT_MAX = 2 ** 63 - 1


def _symbolic_slice(base: Value, args: list) -> bool:
    """A slice over a symbolic axis or with a symbolic bound (the aten slice_scatter wants static)."""
    dim = args[1] if len(args) > 1 and args[1] is not None else 0
    return isinstance(base.type.shape[dim % base.type.rank], str) or any(isinstance(a, str) for a in args[2:4])


def _slice_scatter(cx, base: Value, new: Value, dim, start, end, step) -> Value:
    """`base[..., start:end:step, ...] = new` over symbolic sizes: `xc.index_put` at an `xc.arange`
    of the positions (bounds as torch takes them: None, negative, past the end)."""
    from xcomp.ir import symbolic as sym
    ax = (dim or 0) % base.type.rank
    n = base.type.shape[ax]

    def bound(v, default):
        if v is None or (isinstance(v, int) and v >= _INT_MAX):
            return default
        v = str(v) if isinstance(v, str) else int(v)
        return sym.add(n, v) if isinstance(v, int) and v < 0 else v
    lo, hi = bound(start, 0), bound(end, n)
    idx = cx.op("arange", start=lo, end=hi, step=int(step or 1), dtype=DType.I64)
    return cx.op("index_put", base, cx.cast(new, base.type.dtype), idx, axes=(ax,))
