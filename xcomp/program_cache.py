"""The program cache: optimized programs kept on disk, so a second process skips the pass pipeline.

`xcomp.compile` and `xcomp.export` look the captured program up here before running the target's
pipeline (`optimize`). The key hashes

- the captured program's IR text (weights are out of line, `xc.weight {name}`), its functions'
  argument names and its weight dtypes;
- every weight's bytes, each array hashed once per process (`array_digest`: a second compile of the
  same captured program hashes nothing again);
- the target, its options (normalized: `options_text`) and the pass list;
- xcomp's version and a fingerprint of xcomp's own Python files (`source_fingerprint`: their sizes
  and modification times), so a changed pass never reuses an entry written by the old one.

An entry (namespace "programs" of `xcomp.cache`) holds the optimized IR (`program.mlir`), the
weights the pipeline made (folded ones, such as pre-transposed matmul weights) as safetensors, and
`program.json` (pass records, weight dtypes, argument and value names). Weights the optimized
program shares with the captured one are referenced by name, not copied. Before an entry is stored
its IR is parsed back and printed again; a program whose text does not read back exactly is not
stored. A hit parses the IR and goes straight to the target's build (which for `cpp` finds its
library in the `cpp` namespace: no code generation, no compiler). `compiled.explain()` says when its
program came from the cache.

A pipeline holding a pass defined outside xcomp is never cached. `cache=False` (`xcomp.compile`,
`xcomp.export`) or `XCOMP_CACHE=0` turns the cache off. Exported Core ML packages are kept as well
(namespace "coreml", `export`): a hit copies the package instead of lowering and saving it again.
"""
from __future__ import annotations

import copy
import enum
import functools
import hashlib
import json
import os
import shutil
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xcomp.cache import Cache, content_key
from xcomp.ir.core import Program
from xcomp.logs import get_logger
from xcomp.passes.manager import PassRecord, PipelineReport

_LOG = get_logger("cache")
_KEY_VERSION = "xcomp-programs-1"
NAMESPACE = "programs"
PROGRAM = "program.mlir"
WEIGHTS = "weights.safetensors"
INFO = "program.json"
# targets whose exported artifact is cached too: target -> (the artifact's name in an entry, the
# distribution whose version is part of the key). CoreMLTarget.export appends the suffix to a path
# that lacks it; `export` does the same.
PACKAGE_TARGETS = {"coreml": ("model.mlpackage", "coremltools")}


def enabled(option: bool | None = None) -> bool:
    """Whether the cache is used: `option` when given (`cache=` of compile/export), else
    XCOMP_CACHE (default on; 0, off, false, no turn it off)."""
    if option is not None:
        return bool(option)
    return os.environ.get("XCOMP_CACHE", "1").strip().lower() not in ("0", "", "off", "false", "no")


# -- the key -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def source_fingerprint() -> str:
    """xcomp's version and the path, size and modification time (ns) of every Python file of xcomp
    and its backends, hashed once per process: an edited, reinstalled or checked-out file changes it
    (stat only: reading ~130 files would cost more than the rest of a cached start)."""
    import xcomp
    import xcomp.backends
    h = hashlib.sha256(xcomp.__version__.encode())

    def walk(folder: str, rel: str) -> None:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        for e in entries:
            if e.name.endswith(".py") and e.is_file():
                st = e.stat()
                h.update(f"{rel}{e.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        for e in entries:
            if e.is_dir() and not e.name.startswith((".", "__")):
                walk(e.path, f"{rel}{e.name}/")
    for pkg in (xcomp, xcomp.backends):
        walk(os.path.dirname(os.path.abspath(pkg.__file__)), "")
    return h.hexdigest()


_DIGESTS: dict[int, tuple[Any, str]] = {}   # id(array) -> (weak reference, digest)


def array_digest(a) -> str:
    """sha256 of an array's dtype, shape and bytes; remembered per array object for this process (an
    array changed in place after its first hash keeps that hash: a new capture makes new arrays)."""
    key = id(a)
    known = _DIGESTS.get(key)
    if known is not None and known[0]() is a:
        return known[1]
    arr = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.reshape(-1).view(np.uint8).data if arr.size else b"")
    digest = h.hexdigest()
    try:
        ref = weakref.ref(a, lambda _, k=key: _DIGESTS.pop(k, None))
    except TypeError:   # not weak-referenceable: hashed each time
        return digest
    _DIGESTS[key] = (ref, digest)
    return digest


def _plain(v):
    """`v` as JSON data (enums by name, other objects by repr), dicts sorted."""
    if isinstance(v, enum.Enum):
        return f"{type(v).__name__}.{v.name}"
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return repr(v)


def options_text(target) -> str:
    """The target's options (`xcomp.compile(..., **options)`) as canonical JSON."""
    return json.dumps(_plain(getattr(target, "options", None) or {}), sort_keys=True)


def _pass_names(target, passes) -> list[str] | None:
    """The pipeline's pass names, or None when one is unknown or defined outside xcomp (not cached)."""
    from xcomp import passes as _registry  # noqa: F401  (registers the built-in passes)
    from xcomp.passes.manager import PASSES
    names = list(target.pipeline if passes is None else passes)
    if any(n not in PASSES or not PASSES[n].__module__.startswith("xcomp.") for n in names):
        return None
    return names


def program_key(program: Program, target, passes=None) -> str | None:
    """The cache key of `program` optimized for `target` (None: this pipeline is not cached)."""
    from xcomp.ir.printer import print_program
    names = _pass_names(target, passes)
    if names is None:
        return None
    # a capture cache hit's program gives the text it was read from, unparsed (frontends/capture_cache)
    text, arg_names = getattr(program, "unparsed", None) or \
        (print_program(program), {n: list(f.arg_names) for n, f in program.funcs.items()})
    side = {"weight_dtypes": {k: getattr(v, "value", str(v)) for k, v in sorted(program.weight_dtypes.items())},
            "arg_names": {n: list(a) for n, a in sorted(arg_names.items())}}
    weights = [f"{n}={array_digest(w)}" for n, w in sorted(program.weights.items())]
    return content_key(_KEY_VERSION, source_fingerprint(), text, json.dumps(side, sort_keys=True),
                       *weights, "|", target.name, options_text(target), json.dumps(names))


# -- entries -------------------------------------------------------------------------------------------
@dataclass
class CachedReport(PipelineReport):
    """A pipeline report read from a cache entry: the records (times included) are those of the
    process that ran the pipeline; `str()` says so first."""

    entry: str = ""

    def __str__(self) -> str:
        return (f"from the compile cache ({self.entry}); pass times are the building process's\n"
                + super().__str__())


class _NotStored(Exception):
    """The optimized program cannot be stored (its text does not read back, or a weight's dtype has
    no safetensors code): the result is used, nothing is cached."""


def _values(program: Program):
    """Every value of the program (block arguments, op results) in a fixed order."""
    def block(b):
        yield from b.args
        for op in b.ops:
            yield from op.results
            for r in op.regions:
                for bb in r.blocks:
                    yield from block(bb)
    for name in sorted(program.funcs):
        yield from block(program.funcs[name].body)


def round_trip_error(text: str, program: Program) -> str | None:
    """Why `text` (the printed `program`) cannot stand for it in a cache entry, or None: it must parse
    back, print to the same text and hold as many values (their hints are stored by position)."""
    from xcomp.ir.parser import parse
    from xcomp.ir.printer import print_program
    try:
        again = parse(text, program.weights)
    except Exception as e:  # noqa: BLE001 - any failure to read back: not stored
        return f"does not parse back ({type(e).__name__}: {e})"
    if print_program(again) != text or sum(1 for _ in _values(again)) != sum(1 for _ in _values(program)):
        return "does not print back to the same text"
    return None


def _write(d: str, captured: Program, optimized: Program, report, text: str) -> None:
    from xcomp.serialize import write_safetensors
    error = round_trip_error(text, optimized)
    if error:
        raise _NotStored(f"the optimized IR {error}")
    derived = {n: w for n, w in optimized.weights.items() if captured.weights.get(n) is not w}
    with open(os.path.join(d, PROGRAM), "w") as f:
        f.write(text)
    if derived:
        try:
            write_safetensors({n: np.asarray(w) for n, w in derived.items()}, os.path.join(d, WEIGHTS))
        except TypeError as e:
            raise _NotStored(str(e)) from None
    info = {"shared_weights": sorted(set(optimized.weights) - set(derived)),
            "weight_dtypes": {k: getattr(v, "value", str(v)) for k, v in sorted(optimized.weight_dtypes.items())},
            "arg_names": {n: list(f.arg_names) for n, f in sorted(optimized.funcs.items())},
            "hints": {str(i): v.hint for i, v in enumerate(_values(optimized)) if v.hint},
            "passes": [asdict(r) for r in report.records], "created": time.time()}
    with open(os.path.join(d, INFO), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)


def _read(d: str, captured: Program) -> tuple[Program, CachedReport]:
    from xcomp.ir.parser import parse
    from xcomp.ir.types import DType
    from xcomp.serialize import read_safetensors
    with open(os.path.join(d, INFO)) as f:
        info = json.load(f)
    weights = {n: captured.weights[n] for n in info["shared_weights"]}
    if os.path.exists(os.path.join(d, WEIGHTS)):
        weights.update(read_safetensors(os.path.join(d, WEIGHTS)))
    with open(os.path.join(d, PROGRAM)) as f:
        program = parse(f.read(), weights, source_name=os.path.join(d, PROGRAM))
    program.weight_dtypes = {k: DType(v) for k, v in info["weight_dtypes"].items()}
    for name, arg_names in info["arg_names"].items():
        program.funcs[name].arg_names = list(arg_names)
    hints = info["hints"]
    if hints:
        for i, v in enumerate(_values(program)):
            v.hint = hints.get(str(i), "")
    program.metadata = copy.deepcopy(captured.metadata)
    return program, CachedReport([PassRecord(**r) for r in info["passes"]], entry=d)


def _load(cache: Cache, key: str, d: str, captured: Program):
    """The entry's (program, report), or None after removing an entry that does not load."""
    try:
        out = _read(d, captured)
    except Exception as e:  # noqa: BLE001 - an entry that passed its checksums but does not load
        _LOG.debug("unreadable entry %s/%s (%s: %s): rebuilding", cache.namespace, key[:16], type(e).__name__, e)
        cache.remove(key)
        return None
    _LOG.debug("hit %s/%s: pass pipeline skipped", cache.namespace, key[:16])
    return out


def optimize(program: Program, target, passes=None, use_cache: bool | None = None):
    """`(optimized, report, key)`: `xcomp.optimize(program, target.name, passes)` through the cache
    (`key` None when the cache was not used). Concurrent processes run the pipeline once: the others
    wait on the entry's lock and load what it stored."""
    from xcomp.api import optimize as run
    from xcomp.ir.printer import print_program
    key = program_key(program, target, passes) if enabled(use_cache) else None
    if key is None:
        return (*run(program, target.name, passes), None)
    cache = Cache(NAMESPACE)
    hit = cache.lookup(key)
    loaded = hit and _load(cache, key, hit, program)
    if loaded:
        return (*loaded, key)
    built: dict = {}

    def produce(d: str) -> None:
        built["result"] = run(program, target.name, passes)
        _write(d, program, *built["result"], print_program(built["result"][0]))
    try:
        entry = cache.get(key, produce)
    except _NotStored as e:
        _LOG.debug("not cached %s/%s: %s", NAMESPACE, key[:16], e)
        return (*built["result"], None)
    except OSError as e:   # a cache folder that cannot be written: compile without it
        _LOG.debug("cache unusable (%s): %s", cache.dir, e)
        return (*(built.get("result") or run(program, target.name, passes)), None)
    if "result" in built:
        return (*built["result"], key)
    loaded = _load(cache, key, entry, program)   # stored by another process while this one waited
    return (*loaded, key) if loaded else (*run(program, target.name, passes), None)


def export(target, optimized: Program, path: str, key: str | None, use_cache: bool | None = None) -> str:
    """`target.export(optimized, path)`; for PACKAGE_TARGETS through the cache (namespace: the
    target's name), keyed by the program's key, the target's options and the converter's version: a
    hit copies the stored artifact to `path` instead of converting again."""
    if key is None or target.name not in PACKAGE_TARGETS or not enabled(use_cache):
        return target.export(optimized, path)
    from importlib.metadata import PackageNotFoundError, version
    name, dist = PACKAGE_TARGETS[target.name]
    try:
        tool = f"{dist} {version(dist)}"
    except PackageNotFoundError:
        tool = f"{dist} (not installed)"
    cache = Cache(target.name)
    try:
        entry = cache.get(content_key(_KEY_VERSION, "artifact", key, options_text(target), tool),
                          lambda d: target.export(optimized, os.path.join(d, name)))
    except OSError as e:   # a cache folder that cannot be written: export without it
        _LOG.debug("cache unusable (%s): %s", cache.dir, e)
        return target.export(optimized, path)
    ext = os.path.splitext(name)[1]
    dest = path if path.endswith(ext) else path.rstrip("/" + os.sep) + ext
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    elif os.path.exists(dest):
        os.remove(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    stored = os.path.join(entry, name)
    (shutil.copytree if os.path.isdir(stored) else shutil.copy2)(stored, dest)
    return dest
