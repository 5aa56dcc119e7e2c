"""Conformance against PyTorch's OpInfo database (`op_db`).

For every OpInfo, every float32 sample input is captured with `xcomp.capture` (torch.export, core
ATen, the aten table), compiled for each target with `xcomp.compile`, and compared with torch eager
by per-dtype tolerances. An op passes a target when all of its samples pass (or are explicitly,
reasonably xfailed, see `XFAIL`).

    python -m xcomp.conformance [--targets reference mlx] [--ops add mul ...] [--limit-samples N]
                                [--in-table] [--markdown] [--skips] [--json PATH] [--load PATH]
                                [--verbose]

Torch (and op_db, which needs expecttest) is imported only when the harness runs, so `import xcomp`
needs neither.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from xcomp.conformance_scope import (RANDOM_OPS, SKIP_OPS, SKIP_PREFIXES, UNINITIALIZED_OPS,  # noqa: F401
                                     aten_candidates, float32_samples, full_name, in_table, load_op_db,
                                     skip_reason)  # (re-exported: the harness's scope is part of its API)
from xcomp.errors import LoweringError, UnsupportedOpError, XcompError
from xcomp.tolerances import tolerance

# Outcomes of one sample (and, aggregated, of one op) on one target, worst first.
FAIL, ERROR, UNSUPPORTED, XFAIL, PASS, SKIP = "fail", "error", "unsupported", "xfail", "pass", "skip"
_ORDER = [FAIL, ERROR, UNSUPPORTED, PASS, XFAIL, SKIP]


# Looser tolerances (a multiplier of the dtype's) only where float32 accumulation order legitimately
# differs between torch and a target: long dot products, convolutions, running sums and
# two-pass statistics. Each key is an OpInfo name; the reason is the accumulation it involves.
OP_TOL_SCALE: dict[str, tuple[float, str]] = {
    **{n: (10.0, "dot-product accumulation order") for n in (
        "matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "addmm", "addmv", "addbmm",
        "baddbmm", "addr", "einsum", "tensordot", "linalg.multi_dot", "linalg.vecdot", "kron",
        "nn.functional.linear", "nn.functional.bilinear", "__rmatmul__", "linalg.matrix_power",
        "nn.functional.scaled_dot_product_attention", "cdist", "nn.functional.pairwise_distance")},
    **{n: (10.0, "convolution accumulation order") for n in (
        "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv3d",
        "nn.functional.conv_transpose1d", "nn.functional.conv_transpose2d",
        "nn.functional.conv_transpose3d")},
    **{n: (10.0, "running-sum / two-pass statistics accumulation order") for n in (
        "cumsum", "cumprod", "logcumsumexp", "var", "std", "var_mean", "std_mean", "sum", "mean",
        "nansum", "nanmean", "prod", "norm", "linalg.norm", "linalg.vector_norm",
        "linalg.matrix_norm", "nn.functional.layer_norm", "nn.functional.group_norm",
        "nn.functional.batch_norm", "nn.functional.instance_norm", "nn.functional.rms_norm",
        "native_layer_norm", "native_batch_norm", "native_group_norm", "logsumexp", "trace",
        "cumulative_trapezoid", "trapezoid", "trapz", "nn.functional.local_response_norm",
        "nn.functional.cosine_similarity", "nn.functional.normalize", "dist", "softmax",
        "log_softmax", "nn.functional.softmin", "_softmax_backward_data")},
}

# Explicit expected failures: (OpInfo name, target) -> reason. Target "*" means every target.
# Only genuine limitations belong here, never bugs to fix.
XFAIL: dict[tuple[str, str], str] = {
}


@dataclass
class SampleOutcome:
    status: str
    reason: str = ""


@dataclass
class OpResult:
    """Per-target outcome of one OpInfo (aggregated over its samples)."""

    name: str
    status: dict[str, str] = field(default_factory=dict)     # target -> status
    reason: dict[str, str] = field(default_factory=dict)     # target -> short reason
    samples: int = 0                                          # samples run
    missing: list[str] = field(default_factory=list)         # aten ops the table lacks
    aten: dict[str, list[str]] = field(default_factory=dict)  # aten overload converted -> IR ops it built


@dataclass
class Report:
    targets: list[str]
    results: list[OpResult]
    seconds: float = 0.0

    def passing(self, target: str) -> list[str]:
        return [r.name for r in self.results if r.status.get(target) in (PASS, XFAIL)]

    def passing_all(self) -> list[str]:
        return [r.name for r in self.results if all(r.status.get(t) in (PASS, XFAIL) for t in self.targets)]

    def counts(self, target: str) -> Counter:
        return Counter(r.status.get(target) for r in self.results)


# -- one sample ------------------------------------------------------------------------------------
class _Skip(Exception):
    """This sample is outside the harness's scope (the message says why)."""


def _leaves(tree):
    from torch.utils import _pytree
    return _pytree.tree_leaves(tree)


def _bind_sample(opinfo, sample):
    """(fn of the sample's tensors, the tensors): non-tensor arguments are closed-over constants."""
    import torch
    from torch.utils import _pytree
    flat, spec = _pytree.tree_flatten((sample.input, tuple(sample.args), dict(sample.kwargs)))
    positions = [i for i, x in enumerate(flat) if isinstance(x, torch.Tensor)]
    tensors = [flat[i] for i in positions]
    for t in tensors:
        if t.layout != torch.strided:
            raise _Skip("sparse or non-strided input")
        if t.is_complex():
            raise _Skip("complex input")
    if "out" in sample.kwargs:
        raise _Skip("out= variant")
    op = opinfo.op

    def fn(*ts):
        full = list(flat)
        for i, t in zip(positions, ts):
            full[i] = t
        inp, args, kwargs = _pytree.tree_unflatten(full, spec)
        return op(inp, *args, **kwargs)
    return fn, tensors


def _eager(fn, tensors):
    """Torch eager output leaves; skips input mutation, random ops, complex/sparse outputs."""
    import torch
    from xcomp.frontends.torch_export import TORCH_DTYPES
    inputs = [t.clone() for t in tensors]
    torch.manual_seed(0)
    try:
        out = fn(*inputs)
        torch.manual_seed(1)
        again = fn(*[t.clone() for t in tensors])
    except Exception as e:  # the sample itself is invalid without autograd, or on this build
        raise _Skip(f"eager torch raised {type(e).__name__}") from None
    if not all(_same(a, b) for a, b in zip(inputs, tensors)):
        raise _Skip("mutates its inputs")
    leaves, leaves2 = _leaves(out), _leaves(again)
    for x in leaves:
        if isinstance(x, torch.Tensor) and (x.is_complex() or x.layout != torch.strided):
            raise _Skip("complex or sparse output")
        if isinstance(x, torch.Tensor) and x.dtype not in TORCH_DTYPES:
            raise _Skip(f"output dtype {x.dtype}")
    if len(leaves) != len(leaves2) or not all(_same(a, b) for a, b in zip(leaves, leaves2)):
        raise _Skip("random or nondeterministic op")
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]


def _same(a, b) -> bool:
    """Equal values, NaNs in the same places (non-tensors compare with ==)."""
    import torch
    if not isinstance(a, torch.Tensor):
        return a == b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
    return torch.equal(a, b)


def _capture(fn, tensors):
    """Capture through xcomp. torch.export's own failures (data-dependent shapes, graph breaks)
    are skips: they are not xcomp's."""
    import xcomp
    try:
        return xcomp.capture(fn, tensors)
    except XcompError:
        raise
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)
        if not any(f.name in ("convert_graph", "from_exported") and "torch_export" in f.filename
                   and "run_decompositions" not in (f.line or "") for f in frames[1:]) \
                and any("/torch/" in f.filename for f in frames):
            raise _Skip(f"torch.export cannot capture it ({type(e).__name__})") from None
        raise


def default_check(name: str) -> Callable[[Any, Any], None]:
    """Compare one output with torch's: shape and dtype, then values within tolerance."""
    scale = OP_TOL_SCALE.get(name, (1.0, ""))[0]

    def check(actual: np.ndarray, expected: np.ndarray):
        if actual.shape != expected.shape:
            raise AssertionError(f"shape {actual.shape} != {expected.shape}")
        if expected.dtype.kind in "biu":
            if actual.dtype != expected.dtype:
                raise AssertionError(f"dtype {actual.dtype} != {expected.dtype}")
            if not np.array_equal(actual, expected):
                bad = int(np.sum(actual != expected))
                raise AssertionError(f"{bad}/{expected.size} elements differ")
            return
        if actual.dtype != expected.dtype:
            raise AssertionError(f"dtype {actual.dtype} != {expected.dtype}")
        rtol, atol = tolerance(expected.dtype.name)
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        if not np.allclose(a, e, rtol=rtol * scale, atol=atol * scale, equal_nan=True):
            with np.errstate(invalid="ignore"):
                err = np.abs(a - e)
            err = err[~(np.isnan(a) & np.isnan(e))]
            raise AssertionError(f"max abs error {np.nanmax(err) if err.size else float('nan'):.3g}"
                                 f" (rtol {rtol * scale:g}, atol {atol * scale:g})")
    return check


def _to_numpy(x) -> np.ndarray:
    from xcomp.arrays import to_numpy
    return to_numpy(x)  # bfloat16 as float32, as xcomp holds it


CHUNK = 48  # samples captured together in one program (bounded, some OpInfos have 1000+ samples)


@dataclass
class _Prepared:
    """One sample ready to run: the function of its tensors, the tensors, torch's output leaves."""

    fn: Callable
    tensors: list
    expected: list


def _batched(prepared: list[_Prepared]):
    """One function computing every sample (outputs concatenated), so one capture serves them all:
    capture cost (torch.export plus core-ATen decomposition) is per call, not per op."""
    counts = [len(p.tensors) for p in prepared]

    def fn(*tensors):
        outs, i = [], 0
        for p, n in zip(prepared, counts):
            outs.extend(_leaves(p.fn(*tensors[i:i + n])))
            i += n
        return tuple(outs)
    return fn, [t for p in prepared for t in p.tensors]


# Options the harness compiles each target with (float32 conformance: Core ML computes in float32).
TARGET_OPTIONS: dict[str, dict] = {"coreml": {"compute_precision": "float32"}}
# Targets checked through their saved artifact where they cannot run: target -> "module:function"
# taking (program, numpy inputs, **options) and returning the outputs.
ARTIFACT_RUNNERS: dict[str, str] = {"coreml": "xcomp.backends.coreml.evaluate:run_program"}


def _run_program(program, tensors, target: str) -> list:
    import importlib
    import xcomp
    from xcomp.backends import get_target
    arrays = [t.detach().cpu().numpy() for t in tensors]
    options = TARGET_OPTIONS.get(target, {})
    if target in ARTIFACT_RUNNERS and get_target(target).unavailable_reason():
        module, fn = ARTIFACT_RUNNERS[target].split(":")
        return list(getattr(importlib.import_module(module), fn)(program, arrays, **options))
    out = xcomp.compile(program, target=target, **options)(*arrays)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def compare(outs: list, expected: list, check) -> SampleOutcome:
    """Compare a sample's outputs with torch's leaves."""
    if len(outs) != len(expected):
        return SampleOutcome(FAIL, f"{len(outs)} outputs, torch gives {len(expected)}")
    for i, (o, e) in enumerate(zip(outs, expected)):
        try:
            check(np.asarray(o), _to_numpy(e))
        except AssertionError as err:
            return SampleOutcome(FAIL, f"output {i}: {_first_line(err)}")
        except Exception as err:
            return SampleOutcome(ERROR, f"comparing output {i}: {type(err).__name__}: {_first_line(err)}")
    return SampleOutcome(PASS)


def _failure(e: Exception, where: str = "") -> SampleOutcome:
    if isinstance(e, (UnsupportedOpError, LoweringError)):
        return SampleOutcome(UNSUPPORTED, _first_line(e))
    return SampleOutcome(ERROR, f"{where}{type(e).__name__}: {_first_line(e)}")


def run_sample(program, p: _Prepared, target: str, check) -> SampleOutcome:
    """Compile `program` (one sample) for `target`, run it and compare with torch."""
    try:
        outs = _run_program(program, p.tensors, target)
    except Exception as e:
        return _failure(e)
    return compare(outs, p.expected, check)


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:160]


# -- one op ----------------------------------------------------------------------------------------
def _prepare(opinfo, samples, skips: list[str]) -> list[_Prepared]:
    out = []
    for sample in samples:
        try:
            fn, tensors = _bind_sample(opinfo, sample)
            expected = _eager(fn, tensors)
        except _Skip as s:
            skips.append(str(s))
            continue
        out.append(_Prepared(fn, [t.clone() for t in tensors], expected))
    return out


def _unsupported(res: OpResult, e: UnsupportedOpError) -> SampleOutcome:
    names = sorted({o.name for o in e.ops})
    res.missing = sorted(set(res.missing) | set(names))
    partial = sorted({f"{o.name}: {o.reason}" for o in e.ops if o.reason})
    return SampleOutcome(UNSUPPORTED, "; ".join(partial) if partial else "no converter for " + ", ".join(names))


def _one_by_one(res: OpResult, prepared: list[_Prepared], targets, check, skips) -> dict[str, list]:
    """Capture and run each sample on its own (precise attribution of errors)."""
    per_target: dict[str, list[SampleOutcome]] = {t: [] for t in targets}
    for p in prepared:
        try:
            program = _capture(p.fn, p.tensors)
        except _Skip as s:
            skips.append(str(s))
            continue
        except UnsupportedOpError as e:
            res.samples += 1
            outcome = _unsupported(res, e)
            for t in targets:
                per_target[t].append(outcome)
            break  # the op cannot pass; the remaining samples would only repeat this
        except Exception as e:
            res.samples += 1
            for t in targets:
                per_target[t].append(_failure(e, "capture: "))
            continue
        res.samples += 1
        for t in targets:
            per_target[t].append(run_sample(program, p, t, check))
    return per_target


def _all_at_once(res: OpResult, prepared: list[_Prepared], targets, check) -> dict[str, list] | None:
    """Capture every sample in one program and run it once per target. None when any step fails
    for a reason other than a missing converter (then samples are redone one by one)."""
    fn, tensors = _batched(prepared)
    try:
        program = _capture(fn, tensors)
    except UnsupportedOpError as e:
        res.samples += len(prepared)
        return {t: [_unsupported(res, e)] for t in targets}
    except Exception:
        return None
    per_target: dict[str, list[SampleOutcome]] = {}
    for t in targets:
        try:
            outs = _run_program(program, tensors, t)
        except Exception:
            return None
        if len(outs) != sum(len(p.expected) for p in prepared):
            return None
        i, per_target[t] = 0, []
        for p in prepared:
            per_target[t].append(compare(outs[i:i + len(p.expected)], p.expected, check))
            i += len(p.expected)
    res.samples += len(prepared)
    return per_target


@contextlib.contextmanager
def recording_aten(seen: dict[str, list[str]]):
    """While active, every aten converter call adds `overload -> IR ops it built` to `seen`
    (what the mapping table, `xcomp.mapping`, reports as observed, so it cannot drift)."""
    from xcomp.frontends.aten import ATEN
    original = dict(ATEN)

    def wrap(name, conv):
        def recorded(cx, *args, **kwargs):
            block = getattr(getattr(cx, "b", None), "block", None)
            start = len(block.ops) if block is not None else 0
            out = conv(cx, *args, **kwargs)
            built = {o.name for o in (block.ops[start:] if block is not None else [])}
            seen[name] = sorted(set(seen.get(name, ())) | built)
            return out
        return recorded
    ATEN.update({k: wrap(k, f) for k, f in original.items()})
    try:
        yield seen
    finally:
        ATEN.update(original)


def check_opinfo(opinfo, targets: Sequence[str], limit: int | None = None,
                 make_check: Callable[[str], Callable] = default_check) -> OpResult:
    """Run every float32 sample of `opinfo` (at most `limit`) on `targets`, recording the aten
    overloads its captures converted (`OpResult.aten`)."""
    res = OpResult(full_name(opinfo))
    with recording_aten(res.aten):
        return _check_opinfo(opinfo, res, targets, limit, make_check)


def _check_opinfo(opinfo, res: OpResult, targets, limit, make_check) -> OpResult:
    why = skip_reason(opinfo)
    if why:
        return _all(res, targets, SKIP, why)
    try:
        samples = float32_samples(opinfo, limit)
    except Exception as e:
        return _all(res, targets, SKIP, f"sample generation failed ({type(e).__name__})")
    check = make_check(opinfo.name)
    skips: list[str] = []
    prepared = _prepare(opinfo, samples, skips)
    per_target: dict[str, list[SampleOutcome]] = {t: [] for t in targets}
    for i in range(0, len(prepared), CHUNK):
        chunk = prepared[i:i + CHUNK]
        outcomes = _all_at_once(res, chunk, targets, check) if len(chunk) > 1 else None
        if outcomes is None:
            outcomes = _one_by_one(res, chunk, targets, check, skips)
        for t in targets:
            per_target[t].extend(outcomes[t])
        if any(o.status == UNSUPPORTED for v in outcomes.values() for o in v):
            break  # the op cannot pass; the remaining samples would only repeat this
    return _finish(res, opinfo, per_target, targets, skips)


def _finish(res: OpResult, opinfo, per_target: dict[str, list], targets, skips: list[str]) -> OpResult:
    """Aggregate sample outcomes: the worst one per target, xfails applied."""
    if res.samples == 0:
        reasons = Counter(skips).most_common(1)
        return _all(res, targets, SKIP, reasons[0][0] if reasons else "no float32 samples")
    for t in targets:
        outcomes = per_target[t]
        xfail = XFAIL.get((opinfo.name, t)) or XFAIL.get((opinfo.name, "*"))
        worst = min(outcomes, key=lambda o: _ORDER.index(o.status))
        if worst.status in (FAIL, ERROR) and xfail:
            res.status[t], res.reason[t] = XFAIL, xfail
        else:
            res.status[t], res.reason[t] = worst.status, worst.reason
    return res


def check_opinfos(opinfos: Sequence, targets: Sequence[str], limit: int | None = None,
                  make_check: Callable[[str], Callable] = default_check) -> list[OpResult]:
    """Like `check_opinfo` for several OpInfos, capturing all their samples in one program (one
    torch.export instead of one per op). Ops that do not pass in the group are redone alone, so
    every failure is attributed exactly."""
    groups = []
    for o in opinfos:
        if skip_reason(o):
            continue
        try:
            prepared = _prepare(o, float32_samples(o, limit), [])
        except Exception:
            continue
        if prepared:
            groups.append((o, prepared))
    done: dict[str, OpResult] = {}
    fn, tensors = _batched([p for _, ps in groups for p in ps])
    try:
        program = _capture(fn, tensors)
        outs = {t: _run_program(program, tensors, t) for t in targets}
    except Exception:
        outs = None
    if outs is not None and any(len(v) != sum(len(p.expected) for _, ps in groups for p in ps)
                                for v in outs.values()):
        outs = None
    if outs is not None:
        i = 0
        for o, prepared in groups:
            res, per_target = OpResult(full_name(o), samples=len(prepared)), {t: [] for t in targets}
            for p in prepared:
                n = len(p.expected)
                for t in targets:
                    per_target[t].append(compare(outs[t][i:i + n], p.expected, make_check(o.name)))
                i += n
            if all(x.status == PASS for v in per_target.values() for x in v):
                done[res.name] = _finish(res, o, per_target, targets, [])
    return [done.get(full_name(o)) or check_opinfo(o, targets, limit, make_check) for o in opinfos]


def _all(res: OpResult, targets, status: str, reason: str) -> OpResult:
    for t in targets:
        res.status[t], res.reason[t] = status, reason
    return res


@contextlib.contextmanager
def cached_cia_ops():
    """Memoize torch.export's scan of the dispatcher for CompositeImplicitAutograd ops while the
    harness runs. torch rescans on every `run_decompositions` because custom ops could be registered
    in between; the harness registers none, and the scan is most of the capture time."""
    import torch.export.decomp_utils as du
    import torch.export.exported_program as ep
    original = ep._collect_all_valid_cia_ops
    cached = functools.lru_cache(maxsize=1)(original)
    ep._collect_all_valid_cia_ops = du._collect_all_valid_cia_ops = cached
    try:
        yield
    finally:
        ep._collect_all_valid_cia_ops = du._collect_all_valid_cia_ops = original


def run(targets: Sequence[str] = ("reference", "mlx"), ops: Iterable[str] | None = None,
        limit: int | None = None, only_in_table: bool = False,
        progress: Callable[[OpResult], None] | None = None,
        make_check: Callable[[str], Callable] = default_check) -> Report:
    """Run the harness over op_db (or the OpInfos named in `ops`, by name or name.variant)."""
    import warnings
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    wanted = set(ops) if ops is not None else None
    results = []
    with cached_cia_ops():
        _run(targets, wanted, limit, only_in_table, progress, make_check, results)
    return Report(list(targets), results, time.perf_counter() - t0)


def _run(targets, wanted, limit, only_in_table, progress, make_check, results):
    from xcomp.progress import progress as progress_bar
    for opinfo in progress_bar(load_op_db(), desc="conformance", unit="OpInfo"):
        name = full_name(opinfo)
        if wanted is not None and name not in wanted and opinfo.name not in wanted:
            continue
        if only_in_table and not in_table(opinfo):
            continue
        r = check_opinfo(opinfo, targets, limit, make_check)
        results.append(r)
        if progress:
            progress(r)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line, `python -m xcomp.conformance` (the reporting lives in xcomp.conformance_report)."""
    from xcomp.conformance_report import main as report_main
    return report_main(argv)


if __name__ == "__main__":
    sys.exit(main())
