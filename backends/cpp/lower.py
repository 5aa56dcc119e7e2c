"""The C++ lowering: the shared `Lowering` driver with C++ buffers as values and lines as output.

Every IR value is a `Buf`: a C pointer expression, its dtype and shape (host scalars are
one-element buffers); a dim is an `int`, or a `Sz` (sizes.py) where the program's size is symbolic,
which renders as a C++ expression over the sizes the entry point takes. Op rules (`table`, filled by the `ops_*` modules) append statements with
`emit` and get result buffers from `out`; region rules (`REGION_OPS`) write C++ `if`/`for` around
the lowered bodies. Buffers of `@main`'s intermediates come from the memory plan
(`xcomp.passes.memory.plan_memory`): buffers the plan shares are one arena slot; values the plan
does not cover (region bodies, copies of views, scratch) get slots of their own after them. Results
that `@main` returns are written straight into the caller's output buffers where possible.

Lists (`!xc.list<T>`, TorchScript lists a loop or branch appends to) are `xc_list` variables
(templates/cpp/ops.h): a growable run of elements of one byte size (the element type's; a size
expression where it is symbolic). A rule updates a list in place when the IR value it replaces is
read no more and the op runs once per value (in the value's block or a branch of an `xc.if` there,
not in a loop body: `reusable`), and region rules move lists rather than copy them by the same rule,
so a loop appending n elements (in a branch or not) costs O(n), not O(n^2). A list that
`@main` returns is moved into the model (`xc_model::lists`) and its output slot is an
`xc_list_view` (count and data) the caller reads after the call (unit.py).

Symbolic sizes: slots of a static size keep literal offsets from the arena's start (a static
program's code is what it always was); slots whose size is symbolic follow them, at offsets the
entry point computes from the call's sizes (`xo<k>`, `prologue`), and the arena grows when a call
needs more than it has (never shrinks, so a size already seen allocates nothing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from xcomp.backends.cpp.sizes import PREFIX, NeedsStaticSizes, Sz, cpp, dims, names_of, prod
from xcomp.backends.cpp.views import absorbed_views, written_views
from xcomp.backends.kernels.exprs import CPP_DIALECT
from xcomp.backends.lowering import Lowering, call_func
from xcomp.errors import LoweringError
from xcomp.ir.core import Operation, Program, Value
from xcomp.ir.types import DType, ListType, NoneType, ScalarType, TensorType
from xcomp.passes.memory import plan_memory

ALIGN = 64


@dataclass
class Buf:
    """A tensor in C++: pointer expression `ptr` to C-contiguous storage of `shape`, or, with `view`,
    a strided view of storage that starts at `ptr` (views.py: per dim its (size, stride) parts)."""

    ptr: str
    dtype: DType
    shape: tuple
    view: tuple | None = None

    @property
    def numel(self):
        return prod(self.shape)

    @property
    def sty(self) -> str:
        return sty(self.dtype)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass
class ListBuf:
    """A host list (`!xc.list<T>`): a C++ `xc_list` variable of elements of one static type."""

    ptr: str
    element: object            # the element's IR type

    @property
    def elem_bytes(self):
        t = self.element
        return prod(shape_of(t)) * t.dtype.itemsize


def sty(dt: DType) -> str:
    """The C++ storage type of `dt`."""
    return CPP_DIALECT.ctype(dt)


def load(dt: DType, expr: str) -> str:
    """`expr` (a storage element) as its compute type (float for every float dtype)."""
    return f"xc_tof({expr})" if dt in (DType.F16, DType.BF16, DType.F64) else expr


def store(dt: DType, expr: str) -> str:
    """A compute value `expr` as storage of `dt`."""
    if dt in (DType.F16, DType.BF16, DType.F64):
        return f"xc_fromf<{sty(dt)}>({expr})"
    return f"({sty(dt)})({expr})" if dt is not DType.BOOL else f"(bool)({expr})"


def shape_of(t) -> tuple:
    """The dims of a tensor type (ints, `Sz` where symbolic); () for a host scalar."""
    if isinstance(t, ScalarType):
        return ()
    if not isinstance(t, TensorType):
        raise LoweringError(f"the cpp target needs tensors or host scalars, got {t}")
    return dims(t.shape)


def c_literal(dt: DType, v) -> str:
    """A C++ initializer of one storage element of `dt`."""
    if dt is DType.F16:
        return f"{{{int(np.array([v], np.float16).view(np.uint16)[0])}}}"
    if dt is DType.BF16:
        return f"{{{_bf16_bits(float(v))}}}"
    if dt.is_float:
        f = float(v)
        if math.isnan(f):
            return "XC_NAN"
        if math.isinf(f):
            return "XC_INF" if f > 0 else "-XC_INF"
        return repr(f) if dt is DType.F64 else f"{f!r}f"
    if dt.is_bool:
        return "true" if v else "false"
    i = int(v)
    if i == -2 ** 63:
        return "INT64_MIN"
    return f"{i}LL" if abs(i) >= 2 ** 31 else str(i)


def _bf16_bits(f: float) -> int:
    """bfloat16 bits of `f`, rounded to nearest even (NaN stays a quiet NaN)."""
    b = int(np.array([f], np.float32).view(np.uint32)[0])
    if math.isnan(f):
        return ((b >> 16) | 0x40) & 0xFFFF
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF


Rule = Callable[["CppLowering", Operation, list], list]


class CppLowering(Lowering):
    """Lowers `@main` of a program into the body of `xc_run` (see the module docstring)."""

    table: dict[str, Rule] = {}
    region_ops: dict = {}

    def __init__(self, program: Program):
        super().__init__(program)
        self.lines: list[str] = []
        self.depth = 1
        self.statics: list[str] = []          # file-scope constant arrays
        self.weight_order: list[str] = []
        self.uses_blas = False
        self.packs = 0                        # weights the GEMM packs at their first product (xc_model::packs)
        self.views = absorbed_views(program)  # view ops lowered to strided Bufs (views.py)
        self.into = written_views(program)    # matmul -> the transpose whose buffer it writes
        self.written: dict = {}               # such a transpose -> its buffer, once written
        self.plan = plan_memory(program, views=self.views,
                                into={m.results[0]: t.results[0] for m, t in self.into.items()})
        self.sizes = names_of(a.type.shape for a in program.main.args if isinstance(a.type, TensorType))
        self.dynamic: list = []               # bytes (Sz) of each slot at a run-time offset xo<k>
        self.offsets: list = []               # byte offset of each planned buffer (int or "xo<k>")
        size = 0
        for nbytes in self.plan.buffer_sizes:
            nbytes = Sz.of(nbytes or 0)
            if isinstance(nbytes, Sz):
                self.offsets.append(self._dynamic_slot(nbytes))
                continue
            self.offsets.append(size)
            size += _aligned(nbytes)
        self.arena = size                     # bytes of the static slots
        self.slot_of: dict[Value, int] = {}
        self.direct: dict[Value, Buf] = {}    # @main results written into the caller's outputs
        self.counter = 0
        self._last_use: dict = {}             # block -> {value: index of the block's op that uses it last}
        self._owner = {b: o for o in program.walk() for r in o.regions for b in r.blocks}  # block -> its op
        self.list_outputs: list[int] = []     # indices of @main's results that are lists

    # names and lines ---------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, *lines: str) -> None:
        pad = "  " * self.depth
        for line in lines:
            for part in line.split("\n"):
                self.lines.append(pad + part if part else "")

    def slot(self, t, prefix: str = "r"):
        """A fresh value of IR type `t` (a list variable or an arena buffer of its own)."""
        if isinstance(t, ListType):
            name = self.fresh("l")
            self.emit(f"xc_list {name};")
            return ListBuf(name, t.element)
        if isinstance(t, NoneType):
            return Buf("nullptr", DType.BOOL, ())
        return self.scratch(t.dtype, shape_of(t), prefix)

    def _dynamic_slot(self, nbytes: Sz) -> str:
        bad = sorted(set(names_of([(nbytes,)])) - set(self.sizes))
        if bad:
            raise NeedsStaticSizes(f"size(s) {', '.join(bad)} are not bound by the inputs' shapes")
        self.dynamic.append(nbytes)
        return f"xo{len(self.dynamic) - 1}"

    def scratch(self, dtype: DType, shape: tuple, prefix: str = "t") -> Buf:
        """A buffer of its own in the arena (not shared), declared at this point."""
        nbytes = prod(shape) * dtype.itemsize
        if isinstance(nbytes, Sz):
            offset = self._dynamic_slot(nbytes)
        else:
            offset = self.arena
            self.arena += _aligned(max(nbytes, 1))
        name = self.fresh(prefix)
        self.emit(f"{sty(dtype)}* {name} = ({sty(dtype)}*)(xc_arena + {offset});")
        return Buf(name, dtype, tuple(shape))

    def out(self, op: Operation, i: int = 0) -> Buf:
        """The buffer result `i` of `op` is written to (planned, direct output, or own slot)."""
        v = op.results[i]
        if v in self.direct:
            return self.direct[v]
        if isinstance(v.type, (ListType, NoneType)):
            return self.slot(v.type)
        dt = v.type.dtype
        shape = shape_of(v.type)
        if v in self.plan.buffer_of:
            name = self.fresh("b")
            self.emit(f"{sty(dt)}* {name} = ({sty(dt)}*)(xc_arena + {self.offsets[self.plan.buffer_of[v]]});")
            return Buf(name, dt, shape)
        return self.scratch(dt, shape, "b")

    def const_table(self, decl: str) -> None:
        """A constant table `static const T name[n] = {...};`: at file scope, or in the body (not
        static) when it holds symbolic sizes."""
        if PREFIX in decl:
            self.emit(decl.removeprefix("static "))
        else:
            self.statics.append(decl)

    def prologue(self) -> list[str]:
        """Lines that start `xc_run_sizes` of a program with symbolic sizes: the size variables, the
        run-time offsets of the symbolic slots, and the arena grown to this call's need."""
        lines = [f"const int64_t {PREFIX}{n} = xc_sizes[{i}];" for i, n in enumerate(self.sizes)]
        lines.append(f"int64_t xc_need = {self.arena};")
        for k, nbytes in enumerate(self.dynamic):
            lines.append(f"const int64_t xo{k} = xc_need; xc_need += xc_align({cpp(nbytes.d)});")
        return lines

    def constant(self, dt: DType, values) -> Buf:
        """A file-scope array holding `values` (flattened)."""
        arr = np.asarray(values)
        name = self.fresh("k")
        flat = arr.reshape(-1).tolist() or [0]
        self.statics.append(f"static {sty(dt)} {name}[{len(flat)}] = {{{', '.join(c_literal(dt, v) for v in flat)}}};")
        return Buf(name, dt, tuple(arr.shape))

    def reusable(self, v: Value, op: Operation) -> bool:
        """Whether `op` may take over `v`'s storage (update a list in place, move it): `op` uses `v`
        once (its own regions included), no later op reads `v`, and `op` runs at most once per `v`:
        in the block that defines `v`, or in branches of `xc.if`s there (only one branch runs), not
        in a loop body that may run it again. A function's arguments are the caller's: never."""
        home = v.owner if v.op is None else v.op.parent
        if sum(o.operands.count(v) for o in op.walk()) != 1 or (v.op is None and home.parent is None):
            return False
        block, at = op.parent, op
        while True:
            last = self._last_uses(block)
            if last.get(v) != last[at]:          # read again after `at` in its block
                return False
            if block is home:
                return True
            at = self._owner.get(block)
            if at is None or at.name != "xc.if":
                return False
            block = at.parent

    def _last_uses(self, block) -> dict:
        """{value or op: index of the op of `block` that uses it last / holds it} (nested uses count)."""
        if block not in self._last_use:
            last = self._last_use[block] = {}
            for i, top in enumerate(block.ops):
                for o in top.walk():
                    for u in o.operands:
                        last[u] = i
                last[top] = i
        return self._last_use[block]

    def copy(self, dst, src, move: bool = False) -> None:
        """`dst = src` (a memmove of buffers; lists assigned, or moved when `move` and `src` is dead)."""
        if isinstance(dst, ListBuf):
            if dst.ptr != src.ptr:
                self.emit(f"{dst.ptr} = std::move({src.ptr});" if move else f"{dst.ptr} = {src.ptr};")
            return
        if dst.ptr == "nullptr" or src.ptr == "nullptr":
            return
        if dst.ptr != src.ptr and dst.nbytes != 0:
            self.emit(f"std::memmove({dst.ptr}, {src.ptr}, {dst.nbytes});")

    def truth(self, b: Buf) -> str:
        return f"({load(b.dtype, b.ptr + '[0]')} != 0)"

    # the driver's hooks --------------------------------------------------------------------------
    def weight(self, name: str, type) -> Buf:
        if name not in self.program.weights:
            raise LoweringError(f"weight {name!r} is not in the program")
        idx = len(self.weight_order)
        self.weight_order.append(name)
        dt = type.dtype
        ptr = f"w{idx}"
        self.emit(f"{sty(dt)}* {ptr} = ({sty(dt)}*)m->w[{idx}];")
        return Buf(ptr, dt, shape_of(type))

    def apply(self, op: Operation, args: list) -> list:
        try:
            return list(self.table[op.name](self, op, args))
        except NeedsStaticSizes as e:
            e.op = e.op or op.name           # the first op that needs static sizes
            raise

    def main(self) -> tuple[list, list]:
        """Lower `@main`; (input bufs, output bufs) in order."""
        func = self.program.main
        ins = []
        for i, a in enumerate(func.args):
            shape_of(a.type)          # tensors and host scalars only (LoweringError otherwise)
            dt = a.type.dtype
            self.emit(f"{sty(dt)}* x{i} = ({sty(dt)}*)in[{i}];")
            ins.append(Buf(f"x{i}", dt, shape_of(a.type)))
        outs = []
        returned = func.outputs
        for i, v in enumerate(returned):
            if isinstance(v.type, ListType):   # element type: a tensor or host scalar, like an output
                shape_of(v.type.element)
                self.list_outputs.append(i)
                self.emit(f"xc_list_view* y{i} = (xc_list_view*)out[{i}];")
                outs.append(ListBuf(f"y{i}", v.type.element))
                continue
            shape_of(v.type)
            dt = v.type.dtype
            self.emit(f"{sty(dt)}* y{i} = ({sty(dt)}*)out[{i}];")
            outs.append(Buf(f"y{i}", dt, shape_of(v.type)))
            if (v.op is not None and v.op.parent is func.body and returned.count(v) == 1
                    and v.op.name not in ("xc.reshape", "xc.weight", "xc.constant", "xc.dense",
                                          "xc.scalar")):
                self.direct[v] = outs[-1]
        results = self.call(func, ins)
        for o, r in zip(outs, results):
            if not isinstance(o, ListBuf):
                self.copy(o, r)
        lists = [r.ptr for o, r in zip(outs, results) if isinstance(o, ListBuf)]
        for k, (o, r) in enumerate((o, r) for o, r in zip(outs, results) if isinstance(o, ListBuf)):
            held = f"m->lists[{k}]"   # the model keeps the list until the next call
            self.emit(f"{held} = std::move({r.ptr});" if lists.count(r.ptr) == 1 else f"{held} = {r.ptr};",
                      f"{o.ptr}->n = {held}.n; {o.ptr}->data = {held}.data.data();")
        return ins, outs

    def region_body(self, block, args: list) -> list:
        """Lower an isolated block (a fused group's body) inline, op by op."""
        return self.block(block, dict(zip(block.args, args)))

    def region(self, block, env: dict) -> list:
        """Lower a nested block one level deeper."""
        self.depth += 1
        try:
            return self.block(block, env)
        finally:
            self.depth -= 1


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# -- region rules -------------------------------------------------------------------------------
def _lower_if(lw: CppLowering, op: Operation, args: list, env: dict) -> list:
    results = [lw.slot(r.type) for r in op.results]
    lw.emit(f"if {lw.truth(args[0])} {{")
    for k, region in enumerate(op.regions):
        if k:
            lw.emit("} else {")
        ys = lw.region(region.block, dict(env))
        lw.depth += 1
        end = region.block.ops[-1]
        for r, y, v in zip(results, ys, end.operands):
            lw.copy(r, y, move=lw.reusable(v, end))
        lw.depth -= 1
    lw.emit("}")
    return results


def _lower_loop(lw: CppLowering, op: Operation, args: list, env: dict) -> list:
    trip, cond, init = args[0], args[1], args[2:]
    carried = [lw.slot(r.type) for r in op.results]
    temps = [lw.slot(r.type, "n") for r in op.results]
    it = lw.scratch(DType.I64, (), "i")
    for c, a, v in zip(carried, init, op.operands[2:]):
        lw.copy(c, a, move=lw.reusable(v, op))
    go = lw.fresh("go")
    n = lw.fresh("trip")
    lw.emit(f"bool {go} = {lw.truth(cond)};", f"const int64_t {n} = (int64_t)({load(trip.dtype, trip.ptr + '[0]')});",
            f"for (int64_t it = 0; {go} && it < {n}; ++it) {{")
    body = op.regions[0].block
    lw.depth += 1
    lw.emit(f"{it.ptr}[0] = it;")
    lw.depth -= 1
    inner = dict(env)
    inner.update(zip(body.args, [it] + carried))
    ys = lw.region(body, inner)
    lw.depth += 1
    lw.emit(f"{go} = {lw.truth(ys[0])};")
    end = body.ops[-1]
    for t, y, v in zip(temps, ys[1:], end.operands[1:]):
        lw.copy(t, y, move=lw.reusable(v, end))   # (an outer list yielded as it is stays: copied)
    for c, t in zip(carried, temps):
        lw.copy(c, t, move=True)
    lw.depth -= 1
    lw.emit("}")
    return carried


def _lower_fused(lw: CppLowering, op: Operation, args: list, env: dict) -> list:
    from xcomp.backends.cpp.fused import emit_group
    return emit_group(lw, op, args)


CppLowering.region_ops = {"xc.if": _lower_if, "xc.loop": _lower_loop, "xc.fused": _lower_fused,
                          "xc.call": call_func}


def rule(*names: str):
    """Decorator: register a rule `fn(lowering, op, args) -> list[Buf]` for op names."""
    def register(fn):
        for n in names:
            CppLowering.table[n if "." in n else f"xc.{n}"] = fn
        return fn
    return register
