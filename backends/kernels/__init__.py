"""Generated GPU kernels run through MLX's custom kernel API: targets `metal` and `cuda`.

Every fused group becomes one kernel (`codegen.plan`), written from Jinja2 skeletons in
templates/metal and templates/cuda with per-op expressions from `exprs`; `runtime` builds them with
`mx.fast.metal_kernel` / `mx.fast.cuda_kernel`, cached by source. A group with symbolic dims is
generated once for every size: its sizes come from a small `sizes` input and its grid is computed
per call (`sizes`). `source(program, dialect)` returns every kernel's source, also where the GPU is
missing.
"""
from xcomp.backends.kernels.codegen import KernelPlan, KernelSpec, plan  # noqa: F401
