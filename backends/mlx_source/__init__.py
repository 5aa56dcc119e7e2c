"""The `mlx-source` target: the optimized program written as a readable MLX Python module.

`xcomp.export(model, inputs, target="mlx-source", path="out/")` writes `out/model.py`
(`class Model(mlx.nn.Module)`, `def load(path=None) -> Model`) and `out/weights.safetensors`; the
module runs with MLX alone. Building the target (`xcomp.compile(..., target="mlx-source")`) emits
the module into a temporary directory and imports it.
"""
