"""What every benchmark records about the machine it ran on (results are only comparable within it)."""
from __future__ import annotations

import os
import platform
import time


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform reports."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return name


def host(**extra) -> dict:
    """CPU, cores, system, Python and the UTC time, then `extra` (library versions and the like)."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), **extra,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
