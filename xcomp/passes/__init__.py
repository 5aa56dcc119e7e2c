"""Passes on the shared IR and the pass manager that runs them (see `manager.py`).

Importing this package registers every built-in pass module in this folder.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from xcomp.passes.manager import PASSES, Pass, PipelineReport, register_pass, run_pipeline  # noqa: F401

for _m in _pkgutil.iter_modules(__path__):
    if _m.name not in ("manager", "report") and not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")
