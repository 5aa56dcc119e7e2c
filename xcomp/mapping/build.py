"""Building the mapping: registries and the committed conformance results into `Mapping` rows."""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFORMANCE_JSON = os.path.join(ROOT, "docs", "conformance.json")
STATUS_ORDER = ["pass", "lowered", "untested", "fail", "error", "unsupported", "missing", "n/a"]


@dataclass
class Overload:
    name: str                       # aten.add.Tensor
    via: str = ""                   # converter | in-place | torchscript | "" (not taken) | out=
    ir_ops: list[str] = field(default_factory=list)
    mlx: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    opinfos: int = 0                # OpInfos whose capture converted it
    notes: list[str] = field(default_factory=list)   # partial support: what the converter refuses

    @property
    def mapped(self) -> bool:
        return self.via not in ("", "out=")


@dataclass
class Row:
    op: str                         # aten::softmax
    overloads: list[Overload]

    @property
    def mapped(self) -> list[Overload]:
        return [o for o in self.overloads if o.mapped]

    def status(self, target: str) -> str:
        """The best status of the op's overloads on `target` ("missing" when none is taken)."""
        got = [o.status.get(target, "missing") for o in self.mapped]
        return min(got, key=STATUS_ORDER.index) if got else "missing"

    def union(self, attr: str) -> list[str]:
        return sorted({x for o in self.mapped for x in getattr(o, attr)})


@dataclass
class Mapping:
    targets: list[str]
    verified: list[str]             # targets with conformance results
    rows: list[Row]
    primitives: list[dict]
    wanted: list[tuple[str, int]]   # most-wanted missing aten ops (OpInfos needing them)

    def overloads(self) -> list[Overload]:
        return [o for r in self.rows for o in r.overloads]


# -- building ----------------------------------------------------------------------------------------
def _schemas() -> dict[str, list[str]]:
    """aten op -> its overload keys (`aten.add.Tensor`), from torch's JIT registry."""
    import torch
    ops: dict[str, set[str]] = {}
    for s in torch._C._jit_get_all_schemas():
        if s.name.startswith("aten::"):
            op = s.name.split("::", 1)[1]
            ops.setdefault(op, set()).add(f"aten.{op}.{s.overload_name or 'default'}")
    return {op: sorted(v) for op, v in sorted(ops.items())}


def _conformance(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _refusals(report: dict) -> dict[str, set[str]]:
    """overload -> why its converter refused a sample ("unsupported" reasons `aten.x.y: why`)."""
    out: dict[str, set[str]] = {}
    for r in report["results"]:
        for reason in set(r.get("reason", {}).values()):
            for part in reason.split("; "):
                name, sep, why = part.partition(": ")
                if sep and name.startswith("aten.") and name.count(".") == 2 and why:
                    out.setdefault(name, set()).add(why.strip())
    return out


def _observed(report: dict) -> tuple[dict[str, set[str]], dict[str, dict[str, list[str]]], Counter]:
    """From a conformance report: overload -> IR ops, overload -> target -> statuses, and the
    missing-op counter."""
    ir: dict[str, set[str]] = {}
    status: dict[str, dict[str, list[str]]] = {}
    wanted: Counter = Counter()
    for r in report["results"]:
        for name, ops in (r.get("aten") or {}).items():
            ir.setdefault(name, set()).update(ops)
            for t, s in r["status"].items():
                status.setdefault(name, {}).setdefault(t, []).append(s)
        for m in r.get("missing") or []:
            wanted[m] += 1
    return ir, status, wanted


def _targets() -> dict[str, set[str] | None]:
    from xcomp.backends import TARGETS, get_target
    out: dict[str, set[str] | None] = {}
    for name in TARGETS:
        try:
            out[name] = set(get_target(name).supported())
        except Exception:  # noqa: BLE001 - a target whose library is missing here
            out[name] = None
    return out


def _mlx_functions() -> dict[str, list[str]]:
    try:
        from xcomp.backends.mlx.table import MLX_RULES, mlx_functions
        from xcomp.backends.mlx.target import load_table
        load_table()
    except ImportError:
        return {}
    return {op: mlx_functions(rule) for op, rule in MLX_RULES.items()}


def _torchscript_nodes() -> set[str]:
    """aten node kinds the TorchScript frontend has rules for (every module of it imported, since
    rules register on import)."""
    import importlib
    import pkgutil
    try:
        import xcomp.frontends.torchscript as ts
        for m in pkgutil.iter_modules(ts.__path__):
            importlib.import_module(f"{ts.__name__}.{m.name}")
        from xcomp.frontends.torchscript.nodes import NODES
    except ImportError:
        return set()
    return {k.split("::", 1)[1] for k in NODES if k.startswith("aten::")}


def build(conformance_path: str = CONFORMANCE_JSON) -> Mapping:
    """The mapping from the registries and the committed conformance results."""
    from xcomp.frontends.aten import ATEN
    from xcomp.passes.decompose import DECOMPOSITIONS
    report = _conformance(conformance_path)
    verified = list(report["targets"])
    ir, observed, wanted = _observed(report)
    refused = _refusals(report)
    targets = _targets()
    mlx = _mlx_functions()
    script_nodes = _torchscript_nodes()
    rows = []
    for op, keys in _schemas().items():
        overloads = []
        for key in keys:
            o = Overload(key)
            functional = key.replace(f"aten.{op}.", f"aten.{op[:-1]}.", 1) \
                if op.endswith("_") and not op.endswith("__") else key
            overload_name = key.rsplit(".", 1)[1]
            if key in ATEN:
                o.via = "converter"
            elif functional in ATEN:
                o.via, key = "in-place", functional
            elif op in script_nodes:
                o.via = "torchscript"
            elif overload_name == "out" or overload_name.endswith("_out"):
                o.via = "out="
            o.ir_ops = sorted(ir.get(key, ()))
            o.opinfos = len(observed.get(key, {}).get(verified[0], [])) if verified else 0
            o.mlx = sorted({f for n in o.ir_ops for f in (mlx.get(n) or (["decomposed"] if n in DECOMPOSITIONS else []))})
            o.notes = sorted(refused.get(key, ()))
            o.status = _status(o, key, observed, targets, verified, DECOMPOSITIONS) if o.mapped else {}
            overloads.append(o)
        rows.append(Row(f"aten::{op}", overloads))
    wanted_ops = sorted(wanted.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    return Mapping(list(targets), verified, rows, _primitives(targets, mlx, DECOMPOSITIONS), wanted_ops)


def _status(o: Overload, key: str, observed, targets, verified, decomps) -> dict[str, str]:
    out = {}
    for t, supported in targets.items():
        if t in verified and key in observed:
            seen = observed[key].get(t, [])
            out[t] = "pass" if any(s in ("pass", "xfail") for s in seen) else \
                next((s for s in ("fail", "error", "unsupported") if s in seen), "untested")
        elif supported is None:
            out[t] = "n/a"
        elif not o.ir_ops:
            out[t] = "untested"
        else:
            compute = [n for n in o.ir_ops if n not in _STRUCTURAL]
            out[t] = "lowered" if all(n in supported or n in decomps for n in compute) else "missing"
    return out


_STRUCTURAL = {"xc.constant", "xc.dense", "xc.scalar", "xc.none", "xc.list", "xc.weight"}


def _primitives(targets, mlx, decomps) -> list[dict]:
    try:
        from xcomp.frontends.mlx.table import IR_OPS, PRIMITIVES  # noqa: F401
        import xcomp.frontends.mlx  # noqa: F401  (fills the table)
    except ImportError:
        return []
    import re
    from xcomp.ops.registry import REGISTRY
    rows = []
    for prim in sorted(IR_OPS):
        text = IR_OPS[prim]
        words = re.findall(r"[a-z_0-9]+", re.sub(r"\([^)]*\)", "", text))
        ops = sorted({f"xc.{w}" for w in words if f"xc.{w}" in REGISTRY})
        status = {t: "n/a" if s is None else "lowered" if all(n in s or n in decomps for n in ops)
                  else "missing" for t, s in targets.items()}
        rows.append({"primitive": prim, "ir": text, "ir_ops": ops,
                     "mlx": sorted({f for n in ops for f in mlx.get(n, [])}), "status": status})
    return rows
