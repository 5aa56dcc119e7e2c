"""The package evaluator: check a saved `.mlpackage` numerically on any OS (coremltools cannot
run predictions off macOS).

The package is reloaded the way Core ML sees it (`ct.models.MLModel(path, skip_model_load=True)`,
`ct.utils.load_spec`), its MIL program rebuilt with coremltools' milproto loader (weight blobs read
back from the package), and evaluated op by op:

- ops with a coremltools `value_inference` (matmul, linear, softmax, layer_norm, gelu, reshape,
  slice_by_index, gather, concat, reduce_*, select, cast, ...) run Apple's own reference: the
  oracle is Apple's op semantics wherever coremltools has them;
- the rest (conv, conv_transpose, batch_norm, silu, pools; `mil_eval.MIL_EVAL`) run xcomp's own
  numpy semantics; `cond` and `while_loop` are run here, branches and bodies included.

Every result is checked against the op's declared shape and dtype (value_inference ignores them);
`PackageEvaluator.oracles` counts op kinds per oracle.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from typing import Sequence

import numpy as np

from xcomp.backends.coreml.target import METADATA_KEY, coremltools
from xcomp.errors import FormatError, XcompError
from xcomp.ir.types import DType


class PackageCheckError(XcompError):
    """A package op produced a value that contradicts its declared type, or cannot be evaluated."""


_NP = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32}


def load_package(path: str, shapes: dict | None = None):
    """(MIL program, IR signature or None) of a saved package, with its weights read back.

    `shapes` (input name -> shape) specializes a package with flexible inputs the way Core ML does
    at a prediction: the shapes are checked against the package's `shapeRange`/`enumeratedShapes`
    (`check_flexible`), set as the MIL inputs' types, and every op's type is inferred again for them."""
    ct = coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load
    if not os.path.isdir(path):
        raise FormatError(f"{path}: not an .mlpackage directory")
    model = ct.models.MLModel(path, skip_model_load=True)
    spec = ct.utils.load_spec(path)
    if shapes:
        check_flexible(spec, shapes)
        _specialize(spec, shapes)
    program = load(spec, spec.specificationVersion, model.weights_dir)
    meta = spec.description.metadata.userDefined
    signature = json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else None
    return program, signature


def flexible_shapes(spec) -> dict:
    """Input name -> ("range", [(lo, hi), ...]) (hi -1: unbounded), ("enumerated", [shape, ...]) or
    ("fixed", shape), as the saved model description declares them."""
    out = {}
    for inp in spec.description.input:
        arr = inp.type.multiArrayType
        kind = arr.WhichOneof("ShapeFlexibility")
        if kind == "shapeRange":
            out[inp.name] = ("range", [(r.lowerBound, r.upperBound) for r in arr.shapeRange.sizeRanges])
        elif kind == "enumeratedShapes":
            out[inp.name] = ("enumerated", [tuple(s.shape) for s in arr.enumeratedShapes.shapes])
        else:
            out[inp.name] = ("fixed", tuple(arr.shape))
    return out


def check_flexible(spec, shapes: dict) -> None:
    """Raise PackageCheckError for an input shape the package does not accept (Core ML's own check
    at a prediction: a size outside its `RangeDim`, or not one of its enumerated shapes)."""
    for name, (kind, allowed) in flexible_shapes(spec).items():
        shape = tuple(int(n) for n in shapes.get(name, ()))
        if name not in shapes:
            continue
        if kind == "range":
            ok = len(shape) == len(allowed) and all(lo <= n and (hi < 0 or n <= hi) for n, (lo, hi) in zip(shape, allowed))
        elif kind == "enumerated":
            ok = shape in allowed
        else:
            ok = shape == tuple(allowed)
        if not ok:
            raise PackageCheckError(f"input '{name}' of shape {shape} is outside the package's shapes "
                                    f"({kind}: {allowed})")


def _specialize(spec, shapes: dict) -> None:
    """Set the MIL main function's input dims to `shapes` (in place)."""
    for inp in spec.mlProgram.functions["main"].inputs:
        if inp.name in shapes:
            dims = inp.type.tensorType.dimensions
            for d, n in zip(dims, shapes[inp.name]):
                d.constant.size = int(n)


class PackageEvaluator:
    """Evaluates the `main` function of a loaded MIL program on numpy inputs."""

    def __init__(self, program):
        from coremltools.converters.mil.mil import types
        from coremltools.converters.mil.mil.operation import Operation
        from xcomp.backends.coreml.mil_eval import MIL_EVAL
        self.types, self.base_inference, self.own = types, Operation.value_inference, MIL_EVAL
        self.func = program.functions["main"]
        self.oracles: dict[str, Counter] = {"coremltools": Counter(), "xcomp": Counter()}

    def run(self, feeds: dict) -> dict:
        """Outputs by name for inputs by name."""
        for name, var in self.func.inputs.items():
            if name not in feeds:
                raise PackageCheckError(f"missing input '{name}'")
            self._set(var, self._checked(var, np.asarray(feeds[name]), "input"))
        outs = self.block(self.func)
        return {v.name: o for v, o in zip(self.func.outputs, outs)}

    # the walk ---------------------------------------------------------------------------------
    def block(self, block) -> list:
        for op in block.operations:
            self.op(op)
        return [self._val(v) for v in block.outputs]

    def op(self, op) -> None:
        kind = op.op_type
        if kind == "const":
            v = op.outputs[0]
            val = v.val
            if isinstance(val, (np.bool_, bool)) or (isinstance(val, np.ndarray) and val.dtype == np.bool_ and val.ndim == 0):
                self._set(v, bool(val))    # loaded bool constants are 0-d numpy bools: reduce ops reject them
            return
        if kind == "cond":
            outs = self._cond(op)
        elif kind == "while_loop":
            outs = self._while(op)
        elif kind in self.own:
            vals = {k: self._input(v) for k, v in op.inputs.items()}
            outs = self.own[kind](vals, [v.shape for v in op.outputs])
            self.oracles["xcomp"][kind] += 1
        elif type(op).value_inference is not self.base_inference:
            outs = op.value_inference()
            outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
            self.oracles["coremltools"][kind] += 1
        else:
            raise PackageCheckError(f"no evaluator for MIL op '{kind}' ({op.name})")
        if len(outs) != len(op.outputs):
            raise PackageCheckError(f"{kind} ({op.name}) gave {len(outs)} results for {len(op.outputs)} outputs")
        for v, o in zip(op.outputs, outs):
            self._set(v, self._checked(v, np.asarray(o), f"{kind} ({op.name})"))

    def _cond(self, op):
        self.oracles["xcomp"]["cond"] += 1
        pred = bool(np.asarray(self._val(op.inputs["pred"])).reshape(()))
        return self.block(op.blocks[0] if pred else op.blocks[1])

    def _while(self, op):
        self.oracles["xcomp"]["while_loop"] += 1
        cond_block, body = op.blocks if len(op.blocks) == 2 else (op.blocks[0], op.blocks[0])
        vals = [self._val(v) for v in op.inputs["loop_vars"]]
        for _ in range(1 << 24):
            for var, val in zip(cond_block.inputs, vals):
                self._set(var, val)
            if not bool(np.asarray(self.block(cond_block)[0]).reshape(())):
                return vals
            for var, val in zip(body.inputs, vals):
                self._set(var, val)
            vals = self.block(body)
        raise PackageCheckError(f"while_loop {op.name} ran 2**24 iterations")

    # values -----------------------------------------------------------------------------------
    def _input(self, v):
        if isinstance(v, (tuple, list)):
            return [self._val(x) for x in v]
        return self._val(v)

    def _val(self, var):
        val = var.val
        if val is None:
            raise PackageCheckError(f"value of '{var.name}' is not computed")
        return val

    def _set(self, var, value) -> None:
        holder = var.sym_type()
        holder.val = value
        var._sym_val = holder

    def _checked(self, var, value: np.ndarray, what: str):
        """`value` checked against `var`'s declared shape and dtype; a 0-d result of a scalar-typed
        var becomes a numpy scalar."""
        types = self.types
        if types.is_tensor(var.sym_type):
            declared = var.shape
            if len(declared) != value.ndim or any(not _symbolic(d) and int(d) != n for d, n in zip(declared, value.shape)):
                raise PackageCheckError(f"{what}: result shape {value.shape}, declared {tuple(declared)}")
        elif value.ndim != 0:
            raise PackageCheckError(f"{what}: result shape {value.shape}, declared a scalar")
        want = np.dtype(types.nptype_from_builtin(var.dtype))
        if value.dtype != want:
            if value.dtype.kind != want.kind and not (value.dtype.kind in "iu" and want.kind in "iu"):
                raise PackageCheckError(f"{what}: result dtype {value.dtype}, declared {want}")
            value = value.astype(want)   # same kind, other width (numpy promotion in value_inference)
        return value if value.ndim else value[()]


def _symbolic(d) -> bool:
    return not isinstance(d, (int, np.integer))


# IR signature <-> package interface ------------------------------------------------------------
def to_package_inputs(signature: dict, arrays: Sequence[np.ndarray]) -> dict:
    """Model inputs by name from IR-typed arrays (0-d as 1-element, bool as int32, i64 as int32)."""
    feeds = {}
    for spec, a in zip(signature["inputs"], arrays):
        a = np.asarray(a)
        feeds[spec["name"]] = (a.reshape(1) if a.ndim == 0 else a).astype(_NP[spec["dtype"]])
    return feeds


def from_package_outputs(signature: dict, outs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Model outputs back in the IR's shapes and dtypes."""
    res = []
    for spec, o in zip(signature["outputs"], outs):
        o = np.asarray(o)
        if not spec["ir_shape"]:
            o = o.reshape(())
        res.append(o.astype(DType(spec["ir_dtype"]).np))
    return res


def check_guards(signature: dict, arrays: Sequence[np.ndarray]) -> None:
    """Raise `xcomp.GuardError` when the inputs break a guard the package assumes that Core ML does
    not check itself (divisibility, equal dims: `flexible.py`); sizes bound from the IR input shapes."""
    from types import SimpleNamespace
    from xcomp.guards import Guard, GuardError, check
    env: dict[str, int] = {}
    for spec, a in zip(signature["inputs"], arrays):
        for d, n in zip(spec["ir_shape"], np.shape(a)):
            if isinstance(d, str) and d.isidentifier():
                if env.setdefault(d, int(n)) != int(n):
                    raise GuardError(f"input '{spec['name']}': size {d} is {n} here and {env[d]} in another dim")
    guards = [Guard.parse(t) for t in signature.get("guards", ())]
    check(SimpleNamespace(guards=[g for g in guards if g.names() <= set(env)]), env)  # stale names: skipped


def evaluate_package(path: str, inputs: Sequence[np.ndarray]):
    """(outputs in the IR's shapes and dtypes, the evaluator) of the package at `path` on `inputs`."""
    ct = coremltools()
    meta = ct.utils.load_spec(path).description.metadata.userDefined if os.path.isdir(path) else {}
    if METADATA_KEY not in meta:
        raise FormatError(f"{path}: not written by xcomp (no '{METADATA_KEY}' metadata)")
    signature = json.loads(meta[METADATA_KEY])
    check_guards(signature, inputs)
    feeds = to_package_inputs(signature, inputs)
    program, signature = load_package(path, {k: v.shape for k, v in feeds.items()})
    ev = PackageEvaluator(program)
    outs = ev.run(feeds)
    return from_package_outputs(signature, [outs[s["name"]] for s in signature["outputs"]]), ev


def run_program(program, inputs: Sequence[np.ndarray], **options) -> list[np.ndarray]:
    """Optimize `program` for coreml, save its package, reload it and evaluate it on `inputs`
    (the conformance harness's runner where Core ML cannot predict)."""
    from xcomp.api import optimize
    from xcomp.backends.coreml.target import CoreMLTarget
    target = CoreMLTarget(**options)
    optimized, _ = optimize(program, "coreml")
    with tempfile.TemporaryDirectory(prefix="xcomp_coreml_") as d:
        path = target.export(optimized, os.path.join(d, "model.mlpackage"))
        outs, _ = evaluate_package(path, [np.asarray(x) for x in inputs])
    return outs
