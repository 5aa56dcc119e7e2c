"""Logging: Python's `logging` under the `xcomp` logger, components switched on like `TORCH_LOGS`.

    XCOMP_LOGS=passes,ir python train.py      # each pass with time and op counts, IR after each
    XCOMP_LOGS=all ...                        # every component
    xcomp.logs.set_logs("kernels", "cache")   # the same from Python

Each component is the logger `xcomp.<component>` (`get_logger("passes")`). A component switched on
logs at DEBUG level to stderr with a `[xcomp.<component>]` prefix and does not propagate (so a root
handler does not print it twice); switched off, it follows the application's logging setup
(warnings reach stderr through Python's last-resort handler, as for any library).
"""
from __future__ import annotations

import logging
import os
import sys

COMPONENTS = {
    "passes": "each pass of a pipeline with its time and op-count delta",
    "ir": "the IR after each pass",
    "kernels": "kernel generation, build and tuning decisions (metal, cuda, cpp)",
    "cache": "compile cache lookups, stores and evictions",
    "capture": "frontends: what was captured, how long it took",
    "dynamo": "the torch.compile backend: graphs compiled, graphs run eagerly",
}

_applied: str | None = None
_switched_on: set[str] = set()  # components whose level/handler xcomp set (others are the application's)


class _StderrHandler(logging.StreamHandler):
    """Writes to the current `sys.stderr` (which test runners and notebooks replace)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def get_logger(component: str) -> logging.Logger:
    """The logger of one component (`xcomp.passes`, ...), configured from `XCOMP_LOGS`."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown xcomp log component {component!r}; known: {', '.join(COMPONENTS)}")
    configure()
    return logging.getLogger(f"xcomp.{component}")


def parse(spec: str) -> set[str]:
    """Component names of an `XCOMP_LOGS` value (`"passes,+ir"`, `"all"`); unknown names warn."""
    names = {s.strip().lstrip("+") for s in spec.split(",") if s.strip()}
    if "all" in names:
        return set(COMPONENTS)
    unknown = sorted(names - set(COMPONENTS))
    if unknown:
        logging.getLogger("xcomp").warning("XCOMP_LOGS: unknown component(s) %s; known: all, %s",
                                           ", ".join(unknown), ", ".join(COMPONENTS))
    return names & set(COMPONENTS)


def configure(spec: str | None = None) -> set[str]:
    """Switch components on as `spec` (default: the `XCOMP_LOGS` environment variable) says and
    the others off; cheap when nothing changed. Returns the components switched on."""
    global _applied
    spec = os.environ.get("XCOMP_LOGS", "") if spec is None else spec
    enabled = parse(spec)
    if spec == _applied:
        return enabled
    _applied = spec
    for name in COMPONENTS:
        logger = logging.getLogger(f"xcomp.{name}")
        ours = [h for h in logger.handlers if isinstance(h, _StderrHandler)]
        if name in enabled:
            if not ours:
                handler = _StderrHandler()
                handler.setFormatter(logging.Formatter(f"[xcomp.{name}] %(message)s"))
                logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            _switched_on.add(name)
        elif name in _switched_on:  # undo only what xcomp did; levels the application set stay
            for h in ours:
                logger.removeHandler(h)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            _switched_on.discard(name)
    return enabled


def set_logs(*components: str) -> set[str]:
    """Switch exactly these components on from Python (like `torch._logging.set_logs`); this
    overrides `XCOMP_LOGS` until the variable changes."""
    global _applied
    spec = ",".join(components)
    enabled = configure(spec)
    _applied = os.environ.get("XCOMP_LOGS", "")  # the variable wins again only once it changes
    return enabled
