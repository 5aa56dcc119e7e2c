"""Programs as Graphviz pictures: `xcomp viz MODEL -o graph.svg`.

`to_dot(program)` draws @main: one node per op labelled with its name and result shape, inputs,
weights and constants in their own shapes and colours, fused groups as clusters holding their ops,
other region ops (`xc.if`, `xc.loop`) as clusters beside their op. `compare_dot(before, after)` puts
the captured and the optimized program side by side. `render(dot, path)` writes DOT text, and SVG,
PNG or PDF through Graphviz's `dot` command. Labels are escaped (model names never reach the DOT
text raw); node ids are generated.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from xcomp.errors import XcompError
from xcomp.ir.core import Block, Operation, Program, Value
from xcomp.ir.types import TensorType

STYLES = {  # node kind -> Graphviz attributes
    "input": 'shape=invhouse, style=filled, fillcolor="#cfe2ff"',
    "weight": 'shape=box, style="filled,rounded", fillcolor="#ffe8a3"',
    "constant": 'shape=note, style=filled, fillcolor="#eeeeee", fontsize=8',
    "op": 'shape=box, style="filled", fillcolor="#ffffff"',
    "output": 'shape=house, style=filled, fillcolor="#d1e7dd"',
}
CLUSTER_STYLE = 'style="rounded,filled"; fillcolor="#f3ecff"; color="#8a63d2"'
FORMATS = ("svg", "png", "pdf")


def escape(text: str) -> str:
    """Text safe inside a double-quoted DOT string."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def shape_text(t) -> str:
    if isinstance(t, TensorType):
        dims = "x".join(str(d) for d in t.shape) or "scalar"
        return f"{dims} {t.dtype.value}"
    return str(t)


class _Graph:
    """Collects the DOT lines of one function; `prefix` keeps node ids of two programs apart."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.lines: list[str] = []
        self.edges: list[str] = []  # written after every node: an edge inside a cluster would pull
        #                             both of its ends into that cluster
        self.source: dict[Value, str] = {}   # value -> the node that produces it
        self.count = 0

    def node(self, kind: str, label: str, indent: str) -> str:
        nid = f"{self.prefix}n{self.count}"
        self.count += 1
        self.lines.append(f'{indent}{nid} [label="{escape(label)}", {STYLES[kind]}];')
        return nid

    def edge(self, value: Value, target: str) -> None:
        src = self.source.get(value)
        if src is not None:
            self.edges.append(f"{src} -> {target};")

    def block(self, block: Block, indent: str) -> None:
        for op in block.ops:
            if op.opdef.is_terminator:
                continue
            if op.name == "xc.fused":
                self.fused(op, indent)
            else:
                self.op(op, indent)

    def op(self, op: Operation, indent: str) -> None:
        kind = "weight" if op.name == "xc.weight" else "constant" if op.opdef.is_structural else "op"
        name = op.name.removeprefix("xc.")
        head = f"{name} {op.attrs['name']}" if kind == "weight" else name
        shapes = ", ".join(shape_text(r.type) for r in op.results)
        nid = self.node(kind, f"{head}\n{shapes}" if shapes else head, indent)
        for v in op.operands:
            self.edge(v, nid)
        for r in op.results:
            self.source[r] = nid
        for i, region in enumerate(op.regions):  # if/loop bodies: a cluster beside the op
            self.lines.append(f"{indent}subgraph cluster_{nid}_{i} {{")
            self.lines.append(f'{indent}  label="{escape(name)} region {i}"; {CLUSTER_STYLE};')
            for b in region.blocks:
                for a in b.args:
                    self.source[a] = self.node("input", f"arg\n{shape_text(a.type)}", indent + "  ")
                self.block(b, indent + "  ")
            self.lines.append(f"{indent}}}")

    def fused(self, op: Operation, indent: str) -> None:
        """A fused group: its body ops in one cluster, wired to the values outside."""
        body = op.regions[0].block
        cid = f"{self.prefix}g{self.count}"
        ops = [o for o in body.ops if not o.opdef.is_structural and not o.opdef.is_terminator]
        self.lines.append(f"{indent}subgraph cluster_{cid} {{")
        kind = getattr(op.attrs.get("kind"), "value", op.attrs.get("kind", ""))
        self.lines.append(f'{indent}  label="fused {escape(kind)} ({len(ops)} ops)"; '
                          f"{CLUSTER_STYLE};")
        for arg, outer in zip(body.args, op.operands):
            if outer in self.source:
                self.source[arg] = self.source[outer]
        self.block(body, indent + "  ")
        self.lines.append(f"{indent}}}")
        term = body.terminator
        for r, inner in zip(op.results, term.operands if term is not None else []):
            if inner in self.source:
                self.source[r] = self.source[inner]


def _function_lines(program: Program, prefix: str, indent: str) -> list[str]:
    g = _Graph(prefix)
    func = program.main
    names = list(func.arg_names) + [""] * len(func.args)
    for a, name in zip(func.args, names):
        g.source[a] = g.node("input", f"{name or 'input'}\n{shape_text(a.type)}", indent)
    g.block(func.body, indent)
    for i, v in enumerate(func.outputs):
        g.edge(v, g.node("output", f"output {i}\n{shape_text(v.type)}", indent))
    return g.lines + [indent + e for e in g.edges]


def _header(title: str) -> list[str]:
    return ["digraph xcomp {", '  rankdir=TB; newrank=true; node [fontname="Helvetica", fontsize=10];',
            '  edge [color="#555555", arrowsize=0.6];',
            f'  labelloc=t; label="{escape(title)}";' if title else ""]


def to_dot(program: Program, title: str = "") -> str:
    """DOT text of the program's @main."""
    return "\n".join(line for line in _header(title) + _function_lines(program, "", "  ") + ["}"] if line) + "\n"


def compare_dot(before: Program, after: Program, before_label: str = "captured",
                after_label: str = "optimized", title: str = "") -> str:
    """DOT text with `before` and `after` side by side, each in its own cluster."""
    lines = _header(title)
    for prefix, program, label in (("b_", before, before_label), ("a_", after, after_label)):
        lines.append(f"  subgraph cluster_{prefix}program {{")
        lines.append(f'    label="{escape(label)}"; style=dashed; color="#999999";')
        lines += _function_lines(program, prefix, "    ")
        lines.append("  }")
    return "\n".join(line for line in lines + ["}"] if line) + "\n"


def render(dot: str, path: str) -> list[str]:
    """Write `dot` to `path`: DOT text for `.dot`/`.gv`; for `.svg`/`.png`/`.pdf` the DOT text
    beside it (same name, `.dot`) and the picture through Graphviz's `dot`. Returns the paths
    written; XcompError when the picture cannot be made (no `dot`, or it failed)."""
    stem, ext = os.path.splitext(path)
    fmt = ext.lstrip(".").lower()
    if fmt not in FORMATS + ("dot", "gv"):
        raise XcompError(f"cannot write '{path}': use .dot, .gv, {', '.join('.' + f for f in FORMATS)}")
    dot_path = path if fmt in ("dot", "gv") else stem + ".dot"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(dot_path, "w") as f:
        f.write(dot)
    if fmt in ("dot", "gv"):
        return [dot_path]
    exe = shutil.which("dot")
    if exe is None:
        raise XcompError(f"wrote {dot_path}, but Graphviz's `dot` is not installed to draw {path} "
                         "(apt-get install graphviz, brew install graphviz)")
    done = subprocess.run([exe, f"-T{fmt}", "-o", path, dot_path], capture_output=True, text=True)
    if done.returncode != 0:
        raise XcompError(f"Graphviz's dot failed on {dot_path}: {done.stderr.strip()[:500]}")
    return [dot_path, path]
