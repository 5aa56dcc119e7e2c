"""Shape, indexing and factory ops: aten converters, op definitions (numpy reference) and MLX
lowerings, compared with torch eager; printed IR round-trips through the parser."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xcomp
from helpers import assert_close
from xcomp.errors import UnsupportedOpError
from xcomp.ir.printer import print_program

TARGETS = ["reference", "mlx"]


def rand(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed + sum(shape))
    if dtype.is_floating_point:
        return torch.randn(*shape, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.rand(*shape, generator=g) > 0.5
    return torch.randint(-50, 50, shape, generator=g).to(dtype)


def idx(*shape, high, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, shape, generator=g)


def perm_idx(n, high, seed=2):
    """n distinct indices below high (scatters without duplicate targets are deterministic)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(high, generator=g)[:n]


def _clone_set(fn):
    def run(x, *rest):
        y = x.clone()
        fn(y, *rest)
        return y
    return run


def _setitem_slice(y):
    y[:, 1] = 0.5


def _setitem_mask(y):
    y[y > 0] = 1.0


def _setitem_index(y, i):
    y[i] = -2.0


X = rand(2, 3, 4)

# name -> (fn, inputs)
SHAPE = {
    "view": (lambda x: x.view(6, 4), [X]),
    "reshape_neg": (lambda x: x.reshape(-1, 2), [X]),
    "view_0d": (lambda x: x.sum().view(1, 1), [X]),
    "flatten": (lambda x: x.flatten(1), [X]),
    "unflatten": (lambda x: x.unflatten(-1, (2, -1)), [X]),
    "permute": (lambda x: x.permute(2, 0, 1), [X]),
    "permute_neg": (lambda x: x.permute(-1, -3, -2) + 1, [X]),
    "transpose": (lambda x: x.transpose(0, -1), [X]),
    "t": (lambda x: x[0].t(), [X]),
    "mT": (lambda x: x.mT, [X]),
    "movedim": (lambda x: x.movedim((0, 1), (-1, 0)), [X]),
    "expand": (lambda x: x[:, :1].expand(2, 5, 4), [X]),
    "expand_neg": (lambda x: x[:1].expand(3, -1, -1, 4), [X]),
    "expand_as": (lambda x, y: x[:1].expand_as(y), [X, rand(2, 3, 4)]),
    "squeeze_dim": (lambda x: x[:, :1].squeeze(1), [X]),
    "squeeze_all": (lambda x: x[:1, :1].squeeze(), [X]),
    "squeeze_dims": (lambda x: x[:1, :, :1].squeeze((0, -1)), [X]),
    "unsqueeze": (lambda x: x.unsqueeze(-1).unsqueeze(0), [X]),
    "slice": (lambda x: x[:, 1:, ::2], [X]),
    "slice_neg": (lambda x: x[:, -2:, 1:-1], [X]),
    "slice_step3": (lambda x: x[..., 1::3], [X]),
    "slice_empty": (lambda x: x[:, 5:] + 1, [X]),
    "slice_clamp": (lambda x: x[-10:10], [X]),
    "select": (lambda x: x[:, 1], [X]),
    "select_neg": (lambda x: x[..., -1], [X]),
    "narrow": (lambda x: x.narrow(1, 1, 2), [X]),
    "narrow_neg": (lambda x: x.narrow(-1, -3, 2), [X]),
    "cat": (lambda x, y: torch.cat([x, y], 1), [X, rand(2, 2, 4)]),
    "cat_neg_promote": (lambda x, y: torch.cat([x, y], -1), [X, rand(2, 3, 2, dtype=torch.int32)]),
    "stack": (lambda x: torch.stack([x, x * 2], 1), [X]),
    "stack_neg": (lambda x: torch.stack([x, x + 1, x], -1), [X]),
    "split": (lambda x: torch.split(x, 3, 2), [X]),
    "split_sizes": (lambda x: torch.split(x, [1, 3], -1), [X]),
    "chunk": (lambda x: x.chunk(3, 1), [X]),
    "chunk_uneven": (lambda x: torch.arange(5.0).chunk(3)[2] + x.sum(), [X]),
    "unbind": (lambda x: x.unbind(1), [X]),
    "flip": (lambda x: x.flip(0, 2), [X]),
    "flip_neg": (lambda x: x.flip(-1), [X]),
    "roll": (lambda x: x.roll(1, 1), [X]),
    "roll_multi": (lambda x: x.roll((1, -2), (0, 2)), [X]),
    "roll_flat": (lambda x: x.roll(5), [X]),
    "pad_constant": (lambda x: F.pad(x, (1, 2, 0, 1), value=3.0), [X]),
    "pad_negative": (lambda x: F.pad(x, (-1, 2)), [X]),
    "pad_reflect1d": (lambda x: F.pad(x, (1, 2), mode="reflect"), [X]),
    "pad_reflect2d": (lambda x: F.pad(x[None], (2, 1, 1, 2), mode="reflect"), [X]),
    "pad_replicate": (lambda x: F.pad(x, (1, 2), mode="replicate"), [X]),
    "pad_replicate2d": (lambda x: F.pad(x[None], (1, 2, 2, 0), mode="replicate"), [X]),
    "pad_circular": (lambda x: F.pad(x, (1, 2), mode="circular"), [X]),
    "pad_circular2d": (lambda x: F.pad(x[None], (1, 2, 2, 1), mode="circular"), [X]),
    "tril": (lambda x: x.tril(), [X]),
    "tril_k": (lambda x: x.tril(1), [X]),
    "triu_k": (lambda x: x.triu(-1), [X]),
    "repeat": (lambda x: x.repeat(2, 1, 1, 3), [X]),
    "tile": (lambda x: x.tile(2), [X]),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, 1), [X]),
    "rot90": (lambda x: torch.rot90(x, 1, (1, 2)), [X]),
    "rot90_3": (lambda x: torch.rot90(x, -1, (0, 2)), [X]),
    "diagonal": (lambda x: torch.diagonal(x, 0, 1, 2), [X]),
    "diagonal_off": (lambda x: torch.diagonal(x, -1, 2, 0), [X]),
    "unfold": (lambda x: x.unfold(2, 2, 1), [X]),
    "int_view": (lambda x: x.permute(1, 0).reshape(-1), [rand(3, 4, dtype=torch.int64)]),
    "bool_cat": (lambda x: torch.cat([x, ~x]), [rand(3, 4, dtype=torch.bool)]),
    "f16_flip": (lambda x: x.flip(0)[1:], [rand(3, 4, dtype=torch.float16)]),
    "bf16_pad": (lambda x: F.pad(x, (1, 1)), [rand(3, 4, dtype=torch.bfloat16)]),
}

I = idx(5, high=3)
INDEXING = {
    "index_select": (lambda x, i: x.index_select(1, i), [X, I]),
    "index_select_neg_dim": (lambda x, i: x.index_select(-1, i), [X, I]),
    "embedding": (lambda w, i: F.embedding(i, w), [rand(10, 4), idx(2, 3, high=10)]),
    "take": (lambda x, i: torch.take(x, i), [X, idx(2, 2, high=24)]),
    "gather": (lambda x, i: torch.gather(x, 1, i), [X, idx(2, 5, 4, high=3)]),
    "gather_small": (lambda x, i: torch.gather(x, 2, i), [X, idx(1, 2, 3, high=4)]),
    "gather_neg_dim": (lambda x, i: torch.gather(x, -1, i), [X, idx(2, 3, 7, high=4)]),
    "scatter_src": (lambda x, i, s: x.scatter(1, i, s), [X, perm_idx(3, 3).view(1, 3, 1).expand(2, 3, 4), rand(2, 3, 4)]),
    "scatter_value": (lambda x, i: x.scatter(2, i, 7.0), [X, idx(2, 3, 2, high=4)]),
    "scatter_add": (lambda x, i, s: x.scatter_add(1, i, s), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_add_small_src": (lambda x, i, s: x.scatter_add(0, i, s), [X, idx(2, 2, 3, high=2), rand(3, 3, 4)]),
    "scatter_reduce_sum": (lambda x, i, s: x.scatter_reduce(1, i, s, "sum"), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_prod": (lambda x, i, s: x.scatter_reduce(1, i, s, "prod"), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_amax": (lambda x, i, s: x.scatter_reduce(1, i, s, "amax"), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_amin_noself": (lambda x, i, s: x.scatter_reduce(1, i, s, "amin", include_self=False),
                                   [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_mean": (lambda x, i, s: x.scatter_reduce(1, i, s, "mean"), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_mean_noself": (lambda x, i, s: x.scatter_reduce(-2, i, s, "mean", include_self=False),
                                   [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "scatter_reduce_mean_int": (lambda x, i, s: x.scatter_reduce(0, i, s, "mean"),
                                [rand(4, dtype=torch.int64), idx(6, high=4), rand(6, dtype=torch.int64)]),
    "scatter_legacy_reduce": (lambda x, i, s: x.scatter(1, i, s, reduce="multiply"), [X, idx(2, 5, 4, high=3), rand(2, 5, 4)]),
    "index_add": (lambda x, i, s: x.index_add(1, i, s, alpha=2.0), [X, idx(5, high=3), rand(2, 5, 4)]),
    "index_copy": (lambda x, i, s: x.index_copy(2, i, s), [X, perm_idx(2, 4), rand(2, 3, 2)]),
    "index_fill": (lambda x, i: x.index_fill(1, i, -1.0), [X, idx(2, high=3)]),
    "index_1": (lambda x, i: x[i], [X, idx(2, 2, high=2)]),
    "index_neg": (lambda x, i: x[:, i - 3], [X, idx(4, high=3)]),
    "index_adjacent": (lambda x, i, j: x[:, i, j], [X, idx(2, 1, high=3), idx(5, high=4)]),
    "index_split": (lambda x, i, j: x[i, :, j], [X, idx(3, high=2), idx(3, high=4)]),
    "index_all": (lambda x, i, j, k: x[i, j, k], [X, idx(4, high=2), idx(4, high=3), idx(1, high=4)]),
    "index_put": (lambda x, i, v: x.index_put((i,), v), [X, perm_idx(1, 2), rand(3, 4)]),
    "index_put_acc": (lambda x, i, v: torch.ops.aten.index_put(x, [None, i], v, True), [X, idx(6, high=3), rand(2, 6, 4)]),
    "index_put_2": (lambda x, i, j, v: torch.ops.aten.index_put(x, [i, None, j], v), [X, perm_idx(2, 2), perm_idx(2, 4, 3), rand(2, 3)]),
    "setitem_slice": (_clone_set(_setitem_slice), [X]),
    "setitem_mask": (_clone_set(_setitem_mask), [X]),
    "setitem_index": (_clone_set(_setitem_index), [X, perm_idx(1, 2)]),
    "mask_put_acc": (lambda x, m, v: x.index_put((m,), v, accumulate=True), [X, rand(2, 3, dtype=torch.bool), rand(4)]),
    "mask_put_inner": (lambda x, m: torch.ops.aten.index_put(x, [None, m], torch.tensor(3.0)), [X, rand(3, 4, dtype=torch.bool)]),
    "masked_fill": (lambda x: x.masked_fill(x > 0, 1.5), [X]),
    "masked_fill_tensor": (lambda x, m: x.masked_fill(m, x.sum()), [X, rand(3, 4, dtype=torch.bool)]),
    "masked_fill_int": (lambda x: x.masked_fill(x < 0, 0), [rand(3, 4, dtype=torch.int32)]),
    "slice_scatter": (lambda x, s: torch.slice_scatter(x, s, 2, 1, None, 2), [X, rand(2, 3, 2)]),
    "select_scatter": (lambda x, s: torch.select_scatter(x, s, 1, -1), [X, rand(2, 4)]),
    "index_reduce_amax": (lambda x, i, s: x.index_reduce(1, i, s, "amax", include_self=False),
                          [X, idx(5, high=3), rand(2, 5, 4)]),
    "diagonal_scatter": (lambda x, s: torch.diagonal_scatter(x, s, 1, 0, 2), [X, rand(3, 2)]),
    "unfold_step": (lambda x: x.unfold(1, 2, 2), [X]),
    "sort": (lambda x: torch.sort(x, -1), [X]),
    "sort_desc": (lambda x: torch.sort(x, 1, descending=True), [X]),
    "sort_stable_int": (lambda x: torch.sort(x, dim=0, stable=True), [rand(9, 3, dtype=torch.int32) % 3]),
    "sort_stable_desc": (lambda x: torch.sort(x, dim=0, descending=True, stable=True), [rand(9, 3, dtype=torch.int32) % 3]),
    "argsort": (lambda x: torch.argsort(x, 1), [X]),
    "argsort_desc": (lambda x: torch.argsort(x, 0, descending=True), [X]),
    "topk": (lambda x: torch.topk(x, 2), [X]),
    "topk_small": (lambda x: torch.topk(x, 2, dim=1, largest=False), [X]),
    "msort": (lambda x: torch.msort(x), [X]),
}

FACTORY = {
    "zeros": (lambda x: torch.zeros(3, 4) + x, [rand(3, 4)]),
    "ones_int": (lambda x: torch.ones(3, 4, dtype=torch.int32) + x, [rand(3, 4, dtype=torch.int32)]),
    "full": (lambda x: torch.full((2, 1), 3.5) * x, [rand(2, 3)]),
    "full_int": (lambda x: torch.full((2, 3), 7) - x, [rand(2, 3, dtype=torch.int64)]),
    "full_inf": (lambda x: torch.maximum(torch.full((2, 3), float("-inf")), x), [rand(2, 3)]),
    "full_bool": (lambda x: torch.full((2, 3), True) & x, [rand(2, 3, dtype=torch.bool)]),
    "empty_fill": (lambda x: torch.empty(2, 3).fill_(1.25) + x, [rand(2, 3)]),
    "zeros_like": (lambda x: torch.zeros_like(x) + 1, [rand(2, 3)]),
    "ones_like_dtype": (lambda x: torch.ones_like(x, dtype=torch.float16), [rand(2, 3)]),
    "full_like": (lambda x: torch.full_like(x, 2), [rand(2, 3, dtype=torch.int32)]),
    "empty_like": (lambda x: torch.empty_like(x).zero_() + x, [rand(2, 3)]),
    "new_zeros": (lambda x: x.new_zeros(3) + x[0], [rand(2, 3)]),
    "new_ones": (lambda x: x.new_ones((2, 3)) * x, [rand(2, 3)]),
    "new_full": (lambda x: x.new_full((2,), 4), [rand(2, 3, dtype=torch.int32)]),
    "new_empty": (lambda x: x.new_empty((2,)).fill_(0) + 1, [rand(2, 3)]),
    "scalar_tensor": (lambda x: torch.scalar_tensor(3.0) + x, [rand(2, 3)]),
    "arange": (lambda x: torch.arange(5) + x, [rand(5, dtype=torch.int64)]),
    "arange_start": (lambda x: torch.arange(2, 7) * x, [rand(5)]),
    "arange_float_step": (lambda x: torch.arange(1, 10, 2.5) + x, [rand(4)]),
    "arange_neg_step": (lambda x: torch.arange(10, 0, -3) + x, [rand(4, dtype=torch.int64)]),
    "arange_dtype": (lambda x: torch.arange(6, dtype=torch.float16) * x, [rand(6, dtype=torch.float16)]),
    "linspace": (lambda x: torch.linspace(0, 1, 5) + x, [rand(5)]),
    "linspace_int": (lambda x: torch.linspace(-3, 10, 6, dtype=torch.int64) + x, [rand(6, dtype=torch.int64)]),
    "eye": (lambda x: torch.eye(3, 4) + x, [rand(3, 4)]),
    "triu_indices": (lambda x: x[tuple(torch.triu_indices(3, 4, 1))], [rand(3, 4)]),
    "arange_int_from_float": (lambda x: torch.arange(0.0, -8.000001, -4.0, dtype=torch.int64) + x,
                              [rand(2, dtype=torch.int64)]),
    "tril_mask": (lambda x: x.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf")),
                  [rand(4, 4)]),
}

CASES = {**SHAPE, **INDEXING, **FACTORY}


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


_PROGRAMS: dict = {}


def captured(name):
    """Each case is captured once (torch.export dominates the test time) and run on every target."""
    if name not in _PROGRAMS:
        fn, inputs = CASES[name]
        _PROGRAMS[name] = xcomp.capture(fn, inputs)
    return _PROGRAMS[name]


def check_outputs(name, actual, expected):
    actual, expected = _flat(actual), _flat(expected)
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype, f"{name} output {i}: dtype {a.dtype} != {e.dtype}"
        assert_close(a, e, dtype=str(e.dtype), msg=f"{name} output {i}")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, target):
    fn, inputs = CASES[name]
    check_outputs(name, xcomp.compile(captured(name), target=target)(*inputs), fn(*inputs))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["split", "sort_desc", "index_split", "pad_reflect2d", "arange_float_step"])
def test_compile_function(name, target):
    """The whole path from a torch function, with its output structure (tuples of tensors)."""
    fn, inputs = CASES[name]
    check_outputs(name, xcomp.compile(fn, target=target)(*inputs), fn(*inputs))


ROUND_TRIP = ["pad_reflect2d", "scatter_reduce_mean_noself", "index_split", "index_put_acc", "topk",
              "arange_float_step", "full_inf", "slice_step3", "cat", "roll_multi", "tril_k", "repeat"]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_ir_round_trips(name):
    fn, inputs = CASES[name]
    program = captured(name)
    text = print_program(program)
    again = xcomp.parse(text, weights=program.weights)
    assert print_program(again) == text
    for a, e in zip(xcomp.interpret(again, [x.float().numpy() if x.dtype == torch.bfloat16 else x.numpy()
                                      for x in inputs]), _flat(fn(*inputs))):
        assert_close(a, e)


def test_boolean_mask_read_is_unsupported():
    with pytest.raises(UnsupportedOpError, match="aten.index.Tensor"):
        xcomp.compile(lambda x: x[x > 0], target="reference")(X)


IR_TEXT = """module {
  func.func @main(%arg0: tensor<2x3x4xf32>, %arg1: tensor<5xi64>) -> (tensor<12x2xf32>, tensor<2x3x5xf32>, tensor<3x2x1xf32>) {
    %0 = "xc.transpose"(%arg0) {perm = [2, 0, 1]} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
    %1 = "xc.reshape"(%0) {shape = [-1, 2]} : (tensor<4x2x3xf32>) -> tensor<12x2xf32>
    %2 = "xc.take"(%arg0, %arg1) {axis = 2} : (tensor<2x3x4xf32>, tensor<5xi64>) -> tensor<2x3x5xf32>
    %3 = "xc.slice"(%arg0) {axis = 2, end = 4, start = 1, step = 3} : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>
    %4 = "xc.pad"(%3) {mode = "reflect", pads = [0, 0, 1, 1]} : (tensor<2x3x1xf32>) -> tensor<2x5x1xf32>
    %5 = "xc.slice"(%4) {axis = 1, end = 5, start = 2} : (tensor<2x5x1xf32>) -> tensor<2x3x1xf32>
    %6 = "xc.transpose"(%5) {perm = [1, 0, 2]} : (tensor<2x3x1xf32>) -> tensor<3x2x1xf32>
    func.return %1, %2, %6 : tensor<12x2xf32>, tensor<2x3x5xf32>, tensor<3x2x1xf32>
  }
}
"""


def test_ir_text_program_runs_like_numpy():
    """A hand-written program parses, prints back identically and computes numpy's answers."""
    program = xcomp.parse(IR_TEXT)
    assert print_program(program) == IR_TEXT
    x = rand(2, 3, 4).numpy()
    i = np.array([3, 0, -1, 2, 2])
    want = [x.transpose(2, 0, 1).reshape(-1, 2), np.take(x, i, axis=2),
            np.pad(x[:, :, 1:4:3], [(0, 0), (1, 1), (0, 0)], mode="reflect")[:, 2:].transpose(1, 0, 2)]
    for target in TARGETS:
        got = xcomp.compile(program, target=target)(x, i)
        for g, w in zip(got, want):
            assert_close(g, w)


@pytest.mark.parametrize("op, attrs, in_type, problem", [
    ("xc.slice", "{axis = 0, end = 5, start = 1}", "tensor<4xf32>", "normalized slice"),
    ("xc.slice", "{axis = 1, end = 1, start = 0}", "tensor<4xf32>", "axis 1 out of range"),
    ("xc.reshape", "{shape = [3, -1]}", "tensor<4xf32>", "cannot reshape"),
    ("xc.transpose", "{perm = [0, 0]}", "tensor<2x2xf32>", "not a permutation"),
    ("xc.broadcast_to", "{shape = [3, 4]}", "tensor<2xf32>", "cannot broadcast"),
    ("xc.pad", '{mode = "reflect", pads = [4, 0]}', "tensor<4xf32>", "less than size"),
    ("xc.pad", '{mode = "wrap", pads = [1, 0]}', "tensor<4xf32>", "PadMode"),
    ("xc.sort", "{axis = 2}", "tensor<4xf32>", "out of range"),
])
def test_bad_attributes_are_parse_errors(op, attrs, in_type, problem):
    """Attributes that break an op's rules are reported as xcomp errors with the reason."""
    text = (f"module {{\n  func.func @main(%arg0: {in_type}) -> ({in_type}) {{\n"
            f'    %0 = "{op}"(%arg0) {attrs} : ({in_type}) -> {in_type}\n'
            f"    func.return %arg0 : {in_type}\n  }}\n}}\n")
    with pytest.raises(xcomp.XcompError, match=problem):
        xcomp.parse(text)


@pytest.mark.parametrize("name", ["linspace", "linspace_int", "repeat_interleave", "select_scatter", "chunk",
                                  "pad_reflect1d", "pad_circular", "flatten", "movedim", "tile", "index_put"])
def test_undecomposed_export(name):
    """Graphs straight from torch.export (no core-ATen decompositions) keep composite aten ops."""
    from xcomp.frontends.torch_export import _FunctionModule, from_exported
    fn, inputs = CASES[name]
    ep = torch.export.export(_FunctionModule(fn), tuple(inputs), strict=False)
    program = from_exported(ep, decompose=False).program
    got = xcomp.interpret(program, [x.numpy() for x in inputs])
    for g, e in zip(got, _flat(fn(*inputs))):
        assert_close(g, e, dtype=str(e.dtype))
