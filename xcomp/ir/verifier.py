"""The verifier: every op's attributes, operand counts and result types agree with its definition,
values are defined before use, regions are terminated, isolated regions use only their arguments,
weights exist with the declared type, and calls name existing functions with matching types."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from xcomp.errors import VerifyError
from xcomp.ir.core import Block, Operation, Program
from xcomp.ir.types import DType, ListType, NoneType, ScalarType, TensorType, Type
from xcomp.ops.registry import Trait


def _yield_types(region) -> Optional[list]:
    term = region.block.ops[-1] if region.block.ops else None
    if term is None or term.name != "xc.yield":
        return None
    return [v.type for v in term.operands]


def _check_if(op: Operation) -> Optional[str]:
    c = op.operands[0].type
    if not (c in (ScalarType(DType.BOOL),) or (isinstance(c, TensorType) and c.dtype is DType.BOOL
                                                   and c.is_static and c.numel == 1)):
        return f"xc.if needs a bool condition, got {c}"
    for i, r in enumerate(op.regions):
        if r.block.args:
            return "xc.if regions take no arguments"
        if _yield_types(r) != [v.type for v in op.results]:
            return f"xc.if region {i} yields {_yield_types(r)} but the op returns {[str(v.type) for v in op.results]}"
    return None


def _check_loop(op: Operation) -> Optional[str]:
    if len(op.operands) < 2:
        return "xc.loop takes (trip_count, cond, *carried)"
    carried = [v.type for v in op.operands[2:]]
    body = op.regions[0].block
    if [a.type for a in body.args[1:]] != carried or len(body.args) != len(carried) + 1:
        return "xc.loop body must take (iteration, *carried)"
    y = _yield_types(op.regions[0])
    if y is None or y[1:] != carried:
        return "xc.loop body must yield (cond, *carried)"
    if [v.type for v in op.results] != carried:
        return "xc.loop results must match the carried values"
    return None


def _check_fused(op: Operation) -> Optional[str]:
    body = op.regions[0].block
    if [a.type for a in body.args] != [v.type for v in op.operands]:
        return "xc.fused block arguments must match its operands"
    if _yield_types(op.regions[0]) != [v.type for v in op.results]:
        return "xc.fused must yield its result types"
    return None


REGION_RULES: dict[str, Callable[[Operation], Optional[str]]] = {
    "xc.if": _check_if, "xc.loop": _check_loop, "xc.fused": _check_fused,
    "xc.call": lambda op: None,  # checked against the callee by verify_calls
}


def _declares(inferred: Type, actual: Type) -> bool:
    """Whether a result declared `actual` agrees with the `inferred` type: equal, or a list whose
    element type nothing inferred (`!xc.list<none>`: an empty list literal) declared by the builder."""
    if inferred == actual:
        return True
    return (isinstance(inferred, ListType) and isinstance(inferred.element, NoneType)
            and isinstance(actual, ListType))


def check_op(op: Operation, weight_types: Optional[dict] = None) -> Optional[str]:
    """Problems with one op on its own (not dominance), as a message, or None."""
    d = op.opdef
    if d.num_operands is not None and len(op.operands) != d.num_operands:
        return f"{d.name} takes {d.num_operands} operand(s), got {len(op.operands)}"
    if len(op.regions) != d.num_regions:
        return f"{d.name} takes {d.num_regions} region(s), got {len(op.regions)}"
    try:
        d.normalize_attrs(op.attrs)
    except TypeError as e:
        return str(e)
    if d.name in REGION_RULES:
        return REGION_RULES[d.name](op)
    if d.name == "xc.weight":
        t = op.results[0].type
        if not isinstance(t, TensorType):
            return "xc.weight must produce a tensor"
        if weight_types is not None:
            w = weight_types.get(op.attrs["name"])
            if w is None:
                return f"no weight named '{op.attrs['name']}'"
            if tuple(w[0]) != t.shape or (w[1] != t.dtype and t.dtype is not DType.BF16):
                return f"weight '{op.attrs['name']}' is {w}, not {t}"
        return None
    if d.is_terminator:
        return None
    try:
        inferred = list(d.infer([v.type for v in op.operands], op.attrs))
    except (TypeError, ValueError, IndexError, KeyError) as e:
        return f"{d.name}: {e}"
    actual = [v.type for v in op.results]
    if len(inferred) != len(actual) or not all(map(_declares, inferred, actual)):
        return f"{d.name}: result types {[str(t) for t in actual]} differ from inferred {[str(t) for t in inferred]}"
    return None


def verify_calls(program: Program) -> Optional[str]:
    for op in program.walk():
        if op.name != "xc.call":
            continue
        callee = program.funcs.get(op.attrs["callee"].name)
        if callee is None:
            return f"call to unknown function @{op.attrs['callee'].name}"
        if [a.type for a in callee.args] != [v.type for v in op.operands]:
            return f"call to @{callee.name}: argument types differ"
        if callee.result_types != [v.type for v in op.results]:
            return f"call to @{callee.name}: result types differ"
    return None


def _verify_block(block: Block, visible: set, weight_types, where: str, errors: list, terminator: str):
    defined = set(visible) | set(block.args)
    for i, op in enumerate(block.ops):
        for v in op.operands:
            if v not in defined:
                errors.append(f"{where}: {op.name} (op {i}) uses a value not defined before it")
        problem = check_op(op, weight_types)
        if problem:
            errors.append(f"{where}: {problem}")
        if op.opdef.is_terminator and i != len(block.ops) - 1:
            errors.append(f"{where}: terminator {op.name} in the middle of a block")
        for r in op.regions:
            inner_visible = set() if op.opdef.has(Trait.ISOLATED) else defined
            _verify_block(r.block, inner_visible, weight_types, f"{where}/{op.name}", errors, "xc.yield")
        defined.update(op.results)
    if not block.ops or block.ops[-1].name != terminator:
        errors.append(f"{where}: block does not end with {terminator}")


def verify(program: Program) -> None:
    """Raise VerifyError listing every problem found in the program."""
    weight_types = {k: (tuple(np.shape(v)), DType.from_numpy(np.asarray(v).dtype))
                    for k, v in program.weights.items()}
    errors: list[str] = []
    if "main" not in program.funcs:
        errors.append("no @main function")
    for name, f in program.funcs.items():
        _verify_block(f.body, set(), weight_types, f"@{name}", errors, "xc.return")
    problem = verify_calls(program)
    if problem:
        errors.append(problem)
    if errors:
        raise VerifyError("program fails verification:\n  " + "\n  ".join(errors))
