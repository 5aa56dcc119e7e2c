"""Saving and loading programs: IR text plus weights in the safetensors format. No pickle.

`save(program, path)` writes a directory with `program.mlir` and `weights.safetensors`. The
safetensors format (an 8-byte header length, a JSON header, raw little-endian data) is written and
read here directly so that bfloat16 and every dtype round-trip without extra dependencies.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from xcomp.errors import FormatError
from xcomp.ir.core import Program

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "BOOL": "?"}
_NP_TO_ST = {np.dtype(v): k for k, v in _ST_DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def write_safetensors(tensors: dict[str, np.ndarray], path: str, metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": dict(metadata or {})} if metadata else {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = np.asarray(tensors[name], order="C")  # ascontiguousarray would make 0-d arrays 1-d
        if a.dtype not in _NP_TO_ST:
            raise TypeError(f"cannot store weight '{name}' of dtype {a.dtype}")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NP_TO_ST[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Read a safetensors file; any malformation raises FormatError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise FormatError(f"cannot read weights file {path}: {e}") from None
    if len(raw) < 8:
        raise FormatError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise FormatError(f"{path}: header length {n} is out of range")
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dt = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            start, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: bad entry for tensor '{name}'") from None
        if any(d < 0 for d in shape) or not 0 <= start <= end <= len(data):
            raise FormatError(f"{path}: tensor '{name}' lies outside the file")
        if (end - start) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise FormatError(f"{path}: tensor '{name}' has {end - start} bytes, its shape needs more")
        out[name] = np.frombuffer(data[start:end], dtype=dt).reshape(shape).copy()
    return out


def save(program: Program, path: str) -> str:
    """Write `program` to directory `path` (IR text + safetensors weights); returns the path."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "program.mlir"), "w") as f:
        f.write(str(program))
    write_safetensors(program.weights, os.path.join(path, "weights.safetensors"),
                      {"format": "xcomp", "version": "1"})
    text_meta = {k: v for k, v in program.metadata.items() if isinstance(v, str)}  # e.g. a .pt's extra files
    if text_meta:
        with open(os.path.join(path, "metadata.json"), "w") as f:
            json.dump(text_meta, f, indent=1, sort_keys=True)
    return path


def load(path: str) -> Program:
    """Read a program written by `save`. Malformed files raise FormatError or ParseError."""
    from xcomp.ir.parser import parse
    text_path = os.path.join(path, "program.mlir")
    try:
        with open(text_path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"cannot read {text_path}: {e}") from None
    weights_path = os.path.join(path, "weights.safetensors")
    weights = read_safetensors(weights_path) if os.path.exists(weights_path) else {}
    program = parse(text, weights, source_name=text_path)
    meta_path = os.path.join(path, "metadata.json")
    if os.path.exists(meta_path):
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise FormatError(f"cannot read {meta_path}: {e}") from None
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise FormatError(f"{meta_path}: expected a JSON object of strings")
        program.metadata.update(meta)
    return program
