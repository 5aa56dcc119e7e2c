"""Write a `CppUnit` as a self-contained C++ project that builds with CMake and runs without Python.

    CMakeLists.txt     static library <name> (model.cpp, weights.cpp) + the example `main`; OpenMP when
                       found (else a pthread pool); BLAS (`blas_defaults`): the one the in-process build
                       uses first (-DXC_BLAS=...), then oneMKL (XC_MKL_PATH, the mkl wheel's libmkl_rt),
                       Accelerate (macOS), OpenBLAS (XC_OPENBLAS_DIR: scipy-openblas32's or libopenblas),
                       a system CBLAS (find_package(BLAS)), else the runtime's built-in GEMM; configure
                       prints the one it took
    model.h            C API (xc_create/xc_run/xc_error/xc_destroy, xc_weights_load) and the shapes,
                       dtypes and byte sizes of inputs, outputs and weights as constants (a list
                       output: its element's, `is_list` set; its slot an `xc_list_view`)
    model.cpp          the generated translation unit
    xcomp_runtime.h    the runtime header
    weights.bin        every weight's storage, 64-byte aligned, in xc_create's order
    weights.json       manifest: name, dtype, shape, offset, nbytes, sha256 of each weight
    weights.cpp        the reader: one aligned buffer, checked by size and CRC-32 (zlib's)
    main.cpp           example: input<i>.bin files in, output<i>.bin files out (a list output: its
                       elements back to back)
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib

import numpy as np

from xcomp.backends.cpp.build import runtime_header
from xcomp.backends.cpp.runtime import to_storage
from xcomp.backends.cpp.unit import CppUnit
from xcomp.errors import TargetError
from xcomp.ir.types import DType

ALIGN = 64
def c_string(s: str) -> str:
    """`s` as a C string literal: only [A-Za-z0-9_.] kept, every other byte an octal escape."""
    out = []
    for byte in s.encode():
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "_.") else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _info(name: str, dtype: DType, shape, offset: int = -1) -> dict:
    shape = [int(d) for d in shape]
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    return {"name": name, "c_name": c_string(name), "dtype": dtype.value, "shape": shape, "nbytes": nbytes,
            "offset": offset}


def write_weights(unit: CppUnit, weights: dict[str, np.ndarray], path: str) -> tuple[list[dict], int, int]:
    """Write weights.bin and weights.json; returns (weight infos, total bytes, CRC-32 of the file)."""
    infos, blobs, offset = [], [], 0
    for name, dtype, shape in unit.weights:
        if name not in weights:
            raise TargetError(f"cannot export: weight '{name}' is missing")
        data = to_storage(weights[name], dtype)
        if data.shape != tuple(shape):
            raise TargetError(f"cannot export: weight '{name}' has shape {data.shape}, expected {tuple(shape)}")
        raw = data.tobytes()
        info = _info(name, dtype, shape, offset)
        info["sha256"] = hashlib.sha256(raw).hexdigest()
        infos.append(info)
        pad = (-len(raw)) % ALIGN
        blobs += [raw, b"\0" * pad]
        offset += len(raw) + pad
    blob = b"".join(blobs)
    with open(os.path.join(path, "weights.bin"), "wb") as f:
        f.write(blob)
    crc = zlib.crc32(blob)
    manifest = {"format": "xcomp-cpp-weights-1", "file": "weights.bin", "bytes": len(blob), "crc32": f"{crc:08x}",
                "alignment": ALIGN,
                "weights": [{k: v for k, v in i.items() if k != "c_name"} for i in infos]}
    with open(os.path.join(path, "weights.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return infos, len(blob), crc


def _cmake_path(path: str) -> str:
    """`path` for a quoted CMake string, or "" when it holds a character that would need escaping."""
    return path if path and not any(c in path for c in '"\\$;\n') else ""


def blas_defaults() -> dict:
    """What the exported CMakeLists.txt tries first: the BLAS the in-process build uses (`blas_choice`,
    "auto" when it uses the built-in GEMM or no compiler is found) and where this machine has oneMKL
    (`mkl_path`) and scipy-openblas32 (`openblas_dir`), as hints."""
    from xcomp.backends.cpp.toolchain import _mkl_library, toolchain
    try:
        blas = toolchain().blas
    except TargetError:     # no compiler here: the project still exports
        blas = None
    choice = blas.name if blas is not None and blas.name in ("mkl", "openblas", "accelerate") else "auto"
    openblas = ""
    try:
        import scipy_openblas32
        openblas = scipy_openblas32.get_lib_dir()
    except ImportError:
        pass
    return {"blas_choice": choice, "blas_used": blas.name if blas is not None else "unknown",
            "mkl_path": _cmake_path(_mkl_library() or ""), "openblas_dir": _cmake_path(openblas)}


def export_project(unit: CppUnit, weights: dict[str, np.ndarray], path: str) -> str:
    """Write the project for `unit` with `weights` (by name) into the folder `path`; returns `path`."""
    from xcomp.backends.kernels.codegen import environment
    os.makedirs(path, exist_ok=True)
    winfos, wbytes, crc = write_weights(unit, weights, path)
    data = {
        "name": unit.name,
        "uses_blas": unit.uses_blas,
        "arena_bytes": int(unit.arena_bytes),
        "inputs": [_info(f"input{i}", dt, shape) for i, (dt, shape) in enumerate(unit.inputs)],
        "outputs": [dict(_info(f"output{i}", dt, shape), is_list=int(i in unit.list_outputs))
                    for i, (dt, shape) in enumerate(unit.outputs)],
        "weights": winfos,
        "weights_bytes": wbytes,
        "weights_crc32": f"0x{crc:08x}",
        **blas_defaults(),
    }
    env = environment()
    files = {f"{stem}": env.get_template(f"cpp/project/{stem}.j2").render(**data)
             for stem in ("CMakeLists.txt", "model.h", "weights.cpp", "main.cpp")}
    files["model.cpp"] = unit.source
    files["xcomp_runtime.h"] = runtime_header()
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    return path
