"""The five models coremltools 9.0's own converter fails on (torch 2.13, numpy 2.4), as
(name, module, example inputs) builders, shared by the tests and benchmarks/coreml_convert.py."""
from __future__ import annotations


def bert():
    """A HF BERT encoder from a small config with random weights (input ids and attention mask)."""
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32)
    model = BertModel(cfg, add_pooling_layer=False).eval()

    class Bert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, ids, mask):
            return self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    ids = torch.randint(0, 100, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, 6:] = 0
    return Bert().eval(), (ids, mask)


def gpt_block():
    from xcomp.zoo import gpt_block as build
    return build()


def encoder_layer(layers: int = 1):
    """nn.TransformerEncoderLayer (or an nn.TransformerEncoder of `layers` of them)."""
    import torch
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True).eval()
    model = layer if layers == 1 else torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()
    return model, (torch.randn(2, 8, 32),)


class _Loop:
    pass


def scripted_loop():
    """A TorchScript module whose loop count is an int argument."""
    import torch

    class Loop(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(16, 16)

        def forward(self, x, n: int):
            for _ in range(n):
                x = torch.tanh(self.fc(x)) + x
            return x
    torch.manual_seed(0)
    return torch.jit.script(Loop().eval()), (torch.randn(4, 16), 3)


def alias_where():
    """An ExportedProgram holding aten.alias and aten.where.ScalarOther (what torch.export keeps)."""
    import torch

    class AliasWhere(torch.nn.Module):
        def forward(self, x):
            y = torch.ops.aten.alias(x)
            return torch.where(y > 0, y, 0.5) * 2

    model = AliasWhere().eval()
    inputs = (torch.randn(4, 8),)
    return model, inputs, torch.export.export(model, inputs)


CT_FAILS = ("bert", "gpt_block", "encoder_layer", "scripted_loop", "alias_where")
