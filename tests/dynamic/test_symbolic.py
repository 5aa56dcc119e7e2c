"""Symbolic sizes: canonical forms, arithmetic, guards, binding."""
import pytest

from xcomp import GuardError
from xcomp.guards import Guard, bind_types, check, merge
from xcomp.ir import symbolic as sym
from xcomp.ir.core import Program
from xcomp.ir.types import DType, TensorType


@pytest.mark.parametrize("a, b", [
    ("S+S", "2*S"), ("S*2", "2*S"), ("B*S", "S*B"), ("(2*S)//2", "S"), ("S*(T+1)-S*T", "S"),
    ("(8*S)//16", "S//2"), ("(2*S+1)//2", "S"), ("(4*S+2)%4", "2"), ("(2*S+2)%4", "2*((S+1)%2)"), ("s0 + 1", "1+s0"),
    ("(S-1)//2", "(S+1)//2-1"), ("S - S", "0"),
])
def test_equal_sizes_have_one_canonical_form(a, b):
    ca, cb = sym.canon(a), sym.canon(b)
    assert ca == cb and hash(ca) == hash(cb)
    assert sym.canon(ca) == ca  # the canonical text is a fixed point
    for s in range(1, 40):
        env = {"S": s, "T": 3, "B": 5, "s0": s}
        assert sym.evaluate(ca, env) == sym.evaluate(a, env) == sym.evaluate(b, env)


def test_arithmetic_and_constants():
    assert sym.add("S", 1) == "S+1" and sym.mul("B", "S") == "B*S"
    assert sym.floordiv(sym.mul("S", 4), 2) == "2*S"
    assert sym.mod(sym.add(sym.mul("S", 2), 3), 2) == 1
    assert sym.sub("S", "S") == 0 and isinstance(sym.sub("S", "S"), int)
    assert sym.exact_div("8*B*S", "2*S") == "4*B" and sym.exact_div("S", "T") is None
    assert sym.divide("8*B*S", "16*B") == ("(S//2)", "S", 2)
    assert sym.names("((S+T)//2)*B") == {"S", "T", "B"}
    assert sym.substitute("2*S+T", {"S": "U+1"}) == "T+2*U+2"
    with pytest.raises(sym.SymbolicError):
        sym.canon("S//T")
    with pytest.raises(sym.SymbolicError):
        sym.canon("S+")


def test_tensor_types_canonicalize_dims():
    a = TensorType(("S*2", 8), DType.F32)
    b = TensorType(("2*S", 8), DType.F32)
    assert a == b and hash(a) == hash(b) and str(a) == 'tensor<?x8xf32, ["2*S"]>'
    assert TensorType(("S-S", 3), DType.F32).shape == (0, 3)


def test_guards_parse_decide_and_merge():
    g = Guard.parse("(S%2) == 0")
    assert g == Guard(sym.mod("S", 2), "==", 0) and Guard.parse(str(g)) == g
    assert g.holds({"S": 4}) and not g.holds({"S": 5})
    assert Guard("S", ">=", "S").decided() is True and Guard(3, "<", 2).decided() is False
    assert merge([Guard("S", ">=", 1)], [Guard("S", ">=", 0), Guard("S", ">=", 1)]) == [Guard("S", ">=", 1)]


def test_binding_checks_equal_dims_and_static_sizes():
    t = [TensorType(("B", "S", 4), DType.F32), TensorType(("S", "2*S"), DType.F32)]
    assert bind_types(t, [(2, 3, 4), (3, 6)]) == {"B": 2, "S": 3}
    with pytest.raises(GuardError, match="assumes they are equal"):
        bind_types(t, [(2, 3, 4), (5, 10)])
    with pytest.raises(GuardError, match="compiled for 4"):
        bind_types(t, [(2, 3, 5), (3, 6)])
    with pytest.raises(GuardError, match="needs 2\\*S"):
        bind_types(t, [(2, 3, 4), (3, 7)])
    assert bind_types([TensorType(("2*S+1",), DType.F32)], [(9,)]) == {"S": 4}  # solved


def test_check_names_every_failed_guard():
    p = Program(guards=[Guard(sym.mod("S", 2), "==", 0), Guard("S", "<=", 16)])
    check(p, {"S": 8})
    with pytest.raises(GuardError) as e:
        check(p, {"S": 17})
    assert "(S%2) == 0" in str(e.value) and "16 >= S" not in str(e.value) and "S <= 16" in str(e.value)
