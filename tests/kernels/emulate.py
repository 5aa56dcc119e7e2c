"""Runs a generated kernel on the CPU: g++ over metal_emu.h / cuda_emu.h plus the kernel body.

The driver reads the launch (threadgroups, threads, output byte counts) from its command line, so
one binary serves every launch of its kernel: a kernel with run-time sizes (a symbolic group) is
compiled once (`build`) and run at each size (`execute`) with its `sizes` input bound per call.
The emulation headers are precompiled once per dialect (GCC PCH under the temp folder, keyed by their
text, the flags and the compiler): a kernel's build then parses only its own code (2.4 -> 1.1 s).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from xcomp.backends.kernels.codegen import KernelSpec
from xcomp.backends.kernels.exprs import DIALECTS
from xcomp.interpreter import round_to_bf16
from xcomp.ir.types import DType

HERE = os.path.dirname(os.path.abspath(__file__))
CXX = shutil.which("g++")
FLAGS = ["-std=c++20", "-O1", "-pthread", "-w", f"-I{HERE}"]
_PRELUDE = "#include <cstdio>\n#include <fstream>\n#include <iterator>\n#include <string>\n"
_pch_paths: dict[str, str | None] = {}


def _to_bytes(a: np.ndarray, dt: DType) -> bytes:
    if dt is DType.BF16:
        bits = round_to_bf16(np.asarray(a, np.float32)).view(np.uint32) >> 16
        return bits.astype(np.uint16).tobytes()
    return np.ascontiguousarray(a, dt.np).tobytes()


def _from_bytes(b: bytes, dt: DType, shape) -> np.ndarray:
    if dt is DType.BF16:
        return (np.frombuffer(b, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(b, dt.np).reshape(shape).copy()


def program_text(spec: KernelSpec, in_dtypes: list[DType]) -> str:
    """The C++ translation unit: emulation header, kernel header, the body in a function, a driver
    (`exe DIR GROUPS THREADS OUT_BYTES...`). `in_dtypes` include the `sizes` input's (int64)."""
    d = DIALECTS[spec.dialect]
    q = "const device " if spec.dialect == "metal" else "const "
    o = "device " if spec.dialect == "metal" else ""
    params = [f"{q}{d.ctype(t)}* {n}" for n, t in zip(spec.input_names, in_dtypes)]
    params += [f"{o}{d.ctype(t)}* {n}" for n, t in zip(spec.output_names, spec.output_dtypes)]
    ids = ""
    if spec.dialect == "metal":
        params += ["uint3 thread_position_in_grid", "uint3 threadgroup_position_in_grid",
                   "uint3 thread_position_in_threadgroup", "uint thread_index_in_simdgroup",
                   "uint simdgroup_index_in_threadgroup"]
        ids = (", uint3{c.gid * c.threads + c.tid, 0, 0}, uint3{c.gid, 0, 0}, uint3{c.tid, 0, 0}, "
               "c.lane, c.warp")
    n_in, n_out = len(spec.input_names), len(spec.output_names)
    args = [f"({q}{d.ctype(t)}*)bufs[{i}].data()" for i, t in enumerate(in_dtypes)]
    args += [f"({o}{d.ctype(t)}*)bufs[{n_in + i}].data()" for i, t in enumerate(spec.output_dtypes)]
    return f"""#include "{spec.dialect}_emu.h"
{_PRELUDE}{spec.header}
void xc_kernel({", ".join(params)}) {{
{spec.source}
}}
int main(int argc, char** argv) {{
  std::vector<std::vector<char>> bufs;
  for (int i = 0; i < {n_in}; ++i) {{
    std::ifstream f(std::string(argv[1]) + "/in" + std::to_string(i), std::ios::binary);
    bufs.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }}
  std::vector<long> out_sizes;
  for (int i = 0; i < {n_out}; ++i) out_sizes.push_back(std::stol(argv[4 + i]));
  for (int i = 0; i < {n_out}; ++i) bufs.emplace_back(out_sizes[i], (char)0x7f);  // poison
  emu::run_grid((unsigned)std::stol(argv[2]), (unsigned)std::stol(argv[3]), [&] {{
    const emu::Ctx c = emu::ctx; (void)c;
    xc_kernel({", ".join(args)}{ids});
  }});
  for (int i = 0; i < {n_out}; ++i) {{
    std::ofstream f(std::string(argv[1]) + "/out" + std::to_string(i), std::ios::binary);
    f.write(bufs[{n_in} + i].data(), out_sizes[i]);
  }}
  return 0;
}}
"""


def _all_dtypes(spec: KernelSpec, in_dtypes: list[DType]) -> list[DType]:
    return list(in_dtypes) + ([DType.I64] if spec.sizes else [])


def precompiled_header(dialect: str) -> str | None:
    """The path of a header (with its `.gch` beside it) holding `{dialect}_emu.h` and the driver's
    includes, precompiled once per machine; None when g++ cannot make one (the build then parses the
    headers itself; GCC also ignores a `.gch` whose flags do not match)."""
    if dialect in _pch_paths:
        return _pch_paths[dialect]
    text = f'#include "{dialect}_emu.h"\n{_PRELUDE}'
    version = subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([text, *FLAGS, version, *(
        open(os.path.join(HERE, h)).read() for h in (f"{dialect}_emu.h", "emu_runtime.h"))]).encode()).hexdigest()[:20]
    folder = os.path.join(tempfile.gettempdir(), f"xcomp-emu-pch-{getattr(os, 'getuid', lambda: 'user')()}", key)
    header = os.path.join(folder, "prelude.h")
    if not os.path.exists(header + ".gch"):
        os.makedirs(folder, exist_ok=True)
        with open(header, "w") as f:
            f.write(text)
        part = f"{header}.{os.getpid()}.gch"   # built aside, renamed into place: concurrent workers are safe
        r = subprocess.run([CXX, *FLAGS, "-x", "c++-header", header, "-o", part], capture_output=True, text=True)
        if r.returncode:
            _pch_paths[dialect] = None
            return None
        os.replace(part, header + ".gch")
    _pch_paths[dialect] = header
    return header


def build(spec: KernelSpec, in_dtypes: list[DType], workdir: str) -> str:
    """Compile the kernel's emulation with g++ once; the executable's path."""
    os.makedirs(workdir, exist_ok=True)
    src = os.path.join(workdir, "k.cpp")
    with open(src, "w") as f:
        f.write(program_text(spec, _all_dtypes(spec, in_dtypes)))
    exe = os.path.join(workdir, "k")
    pch = precompiled_header(spec.dialect)
    r = subprocess.run([CXX, *FLAGS, *(["-include", pch] if pch else []), src, "-o", exe],
                       capture_output=True, text=True)
    if r.returncode:
        raise AssertionError(f"g++ failed on {spec.name}:\n{r.stderr[:4000]}")
    return exe


def execute(exe: str, spec: KernelSpec, inputs: list[np.ndarray], in_dtypes: list[DType], workdir: str,
            sizes: dict | None = None) -> list[np.ndarray]:
    """Run a built kernel over its grid on `inputs`, its launch bound at `sizes` (the values of the
    size names; none for a static kernel); returns its outputs."""
    launch = spec.bind(sizes or {})
    inputs = list(inputs) + ([np.asarray(launch.sizes, np.int64)] if spec.sizes else [])
    os.makedirs(workdir, exist_ok=True)
    for i, (a, t) in enumerate(zip(inputs, _all_dtypes(spec, in_dtypes))):
        with open(os.path.join(workdir, f"in{i}"), "wb") as f:
            f.write(_to_bytes(a, t))
    nbytes = [int(np.prod(s, dtype=np.int64)) * t.itemsize for s, t in zip(launch.output_shapes, spec.output_dtypes)]
    groups = launch.grid[0] // launch.threadgroup[0]
    if groups:
        subprocess.run([exe, workdir, str(groups), str(launch.threadgroup[0])] + [str(b) for b in nbytes],
                       check=True, timeout=300)
    outs = []
    for i, (s, t) in enumerate(zip(launch.output_shapes, spec.output_dtypes)):
        if not groups:   # an empty launch: empty outputs
            outs.append(np.zeros(s, t.np if t is not DType.BF16 else np.float32))
            continue
        with open(os.path.join(workdir, f"out{i}"), "rb") as f:
            outs.append(_from_bytes(f.read(), t, s))
    return outs


def run(spec: KernelSpec, inputs: list[np.ndarray], in_dtypes: list[DType], workdir: str,
        sizes: dict | None = None) -> list[np.ndarray]:
    """Compile the kernel with g++ and run it over its grid on `inputs`; returns its outputs."""
    return execute(build(spec, in_dtypes, workdir), spec, inputs, in_dtypes, workdir, sizes)


def run_plan(kplan, inputs: list[np.ndarray], in_dtypes: list[DType], workdir: str,
             sizes: dict | None = None) -> list[np.ndarray]:
    """A kernel plan without prelude: its partials kernel first (split rows), whose outputs follow
    the inputs of the final kernel, as `runtime.run_plan` launches them."""
    assert kplan.prelude is None and len(kplan.input_map) == len(inputs), "plan's input map"
    inputs = [inputs[i] for i in kplan.input_map]
    in_dtypes = [in_dtypes[i] for i in kplan.input_map]
    if kplan.partials is None:
        return run(kplan.spec, inputs, in_dtypes, workdir, sizes)
    parts = run(kplan.partials, inputs, in_dtypes, os.path.join(workdir, "partials"), sizes)
    return run(kplan.spec, list(inputs) + parts, list(in_dtypes) + list(kplan.partials.output_dtypes), workdir, sizes)
