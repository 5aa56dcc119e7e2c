"""Core ML conversion: xcomp's `coreml` target against coremltools' own converter, in one run.

    python benchmarks/coreml_convert.py [--models mlp cnn ...] [--rounds 3]

For each model: the time from the PyTorch module to a saved `.mlpackage` for xcomp
(`xcomp.export(..., target="coreml")`: capture, passes, MIL, ct.convert's MIL passes, save) and for
coremltools' two paths, `ct.convert(torch.jit.trace(...))` and `ct.convert(exported_program)`
(tracing/export included, default float16 precision for all three), where those succeed; then the
non-const MIL ops of each saved package by kind. Times are medians over `rounds` interleaved rounds
(every converter in turn each round, after one untimed warm-up round). `xcomp iOS18` is xcomp with `minimum_deployment_target="iOS18"`
(attention as one MIL op). Writes benchmarks/results/coreml_convert.{json,md}.

    python benchmarks/coreml_convert.py --breakdown [--models ...]

times the stages instead (xcomp: torch.export, run_decompositions where the graph needs it, FX to
IR, passes, MIL building, MIL passes + ct.convert, save; the peers: trace or export,
run_decompositions, ct.convert, save), with xcomp's stages also as they were before 2026-12-02
(`xcomp before`), and writes coreml_convert_breakdown.{json,md}.
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
os.environ["XCOMP_CACHE"] = "0"   # every conversion from scratch: no program or package cache hits
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


def xcomp_ios18(name, model, inputs, path):
    """xcomp for iOS 18: attention as MIL's scaled_dot_product_attention (op counts beside the rest)."""
    import xcomp
    if name == "alias_where":
        return xcomp_convert(name, model, inputs, path)
    return xcomp.export(model, inputs, target="coreml", path=path, minimum_deployment_target="iOS18")


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


CONVERTERS = {"xcomp": xcomp_convert, "ct.convert(trace)": ct_trace, "ct.convert(exported_program)": ct_export,
              "xcomp iOS18": xcomp_ios18}
PEERS = ("ct.convert(trace)", "ct.convert(exported_program)")


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
    mine = (model, (inputs, peer_model) if name == "alias_where" else inputs)
    args = {"xcomp": mine, "xcomp iOS18": mine,
            "ct.convert(trace)": (peer_model, inputs), "ct.convert(exported_program)": (peer_model, inputs)}
    times = {k: [] for k in CONVERTERS}
    errors, paths = {}, {}
    for r in range(-1, rounds):   # round -1: untimed warm-up of every converter (first-call costs)
        for k, fn in CONVERTERS.items():
            if k in errors:
                continue
            path = os.path.join(workdir, f"{name}-{k}-{r}.mlpackage".replace("(", "_").replace(")", "").replace(" ", "_"))
            t0 = time.perf_counter()
            try:
                paths[k] = fn(name, *args[k], path)
            except Exception as e:  # a peer failing is a result, recorded with its reason
                errors[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
                continue
            if r >= 0:
                times[k].append(time.perf_counter() - t0)
    row = {"model": name, "seconds": {k: statistics.median(v) for k, v in times.items() if v and k not in errors},
           "errors": errors, "mil_ops": {k: dict(mil_ops(p)) for k, p in paths.items() if k not in errors}}
    row["op_counts"] = {k: sum(v.values()) for k, v in row["mil_ops"].items()}
    return row


def _stages(steps) -> dict:
    """Run `steps` ((name, fn of the previous result), ...) in order; seconds per step."""
    out, value = {}, None
    for name, fn in steps:
        t0 = time.perf_counter()
        value = fn(value)
        out[name] = time.perf_counter() - t0
    return out


# xcomp's MIL pass list before 2026-12-02, run through ct.convert's pipeline manager (the `before` row)
BEFORE_MIL_PASSES = (
    "common::const_elimination", "common::noop_elimination", "common::fuse_matmul_weight_bias",
    "common::fuse_linear_bias", "common::merge_consecutive_reshapes", "common::merge_consecutive_transposes",
    "common::fuse_transpose_matmul", "common::remove_redundant_ops", "common::dedup_op_and_var_names",
    "common::add_fp16_cast", "common::update_output_dtypes", "common::const_elimination",
    "common::cast_optimization", "common::dead_code_elimination", "common::const_deduplication",
    "common::topological_reorder", "common::dead_code_elimination")


def xcomp_stages(model, inputs, path, before=False) -> dict:
    """xcomp's stages as `xcomp.export` runs them; `before`: the capture always decomposed and the
    MIL passes inside ct.convert (`BEFORE_MIL_PASSES`), as xcomp did before."""
    import gc
    import torch
    from xcomp.api import optimize
    from xcomp.backends import get_target
    from xcomp.backends.coreml.target import coremltools
    from xcomp.frontends.torch_export import _needs_decompositions, from_exported
    target = get_target("coreml")

    def mil_convert(built):
        from xcomp.backends.coreml.target import mil_to_model, resolve_options
        ct = coremltools()
        if not before:
            return mil_to_model(ct, built[0], built[1], resolve_options(ct, {}))
        gc.freeze()
        try:
            return ct.convert(built[0], convert_to="mlprogram", pass_pipeline=ct.PassPipeline(list(BEFORE_MIL_PASSES), "x"),
                              **resolve_options(ct, {}))
        finally:
            gc.unfreeze()

    def build(program):
        from xcomp.backends.coreml.build import build_mil
        return build_mil(program, coremltools().target.iOS16, float16=not before)
    return _stages([
        ("torch.export", lambda _: torch.export.export(model, tuple(inputs), strict=False)),
        ("run_decompositions", lambda ep: ep.run_decompositions() if before or _needs_decompositions(ep) else ep),
        ("FX to IR", lambda ep: from_exported(ep, decompose=False).program),
        ("xcomp passes", lambda p: optimize(p, target.name)[0]),
        ("MIL build", build),
        ("MIL passes + ct.convert", mil_convert),
        ("save", lambda m: m.save(path))])


def peer_stages(kind, model, inputs, path) -> dict:
    import coremltools as ct
    import torch
    if kind == "ct.convert(trace)":
        return _stages([("torch.jit.trace", lambda _: torch.jit.trace(model, inputs)),
                        ("ct.convert", lambda tr: ct.convert(tr, inputs=[ct.TensorType(shape=tuple(x.shape)) for x in inputs],
                                                             convert_to="mlprogram")),
                        ("save", lambda m: m.save(path))])
    return _stages([("torch.export", lambda _: torch.export.export(model, tuple(inputs))),
                    ("run_decompositions", lambda ep: ep.run_decompositions({})),
                    ("ct.convert", lambda ep: ct.convert(ep, convert_to="mlprogram")),
                    ("save", lambda m: m.save(path))])


def breakdown(name: str, rounds: int, workdir: str) -> dict:
    model, inputs, _ = build(name)
    runs = {"xcomp": lambda p: xcomp_stages(model, inputs, p),
            "xcomp before": lambda p: xcomp_stages(model, inputs, p, before=True),
            **{k: (lambda p, k=k: peer_stages(k, model, inputs, p)) for k in PEERS}}
    got, errors = {k: [] for k in runs}, {}
    for r in range(-1, rounds):   # round -1: untimed warm-up
        for k, fn in runs.items():
            if k in errors:
                continue
            try:
                stages = fn(os.path.join(workdir, f"{name}-b{r}-{k.replace(' ', '_')}.mlpackage"))
                if r >= 0:
                    got[k].append(stages)
            except Exception as e:  # noqa: BLE001  (a peer failing is a result)
                errors[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
    row = {"model": name, "errors": errors, "stages": {}, "total": {}}
    for k, runs_k in got.items():
        if runs_k and k not in errors:
            row["stages"][k] = {s: statistics.median(run[s] for run in runs_k) for s in runs_k[0]}
            row["total"][k] = statistics.median(sum(run.values()) for run in runs_k)
    return row


def breakdown_markdown(rows: list, info: dict, rounds: int) -> str:
    out = ["# Core ML conversion: where the time goes\n",
           f"Machine: {info['cpu']} ({info['cores']} cores, shared), {info['system']}, torch {info['torch']}, "
           f"coremltools {info['coremltools']}, {info['date']}. Medians of {rounds} interleaved rounds, ms; "
           "float16, iOS16. `xcomp before`: xcomp as it was before 2026-12-02 (capture always through "
           "`run_decompositions`, MIL passes inside ct.convert's pipeline manager), same code otherwise.\n"]
    for r in rows:
        out.append(f"\n## {r['model']}\n")
        for k, st in r["stages"].items():
            ratio = "".join(f", {p} / xcomp {r['total'][p] / r['total']['xcomp']:.2f}x" for p in PEERS
                            if k == "xcomp" and p in r["total"])
            out.append(f"- {k}: total {r['total'][k] * 1e3:.0f}{ratio}; "
                       + ", ".join(f"{s} {v * 1e3:.0f}" for s, v in st.items()))
        for k, e in r["errors"].items():
            out.append(f"- {k}: fails ({e})")
    return "\n".join(out) + "\n"


def machine() -> dict:
    import coremltools as ct
    import torch
    return host(torch=torch.__version__, coremltools=ct.__version__)


def markdown(rows: list, info: dict, rounds: int) -> str:
    peers, mine = list(PEERS), [k for k in CONVERTERS if k not in PEERS]
    out = [f"# Core ML conversion: xcomp vs coremltools\n",
           f"Machine: {info['cpu']} ({info['cores']} cores, shared), {info['system']}, Python {info['python']}, "
           f"torch {info['torch']}, coremltools {info['coremltools']}, {info['date']}. Median of {rounds} "
           "interleaved rounds; module to saved `.mlpackage`, float16 precision and iOS16 for all but "
           "`xcomp iOS18` (the same with `minimum_deployment_target=\"iOS18\"`); xcomp's program cache off.\n",
           "| model | " + " | ".join(f"{k} s" for k in mine + peers) + " | "
           + " | ".join(f"{p} / xcomp" for p in peers) + " | " + " | ".join(f"ops {k}" for k in mine + peers) + " |",
           "|---|" + "---:|" * (2 * len(mine) + 3 * len(peers))]
    for r in rows:
        s, c = r["seconds"], r["op_counts"]
        cell = lambda p: f"{s[p]:.3f}" if p in s else "fails"  # noqa: E731
        ratio = lambda p: f"{s[p] / s['xcomp']:.2f}x" if p in s and "xcomp" in s else "-"  # noqa: E731
        ops = lambda p: str(c[p]) if p in c else "-"  # noqa: E731
        out.append(f"| {r['model']} | " + " | ".join(cell(k) for k in mine + peers) + " | "
                   + " | ".join(ratio(p) for p in peers) + " | " + " | ".join(ops(k) for k in mine + peers) + " |")
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
    p.add_argument("--breakdown", action="store_true", help="time the stages of each path instead")
    a = p.parse_args(argv)
    if a.breakdown:
        return main_breakdown(a)
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


def main_breakdown(a) -> int:
    import logging
    logging.disable(logging.WARNING)
    import coremltools  # noqa: F401
    import xcomp  # noqa: F401
    models = [m for m in a.models if m in ("mlp", "cnn", "encoder_layer", "gpt_block", "encoder_4_layers")]
    workdir = tempfile.mkdtemp(prefix="coreml_breakdown_")
    try:
        build("mlp")
        rows = []
        for name in models:
            rows.append(breakdown(name, a.rounds, workdir))
            print(json.dumps({"model": name, "total": rows[-1]["total"]}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info, out = machine(), a.out + "_breakdown"
    with open(out + ".json", "w") as f:
        json.dump({"machine": info, "rounds": a.rounds, "rows": rows}, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(breakdown_markdown(rows, info, a.rounds))
    print(breakdown_markdown(rows, info, a.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
