"""xcomp.save / xcomp.load: IR text plus safetensors weights, interoperable with the `safetensors`
package; malformed files raise xcomp's own errors."""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xcomp
from xcomp.interpreter import interpret
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program
from xcomp.ir.types import DType, TensorType
from xcomp.serialize import read_safetensors, write_safetensors

from helpers import assert_close

WEIGHTS = {
    "w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3),
    "b": np.array([0.5, np.nan, -np.inf], np.float32),
    "ids": np.array([[1, -2], [2**40, 0]], np.int64),
    "mask": np.array([True, False, True]),
    "h": np.array([1.5, -2.25], np.float16),
    "d": np.array(np.pi, np.float64),
    "small": np.arange(6, dtype=np.int8).reshape(1, 2, 3),
    "bytes": np.arange(5, dtype=np.uint8),
    "empty": np.zeros((0, 3), np.float32),
}


def _program() -> Program:
    block = Block()
    x = block.add_arg(TensorType((2, 4), DType.F32))
    b = Builder(block)
    w = b.create("weight", (), {"name": "w"}, result_types=[TensorType((4, 3), DType.F32)]).result
    bias = b.create("weight", (), {"name": "b"}, result_types=[TensorType((3,), DType.F32)]).result
    y = b.op("add", b.op("matmul", x, w), b.op("maximum", bias, b.op("constant", value=-1.0, dtype=DType.F32)))
    b.create("return", [b.op("tanh", y)])
    return Program({"main": Func("main", block)}, dict(WEIGHTS))


def test_save_load_round_trip(tmp_path):
    p = _program()
    path = xcomp.save(p, str(tmp_path / "prog"))
    q = xcomp.load(path)
    assert str(q) == str(p)
    assert sorted(q.weights) == sorted(p.weights)
    for k, v in p.weights.items():
        assert q.weights[k].dtype == v.dtype and q.weights[k].shape == v.shape
        np.testing.assert_array_equal(q.weights[k], v)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert_close(interpret(q, [x])[0], interpret(p, [x])[0])


def test_captured_model_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2)).eval()
    x = torch.randn(3, 5)
    p = xcomp.capture(model, [x])
    q = xcomp.load(xcomp.save(p, str(tmp_path / "mlp")))
    assert_close(xcomp.compile(q, target="reference")(x.numpy()), model(x).detach())


def test_safetensors_package_reads_our_files(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "w.safetensors")
    write_safetensors(WEIGHTS, path, {"format": "xcomp"})
    theirs = st_numpy.load_file(path)
    assert sorted(theirs) == sorted(WEIGHTS)
    for k, v in WEIGHTS.items():
        assert theirs[k].dtype == v.dtype and theirs[k].shape == v.shape
        np.testing.assert_array_equal(theirs[k], v)
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        assert f.metadata() == {"format": "xcomp"}


def test_we_read_safetensors_package_files(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = str(tmp_path / "theirs.safetensors")
    st_numpy.save_file(WEIGHTS, path, metadata={"who": "safetensors"})
    ours = read_safetensors(path)
    assert sorted(ours) == sorted(WEIGHTS)
    for k, v in WEIGHTS.items():
        assert ours[k].dtype == v.dtype and ours[k].shape == v.shape
        np.testing.assert_array_equal(ours[k], v)


def test_load_uses_weights_written_by_safetensors(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    p = _program()
    path = xcomp.save(p, str(tmp_path / "prog"))
    new = {k: (np.asarray(v * 2) if v.dtype.kind == "f" else v) for k, v in WEIGHTS.items()}
    st_numpy.save_file(new, os.path.join(path, "weights.safetensors"))
    q = xcomp.load(path)
    np.testing.assert_array_equal(q.weights["w"], WEIGHTS["w"] * 2)


# -- malformed files --------------------------------------------------------------------------------
def _valid_bytes(tmp_path) -> bytes:
    path = str(tmp_path / "ok.safetensors")
    write_safetensors({"a": np.arange(6, dtype=np.float32), "b": np.ones((2, 2), np.int64)}, path)
    with open(path, "rb") as f:
        return f.read()


def _header(obj) -> bytes:
    h = json.dumps(obj).encode()
    return struct.pack("<Q", len(h)) + h


MALFORMED = {
    "empty": b"",
    "short": b"\x01\x02\x03",
    "huge header length": struct.pack("<Q", 2**62) + b"{}",
    "header past the end": struct.pack("<Q", 100) + b"{}",
    "not json": struct.pack("<Q", 4) + b"{{{{",
    "not utf-8": struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc",
    "not an object": _header([1, 2, 3]),
    "unknown dtype": _header({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}) + bytes(8),
    "missing field": _header({"a": {"dtype": "F32", "shape": [1]}}) + bytes(4),
    "entry not an object": _header({"a": 5}),
    "offsets outside": _header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}) + bytes(4),
    "reversed offsets": _header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}) + bytes(4),
    "size mismatch": _header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}) + bytes(8),
    "negative dim": _header({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}) + bytes(4),
    "shape not a list": _header({"a": {"dtype": "F32", "shape": "x", "data_offsets": [0, 4]}}) + bytes(4),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_weights_raise_format_error(tmp_path, name):
    path = str(tmp_path / "bad.safetensors")
    with open(path, "wb") as f:
        f.write(MALFORMED[name])
    with pytest.raises(xcomp.FormatError):
        read_safetensors(path)


def test_missing_files_raise_format_error(tmp_path):
    with pytest.raises(xcomp.FormatError):
        read_safetensors(str(tmp_path / "nothing.safetensors"))
    with pytest.raises(xcomp.FormatError):
        xcomp.load(str(tmp_path / "nothing"))


def test_malformed_program_files(tmp_path):
    path = xcomp.save(_program(), str(tmp_path / "prog"))
    text_path = os.path.join(path, "program.mlir")
    with open(text_path, "wb") as f:
        f.write(b"\xff\xfe not utf-8")
    with pytest.raises(xcomp.FormatError):
        xcomp.load(path)
    with open(text_path, "w") as f:
        f.write("module {\n  func.func @main(\n")
    with pytest.raises(xcomp.ParseError) as info:
        xcomp.load(path)
    assert "program.mlir:3:1: expected an argument name" in str(info.value)


def test_weights_that_do_not_match_the_program(tmp_path):
    path = xcomp.save(_program(), str(tmp_path / "prog"))
    write_safetensors({"w": np.zeros((3, 3), np.float32), "b": np.zeros(3, np.float32)},
                      os.path.join(path, "weights.safetensors"))
    with pytest.raises(xcomp.XcompError, match="w"):
        xcomp.load(path)
    write_safetensors({"b": np.zeros(3, np.float32)}, os.path.join(path, "weights.safetensors"))
    with pytest.raises(xcomp.XcompError, match="w"):
        xcomp.load(path)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_corrupted_weights_raise_only_format_error(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fuzz")
    raw = bytearray(_valid_bytes(tmp))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[i:i + data.draw(st.integers(1, 16))]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        if not raw:
            break
    path = str(tmp / "fuzz.safetensors")
    with open(path, "wb") as f:
        f.write(bytes(raw))
    try:
        out = read_safetensors(path)
    except xcomp.FormatError:
        return
    for v in out.values():
        assert isinstance(v, np.ndarray)
