"""Core ML conversion: xcomp's `coreml` target against coremltools' own converter, in one run.

    python benchmarks/coreml_convert.py [--models mlp cnn ...] [--rounds 3]

For each model: the time from the PyTorch module to a saved `.mlpackage` for xcomp
(`xcomp.export(..., target="coreml")`: capture, passes, MIL, ct.convert's MIL passes, save) and for
coremltools' two paths, `ct.convert(torch.jit.trace(...))` and `ct.convert(exported_program)`
(tracing/export included, default float16 precision for all three), where those succeed; then the
non-const MIL ops of each saved package by kind. Times are medians over `rounds` interleaved rounds
(every converter in turn each round). Writes benchmarks/results/coreml_convert.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from host import host  # noqa: E402  (benchmarks/host.py: the machine record every benchmark writes)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "coreml"))
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")

MODELS = ("mlp", "cnn", "encoder_layer", "gpt_block", "bert", "scripted_loop", "alias_where", "encoder_4_layers")


def build(name: str):
    """(module for xcomp, example inputs, module or ExportedProgram for coremltools' paths)."""
    import models as M  # tests/coreml/models.py
    from xcomp.zoo import MODELS as ZOO
    if name in ("mlp", "cnn"):
        model, inputs = ZOO[name]()
    elif name == "encoder_4_layers":
        model, inputs = M.encoder_layer(layers=4)
    elif name == "alias_where":
        model, inputs, ep = M.alias_where()
        return model, inputs, ep
    else:
        model, inputs = getattr(M, name)()
    return model, inputs, model


def xcomp_convert(name, model, inputs, path):
    import xcomp
    if name == "alias_where":   # the ExportedProgram itself, as the peers get it
        from xcomp.frontends.torch_export import from_exported
        model = from_exported(inputs[1]).program
        inputs = inputs[0]
    return xcomp.export(model, inputs, target="coreml", path=path)


def ct_trace(name, model, inputs, path):
    import coremltools as ct
    import torch
    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    if isinstance(model, torch.jit.ScriptModule):   # already TorchScript: its int argument as a tensor
        specs = [ct.TensorType(shape=tuple(x.shape)) if isinstance(x, torch.Tensor) else ct.TensorType(shape=())
                 for x in inputs]
        traced = model
    else:
        traced = torch.jit.trace(model, inputs)
        specs = [ct.TensorType(shape=tuple(x.shape)) for x in inputs]
    ct.convert(traced, inputs=specs, convert_to="mlprogram").save(path)
    return path


def ct_export(name, model, inputs, path):
    import coremltools as ct
    import torch
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError("a TorchScript module has no ExportedProgram")
    ep = model if isinstance(model, torch.export.ExportedProgram) else torch.export.export(model, inputs)
    ct.convert(ep.run_decompositions({}), convert_to="mlprogram").save(path)
    return path


CONVERTERS = {"xcomp": xcomp_convert, "ct.convert(trace)": ct_trace, "ct.convert(exported_program)": ct_export}


def mil_ops(path: str) -> Counter:
    """Non-const MIL ops of a saved package by kind (nested blocks included)."""
    from xcomp.backends.coreml.evaluate import load_package
    program, _ = load_package(path)
    kinds: Counter = Counter()

    def walk(block):
        for op in block.operations:
            if op.op_type != "const":
                kinds[op.op_type] += 1
            for b in op.blocks:
                walk(b)
    walk(program.functions["main"])
    return kinds


def bench(name: str, rounds: int, workdir: str) -> dict:
    model, inputs, peer_model = build(name)
    args = {"xcomp": (model, (inputs, peer_model) if name == "alias_where" else inputs),
            "ct.convert(trace)": (peer_model, inputs), "ct.convert(exported_program)": (peer_model, inputs)}
    times = {k: [] for k in CONVERTERS}
    errors, paths = {}, {}
    for r in range(rounds):
        for k, fn in CONVERTERS.items():
            if k in errors:
                continue
            path = os.path.join(workdir, f"{name}-{k}-{r}.mlpackage".replace("(", "_").replace(")", ""))
            t0 = time.perf_counter()
            try:
                paths[k] = fn(name, *args[k], path)
            except Exception as e:  # a peer failing is a result, recorded with its reason
                errors[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
                continue
            times[k].append(time.perf_counter() - t0)
    row = {"model": name, "seconds": {k: statistics.median(v) for k, v in times.items() if v and k not in errors},
           "errors": errors, "mil_ops": {k: dict(mil_ops(p)) for k, p in paths.items() if k not in errors}}
    row["op_counts"] = {k: sum(v.values()) for k, v in row["mil_ops"].items()}
    return row


def machine() -> dict:
    import coremltools as ct
    import torch
    return host(torch=torch.__version__, coremltools=ct.__version__)


def markdown(rows: list, info: dict, rounds: int) -> str:
    peers = [k for k in CONVERTERS if k != "xcomp"]
    out = [f"# Core ML conversion: xcomp vs coremltools\n",
           f"Machine: {info['cpu']} ({info['cores']} cores, shared), {info['system']}, Python {info['python']}, "
           f"torch {info['torch']}, coremltools {info['coremltools']}, {info['date']}. Median of {rounds} "
           "interleaved rounds; module to saved `.mlpackage`, float16 precision for all.\n",
           "| model | xcomp s | " + " | ".join(f"{p} s" for p in peers) + " | best peer / xcomp | non-const MIL ops xcomp | "
           + " | ".join(f"ops {p}" for p in peers) + " |",
           "|---|---:|" + "---:|" * len(peers) + "---:|---:|" + "---:|" * len(peers)]
    for r in rows:
        s, c = r["seconds"], r["op_counts"]
        peer_t = [s[p] for p in peers if p in s]
        ratio = f"{min(peer_t) / s['xcomp']:.2f}x" if peer_t and "xcomp" in s else "-"
        cell = lambda p: f"{s[p]:.2f}" if p in s else "fails"  # noqa: E731
        ops = lambda p: str(c[p]) if p in c else "-"  # noqa: E731
        out.append(f"| {r['model']} | {cell('xcomp')} | " + " | ".join(cell(p) for p in peers) + f" | {ratio} | "
                   f"{ops('xcomp')} | " + " | ".join(ops(p) for p in peers) + " |")
    out.append("\nPeer failures:\n")
    for r in rows:
        for k, e in r["errors"].items():
            out.append(f"- {r['model']}, {k}: {e}")
    out.append("\nMIL op kinds (non-const):\n")
    for r in rows:
        for k, kinds in r["mil_ops"].items():
            out.append(f"- {r['model']}, {k}: " + ", ".join(f"{n} {v}" for n, v in sorted(kinds.items())))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(HERE, "results", "coreml_convert"))
    a = p.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)
    import coremltools  # noqa: F401  (imported once, before any timing)
    import xcomp  # noqa: F401
    workdir = tempfile.mkdtemp(prefix="coreml_convert_")
    try:
        build("mlp")   # warm imports (torch.export, transformers) outside the timings
        rows = []
        for name in a.models:
            rows.append(bench(name, a.rounds, workdir))
            print(json.dumps({k: rows[-1][k] for k in ("model", "seconds", "op_counts", "errors")}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info = machine()
    with open(a.out + ".json", "w") as f:
        json.dump({"machine": info, "rounds": a.rounds, "rows": rows}, f, indent=1)
    with open(a.out + ".md", "w") as f:
        f.write(markdown(rows, info, a.rounds))
    print(markdown(rows, info, a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
