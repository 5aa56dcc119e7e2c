"""The pass manager: named passes run in an ordered pipeline, observable and verified.

`XCOMP_LOGS=passes` logs each pass with its time and op-count delta (logger `xcomp.passes`);
`XCOMP_LOGS=ir` logs the IR after each pass (logger `xcomp.ir`); see `xcomp.logs`. Long pipelines
show a progress bar on a terminal (`xcomp.progress`). In debug mode (`debug=True` or `XCOMP_DEBUG=1`) the verifier runs after every
pass, and a pass that breaks the IR is named in the error.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Sequence

from xcomp.errors import VerifyError
from xcomp.ir.core import Program
from xcomp.ir.verifier import verify
from xcomp.logs import configure as _configure_logs, get_logger
from xcomp.progress import progress

_PASS_LOG = get_logger("passes")
_IR_LOG = get_logger("ir")


class Pass:
    """A program transformation. `run` mutates the program and returns whether it changed it.

    `target` is the `Target` the pipeline compiles for (None: target-independent), so passes such
    as `decompose` and `fuse` can read its op table and kernel limits.
    """

    name: str = ""

    def __init__(self, target=None):
        self.target = target

    def run(self, program: Program) -> bool:
        raise NotImplementedError


PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass available by its `name`."""
    if not cls.name or cls.name in PASSES:
        raise ValueError(f"pass name {cls.name!r} missing or taken")
    PASSES[cls.name] = cls
    return cls


@dataclass
class PassRecord:
    name: str
    changed: bool
    seconds: float
    ops_before: int
    ops_after: int


@dataclass
class PipelineReport:
    """What a pipeline did: one record per pass run."""

    records: list[PassRecord] = field(default_factory=list)

    @property
    def ops_before(self) -> int:
        return self.records[0].ops_before if self.records else 0

    @property
    def ops_after(self) -> int:
        return self.records[-1].ops_after if self.records else 0

    def __str__(self) -> str:
        return "\n".join(f"{r.name:<24} {'changed' if r.changed else 'unchanged':<9} "
                         f"{r.ops_before:>5} -> {r.ops_after:<5} ops  {r.seconds * 1e3:7.2f} ms"
                         for r in self.records)


# The standard pipeline: clean up, freeze, decompose what the target lacks, clean up again, fuse.
DEFAULT_PIPELINE = ("inline", "canonicalize", "fold_constants", "cse", "dce", "freeze", "decompose",
                    "canonicalize", "fold_constants", "cse", "dce", "fuse")


def run_pipeline(program: Program, names: Sequence[str], debug: bool | None = None,
                 target=None) -> PipelineReport:
    """Run the named passes in order on `program` (in place) for `target` (a `Target` or None)."""
    from xcomp import passes as _registry  # noqa: F401  (registers the built-in passes)
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise ValueError(f"unknown pass(es) {unknown}; known: {sorted(PASSES)}")
    debug = bool(os.environ.get("XCOMP_DEBUG")) if debug is None else debug
    _configure_logs()  # XCOMP_LOGS may have changed since import
    log_ir = _IR_LOG.isEnabledFor(logging.DEBUG)
    report = PipelineReport()
    for name in progress(names, desc="passes", unit="pass"):
        before = program.op_count()
        t0 = time.perf_counter()
        changed = bool(PASSES[name](target).run(program))
        dt = time.perf_counter() - t0
        after = program.op_count()
        report.records.append(PassRecord(name, changed, dt, before, after))
        if debug:
            try:
                verify(program)
            except VerifyError as e:
                raise VerifyError(f"pass '{name}' broke the IR: {e}") from None
        _PASS_LOG.debug("pass %-24s %5d -> %-5d ops %-9s %.2f ms", name, before, after,
                        "changed" if changed else "unchanged", dt * 1e3)
        if log_ir:
            _IR_LOG.debug("IR after %s:\n%s", name, program)
    return report
