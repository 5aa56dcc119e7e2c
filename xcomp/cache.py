"""xcomp's on-disk, content-addressed build cache (one for every target that builds artifacts).

An entry is a directory `<root>/<namespace>/<key>/` holding the artifact's files and `MANIFEST.json`
(each file's size and sha256). `Cache.get(key, produce)` returns a verified entry, or builds one:
under a per-key file lock it runs `produce(tmpdir)` in a fresh temporary directory beside the entry,
writes the manifest last and renames the directory into place (atomic), so concurrent processes build
a key once and never see a half-written entry. An entry whose files do not match its manifest
(truncated, corrupt, missing) is removed and rebuilt, never returned. Entries are evicted least
recently used first when the namespace grows past `max_bytes`.

    root      XCOMP_CACHE_DIR, else the user's cache folder (~/.cache/xcomp, ~/Library/Caches/xcomp)
    max_bytes XCOMP_CACHE_MAX_MB (megabytes; default 2048) per namespace

Namespaces in use (`NAMESPACES`; `xcomp cache info|clear [--namespace N]`): `captures` (torch.export
captures, `xcomp.frontends.capture_cache`), `programs` (optimized programs, `xcomp.program_cache`), `cpp` and `cpp-index` (C++ libraries and the program -> library
index, `backends/cpp/build.py`), `cpp-prebuilt` (the units' shared parts per toolchain,
`backends/cpp/prebuilt.py`), `coreml` (exported `.mlpackage`s) and `tuning` (the metal/cuda
tuner's kernel choices, `xcomp.tuning_cache`). Files may sit in subfolders of an entry (a Core ML
package is a folder): the manifest lists every file by its path inside the entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from xcomp.logs import get_logger

_LOG = get_logger("cache")  # XCOMP_LOGS=cache: hits, builds, corrupt entries, evictions

MANIFEST = "MANIFEST.json"
_DEFAULT_MAX_MB = 2048
_RECENT_S = 60.0          # entries used this recently are never evicted (another process may load them)
_FAILED_KEEP_S = 86400.0  # failed builds kept for a day, for their sources and logs

# namespace -> what its entries hold (what `xcomp cache info` lists even while empty)
NAMESPACES = {
    "captures": "torch.export captures (IR text, weight names, output structure)",
    "programs": "optimized programs (IR text, folded weights, pass records)",
    "cpp": "C++ shared libraries",
    "cpp-index": "IR text -> C++ library index",
    "cpp-prebuilt": "the C++ units' shared parts per toolchain (precompiled prelude, GEMM and ops objects)",
    "coreml": "exported Core ML packages",
    "tuning": "kernel choices of the metal/cuda tuner",
}


def default_root() -> str:
    """XCOMP_CACHE_DIR, else the platform's user cache folder + /xcomp."""
    env = os.environ.get("XCOMP_CACHE_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Caches")
    elif os.name == "nt":
        base = os.environ.get("LOCALAPPDATA", os.path.join(home, "AppData", "Local"))
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "xcomp")


def content_key(*parts: str | bytes) -> str:
    """sha256 (hex) of the parts, each length-prefixed so that no two part lists collide."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else bytes(p)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing), held for the block."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            import msvcrt
            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.05)
        else:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


@dataclass
class CacheInfo:
    root: str
    namespace: str
    entries: int
    bytes: int
    max_bytes: int

    def __str__(self) -> str:
        return (f"{self.root}/{self.namespace}: {self.entries} entries, {self.bytes / 1e6:.1f} MB "
                f"(limit {self.max_bytes / 1e6:.0f} MB)")


class Cache:
    """One namespace (e.g. "cpp") of the build cache under `root`."""

    def __init__(self, namespace: str, root: str | None = None, max_bytes: int | None = None):
        if not namespace.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"cache namespace must be alphanumeric, got {namespace!r}")
        self.root = root or default_root()
        self.namespace = namespace
        self.dir = os.path.join(self.root, namespace)
        if max_bytes is None:
            max_bytes = int(float(os.environ.get("XCOMP_CACHE_MAX_MB", _DEFAULT_MAX_MB)) * 1e6)
        self.max_bytes = max_bytes

    # -- paths ---------------------------------------------------------------------------------
    def entry_dir(self, key: str) -> str:
        return os.path.join(self.dir, key)

    def failed_dir(self, key: str) -> str:
        """Where a failed build of `key` keeps its files (sources, logs) for the user to inspect."""
        return os.path.join(self.dir, "failed", key)

    def _lock_path(self, key: str) -> str:
        return os.path.join(self.dir, ".locks", key + ".lock")

    # -- lookup and build ----------------------------------------------------------------------
    def lookup(self, key: str) -> str | None:
        """The entry's directory if present and intact (and mark it used), else None."""
        d = self.entry_dir(key)
        if not self._verify(d):
            return None
        try:
            os.utime(os.path.join(d, MANIFEST))  # last use, for LRU eviction
        except OSError:
            return None
        return d

    def get(self, key: str, produce: Callable[[str], None]) -> str:
        """The verified entry for `key`; built by `produce(directory)` if absent or corrupt."""
        hit = self.lookup(key)
        if hit:
            _LOG.debug("hit %s/%s", self.namespace, key[:16])
            return hit
        with file_lock(self._lock_path(key)):
            hit = self.lookup(key)  # built by another process while we waited
            if hit:
                _LOG.debug("hit %s/%s (built by another process)", self.namespace, key[:16])
                return hit
            d = self.entry_dir(key)
            if os.path.exists(d):  # corrupt or truncated: never loaded, rebuilt
                _LOG.debug("corrupt entry %s/%s: rebuilding", self.namespace, key[:16])
                shutil.rmtree(d, ignore_errors=True)
            t0 = time.perf_counter()
            os.makedirs(self.dir, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=self.dir)
            try:
                produce(tmp)
                self._write_manifest(tmp)
                os.rename(tmp, d)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _LOG.debug("miss %s/%s: built and stored in %.2f s", self.namespace, key[:16], time.perf_counter() - t0)
        removed = self.evict(keep=key)
        if removed:
            _LOG.debug("evicted %d least recently used %s entr%s", removed, self.namespace, "y" if removed == 1 else "ies")
        return d

    def remove(self, key: str) -> None:
        """Remove `key`'s entry (one that passed its checksums but does not load, or is stale)."""
        with file_lock(self._lock_path(key)):
            shutil.rmtree(self.entry_dir(key), ignore_errors=True)

    def _write_manifest(self, d: str) -> None:
        files = {}
        for dirpath, dirnames, names in os.walk(d):
            dirnames.sort()
            for name in sorted(names):
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, d).replace(os.sep, "/")
                if rel != MANIFEST and os.path.isfile(p):
                    files[rel] = {"size": os.path.getsize(p), "sha256": file_sha256(p)}
        with open(os.path.join(d, MANIFEST), "w") as f:
            json.dump({"files": files, "created": time.time()}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _verify(d: str) -> bool:
        try:
            with open(os.path.join(d, MANIFEST)) as f:
                files = json.load(f)["files"]
            for name, meta in files.items():
                if os.path.isabs(name) or ".." in name.split("/"):
                    return False
                p = os.path.join(d, *name.split("/"))
                if os.path.getsize(p) != meta["size"] or file_sha256(p) != meta["sha256"]:
                    return False
            return bool(files)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    # -- maintenance ---------------------------------------------------------------------------
    def _entries(self) -> list[tuple[float, str]]:
        """(last use, directory) of every entry, oldest first."""
        out = []
        if not os.path.isdir(self.dir):
            return out
        for name in os.listdir(self.dir):
            d = os.path.join(self.dir, name)
            if name.startswith(".") or name == "failed" or not os.path.isdir(d):
                continue
            try:
                used = os.path.getmtime(os.path.join(d, MANIFEST))
            except OSError:
                used = 0.0
            out.append((used, d))
        return sorted(out)

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used entries until the namespace fits `max_bytes`; returns how many."""
        now, removed = time.time(), 0
        failed = os.path.join(self.dir, "failed")
        if os.path.isdir(failed):
            for name in os.listdir(failed):
                p = os.path.join(failed, name)
                if now - os.path.getmtime(p) > _FAILED_KEEP_S:
                    shutil.rmtree(p, ignore_errors=True)
        for name in os.listdir(self.dir) if os.path.isdir(self.dir) else ():
            p = os.path.join(self.dir, name)  # temporary directories of builds that died
            if name.startswith(".tmp-") and now - os.path.getmtime(p) > _FAILED_KEEP_S / 24:
                shutil.rmtree(p, ignore_errors=True)
        entries = self._entries()
        sizes = {d: _dir_bytes(d) for _, d in entries}
        total = sum(sizes.values())
        for used, d in entries:
            if total <= self.max_bytes:
                break
            if os.path.basename(d) == keep or now - used < _RECENT_S:
                continue
            with file_lock(self._lock_path(os.path.basename(d))):
                shutil.rmtree(d, ignore_errors=True)
            total -= sizes[d]
            removed += 1
        return removed

    def info(self) -> CacheInfo:
        entries = self._entries()
        return CacheInfo(self.root, self.namespace, len(entries), sum(_dir_bytes(d) for _, d in entries),
                         self.max_bytes)

    def clear(self) -> int:
        """Remove every entry (and failed build) of this namespace; returns how many entries."""
        entries = self._entries()
        for _, d in entries:
            with file_lock(self._lock_path(os.path.basename(d))):
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(os.path.join(self.dir, "failed"), ignore_errors=True)
        return len(entries)


def namespaces(root: str | None = None) -> list[str]:
    """The known namespaces (`NAMESPACES`) and any other namespace folder under `root`, sorted.
    `probes/` (the C++ compiler probes, plain files) is no namespace."""
    root = root or default_root()
    found = set(NAMESPACES)
    if os.path.isdir(root):
        found |= {n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n))
                  and not n.startswith(".") and n != "probes"}
    return sorted(found)
