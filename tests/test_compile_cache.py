"""The persistent compile cache (xcomp.program_cache on xcomp.cache): hits skip the pass pipeline,
keys change with what changes the result, corrupt entries are rebuilt and never loaded, LRU
eviction, several processes at once, Core ML packages, `xcomp cache info|clear`.

Every test runs against a fresh XCOMP_CACHE_DIR (the `cache_dir` fixture), on a tiny program given as
IR text (no torch import): a matmul with a transposed weight (the pipeline folds a pre-transposed
copy, a weight the entry must store), a bias and a GELU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xcomp
from helpers import assert_close
from xcomp import program_cache
from xcomp.cache import MANIFEST, Cache
from xcomp.interpreter import interpret

TEXT = """module {
  func.func @main(%arg0: tensor<4x8xf32>) -> (tensor<4x16xf32>) {
    %0 = "xc.weight"() {name = "fc.weight"} : () -> tensor<16x8xf32>
    %1 = "xc.matmul"(%arg0, %0) {transpose_b = true} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
    %2 = "xc.weight"() {name = "fc.bias"} : () -> tensor<16xf32>
    %3 = "xc.add"(%1, %2) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    %4 = "xc.gelu"(%3) {approximate = "tanh"} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    func.return %4 : tensor<4x16xf32>
  }
}
"""


def tiny(seed: int = 0) -> xcomp.Program:
    """A fresh Program (new weight arrays, as a new process would capture them)."""
    rng = np.random.default_rng(seed)
    return xcomp.parse(TEXT, {"fc.weight": rng.standard_normal((16, 8)).astype(np.float32),
                              "fc.bias": rng.standard_normal(16).astype(np.float32)})


X = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)


@pytest.fixture
def pipeline_runs(monkeypatch):
    """How many times a pass pipeline ran (xcomp.api.optimize, which the cache calls on a miss)."""
    import xcomp.api as api
    calls = []
    real = api.optimize

    def counting(*a, **k):
        calls.append(a[1] if len(a) > 1 else k.get("target"))
        return real(*a, **k)
    monkeypatch.setattr(api, "optimize", counting)
    return calls


def entries(namespace: str = "programs") -> list[str]:
    return [d for _, d in Cache(namespace)._entries()]


def test_second_compile_skips_the_pipeline_and_explains_from_cache(cache_dir, pipeline_runs):
    first = xcomp.compile(tiny(), target="reference")
    want = interpret(tiny(), [X])[0]
    assert_close(first(X), want)
    assert len(pipeline_runs) == 1 and len(entries()) == 1
    (entry,) = entries()
    files = sorted(os.listdir(entry))
    assert files == sorted([MANIFEST, program_cache.PROGRAM, program_cache.INFO, program_cache.WEIGHTS])
    info = json.load(open(os.path.join(entry, program_cache.INFO)))
    assert info["shared_weights"] == ["fc.bias"]   # the captured bias is referenced, the folded weight stored
    second = xcomp.compile(tiny(), target="reference")   # new arrays, same values: a hit
    assert_close(second(X), want)
    assert len(pipeline_runs) == 1, "a hit runs no pass"
    assert str(second.program()) == str(first.program())
    assert second.program().weights["fc.bias"] is not None
    report = second.explain()
    assert "from the compile cache" in str(report) and report.passes == first.explain().passes
    assert "from the compile cache" not in str(first.explain())


def test_cpp_hit_loads_the_cached_library(cache_dir, pipeline_runs):
    pytest.importorskip("xcomp.backends.cpp.toolchain")
    from xcomp.backends.cpp.toolchain import unavailable_reason
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    want = interpret(tiny(), [X])[0]
    assert_close(xcomp.compile(tiny(), target="cpp")(X), want)
    assert_close(xcomp.compile(tiny(), target="cpp")(X), want)
    assert len(pipeline_runs) == 1 and len(entries("programs")) == 1 and len(entries("cpp")) == 1


def test_cache_off_by_option_or_environment(cache_dir, pipeline_runs, monkeypatch):
    xcomp.compile(tiny(), target="reference", cache=False)(X)
    assert entries() == []
    monkeypatch.setenv("XCOMP_CACHE", "0")
    xcomp.compile(tiny(), target="reference")(X)
    assert entries() == [] and len(pipeline_runs) == 2
    xcomp.compile(tiny(), target="reference", cache=True)(X)   # the option wins over the environment
    assert len(entries()) == 1


def test_a_cache_folder_that_cannot_be_written_is_skipped(tmp_path, monkeypatch, pipeline_runs):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(blocker / "cache"))   # below a file: no folder can be made
    monkeypatch.delenv("XCOMP_CACHE", raising=False)
    assert_close(xcomp.compile(tiny(), target="reference")(X), interpret(tiny(), [X])[0])
    assert len(pipeline_runs) == 1


def test_key_changes_with_target_options_passes_weights_and_version(cache_dir, monkeypatch):
    from xcomp.backends import get_target
    ref, cpp, coreml = get_target("reference"), get_target("cpp"), get_target("coreml")
    key = program_cache.program_key(tiny(), ref)
    assert key == program_cache.program_key(tiny(), ref), "same text and weight values: same key"
    others = {
        "target": program_cache.program_key(tiny(), cpp),
        "options": program_cache.program_key(tiny(), coreml.with_options(compute_precision="float32")),
        "passes": program_cache.program_key(tiny(), ref, passes=["canonicalize", "dce"]),
        "weights": program_cache.program_key(tiny(seed=2), ref),
    }
    assert program_cache.program_key(tiny(), coreml) != others["options"]
    assert program_cache.program_key(tiny(), coreml.with_options(compute_precision="float32")) == others["options"]
    monkeypatch.setattr(xcomp, "__version__", "999.0")
    program_cache.source_fingerprint.cache_clear()
    try:
        others["version"] = program_cache.program_key(tiny(), ref)
    finally:
        monkeypatch.undo()
        program_cache.source_fingerprint.cache_clear()
    assert program_cache.program_key(tiny(), ref) == key
    assert len({key, *others.values()}) == len(others) + 1, others


def test_weights_are_hashed_once_per_array(cache_dir, monkeypatch):
    import hashlib
    from xcomp.backends import get_target
    program, ref = tiny(), get_target("reference")
    program_cache.program_key(program, ref)
    hashed = []
    real = hashlib.sha256
    monkeypatch.setattr(program_cache.hashlib, "sha256", lambda *a: hashed.append(a) or real(*a))
    program_cache.program_key(program, ref)
    assert not [a for a in hashed if a], "the second key of the same arrays hashes no weight bytes"


def test_a_pass_from_outside_xcomp_is_not_cached(cache_dir, monkeypatch):
    from xcomp.passes.manager import PASSES, Pass

    class Mine(Pass):
        name = "test_cache_mine"

        def run(self, program):
            return False
    monkeypatch.setitem(PASSES, Mine.name, Mine)
    xcomp.compile(tiny(), target="reference", passes=["dce", Mine.name])(X)
    assert entries() == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_manifest", "weights"])
def test_corrupt_or_truncated_entry_is_rebuilt_never_loaded(cache_dir, pipeline_runs, monkeypatch, damage):
    xcomp.compile(tiny(), target="reference")(X)
    (entry,) = entries()
    path = os.path.join(entry, program_cache.WEIGHTS if damage == "weights" else program_cache.PROGRAM)
    data = open(path, "rb").read()
    if damage == "truncate":
        open(path, "wb").write(data[:len(data) // 2])
    elif damage in ("flip", "weights"):
        i = len(data) - 20   # a weight byte or a character of the IR: same size, other content
        open(path, "wb").write(data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:])
    else:
        os.remove(os.path.join(entry, MANIFEST))
    loaded = []
    real = program_cache._read
    monkeypatch.setattr(program_cache, "_read", lambda d, p: loaded.append(d) or real(d, p))
    assert_close(xcomp.compile(tiny(), target="reference")(X), interpret(tiny(), [X])[0])
    assert loaded == [] and len(pipeline_runs) == 2, "the damaged entry is not read; the pipeline runs again"
    assert open(path, "rb").read() == data and Cache("programs").lookup(os.path.basename(entry))
    xcomp.compile(tiny(), target="reference")(X)
    assert len(loaded) == 1 and len(pipeline_runs) == 2, "the rebuilt entry is a hit"


def test_least_recently_used_programs_are_evicted(cache_dir, monkeypatch):
    import xcomp.cache as cache_mod
    monkeypatch.setattr(cache_mod, "_RECENT_S", 0.0)
    xcomp.compile(tiny(0), target="reference")(X)
    (size,) = [cache_mod._dir_bytes(d) for d in entries()]
    monkeypatch.setenv("XCOMP_CACHE_MAX_MB", str(2.5 * size / 1e6))   # room for two entries
    xcomp.compile(tiny(1), target="reference")(X)
    a, b = sorted(entries(), key=lambda d: os.path.getmtime(os.path.join(d, MANIFEST)))
    os.utime(os.path.join(a, MANIFEST), (1, 1))   # the first program: least recently used
    os.utime(os.path.join(b, MANIFEST), (2, 2))
    xcomp.compile(tiny(2), target="reference")(X)
    left = entries()
    assert len(left) == 2 and a not in left and b in left


def test_export_copies_the_cached_coreml_package(cache_dir, tmp_path, monkeypatch):
    pytest.importorskip("coremltools")
    from xcomp.backends.coreml.target import CoreMLTarget
    conversions = []
    real = CoreMLTarget.export
    monkeypatch.setattr(CoreMLTarget, "export", lambda self, p, path: conversions.append(path) or real(self, p, path))
    first = xcomp.export(tiny(), [X], target="coreml", path=str(tmp_path / "a"))
    assert first == str(tmp_path / "a.mlpackage") and len(conversions) == 1
    second = xcomp.export(tiny(), [X], target="coreml", path=str(tmp_path / "b.mlpackage"))
    assert len(conversions) == 1, "a hit copies the package"

    def tree(root):
        return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
                for d, _, fs in os.walk(root) for f in fs}
    assert tree(first) == tree(second)
    xcomp.export(tiny(), [X], target="coreml", path=str(tmp_path / "c"), compute_precision="float32")
    assert len(conversions) == 2 and len(entries("coreml")) == 2, "other options: another package"
    from xcomp.backends.coreml.evaluate import evaluate_package
    outs, _ = evaluate_package(second, [X])   # the copied package runs (float16 inside: its tolerance)
    assert_close(outs[0], interpret(tiny(), [X])[0], dtype="float16")


_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import xcomp
    from xcomp.program_cache import CachedReport
    from test_compile_cache import X, tiny
    from xcomp.interpreter import interpret
    fast = xcomp.compile(tiny(), target={target!r})
    ok = bool(np.allclose(fast(X), interpret(tiny(), [X])[0], rtol=1e-5, atol=1e-5))
    print(json.dumps({{"ok": ok, "hit": isinstance(fast.cache[fast._last_key].report, CachedReport)}}))
""")


def run_at_once(n: int, target: str) -> list[dict]:
    script = _CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)), target=target)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_processes_compiling_the_same_model_at_once_share_one_entry(cache_dir):
    results = run_at_once(4, "reference")
    assert all(r["ok"] for r in results)
    assert len(entries()) == 1
    assert sum(not r["hit"] for r in results) == 1, "one process ran the pipeline; the others loaded its entry"


@pytest.mark.slow
def test_processes_compiling_for_cpp_at_once_build_once(cache_dir):
    from xcomp.backends.cpp.toolchain import unavailable_reason
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    results = run_at_once(3, "cpp")
    assert all(r["ok"] for r in results)
    assert len(entries("programs")) == 1 and len(entries("cpp")) == 1


def test_cache_command_lists_and_clears_namespaces(cache_dir, capsys):
    from xcomp.cli import main
    xcomp.compile(tiny(), target="reference")(X)
    Cache("tuning").get("t" * 64, lambda d: open(os.path.join(d, "choice.json"), "w").write("{}"))
    assert main(["cache", "info", "--json"]) == 0
    info = {n["namespace"]: n for n in json.loads(capsys.readouterr().out)["namespaces"]}
    assert {"programs", "cpp", "coreml", "tuning"} <= set(info)
    assert info["programs"]["entries"] == 1 and info["programs"]["bytes"] > 0 and info["tuning"]["entries"] == 1
    assert main(["cache", "info"]) == 0
    assert "programs" in capsys.readouterr().out
    assert main(["cache", "clear", "--namespace", "programs"]) == 0
    assert entries() == [] and len(entries("tuning")) == 1
    assert main(["cache", "clear"]) == 0 and entries("tuning") == []
    assert main(["cache", "clear", "--namespace", "nonesuch"]) == 2


# -- the IR parser's one-call read of dense<...> (what a cached start parses) ----------------------
@pytest.mark.parametrize("literal,dtype,want", [
    ("[[1.5, -2.0], [3e-05, 1e+20]]", "f32", [[1.5, -2.0], [3e-05, 1e20]]),    # json path
    ("[[true, false], [false, true]]", "i1", [[True, False], [False, True]]),   # json path
    ("[[-3, 1099511627776]]", "i64", [[-3, 2 ** 40]]),                          # json path
    ("[1., +2.5]", "f32", [1.0, 2.5]),                                          # token path (not JSON)
    ("[0x7FC00000, 1.0]", "f32", [np.nan, 1.0]),                                # token path (bit pattern)
    ("[]", "f32", []),
])
def test_dense_literals_read_alike_on_both_paths(literal, dtype, want):
    shape = "x".join(map(str, np.shape(want))) if np.size(want) else "0"
    text = (f'module {{\n  func.func @main() -> (tensor<{shape}x{dtype}>) {{\n'
            f'    %0 = "xc.dense"() {{dtype = {dtype}, value = dense<{literal}> : tensor<{shape}x{dtype}>}} : () -> tensor<{shape}x{dtype}>\n'
            f'    func.return %0 : tensor<{shape}x{dtype}>\n  }}\n}}\n')
    got = next(o for o in xcomp.parse(text).walk() if o.name == "xc.dense").attrs["value"]
    np.testing.assert_array_equal(got, np.array(want, dtype=got.dtype))


@pytest.mark.parametrize("literal", ["[1, 2", "[1,, 2]", "[tru, false]", "[[[1]], 2]x"])
def test_malformed_dense_literals_are_parse_errors(literal):
    text = ('module {\n  func.func @main() -> (tensor<2xf32>) {\n'
            f'    %0 = "xc.dense"() {{dtype = f32, value = dense<{literal}> : tensor<2xf32>}} : () -> tensor<2xf32>\n'
            '    func.return %0 : tensor<2xf32>\n  }\n}\n')
    with pytest.raises(xcomp.ParseError):
        xcomp.parse(text)
