"""Reporting of conformance runs (xcomp.conformance): the per-op table, the totals, JSON save/load,
and the command line (`python -m xcomp.conformance`, `xcomp conformance`)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from typing import Sequence

from xcomp.conformance import _ORDER, ERROR, FAIL, SKIP, OpResult, Report, run


def format_table(report: Report, markdown: bool = False, include_skips: bool = False) -> str:
    """Per-op, per-target table followed by the totals."""
    rows = [r for r in report.results if include_skips or any(s != SKIP for s in r.status.values())]
    lines = []
    if markdown:
        lines.append("| OpInfo | samples | " + " | ".join(report.targets) + " | notes |")
        lines.append("|---|---:|" + "---|" * len(report.targets) + "---|")
    else:
        w = max([len(r.name) for r in rows] + [6])
        lines.append(f"{'OpInfo':<{w}} {'n':>3} " + " ".join(f"{t:<12}" for t in report.targets) + " notes")
    for r in sorted(rows, key=lambda r: r.name):
        note = "; ".join(sorted({f"{t}: {r.reason[t]}" if len(set(r.reason.values())) > 1 else r.reason[t]
                                 for t in report.targets if r.reason.get(t)}))
        if markdown:
            note = note.replace("|", "\\|")
            lines.append(f"| `{r.name}` | {r.samples} | " + " | ".join(r.status[t] for t in report.targets)
                         + f" | {note} |")
        else:
            lines.append(f"{r.name:<{w}} {r.samples:>3} " + " ".join(f"{r.status[t]:<12}" for t in report.targets)
                         + f" {note}")
    lines.append("")
    lines.append(summary(report, markdown))
    return "\n".join(lines)


def summary(report: Report, markdown: bool = False) -> str:
    """Totals: ops passing per target and on all targets, status counts, top failure reasons."""
    tested = [r for r in report.results if any(s != SKIP for s in r.status.values())]
    out = []
    bullet = "- " if markdown else ""
    out.append(f"{bullet}OpInfos examined: {len(report.results)}; tested (not skipped): {len(tested)}; "
               f"time {report.seconds:.0f} s")
    for t in report.targets:
        c = report.counts(t)
        detail = ", ".join(f"{k} {c[k]}" for k in _ORDER if c.get(k) and k != SKIP)
        out.append(f"{bullet}{t}: {len(report.passing(t))} ops passing ({detail})")
    out.append(f"{bullet}passing on all of {', '.join(report.targets)}: {len(report.passing_all())} ops")
    reasons = Counter()
    for r in report.results:
        for t in report.targets:
            if r.status.get(t) in (FAIL, ERROR):
                reasons[f"{r.status[t]}: {_reason_kind(r.reason[t])}"] += 1
    missing = Counter(m for r in report.results for m in r.missing)
    if reasons:
        out.append(f"{bullet}top failure reasons (op x target): " +
                   "; ".join(f"{k} ({n})" for k, n in reasons.most_common(8)))
    if missing:
        out.append(f"{bullet}most wanted aten ops: " + ", ".join(f"{k} ({n})" for k, n in missing.most_common(15)))
    return "\n".join(out)


def _reason_kind(reason: str) -> str:
    """The leading words of a reason, numbers dropped, to group similar failures."""
    import re
    return re.sub(r"(?<![A-Za-z_0-9.])-?[0-9][0-9.]*(e[-+]?[0-9]+)?", "N", reason)[:70]


def save_report(report: Report, path: str) -> None:
    """Write a report as JSON (re-rendered later with `--load`)."""
    with open(path, "w") as f:
        json.dump({"targets": report.targets, "seconds": report.seconds,
                   "results": [dataclasses.asdict(r) for r in report.results]}, f, indent=1)


def load_report(path: str) -> Report:
    with open(path) as f:
        d = json.load(f)
    return Report(d["targets"], [OpResult(**r) for r in d["results"]], d["seconds"])


def main(argv: Sequence[str] | None = None) -> int:
    from xcomp import conformance
    p = argparse.ArgumentParser(prog="python -m xcomp.conformance",
                                description=conformance.__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", default=["reference,mlx"], help="targets (space- or comma-separated)")
    p.add_argument("--ops", nargs="+", default=None, help="OpInfo names, or name.variant (default: all of op_db)")
    p.add_argument("--limit-samples", type=int, default=None, help="at most N samples per op")
    p.add_argument("--in-table", action="store_true", help="only OpInfos named like an aten op in the table")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--skips", action="store_true", help="list skipped OpInfos too")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--load", metavar="PATH", help="print the table of a saved JSON run instead of running")
    p.add_argument("--verbose", action="store_true", help="print each op as it finishes (to stderr)")
    a = p.parse_args(argv)
    targets = [t for arg in a.targets for t in arg.split(",") if t]
    ops = [o for arg in a.ops for o in arg.split(",") if o] if a.ops else None
    if a.load:
        report = load_report(a.load)
    else:
        from xcomp.backends import get_target
        for t in targets:
            get_target(t)

        def progress(r: OpResult):
            if a.verbose:
                print(f"{r.name:<40} " + " ".join(f"{r.status[t]:<12}" for t in targets) +
                      " " + "; ".join(sorted(set(r.reason.values())))[:150], file=sys.stderr, flush=True)
        report = run(targets, ops, a.limit_samples, a.in_table, progress)
    if a.json:
        save_report(report, a.json)
    print(format_table(report, a.markdown, a.skips))
    return 0
