"""The `mlx` target: every op lowered to MLX ops through one table (`table.MLX_OPS`)."""
