"""The metal/cuda tuner's choices kept on disk, so a second process does not time its kernels again.

`persisted` wraps the tuner (`KernelEvaluator._choose` in `backends/kernels/target.py`): the choice
for a fused group (one of its kernel variants, the group's MLX built-ins, or the built-ins under
`mx.compile`) is stored in namespace "tuning" of `xcomp.cache`, keyed by the dialect, the device
(name, architecture, MLX version), the sources of every kernel variant (launch shapes included) and
the sizes and dtypes of the group's inputs. A stored kernel choice names the variant by its index
and its source's hash; when the variants no longer match (a changed generator makes other
sources, hence another key; a mismatch inside an entry means it is stale) the group is timed again.
Off with `XCOMP_CACHE=0` or `XCOMP_KERNEL_TUNE=0` (no tuning, nothing to keep); an evaluator
whose runtime was replaced (`ev.rt`, a test's scripted timer) keeps nothing either: only times
measured by `backends/kernels/runtime.py` are stored.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os

from xcomp.cache import Cache, content_key
from xcomp.logs import get_logger

_LOG = get_logger("cache")
NAMESPACE = "tuning"
CHOICE = "choice.json"
_KEY_VERSION = "xcomp-tuning-1"


def device_text(mx) -> str:
    """The device the choices were timed on: MLX's device info, default device and version."""
    info: dict = {}
    try:
        info = dict(mx.device_info())
    except Exception:  # noqa: BLE001 - an MLX without device_info: the default device alone
        pass
    keep = {k: str(info[k]) for k in ("device_name", "architecture") if k in info}
    return json.dumps({"device": str(mx.default_device()), "mlx": mx.__version__, **keep}, sort_keys=True)


def plan_text(plan) -> str:
    """Everything that makes one kernel variant what it is: sources with launch shapes, the MLX
    prelude op, the operand map."""
    parts = [plan.spec.full_source(), plan.partials.full_source() if plan.partials is not None else "",
             repr(plan.input_map), plan.prelude.name if plan.prelude is not None else ""]
    return "\n//--\n".join(parts)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(choose):
    """Decorate the tuner `choose(evaluator, op, env, args)` so that its result is stored and, in a
    later process, read back instead of timed again (see the module's docstring)."""
    @functools.wraps(choose)
    def wrapper(ev, op, env, args):
        from xcomp.backends.kernels import runtime
        from xcomp.program_cache import enabled
        if not getattr(ev, "tune", False) or ev.rt is not runtime or not enabled():
            return choose(ev, op, env, args)   # only times measured by the real runtime are kept
        from xcomp.backends.kernels import codegen
        from xcomp.errors import LoweringError
        size_class = getattr(ev, "size_class", ())   # kernels that read their sizes at run time
        try:
            plans = codegen.variants(op, ev.dialect, size_class) if size_class else codegen.variants(op, ev.dialect)
        except LoweringError:
            return choose(ev, op, env, args)   # no kernel: nothing to time, nothing to keep
        texts = [plan_text(p) for p in plans]
        sizes = [[list(getattr(a, "shape", ())), str(getattr(a, "dtype", type(a).__name__))] for a in args]
        key = content_key(_KEY_VERSION, ev.dialect, device_text(ev.mx), json.dumps(sizes), repr(size_class), *texts)
        cache = Cache(NAMESPACE)
        hit = cache.lookup(key)
        if hit:
            remembered = _recall(ev, op, plans, texts, hit)
            if remembered is not _STALE:
                return remembered
            _LOG.debug("stale tuning entry %s: timing again", key[:16])
        choice = choose(ev, op, env, args)
        kind, index = _describe(choice, texts)
        record = {"kind": kind, "index": index, "sha256": _digest(texts[index]) if index is not None else None,
                  "decision": ev.decisions[-1] if ev.decisions else ""}
        def write(d: str) -> None:
            with open(os.path.join(d, CHOICE), "w") as f:
                json.dump(record, f, indent=1, sort_keys=True)
        try:
            if hit:   # a stale entry: replace it
                cache.remove(key)
            cache.get(key, write)
        except OSError as e:   # a cache folder that cannot be written: the choice stays in memory
            _LOG.debug("cache unusable (%s): %s", cache.dir, e)
        return choice
    return wrapper


_STALE = object()


def _describe(choice, texts: list[str]) -> tuple[str, int | None]:
    from xcomp.backends.kernels.codegen import KernelPlan
    if choice is None:
        return "builtins", None
    if isinstance(choice, KernelPlan):
        text = plan_text(choice)
        return "kernel", texts.index(text) if text in texts else None
    return "compiled", None


def _recall(ev, op, plans, texts: list[str], entry: str):
    """The stored choice as the tuner returns it (a plan, the compiled group, None), or _STALE."""
    try:
        with open(os.path.join(entry, CHOICE)) as f:
            record = json.load(f)
        kind, index = record["kind"], record["index"]
    except (OSError, ValueError, KeyError, TypeError):
        return _STALE
    what = op.attrs["kind"].value
    note = f" (tuned by an earlier process, from the cache: {record.get('decision', '')})"
    if kind == "builtins":
        ev.decisions.append(f"{what}: MLX built-ins" + note)
        return None
    if kind == "compiled":
        ev.decisions.append(f"{what}: MLX built-ins under mx.compile" + note)
        return ev._compiled_group(op)
    if kind == "kernel" and isinstance(index, int) and 0 <= index < len(plans) \
            and _digest(texts[index]) == record.get("sha256"):
        ev.decisions.append(f"{plans[index].spec.name}: kernel" + note)
        return plans[index]
    return _STALE
