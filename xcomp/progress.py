"""Progress bars on long work (capture of big models, pass pipelines, builds, exports, conformance).

    from xcomp.progress import progress
    for name in progress(names, desc="passes"):          # an iterable
        ...
    with progress(total=n_files, desc="C++ build") as bar:   # or updated by hand
        bar.update(1)

Bars are drawn by tqdm on stderr when stderr is a terminal, and only for work that lasts longer
than half a second (`delay`), so short compiles print nothing. `XCOMP_PROGRESS=0` switches them
off, `XCOMP_PROGRESS=1` on even without a terminal. Without tqdm installed (it is optional: `import
xcomp` needs only numpy and jinja2) the calls are silent no-ops.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable

DELAY_S = 0.5


def enabled() -> bool:
    """Whether bars are drawn: `XCOMP_PROGRESS` if set ("0" off, anything else on), else whether
    stderr is a terminal."""
    setting = os.environ.get("XCOMP_PROGRESS", "").strip()
    if setting:
        return setting not in ("0", "false", "no", "off")
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class _Quiet:
    """The no-op bar: iterates the iterable, accepts and ignores updates."""

    def __init__(self, iterable=None, **_):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = False):
    """A progress bar over `iterable` (or one updated by hand with `total`), or a silent stand-in
    when bars are off. Both iterate, `update(n)`, `set_description`, `set_postfix_str`, `close`
    and work as context managers."""
    if not enabled():
        return _Quiet(iterable)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Quiet(iterable)
    return tqdm(iterable, total=total, desc=f"xcomp {desc}".strip(), unit=unit, leave=leave,
                delay=DELAY_S, file=sys.stderr, dynamic_ncols=True)
