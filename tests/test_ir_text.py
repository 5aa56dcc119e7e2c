"""IR text: every program round-trips print -> parse -> print; xDSL parses what we print; the parser
turns malformed text (mutations, truncations, random text) into `xcomp.ParseError` with line:col."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xcomp
from xcomp.interpreter import interpret
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Location, Program, Region, SymbolRef
from xcomp.ir.types import DType, TensorType
from xcomp.ops.elementwise import GeluApproximate
from xcomp.ops.structural import FusionKind

from helpers import assert_close

F32, I64, BOOL = DType.F32, DType.I64, DType.BOOL


def _func(name, arg_types, body_fn) -> Func:
    block = Block()
    args = [block.add_arg(t) for t in arg_types]
    b = Builder(block)
    outs = body_fn(b, *args)
    b.create("return", list(outs))
    return Func(name, block)


def _region(arg_types, body_fn) -> Region:
    block = Block(list(arg_types))
    b = Builder(block)
    b.create("yield", list(body_fn(b, *block.args)))
    return Region([block])


def _program(*funcs: Func, weights=None) -> Program:
    return Program({f.name: f for f in funcs}, dict(weights or {}))


# -- the corpus: one builder per program ------------------------------------------------------------
def p_elementwise():
    def body(b, x, y):
        s = b.op("add", x, y)
        g = b.op("gelu", s, approximate=GeluApproximate.TANH)
        c = b.op("cast", b.op("gt", g, y), dtype=F32)
        return [b.op("mul", c, b.op("leaky_relu", g, slope=0.2))]
    return _program(_func("main", [TensorType((4, 8), F32)] * 2, body))


def p_symbolic():
    def body(b, x, y):
        e = b.op("exp", x)
        return [b.op("sub", e, y), b.op("isnan", e)]
    return _program(_func("main", [TensorType(("B", 8), F32), TensorType((8,), F32)], body))


def p_constants():
    """Dense constants with nan/inf/-0.0, ints, bools, and scalar constants of every kind."""
    def body(b, x):
        d = b.op("dense", value=np.array([[1.5, np.nan], [np.inf, -np.inf]], np.float32), dtype=F32)
        z = b.op("dense", value=np.array([-0.0, 1e-30, 3.4e38, 5e-45], np.float32).reshape(2, 2), dtype=F32)
        i = b.op("dense", value=np.array([[-3, 2**40]], np.int64), dtype=I64)
        m = b.op("dense", value=np.array([True, False]), dtype=BOOL)
        n = b.op("constant", value=float("nan"), dtype=F32)
        k = b.op("constant", value=-7, dtype=I64)
        t = b.op("constant", value=True, dtype=BOOL)
        y = b.op("add", b.op("add", x, d), b.op("mul", z, n))
        yi = b.op("add", b.op("cast", b.op("isinf", y), dtype=I64), b.op("add", i, k))
        return [y, yi, b.op("logical_and", m, t)]
    return _program(_func("main", [TensorType((2, 2), F32)], body))


def p_weights():
    def body(b, x):
        w = b.create("weight", (), {"name": "layer.w"}, result_types=[TensorType((8, 3), F32)]).result
        return [b.op("matmul", x, w)]
    return _program(_func("main", [TensorType((2, 8), F32)], body),
                    weights={"layer.w": np.arange(24, dtype=np.float32).reshape(8, 3) / 10})


def p_multi_result():
    def body(b, x):
        vals, idx = b.ops("topk", x, k=2, axis=1)
        svals, sidx = b.ops("sort", x, axis=0, descending=True)
        return [vals, idx, b.op("add", svals, x), sidx]
    return _program(_func("main", [TensorType((3, 5), F32)], body))


def p_fused():
    def body(b, x, y):
        t = TensorType((4, 4), F32)
        region = _region([t, t], lambda rb, a, c: [rb.op("tanh", rb.op("add", a, c)), rb.op("neg", a)])
        outs = b.create("fused", [x, y], {"kind": FusionKind.ELEMENTWISE}, [region], [t, t]).results
        return [b.op("mul", *outs)]
    return _program(_func("main", [TensorType((4, 4), F32)] * 2, body))


def p_if():
    def body(b, c, x):
        t = TensorType((3,), F32)
        then = _region([], lambda rb: [rb.op("exp", x)])
        other = _region([], lambda rb: [rb.op("neg", x)])
        return b.create("if", [c], {}, [then, other], [t]).results
    return _program(_func("main", [TensorType((), BOOL), TensorType((3,), F32)], body))


def p_loop():
    """xc.loop(trip, cond, carried): the body doubles the carried tensor."""
    def body(b, x):
        trip = b.op("constant", value=3, dtype=I64)
        cond = b.op("constant", value=True, dtype=BOOL)
        t = TensorType((2,), F32)
        region = _region([TensorType((), I64), t],
                         lambda rb, i, v: [cond, rb.op("add", v, v)])
        return b.create("loop", [trip, cond, x], {}, [region], [t]).results
    return _program(_func("main", [TensorType((2,), F32)], body))


def p_call():
    helper = _func("helper", [TensorType((2, 3), F32)], lambda b, x: [b.op("sigmoid", x), b.op("sum", x, axes=(1,))])

    def body(b, x):
        s, r = b.create("call", [x], {"callee": SymbolRef("helper")}, [],
                        [TensorType((2, 3), F32), TensorType((2,), F32)]).results
        return [s, r]
    return _program(helper, _func("main", [TensorType((2, 3), F32)], body))


def p_locations():
    def body(b, x):
        b.loc = Location('/tmp/user "model".py', 42)
        y = b.op("relu", x)
        b.loc = None
        return [b.op("softmax", y, axis=-1)]
    return _program(_func("main", [TensorType((2, 5), F32)], body))


def p_no_inputs():
    def body(b):
        return [b.op("dense", value=np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), dtype=F32)]
    return _program(_func("main", [], body))


def p_captured():
    """A program captured from PyTorch (weights out of line, many op families)."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.GELU(), torch.nn.Linear(5, 2))
    torch.manual_seed(0)
    return xcomp.capture(model, [torch.randn(3, 6)])


PROGRAMS = {f.__name__[2:]: f for f in (p_elementwise, p_symbolic, p_constants, p_weights, p_multi_result,
                                         p_fused, p_if, p_loop, p_call, p_locations, p_no_inputs, p_captured)}
_cache: dict[str, Program] = {}


def program(name: str) -> Program:
    if name not in _cache:
        p = PROGRAMS[name]()
        xcomp.verify(p)
        _cache[name] = p
    return _cache[name]


# -- round trip ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROGRAMS)
def test_round_trip(name):
    p = program(name)
    text = str(p)
    q = xcomp.parse(text, p.weights)
    xcomp.verify(q)
    assert str(q) == text
    assert [o.name for o in q.walk()] == [o.name for o in p.walk()]
    assert {n: [str(t) for t in f.result_types] for n, f in q.funcs.items()} == \
        {n: [str(t) for t in f.result_types] for n, f in p.funcs.items()}


def _inputs(p: Program):
    rng = np.random.default_rng(0)
    out = []
    for a in p.main.args:
        shape = tuple(4 if isinstance(d, str) else d for d in a.type.shape)
        out.append(rng.standard_normal(shape).astype(np.float32) if a.type.dtype is F32
                   else np.ones(shape, a.type.dtype.np))
    return out


@pytest.mark.parametrize("name", PROGRAMS)
def test_parsed_program_computes_the_same(name):
    p = program(name)
    q = xcomp.parse(str(p), p.weights)
    xs = _inputs(p)
    for got, want in zip(interpret(q, xs), interpret(p, xs)):
        assert_close(got, want)


def test_attribute_values_survive_exactly():
    q = xcomp.parse(str(program("constants")))
    dense = [o.attrs["value"] for o in q.walk() if o.name == "xc.dense"]
    f = dense[0]
    assert np.isnan(f[0, 1]) and f[1, 0] == np.inf and f[1, 1] == -np.inf and f[0, 0] == 1.5
    z = dense[1].reshape(-1)
    assert np.signbit(z[0]) and z[1] == np.float32(1e-30) and z[2] == np.float32(3.4e38) and z[3] == np.float32(5e-45)
    assert dense[2].tolist() == [[-3, 2**40]] and dense[3].tolist() == [True, False]
    consts = [o.attrs["value"] for o in q.walk() if o.name == "xc.constant"]
    assert np.isnan(consts[0]) and consts[1] == -7 and consts[2] is True


def test_symbolic_dims_and_locations_survive():
    q = xcomp.parse(str(program("symbolic")))
    assert q.main.args[0].type == TensorType(("B", 8), F32)
    q = xcomp.parse(str(program("locations")))
    relu = next(o for o in q.walk() if o.name == "xc.relu")
    assert relu.loc == Location('/tmp/user "model".py', 42)


# -- an independent MLIR parser ---------------------------------------------------------------------
def _xdsl_parse(text: str):
    pytest.importorskip("xdsl")
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.func import Func as FuncDialect
    from xdsl.parser import Parser
    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(FuncDialect)
    return Parser(ctx, text).parse_module()


@pytest.mark.parametrize("name", PROGRAMS)
def test_xdsl_parses_printed_text(name):
    p = program(name)
    module = _xdsl_parse(str(p))
    ops = [op.op_name.data if op.name == "builtin.unregistered" else op.name for op in module.walk()]
    ours = [o.name for o in p.walk() if o.name != "xc.return"]
    assert [n for n in ops if n.startswith("xc.")] == ours
    assert ops.count("func.func") == len(p.funcs)
    funcs = {f.sym_name.data: f for f in module.walk() if f.name == "func.func"}
    for fname, f in p.funcs.items():
        assert [str(t) for t in funcs[fname].function_type.outputs.data] == [str(t) for t in f.result_types]


# -- malformed text ------------------------------------------------------------------------------------
_LINE_COL = re.compile(r":(\d+):(\d+): ")


def _parse_or_parse_error(text: str):
    """Parsing may succeed or raise ParseError, whose message carries a line:col inside the text."""
    try:
        xcomp.parse(text)
    except xcomp.ParseError as e:
        m = _LINE_COL.search(str(e))
        assert m, f"no line:col in {e}"
        line, col = int(m.group(1)), int(m.group(2))
        assert (line, col) == (e.line, e.col)
        assert 1 <= line <= text.count("\n") + 1 and col >= 1


BAD = [
    ("", "no @main function"),
    ("module {\n  func.func @main() -> () {\n    func.return\n  }\n", "expected '}'"),
    ('module {\n  func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>) {\n'
     '    %0 = "xc.nope"(%arg0) : (tensor<2xf32>) -> tensor<2xf32>\n', "unknown op 'xc.nope'"),
    ('module {\n  func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>) {\n'
     '    %0 = "xc.exp"(%arg1) : (tensor<2xf32>) -> tensor<2xf32>\n', "undefined value %arg1"),
    ('module {\n  func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>) {\n'
     '    %0 = "xc.exp"(%arg0) : (tensor<2xf32>) -> tensor<3xf32>\n', "xc.exp"),
    ('module {\n  func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>) {\n'
     '    %0 = "xc.leaky_relu"(%arg0) {slope = "x"} : (tensor<2xf32>) -> tensor<2xf32>\n', "slope"),
    ('module {\n  func.func @main(%arg0: tensor<2xq9>) -> () {\n', "unknown element type"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_errors_name_the_problem_with_line_and_col(text, message):
    with pytest.raises(xcomp.ParseError) as info:
        xcomp.parse(text)
    assert message in str(info.value)
    assert _LINE_COL.search(str(info.value))


def test_error_points_at_the_offending_line():
    text = str(program("elementwise"))
    lines = text.splitlines()
    bad = next(i for i, l in enumerate(lines) if '"xc.gelu"' in l)
    lines[bad] = lines[bad].replace('"xc.gelu"', '"xc.gelux"')
    with pytest.raises(xcomp.ParseError) as info:
        xcomp.parse("\n".join(lines))
    assert info.value.line == bad + 1
    assert info.value.col == lines[bad].index('"xc.gelux"') + 1


def test_every_truncation_is_a_parse_error():
    for name in ("constants", "call"):
        text = str(program(name))
        for cut in range(0, len(text) - 2):
            with pytest.raises(xcomp.ParseError):
                xcomp.parse(text[:cut])


_SAMPLE_TEXTS = [str(program(n)) for n in ("elementwise", "symbolic", "constants", "multi_result", "fused",
                                           "if", "loop", "call", "locations")]
_TOKENS = ["%", "#", "(", ")", "{", "}", "<", ">", "[", "]", ",", ":", "=", "->", "\"", "@", "^bb0", "x",
           "?", "0x", "1e309", "-", "tensor<", "dense<", "xc.", "func.return", "\n", "\\", "\x00", "é", "loc("]


@st.composite
def _mutated(draw):
    text = draw(st.sampled_from(_SAMPLE_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "swap"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(_TOKENS) | st.text(max_size=3)) + text[i:]
        elif kind == "replace":
            text = text[:i] + draw(st.sampled_from(_TOKENS)) + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            k = draw(st.integers(0, len(text)))
            a, b = sorted((i, k))
            text = text[:a] + text[b:b + 3] + text[a + 3:b] + text[a:a + 3] + text[b + 3:]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_text_gives_only_parse_errors(text):
    _parse_or_parse_error(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_random_text_gives_only_parse_errors(text):
    _parse_or_parse_error(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_only_parse_errors(data):
    _parse_or_parse_error(data.decode("latin-1"))
    with pytest.raises(xcomp.ParseError):
        xcomp.parse(data)  # bytes are not text


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_SAMPLE_TEXTS), st.integers(1, 60))
def test_deep_nesting_is_a_parse_error_not_a_crash(text, depth):
    _parse_or_parse_error(text.replace("tensor<", "tensor<" + "[" * depth * 10, 1))
    _parse_or_parse_error("module {" * depth * 10)
