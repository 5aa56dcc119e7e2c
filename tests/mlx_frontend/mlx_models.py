"""Models written with `mlx.nn`, and mlx-lm's own Llama and Qwen2 architectures built from small
configs with random weights (no hub downloads): the model set of the MLX frontend's tests and figures."""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


class MLP(nn.Module):
    def __init__(self, d=16, hidden=32):
        super().__init__()
        self.fc1, self.fc2, self.norm = nn.Linear(d, hidden), nn.Linear(hidden, d), nn.LayerNorm(d)

    def __call__(self, x):
        return self.norm(x + self.fc2(nn.gelu(self.fc1(x))))


class CNN(nn.Module):
    """Conv/batch-norm/ReLU stem, a residual block, max pooling, global average and a linear head
    (channels-last, as MLX convolutions are)."""

    def __init__(self, c=8, classes=5):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm(c)
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.pool, self.head = nn.MaxPool2d(2, 2), nn.Linear(c, classes)

    def __call__(self, x):
        x = nn.relu(self.bn(self.stem(x)))
        x = nn.relu(x + self.conv2(nn.relu(self.conv1(x))))
        x = self.pool(x)
        return self.head(mx.mean(x, axis=(1, 2)))


def llama_args(**kw):
    from mlx_lm.models import llama
    base = dict(model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=96,
                rope_theta=10000.0, tie_word_embeddings=False)
    base.update(kw)
    return llama.ModelArgs(**base)


def llama_model(**kw):
    from mlx_lm.models import llama
    return llama.Model(llama_args(**kw))


def qwen2_model():
    from mlx_lm.models import qwen2
    return qwen2.Model(qwen2.ModelArgs(model_type="qwen2", hidden_size=64, num_hidden_layers=2,
                                       intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                                       rms_norm_eps=1e-6, vocab_size=96, rope_theta=1e6,
                                       tie_word_embeddings=True))


class LlamaBlock(nn.Module):
    """One mlx-lm Llama decoder layer (RMSNorm, RoPE, grouped-query attention, SwiGLU) under a causal
    mask: the block of the figures."""

    def __init__(self, **kw):
        super().__init__()
        from mlx_lm.models import llama
        self.layer = llama.TransformerBlock(llama_args(**kw))

    def __call__(self, x):
        return self.layer(x, mask="causal")


def model_set():
    """name -> (model, example inputs); eval mode, parameters evaluated."""
    mx.random.seed(0)
    cnn = CNN()
    cnn.eval()
    tokens = mx.array([[3, 17, 42, 5, 88, 1, 9, 60]], dtype=mx.int32)
    models = {
        "mlp": (MLP(), [mx.random.normal((4, 16))]),
        "cnn": (cnn, [mx.random.normal((2, 8, 8, 3))]),
        "llama": (llama_model(), [tokens]),
        "qwen2": (qwen2_model(), [tokens]),
        "llama_block": (LlamaBlock(), [mx.random.normal((2, 16, 64))]),
    }
    for m, _ in models.values():
        mx.eval(m.parameters())
    return models
