"""The `mlx-source` port of the zoo models: source lines emitted, and the emitted module's time
against MLX eager, xcomp's `mlx` target and a hand-written MLX equivalent where one exists.

    python benchmarks/port_mlx_source.py [--models mlp gpt_block ...] [--repeat 30]

Columns (median ms per call, interleaved rounds, see models_cpu.interleaved): `emitted` (the emitted
module, `load()(x)`), `emitted_compiled` (`mx.compile(load())`), `mlx_eager` (the captured program
run op by op with MLX), `xcomp_mlx` (xcomp's `mlx` target: passes + mx.compile), `hand` and
`hand_compiled` (MLX written by hand with mlx.nn, same weights; MLP and GPT block only). Ratios are
column time / emitted time. Writes benchmarks/results/port_mlx_source.{json,md} with the machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from models_cpu import interleaved, machine  # noqa: E402


def hand_mlp(model):
    """The zoo MLP written with mlx.nn (LayerNorm(x + fc2(gelu(fc1(x)))))."""
    import mlx.core as mx
    import mlx.nn as nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(*model.fc1.weight.shape[::-1]), nn.Linear(*model.fc2.weight.shape[::-1])
            self.norm = nn.LayerNorm(model.norm.weight.shape[0], eps=model.norm.eps)

        def __call__(self, x):
            return self.norm(x + self.fc2(nn.gelu(self.fc1(x))))
    m = MLP()
    m.load_weights([(k, mx.array(v.detach().numpy())) for k, v in model.state_dict().items()])
    return m


def hand_gpt_block(model, heads: int = 4):
    """The zoo GPT block written with mlx.nn and mx.fast attention (causal mask)."""
    import mlx.core as mx
    import mlx.nn as nn

    def gelu_tanh(x):
        return 0.5 * x * (1 + mx.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

        def __call__(self, x):
            b, t, c = x.shape
            q, k, v = mx.split(self.qkv(self.ln1(x)), 3, axis=-1)
            q, k, v = (z.reshape(b, t, heads, c // heads).transpose(0, 2, 1, 3) for z in (q, k, v))
            y = mx.fast.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(c // heads), mask="causal")
            x = x + self.proj(y.transpose(0, 2, 1, 3).reshape(b, t, c))
            return x + self.out(gelu_tanh(self.fc(self.ln2(x))))
    m = Block(model.ln1.weight.shape[0])
    m.load_weights([(k, mx.array(v.detach().numpy())) for k, v in model.state_dict().items()])
    return m


HAND = {"mlp": hand_mlp, "gpt_block": hand_gpt_block}


def source_lines(path: str) -> dict:
    text = open(os.path.join(path, "model.py")).read().splitlines()
    call = text.index(next(ln for ln in text if ln.startswith("    def __call__")))
    end = next(i for i in range(call + 1, len(text)) if text[i] and not text[i].startswith("        "))
    return {"lines_total": len(text), "lines_call": end - call - 1,
            "helpers": sum(1 for ln in text if ln.startswith("def ")) - 1}


def bench_model(name: str, repeat: int, out_dir: str) -> dict:
    import mlx.core as mx
    import torch

    import xcomp
    from xcomp.backends.mlx.target import MLXEvaluator
    from xcomp.backends.mlx_source.target import import_module
    from xcomp.zoo import MODELS

    model, inputs = MODELS[name]()
    xs = [mx.array(x.numpy()) for x in inputs]
    path = xcomp.export(model, inputs, target="mlx-source", path=os.path.join(out_dir, name))
    emitted = import_module(path).load()
    emitted_c = mx.compile(emitted)
    with torch.no_grad():
        want = model(*inputs).numpy()
    row = {"model": name, **source_lines(path)}
    row["emitted_max_error"] = float(np.max(np.abs(np.array(emitted(*xs)) - want)))
    captured = xcomp.capture(model, inputs)
    eager = MLXEvaluator(captured)
    fast = xcomp.compile(model, target="mlx")
    fast(*xs)
    cols = {"emitted": lambda: mx.eval(emitted(*xs)), "emitted_compiled": lambda: mx.eval(emitted_c(*xs)),
            "mlx_eager": lambda: mx.eval(eager.run(xs)), "xcomp_mlx": lambda: mx.eval(fast(*xs))}
    if name in HAND:
        hand = HAND[name](model)
        hand_c = mx.compile(hand)
        row["hand_max_error"] = float(np.max(np.abs(np.array(hand(*xs)) - want)))
        cols["hand"] = lambda: mx.eval(hand(*xs))
        cols["hand_compiled"] = lambda: mx.eval(hand_c(*xs))
    row.update(interleaved(cols, repeat))
    return row


COLS = ["emitted", "emitted_compiled", "mlx_eager", "xcomp_mlx", "hand", "hand_compiled"]


def to_markdown(rows: list[dict], info: dict) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores, {info['system']}; torch {info['torch']}, "
             f"MLX {info['mlx']} ({info['mlx_device']}); {info['date']}", "",
             "Source emitted by `mlx-source` (lines of model.py / of `Model.__call__`, helper functions) and "
             "median ms per call (ratio = column time / `emitted` time):", "",
             "| model | lines (call, helpers) | " + " | ".join(COLS) + " | max abs error vs torch |",
             "|---|---|" + "---|" * (len(COLS) + 1)]
    for r in rows:
        cells = [f"{r[c] * 1e3:.3f} ({r[c] / r['emitted']:.2f}x)" if c in r else "n/a" for c in COLS]
        err = f"{r['emitted_max_error']:.2g}" + (f" (hand {r['hand_max_error']:.2g})" if "hand_max_error" in r else "")
        lines.append(f"| {r['model']} | {r['lines_total']} ({r['lines_call']}, {r['helpers']}) | "
                     + " | ".join(cells) + f" | {err} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from xcomp.zoo import MODELS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=sorted(MODELS))
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_model(m, args.repeat, tmp) for m in args.models]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "port_mlx_source.json"), "w") as f:
        json.dump({"machine": info, "rows": rows}, f, indent=2)
    md = to_markdown(rows, info)
    with open(os.path.join(args.out, "port_mlx_source.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
