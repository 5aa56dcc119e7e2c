"""Per-call time of a scripted greedy decoding loop: xcomp targets against the TorchScript interpreter.

    python benchmarks/torchscript_loop.py [--steps 32] [--dim 128] [--vocab 512] [--repeat 30]

The model is a small recurrent language model scripted with `torch.jit.script`: per step an
embedding lookup, a tanh recurrence, the vocabulary projection, argmax, `tokens.append(int(idx))`
and an early exit on the end token (never produced here, so every call runs `--steps` iterations).
Peers: the TorchScript interpreter, and the same loop written by hand in MLX (eager, and with the
step under mx.compile), which shows what MLX itself costs per step on this device.
xcomp compiles it once (one `xc.loop`, not unrolled) and runs it on `mlx` and every other target
that runs here and compiles the program (`cpp` when present). Every column's token list is checked
against TorchScript's before timing. Columns are timed in interleaved rounds (every column in turn,
after warm-up); the figure is the median seconds per call, ratios are TorchScript time / xcomp time.
Writes benchmarks/results/torchscript_loop.{json,md} with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models_cpu import interleaved, machine  # noqa: E402


def decoder(vocab: int, dim: int):
    import torch
    from torch import Tensor, nn

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.wx, self.wh = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False)
            self.out = nn.Linear(dim, vocab)

        def forward(self, start: Tensor, h: Tensor, eos: int, max_len: int) -> List[int]:
            tokens: List[int] = []
            idx = start
            for _ in range(max_len):
                h = torch.tanh(self.wx(self.embed(idx)) + self.wh(h))
                idx = self.out(h).argmax(-1)
                t = int(idx)
                tokens.append(t)
                if t == eos:
                    break
            return tokens

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(Decoder().eval())


def mlx_loops(module, start, h0, steps: int):
    """The same loop written by hand in MLX (a peer for the MLX columns): eager and with the step
    under mx.compile. Both read the token on the host each step, as the loop needs it."""
    import mlx.core as mx
    sd = {k: mx.array(v.detach().numpy()) for k, v in module.state_dict().items()}

    def step(idx, h):
        h = mx.tanh(sd["embed.weight"][idx] @ sd["wx.weight"].T + sd["wx.bias"] + h @ sd["wh.weight"].T)
        return mx.argmax(h @ sd["out.weight"].T + sd["out.bias"], axis=1), h

    def run(fn):
        def loop():
            idx, h, tokens = mx.array(start.numpy()), mx.array(h0.numpy()), []
            for _ in range(steps):
                idx, h = fn(idx, h)
                tokens.append(int(idx.item()))
            return tokens
        return loop
    return run(step), run(mx.compile(step))


def main(argv=None) -> dict:
    import torch

    import xcomp
    from xcomp.backends import TARGETS, get_target
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--targets", nargs="*", default=["mlx", "cpp", "reference"])
    a = p.parse_args(argv)
    module = decoder(a.vocab, a.dim)
    args = (torch.tensor([1]), torch.zeros(1, a.dim), -1, a.steps)
    with torch.no_grad():
        want = module(*args)
    cols = {"torchscript": lambda: module(*args)}
    notes = {}
    eager, compiled = mlx_loops(module, args[0], args[1], a.steps)
    if eager() == want == compiled():
        cols["mlx_by_hand_eager"], cols["mlx_by_hand_compiled_step"] = eager, compiled
    for t in a.targets:
        if t not in TARGETS or get_target(t).unavailable_reason():
            notes[t] = "not available here"
            continue
        try:
            fast = xcomp.compile(module, target=t)
            got = fast(*args)
        except xcomp.XcompError as e:
            notes[t] = f"cannot compile: {str(e).splitlines()[0]}"
            continue
        if got != want:
            notes[t] = "token list differs from TorchScript's"
            continue
        cols[f"xcomp_{t}"] = (lambda f: lambda: f(*args))(fast)
    with torch.no_grad():
        med = interleaved(cols, a.repeat)
    rows = [{"column": k, "ms_per_call": v * 1e3, "torchscript_over_this": med["torchscript"] / v}
            for k, v in med.items()]
    result = {"machine": machine(), "config": vars(a), "tokens": len(want), "rows": rows, "notes": notes}
    out = os.path.join(HERE, "results", "torchscript_loop")
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    m = result["machine"]
    lines = [f"# Scripted greedy decoding loop ({a.steps} steps, dim {a.dim}, vocab {a.vocab})", "",
             f"{m['cpu']}, {m['cores']} cores, {m['system']}; torch {m['torch']}, mlx {m['mlx']} "
             f"({m['mlx_device']}); {m['date']}. Median of {a.repeat} calls per column in interleaved rounds.",
             "", "| column | ms per call | TorchScript time / this |", "|---|---:|---:|"]
    lines += [f"| {r['column']} | {r['ms_per_call']:.3f} | {r['torchscript_over_this']:.2f}x |" for r in rows]
    lines += [f"\n{k}: {v}" for k, v in notes.items()]
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
