"""Export events as GPU builds report them, for primitives this CPU build never reports: the fast
primitives (its CPU fallbacks report their parts instead) and shapeless-only or identity primitives.
Each case pairs the constructed events with the eager MLX call they stand for."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mlx.core as mx
import numpy as np


def events(name: str, inputs: list, arguments: list, out_shape, out_dtype) -> list[dict]:
    """The callback events of a function of `inputs` made of one primitive `name`."""
    names = [chr(ord("A") + i) for i in range(len(inputs))]
    sig = [(n, tuple(a.shape), a.dtype) for n, a in zip(names, inputs)]
    out = [("Z", tuple(out_shape), out_dtype)]
    return [{"type": "inputs", "inputs": sig}, {"type": "keyword_inputs", "keywords": []},
            {"type": "outputs", "outputs": out}, {"type": "constants", "constants": []},
            {"type": "primitive", "name": name, "inputs": sig, "outputs": out, "arguments": arguments}]


@dataclass
class FastCase:
    name: str
    primitive: str
    make: Callable           # rng -> list of input arrays
    arguments: list
    eager: Callable          # the MLX call the primitive stands for
    out: Callable | None = None  # inputs -> (shape, dtype); default: the eager result's

    def args(self):
        return self.make(np.random.default_rng(0))

    def events(self, args):
        shape, dtype = self.out(args) if self.out else (lambda r: (r.shape, r.dtype))(self.eager(*args))
        return events(self.primitive, args, self.arguments, shape, dtype)


def normal(rng, *shape, dtype=mx.float32):
    return mx.array(rng.standard_normal(shape).astype(np.float32)).astype(dtype)


def _rope(dims, traditional, base, scale, **kw):
    return lambda x, offset, *freqs: mx.fast.rope(x, dims, traditional=traditional, base=base, scale=scale,
                                                  offset=offset, freqs=freqs[0] if freqs else None)


FAST_CASES = [
    FastCase("RMSNorm", "RMSNorm", lambda r: [normal(r, 2, 5, 8), normal(r, 8)], [1e-5],
             lambda x, w: mx.fast.rms_norm(x, w, 1e-5)),
    FastCase("RMSNorm no weight", "RMSNorm", lambda r: [normal(r, 3, 8), mx.array(1.0)], [1e-6],
             lambda x, w: mx.fast.rms_norm(x, None, 1e-6)),
    FastCase("RMSNorm bf16", "RMSNorm", lambda r: [normal(r, 4, 16, dtype=mx.bfloat16),
                                                  normal(r, 16, dtype=mx.bfloat16)], [1e-5],
             lambda x, w: mx.fast.rms_norm(x, w, 1e-5)),
    FastCase("LayerNorm", "LayerNorm", lambda r: [normal(r, 2, 5, 8), normal(r, 8), normal(r, 8)], [1e-5],
             lambda x, w, b: mx.fast.layer_norm(x, w, b, 1e-5)),
    FastCase("LayerNorm no affine", "LayerNorm", lambda r: [normal(r, 3, 8), mx.array(1.0), mx.array(0.0)],
             [1e-5], lambda x, w, b: mx.fast.layer_norm(x, None, None, 1e-5)),
    FastCase("RoPE", "RoPE", lambda r: [normal(r, 1, 4, 6, 16), mx.array(3)], [16, False, 10000.0, 1.0, True],
             _rope(16, False, 10000.0, 1.0)),
    FastCase("RoPE traditional partial", "RoPE", lambda r: [normal(r, 2, 2, 5, 16), mx.array(0)],
             [8, True, 500.0, 0.5, True], _rope(8, True, 500.0, 0.5)),
    FastCase("RoPE 3-d freqs", "RoPE", lambda r: [normal(r, 2, 5, 8), mx.array(1),
                                                  mx.array(np.linspace(1, 40, 4).astype(np.float32))],
             [8, False, 10000.0, 1.0, True], _rope(8, False, None, 1.0)),
    FastCase("RoPE per-batch offset", "RoPE", lambda r: [normal(r, 2, 3, 4, 8), mx.array([0, 5])],
             [8, False, 10000.0, 2.0, True], _rope(8, False, 10000.0, 2.0)),
    FastCase("RoPE inverse (forward=False)", "RoPE", lambda r: [normal(r, 1, 2, 5, 16), mx.array(2)],
             [16, True, 10000.0, 1.5, False], _rope(16, True, 10000.0, -1.5)),  # the angle negated
    FastCase("SDPA gqa", "ScaledDotProductAttention",
             lambda r: [normal(r, 1, 4, 6, 8), normal(r, 1, 2, 6, 8), normal(r, 1, 2, 6, 8)],
             [0.35, False, False, False, False],
             lambda q, k, v: mx.fast.scaled_dot_product_attention(q, k, v, scale=0.35)),
    FastCase("SDPA causal offset", "ScaledDotProductAttention",
             lambda r: [normal(r, 2, 2, 3, 8), normal(r, 2, 2, 7, 8), normal(r, 2, 2, 7, 8)],
             [0.5, True, False, False, False],
             lambda q, k, v: mx.fast.scaled_dot_product_attention(q, k, v, scale=0.5, mask="causal")),
    FastCase("SDPA additive mask", "ScaledDotProductAttention",
             lambda r: [normal(r, 1, 2, 4, 8), normal(r, 1, 2, 4, 8), normal(r, 1, 2, 4, 8), normal(r, 1, 2, 4, 4)],
             [0.3, False, False, False, False],
             lambda q, k, v, m: mx.fast.scaled_dot_product_attention(q, k, v, scale=0.3, mask=m)),
    FastCase("BroadcastAxes", "BroadcastAxes", lambda r: [normal(r, 3, 1), normal(r, 3, 4)], [[]],
             lambda a, b: mx.broadcast_to(a, (3, 4))),
    FastCase("NumberOfElements", "NumberOfElements", lambda r: [normal(r, 3, 4)], [[0, 1], True, mx.float32],
             lambda a: mx.array(1 / 12, dtype=mx.float32)),
    FastCase("Conjugate", "Conjugate", lambda r: [normal(r, 3, 4)], [], lambda a: a),
    FastCase("Copy", "Copy", lambda r: [normal(r, 3, 4)], [], lambda a: a),
    FastCase("StopGradient", "StopGradient", lambda r: [normal(r, 3, 4)], [], lambda a: a),
    FastCase("Real", "Real", lambda r: [normal(r, 3, 4)], [], lambda a: a),
    # MLX 0.32 names it CumLogAddExp but registers CumLogaddexp, so it cannot export it
    FastCase("Scan logaddexp", "Scan", lambda r: [normal(r, 3, 6)], [4, 1, False, True],
             lambda a: mx.logcumsumexp(a, axis=1)),
    FastCase("Scan logaddexp reverse exclusive", "Scan", lambda r: [normal(r, 5, 3)], [4, 0, True, False],
             lambda a: mx.logcumsumexp(a, axis=0, reverse=True, inclusive=False)),
    FastCase("BitwiseInvert", "BitwiseInvert", lambda r: [mx.array(r.integers(-9, 9, (3, 4)).astype(np.int32))], [],
             mx.bitwise_invert),  # MLX 0.32 cannot export it ("Unable to get state")
]
