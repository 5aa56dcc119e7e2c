"""Shared helpers: TorchScript versions of a case (scripted, traced, saved and loaded) and targets."""
from __future__ import annotations

import os
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.dirname(__file__))

from xcomp.backends import TARGETS, get_target  # noqa: E402

# targets compared with the TorchScript module on every case
TS_TARGETS = [t for t in ("reference", "mlx") if t in TARGETS and get_target(t).unavailable_reason() is None]
# cpp (g++ per program, ~2 s each): scripted cases in the default tier, traced/saved ones marked slow;
# its known gaps are asserted to fail with LoweringError so the test notices when they close
CPP = "cpp" in TARGETS and get_target("cpp").unavailable_reason() is None
CPP_GAPS: dict[str, str] = {}   # case name -> what cpp lacks for it (none today: lists run since issue 8)


def script(obj):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(obj)


def trace(obj, example):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(obj, example, check_trace=False)


def save_load(module, directory, extra=None):
    """`module` saved with torch.jit.save; returns the file's path (xcomp loads it)."""
    path = os.path.join(directory, "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(module, path, _extra_files=extra or {})
    return path


def load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(path)


def run_script(module, args):
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return module(*args)
