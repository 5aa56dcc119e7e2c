"""OpInfo conformance with the first dim of each sample symbolic (opt-in; slow: one capture per op).

    python -m xcomp.dynamic_conformance [--targets reference] [--ops add sin ...] [--in-table]
                                        [--json PATH]

For the first float32 sample of each OpInfo (the static harness's scope, `xcomp.conformance`) whose
first tensor input has a dim 0, that dim is marked dynamic (`dynamic={0: [0]}`: torch.export's
`Dim.AUTO`, then proven from size 1 where torch can, see `xcomp.frontends.dynamic_shapes`) and the
compiled program is
run at the sample's own size and at one more row (the first input with its first row appended),
each compared with torch eager. Outcomes per op:

- `symbolic`: dim 0 stayed symbolic and both sizes match torch (or the second size breaks a guard
  the program states, e.g. another input must share the size: `guarded`).
- `static`: torch.export made the dim static (the op needs that size); the program matches torch.
- `refused`: torch.export refuses the dim as dynamic (a constraint violation) or cannot trace it.
- `unsupported`: a converter or target lacks symbolic sizes for this op (the reason names it).
- `fail`: a wrong shape or value. `error`: anything else. `skip`: as in the static harness.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Sequence

from xcomp import conformance as cf
from xcomp.errors import CaptureError, LoweringError, UnsupportedOpError
from xcomp.guards import GuardError

OUTCOMES = ("symbolic", "guarded", "static", "refused", "unsupported", "fail", "error", "skip")


def _grown(t):
    import torch
    return torch.cat([t, t[:1]], 0)


class Built:
    """A program built for one op with dim 0 dynamic: `run(tensors) -> outputs`, whether dim 0 stayed
    `symbolic()`, and how many `captures()` it took (None: not counted)."""

    def __init__(self, run, symbolic, captures=lambda: None):
        self.run, self.symbolic, self.captures = run, symbolic, captures


def compiled_build(target: str):
    """The default builder: `xcomp.compile(fn, target, dynamic={0: [0]})`."""
    def build(fn, tensors) -> Built:
        import xcomp
        compiled = xcomp.compile(fn, target=target, dynamic={0: [0]})
        return Built(lambda ts: list(_outs(compiled(*ts))),
                     lambda: isinstance(compiled.program().main.args[0].type.shape[0], str),
                     lambda: compiled.stats.captures)
    return build


def _pick_sample(opinfo):
    """(fn, tensors, torch eager's outputs) of the first float32 sample with a first dim, or
    (None, why, None)."""
    why = "no float32 sample"
    for sample in cf.float32_samples(opinfo, limit=8):
        try:
            fn, tensors = cf._bind_sample(opinfo, sample)
            if not tensors or tensors[0].dim() == 0 or tensors[0].shape[0] == 0:
                why = "no sample has a first dim to make dynamic"
                continue
            return fn, tensors, cf._eager(fn, tensors)
        except cf._Skip as e:
            why = str(e)
    return None, why, None


def check_op(opinfo, target: str = "reference", build=None) -> tuple[str, str]:
    """(outcome, reason) for the first sample of `opinfo` with dim 0 of its first input dynamic.

    `build(fn, tensors) -> Built` makes the program (default: `xcomp.compile` for `target`); the
    Core ML benchmark passes one that saves a flexible package and runs the package evaluator."""
    if cf.skip_reason(opinfo):
        return "skip", cf.skip_reason(opinfo)
    fn, tensors, expected = _pick_sample(opinfo)
    if fn is None:
        return "skip", tensors
    check = cf.default_check(cf.full_name(opinfo))
    try:
        built = (build or compiled_build(target))(fn, tensors)
        first = cf.compare(built.run(tensors), expected, check)
    except CaptureError as e:
        return "refused", cf._first_line(e)
    except (UnsupportedOpError, LoweringError) as e:
        return "unsupported", cf._first_line(e)
    except Exception as e:  # noqa: BLE001  (a crash is an outcome to report, not to hide)
        return "error", f"{type(e).__name__}: {cf._first_line(e)}"
    if first.status != cf.PASS:
        return first.status, first.reason
    if not built.symbolic():
        return "static", "torch.export made dim 0 static"
    bigger = [_grown(tensors[0])] + list(tensors[1:])
    try:
        expected2 = cf._eager(fn, bigger)
    except cf._Skip:
        return "symbolic", "the second size is invalid for torch eager too"
    try:
        second = cf.compare(built.run(bigger), expected2, check)
    except GuardError as e:
        return "guarded", cf._first_line(e)
    except Exception as e:  # noqa: BLE001
        return "error", f"at the second size: {type(e).__name__}: {cf._first_line(e)}"
    if second.status != cf.PASS:
        return second.status, "at the second size: " + second.reason
    if built.captures() not in (None, 1):
        return "error", f"{built.captures()} captures for two sizes"
    return "symbolic", ""


def _outs(out):
    return out if isinstance(out, (tuple, list)) else [out]


def run(ops: Sequence[str] | None = None, target: str = "reference", in_table: bool = True) -> dict:
    """{op name: (outcome, reason)} over the OpInfo database (or the named ops)."""
    results = {}
    for opinfo in cf.load_op_db():
        name = cf.full_name(opinfo)
        if ops and name not in ops and opinfo.name not in ops:
            continue
        if in_table and not ops and not cf.in_table(opinfo):
            continue
        results[name] = check_op(opinfo, target)
    return results


def summary(results: dict) -> str:
    counts = Counter(o for o, _ in results.values())
    return ", ".join(f"{k} {counts[k]}" for k in OUTCOMES if counts[k])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="reference")
    ap.add_argument("--ops", nargs="*")
    ap.add_argument("--all", action="store_true", help="every OpInfo, not only those named like a table op")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import warnings
    warnings.filterwarnings("ignore")
    results = run(args.ops, args.target, in_table=not args.all)
    for name, (outcome, reason) in sorted(results.items()):
        print(f"{name:<40} {outcome:<11} {reason[:150]}")
    print(f"{len(results)} OpInfos with dim 0 dynamic on {args.target}: {summary(results)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: list(v) for k, v in results.items()}, f, indent=1)
    return 1 if any(o == "fail" for o, _ in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
