"""Core ML lowerings of reductions (MIL's reduce_* ops), arg-reductions and cumsum."""
from __future__ import annotations

from coremltools.converters.mil import Builder as mb

from xcomp.backends.coreml.elementwise import as_bool, as_dtype
from xcomp.backends.coreml.table import axes_of, dtype_name, lowers, mil_dtype, unsupported

REDUCE = {"sum": "reduce_sum", "mean": "reduce_mean", "prod": "reduce_prod", "amax": "reduce_max",
          "amin": "reduce_min", "all": "reduce_min", "any": "reduce_max"}


def _reduce_rule(name, mil_name):
    def rule(args, attrs, out):
        x, want = args[0], mil_dtype(out[0])
        x = as_dtype(x, "int32" if want == "bool" or (dtype_name(x) == "bool") else want)
        if x.rank == 0:
            y = x
        else:
            y = getattr(mb, mil_name)(x=x, axes=axes_of(attrs["axes"], x.rank), keep_dims=attrs["keepdim"])
        return as_bool(y) if want == "bool" else as_dtype(y, want)
    return rule


for _name, _mil in REDUCE.items():
    lowers(_name)(_reduce_rule(_name, _mil))


def _arg_rule(mil_name):
    def rule(args, attrs, out):
        x = args[0]
        if dtype_name(x) == "bool":
            x = as_dtype(x, "int32")
        if x.rank == 0:
            return as_dtype(mb.mul(x=as_dtype(x, "int32"), y=0), mil_dtype(out[0]))
        axis = attrs["axis"]
        if axis is None:
            x, axis = mb.reshape(x=x, shape=[-1]), 0
        y = getattr(mb, mil_name)(x=x, axis=axis % x.rank, keep_dims=attrs["keepdim"])
        if attrs["axis"] is None and attrs["keepdim"]:
            y = mb.reshape(x=y, shape=[1] * args[0].rank)
        return as_dtype(y, mil_dtype(out[0]))
    return rule


lowers("argmax")(_arg_rule("reduce_argmax"))
lowers("argmin")(_arg_rule("reduce_argmin"))


@lowers("cumsum")
def _cumsum(args, attrs, out):
    x = as_dtype(args[0], mil_dtype(out[0]))
    if x.rank == 0:
        return x
    return mb.cumsum(x=x, axis=attrs["axis"] % x.rank)


@lowers("cumprod")
def _cumprod(args, attrs, out):
    """No MIL cumprod: running products of the slices along the axis, concatenated (static size)."""
    from xcomp.backends.coreml.shape import slice_axis
    x = as_dtype(args[0], mil_dtype(out[0]))
    if x.rank == 0:
        return x
    axis = attrs["axis"] % x.rank
    n = x.shape[axis]
    if not isinstance(n, int) or n > 64:
        raise unsupported("cumprod", f"axis of size {n} (written out slice by slice, at most 64)")
    parts = [slice_axis(x, axis, 0, 1)]
    for i in range(1, n):
        parts.append(mb.mul(x=parts[-1], y=slice_axis(x, axis, i, i + 1)))
    return parts[0] if n == 1 else mb.concat(values=parts, axis=axis)
