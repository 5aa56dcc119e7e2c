"""The `coreml` target: the optimized IR lowered with MIL's builder and saved as an ML program.

    xcomp.export(model, inputs, target="coreml", path="m.mlpackage", compute_precision="float32")

Options (named as in `ct.convert`): `compute_precision` "float16" (default, like coremltools:
fp32 inputs and outputs, casts to fp16 only at the edges) or "float32"; `minimum_deployment_target`
(`ct.target.iOS16` by default, or a name such as "iOS17"); `compute_units` ("ALL" by default, or
"CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"). A program captured with symbolic sizes
(`dynamic=`) builds one package for every size: its sizes are computed in the MIL program from the
input shapes, and each symbolic input dim is a `ct.RangeDim` (`shape_bounds={"S": (1, 512)}`;
default: the program's range guards, else 1..4096) or, with `enumerated={"S": [16, 32, 64]}`, part of
`ct.EnumeratedShapes` (see `flexible.py`). Predictions (`xcomp.compile`) need macOS; the
package evaluator (`xcomp.backends.coreml.evaluate`) checks packages everywhere.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import sys

import numpy as np

from xcomp.backends import Target
from xcomp.backends.coreml import passes as _passes  # noqa: F401  (registers coreml_lift_reshapes)
from xcomp.errors import LoweringError, TargetError
from xcomp.ir.core import Program
from xcomp.passes.manager import DEFAULT_PIPELINE

OPTIONS = ("compute_precision", "minimum_deployment_target", "compute_units", "shape_bounds", "enumerated")
# The MIL passes xcomp runs in ct.convert (coremltools' default pipeline has ~90, most of which
# redo what xcomp's own passes did: folding, CSE, DCE, canonicalization): MIL's fusions that the IR
# does not express (matmul + bias -> linear, transpose + matmul), reshape/transpose merging and the
# float16 casts at the edges (then folded into the weights and cancelled in pairs). Cleanup that
# coremltools' backend pipeline runs after these anyway (const deduplication, DCE, name dedup) is
# not repeated: every pass costs a walk plus a whole-program validation.
MIL_PASSES = (
    "common::const_elimination", "common::noop_elimination", "common::fuse_matmul_weight_bias",
    "common::fuse_linear_bias", "common::merge_consecutive_reshapes", "common::merge_consecutive_transposes",
    "common::fuse_transpose_matmul", "common::remove_redundant_ops", "common::add_fp16_cast",
    "common::update_output_dtypes", "common::const_elimination", "common::cast_optimization",
    "common::dead_code_elimination", "common::topological_reorder",
)
METADATA_KEY = "xcomp.signature"    # the IR input/output names, shapes and dtypes, as JSON


def coremltools():
    """coremltools, imported quietly (it warns about untested torch versions and missing native libs)."""
    import logging
    import warnings
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import coremltools as ct
        except ImportError as e:
            raise TargetError(f"coremltools is not installed ({e}); pip install 'xcomp[coreml]'") from None
    return ct


def _quiet_progress():
    """Turn off coremltools' per-pass progress bars (tqdm) for the conversions xcomp runs."""
    os.environ.setdefault("TQDM_DISABLE", "1")


class CoreMLTarget(Target):
    name = "coreml"
    array_kind = "numpy"
    # MIL fuses itself: no `fuse`; reshapes lifted so flatten/unflatten pairs cancel (passes.py)
    pipeline = tuple(p for p in DEFAULT_PIPELINE if p != "fuse") + ("coreml_lift_reshapes",)
    weight_layout = "nk"     # MIL's linear takes torch's (out, in) weights
    symbolic_sizes = True    # one flexible package serves every size (RangeDim / EnumeratedShapes)

    def __init__(self, **options):
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise TargetError(f"target 'coreml' has no option(s) {sorted(unknown)}; options: {', '.join(OPTIONS)}")
        self.options = options

    def with_options(self, **options) -> "CoreMLTarget":
        return CoreMLTarget(**{**self.options, **options})

    def unavailable_reason(self):
        if sys.platform != "darwin":
            return ("Core ML runs predictions only on macOS (xcomp.export(..., target='coreml', "
                    "path='m.mlpackage') works everywhere)")
        try:
            coremltools()
        except TargetError as e:
            return str(e)
        return None

    def supported(self) -> set[str]:
        try:
            from xcomp.backends.coreml.lowering import CoreMLLowering, load_table
        except ImportError:
            return set()
        return set(load_table()) | set(CoreMLLowering.region_ops)

    # conversion -------------------------------------------------------------------------------
    def convert(self, program: Program):
        """The `ct.models.MLModel` of `program` (not saved)."""
        ct = coremltools()
        _quiet_progress()
        from xcomp.backends.coreml.build import build_mil
        opts = resolve_options(ct, self.options)
        float16 = opts["compute_precision"] == ct.precision.FLOAT16

        def build(direct: bool):
            mil, flexible, signature = build_mil(program, opts["minimum_deployment_target"], self.options.get("shape_bounds"),
                                                 self.options.get("enumerated"), float16=direct)
            model = mil_to_model(ct, mil, flexible, opts, fp16_casts=float16 and not direct)
            model.user_defined_metadata[METADATA_KEY] = json.dumps(signature)
            return model
        try:   # float16: built in fp16 directly (coremltools' add_fp16_cast was half of the MIL side's time)
            return build(float16)
        except LoweringError:
            if not float16:
                raise
            return build(False)   # a rule MIL refuses in fp16: float32 built, cast by add_fp16_cast

    def export(self, program: Program, path: str) -> str:
        """Write `program` as an ML program package at `path` (`.mlpackage` is appended if missing)."""
        if not path.endswith(".mlpackage"):
            path = path.rstrip("/") + ".mlpackage"
        from xcomp.progress import progress
        with progress(total=2, desc="Core ML export", unit="step") as bar:   # drawn only past half a second
            bar.set_postfix_str("lowering to MIL")
            model = self.convert(program)
            bar.update(1)
            bar.set_postfix_str(f"saving {os.path.basename(path)}")
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            model.save(path)
            bar.update(1)
        return path

    def build(self, program: Program):
        """Predictions through `MLModel.predict` (macOS only)."""
        import tempfile
        from xcomp.backends.coreml.evaluate import check_guards, from_package_outputs, to_package_inputs
        reason = self.unavailable_reason()
        if reason:
            raise TargetError(f"target 'coreml' cannot run on this machine: {reason}")
        ct = coremltools()
        path = self.export(program, os.path.join(tempfile.mkdtemp(prefix="xcomp_coreml_"), "model.mlpackage"))
        units = resolve_options(ct, self.options)["compute_units"]
        model = ct.models.MLModel(path, compute_units=units)
        signature = json.loads(model.user_defined_metadata[METADATA_KEY])

        def run(inputs):
            arrays = [np.asarray(x) for x in inputs]
            check_guards(signature, arrays)   # Core ML checks only the ranges / enumerated shapes
            feeds = to_package_inputs(signature, arrays)
            outs = model.predict(feeds)
            return from_package_outputs(signature, [outs[o["name"]] for o in signature["outputs"]])
        return run


def run_mil_passes(mil, fp16_casts: bool) -> None:
    """`MIL_PASSES` on `mil` in place (`add_fp16_cast` only with `fp16_casts`), validated once at the
    end: coremltools' pipeline manager validates the whole program after every pass and formats it
    for a debug log, which cost more than the passes themselves."""
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    for name in MIL_PASSES:
        if name != "common::add_fp16_cast" or fp16_casts:
            PASS_REGISTRY[name](mil)
    mil.validate()


def mil_to_model(ct, mil, flexible, opts: dict, fp16_casts: bool = False):
    """The `ct.models.MLModel` of an xcomp-built MIL program: `run_mil_passes`, then `ct.convert`
    with an empty main pipeline (its frontend and backend pipelines still run). `fp16_casts`: a
    float32-built program for float16 precision (coremltools' casts added)."""
    kwargs = {"inputs": flexible} if flexible else {}
    gc.freeze()   # ct.convert ends with gc.collect(): skip the heap that existed before it (torch, the model)
    try:
        run_mil_passes(mil, fp16_casts)
        return ct.convert(mil, convert_to="mlprogram", compute_precision=opts["compute_precision"],
                          minimum_deployment_target=opts["minimum_deployment_target"],
                          compute_units=opts["compute_units"], pass_pipeline=ct.PassPipeline.EMPTY, **kwargs)
    except (ValueError, TypeError, NotImplementedError, AssertionError) as e:
        raise LoweringError(f"coremltools refused the MIL program: {type(e).__name__}: {e}") from e
    finally:
        gc.unfreeze()


def resolve_options(ct, options: dict) -> dict:
    """`ct.convert`'s arguments from xcomp's options (names or coremltools objects)."""
    precision = options.get("compute_precision", "float16")
    precisions = {"float16": ct.precision.FLOAT16, "float32": ct.precision.FLOAT32}
    if isinstance(precision, str):
        if precision not in precisions:
            raise TargetError(f"compute_precision must be 'float16' or 'float32', got {precision!r}")
        precision = precisions[precision]
    target = options.get("minimum_deployment_target", ct.target.iOS16)
    if isinstance(target, str):
        if not hasattr(ct.target, target):
            raise TargetError(f"unknown minimum_deployment_target {target!r} (e.g. 'iOS16', 'macOS13')")
        target = getattr(ct.target, target)
    if target < ct.target.iOS16:
        raise TargetError("target 'coreml' builds ML programs for iOS16 / macOS13 and later")
    units = options.get("compute_units", "ALL")
    if isinstance(units, str):
        if not hasattr(ct.ComputeUnit, units):
            raise TargetError(f"unknown compute_units {units!r}: ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE")
        units = getattr(ct.ComputeUnit, units)
    return {"compute_precision": precision, "minimum_deployment_target": target, "compute_units": units}


def is_macos() -> bool:
    return platform.system() == "Darwin"

