"""The `mlx-source` target: export writes model.py + weights.safetensors; build imports them."""
from __future__ import annotations

import importlib.util
import os
import tempfile

from xcomp.backends import Target
from xcomp.backends.mlx.target import mlx_unavailable
from xcomp.passes.manager import DEFAULT_PIPELINE
from xcomp.serialize import write_safetensors


def write_module(program, path: str, origin: str = "") -> str:
    """Write `path`/model.py and `path`/weights.safetensors for `program`; returns `path`."""
    from xcomp.backends.mlx_source.emit import emit_module
    module = emit_module(program, origin or program.metadata.get("xcomp.source", {}).get("converted_from", ""))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "model.py"), "w") as f:
        f.write(module.source)
    write_safetensors(module.weights(), os.path.join(path, "weights.safetensors"),
                      {"format": "mlx", "generator": "xcomp mlx-source"})
    return path


def import_module(path: str, name: str = "xcomp_emitted_model"):
    """Import `path`/model.py under a private module name."""
    spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(path))}", os.path.join(path, "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MLXSourceTarget(Target):
    name = "mlx-source"
    array_kind = "mlx"
    pipeline = DEFAULT_PIPELINE

    def unavailable_reason(self):
        return mlx_unavailable()

    def supported(self) -> set[str]:
        from xcomp.backends.mlx_source.emit import mlx_source_supported
        return mlx_source_supported()

    def export(self, program, path: str) -> str:
        return write_module(program, path)

    def load_artifact(self, path: str):
        """A runner over the module exported to `path` (model.py and its weights)."""
        model = import_module(path).load()

        def run(inputs):
            out = model(*inputs)
            return list(out) if isinstance(out, tuple) else [out]
        return run

    def build(self, program):
        """Emit the module into a temporary directory, import it and return its model's runner."""
        path = tempfile.mkdtemp(prefix="xcomp_mlx_source_")
        write_module(program, path)
        return self.load_artifact(path)
