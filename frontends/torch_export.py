"""PyTorch frontend: `torch.export` (decomposed to core ATen) and FX graph modules to xcomp IR.

Each `call_function` node is converted through the shared `ATEN` table. Every node whose op has no
converter is collected, and all of them are reported at once in an `UnsupportedOpError` with the
user's source line.
"""
from __future__ import annotations

import operator
import re
import time
from typing import Any, Sequence

import torch

from xcomp.errors import CaptureError, UnsupportedOp, UnsupportedOpError, XcompError
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Location, Program, Value
from xcomp.ir.types import DType, TensorType
from xcomp.frontends import Captured
from xcomp.frontends.aten import ATEN
from xcomp.frontends.aten.symbolic import is_symbolic_scalar, meta_size, range_guards, same_sizes, symbolic_value
from xcomp.frontends.context import ConvertContext
from xcomp.frontends.torch_dtypes import TORCH_DTYPES, XCOMP_TO_TORCH  # noqa: F401  (imported from here too)
from xcomp.logs import get_logger
from xcomp.progress import progress

_CAPTURE_LOG = get_logger("capture")


def to_dtype(dt: torch.dtype, value: str = "a value", location: str = "<unknown>") -> DType:
    """xcomp's dtype for a torch dtype; an `UnsupportedOpError` naming `value` for one it lacks."""
    try:
        return TORCH_DTYPES[dt]
    except KeyError:
        raise UnsupportedOpError([UnsupportedOp(f"dtype {dt}", location, f"{value} has dtype {dt}, "
                                                "which xcomp does not support")], "PyTorch") from None


def _dim(d) -> Any:
    return int(d) if not isinstance(d, torch.SymInt) or d.node.is_constant() else meta_size(d)


def meta_type(val) -> TensorType:
    """The IR type of a node's `meta['val']` (a FakeTensor)."""
    return TensorType(tuple(_dim(d) for d in val.shape), to_dtype(val.dtype))


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _internal_dirs() -> tuple[str, ...]:
    import os
    import xcomp
    import xcomp.backends
    import xcomp.frontends
    mods = (torch, xcomp, xcomp.frontends, xcomp.backends)
    return tuple(os.path.dirname(m.__file__) + os.sep for m in mods)


def source_location(node) -> Location | None:
    """The innermost frame of the node's stack trace that is the user's code, not torch's."""
    trace = node.meta.get("stack_trace") or ""
    frames = _FRAME.findall(trace)
    internal = _internal_dirs()
    user = [f for f in frames if not f[0].startswith(internal)]
    pick = (user or frames)[-1:] if frames else []
    return Location(pick[0][0], int(pick[0][1])) if pick else None


EFFECT_TOKEN = object()  # torch.export's token threading side effects (InputKind.TOKEN)


class FXContext(ConvertContext):
    """The converter context of the FX driver: result types from the node's FakeTensor meta, used
    results from the node's users."""

    def __init__(self, builder: Builder, program: Program):
        super().__init__(builder, program)
        self.node = None

    @property
    def out_val(self):
        return self.node.meta.get("val")

    def out_types(self) -> list[TensorType | None]:
        v = self.out_val
        if not isinstance(v, (tuple, list)):
            return [meta_type(v)]
        return [meta_type(x) if isinstance(x, torch.Tensor) else None for x in v]

    def operand_layout(self, i: int) -> tuple[tuple[int, ...], int] | None:
        arg = self.node.args[i] if i < len(self.node.args) else None
        val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if not isinstance(val, torch.Tensor):
            return None
        try:
            return tuple(int(s) for s in val.stride()), int(val.storage_offset())
        except (TypeError, RuntimeError):  # symbolic strides
            return None

    def used_outputs(self) -> set[int]:
        used = set()
        for user in self.node.users:
            if user.target is operator.getitem:
                used.add(user.args[1])
            else:
                v = self.out_val
                return set(range(len(v) if isinstance(v, (tuple, list)) else 1))
        return used


def convert_graph(graph: torch.fx.Graph, inputs: dict[str, Value | Any], cx: FXContext,
                  body: Block) -> list[Value]:
    """Convert the nodes of an FX graph (aten level) into `body`; returns the output values."""
    env: dict[Any, Any] = {}
    unsupported: list[UnsupportedOp] = []
    poisoned = object()
    outputs = None
    for node in progress(graph.nodes, total=len(graph.nodes), desc="convert", unit="node"):
        if node.op == "placeholder":
            env[node] = inputs[node.name]
        elif node.op == "call_function":
            loc = source_location(node)
            name = _target_name(node.target)
            if node.target is operator.getitem:
                seq, idx = env[node.args[0]], node.args[1]
                env[node] = poisoned if seq is poisoned else seq[idx]
                continue
            if name not in ATEN and is_symbolic_scalar(node.meta.get("val")):  # a size computation
                try:
                    env[node] = symbolic_value(node.meta["val"])
                except NotImplementedError as e:
                    unsupported.append(UnsupportedOp(name, str(loc) if loc else "<unknown>", str(e)))
                    env[node] = poisoned
                continue
            conv = ATEN.get(name)
            if conv is None:
                unsupported.append(UnsupportedOp(name, str(loc) if loc else "<unknown>"))
                env[node] = poisoned
                continue
            args = torch.fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
            if _mentions(args, poisoned) or _mentions(kwargs, poisoned) or unsupported:
                env[node] = poisoned
                continue
            cx.node, cx.b.loc = node, loc
            try:
                env[node] = _fix_result(cx, conv(cx, *args, **kwargs))
            except NotImplementedError as e:
                unsupported.append(UnsupportedOp(name, str(loc) if loc else "<unknown>", str(e)))
                env[node] = poisoned
            except UnsupportedOpError as e:  # a value of a dtype xcomp lacks (complex): at this line
                unsupported += [UnsupportedOp(u.name, str(loc) if loc else u.location, f"{name}: {u.reason}")
                                for u in e.ops]
                env[node] = poisoned
        elif node.op == "output":
            outputs = torch.fx.node.map_arg(node.args[0], lambda n: env[n])
        else:
            raise UnsupportedOpError([UnsupportedOp(f"fx.{node.op}:{node.target}", "<graph>")])
    if unsupported:
        raise UnsupportedOpError(unsupported, "PyTorch")
    return list(outputs)


def _mentions(tree, marker) -> bool:
    if tree is marker:
        return True
    if isinstance(tree, (list, tuple)):
        return any(_mentions(t, marker) for t in tree)
    if isinstance(tree, dict):
        return any(_mentions(t, marker) for t in tree.values())
    return False


def _fix_result(cx: FXContext, out):
    """Cast converter results to the dtype torch computes (the node's meta), so promotion rules
    live in one place."""
    val = cx.out_val
    if isinstance(out, Value) and isinstance(val, torch.Tensor):
        want = meta_type(val)
        if out.type.dtype != want.dtype:
            out = cx.cast(out, want.dtype)
        if not same_sizes(out.type.shape, want.shape):
            raise AssertionError(f"converter for {cx.node.target} built shape {out.type.shape}, "
                                 f"torch says {want.shape}")
    return out


def _target_name(target) -> str:
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"higher_order.{target.name()}.default"
    if isinstance(target, torch._ops.OpOverload):
        return str(target)  # "aten.add.Tensor"
    if isinstance(target, torch._ops.OpOverloadPacket):
        return f"{target}.default"
    return getattr(target, "__name__", str(target))


# Ops of torch.export's own graph (before `run_decompositions`) that the ATen table converts as
# they are: functional (no in-place op, no mutation) and converted in full. A graph made only of
# these skips `run_decompositions`, which retraces the whole graph and walks every composite op of
# the dispatcher (about 2/3 of the capture time of a small model); any other op, attention with a
# mask (torch gives 0 for a fully masked row) takes the decomposition as before. Symbolic sizes
# take this path too (the converters read SymInt sizes: `aten.symbolic`), so a dynamic capture
# keeps `linear` whole like the static one instead of view -> addmm -> view chains.
AS_EXPORTED = frozenset(f"aten.{n}" for n in (
    "linear.default", "conv1d.default", "conv2d.default", "layer_norm.default", "batch_norm.default",
    "relu.default", "gelu.default", "silu.default", "tanh.default", "sigmoid.default",
    "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor", "matmul.default", "softmax.int",
    "view.default", "reshape.default", "transpose.int", "permute.default", "select.int",
    "unsqueeze.default", "squeeze.dim", "unflatten.int", "flatten.using_ints", "contiguous.default",
    "split.Tensor", "dropout.default", "max_pool2d.default", "adaptive_avg_pool2d.default",
    "ones.default", "tril.default", "bitwise_not.default", "masked_fill.Scalar",
    "scaled_dot_product_attention.default"))


def _needs_decompositions(ep: "torch.export.ExportedProgram") -> bool:
    for node in ep.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        name = _target_name(node.target)
        if name not in ATEN and is_symbolic_scalar(node.meta.get("val")):
            continue  # a size computation (sym_size, s0 * s1): `convert_graph` takes its value
        if name not in AS_EXPORTED or name not in ATEN:
            return True
        if name == "aten.scaled_dot_product_attention.default" and \
                (node.kwargs.get("attn_mask") is not None or len(node.args) > 3 and node.args[3] is not None):
            return True
    return False


# AS_EXPORTED ops whose converters build helpers reading operand shapes (a triangle mask): with a
# symbolic size they alone are decomposed (into arange comparisons, which fuse and which MLX's
# shapeless compile takes); the rest of the graph stays as exported.
SYMBOLIC_DECOMPOSED = ("tril.default",)


def _symbolic_decompositions(ep: "torch.export.ExportedProgram") -> list:
    """The ops of `SYMBOLIC_DECOMPOSED` that `ep` applies to a tensor of symbolic size."""
    found = []
    for node in ep.graph.nodes:
        name = _target_name(node.target) if node.op == "call_function" else ""
        val = node.meta.get("val")
        if name.removeprefix("aten.") in SYMBOLIC_DECOMPOSED and isinstance(val, torch.Tensor) \
                and not all(isinstance(d, int) for d in val.shape):
            found.append(node.target)
    return found


def from_exported(ep: "torch.export.ExportedProgram", decompose: bool = True) -> Captured:
    """Convert an ExportedProgram (run through core-ATen decompositions first, unless every op is
    one the ATen table takes as exported: `AS_EXPORTED`, symbolic sizes included, the few of
    `SYMBOLIC_DECOMPOSED` on symbolic sizes decomposed alone; a converter refusing one of those as
    exported, such as an edge case of its arguments, sends the graph through the decompositions)."""
    if decompose and not _needs_decompositions(ep):
        try:
            targets = _symbolic_decompositions(ep)
            if targets:
                from torch._decomp import get_decompositions
                ep = ep.run_decompositions(get_decompositions(targets))
            return _from_exported(ep)
        except Exception:  # noqa: BLE001  (decomposed, as before; its own errors are the ones reported)
            pass
    return _from_exported(ep.run_decompositions() if decompose else ep)


def _from_exported(ep: "torch.export.ExportedProgram") -> Captured:
    program = Program()
    sig = ep.graph_signature
    body = Block()
    builder = Builder(body)
    cx = FXContext(builder, program)
    state = dict(ep.state_dict)
    state.update(ep.constants)
    inputs: dict[str, Any] = {}
    arg_names = []
    from torch.export.graph_signature import InputKind
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    for spec in sig.input_specs:
        node = nodes[spec.arg.name]
        if spec.kind == InputKind.TOKEN:
            inputs[node.name] = EFFECT_TOKEN
        elif spec.kind == InputKind.USER_INPUT:
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                inputs[node.name] = body.add_arg(_input_type(node, val), node.name)
                arg_names.append(node.name)
            else:
                inputs[node.name] = val
        else:
            t = state[spec.target]
            arr = t.detach().cpu()
            dt = to_dtype(arr.dtype, f"weight '{spec.target}'")
            program.weights[spec.target] = (arr.float() if dt is DType.BF16 else arr).numpy()
            inputs[node.name] = builder.create("weight", (), {"name": spec.target},
                                               result_types=[TensorType(tuple(arr.shape), dt)]).result
    from xcomp import guards
    with guards.collect() as found:
        outs = convert_graph(ep.graph, inputs, cx, body)
    program.guards = guards.merge(range_guards(ep), found)
    from torch.export.graph_signature import OutputKind
    kinds = [spec.kind for spec in sig.output_specs]
    if len(kinds) == len(outs):  # drop updated buffers/mutated inputs: only the user's outputs
        outs = [o for o, k in zip(outs, kinds) if k == OutputKind.USER_OUTPUT]
    builder.loc = None
    outs = [cx.tensor(o) if not isinstance(o, Value) else o for o in outs]
    builder.create("return", outs)
    program.funcs["main"] = Func("main", body, arg_names)
    return Captured(program, ep.call_spec.out_spec, "torch.export", array_kind="torch")


def _input_type(node, val) -> TensorType:
    """A user input's IR type; an unsupported dtype names the input and the first line using it."""
    if val.dtype not in TORCH_DTYPES:
        used = [loc for loc in map(source_location, node.users) if loc is not None]
        to_dtype(val.dtype, f"input '{node.name}'", str(used[0]) if used else "<input>")
    return meta_type(val)


def _anchor_stack_traces(fn) -> None:
    """Ask torch's tracer to keep `fn`'s frames in node stack traces (it keeps only `forward`
    frames otherwise), so errors can point at the user's line inside a plain function."""
    try:
        from torch.fx.proxy import _register_stack_trace_anchor
    except ImportError:  # older torch: only forward frames are recorded
        return
    inner = getattr(fn, "__wrapped__", fn)
    _register_stack_trace_anchor(inner)


def capture_module(fn, example_inputs: Sequence[Any], dynamic=None) -> Captured:
    """Capture a torch callable (nn.Module, FX GraphModule or function) with torch.export.

    `dynamic`: None/False for static sizes, or one `{axis: name or None}` per tensor input (see
    `xcomp.frontends.dynamic_shapes`) for symbolic sizes."""
    from xcomp.frontends.dynamic_shapes import export_program, rename_sizes
    module = fn if isinstance(fn, torch.nn.Module) else _FunctionModule(fn)
    modes = [(m, m.training) for m in module.modules()]   # restored per module: a wrapper is new (training)
    module.eval()
    t0 = time.perf_counter()
    try:
        ep, dynamic = export_program(module, example_inputs, dynamic)
    except XcompError:
        raise
    except Exception as e:  # torch.export's own errors: one line of why, and what works instead
        raise CaptureError(_capture_failure(fn, e)) from e
    finally:
        for m, training in modes:
            m.training = training
    t1 = time.perf_counter()
    with rename_sizes(ep, dynamic):
        captured = from_exported(ep)
    _CAPTURE_LOG.debug("torch.export: %d graph nodes in %.2f s, converted to %d ops in %.2f s",
                       len(ep.graph.nodes), t1 - t0, captured.program.op_count(), time.perf_counter() - t1)
    if isinstance(fn, torch.fx.GraphModule):
        captured.source = "torch.fx.GraphModule via torch.export"
    return captured


def _capture_failure(fn, error: Exception) -> str:
    """One line: what torch.export could not capture in `fn`, and the entry point that can."""
    inner = getattr(fn, "__wrapped__", fn)
    name = getattr(inner, "__name__", type(inner).__name__)
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    detail = lines[0][:160] + ("..." if lines and len(lines[0]) > 160 else "") if lines else ""
    if type(error).__name__ == "DataDependentOutputException":
        why = f"{detail} returns a value that depends on tensor data"
    else:
        why = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    call = "model" if isinstance(inner, torch.nn.Module) else name
    return (f"torch.export cannot capture {name} as one static graph ({why}); "
            f'torch.compile({call}, backend="xcomp") runs it through Dynamo with graph breaks')


class _FunctionModule(torch.nn.Module):
    """A function as a module for torch.export. When the function wraps a module (`__wrapped__`, as
    xcomp's argument binding sets), that module is registered so its parameters stay named weights."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        inner = getattr(fn, "__wrapped__", fn)
        if isinstance(inner, torch.nn.Module):
            self.inner = inner
        else:
            _anchor_stack_traces(inner)

    def forward(self, *args):
        return self.fn(*args)
