"""A stand-in for backends/kernels/runtime.py's launches that runs each kernel in the C++ emulation
(emulate.py) on MLX's CPU arrays: the `metal`/`cuda` targets run end to end on a machine without
a GPU. Each kernel source is compiled once (by name, which hashes the source) and its executable
reused at every launch; `builds` counts the compilations, `launches` the runs."""
from __future__ import annotations

import os

import numpy as np

from emulate import build, execute
from xcomp.ir.types import DType


class EmulatedRuntime:
    def __init__(self, workdir: str):
        self.workdir = workdir
        self.exes: dict[str, str] = {}
        self.builds = 0
        self.launches = 0

    def _launch(self, spec, inputs: list, sizes: dict | None):
        import mlx.core as mx
        arrays = [np.array(x) for x in inputs]
        dtypes = [DType.from_numpy(a.dtype) for a in arrays]
        if spec.name not in self.exes:
            self.exes[spec.name] = build(spec, dtypes, os.path.join(self.workdir, spec.name))
            self.builds += 1
        self.launches += 1
        outs = execute(self.exes[spec.name], spec, arrays, dtypes, os.path.join(self.workdir, spec.name, "run"),
                       sizes)
        return [mx.array(o) for o in outs]

    def run_plan(self, kplan, args: list, prelude=None, sizes: dict | None = None) -> list:
        """As `runtime.run_plan`: the MLX prelude, the partials launch, the kernel."""
        anchor = prelude(args) if kplan.prelude is not None else None
        inputs = [anchor if i < 0 else args[i] for i in kplan.input_map]
        if kplan.partials is not None:
            inputs = inputs + self._launch(kplan.partials, inputs, sizes)
        return self._launch(kplan.spec, inputs, sizes)
