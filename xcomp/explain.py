"""`compiled.explain()`'s report: fields to read in code, the familiar text from `str()`.

Like `torch._dynamo.explain`'s `ExplainOutput`: a dataclass whose `str()` is the human-readable
report, so `print(compiled.explain())` reads as before while scripts use the fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TargetSummary:
    """One target's view of the captured program after its pipeline."""

    target: str
    ops_before: int
    ops_after: int
    groups: int
    kernels_per_call: int
    fallbacks: list[str]              # IR ops the target lowers neither directly nor by decomposition
    unavailable: str | None = None    # why the target cannot run here (None: it can)


@dataclass
class ExplainReport:
    """How one signature of a compiled function was captured, optimized and lowered.

    - `source`: the frontend that captured it; `ops_before` / `ops_after` compute ops before and
      after the target's pipeline; `weights` the captured weights.
    - `groups`: the fused groups, each as `"kind: op, op, ..."`; `kernels_per_call` device launches.
    - `fallbacks`: IR ops the compiled target lacks even after decompositions.
    - `passes`: the pipeline's records (name, changed, seconds, ops before/after).
    - `histogram`: op name -> count in the optimized program.
    - `other_targets`: the same summary for every other known target (an error text when the
      target cannot optimize the program).
    - `guards`: conditions on symbolic sizes under which the program is valid (empty when static).
    - `notes`: frontend and API notes (tracer warnings and the like).
    """

    target: str
    source: str
    pipeline: list[str]
    ops_before: int
    ops_after: int
    weights: int
    groups: list[str]
    kernels_per_call: int
    fallbacks: list[str]
    passes: list[Any]
    histogram: dict[str, int]
    other_targets: dict[str, TargetSummary | str]
    guards: list[str]
    notes: list[str]
    compile_seconds: float
    signatures_cached: int
    text: str = field(default="", repr=False)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        """The fields as plain data (for JSON), without the text."""
        from dataclasses import asdict
        data = asdict(self)
        data.pop("text")
        return data

    def __contains__(self, fragment: str) -> bool:
        """Substring search in the text (what `"..." in compiled.explain()` did on the old string)."""
        return fragment in self.text


def summarize(target, before, after) -> TargetSummary:
    """`target`'s summary of a program captured as `before` and optimized to `after`."""
    from xcomp.backends.coverage import coverage
    from xcomp.passes.fuse import fusion_groups, kernels_per_call
    return TargetSummary(target.name, before.op_count(), after.op_count(), len(fusion_groups(after)),
                         kernels_per_call(after), coverage(target, after), target.unavailable_reason())


def summary_line(s: TargetSummary) -> str:
    return (f"  {s.target:<10} ops {s.ops_before} -> {s.ops_after}, {s.groups} fused groups, "
            f"{s.kernels_per_call} kernels per call; "
            f"{'covers every op' if not s.fallbacks else 'falls back on ' + ', '.join(s.fallbacks)}"
            f"{'' if not s.unavailable else '  (cannot run here: ' + s.unavailable + ')'}")
