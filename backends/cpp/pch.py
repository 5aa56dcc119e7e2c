"""The generated units' prelude, precompiled (GCC precompiled headers), cached on disk.

Every unit the code generator writes opens with the same text (templates/cpp/prelude.j2:
`#include "xcomp_runtime.h"` and the generator's helpers inside the include guard XCOMP_PRELUDE).
Parsing it, with <cmath>, <algorithm> and <vector>, was ~0.6 s of g++ CPU time per build; loading it
precompiled takes ~0.1 s. A `Cache("cpp-pch")` entry holds `xcomp_prelude.h` (that text),
`xcomp_runtime.h` and `xcomp_prelude.h.gch`, keyed by the text, the runtime header, the toolchain
(compiler, version, flags, CPU features), the BLAS defines and the extra flags: GCC accepts a
precompiled header only under the options it was built with. A unit is compiled as it is, with
`-include <entry>/xcomp_prelude.h`: GCC loads the .gch, then skips the unit's own copy of the text
(include guards). Where GCC rejects the .gch it reads the header instead (same text, same code), so
the precompiled header never changes what is built, only how fast; libraries' cache keys ignore it.

Building one takes ~1 s of CPU, so it runs in a background thread, started by `start` (the cpp
target starts it when `xcomp.compile` checks that the target can run, so it overlaps capture and
the passes) or by `for_unit` on a miss (that build goes on without it; later ones use it). A build
waits for one already running in the process. Only GCC (clang's precompiled headers take other
options); XCOMP_PCH=0 turns it off.
"""
from __future__ import annotations

import os
import subprocess
import threading

from xcomp.backends.cpp.toolchain import Blas, Toolchain
from xcomp.cache import Cache, content_key

PRELUDE = "xcomp_prelude.h"
END = "#endif  // XCOMP_PRELUDE\n"
_KEY_VERSION = "xcomp-cpp-pch-1"
_TIMEOUT_S = 300

_lock = threading.Lock()
_running: dict[str, threading.Thread] = {}   # key -> the thread building it in this process
_ready: dict[str, str] = {}                  # key -> entry verified in this process


def prelude_of(source: str) -> str | None:
    """The prelude a unit's source opens with (through the guard's `#endif`), or None."""
    if not source.startswith('#include "xcomp_runtime.h"\n#ifndef XCOMP_PRELUDE\n'):
        return None
    end = source.find(END)
    return source[:end + len(END)] if end >= 0 else None


def usable(tc: Toolchain) -> bool:
    """Whether builds with `tc` use precompiled preludes (GCC, XCOMP_PCH not 0)."""
    return os.environ.get("XCOMP_PCH", "1") != "0" and "clang" not in tc.version.lower()


def _key(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...]) -> str:
    from xcomp.backends.cpp.build import runtime_header
    return content_key(_KEY_VERSION, prelude, runtime_header(), tc.fingerprint(uses_blas), repr(extra))


def _cache() -> Cache:
    return Cache("cpp-pch")


def _produce(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...], d: str) -> None:
    from xcomp.backends.cpp.build import RUNTIME_HEADER, runtime_header
    with open(os.path.join(d, PRELUDE), "w") as f:
        f.write(prelude)
    with open(os.path.join(d, RUNTIME_HEADER), "w") as f:
        f.write(runtime_header())
    blas = tc.blas if uses_blas else Blas("fallback")
    cmd = [tc.cxx, *tc.flags, *blas.defines, *extra, f"-I{d}", "-x", "c++-header", os.path.join(d, PRELUDE),
           "-o", os.path.join(d, PRELUDE + ".gch")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, cwd=d)
    if r.returncode != 0 or not os.path.isfile(os.path.join(d, PRELUDE + ".gch")):
        raise RuntimeError(f"precompiling the prelude failed: {(r.stderr or r.stdout).strip()[-2000:]}")


def _build(key: str, prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...]) -> None:
    cache = _cache()
    try:
        d = cache.get(key, lambda d: _produce(prelude, tc, uses_blas, extra, d))
        with _lock:
            _ready[d] = d
    except Exception:  # no precompiled header: builds parse the prelude, as without one
        pass
    finally:
        with _lock:
            _running.pop(cache.entry_dir(key), None)


def start(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...] = ()) -> str:
    """Start building the precompiled `prelude` in the background unless it is cached or being built;
    the folder its entry has when built. The thread is not a daemon: a process that ends first waits
    for it (no half-built entry is left behind)."""
    cache = _cache()
    key = _key(prelude, tc, uses_blas, extra)
    d = cache.entry_dir(key)   # (the memo is by folder: the cache folder may change, XCOMP_CACHE_DIR)
    with _lock:
        if d in _ready or d in _running:
            return d
    if cache.lookup(key):
        with _lock:
            _ready[d] = d
        return d
    with _lock:
        if d not in _running and d not in _ready:
            t = threading.Thread(target=_build, args=(key, prelude, tc, uses_blas, extra), name="xcomp-pch")
            _running[d] = t
            t.start()
    return d


_keyed = threading.Event()    # clear while `prepare`'s thread has not yet registered what it builds
_keyed.set()
_prepared_roots: set[str] = set()


def prepare() -> None:
    """Start precompiling the generated units' prelude for the current toolchain (BLAS variant) in a
    background thread, once per process and cache folder: called when a `cpp` compile begins, so the
    ~1 s of g++ overlaps capture and the passes instead of following them."""
    root = _cache().dir
    with _lock:
        if root in _prepared_roots:
            return
        _prepared_roots.add(root)
        _keyed.clear()
    threading.Thread(target=_prepare, name="xcomp-pch-prepare").start()


def _prepare() -> None:
    try:
        from xcomp.backends.cpp.emit import prelude
        from xcomp.backends.cpp.toolchain import toolchain
        text, tc = prelude(), toolchain()
        if not usable(tc):
            return
        cache, key = _cache(), _key(text, tc, True, ())
        d = cache.entry_dir(key)
        with _lock:
            if d in _ready or d in _running:
                return
            _running[d] = threading.current_thread()
    except Exception:  # (no compiler: the build says so)
        return
    finally:
        _keyed.set()
    if cache.lookup(key):
        with _lock:
            _ready[d] = d
            _running.pop(d, None)
        return
    _build(key, text, tc, True, ())


def for_unit(source: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...] = ()) -> str | None:
    """The path of the precompiled prelude's header (for `-include`) for a unit's `source`, or None:
    the unit has no prelude, the compiler is not GCC, or it is not built yet (then it is started in
    the background; one already being built in this process is waited for)."""
    prelude = prelude_of(source)
    if prelude is None or not usable(tc):
        return None
    d = _cache().entry_dir(_key(prelude, tc, uses_blas, extra))
    _keyed.wait(60)
    with _lock:
        t = _running.get(d)
    if t is not None:      # started earlier (by `start` while the program was captured): worth the wait
        t.join()
    else:
        start(prelude, tc, uses_blas, extra)
    with _lock:
        ready = d in _ready
    path = os.path.join(d, PRELUDE)
    return path if ready and os.path.isfile(path + ".gch") else None
