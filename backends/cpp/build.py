"""Build a `CppUnit` into a shared library, cached on disk (`xcomp.cache`, namespace "cpp").

The cache key is a hash of the source, xcomp_runtime.h, the compiler (path and version), its flags,
the BLAS linked and the CPU features the code is built for. An entry holds `model.cpp`,
`xcomp_runtime.h`, `libmodel.so` and `BUILD.json` (compiler, flags, BLAS, seconds). A compiler error
raises `CompileError` naming the generated file (kept under the cache's `failed/` folder) and the
failing line.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import time
from importlib.resources import files
from typing import Callable

from xcomp.backends.cpp import prebuilt
from xcomp.backends.cpp.toolchain import Toolchain, toolchain
from xcomp.backends.cpp.unit import CppUnit
from xcomp.cache import Cache, content_key
from xcomp.errors import CompileError
from xcomp.ir.types import DType
from xcomp.progress import progress

LIBRARY = "libmodel.so"
SOURCE = "model.cpp"
RUNTIME_HEADER = "xcomp_runtime.h"
BUILD_INFO = "BUILD.json"
_KEY_VERSION = "xcomp-cpp-1"
_TIMEOUT_S = 900
_ERROR_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?:fatal )?error:\s*(?P<msg>.*)$",
                         re.MULTILINE)


def runtime_header() -> str:
    """The text of xcomp_runtime.h (templates/cpp/runtime.h)."""
    return files("xcomp.templates").joinpath("cpp", "runtime.h").read_text()


def cache() -> Cache:
    return Cache("cpp")


def cache_key(unit: CppUnit, tc: Toolchain | None = None, extra_flags: tuple[str, ...] = ()) -> str:
    tc = tc or toolchain()
    return content_key(_KEY_VERSION, unit.source, runtime_header(), tc.fingerprint(unit.uses_blas), repr(extra_flags))


def build(unit: CppUnit, extra_flags: tuple[str, ...] = ()) -> str:
    """The path of `unit`'s shared library, built now or found in the cache."""
    tc = toolchain()
    key = cache_key(unit, tc, extra_flags)
    c = cache()
    entry = c.get(key, lambda d: _compile(unit, tc, d, c.failed_dir(key), extra_flags))
    return os.path.join(entry, LIBRARY)


def build_info(library: str) -> dict:
    """What built `library` (compiler, flags, BLAS, seconds), from its cache entry's BUILD.json."""
    try:
        with open(os.path.join(os.path.dirname(library), BUILD_INFO)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _compile(unit: CppUnit, tc: Toolchain, d: str, failed: str, extra_flags: tuple[str, ...]) -> None:
    src, out = os.path.join(d, SOURCE), os.path.join(d, LIBRARY)
    with open(src, "w") as f:
        f.write(unit.source)
    with open(os.path.join(d, RUNTIME_HEADER), "w") as f:
        f.write(runtime_header())
    entry = prebuilt.for_unit(unit.source, tc, unit.uses_blas, extra_flags)  # None: the unit builds whole
    cmd = tc.command(src, out, d, unit.uses_blas, extra_flags, prebuilt.compile_args(entry) if entry else ([], []))
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, cwd=d)
    except subprocess.TimeoutExpired as e:
        raise CompileError(f"C++ compiler timed out after {_TIMEOUT_S} s on {_keep(d, failed)}") from e
    except OSError as e:
        raise CompileError(f"C++ compiler {tc.cxx} could not run: {e}") from e
    seconds = time.perf_counter() - t0
    if r.returncode != 0 or not os.path.isfile(out):
        kept = _keep(d, failed)
        raise CompileError(_error_message(r.stderr + r.stdout, d, kept, cmd))
    blas = tc.blas.describe() if unit.uses_blas else "none (no matmul)"
    with open(os.path.join(d, BUILD_INFO), "w") as f:
        json.dump({"compiler": tc.version, "cxx": tc.cxx, "command": cmd, "openmp": tc.openmp, "blas": blas,
                   "cpu": tc.cpu.split("|")[0].strip(), "seconds": round(seconds, 3), "name": unit.name},
                  f, indent=1)


def _keep(d: str, failed: str) -> str:
    """Copy the failed build's files to `failed` (the temporary build folder is removed); its source path."""
    shutil.rmtree(failed, ignore_errors=True)
    shutil.copytree(d, failed)
    return os.path.join(failed, SOURCE)


def _error_message(output: str, build_dir: str, kept_source: str, cmd: list[str]) -> str:
    """The first compiler error as `file:line: message` plus that source line, with paths moved to
    where the files are kept."""
    kept_dir = os.path.dirname(kept_source)
    output = output.replace(build_dir, kept_dir)
    m = _ERROR_LINE.search(output)
    if not m:
        tail = "\n".join(output.strip().splitlines()[-20:])
        return f"C++ compiler failed on generated source {kept_source}:\n{tail}\n(command: {' '.join(cmd)})"
    path, line = m["file"], int(m["line"])
    text = ""
    try:
        with open(path if os.path.isabs(path) else os.path.join(kept_dir, path)) as f:
            text = f.read().splitlines()[line - 1].strip()
    except (OSError, IndexError):
        pass
    shown = "\n".join(output.strip().splitlines()[:30])
    return (f"C++ compiler failed on generated source {path}:{line}: {m['msg']}\n    {text}\n"
            f"compiler output:\n{shown}")


# -- programs to libraries without code generation on a cached start ---------------------------------
UNIT_INFO = "unit.json"


@functools.lru_cache(maxsize=None)
def generator_fingerprint() -> str:
    """A hash of the code generator's own files (backends/cpp/*.py, templates/cpp/**): a changed
    generator never reuses a library built by the old one."""
    import hashlib
    h = hashlib.sha256()
    roots = [os.path.dirname(os.path.abspath(__file__)), str(files("xcomp.templates").joinpath("cpp"))]
    for root in roots:
        for dirpath, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                if name.endswith((".py", ".j2", ".h")):
                    with open(os.path.join(dirpath, name), "rb") as f:
                        h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()


def build_program(program_text: str, emit: Callable[[], CppUnit]) -> tuple[CppUnit, str]:
    """(unit, library path) of a program given as its IR text (weights are out of line, so the text
    decides the code). On a cached start neither `emit` nor the compiler runs: an index entry keyed
    by the text, the generator's files and the toolchain holds the unit's calling convention
    (unit.json) and its library's key. The returned unit's `source` is the cached model.cpp."""
    tc = toolchain()
    key = content_key(_KEY_VERSION, "program", program_text, generator_fingerprint(), tc.fingerprint(True),
                      tc.fingerprint(False), runtime_header())
    index = Cache("cpp-index")
    hit = index.lookup(key)
    if hit:
        unit_dict = json.load(open(os.path.join(hit, UNIT_INFO)))
        lib_dir = cache().lookup(unit_dict.pop("library_key"))
        if lib_dir:
            unit = _unit_from_json(unit_dict, open(os.path.join(lib_dir, SOURCE)).read())
            return unit, os.path.join(lib_dir, LIBRARY)
    with progress(total=2, desc="C++ build", unit="step") as bar:   # drawn only past half a second
        bar.set_postfix_str("generating code")
        unit = emit()
        bar.update(1)
        bar.set_postfix_str(f"compiling with {os.path.basename(tc.cxx)}")
        library = build(unit)
        bar.update(1)
    lib_key = os.path.basename(os.path.dirname(library))

    def write_index(d: str) -> None:
        data = {k: v for k, v in dataclasses.asdict(unit).items() if k != "source"}
        data["inputs"] = [[dt.value, list(shape)] for dt, shape in unit.inputs]
        data["outputs"] = [[dt.value, list(shape)] for dt, shape in unit.outputs]
        data["weights"] = [[name, dt.value, list(shape)] for name, dt, shape in unit.weights]
        data["library_key"] = lib_key
        with open(os.path.join(d, UNIT_INFO), "w") as f:
            json.dump(data, f)
    if index.lookup(key) is not None:  # a stale index entry (its library was evicted): replace it
        shutil.rmtree(index.entry_dir(key), ignore_errors=True)
    index.get(key, write_index)
    return unit, library


def _unit_from_json(d: dict, source: str) -> CppUnit:
    return CppUnit(source=source, inputs=[(DType(dt), tuple(s)) for dt, s in d["inputs"]],
                   outputs=[(DType(dt), tuple(s)) for dt, s in d["outputs"]],
                   weights=[(n, DType(dt), tuple(s)) for n, dt, s in d["weights"]],
                   uses_blas=d["uses_blas"], arena_bytes=d["arena_bytes"], name=d["name"],
                   sizes=list(d.get("sizes", [])), arena_dynamic=list(d.get("arena_dynamic", [])),
                   list_outputs=list(d.get("list_outputs", [])))
