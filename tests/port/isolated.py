"""Running an emitted MLX module in a fresh interpreter that can import MLX but not xcomp, torch or
numpy: its sys.path is the standard library, a directory holding links to the `mlx` package alone,
and the module's own directory."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

from xcomp.serialize import read_safetensors, write_safetensors

_CHILD = r'''
import sys
sys.path = [p for p in sys.path if p and "site-packages" not in p and "dist-packages" not in p]
sys.path += [{iso!r}, {model!r}]
for banned in ("xcomp", "torch", "numpy"):
    try:
        __import__(banned)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{{banned}} is importable in the isolated interpreter")
import mlx.core as mx
import model
inputs = mx.load({inputs!r}) if {has_inputs!r} else {{}}
args = [inputs[f"in{{i}}"] if f"in{{i}}" in inputs else v for i, v in enumerate({scalars!r})]
out = model.load()(*args)
leaves = []
def walk(o):
    if isinstance(o, (list, tuple)):
        for x in o:
            walk(x)
    elif isinstance(o, mx.array):
        leaves.append(o)
    else:
        leaves.append(mx.array(o))
walk(out)
mx.save_safetensors({outputs!r}, {{f"out{{i}}": x for i, x in enumerate(leaves)}})
'''


def _mlx_links(root: str) -> str:
    """A directory with links to the installed `mlx` package and its shared libraries only."""
    import mlx
    site = os.path.dirname(os.path.dirname(os.path.abspath(mlx.__file__ or mlx.__path__[0] + "/x")))
    iso = os.path.join(root, "iso")
    os.makedirs(iso, exist_ok=True)
    for name in os.listdir(site):
        if name == "mlx" or (name.startswith("mlx") and name.endswith(".libs")):
            os.symlink(os.path.join(site, name), os.path.join(iso, name))
    return iso


def run_isolated(model_dir: str, args: list) -> list[np.ndarray]:
    """Call `load()(*args)` of `model_dir`/model.py in a fresh interpreter with MLX alone; numpy
    arrays in `args` are passed as MLX arrays, other values as they are. Returns the output leaves."""
    with tempfile.TemporaryDirectory() as root:
        iso = _mlx_links(root)
        tensors = {f"in{i}": np.ascontiguousarray(a) for i, a in enumerate(args) if isinstance(a, np.ndarray)}
        inputs, outputs = os.path.join(root, "inputs.safetensors"), os.path.join(root, "outputs.safetensors")
        if tensors:
            write_safetensors(tensors, inputs)
        scalars = [None if isinstance(a, np.ndarray) else a for a in args]
        code = _CHILD.format(iso=iso, model=os.path.abspath(model_dir), inputs=inputs, has_inputs=bool(tensors),
                             scalars=scalars, outputs=outputs)
        proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True,
                              timeout=300, env={"PATH": os.environ.get("PATH", "")})
        if proc.returncode != 0:
            raise AssertionError(f"isolated run failed:\n{proc.stderr[-3000:]}")
        got = read_safetensors(outputs)
        return [got[f"out{i}"] for i in range(len(got))]
