"""The C++ toolchain the `cpp` target builds with: compiler, flags, OpenMP, BLAS and CPU features.

    CXX                 compiler (default: the first of c++, g++, clang++ on PATH)
    XCOMP_CXXFLAGS      extra flags appended to every build
    XCOMP_MARCH         "native" (default: -march=native, or -mcpu=native where that is the spelling)
                        or "baseline" (the compiler's default target; portable libraries)
    XCOMP_OPENMP        "1" runs parallel loops as OpenMP regions (-fopenmp) instead of the runtime's
                        own thread pool (the default: measured faster and robust on busy machines)
    XCOMP_BLAS          "auto" (default), "mkl", "openblas", "accelerate" or "none" (xcomp's own GEMM)

BLAS, in order: Intel oneMKL from the `mkl` wheel on x86-64 Linux (`pip install 'xcomp[cpp]'`;
libmkl_rt opened with dlopen, sequential threading layer, weights packed once with its packed-GEMM
API), Accelerate on macOS (Apple Silicon's AMX-backed BLAS), OpenBLAS from the `scipy-openblas32`
wheel (also in `xcomp[cpp]`; its symbols carry the prefix `scipy_`), else the runtime header's own
packed GEMM (the portable fallback).

Probing a compiler (version, which flags it accepts, OpenMP) runs it a few times; the result is
kept in the build cache folder as JSON, keyed by the compiler's path, size and mtime and the
variables above, so a cached start runs no compiler.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from xcomp.cache import content_key, default_root
from xcomp.errors import TargetError

_PROBE_VERSION = "7"
_ENV = ("CXX", "XCOMP_CXXFLAGS", "XCOMP_MARCH", "XCOMP_OPENMP", "XCOMP_BLAS")
# -O2 plus GCC's full (-O3) vectorizer: the loops vectorize as at -O3 for less than half the compile time
# (GPT block: 0.75 s against 1.74 s of CPU time with g++ 12); clang vectorizes at -O2 already.
OPT_FLAGS = ("-O2",)
# -fno-trapping-math: without it GCC keeps the clamps and NaN selects of xc_vexp as branches on AVX2
# (no masked compares), so softmax's exp loop stayed scalar; xcomp never reads floating-point flags
VECTORIZE_FLAGS = ("-ftree-vectorize", "-fvect-cost-model=dynamic", "-fno-trapping-math")
# with -march=native, the vectorizer's width by the CPU's widest vectors. AVX-512: GCC's default for recent
# Intel cores is 256-bit vectors; the row kernels (softmax, norms) and elementwise chains ran 10-25% faster
# single-threaded with 512-bit ones (g++ 12, Xeon with AVX-512; benchmarks/cpp_cpu.py). AVX2: GCC's
# tuning for the first Zen cores (-march=native is znver1 there) keeps loops at 128-bit; with 256-bit ones
# GELU's erf ran 1.36x, exp 1.34x, a bias add 1.4x faster single-threaded (g++ 12, AVX2 EPYC; elsewhere
# GCC's default for AVX2 already is 256-bit)
WIDE_VECTOR_FLAGS = {" avx512f": ("-mprefer-vector-width=512",), " avx2": ("-mprefer-vector-width=256",)}


def wide_vector_flags(cpu: str) -> tuple[str, ...]:
    """The vector-width flags for a CPU (`cpu_features()` text) with -march=native."""
    return next((f for isa, f in WIDE_VECTOR_FLAGS.items() if isa in cpu), ())
BASE_FLAGS = ("-std=c++17", "-fPIC", "-shared", "-fno-math-errno", "-w")

INSTALL_HINT = ("install a C++17 compiler: `apt-get install g++` (Debian/Ubuntu), `dnf install gcc-c++` "
                "(Fedora), `xcode-select --install` (macOS), or set CXX to one")


@dataclass(frozen=True)
class Blas:
    """A BLAS the runtime header can call (`name` "fallback": none; the header's own GEMM)."""

    name: str                               # "mkl", "openblas", "accelerate" or "fallback"
    detail: str = ""                        # e.g. "scipy-openblas32 0.3.34, /path/libscipy_openblas.so"
    defines: tuple[str, ...] = ()           # -D flags for xcomp_runtime.h
    link: tuple[str, ...] = ()              # linker arguments
    lib_dir: str = ""
    include_dir: str = ""
    cblas_prefix: str = ""

    def describe(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name


@dataclass(frozen=True)
class Toolchain:
    """A probed compiler with the flags every build uses."""

    cxx: str
    version: str
    flags: tuple[str, ...]                   # compile flags (optimization, -march, -fopenmp, ...)
    openmp: bool
    cpu: str                                 # CPU model and features the code is built for
    blas: Blas = field(default_factory=lambda: Blas("fallback"))

    def command(self, source: str, output: str, include_dir: str, uses_blas: bool,
                extra: tuple[str, ...] = (), prebuilt: tuple[list[str], list[str]] = ([], [])) -> list[str]:
        """The command line that builds `source` into the shared library `output` (`prebuilt`: the
        arguments before and after the source that use the prebuilt prelude and GEMM, prebuilt.py)."""
        blas = self.blas if uses_blas else Blas("fallback")
        return [self.cxx, *self.flags, *blas.defines, *extra, f"-I{include_dir}", *prebuilt[0], source,
                *prebuilt[1], "-o", output, *blas.link]

    def fingerprint(self, uses_blas: bool) -> str:
        """What, besides the source, decides the built library (part of the cache key)."""
        blas = self.blas if uses_blas else Blas("fallback")
        return json.dumps([self.cxx, self.version, self.flags, self.cpu, asdict(blas)], sort_keys=True)

    def describe(self) -> str:
        return (f"{self.version} [{' '.join(self.flags)}], "
                f"threads: {'OpenMP' if self.openmp else 'pthread pool'}, BLAS: {self.blas.describe()}")


def find_compiler() -> str:
    """The C++ compiler's absolute path; TargetError saying what to install when there is none."""
    env = os.environ.get("CXX")
    if env:
        path = shutil.which(env)
        if not path:
            raise TargetError(f"CXX={env!r} is not an executable compiler; {INSTALL_HINT}")
        return path
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    raise TargetError(f"the cpp target needs a C++ compiler and none was found on PATH; {INSTALL_HINT}")


def unavailable_reason() -> str | None:
    """None when a compiler is found, else what to install."""
    try:
        toolchain()
    except TargetError as e:
        return str(e)
    return None


@functools.lru_cache(maxsize=None)
def cpu_features() -> str:
    """The CPU model and feature flags (Linux /proc/cpuinfo; sysctl on macOS). Reading /proc/cpuinfo
    takes ~10 ms, so on Linux the answer is kept in the cache folder per boot (the CPU cannot change
    without one)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot = f.read().strip()
        except OSError:
            return _cpu_features_uncached()
        path = os.path.join(default_root(), "probes", f"cpu-{platform.node()}-{boot}.txt"[:200])
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            pass
        text = _cpu_features_uncached()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return text
    return _cpu_features_uncached()


def _cpu_features_uncached() -> str:
    if sys.platform.startswith("linux"):
        model, flags = "", ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    if key in ("model name", "cpu model", "cpu part") and not model:
                        model = value.strip()
                    elif key in ("flags", "features") and not flags:
                        flags = " ".join(sorted(value.split()))
                    if model and flags:
                        break
        except OSError:
            pass
        return f"{platform.machine()} {model} | {flags}"
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        return f"{platform.machine()} {out}"
    return f"{platform.machine()} {platform.processor()}"


@functools.lru_cache(maxsize=None)
def _toolchain(cxx: str, env: tuple, cpu: str, openblas_origin: str, root: str) -> Toolchain:
    st = os.stat(cxx)
    key = content_key("toolchain", _PROBE_VERSION, cxx, str(st.st_size), str(st.st_mtime_ns), repr(env), cpu,
                      openblas_origin, sys.platform, repr((BASE_FLAGS, OPT_FLAGS, VECTORIZE_FLAGS, WIDE_VECTOR_FLAGS, auto_order(cpu))))
    path = os.path.join(root, "probes", f"cpp-{key[:32]}.json")
    try:
        with open(path) as f:
            d = json.load(f)
        return Toolchain(d["cxx"], d["version"], tuple(d["flags"]), d["openmp"], d["cpu"],
                         Blas(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["blas"].items()}))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    tc = _probe(cxx, dict(env), cpu)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(tc), f, indent=1)
    os.replace(tmp, path)
    return tc


def toolchain() -> Toolchain:
    """The probed toolchain for the current environment (cached in memory and on disk)."""
    cxx = os.path.realpath(find_compiler())
    env = tuple((k, os.environ.get(k, "")) for k in _ENV)
    spec = importlib.util.find_spec("scipy_openblas32")
    origin = ""
    if spec and spec.origin:
        lib_dir = os.path.join(os.path.dirname(spec.origin), "lib")
        origin = spec.origin + repr(sorted((n, os.path.getsize(os.path.join(lib_dir, n)))
                                           for n in os.listdir(lib_dir))) if os.path.isdir(lib_dir) else ""
    mkl = _mkl_library()
    if mkl:
        st = os.stat(mkl)
        origin += repr((mkl, st.st_size, st.st_mtime_ns))
    return _toolchain(cxx, env, cpu_features(), origin, default_root())


# -- probing ------------------------------------------------------------------------------------
def _try(cxx: str, flags: list[str], source: str, link: tuple[str, ...] = ()) -> bool:
    with tempfile.TemporaryDirectory(prefix="xcomp-probe-") as d:
        src = os.path.join(d, "probe.cpp")
        with open(src, "w") as f:
            f.write(source)
        try:
            r = subprocess.run([cxx, *flags, src, "-o", os.path.join(d, "probe.so"), *link],
                               capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
        return r.returncode == 0


def _probe(cxx: str, env: dict, cpu: str) -> Toolchain:
    try:
        r = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise TargetError(f"C++ compiler {cxx} does not run ({e}); {INSTALL_HINT}") from e
    version = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else cxx
    flags = [*BASE_FLAGS, *OPT_FLAGS]
    simd_src = "extern \"C\" float xc_probe(const float* x, int n) { float s = 0;\n#pragma omp simd reduction(+:s)\n for (int i = 0; i < n; ++i) s += x[i];\n return s; }\n"
    march = env.get("XCOMP_MARCH", "native") != "baseline"
    wide = [*wide_vector_flags(cpu)] if march else []
    every = [*flags, *VECTORIZE_FLAGS, *(["-march=native", *wide] if march else []), "-fopenmp-simd"]
    tail = [*(["-pthread"] if env.get("XCOMP_OPENMP", "0") != "1" else []), *env.get("XCOMP_CXXFLAGS", "").split()]
    # one compiler run where every optional flag is accepted (GCC, clang on x86), and beside it the BLAS
    # probe with those flags (its answer is kept when they are the flags chosen)
    with ThreadPoolExecutor(max_workers=1) as pool:
        blas_early = pool.submit(_find_blas, cxx, [*every, *tail], env.get("XCOMP_BLAS") or "auto")
        if _try(cxx, every, simd_src):
            flags = list(every)
        else:
            flags = _probe_flags(cxx, version, env, cpu, flags, simd_src)
        early = blas_early.exception() or blas_early.result()
    openmp = False
    if env.get("XCOMP_OPENMP", "0") == "1":
        omp_src = ("#include <omp.h>\nextern \"C\" int xc_probe() { int n = 0;\n"
                   "#pragma omp parallel reduction(+:n)\n n += 1;\n return n + omp_get_max_threads(); }\n")
        openmp = _try(cxx, [*flags, "-fopenmp"], omp_src)
        flags += ["-fopenmp", "-DXC_OPENMP=1"] if openmp else ["-pthread"]
    else:
        flags.append("-pthread")
    flags += env.get("XCOMP_CXXFLAGS", "").split()
    if flags == [*every, *tail]:
        if isinstance(early, Exception):
            raise early
        return Toolchain(cxx, version, tuple(flags), openmp, cpu, early)
    return Toolchain(cxx, version, tuple(flags), openmp, cpu, _find_blas(cxx, flags, env.get("XCOMP_BLAS") or "auto"))


def _probe_flags(cxx: str, version: str, env: dict, cpu: str, flags: list[str], simd_src: str) -> list[str]:
    """The base flags plus each optional one the compiler accepts, tried one at a time."""
    if not _try(cxx, flags, "int xc_probe(int x) { return x + 1; }\n"):
        raise TargetError(f"C++ compiler {cxx} ({version}) cannot build a C++17 shared library "
                          f"with {' '.join(flags)}; {INSTALL_HINT}")
    if _try(cxx, [*flags, *VECTORIZE_FLAGS], "int xc_probe(int x) { return x + 1; }\n"):
        flags += VECTORIZE_FLAGS
    if env.get("XCOMP_MARCH", "native") != "baseline":
        for march in ("-march=native", "-mcpu=native"):
            if _try(cxx, [*flags, march], "int xc_probe(int x) { return x + 1; }\n"):
                flags.append(march)
                break
        wide = wide_vector_flags(cpu)
        if "-march=native" in flags and wide and _try(cxx, [*flags, *wide],
                                                      "int xc_probe(int x) { return x + 1; }\n"):
            flags += wide
    if _try(cxx, [*flags, "-fopenmp-simd"], simd_src):  # `#pragma omp simd` loops vectorize, no OpenMP runtime
        flags.append("-fopenmp-simd")
    return flags


def _sgemm_probe(prefix: str) -> str:
    return (f'extern "C" void {prefix}cblas_sgemm(int, int, int, int, int, int, float, const float*, int, '
            f'const float*, int, float, float*, int);\n'
            f'extern "C" void xc_probe(float* c) {{ float a = 1, b = 2; '
            f'{prefix}cblas_sgemm(101, 111, 111, 1, 1, 1, 1.f, &a, 1, &b, 1, 0.f, c, 1); }}\n')


def _openblas(cxx: str, flags: list[str]) -> Blas | None:
    spec = importlib.util.find_spec("scipy_openblas32")
    if not spec:
        return None
    import scipy_openblas32 as sob
    lib_dir, lib = sob.get_lib_dir(), sob.get_library()
    prefix = "scipy_"
    try:
        with open(os.path.join(sob.get_include_dir(), "cblas.h")) as f:
            if "scipy_cblas_sgemm" not in f.read():
                prefix = ""
    except OSError:
        pass
    link = (f"-L{lib_dir}", f"-l{lib}", f"-Wl,-rpath,{lib_dir}")
    if not _try(cxx, flags, _sgemm_probe(prefix), link):
        return None
    path = os.path.join(lib_dir, sob.get_library(fullname=True))
    return Blas("openblas", f"scipy-openblas32 {sob.__version__}, {path}",
                ("-DXC_HAVE_CBLAS=1", f"-DXC_CBLAS_PREFIX={prefix}", "-DXC_CBLAS_OPENBLAS=1",
                 '-DXC_BLAS_NAME="openblas"'), link, lib_dir, sob.get_include_dir(), prefix)


def _accelerate(cxx: str, flags: list[str]) -> Blas | None:
    if sys.platform != "darwin":
        return None
    link = ("-framework", "Accelerate")
    if not _try(cxx, flags, _sgemm_probe(""), link):
        return None
    return Blas("accelerate", "Apple Accelerate framework",
                ("-DXC_HAVE_CBLAS=1", "-DXC_CBLAS_PREFIX=", '-DXC_BLAS_NAME="accelerate"'), link)


_MKL_RT = ("libmkl_rt.so.2", "libmkl_rt.so.3")   # mkl 2024-2025 wheels, mkl 2026 (same CBLAS and pack API)


def _mkl_library() -> str | None:
    """libmkl_rt.so.2 (or .so.3, mkl 2026) of the `mkl` wheel (x86-64 Linux): under <sys.prefix>/lib,
    else from the installed distribution's file list; None elsewhere or when not installed."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    for name in _MKL_RT:
        path = os.path.join(sys.prefix, "lib", name)
        if os.path.isfile(path):
            return os.path.realpath(path)
    try:
        import importlib.metadata as md
        files = md.distribution("mkl").files or ()
    except Exception:  # not installed, or metadata unreadable
        return None
    for f in files:
        if f.name in _MKL_RT:
            p = str(f.locate())
            if os.path.isfile(p):
                return os.path.realpath(p)
    return None


_MKL_SYMBOLS = ("cblas_sgemm", "cblas_sgemv", "cblas_sgemm_pack_get_size", "cblas_sgemm_pack",
                "cblas_sgemm_compute", "MKL_Set_Threading_Layer")


def _mkl(cxx: str, flags: list[str]) -> Blas | None:
    path = _mkl_library()
    if not path or any(c in path for c in '"\\\n'):  # (the path becomes a C string literal)
        return None
    import ctypes
    try:  # the library loads here and has what runtime.h takes from it with dlsym
        lib = ctypes.CDLL(path)
        if not all(hasattr(lib, name) for name in _MKL_SYMBOLS):
            return None
    except OSError:
        return None
    probe = ('#include <dlfcn.h>\nextern "C" void* xc_probe(const char* p) { return dlopen(p, RTLD_NOW); }\n')
    link = ("-ldl",)
    if not _try(cxx, flags, probe, link):
        return None
    try:
        import importlib.metadata as md
        version = md.version("mkl")
    except Exception:
        version = "?"
    return Blas("mkl", f"oneMKL {version} from the mkl wheel, {path}",
                ("-DXC_HAVE_CBLAS=1", "-DXC_BLAS_MKL=1", f'-DXC_MKL_PATH="{path}"', '-DXC_BLAS_NAME="mkl"'),
                link, os.path.dirname(path))


_BLAS_FINDERS = {"mkl": _mkl, "openblas": _openblas, "accelerate": _accelerate}
# oneMKL only on x86-64 Linux, Accelerate only on macOS; OpenBLAS anywhere the wheel installs.
# oneMKL against OpenBLAS, single-threaded CPU time per call on the benchmark models: see the README.
_AUTO_ORDER = ("mkl", "accelerate", "openblas")
# on an x86 CPU of another vendor than Intel, OpenBLAS first (oneMKL second): on an AVX2 AMD EPYC, oneMKL
# 2026.2 was the slowest GEMM on every row of benchmarks/cpp_cpu.py (single-thread CPU ms, one interleaved
# run, MKL / own GEMM / OpenBLAS with weights through xcomp's packed GEMM: MLP b1 2.92/3.20/2.58, b32
# 27.3/21.1/21.2, encoder b1 9.27/8.27/8.60, b8 72.4/69.0/67.9; its packed-weight product of 32 x 4096 x
# 1024 12.4 ms against 8.4 for xcomp's, its sgemv 10% slower than OpenBLAS's)
_AUTO_ORDER_OTHER_X86 = ("accelerate", "openblas", "mkl")


def auto_order(cpu: str) -> tuple[str, ...]:
    """The BLAS tried in turn with XCOMP_BLAS=auto on a CPU (`cpu_features()` text)."""
    arch, _, rest = cpu.partition(" ")
    model = rest.split("|")[0].lower()
    x86 = arch.lower() in ("x86_64", "amd64", "i686", "i386")
    return _AUTO_ORDER_OTHER_X86 if x86 and model.strip() and "intel" not in model else _AUTO_ORDER


_HINTS = {"mkl": "pip install mkl (x86-64 Linux)", "openblas": "pip install scipy-openblas32",
          "accelerate": "macOS only"}


def _find_blas(cxx: str, flags: list[str], choice: str, cpu: str | None = None) -> Blas:
    """The BLAS of XCOMP_BLAS=`choice` (auto: the first found, in `auto_order` of the CPU)."""
    if choice == "none":
        return Blas("fallback", "xcomp's own packed GEMM in xcomp_runtime.h (XCOMP_BLAS=none)")
    if choice in _BLAS_FINDERS:
        blas = _BLAS_FINDERS[choice](cxx, flags)
        if blas is None:
            raise TargetError(f"XCOMP_BLAS={choice} but it cannot be used here; install it "
                              f"({_HINTS[choice]}) or set XCOMP_BLAS=auto")
        return blas
    if choice != "auto":
        raise TargetError(f"XCOMP_BLAS={choice!r}: expected auto, mkl, openblas, accelerate or none")
    for name in auto_order(cpu_features() if cpu is None else cpu):
        blas = _BLAS_FINDERS[name](cxx, flags)
        if blas is not None:
            return blas
    return Blas("fallback", "xcomp's own packed GEMM in xcomp_runtime.h; for a BLAS: "
                            "pip install 'xcomp[cpp]' (oneMKL on x86-64 Linux, scipy-openblas32)")
