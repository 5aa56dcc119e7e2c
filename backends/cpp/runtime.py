"""Load a built `CppUnit` library with ctypes and run it on numpy arrays.

`load(unit, so_path, weights)` converts each weight once to its storage dtype (bfloat16 to its
uint16 bits; every other dtype is numpy's own) and keeps it alive for the model's life; the
library's `xc_create` gets their addresses. The returned `CppRunner` takes a list of numpy arrays
and returns a list of new numpy arrays:

- inputs that are C-contiguous and of the storage dtype are passed by address, with no copy (torch
  CPU tensors arrive through `Tensor.numpy()`, which shares memory; MLX arrays through numpy's
  buffer protocol); others are converted once per call;
- outputs are allocated per call (never reused: the caller owns them), in storage dtype, and
  bfloat16 outputs are widened to float32 (xcomp's numpy holder for bfloat16);
- a failing `xc_run` raises `RunError` with the program's own message (`xc_error`);
- a list output (`unit.list_outputs`) comes back as a Python list of new arrays, one per element,
  copied out of the model's storage (the `xc_list_view` the call filled) before the lock is released;
- calls are serialized per model (the generated code shares one arena per model);
- `xc_destroy` runs when the runner is garbage collected;
- a unit with symbolic sizes (`unit.sizes`) binds them from each call's input shapes (as
  `xcomp.guards.bind_types` does; a disagreement raises `GuardError`), allocates outputs at the
  shapes those sizes give and calls `xc_run_sizes`; the binding of an input signature already seen
  is cached.
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Sequence

import numpy as np

from xcomp.backends.cpp.unit import CppUnit
from xcomp.errors import RunError, TargetError
from xcomp.ir.types import DType

_STORAGE = {DType.BF16: np.dtype(np.uint16), DType.BOOL: np.dtype(np.bool_)}


def storage_dtype(dtype: DType) -> np.dtype:
    """The numpy dtype of `dtype`'s C storage (bfloat16: uint16 bits)."""
    return _STORAGE.get(dtype, dtype.np)


def to_storage(a, dtype: DType) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype`'s storage; the same array when it already is one."""
    a = np.asarray(a)
    if dtype is DType.BF16:
        if a.dtype == np.uint16:
            return np.require(a, requirements="C")
        return f32_to_bf16_bits(a)
    want = storage_dtype(dtype)
    if a.dtype != want:
        a = a.astype(want)
    return np.require(a, requirements="C")   # ascontiguousarray would make a 0-d array 1-d


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounding to nearest even; NaN stays NaN."""
    u = np.require(np.asarray(a, dtype=np.float32), requirements="C").view(np.uint32)  # 0-d stays 0-d
    rounded = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(nan, ((u >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16), rounded)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def from_storage(a: np.ndarray, dtype: DType) -> np.ndarray:
    """An output in storage dtype as xcomp's numpy holder (bfloat16 -> float32)."""
    return bf16_bits_to_f32(a) if dtype is DType.BF16 else a


class ListView(ctypes.Structure):
    """`xc_list_view` (templates/cpp/ops.h): the output slot of a list result."""

    _fields_ = [("n", ctypes.c_int64), ("data", ctypes.c_void_p)]


def list_elements(view: ListView, shape: tuple, sdt: np.dtype) -> list[np.ndarray]:
    """Copies of the `view.n` elements of `shape` stored back to back at `view.data`."""
    n = int(view.n)
    nbytes = n * int(np.prod(shape, dtype=np.int64)) * sdt.itemsize
    if n == 0:
        return []
    raw = (ctypes.c_char * nbytes).from_address(view.data) if nbytes else b""
    whole = np.frombuffer(raw, dtype=sdt, count=nbytes // sdt.itemsize).reshape((n, *shape)).copy()
    return list(whole)


class CppRunner:
    """A created model of one built library: `runner(inputs) -> outputs` (see the module docstring)."""

    def __init__(self, unit: CppUnit, so_path: str, weights: dict[str, np.ndarray]):
        self.unit, self.path = unit, so_path
        try:
            lib = ctypes.CDLL(so_path)
        except OSError as e:
            raise TargetError(f"cannot load the built C++ library {so_path}: {e}") from e
        self._lib = lib
        lib.xc_create.argtypes = [ctypes.c_void_p]
        lib.xc_create.restype = ctypes.c_void_p
        if unit.sizes:
            self._run = lib.xc_run_sizes
            self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        else:
            self._run = lib.xc_run
            self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._run.restype = ctypes.c_int
        lib.xc_error.argtypes = [ctypes.c_void_p]
        lib.xc_error.restype = ctypes.c_char_p
        lib.xc_destroy.argtypes = [ctypes.c_void_p]
        lib.xc_destroy.restype = None
        missing = [name for name, _, _ in unit.weights if name not in weights]
        if missing:
            raise TargetError(f"C++ model needs weights that were not given: {', '.join(missing)}")
        self._weights = []
        for name, dtype, shape in unit.weights:
            w = to_storage(weights[name], dtype)
            if w.shape != tuple(shape):
                raise TargetError(f"weight '{name}' has shape {w.shape}, the program expects {tuple(shape)}")
            self._weights.append(w)
        wptrs = (ctypes.c_void_p * max(1, len(self._weights)))(*[_address(w) for w in self._weights])
        handle = lib.xc_create(wptrs)
        if not handle:
            raise RunError(f"xc_create failed for {so_path} (out of memory for a {unit.arena_bytes}-byte arena?)")
        self._handle = handle
        # destroy when collected; the finalizer holds the weights, so they outlive the model
        self._finalizer = weakref.finalize(self, lib.xc_destroy, handle)
        self._finalizer.atexit = False
        self._keep = (self._weights, lib)
        self._in_ptrs = (ctypes.c_void_p * max(1, len(unit.inputs)))()
        self._out_ptrs = (ctypes.c_void_p * max(1, len(unit.outputs)))()
        self._in_specs = [(dt, tuple(shape), storage_dtype(dt)) for dt, shape in unit.inputs]
        self._out_specs = [(dt, tuple(shape), storage_dtype(dt)) for dt, shape in unit.outputs]
        self._lists = frozenset(unit.list_outputs)
        self._plain = (not unit.sizes and not self._lists
                       and all(dt is not DType.BF16 for dt, _, _ in self._in_specs + self._out_specs))
        self._lock = threading.Lock()
        self._bound: dict = {}     # input shapes -> (sizes array, output shapes) of a symbolic unit

    def _bind(self, shapes: tuple):
        """(ctypes int64 sizes, output shapes) for input `shapes` of a symbolic unit (cached)."""
        got = self._bound.get(shapes)
        if got is None:
            from xcomp.guards import bind_types
            from xcomp.ir import symbolic as sym
            from xcomp.ir.types import TensorType
            types = [TensorType(shape, dt) if shape else None for dt, shape, _ in self._in_specs]
            env = bind_types(types, shapes)
            missing = [n for n in self.unit.sizes if n not in env]
            if missing:
                raise TargetError(f"the inputs' shapes do not bind the size(s) {', '.join(missing)}")
            sizes = (ctypes.c_int64 * max(1, len(self.unit.sizes)))(*[env[n] for n in self.unit.sizes])
            outs = [tuple(sym.evaluate(d, env) for d in shape) for _, shape, _ in self._out_specs]
            if len(self._bound) >= 256:
                self._bound.pop(next(iter(self._bound)))
            got = self._bound[shapes] = (sizes, outs)
        return got

    def _call_plain(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """A static unit without list or bfloat16 values called with arrays as they are stored (C-order,
        storage dtype, the compiled shapes): the call without per-value conversions. None otherwise."""
        for i, (x, (_, shape, sdt)) in enumerate(zip(inputs, self._in_specs)):
            if type(x) is not np.ndarray or x.dtype != sdt or x.shape != shape or not x.flags.c_contiguous:
                return None
            self._in_ptrs[i] = _address(x)
        outs = [np.empty(shape, sdt) for _, shape, sdt in self._out_specs]
        for i, o in enumerate(outs):
            self._out_ptrs[i] = _address(o)
        with self._lock:
            if self._run(self._handle, self._in_ptrs, self._out_ptrs) != 0:
                msg = (self._lib.xc_error(self._handle) or b"").decode(errors="replace")
                raise RunError(f"C++ model {self.unit.name} failed: {msg or 'xc_run returned non-zero'}")
        return outs

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._plain and len(inputs) == len(self._in_specs):
            outs = self._call_plain(inputs)
            if outs is not None:
                return outs
        if len(inputs) != len(self._in_specs):
            raise TargetError(f"C++ model takes {len(self._in_specs)} inputs, got {len(inputs)}")
        held = []
        symbolic = bool(self.unit.sizes)
        for i, (x, (dt, shape, sdt)) in enumerate(zip(inputs, self._in_specs)):
            if not (isinstance(x, np.ndarray) and x.dtype == sdt and x.flags.c_contiguous):
                x = to_storage(x, dt)
            if x.shape != shape and not symbolic:
                raise TargetError(f"input {i} has shape {x.shape}, the compiled program expects {shape}")
            held.append(x)
            self._in_ptrs[i] = _address(x)
        if symbolic:
            sizes, out_shapes = self._bind(tuple(x.shape for x in held))
        else:
            out_shapes = [shape for _, shape, _ in self._out_specs]
        outs = [np.empty(shape, sdt) if i not in self._lists else ListView()
                for i, (shape, (_, _, sdt)) in enumerate(zip(out_shapes, self._out_specs))]
        for i, o in enumerate(outs):
            self._out_ptrs[i] = ctypes.addressof(o) if i in self._lists else _address(o)
        with self._lock:
            if symbolic:
                rc = self._run(self._handle, sizes, self._in_ptrs, self._out_ptrs)
            else:
                rc = self._run(self._handle, self._in_ptrs, self._out_ptrs)
            if rc != 0:
                msg = (self._lib.xc_error(self._handle) or b"").decode(errors="replace")
                raise RunError(f"C++ model {self.unit.name} failed: {msg or f'xc_run returned {rc}'}")
            for i in self._lists:   # the model's storage: copied before the next call may change it
                outs[i] = list_elements(outs[i], out_shapes[i], self._out_specs[i][2])
        return [[from_storage(e, dt) for e in o] if i in self._lists else from_storage(o, dt)
                for i, (o, (dt, _, _)) in enumerate(zip(outs, self._out_specs))]

    # -- runtime controls of the built library -------------------------------------------------
    def blas(self) -> str:
        f = self._lib.xc_runtime_blas
        f.restype = ctypes.c_char_p
        return f().decode()

    def threads(self) -> int:
        return int(self._lib.xc_runtime_get_threads())

    def set_threads(self, n: int) -> None:
        """Threads for this library's parallel loops and BLAS (0: back to the default)."""
        self._lib.xc_runtime_set_threads(ctypes.c_int(n))

    def close(self) -> None:
        """Destroy the model now (it is also destroyed when collected)."""
        self._finalizer()


def _address(a: np.ndarray) -> int:
    # ctypes reads a writable buffer's address about 3x faster than numpy builds __array_interface__
    # (a per-call cost of every input and output)
    if a.flags.writeable and a.nbytes:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    return a.__array_interface__["data"][0]


def load(unit: CppUnit, so_path: str, weights: dict[str, np.ndarray]) -> CppRunner:
    """Create the model of the library at `so_path` with `weights` (by name); a runner."""
    return CppRunner(unit, so_path, weights)
