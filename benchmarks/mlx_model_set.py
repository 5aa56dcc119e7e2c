"""mlx-lm architectures built from small configs with random weights (no hub downloads): the model
set over which benchmarks/mlx_frontend.py counts the MLX primitives real models use.

Each architecture's `ModelArgs` is filled from one shared small config (fields it does not have are
dropped) plus its own overrides; an architecture that does not build is reported with its error.
"""
from __future__ import annotations

import dataclasses
import importlib

BASE = dict(
    hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
    rms_norm_eps=1e-5, layer_norm_eps=1e-5, norm_eps=1e-5, vocab_size=96, head_dim=16, rope_theta=10000.0,
    max_position_embeddings=128, tie_word_embeddings=False, partial_rotary_factor=0.5,
    n_embd=64, n_head=4, n_layer=2, n_positions=128, n_ctx=128, layer_norm_epsilon=1e-5, n_inner=128,
    num_local_experts=4, num_experts_per_tok=2, num_experts=4, moe_intermediate_size=32,
    shared_expert_intermediate_size=64, decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True,
    sliding_window=64, query_pre_attn_scalar=16, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
    rotary_dim=8, rotary_pct=0.5, use_qk_norm=False, use_parallel_residual=True, hidden_act="gelu",
    kv_channels=16, original_max_position_embeddings=128, rope_scaling=None, bias=False,
    num_heads=4, model_dim=64, sliding_window_pattern=2, sliding_window_size=64,
    use_qkv_bias=False, rotary_emb_base=10000.0, attention_bias=False, mlp_bias=False, use_bias=False,
    post_norm=False, qk_norm=False,
)
ARCHS = {
    "llama": {}, "qwen2": {}, "qwen3": {}, "gemma": {}, "gemma2": {}, "phi": {},
    "phi3": {}, "starcoder2": {}, "stablelm": {}, "cohere": {"logit_scale": 0.5}, "olmo2": {},
    "internlm2": {"bias": False}, "gpt2": {}, "gpt_neox": {}, "gpt_bigcode": {}, "mixtral": {},
    "qwen2_moe": {}, "qwen3_moe": {}, "olmoe": {}, "granite": {"embedding_multiplier": 1.0,
    "attention_multiplier": 0.25, "residual_multiplier": 1.0, "logits_scaling": 1.0}, "helium": {},
    "exaone": {"num_layers": 2, "layer_norm_epsilon": 1e-5, "activation_function": "silu"},
    "minicpm": {"dim_model_base": 64, "scale_depth": 1.0, "scale_emb": 1.0}, "smollm3": {},
    "glm4": {}, "nemotron": {"norm_eps": 1e-5, "hidden_act": "relu2"}, "seed_oss": {}, "ernie4_5": {},
    "hunyuan_v1_dense": {}, "apertus": {}, "gemma3_text": {}, "phimoe": {}, "nanochat": {},
    "lfm2": {"conv_bias": False, "conv_L_cache": 3, "block_dim": 64, "block_ff_dim": 128,
             "block_multiple_of": 16, "block_ffn_dim_multiplier": 1.0, "block_auto_adjust_ff_dim": False,
             "full_attn_idxs": [1], "layer_types": ["conv", "full_attention"]},
    "mamba": {"d_model": 64, "d_inner": 128, "d_conv": 4, "d_state": 8, "dt_rank": 4, "conv_bias": True,
              "use_conv_bias": True, "use_bias": False, "time_step_rank": 4, "state_size": 8,
              "expand": 2, "conv_kernel": 4},
}


# Architectures also captured 4-bit quantized (nn.quantize), as most MLX checkpoints ship.
QUANTIZED = ("llama", "qwen3", "gemma2", "mixtral", "qwen2_moe")


def build(name: str, bits: int | None = None):
    """(model, None) or (None, why it did not build); `bits`: quantize with nn.quantize first."""
    import mlx.core as mx
    import mlx.nn as nn
    try:
        module = importlib.import_module(f"mlx_lm.models.{name}")
        fields = {f.name for f in dataclasses.fields(module.ModelArgs)}
        config = {k: v for k, v in {**BASE, **(ARCHS.get(name) or {})}.items() if k in fields}
        if "model_type" in fields:
            config["model_type"] = name
        model = module.Model(module.ModelArgs(**config))
        if bits:
            nn.quantize(model, group_size=32, bits=bits)
        mx.eval(model.parameters())
        return model, None
    except Exception as e:  # noqa: BLE001 - reported in the figures as "did not build"
        return None, f"{type(e).__name__}: {str(e)[:120]}"


# Llama blocks of the figures: name -> (hidden, heads, kv heads, FFN, input shape)
BLOCK_SIZES = {
    "small": (64, 4, 2, 172, (1, 16, 64)),
    "medium": (256, 8, 2, 688, (2, 64, 256)),
    "large": (2048, 16, 4, 5632, (4, 512, 2048)),
}


def llama_block(size: str):
    """(block, config, input shape): one mlx-lm Llama decoder layer (RMSNorm, RoPE, grouped-query
    attention, SwiGLU) under a causal mask, as an `mlx.nn.Module` whose parameters are evaluated."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.models import llama
    hidden, heads, kv_heads, ffn, shape = BLOCK_SIZES[size]
    config = dict(model_type="llama", hidden_size=hidden, num_hidden_layers=1, intermediate_size=ffn,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, rms_norm_eps=1e-5,
                  vocab_size=128, rope_theta=10000.0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = llama.TransformerBlock(llama.ModelArgs(**config))

        def __call__(self, x):
            return self.layer(x, mask="causal")

    mx.random.seed(0)
    block = Block()
    mx.eval(block.parameters())
    return block, config, shape
