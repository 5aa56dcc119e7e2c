"""The `coreml` target: the optimized IR lowered to a Core ML ML program (MIL) and saved as `.mlpackage`.

- `table.py`: the lowering table (op name -> rule over MIL Vars), filled by the family modules
  (`elementwise`, `shape`, `reduction`, `nn`, `indexing`, `factory`) with `@lowers("add")`;
- `lowering.py`: `CoreMLLowering`, the lowering driver's Core ML user (region rules: `xc.if` ->
  `mb.cond`, `xc.loop` -> `mb.while_loop`, fused groups inlined, calls inlined);
- `target.py`: `CoreMLTarget` (export, and predictions through `MLModel.predict` on macOS);
- `evaluate.py` and `mil_eval.py`: the package evaluator that checks saved packages on any OS.

coremltools is imported only when this target is used.
"""
