"""Flexible input shapes of a package built from a program with symbolic sizes.

Each symbolic input dim named `S` becomes either a `ct.RangeDim(lo, hi)` (the default) or part of
`ct.EnumeratedShapes` (when the export asks: `enumerated={"S": [16, 32, 64]}`):

- bounds: `shape_bounds={"S": (1, 512)}`, else the program's range guards (`S >= 2`, `S <= 512`),
  else `(1, RANGE_UPPER)`. Bounds that admit sizes the guards exclude are refused (TargetError).
- enumerated: every symbolic dim of that input must be enumerated; the input's shapes are all the
  combinations (at most `MAX_ENUMERATED`), each checked against every guard of the program.

Core ML checks the ranges and enumerated shapes itself at a prediction. Guards that a range cannot
express (`S%2 == 0`, `T == S+1`) are kept in the package's metadata (`xcomp.signature["guards"]`);
the package evaluator and xcomp's macOS runner check them before running, Core ML alone does not.
"""
from __future__ import annotations

import itertools

from xcomp.errors import TargetError

RANGE_UPPER = 4096        # default upper bound of a symbolic dim's RangeDim
MAX_ENUMERATED = 128      # shapes per input with EnumeratedShapes


def guard_bounds(guards) -> dict[str, list[int | None]]:
    """name -> [lowest, highest] size allowed by the guards `name >= k`, `name <= k` (and > <)."""
    out: dict[str, list] = {}
    for g in guards:
        if not (isinstance(g.lhs, str) and g.lhs.isidentifier() and isinstance(g.rhs, int)):
            continue
        lo_hi = out.setdefault(g.lhs, [None, None])
        low = {">=": g.rhs, ">": g.rhs + 1, "==": g.rhs}.get(g.op)
        high = {"<=": g.rhs, "<": g.rhs - 1, "==": g.rhs}.get(g.op)
        if low is not None:
            lo_hi[0] = low if lo_hi[0] is None else max(lo_hi[0], low)
        if high is not None:
            lo_hi[1] = high if lo_hi[1] is None else min(lo_hi[1], high)
    return out


def size_bounds(names: set[str], guards, shape_bounds: dict | None) -> dict[str, tuple[int, int]]:
    """(lo, hi) of every symbolic size: the user's bounds checked against the guards, else the guards'."""
    shape_bounds = dict(shape_bounds or {})
    unknown = set(shape_bounds) - names
    if unknown:
        raise TargetError(f"shape_bounds names {sorted(unknown)}, not sizes of the program's inputs "
                          f"({', '.join(sorted(names)) or 'none'})")
    known = guard_bounds(guards)
    out = {}
    for name in sorted(names):
        g_lo, g_hi = known.get(name, [None, None])
        lo, hi = max(1, g_lo or 1), g_hi if g_hi is not None else RANGE_UPPER
        if name in shape_bounds:
            try:
                u_lo, u_hi = (int(v) for v in shape_bounds[name])
            except (TypeError, ValueError):
                raise TargetError(f"shape_bounds['{name}'] must be (lowest, highest), got {shape_bounds[name]!r}") from None
            if not 1 <= u_lo <= u_hi:
                raise TargetError(f"shape_bounds['{name}'] = {shape_bounds[name]!r}: want 1 <= lowest <= highest")
            if u_lo < lo or u_hi > hi:
                raise TargetError(f"shape_bounds['{name}'] = ({u_lo}, {u_hi}) admits sizes the program excludes "
                                  f"(its guards allow {lo}..{hi})")
            lo, hi = u_lo, u_hi
        out[name] = (lo, hi)
    return out


def flexible_inputs(ct, np_dtypes, ins: list[dict], guards, shape_bounds=None, enumerated=None):
    """`ct.TensorType` inputs for `ct.convert` (None when every input is static). `ins` are the
    interface specs of `build.build_mil` (name, shape with symbolic names, MIL dtype)."""
    names = {d for s in ins for d in s["shape"] if isinstance(d, str) and d.isidentifier()}
    if not any(isinstance(d, str) for s in ins for d in s["shape"]):
        if shape_bounds or enumerated:
            raise TargetError("shape_bounds/enumerated given for a program without symbolic sizes "
                              "(capture with dynamic=...)")
        return None
    bounds = size_bounds(names, guards, shape_bounds)
    enumerated = {k: [int(n) for n in v] for k, v in (enumerated or {}).items()}
    if set(enumerated) - names:
        raise TargetError(f"enumerated names {sorted(set(enumerated) - names)}, not sizes of the "
                          f"program's inputs ({', '.join(sorted(names))})")
    out = []
    for s in ins:
        dims = s["shape"]
        syms = [d for d in dims if isinstance(d, str)]
        if syms and any(d in enumerated for d in syms):
            shape = ct.EnumeratedShapes(shapes=_enumerate(s["name"], dims, enumerated, guards))
        else:
            shape = ct.Shape([_range(ct, bounds.get(d, (1, RANGE_UPPER))) if isinstance(d, str) else d
                              for d in dims])
        out.append(ct.TensorType(name=s["name"], dtype=np_dtypes[s["dtype"]], shape=shape))
    return out


def _range(ct, lo_hi):
    lo, hi = lo_hi
    return ct.RangeDim(lower_bound=lo, upper_bound=hi, default=lo)


def _enumerate(input_name: str, dims, enumerated: dict, guards) -> list[list[int]]:
    syms = list(dict.fromkeys(d for d in dims if isinstance(d, str)))
    missing = [d for d in syms if d not in enumerated]
    if missing:
        raise TargetError(f"input '{input_name}': enumerated shapes need every symbolic dim enumerated "
                          f"(missing {missing}; Core ML cannot mix EnumeratedShapes with a RangeDim in one input)")
    shapes = []
    for combo in itertools.product(*(enumerated[d] for d in syms)):
        env = dict(zip(syms, combo))
        failed = [str(g) for g in guards if g.names() <= set(env) and not g.holds(env)]
        if failed:
            raise TargetError(f"enumerated sizes {env} break the program's guard(s): {'; '.join(failed)}")
        shapes.append([env[d] if isinstance(d, str) else d for d in dims])
    if len(shapes) > MAX_ENUMERATED:
        raise TargetError(f"input '{input_name}': {len(shapes)} enumerated shapes (at most {MAX_ENUMERATED})")
    return shapes
