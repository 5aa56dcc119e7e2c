"""`.mlxfn` files (written by `mx.export_function(path, fn, ...)`): read the input signature of the
first exported function from the file's header, import the function with `mx.import_function`, and
capture it like any MLX function by re-exporting it with the callback."""
from __future__ import annotations

import os
import struct
from typing import Any, Sequence

import mlx.core as mx

from xcomp.errors import FormatError, XcompError
from xcomp.frontends.mlx.capture import build, record
from xcomp.frontends.mlx.structure import LEAF, OutSpec
from xcomp.frontends import Captured

# MLX's Dtype::Val enum, in order.
DTYPE_VALS = [mx.bool_, mx.uint8, mx.uint16, mx.uint32, mx.uint64, mx.int8, mx.int16, mx.int32, mx.int64,
              mx.float16, mx.float32, mx.float64, mx.bfloat16, mx.complex64]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("the file ends inside its header")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def one(self, fmt: str):
        return self.take(fmt)[0]

    def count(self, limit: int = 1 << 20) -> int:
        n = self.one("<Q")
        if n > limit:
            raise ValueError(f"a count of {n} in the header")
        return n

    def string(self) -> str:
        n = self.count(1 << 24)
        if self.pos + n > len(self.data):
            raise ValueError("a string runs past the end of the file")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s


def read_signature(path: str) -> tuple[list[tuple], dict[str, tuple]]:
    """(positional [(shape, dtype)], keyword {name: (shape, dtype)}) of the file's first function."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        raise FormatError(f"{path}: cannot read ({e.strerror})") from None
    r = _Reader(data)
    try:
        version = r.string()
        if not version[:1].isdigit():
            raise ValueError("no MLX version at the start")
        r.one("<i")        # function count
        r.one("<?")        # shapeless
        r.string()         # metadata
        keys = [r.string() for _ in range(r.count())]
        r.take(f"<{r.count()}Q")  # input ids
        arrays = []
        for _ in range(r.count()):
            shape = r.take(f"<{r.count()}i")
            val, _size = r.take("<iB")
            if not 0 <= val < len(DTYPE_VALS):
                raise ValueError(f"unknown dtype code {val}")
            arrays.append((shape, DTYPE_VALS[val]))
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise FormatError(f"{path}: not a valid .mlxfn file ({e})") from None
    if len(keys) > len(arrays):
        raise FormatError(f"{path}: not a valid .mlxfn file ({len(keys)} keywords for {len(arrays)} inputs)")
    n = len(arrays) - len(keys)
    return arrays[:n], dict(zip(keys, arrays[n:]))


def load_mlxfn(path: str, inputs: Sequence[Any] | None = None) -> Captured:
    """Capture the function stored in `path`, on `inputs` (MLX arrays: the positional inputs, then the
    keyword inputs in sorted order, as the program's arguments) or on zeros of the file's first
    signature. A malformed file raises FormatError naming it."""
    path = os.fspath(path)
    positional, keywords = read_signature(path)
    try:
        fn = mx.import_function(path)
    except (ValueError, RuntimeError) as e:
        raise FormatError(f"{path}: not a valid .mlxfn file ({e})") from None
    given = list(inputs or [])
    args = [given[i] if i < len(given) else mx.zeros(s, dtype=d) for i, (s, d) in enumerate(positional)]
    # inputs past the positional ones fill the keyword inputs, in the file's (sorted) order
    kwargs = {k: given[len(positional) + j] if len(positional) + j < len(given) else mx.zeros(s, dtype=d)
              for j, (k, (s, d)) in enumerate(keywords.items())}
    try:
        mx.eval(fn(*args, **kwargs))  # reads the file's constants (lazy Load primitives cannot re-export)
    except (ValueError, RuntimeError) as e:
        raise FormatError(f"{path}: cannot run the stored function ({e})") from None
    try:
        events = record(lambda *a, **kw: list(fn(*a, **kw)), args, kwargs)
    except XcompError as e:
        raise FormatError(f"{path}: {e}") from None
    outs = [o for e in events if e["type"] == "outputs" for o in e["outputs"]]
    tree = LEAF if len(outs) == 1 else ("tuple", [LEAF] * len(outs))
    return Captured(build(events), OutSpec(tree, [d for _, _, d in outs]), f"mlx.import_function({os.path.basename(path)})")
