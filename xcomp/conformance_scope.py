"""The scope of the OpInfo conformance harness (xcomp.conformance): which OpInfos and samples are
tried, and why the others are skipped."""
from __future__ import annotations

# OpInfos skipped outright, with the reason (everything else is tried).
SKIP_OPS: dict[str, str] = {
    "item": "returns a Python number, not a tensor (graph break in torch.export)",
    "equal": "returns a Python bool (data-dependent control flow)",
    "allclose": "returns a Python bool (data-dependent control flow)",
    "broadcast_shapes": "works on shapes, not tensors",
    "hash_tensor": "hashes bit patterns (no numerical meaning)",
}
# Random ops draw from torch's generator (op_db wraps them to reseed, so eager looks deterministic);
# `empty*` ops return uninitialized memory. Neither has values to compare.
RANDOM_OPS = {"bernoulli", "cauchy", "exponential", "geometric", "log_normal", "multinomial", "normal",
              "uniform", "rand_like", "randint", "randint_like", "randn", "randn_like",
              "nn.functional.dropout", "nn.functional.dropout2d", "nn.functional.dropout3d",
              "nn.functional.alpha_dropout", "nn.functional.feature_alpha_dropout", "nn.functional.rrelu",
              "nn.functional.fractional_max_pool2d", "nn.functional.fractional_max_pool3d",
              "svd_lowrank", "pca_lowrank", "native_dropout_backward"}
UNINITIALIZED_OPS = {"empty", "empty_like", "empty_permuted", "empty_strided", "new_empty", "new_empty_strided"}
# Name fragments of OpInfos that are not in the scope of float32 conformance.
SKIP_PREFIXES: dict[str, str] = {
    "fft.": "complex results",
    "sparse.": "sparse tensors",
    "jiterator_": "CUDA-only jiterator ops",
    "torch._scaled_mm": "float8 matmul (CUDA only)",
    "torch.ops.aten._efficient_attention": "CUDA-only attention kernels",
    "torch.ops.aten._flash_attention": "CUDA-only attention kernels",
}


def load_op_db():
    """PyTorch's OpInfo list (imports torch and its internal test utilities)."""
    from torch.testing._internal.common_methods_invocations import op_db
    return op_db


def full_name(opinfo) -> str:
    return opinfo.name + (f".{opinfo.variant_test_name}" if opinfo.variant_test_name else "")


def skip_reason(opinfo) -> str | None:
    """Why an OpInfo is outside float32 functional conformance, or None."""
    import torch
    name = opinfo.name
    if name in SKIP_OPS:
        return SKIP_OPS[name]
    for prefix, why in SKIP_PREFIXES.items():
        if name.startswith(prefix):
            return why
    if name in RANDOM_OPS:
        return "random op (no deterministic values to compare)"
    if name in UNINITIALIZED_OPS:
        return "returns uninitialized memory"
    if name.endswith("_") and not name.endswith("__"):
        return "in-place op (xcomp compiles functional programs; in-place variants map to their functional op)"
    if torch.float32 not in opinfo.supported_dtypes("cpu"):
        return "no float32 support on CPU"
    return None


def float32_samples(opinfo, limit: int | None = None) -> list:
    """The OpInfo's float32 CPU sample inputs, without autograd (xcomp compiles inference)."""
    import torch
    out = []
    gen = opinfo.sample_inputs("cpu", torch.float32, requires_grad=False)
    try:
        for s in gen:
            out.append(s)
            if limit is not None and len(out) >= limit:
                break
    finally:
        getattr(gen, "close", lambda: None)()  # finish its no_grad context now, not at GC time
    return out


def aten_candidates(opinfo) -> set[str]:
    """aten op names an OpInfo most likely lowers to (for a quick static coverage check)."""
    names = {opinfo.name.split(".")[-1], opinfo.aten_name or "", getattr(opinfo, "decomp_aten_name", None) or ""}
    for a in getattr(opinfo, "aliases", ()) or ():
        names.add(getattr(a, "name", str(a)).split(".")[-1])
    return {n for n in names if n}


def in_table(opinfo) -> bool:
    """True when the aten table has a converter for an op named like this OpInfo."""
    from xcomp.frontends.aten import ATEN
    packets = {k.split(".")[1] for k in ATEN}
    return bool(aten_candidates(opinfo) & packets)
