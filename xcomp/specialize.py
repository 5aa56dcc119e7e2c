"""Specialising a program with symbolic sizes to one binding of its sizes.

For backends that generate code for static shapes (`mlx-source`), or for the programs a backend
with symbolic sizes cannot build once (`static_size_ops`: the `cpp` target names the ops whose C++
rule needs a size static): `specialize(program, sizes)` gives the
static program for one call's sizes, and `per_size(program, build)` a runner that builds (and
caches) one specialised program per distinct binding, binding the sizes from each call's input
shapes. The symbolic program is captured and optimized once; only the backend build repeats.
"""
from __future__ import annotations

from typing import Callable, Mapping

from xcomp.guards import bind_types, concrete_attrs, concrete_type
from xcomp.ir.core import Block, Program


def _block(block: Block, sizes: Mapping[str, int]) -> None:
    for a in block.args:
        a.type = concrete_type(a.type, sizes)
    for op in block.ops:
        op.attrs = concrete_attrs(op.opdef, op.attrs, sizes)
        for r in op.results:
            r.type = concrete_type(r.type, sizes)
        for region in op.regions:
            for b in region.blocks:
                _block(b, sizes)


def specialize(program: Program, sizes: Mapping[str, int]) -> Program:
    """A copy of `program` with every symbolic size evaluated at `sizes` (weights shared)."""
    from xcomp.api import clone
    p = clone(program)
    for f in p.funcs.values():
        _block(f.body, sizes)
    p.guards = []
    return p


def static_size_ops(target, program: Program) -> tuple | None:
    """None when `target` builds `program` (symbolic sizes) once; else why it builds per size
    binding: () for a target without symbolic sizes, or the ops whose rules need static sizes."""
    if not target.symbolic_sizes:
        return ()
    probe = getattr(target, "static_size_ops", None)
    ops = probe(program) if probe is not None else []
    return tuple(ops) if ops else None


def per_size(program: Program, build: Callable[[Program], Callable], limit: int = 256) -> Callable:
    """A runner that builds `program` specialised to each call's sizes (cached, at most `limit`
    bindings kept; the oldest is dropped past that)."""
    types = [a.type for a in program.main.args]
    cache: dict = {}

    def run(inputs):
        sizes = bind_types(types, [tuple(x.shape) for x in inputs])
        key = tuple(sorted(sizes.items()))
        runner = cache.get(key)
        if runner is None:
            if len(cache) >= limit:
                cache.pop(next(iter(cache)))
            runner = cache[key] = build(specialize(program, sizes))
        return runner(inputs)
    run.specialized = cache
    return run
