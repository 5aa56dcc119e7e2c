"""The nested-tensor path of scripted `nn.TransformerEncoder` (its default `enable_nested_tensor`).

With a key padding mask, the encoder packs the batch into a nested tensor (one sequence per row,
padding dropped), runs every layer's fast path on it and pads the result back with zeros. xcomp
keeps the batch dense: a `Nested(dense, keep)` value pairs the padded tensor with the mask of real
positions; an encoder layer on it attends with that mask as a key padding mask, and
`to_padded_tensor` zeros the padded positions, which is what the nested computation gives.

The encoder takes this path only for a left-aligned mask (padding at the end of each row); the check
is data, so the program keeps it as an assert (`xc.raise`) and compiles the nested path.
"""
from __future__ import annotations

from dataclasses import dataclass

from xcomp.ir.core import Value
from xcomp.ir.types import DType
from xcomp.frontends.torchscript.nodes import node

NESTED_OPS = {"aten._transformer_encoder_layer_fwd.default": (18, 19)}  # op -> (mask, mask_type) argument index


@dataclass
class Nested:
    """A nested tensor kept dense: `dense` [B, T, ...] and `keep` [B, T] (True at real positions)."""

    dense: Value
    keep: Value


@node("aten::_nested_tensor_from_mask")
def from_mask(cv, node, x, keep, *check):
    """A nested tensor from a padded batch and its mask, kept dense (see `nested.py`)."""
    return [Nested(cv.cx.tensor(x), cv.cx.cast(keep, DType.BOOL))]


@node("aten::_nested_tensor_from_mask_left_aligned")
def left_aligned(cv, node, x, keep):
    """True, with a run-time assert that every row's real positions come first."""
    cx = cv.cx
    keep = cx.cast(keep, DType.BOOL)
    t = keep.type.shape[-1]
    if t > 1:
        head = cx.op("slice", keep, axis=1, start=0, end=t - 1, step=1)
        tail = cx.op("slice", keep, axis=1, start=1, end=t, step=1)
        bad = cx.op("any", cx.op("logical_and", tail, cx.op("logical_not", head)), axes=(0, 1))
        from xcomp.ir.builder import Builder
        from xcomp.ir.core import Block, Region
        raise_b, ok_b = Block([]), Block([])
        Builder(raise_b).create("raise", [], {"message": "xcomp compiled the encoder's nested-tensor path, which "
                                                        "needs a key padding mask with the padding at the end of each row"})
        for blk in (raise_b, ok_b):
            Builder(blk).create("yield", [])
        cx.b.create("if", [bad], regions=[Region([raise_b]), Region([ok_b])], result_types=[])
    return [True]


@node("prim::is_nested")
def is_nested(cv, node, x):
    """Nested tensors (kept dense) answer True; everything else False."""
    return [isinstance(x, Nested)]


@node("aten::to_padded_tensor")
def to_padded(cv, node, x, padding, size=None):
    """The dense tensor with the padded positions set to `padding`."""
    if not isinstance(x, Nested):
        return [x]
    cx = cv.cx
    keep = cx.op("reshape", x.keep, shape=tuple(x.keep.type.shape) + (1,) * (x.dense.type.rank - 2))
    return [cx.op("where", keep, x.dense, cx.const(padding, x.dense.type.dtype))]


def unwrap(cx, key: str, ins: list) -> tuple[list, Value | None]:
    """Arguments for an aten op reached by a nested tensor: dense input, the mask as a key padding
    mask; returns (arguments, keep mask to re-wrap the result with) or raises for other ops."""
    if not any(isinstance(x, Nested) for x in ins):
        return ins, None
    if key not in NESTED_OPS or not isinstance(ins[0], Nested):
        raise NotImplementedError("nested tensors reach this op")
    mask_at, type_at = NESTED_OPS[key]
    src = ins[0]
    ins = [src.dense] + list(ins[1:])
    ins[mask_at], ins[type_at] = cx.op("logical_not", src.keep), 1  # a key padding mask: True = ignore
    return ins, src.keep
