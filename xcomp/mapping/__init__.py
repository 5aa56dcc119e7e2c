"""The TorchScript/ATen-to-MLX mapping table, generated from xcomp's registries (never by hand).

One row per ATen operator that torch's JIT registry knows (`torch._C._jit_get_all_schemas()`,
`aten::` only), with its overloads listed. For each overload:

- how xcomp takes it: a converter of the aten table (`xcomp.frontends.aten.ATEN`), the functional
  op's converter for an in-place `foo_`, a TorchScript node rule (`xcomp.frontends.torchscript`),
  or nothing (`out=` overloads are not taken: xcomp compiles functional programs);
- the IR ops it becomes, as recorded by the last conformance run (`docs/conformance.json`, written
  by `python -m xcomp.conformance --json`: every converter call records the IR ops it built);
- the MLX functions implementing those IR ops on the `mlx` target, read from the MLX lowering
  table's code (`xcomp.backends.mlx.table.mlx_functions`), "decomposed" where the decompose pass
  rewrites the op first;
- its status per target: `pass`/`fail`/`unsupported` where the conformance run covered the target
  (pass: at least one OpInfo whose capture converted this overload passed), else `lowered` when the
  target lowers (or decomposes) every IR op it becomes, `missing` when it lacks one, `untested`
  when no conformance sample reached the overload.

MLX primitives (the MLX frontend's table, `xcomp.frontends.mlx.table`) get a second table. Regenerate
with `xcomp ops > docs/mapping.md` (tests/port checks it is current).
"""
from xcomp.mapping.build import CONFORMANCE_JSON, Mapping, Overload, Row, build  # noqa: F401
from xcomp.mapping.render import render, select  # noqa: F401
