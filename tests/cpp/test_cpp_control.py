"""Programs written as IR text and built by hand on the `cpp` target against the reference
interpreter: control flow (xc.if / xc.loop with host scalars, xc.call), constants of every kind,
multi-result ops, hand-made fused groups, weights; and the run-time error of a bad index."""
from __future__ import annotations

import numpy as np
import pytest

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.errors import XcompError
from xcomp.interpreter import interpret

pytestmark = needs_cpp

import test_ir_text as IR  # noqa: E402

# a while loop whose condition is computed in the body: halve x until its sum drops below a limit,
# counting the steps (a host i64 carried next to the tensor)
WHILE = """module {
func.func @main(%x: tensor<4xf32>, %limit: tensor<f32>) -> (tensor<4xf32>, tensor<i64>) {
  %trip = "xc.constant"() {dtype = i64, value = 100} : () -> tensor<i64>
  %go = "xc.constant"() {dtype = i1, value = true} : () -> tensor<i1>
  %zero = "xc.constant"() {dtype = i64, value = 0} : () -> tensor<i64>
  %0:2 = "xc.loop"(%trip, %go, %x, %zero) ({
  ^bb0(%i: tensor<i64>, %v: tensor<4xf32>, %n: tensor<i64>):
    %half = "xc.constant"() {dtype = f32, value = 0.5} : () -> tensor<f32>
    %one = "xc.constant"() {dtype = i64, value = 1} : () -> tensor<i64>
    %h = "xc.mul"(%v, %half) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    %s = "xc.sum"(%h)  : (tensor<4xf32>) -> tensor<f32>
    %c = "xc.gt"(%s, %limit) : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %m = "xc.add"(%n, %one) : (tensor<i64>, tensor<i64>) -> tensor<i64>
    "xc.yield"(%c, %h, %m) : (tensor<i1>, tensor<4xf32>, tensor<i64>) -> ()
  }) : (tensor<i64>, tensor<i1>, tensor<4xf32>, tensor<i64>) -> (tensor<4xf32>, tensor<i64>)
  func.return %0#0, %0#1 : tensor<4xf32>, tensor<i64>
}
}
"""

# an if inside a loop, branching on the iteration number (odd: add, even: subtract)
IF_IN_LOOP = """module {
func.func @main(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %trip = "xc.constant"() {dtype = i64, value = 5} : () -> tensor<i64>
  %go = "xc.constant"() {dtype = i1, value = true} : () -> tensor<i1>
  %0 = "xc.loop"(%trip, %go, %x) ({
  ^bb0(%i: tensor<i64>, %v: tensor<2x3xf32>):
    %two = "xc.constant"() {dtype = i64, value = 2} : () -> tensor<i64>
    %one = "xc.constant"() {dtype = i64, value = 1} : () -> tensor<i64>
    %r = "xc.remainder"(%i, %two) : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %odd = "xc.eq"(%r, %one) : (tensor<i64>, tensor<i64>) -> tensor<i1>
    %w = "xc.if"(%odd) ({
      %a = "xc.add"(%v, %y) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
      "xc.yield"(%a) : (tensor<2x3xf32>) -> ()
    }, {
      %b = "xc.sub"(%v, %y) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
      %t = "xc.tanh"(%b) : (tensor<2x3xf32>) -> tensor<2x3xf32>
      "xc.yield"(%t) : (tensor<2x3xf32>) -> ()
    }) : (tensor<i1>) -> tensor<2x3xf32>
    "xc.yield"(%go, %w) : (tensor<i1>, tensor<2x3xf32>) -> ()
  }) : (tensor<i64>, tensor<i1>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %0 : tensor<2x3xf32>
}
}
"""

TAKE = """module {
func.func @main(%x: tensor<5x3xf32>, %i: tensor<4xi64>) -> (tensor<4x3xf32>) {
  %0 = "xc.take"(%x, %i) {axis = 0} : (tensor<5x3xf32>, tensor<4xi64>) -> tensor<4x3xf32>
  func.return %0 : tensor<4x3xf32>
}
}
"""


def _check(program, inputs):
    got = xcomp.compile(program, target="cpp")(*inputs)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    want = interpret(program, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert np.asarray(g).dtype == w.dtype
        assert_close(np.asarray(g), w, dtype=str(w.dtype))


@pytest.mark.parametrize("limit", [0.5, 3.0, 1e9])
def test_while_loop_with_computed_condition(limit):
    x = np.array([4.0, 2.0, 1.0, 1.0], np.float32)
    _check(xcomp.parse(WHILE), [x, np.array(limit, np.float32)])


def test_if_inside_loop():
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2))
    _check(xcomp.parse(IF_IN_LOOP), [x, y])


@pytest.mark.parametrize("name", ["if", "loop", "call", "constants", "multi_result", "fused", "weights"])
def test_ir_text_programs(name):
    p = IR.program(name)
    rng = np.random.default_rng(1)
    inputs = []
    for a in p.main.args:
        dt = a.type.dtype
        shape = tuple(getattr(a.type, "shape", ()))
        inputs.append(np.asarray(rng.random(shape) > 0.5) if dt.is_bool
                      else np.asarray(rng.standard_normal(shape)).astype(dt.np))
    _check(p, inputs)
    if name == "if":   # both branches
        _check(p, [np.asarray(np.logical_not(inputs[0])), inputs[1]])


def test_index_out_of_range_is_a_run_error():
    fn = xcomp.compile(xcomp.parse(TAKE), target="cpp")
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    ok = fn(x, np.array([0, -1, 4, 2]))
    assert_close(np.asarray(ok), x[[0, -1, 4, 2]])
    with pytest.raises(XcompError, match="index out of range"):
        fn(x, np.array([0, 5, 1, 2]))


def test_model_names_do_not_reach_the_source():
    from xcomp.backends.cpp.emit import emit_program
    p = IR.program("weights")        # weight "layer.w"
    src = emit_program(p).source
    assert "layer" not in src


# a list appended to in a loop (a host value carried through it), then read back; and a kept
# scripted check that fails the run when its branch is taken
LIST_AND_RAISE = """module {
func.func @main(%x: tensor<2xf32>, %n: tensor<i64>) -> (tensor<2xf32>, tensor<i64>) {
  %go = "xc.constant"() {dtype = i1, value = true} : () -> tensor<i1>
  %start = "xc.list"(%x) : (tensor<2xf32>) -> !xc.list<tensor<2xf32>>
  %0:2 = "xc.loop"(%n, %go, %x, %start) ({
  ^bb0(%i: tensor<i64>, %v: tensor<2xf32>, %l: !xc.list<tensor<2xf32>>):
    %w = "xc.add"(%v, %v) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    %l2 = "xc.list_append"(%l, %w) : (!xc.list<tensor<2xf32>>, tensor<2xf32>) -> !xc.list<tensor<2xf32>>
    "xc.yield"(%go, %w, %l2) : (tensor<i1>, tensor<2xf32>, !xc.list<tensor<2xf32>>) -> ()
  }) : (tensor<i64>, tensor<i1>, tensor<2xf32>, !xc.list<tensor<2xf32>>) -> (tensor<2xf32>, !xc.list<tensor<2xf32>>)
  %len = "xc.list_len"(%0#1) : (!xc.list<tensor<2xf32>>) -> tensor<i64>
  %zero = "xc.constant"() {dtype = i64, value = 0} : () -> tensor<i64>
  %one = "xc.constant"() {dtype = i64, value = 1} : () -> tensor<i64>
  %bad = "xc.eq"(%len, %one) : (tensor<i64>, tensor<i64>) -> tensor<i1>
  "xc.if"(%bad) ({
    "xc.raise"() {message = "empty \\"list\\"; */ return 1;"} : () -> ()
    "xc.yield"() : () -> ()
  }, {
    "xc.yield"() : () -> ()
  }) : (tensor<i1>) -> ()
  %m1 = "xc.constant"() {dtype = i64, value = -1} : () -> tensor<i64>
  %last = "xc.list_get"(%0#1, %m1) : (!xc.list<tensor<2xf32>>, tensor<i64>) -> tensor<2xf32>
  %first = "xc.list_get"(%0#1, %zero) : (!xc.list<tensor<2xf32>>, tensor<i64>) -> tensor<2xf32>
  %s = "xc.sub"(%last, %first) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %s, %len : tensor<2xf32>, tensor<i64>
}
}
"""


def test_host_list_through_a_loop_and_a_kept_raise():
    p = xcomp.parse(LIST_AND_RAISE)
    x = np.array([1.0, -2.0], np.float32)
    _check(p, [x, np.array(3, np.int64)])
    fn = xcomp.compile(p, target="cpp")
    with pytest.raises(XcompError, match='empty "list"'):
        fn(x, np.array(0, np.int64))
