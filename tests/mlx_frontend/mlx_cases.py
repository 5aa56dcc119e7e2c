"""MLX functions that each make `mx.export_function` report one primitive, with their inputs: the
table the primitive test runs over shapes and dtypes (the OpInfo idea, over MLX ops)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mlx.core as mx
import numpy as np

F32, F16, BF16, I32, BOOL = mx.float32, mx.float16, mx.bfloat16, mx.int32, mx.bool_
FLOATS = (F32, F16)
SHAPES = ((3, 4), (2, 3, 5))


def make(kind: str, shape, dtype, rng: np.random.Generator) -> mx.array:
    """A random input: `kind` picks the domain (f: normal, pos: (0.5, 2), unit: (-0.9, 0.9),
    ge1: (1.1, 3), int: [-5, 5], nz: nonzero ints, small: [0, 4), bin: [0, 2), bool)."""
    draw = {
        "f": lambda: rng.standard_normal(shape),
        "pos": lambda: rng.uniform(0.5, 2.0, shape),
        "unit": lambda: rng.uniform(-0.9, 0.9, shape),
        "ge1": lambda: rng.uniform(1.1, 3.0, shape),
        "int": lambda: rng.integers(-5, 6, shape),
        "nz": lambda: rng.choice([-3, -2, -1, 1, 2, 3], shape),
        "small": lambda: rng.integers(0, 4, shape),
        "bin": lambda: rng.integers(0, 2, shape),
        "bool": lambda: rng.random(shape) > 0.5,
    }[kind]()
    return mx.array(np.asarray(draw)).astype(dtype)


@dataclass
class Case:
    """`fn` reports `primitive` when exported. `inputs` are (kind, shape or None for the case shape,
    dtype or None for the case dtype); `compare` maps (got, expected) to what must agree."""

    primitive: str
    fn: Callable
    inputs: tuple
    dtypes: tuple = FLOATS
    shapes: tuple = SHAPES
    compare: Callable | None = None
    name: str = ""
    prepare: Callable | None = None  # turns the random inputs into the arguments (outside the capture)

    def args(self, shape, dtype, rng):
        args = [make(k, shape if s is None else s, dtype if d is None else d, rng) for k, s, d in self.inputs]
        return self.prepare(*args) if self.prepare else args


def x(kind="f"):
    return (kind, None, None)


def sorted_along_last(got, expected):
    return np.sort(np.asarray(got), -1), np.sort(np.asarray(expected), -1)


def _unary(prim, fn, kind="f", dtypes=FLOATS, name=""):
    return Case(prim, fn, (x(kind),), dtypes, name=name or prim)


def _binary(prim, fn, kinds=("f", "f"), dtypes=FLOATS, name=""):
    return Case(prim, fn, (x(kinds[0]), x(kinds[1])), dtypes, name=name or prim)


INTS = (I32, mx.int16)
CASES = [
    _unary("Abs", mx.abs), _unary("ArcCos", mx.arccos, "unit"), _unary("ArcCosh", mx.arccosh, "ge1"),
    _unary("ArcSin", mx.arcsin, "unit"), _unary("ArcSinh", mx.arcsinh), _unary("ArcTan", mx.arctan),
    _unary("ArcTanh", mx.arctanh, "unit"), _unary("Ceil", mx.ceil), _unary("Cos", mx.cos),
    _unary("Cosh", mx.cosh), _unary("Erf", mx.erf), _unary("ErfInv", mx.erfinv, "unit", (F32,)),
    _unary("Exp", mx.exp), _unary("Expm1", mx.expm1), _unary("Floor", mx.floor),
    _unary("Log1p", mx.log1p, "pos"), _unary("LogicalNot", mx.logical_not, "bool", (BOOL,)),
    _unary("Negative", mx.negative), _unary("Round", mx.round, dtypes=(F32,)), _unary("Sigmoid", mx.sigmoid),
    _unary("Sign", mx.sign), _unary("Sin", mx.sin), _unary("Sinh", mx.sinh), _unary("Square", mx.square),
    _unary("Tan", mx.tan, "unit"), _unary("Tanh", mx.tanh),
    _unary("Log", mx.log, "pos", name="Log e"), _unary("Log", mx.log2, "pos", name="Log 2"),
    _unary("Log", mx.log10, "pos", name="Log 10"),
    _unary("Sqrt", mx.sqrt, "pos", name="Sqrt"), _unary("Sqrt", mx.rsqrt, "pos", name="Rsqrt"),
    _unary("AsType", lambda a: a.astype(I32), "f", name="AsType float->int"),
    _unary("AsType", lambda a: a.astype(F32), "int", INTS, name="AsType int->float"),
    _binary("Add", mx.add), _binary("Add", mx.add, ("int", "int"), INTS, name="Add int"),
    _binary("Subtract", mx.subtract), _binary("Multiply", mx.multiply), _binary("Divide", mx.divide),
    _binary("FloorDivide", mx.floor_divide, ("f", "pos")),
    _binary("FloorDivide", mx.floor_divide, ("int", "nz"), INTS, name="FloorDivide int"),
    _binary("Remainder", mx.remainder, ("f", "pos")),
    _binary("Remainder", mx.remainder, ("int", "nz"), INTS, name="Remainder int"),
    _binary("Power", mx.power, ("pos", "f")), _binary("Maximum", mx.maximum), _binary("Minimum", mx.minimum),
    _binary("ArcTan2", mx.arctan2), _binary("NotEqual", mx.not_equal, ("small", "small"), INTS),
    _binary("Equal", mx.equal, ("small", "small"), INTS), _binary("Greater", mx.greater),
    _binary("GreaterEqual", mx.greater_equal, ("small", "small"), INTS), _binary("Less", mx.less),
    _binary("LessEqual", mx.less_equal), _binary("LogicalAnd", mx.logical_and, ("bool", "bool"), (BOOL,)),
    _binary("LogicalOr", mx.logical_or, ("bool", "bool"), (BOOL,)),
    _binary("BitwiseBinary", mx.bitwise_and, ("int", "int"), INTS, name="BitwiseAnd"),
    _binary("BitwiseBinary", mx.bitwise_or, ("int", "int"), INTS, name="BitwiseOr"),
    _binary("BitwiseBinary", mx.bitwise_xor, ("int", "int"), INTS, name="BitwiseXor"),
    _binary("BitwiseBinary", mx.left_shift, ("small", "small"), INTS, name="LeftShift"),
    _binary("BitwiseBinary", mx.right_shift, ("small", "small"), INTS, name="RightShift"),
    Case("BitwiseBinary", lambda a: (a << 30) >> 29, (x("int"),), (mx.uint32,), name="LeftShift uint32 wraps"),
    Case("Subtract", lambda a, b: a - b, (x("small"), x("small")), (mx.uint32, mx.uint16), name="Subtract unsigned wraps"),
    _binary("DivMod", lambda a, b: mx.divmod(a, b), ("int", "nz"), INTS),
    _binary("LogAddExp", mx.logaddexp),
    Case("Select", lambda c, a, b: mx.where(c, a, b), (("bool", None, BOOL), x(), x())),
    # shapes
    Case("Reshape", lambda a: a.reshape(-1, a.shape[-1] * a.shape[-2]), (x(),)),
    Case("Squeeze", lambda a: mx.squeeze(a[:, :1], 1), (x(),)),
    Case("ExpandDims", lambda a: mx.expand_dims(a, (0, -1)) + 1, (x(),)),
    Case("Flatten", lambda a: mx.flatten(a), (x(),)),
    Case("Unflatten", lambda a: mx.unflatten(a, 0, (1, a.shape[0])), (x(),)),
    Case("Broadcast", lambda a, b: a + b, (x(), ("f", (1,), None))),
    Case("Full", lambda a: mx.full(a.shape, 2.5, dtype=a.dtype) * a, (x(),)),
    Case("Transpose", lambda a: mx.transpose(a) * 1, (x(),)),
    Case("Slice", lambda a: a[1:, ::2] * 1, (x(),)),
    Case("Split", lambda a: mx.split(a, [1, 2], axis=1), (x(),)),
    Case("Concatenate", lambda a, b: mx.concatenate([a, b], axis=-1), (x(), x())),
    Case("Pad", lambda a: mx.pad(a, [(1, 0), (0, 2)] + [(0, 0)] * (a.ndim - 2), constant_values=1.5), (x(),)),
    Case("Arange", lambda a: a + mx.arange(a.shape[-1], dtype=a.dtype), (x(),)),
    Case("AsStrided", lambda a: mx.as_strided(a, (2, 2), (1, 2), 1) * 1, (x(),)),
    # reductions, scans, sorts
    Case("Reduce", lambda a: mx.sum(a, axis=-1), (x(),), name="Reduce sum"),
    Case("Reduce", lambda a: mx.prod(a, axis=0), (x(),), name="Reduce prod"),
    Case("Reduce", lambda a: mx.max(a, axis=(0, 1)), (x(),), name="Reduce max"),
    Case("Reduce", lambda a: mx.min(a), (x(),), name="Reduce min"),
    Case("Reduce", lambda a: mx.all(a, axis=-1), (x("bool"),), (BOOL,), name="Reduce all"),
    Case("Reduce", lambda a: mx.any(a, axis=0), (x("bool"),), (BOOL,), name="Reduce any"),
    Case("ArgReduce", lambda a: mx.argmax(a, axis=-1), (x(),), name="ArgReduce max"),
    Case("ArgReduce", lambda a: mx.argmin(a, axis=0), (x(),), name="ArgReduce min"),
    Case("LogSumExp", lambda a: mx.logsumexp(a, axis=-1), (x(),)),
    Case("Softmax", lambda a: mx.softmax(a, axis=-1), (x(),)),
    Case("Softmax", lambda a: mx.softmax(a, axis=-1, precise=True), (x(),), (F16,), name="Softmax precise"),
    Case("Scan", lambda a: mx.cumsum(a, axis=-1), (x(),), name="CumSum"),
    Case("Scan", lambda a: mx.cumprod(a, axis=0, reverse=True), (x(),), name="CumProd reverse"),
    Case("Scan", lambda a: mx.cumsum(a, axis=0, inclusive=False), (x(),), name="CumSum exclusive"),
    Case("Scan", lambda a: mx.cumsum(a, axis=-1, reverse=True, inclusive=False), (x("int"),), INTS,
         name="CumSum reverse exclusive"),
    Case("Scan", lambda a: mx.cummax(a, axis=-1), (x(),), name="CumMax"),
    Case("Scan", lambda a: mx.cummin(a, axis=0, reverse=True, inclusive=False), (x(),), (F32,),
         name="CumMin reverse exclusive"),
    Case("Scan", lambda a: mx.cummax(a, axis=1), (x("int"),), INTS, name="CumMax int"),
    Case("Sort", lambda a: mx.sort(a, axis=-1), (x(),)),
    Case("ArgSort", lambda a: mx.argsort(a, axis=0), (x(),), (F32,)),
    Case("Partition", lambda a: mx.partition(a, 1, axis=-1), (x(),), compare=sorted_along_last),
    Case("ArgPartition", lambda a: mx.take_along_axis(a, mx.argpartition(a, 1, axis=-1), -1), (x(),),
         compare=sorted_along_last),
    # indexing
    Case("Gather", lambda a, i: a[i], (x(), ("bin", (2, 3), I32))),
    Case("Gather", lambda a, i: mx.take(a, i, axis=1), (x(), ("bin", (5,), I32)), name="Gather take axis 1"),
    Case("Gather", lambda a, i, j: a[i, :, j] if a.ndim == 3 else a[i, j], (x(), ("bin", (4,), I32),
                                                                             ("bin", (4,), I32)),
         name="Gather two axes"),
    Case("GatherAxis", lambda a, i: mx.take_along_axis(a, i, axis=0), (x(), ("bin", None, I32))),
    Case("ScatterAxis", lambda a, i, v: mx.put_along_axis(a, i[:1], v[:1], axis=0),
         (x(), ("bin", None, I32), x())),
    Case("Scatter", lambda a, i, v: a.at[i].add(v[:1]), (x(), ("bin", (1,), I32), x()), name="Scatter add"),
    Case("Scatter", lambda a, i: _setitem(a, i), (x(), ("bin", (2,), I32)), name="Scatter assign"),
    Case("SliceUpdate", lambda a, v: _slice_set(a, v), (x(), x())),
    Case("DynamicSlice", lambda a, s: mx.slice(a, s, (0,), (1,) + a.shape[1:]), (x(), ("small", (1,), I32)),
         shapes=((5, 4), (4, 3, 2))),
    Case("DynamicSlice", lambda a, s: mx.slice(a, s, (1, 2), (a.shape[0], 2, 2)), (x(), ("bin", (2,), I32)),
         shapes=((4, 5, 3),), name="DynamicSlice two axes"),
    Case("DynamicSliceUpdate", lambda a, u, s: mx.slice_update(a, u, s, (0,)), (x(), x(), ("bin", (1,), I32)),
         shapes=((5, 4), (4, 3, 2)), prepare=lambda a, u, s: [a, u[:2], s]),
    Case("DynamicSliceUpdate", lambda a, u, s: mx.slice_update(a, u, s, (2, 1)),
         (("f", (4, 5, 3), None), ("f", (4, 2, 2), None), ("bin", (2,), I32)), shapes=((0,),),
         name="DynamicSliceUpdate two axes"),
    # linalg
    Case("Matmul", lambda a, b: a @ b.swapaxes(-1, -2), (x(), x())),
    Case("AddMM", lambda c, a, b: mx.addmm(c, a, b.swapaxes(-1, -2), alpha=0.5, beta=2.0),
         (("f", (3, 3), None), ("f", (3, 4), None), ("f", (3, 4), None)), shapes=((0,),)),
    Case("GatherMM", lambda a, b, i, j: mx.gather_mm(a, b, i, j),
         (("f", (3, 2, 4), None), ("f", (2, 4, 5), None), ("bin", (4,), mx.uint32), ("bin", (4,), mx.uint32)),
         (F32,), shapes=((0,),)),
    Case("QuantizedMatmul", lambda a, *q: mx.quantized_matmul(a, *q, transpose=True, group_size=32, bits=4),
         (("f", (3, 64), None), ("f", (16, 64), None)), (F32,), shapes=((0,),),
         prepare=lambda a, w: [a, *mx.quantize(w, 32, 4)]),
    Case("QuantizedMatmul", lambda a, *q: mx.quantized_matmul(a, *q, transpose=False, group_size=64, bits=8),
         (("f", (2, 3, 32), None), ("f", (32, 128), None)), (F32,), shapes=((0,),),
         prepare=lambda a, w: [a, *mx.quantize(w, 64, 8)], name="QuantizedMatmul 8-bit not transposed"),
    Case("GatherQMM", lambda a, wq, sc, bi, i, j: mx.gather_qmm(a, wq, sc, bi, i, j, transpose=True,
                                                                group_size=32, bits=4),
         (("f", (3, 2, 64), None), ("f", (2, 16, 64), None), ("bin", (4,), mx.uint32), ("bin", (4,), mx.uint32)),
         (F32,), shapes=((0,),), prepare=lambda a, w, i, j: [a, *mx.quantize(w, 32, 4), i, j]),
    Case("Convolution", lambda a, w: mx.conv1d(a, w, stride=2, padding=1), (("f", (2, 9, 4), None),
                                                                          ("f", (6, 3, 4), None)),
         shapes=((0,),), name="Convolution 1d"),
    Case("Convolution", lambda a, w: mx.conv2d(a, w, padding=(1, 0), dilation=(1, 2), groups=2),
         (("f", (1, 6, 7, 4), None), ("f", (4, 3, 2, 2), None)), shapes=((0,),), name="Convolution 2d groups"),
    Case("Convolution", lambda a, w: mx.conv_transpose1d(a, w, stride=2, padding=1),
         (("f", (2, 5, 4), None), ("f", (3, 3, 4), None)), shapes=((0,),), name="Convolution transposed"),
]


def _setitem(a, i):
    a = mx.array(a)
    a[i] = 7.0
    return a


def _slice_set(a, v):
    a = mx.array(a)
    a[1:, :2] = v[1:, :2]
    return a
