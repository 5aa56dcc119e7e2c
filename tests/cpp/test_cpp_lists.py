"""Host lists (`!xc.list<T>`) on the `cpp` target, written as IR text and checked against the
reference interpreter: lists carried through `xc.loop` and `xc.if`, returned from `@main` (a Python
list of arrays per list output), returned twice, read by a loop that also carries them, given to a
function; the in-place append where the old list dies (and the copy where it does not); a list of
elements whose size is symbolic (one library for every length)."""
from __future__ import annotations

import numpy as np

from cpp_source import needs_cpp
import xcomp
from helpers import assert_close
from xcomp.interpreter import interpret

pytestmark = needs_cpp

L = "!xc.list<tensor<3xf32>>"

# a loop that appends x * (i + 1) to a list it carries, reading its last element and length on the
# way; returns the list, the length and the last element
APPEND_IN_LOOP = f"""module {{
func.func @main(%x: tensor<3xf32>, %n: tensor<i64>) -> ({L}, tensor<i64>, tensor<3xf32>) {{
  %go = "xc.constant"() {{dtype = i1, value = true}} : () -> tensor<i1>
  %one = "xc.constant"() {{dtype = i64, value = 1}} : () -> tensor<i64>
  %m1 = "xc.constant"() {{dtype = i64, value = -1}} : () -> tensor<i64>
  %start = "xc.list"(%x) : (tensor<3xf32>) -> {L}
  %0 = "xc.loop"(%n, %go, %start) ({{
  ^bb0(%i: tensor<i64>, %l: {L}):
    %last = "xc.list_get"(%l, %m1) : ({L}, tensor<i64>) -> tensor<3xf32>
    %k = "xc.add"(%i, %one) : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %kf = "xc.cast"(%k) {{dtype = f32}} : (tensor<i64>) -> tensor<f32>
    %y = "xc.mul"(%last, %kf) : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
    %l2 = "xc.list_append"(%l, %y) : ({L}, tensor<3xf32>) -> {L}
    "xc.yield"(%go, %l2) : (tensor<i1>, {L}) -> ()
  }}) : (tensor<i64>, tensor<i1>, {L}) -> {L}
  %len = "xc.list_len"(%0) : ({L}) -> tensor<i64>
  %end = "xc.list_get"(%0, %m1) : ({L}, tensor<i64>) -> tensor<3xf32>
  func.return %0, %len, %end : {L}, tensor<i64>, tensor<3xf32>
}}
}}
"""

# an xc.if inside the loop appends only on odd steps (the other branch yields the list unchanged);
# the list the loop started from is read again after it (a copy of it was carried, not the list)
IF_APPENDS = f"""module {{
func.func @main(%x: tensor<3xf32>, %n: tensor<i64>) -> ({L}, {L}) {{
  %go = "xc.constant"() {{dtype = i1, value = true}} : () -> tensor<i1>
  %one = "xc.constant"() {{dtype = i64, value = 1}} : () -> tensor<i64>
  %two = "xc.constant"() {{dtype = i64, value = 2}} : () -> tensor<i64>
  %start = "xc.list"(%x, %x) : (tensor<3xf32>, tensor<3xf32>) -> {L}
  %0:2 = "xc.loop"(%n, %go, %x, %start) ({{
  ^bb0(%i: tensor<i64>, %v: tensor<3xf32>, %l: {L}):
    %t = "xc.tanh"(%v) : (tensor<3xf32>) -> tensor<3xf32>
    %r = "xc.remainder"(%i, %two) : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %odd = "xc.eq"(%r, %one) : (tensor<i64>, tensor<i64>) -> tensor<i1>
    %l2 = "xc.if"(%odd) ({{
      %a = "xc.list_append"(%l, %t) : ({L}, tensor<3xf32>) -> {L}
      "xc.yield"(%a) : ({L}) -> ()
    }}, {{
      "xc.yield"(%l) : ({L}) -> ()
    }}) : (tensor<i1>) -> {L}
    "xc.yield"(%go, %t, %l2) : (tensor<i1>, tensor<3xf32>, {L}) -> ()
  }}) : (tensor<i64>, tensor<i1>, tensor<3xf32>, {L}) -> (tensor<3xf32>, {L})
  %more = "xc.list_append"(%start, %0#0) : ({L}, tensor<3xf32>) -> {L}
  func.return %0#1, %more : {L}, {L}
}}
}}
"""

# the loop carries a list and its body also reads the list it started from (so that list is not
# moved into the loop); the result is returned twice. (An empty list returned: greedy_decode with
# max_len 0 in tests/torchscript/test_cases.py; `xc.list()` of a typed element has no text form yet.)
SHARED = f"""module {{
func.func @main(%x: tensor<3xf32>, %n: tensor<i64>) -> ({L}, {L}) {{
  %go = "xc.constant"() {{dtype = i1, value = true}} : () -> tensor<i1>
  %zero = "xc.constant"() {{dtype = i64, value = 0}} : () -> tensor<i64>
  %start = "xc.list"(%x) : (tensor<3xf32>) -> {L}
  %0 = "xc.loop"(%n, %go, %start) ({{
  ^bb0(%i: tensor<i64>, %l: {L}):
    %first = "xc.list_get"(%start, %zero) : ({L}, tensor<i64>) -> tensor<3xf32>
    %y = "xc.add"(%first, %first) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    %l2 = "xc.list_append"(%l, %y) : ({L}, tensor<3xf32>) -> {L}
    "xc.yield"(%go, %l2) : (tensor<i1>, {L}) -> ()
  }}) : (tensor<i64>, tensor<i1>, {L}) -> {L}
  func.return %0, %0 : {L}, {L}
}}
}}
"""

# a function that appends to the list it is given: the caller's list, read again after the call, is
# not changed (a function's argument is never updated in place)
CALL = f"""module {{
func.func @grow(%l: {L}, %x: tensor<3xf32>) -> ({L}) {{
  %l2 = "xc.list_append"(%l, %x) : ({L}, tensor<3xf32>) -> {L}
  func.return %l2 : {L}
}}
func.func @main(%x: tensor<3xf32>, %n: tensor<i64>) -> ({L}, tensor<i64>) {{
  %start = "xc.list"(%x) : (tensor<3xf32>) -> {L}
  %0 = "xc.call"(%start, %x) {{callee = @grow}} : ({L}, tensor<3xf32>) -> {L}
  %len = "xc.list_len"(%start) : ({L}) -> tensor<i64>
  func.return %0, %len : {L}, tensor<i64>
}}
}}
"""

# a loop carrying two lists yields one new list for both (each gets its own copy)
TWICE_YIELDED = f"""module {{
func.func @main(%x: tensor<3xf32>, %n: tensor<i64>) -> ({L}, {L}) {{
  %go = "xc.constant"() {{dtype = i1, value = true}} : () -> tensor<i1>
  %a0 = "xc.list"(%x) : (tensor<3xf32>) -> {L}
  %b0 = "xc.list"(%x, %x) : (tensor<3xf32>, tensor<3xf32>) -> {L}
  %0:2 = "xc.loop"(%n, %go, %a0, %b0) ({{
  ^bb0(%i: tensor<i64>, %a: {L}, %b: {L}):
    %y = "xc.neg"(%x) : (tensor<3xf32>) -> tensor<3xf32>
    %a2 = "xc.list_append"(%a, %y) : ({L}, tensor<3xf32>) -> {L}
    "xc.yield"(%go, %a2, %a2) : (tensor<i1>, {L}, {L}) -> ()
  }}) : (tensor<i64>, tensor<i1>, {L}, {L}) -> ({L}, {L})
  func.return %0#0, %0#1 : {L}, {L}
}}
}}
"""

T = 'tensor<?xf32, ["S"]>'
LS = f"!xc.list<{T}>"
# elements of a symbolic length S: tanh of the last one appended n times
SYMBOLIC = f"""module {{
func.func @main(%x: {T}, %n: tensor<i64>) -> ({LS}) {{
  %go = "xc.constant"() {{dtype = i1, value = true}} : () -> tensor<i1>
  %m1 = "xc.constant"() {{dtype = i64, value = -1}} : () -> tensor<i64>
  %start = "xc.list"(%x) : ({T}) -> {LS}
  %0 = "xc.loop"(%n, %go, %start) ({{
  ^bb0(%i: tensor<i64>, %l: {LS}):
    %last = "xc.list_get"(%l, %m1) : ({LS}, tensor<i64>) -> {T}
    %y = "xc.tanh"(%last) : ({T}) -> {T}
    %l2 = "xc.list_append"(%l, %y) : ({LS}, {T}) -> {LS}
    "xc.yield"(%go, %l2) : (tensor<i1>, {LS}) -> ()
  }}) : (tensor<i64>, tensor<i1>, {LS}) -> {LS}
  func.return %0 : {LS}
}}
}}
"""


def _same(got, want):
    """Same nesting (lists stay lists) and values, dtype by dtype."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
    assert_close(g, w, dtype=str(w.dtype))


def _check(text, ns, **options):
    p = xcomp.parse(text)
    fn = xcomp.compile(p, target="cpp", **options)
    x = np.array([0.5, -1.0, 2.0], np.float32)
    for n in ns:
        inputs = [x, np.array(n, np.int64)]
        got = fn(*inputs)
        want = interpret(p, inputs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    return fn


def _no_list_copied_in_the_loop(src: str) -> None:
    """Lists inside the loop are appended to in place and moved, never copied (`lN = lM;`)."""
    body = src[src.index("for (int64_t it"):]
    body = body[:body.index("\n  }\n")]
    assert not [line for line in body.splitlines()
                if line.strip().startswith("l") and " = l" in line and "std::move" not in line], body


def test_list_appended_in_a_loop_is_returned():
    fn = _check(APPEND_IN_LOOP, [0, 1, 4, 40])
    src = fn.source()
    assert ".push(" in src and "xc_list_view" in src
    _no_list_copied_in_the_loop(src)


def test_list_through_an_if_in_a_loop():
    fn = _check(IF_APPENDS, [0, 1, 5])
    _no_list_copied_in_the_loop(fn.source())   # the branch appends in place, the other moves it on


def test_one_list_yielded_for_two_carried_lists():
    _check(TWICE_YIELDED, [0, 2])


def test_list_read_by_the_loop_that_carries_it_returned_twice():
    _check(SHARED, [0, 3])


def test_list_given_to_a_function_is_not_changed_for_the_caller():
    _check(CALL, [1], passes=[])   # (no passes: the call stays a call, not inlined)


def test_list_outputs_are_new_arrays_per_call():
    fn = xcomp.compile(xcomp.parse(APPEND_IN_LOOP), target="cpp")
    x = np.array([1.0, 2.0, 3.0], np.float32)
    first = fn(x, np.array(3, np.int64))[0]
    kept = [a.copy() for a in first]
    fn(x * 10, np.array(6, np.int64))
    for a, b in zip(first, kept):   # a later call does not change what an earlier one returned
        assert_close(a, b)


def test_list_of_symbolic_size_elements_one_library():
    """Elements of a symbolic length: one library (xc_run_sizes) for every length."""
    p = xcomp.parse(SYMBOLIC)
    fn = xcomp.compile(p, target="cpp")
    rng = np.random.default_rng(0)
    for length in (2, 5, 9):
        inputs = [rng.standard_normal(length).astype(np.float32), np.array(3, np.int64)]
        got = fn(*inputs)           # the only output: the list itself
        _same(got, interpret(p, inputs)[0])
        assert len(got) == 4 and got[0].shape == (length,)
    assert fn.stats.builds == 1 and "xc_run_sizes" in fn.source()
