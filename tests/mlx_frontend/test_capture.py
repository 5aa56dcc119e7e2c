"""The MLX frontend's edges: .mlxfn files, output structure, errors that explain themselves, and no
torch import for MLX functions."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
nn = pytest.importorskip("mlx.nn")

import xcomp  # noqa: E402
from helpers import assert_close as _assert_close  # noqa: E402
from xcomp.errors import FormatError, UnsupportedOpError, XcompError  # noqa: E402


def assert_close(got, want, dtype=None, msg=""):
    """helpers.assert_close with the tolerance of the MLX dtype of `want`."""
    _assert_close(got, want, dtype=dtype or str(want.dtype).split(".")[-1], msg=msg)


def _mlp():
    mx.random.seed(1)
    model = nn.Sequential(nn.Linear(8, 16), nn.SiLU(), nn.Linear(16, 4))
    mx.eval(model.parameters())
    return model


def test_mlxfn_round_trip(tmp_path):
    model = _mlp()
    x, scale = mx.random.normal((3, 8)), mx.array([2.0])
    path = str(tmp_path / "mlp.mlxfn")
    mx.export_function(path, lambda a, s=None: (model(a) * s, mx.argmax(a, axis=-1)), x, s=scale)
    program = xcomp.capture(path, [])  # no inputs: zeros of the file's own signature
    assert [str(t) for t in program.main.result_types] == ["tensor<3x4xf32>", "tensor<3xi64>"]
    y, idx = xcomp.compile(path, target="mlx")(x, scale)
    want_y, want_idx = model(x) * scale, mx.argmax(x, axis=-1)
    assert_close(y, want_y)
    assert idx.dtype == mx.uint32 and (np.array(idx) == np.array(want_idx)).all()


@pytest.mark.parametrize("data", [b"", b"garbage that is not an mlxfn", b"\x06\x00\x00\x00\x00\x00\x00\x000.32.4"])
def test_malformed_mlxfn_names_the_file(tmp_path, data):
    path = tmp_path / "bad.mlxfn"
    path.write_bytes(data)
    with pytest.raises(FormatError, match="bad.mlxfn"):
        xcomp.capture(str(path), [])


def test_missing_mlxfn_names_the_file(tmp_path):
    with pytest.raises(FormatError, match="nothere.mlxfn"):
        xcomp.capture(str(tmp_path / "nothere.mlxfn"), [])


def test_truncated_mlxfn(tmp_path):
    path = tmp_path / "cut.mlxfn"
    mx.export_function(str(path), lambda a: mx.exp(a) + 1, mx.ones((2, 3)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(FormatError, match="cut.mlxfn"):
        xcomp.capture(str(path), [])


def test_output_structure_kept():
    def f(a, b):
        return {"sum": a + b, "pair": (mx.argmax(a, axis=0), None), "n": 3}, [a * 2]
    a, b = mx.random.normal((3, 4)), mx.random.normal((3, 4))
    got = xcomp.compile(f, target="mlx")(a, b)
    want = f(a, b)
    assert set(got[0]) == {"sum", "pair", "n"} and got[0]["n"] == 3 and got[0]["pair"][1] is None
    assert isinstance(got[1], list) and len(got[1]) == 1
    assert_close(got[0]["sum"], want[0]["sum"])
    assert got[0]["pair"][0].dtype == mx.uint32
    assert_close(got[1][0], want[1][0])


def test_non_array_arguments_are_constants():
    f = xcomp.compile(lambda a, k, scale: mx.sum(a[:, :k], axis=-1) * scale, target="mlx")
    a = mx.random.normal((3, 5))
    assert_close(f(a, 2, 0.5), mx.sum(a[:, :2], axis=-1) * 0.5)
    assert_close(f(a, 3, 0.5), mx.sum(a[:, :3], axis=-1) * 0.5)


def test_unsupported_primitives_reported_at_once():
    def f(a):
        return mx.fft.fft(a).real + mx.hadamard_transform(a)
    with pytest.raises(UnsupportedOpError) as err:
        xcomp.capture(f, [mx.random.normal((4, 8))])
    names = {o.name for o in err.value.ops}
    assert {"FFT", "Hadamard"} <= names
    assert "complex64" in str(err.value)


def test_python_branch_on_array_value_explained():
    def f(a):
        if mx.sum(a) > 0:
            return a
        return -a
    with pytest.raises(XcompError, match="mx.where"):
        xcomp.capture(f, [mx.ones((3,))])


def test_checkpoint_explained():
    with pytest.raises(XcompError, match="mx.checkpoint"):
        xcomp.capture(mx.checkpoint(lambda a: mx.sin(a) * 2), [mx.ones((3,))])


def test_custom_function_with_vjp_explained():
    @mx.custom_function
    def f(a):
        return mx.sin(a)

    @f.vjp
    def f_vjp(primals, cotangent, output):
        return (cotangent * mx.cos(primals[0]),)
    with pytest.raises(XcompError, match="custom_function"):
        xcomp.capture(f, [mx.ones((3,))])


def test_module_restored_after_capture_and_weights_named():
    model = _mlp()
    x = mx.random.normal((2, 8))
    want = model(x)
    program = xcomp.capture(model, [x])
    assert {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"} <= set(program.weights)
    assert_close(model(x), want)  # the module holds its own arrays again, not tracers


def test_mlx_function_does_not_import_torch():
    code = ("import sys, mlx.core as mx, xcomp\n"
            "f = xcomp.compile(lambda a: {'y': mx.exp(a) * 2}, target='mlx')\n"
            "out = f(mx.ones((2, 3)))\n"
            "assert isinstance(out['y'], mx.array)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_lazy_parameters_and_buffers_evaluated_before_capture():
    """Parameters never evaluated and private buffers built lazily are captured by value, not as the
    random initializers' graphs (RandomBits would be unsupported)."""
    class Lazy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)                  # not evaluated
            self._table = mx.random.uniform(shape=(6,))  # a private buffer, not a parameter

        def __call__(self, a):
            return self.fc(a) * self._table

    model = Lazy()
    x = mx.random.normal((2, 6))
    program = xcomp.capture(model, [x])
    assert {"fc.weight", "fc.bias"} <= set(program.weights)
    assert_close(xcomp.compile(model, target="mlx")(x), model(x))


def test_bfloat16_model():
    model = _mlp()
    model.set_dtype(mx.bfloat16)
    x = mx.random.normal((3, 8)).astype(mx.bfloat16)
    for target in ("reference", "mlx"):
        got = xcomp.compile(model, target=target)(x)
        assert got.dtype == mx.bfloat16
        assert_close(got, model(x), dtype="bfloat16")


def test_explain_and_check():
    model = _mlp()
    fast = xcomp.compile(model, target="mlx", check=True)
    fast(mx.random.normal((3, 8)))
    text = str(fast.explain())
    assert "captured with mlx.export_function" in text and "layers.0.weight" not in text.split("\n")[0]


def test_unexpected_primitive_arguments_are_an_xcomp_error():
    from mlx_frontend.fast_events import events
    from xcomp.frontends.mlx import build
    a = mx.ones((2, 3))
    with pytest.raises(XcompError, match="Reduce"):
        build(events("Reduce", [a], [17, [1]], (2, 1), mx.float32))  # 17: no such ReduceType


@pytest.mark.parametrize("bits,group", [(4, 32), (8, 64), (2, 32), (3, 32), (5, 64), (6, 32)])
def test_quantized_linear(bits, group):
    """nn.quantize'd layers (QuantizedMatmul, affine mode) dequantize in the IR, exactly as MLX packs."""
    mx.random.seed(2)
    model = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 64))
    nn.quantize(model, group_size=group, bits=bits)
    mx.eval(model.parameters())
    x = mx.random.normal((3, 128))
    for target in ("reference", "mlx"):
        assert_close(xcomp.compile(model, target=target)(x), model(x), msg=f"{bits}-bit on {target}")


def test_unsupported_quantization_mode_is_reported():
    model = nn.Sequential(nn.Linear(128, 64))
    nn.quantize(model, group_size=32, bits=4, mode="mxfp4")
    with pytest.raises(UnsupportedOpError, match="affine"):
        xcomp.capture(model, [mx.ones((2, 128))])
