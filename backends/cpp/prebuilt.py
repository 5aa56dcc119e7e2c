"""What every generated unit shares, compiled once per toolchain and cached: the prelude precompiled
(a GCC precompiled header), the GEMM entry points and common helper instantiations as objects.

Every unit the code generator writes opens with the same text (templates/cpp/prelude.j2:
`#include "xcomp_runtime.h"` and the generator's helpers inside the include guard XCOMP_PRELUDE).
Parsing it, with <cmath>, <algorithm> and <vector>, was ~0.6 s of g++ CPU time per build; loading it
precompiled takes ~0.15 s. `xc_sgemm` and `xc_sgemm_weight` (BLAS dispatch, weight packing, the
fallback GEMM) were another 0.25 s (OpenBLAS) to 1.5 s (oneMKL, whose builds keep the fallback GEMM)
in every program that multiplies matrices: with `-DXC_PREBUILT_GEMM` the unit only declares them
(runtime.h) and links `xcomp_gemm.o`. Helpers the prelude declares `extern template` (`xc_remap<float>`)
are instantiated once, in `xcomp_ops.o`.

A `Cache("cpp-prebuilt")` entry holds `xcomp_prelude.h` (the prelude's text), `xcomp_runtime.h`,
`xcomp_prelude.h.gch`, `xcomp_gemm.o` and `xcomp_ops.o`, keyed by the text, the runtime header, the
toolchain (compiler, version, flags, CPU features), the BLAS and the extra flags: GCC takes a
precompiled header only under the options it was built with. A unit is compiled as it is, with
`-include <entry>/xcomp_prelude.h`: GCC loads the .gch and then skips the unit's own copy of the
text (include guards); where GCC rejects the .gch it reads the header (the same text). So none of it
changes what a library computes, and the library's cache key (its source, runtime header, toolchain
and flags) covers what it is built from.

Making an entry takes ~2-3.5 s of CPU (the header and the GEMM object side by side, then the
instantiations with the new header), so it runs in a background thread: `prepare` starts it from
`CppTarget.prepare`, which `xcomp.compile` calls just before it captures with torch.export (a capture
cache miss), so it overlaps capture and the passes; a build waits for it then. It starts there only once
the cache holds a library already (into an empty cache the background work competed with capture). A build that finds no entry and none being made starts one and goes on without it
(later builds use it). Only GCC (clang's precompiled headers take other options); XCOMP_PREBUILT=0
turns it off (units then build whole, as the exported project builds them).
"""
from __future__ import annotations

import os
import subprocess
import threading

from xcomp.backends.cpp.toolchain import Blas, Toolchain
from xcomp.cache import Cache, content_key

PRELUDE = "xcomp_prelude.h"
GEMM_OBJECT = "xcomp_gemm.o"
OPS_OBJECT = "xcomp_ops.o"
DEFINE = "-DXC_PREBUILT_GEMM=1"
END = "#endif  // XCOMP_PRELUDE\n"
_KEY_VERSION = "xcomp-cpp-prebuilt-3"
_TIMEOUT_S = 300

_lock = threading.Lock()
_running: dict[str, threading.Thread] = {}   # entry folder -> the thread making it in this process
_ready: set[str] = set()                     # entry folders verified in this process
_failed: set[str] = set()                    # entry folders that could not be made in this process
_keyed = threading.Event()                   # clear while `prepare`'s thread has not said what it makes
_keyed.set()
_prepared_roots: set[str] = set()


def prelude_of(source: str) -> str | None:
    """The prelude a unit's source opens with (through the guard's `#endif`), or None."""
    if not source.startswith('#include "xcomp_runtime.h"\n#ifndef XCOMP_PRELUDE\n'):
        return None
    end = source.find(END)
    return source[:end + len(END)] if end >= 0 else None


def usable(tc: Toolchain) -> bool:
    """Whether builds with `tc` use the prebuilt parts (GCC, XCOMP_PREBUILT not 0)."""
    return os.environ.get("XCOMP_PREBUILT", "1") != "0" and "clang" not in tc.version.lower()


def compile_args(entry: str) -> tuple[list[str], list[str]]:
    """(arguments before the unit's source, arguments after it) that build with `entry`."""
    return [DEFINE, "-include", os.path.join(entry, PRELUDE)], [os.path.join(entry, o) for o in (GEMM_OBJECT, OPS_OBJECT)]


def _key(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...]) -> str:
    from xcomp.backends.cpp.build import runtime_header
    return content_key(_KEY_VERSION, prelude, runtime_header(), tc.fingerprint(uses_blas), repr(extra))


def _cache() -> Cache:
    return Cache("cpp-prebuilt")


def instantiations(prelude: str) -> list[str]:
    """The explicit instantiations the prelude's `extern template ...;` lines declare."""
    return [line[len("extern "):] for line in prelude.splitlines() if line.startswith("extern template ")]


def _run(cmds: list[list[str]], d: str) -> None:
    """Run the commands side by side; RuntimeError with the output of the first that fails."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=d) for c in cmds]
    outs = [p.communicate(timeout=_TIMEOUT_S)[0] for p in procs]
    for p, out in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"building the prebuilt parts failed: {out.strip()[-2000:]}")


def _produce(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...], d: str) -> None:
    from xcomp.backends.cpp.build import RUNTIME_HEADER, runtime_header
    files = {PRELUDE: prelude, RUNTIME_HEADER: runtime_header(), "xcomp_gemm.cpp": '#include "xcomp_runtime.h"\n',
             "xcomp_ops.cpp": "".join(f"{line}\n" for line in instantiations(prelude))}
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    blas = tc.blas if uses_blas else Blas("fallback")
    base = [tc.cxx, *tc.flags, *blas.defines, *extra, DEFINE, f"-I{d}"]
    _run([[*base, "-x", "c++-header", os.path.join(d, PRELUDE), "-o", os.path.join(d, PRELUDE + ".gch")],
          [*base, "-DXC_PREBUILT_GEMM_OBJECT=1", "-DXC_RUNTIME_NO_EXPORTS=1", "-c", os.path.join(d, "xcomp_gemm.cpp"),
           "-o", os.path.join(d, GEMM_OBJECT)]], d)
    # the instantiations, with the precompiled prelude just made
    _run([[*base, "-include", os.path.join(d, PRELUDE), "-c",
           os.path.join(d, "xcomp_ops.cpp"), "-o", os.path.join(d, OPS_OBJECT)]], d)
    for name in ("xcomp_gemm.cpp", "xcomp_ops.cpp"):
        os.remove(os.path.join(d, name))


def _make(key: str, prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...]) -> None:
    cache = _cache()
    try:
        d = cache.get(key, lambda d: _produce(prelude, tc, uses_blas, extra, d))
        with _lock:
            _ready.add(d)
    except Exception:  # nothing prebuilt: units build whole, as without it (not tried again in this process)
        with _lock:
            _failed.add(cache.entry_dir(key))
    finally:
        with _lock:
            _running.pop(cache.entry_dir(key), None)


def start(prelude: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...] = (), make: bool = True) -> str:
    """Start making the entry for `prelude` in the background unless it is cached or being made (or
    `make` is False: only look it up); its folder. The thread is not a daemon: a process that ends
    first waits for it (no half-made entry is left)."""
    cache = _cache()
    key = _key(prelude, tc, uses_blas, extra)
    d = cache.entry_dir(key)   # (entries are remembered by folder: XCOMP_CACHE_DIR may change)
    with _lock:
        if d in _ready or d in _running or d in _failed:
            return d
    if cache.lookup(key):
        with _lock:
            _ready.add(d)
        return d
    with _lock:
        if make and d not in _running and d not in _ready:
            t = threading.Thread(target=_make, args=(key, prelude, tc, uses_blas, extra), name="xcomp-prebuilt")
            _running[d] = t
            t.start()
    return d


def prepare() -> None:
    """Start making the entry for the current toolchain (the BLAS variant) in a background thread,
    once per process and cache folder: called when a cpp compile begins, so the compiler runs
    overlap capture and the passes instead of following them."""
    root = _cache().dir
    with _lock:
        if root in _prepared_roots or not _pays():
            return
        _prepared_roots.add(root)
        _keyed.clear()
    threading.Thread(target=_prepare, name="xcomp-prebuilt-prepare").start()


def _pays() -> bool:
    """Whether making the parts (2-3.5 s of CPU) pays: once the cache holds a library. The first build
    into an empty cache (a first use, a test's fresh folder) builds whole: on a busy or 2-core machine
    the parts made beside one capture cost that build more than they save it."""
    try:
        return any(not n.startswith(".") and n != "failed" for n in os.listdir(Cache("cpp").dir))
    except OSError:
        return False


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
            _ready.add(d)
            _running.pop(d, None)
        return
    _make(key, text, tc, True, ())


def for_unit(source: str, tc: Toolchain, uses_blas: bool, extra: tuple[str, ...] = ()) -> str | None:
    """The entry folder to build a unit's `source` with, or None: the unit has no prelude, the
    compiler is not GCC, or the entry is not made yet (then it is started in the background where it
    pays, and this build goes on without it; one being made in this process is waited for)."""
    prelude = prelude_of(source)
    if prelude is None or not usable(tc):
        return None
    d = _cache().entry_dir(_key(prelude, tc, uses_blas, extra))
    _keyed.wait(60)
    with _lock:
        t = _running.get(d)
    if t is not None:      # started earlier (by `prepare` while the program was captured): worth the wait
        t.join()
    else:
        start(prelude, tc, uses_blas, extra, make=_pays())
    with _lock:
        ready = d in _ready
    return d if ready and os.path.isfile(os.path.join(d, OPS_OBJECT)) else None
