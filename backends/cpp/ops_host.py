"""C++ rules of host values: TorchScript lists (`xc_list` variables, elements copied in), None, and
`xc.raise` (the run fails with the scripted message). The message reaches the source as byte
values, never as text."""
from __future__ import annotations

from xcomp.backends.cpp.lower import Buf, ListBuf, rule
from xcomp.ir.types import DType


@rule("none")
def _none(lw, op, args):
    return [Buf("nullptr", DType.BOOL, ())]


@rule("list")
def _list(lw, op, args):
    out = lw.out(op)
    for a in args:
        lw.emit(f"{out.ptr}.push({a.ptr}, {out.elem_bytes});")
    return [out]


@rule("list_append")
def _list_append(lw, op, args):
    if lw.reusable(op.operands[0], op):   # the old list dies here: append in place (a loop's O(1) step)
        out = args[0]
    else:
        out = lw.out(op)
        lw.copy(out, args[0])
    lw.emit(f"{out.ptr}.push({args[1].ptr}, {out.elem_bytes});")
    return [out]


@rule("list_get")
def _list_get(lw, op, args):
    lst, i = args
    out = lw.out(op)
    lw.emit(f"if (!{lst.ptr}.get((int64_t){i.ptr}[0], {out.ptr}, {ListBuf(lst.ptr, lst.element).elem_bytes})) "
            "return xc_fail(m, \"list index out of range\");")
    return [out]


@rule("list_len")
def _list_len(lw, op, args):
    out = lw.out(op)
    lw.emit(f"{out.ptr}[0] = {args[0].ptr}.n;")
    return [out]


@rule("raise")
def _raise(lw, op, args):
    name = lw.fresh("msg")
    data = list(op.attrs["message"].encode("utf-8")) + [0]
    lw.statics.append(f"static const char {name}[{len(data)}] = {{{', '.join(map(str, data))}}};")
    lw.emit(f"return xc_fail(m, {name});")
    return []
