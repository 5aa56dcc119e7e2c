"""The op registry: every op is defined once, here or in a family module beside this one.

An `OpDef` carries the op's typed attribute schema, its type inference (the only place shapes and
dtypes are computed), its numpy reference implementation (used by the interpreter, constant folding
and tests) and its traits. Family modules register ops with `define(...)`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from xcomp.ir.types import DType, Type


class Trait(enum.Enum):
    """Properties passes and backends rely on."""

    PURE = "pure"                  # no side effects: may be CSE'd, DCE'd, folded
    ELEMENTWISE = "elementwise"    # output[i] depends on broadcast inputs[i] only
    COMMUTATIVE = "commutative"    # f(a, b) == f(b, a)
    REDUCTION = "reduction"        # reduces over `axes`
    VIEW = "view"                  # only moves/reinterprets data (reshape, transpose, slice, ...)
    TERMINATOR = "terminator"      # ends a block (return, yield)
    STRUCTURAL = "structural"      # not counted as compute (weights, constants, terminators)
    COMPOSITE = "composite"        # has a decomposition into primitives
    ISOLATED = "isolated"          # regions see only their block arguments (fused groups)
    CONTROL = "control"            # control flow (if, loop, call)


class AttrKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    INTS = "ints"        # tuple of ints
    FLOATS = "floats"    # tuple of floats
    DTYPE = "dtype"
    ENUM = "enum"
    SYMBOL = "symbol"    # SymbolRef to a function
    TENSOR = "tensor"    # small dense constant (np.ndarray)
    ANY = "any"          # scalar int/float/bool (constants of either kind)
    DIMS = "dims"        # tuple of sizes: ints or symbolic size expressions (`xcomp.ir.symbolic`)
    SYM = "sym"          # a scalar (as ANY) or a symbolic size expression


@dataclass(frozen=True)
class Attr:
    """Schema of one attribute: its kind, its enum class when kind is ENUM, and its default.

    `required=True` means the attribute must be given; otherwise `default` is used (and a value
    equal to the default is not printed).
    """

    kind: AttrKind
    default: Any = None
    required: bool = False
    enum: Optional[type] = None

    def check(self, name: str, value: Any) -> Any:
        """Validate and normalize a Python value for this attribute; raises TypeError."""
        k = self.kind
        ok = isinstance(value, self.enum) if k is AttrKind.ENUM else _ACCEPTS[k](value)
        if not ok:
            raise TypeError(f"attribute '{name}' expects {k.value}"
                            f"{' ' + self.enum.__name__ if self.enum else ''}, got {value!r}")
        normalize = _NORMALIZE.get(k)
        return value if normalize is None else normalize(value)


def _size(x):
    """An int, or a symbolic size in canonical form (ValueError if malformed)."""
    from xcomp.ir.symbolic import SymbolicError, canon
    try:
        return canon(x) if isinstance(x, str) else int(x)
    except SymbolicError as e:
        raise TypeError(str(e)) from None


# attribute kind -> whether a value is acceptable (ENUM: an instance of the attribute's enum class)
_ACCEPTS: dict[AttrKind, Callable[[Any], bool]] = {
    AttrKind.INT: lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    AttrKind.FLOAT: lambda v: isinstance(v, (int, float, np.floating)) and not isinstance(v, bool),
    AttrKind.BOOL: lambda v: isinstance(v, (bool, np.bool_)),
    AttrKind.STR: lambda v: isinstance(v, str),
    AttrKind.INTS: lambda v: isinstance(v, (tuple, list)) and all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v),
    AttrKind.FLOATS: lambda v: isinstance(v, (tuple, list)) and all(
        isinstance(x, (int, float, np.floating)) for x in v),
    AttrKind.DTYPE: lambda v: isinstance(v, DType),
    AttrKind.SYMBOL: lambda v: type(v).__name__ == "SymbolRef",
    AttrKind.TENSOR: lambda v: isinstance(v, np.ndarray),
    AttrKind.ANY: lambda v: isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_)),
    AttrKind.DIMS: lambda v: isinstance(v, (tuple, list)) and all(
        isinstance(x, (int, np.integer, str)) and not isinstance(x, bool) for x in v),
    AttrKind.SYM: lambda v: isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_, str)),
}
# attribute kind -> the value's normal form (kinds absent keep the value)
_NORMALIZE: dict[AttrKind, Callable[[Any], Any]] = {
    AttrKind.INT: int, AttrKind.FLOAT: float, AttrKind.BOOL: bool,
    AttrKind.INTS: lambda v: tuple(int(x) for x in v),
    AttrKind.FLOATS: lambda v: tuple(float(x) for x in v),
    AttrKind.ANY: lambda v: v.item() if isinstance(v, np.generic) else v,
    AttrKind.DIMS: lambda v: tuple(_size(x) for x in v),
    AttrKind.SYM: lambda v: _size(v) if isinstance(v, str) else v.item() if isinstance(v, np.generic) else v,
}


def attr(kind: AttrKind, default: Any = None, *, enum: type | None = None) -> Attr:
    """An optional attribute with a default."""
    return Attr(kind, default, False, enum)


def req(kind: AttrKind, *, enum: type | None = None) -> Attr:
    """A required attribute."""
    return Attr(kind, None, True, enum)


InferFn = Callable[..., Sequence[Type]]          # (operand_types, attrs) -> result types
RefFn = Callable[..., Sequence[np.ndarray]]      # (operand arrays, attrs, [result types]) -> arrays


@dataclass(eq=False)
class OpDef:
    """The single definition of an op.

    infer(types: list[Type], attrs: dict) -> list[Type]
    reference(args: list[np.ndarray], attrs: dict, out_types: list[Type]) -> list[np.ndarray]
    """

    name: str
    infer: InferFn
    reference: Optional[RefFn]
    attrs: dict[str, Attr] = field(default_factory=dict)
    traits: frozenset = frozenset()
    num_operands: Optional[int] = None  # None means variadic
    num_regions: int = 0
    doc: str = ""

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    @property
    def is_terminator(self) -> bool:
        return Trait.TERMINATOR in self.traits

    @property
    def is_structural(self) -> bool:
        return Trait.STRUCTURAL in self.traits

    def normalize_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check attrs against the schema, fill defaults; raises TypeError/KeyError with the op name."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise TypeError(f"{self.name}: unknown attribute(s) {sorted(unknown)}")
        out = {}
        for k, spec in self.attrs.items():
            if k in attrs and attrs[k] is not None:
                try:
                    out[k] = spec.check(k, attrs[k])
                except TypeError as e:
                    raise TypeError(f"{self.name}: {e}") from None
            elif spec.required:
                raise TypeError(f"{self.name}: missing required attribute '{k}'")
            else:
                out[k] = spec.default
        return out

    def __repr__(self) -> str:
        return f"<OpDef {self.name}>"


REGISTRY: dict[str, OpDef] = {}


def define(name: str, infer: InferFn, reference: Optional[RefFn] = None, *,
           attrs: dict[str, Attr] | None = None, traits: Sequence[Trait] = (Trait.PURE,),
           operands: Optional[int] = None, regions: int = 0, doc: str = "") -> OpDef:
    """Register an op named `xc.<name>` (or the full dotted name if it has a dot)."""
    full = name if "." in name else f"xc.{name}"
    if full in REGISTRY:
        raise ValueError(f"op {full} defined twice")
    d = OpDef(full, infer, reference, dict(attrs or {}), frozenset(traits), operands, regions, doc)
    REGISTRY[full] = d
    return d


def get(name: str) -> OpDef:
    """Look up an op by name (`"add"` or `"xc.add"`)."""
    full = name if "." in name else f"xc.{name}"
    try:
        return REGISTRY[full]
    except KeyError:
        raise KeyError(f"unknown op '{full}'") from None
