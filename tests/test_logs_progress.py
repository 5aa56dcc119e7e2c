"""XCOMP_LOGS components on Python logging, and progress bars (quiet without a terminal)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from xcomp import logs, progress
from xcomp.ir.builder import build_program
from xcomp.ir.types import DType, TensorType
from xcomp.passes import run_pipeline


def _program():
    return build_program([TensorType((4,), DType.F32)], lambda b, x: [b.op("neg", b.op("neg", x))])


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch):
    monkeypatch.delenv("XCOMP_LOGS", raising=False)
    monkeypatch.delenv("XCOMP_PROGRESS", raising=False)
    yield
    logs.configure("")
    logs._applied = None


def test_components_switch_on_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("XCOMP_LOGS", "passes")
    run_pipeline(_program(), ["canonicalize", "dce"])
    err = capsys.readouterr().err
    assert "[xcomp.passes] pass canonicalize" in err and "IR after" not in err
    monkeypatch.setenv("XCOMP_LOGS", "+ir")
    run_pipeline(_program(), ["dce"])
    err = capsys.readouterr().err
    assert "[xcomp.ir] IR after dce" in err and "[xcomp.passes]" not in err


def test_all_and_set_logs(monkeypatch, capsys):
    assert logs.configure("all") == set(logs.COMPONENTS)
    assert logs.set_logs("passes") == {"passes"}
    run_pipeline(_program(), ["dce"])
    assert "[xcomp.passes] pass dce" in capsys.readouterr().err
    assert logging.getLogger("xcomp.passes").propagate is False  # no second copy through root


def test_unknown_component_warns_and_get_logger_refuses(caplog):
    with caplog.at_level(logging.WARNING, logger="xcomp"):
        assert logs.configure("passes,bogus") == {"passes"}
    assert "unknown component(s) bogus" in caplog.text
    with pytest.raises(ValueError, match="unknown xcomp log component"):
        logs.get_logger("bogus")


def test_switched_off_components_follow_the_application_logging(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="xcomp.passes"):
        run_pipeline(_program(), ["canonicalize"])
    assert "pass canonicalize" in caplog.text  # records reach the application's handlers
    assert "[xcomp" not in capsys.readouterr().err  # and xcomp prints nothing itself


def test_progress_is_quiet_without_a_terminal_or_when_switched_off(monkeypatch):
    assert not progress.enabled()  # pytest's captured stderr is not a terminal
    bar = progress.progress([1, 2, 3], desc="x")
    assert list(bar) == [1, 2, 3] and type(bar).__name__ == "_Quiet"
    monkeypatch.setenv("XCOMP_PROGRESS", "0")
    assert not progress.enabled()
    with progress.progress(total=3) as b:
        b.update(1)
        b.set_postfix_str("ok")


def test_progress_bar_draws_when_forced(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("XCOMP_PROGRESS", "1")
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    out = run_pipeline(_program(), ["canonicalize", "dce"])
    assert [r.name for r in out.records] == ["canonicalize", "dce"]
    err = capsys.readouterr().err
    assert "xcomp passes" in err and "/2 " in err


def test_logging_leaves_results_unchanged():
    a, b = _program(), _program()
    logs.set_logs("passes", "ir")
    run_pipeline(a, ["canonicalize", "dce"])
    logs.set_logs()
    run_pipeline(b, ["canonicalize", "dce"])
    assert str(a) == str(b)
    x = np.arange(4, dtype=np.float32)
    from xcomp import interpret
    np.testing.assert_array_equal(interpret(a, [x])[0], x)


def test_kernel_tuning_decisions_are_logged_on_the_kernels_component(capsys):
    from xcomp.backends.kernels.target import Decisions
    logs.set_logs("kernels")
    decisions = Decisions()
    decisions.append("fused_0: kernels (us) 1.0; MLX 2.0 us -> kernel")
    assert decisions == ["fused_0: kernels (us) 1.0; MLX 2.0 us -> kernel"]
    assert "[xcomp.kernels] fused_0: kernels (us) 1.0" in capsys.readouterr().err


def test_cache_component_logs_misses_and_hits(tmp_path, capsys):
    from xcomp.cache import Cache
    logs.set_logs("cache")
    cache = Cache("logtest", root=str(tmp_path))

    def produce(d):
        with open(f"{d}/f.txt", "w") as f:
            f.write("x")
    first, again = cache.get("k" * 64, produce), cache.get("k" * 64, produce)
    assert first == again
    err = capsys.readouterr().err
    assert "[xcomp.cache] miss logtest/kkkk" in err and "[xcomp.cache] hit logtest/kkkk" in err


def test_cpp_build_and_coreml_export_draw_their_steps(monkeypatch, tmp_path, capsys):
    """A C++ build (cache miss) and a Core ML export each draw a two-step bar when bars are on."""
    monkeypatch.setenv("XCOMP_PROGRESS", "1")
    monkeypatch.setenv("XCOMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    from xcomp.backends import get_target
    cpp = get_target("cpp")
    if cpp.unavailable_reason() is None:
        runner = cpp.build(_program())
        np.testing.assert_array_equal(runner([np.arange(4, dtype=np.float32)])[0], np.arange(4))
        err = capsys.readouterr().err
        assert "xcomp C++ build" in err and "compiling with" in err   # the second step was drawn
    pytest.importorskip("coremltools")
    from xcomp.backends.coreml.target import CoreMLTarget
    CoreMLTarget().export(_program(), str(tmp_path / "m.mlpackage"))
    err = capsys.readouterr().err
    assert "xcomp Core ML export" in err and "saving m.mlpackage" in err
