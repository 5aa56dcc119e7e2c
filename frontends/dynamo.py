"""`torch.compile(model, backend="xcomp", options={"target": "mlx"})`: xcomp as a Dynamo backend.

Registered through the `torch_dynamo_backends` entry point (pyproject.toml), so it works without
`import xcomp`. Dynamo hands each captured FX graph to `xcomp_backend`; AOTAutograd turns it into a
functional core-ATen graph (the same op set `torch.export` gives `xcomp.compile`, so the same
converters and fusions apply), which is converted to xcomp IR, optimized and built for the target.
Graph breaks, guards and recompilation are Dynamo's, so models that `torch.export` refuses (a Python
branch on a tensor value, `.item()`, prints) run, each graph piece through xcomp.

Options (`torch.compile(..., options={...})`):
- `target`: an xcomp target that runs here (default `"mlx"`, as `xcomp.compile`).
- `passes`: a pass list overriding the target's pipeline.
- `freeze` (default True): inference graphs read parameters and buffers as weights, frozen at
  compile time like inductor's `freezing` (so batch norm folds into convolutions). Call
  `torch._dynamo.reset()` after changing weights in place, or pass `freeze=False` to read them on
  every call.
- `fallback` (default True): a graph xcomp cannot compile (an op it cannot convert or the target
  cannot lower) runs eagerly, logged on the `xcomp.dynamo` logger as a warning naming the ops;
  `fallback=False` raises xcomp's error (`UnsupportedOpError`, `LoweringError`) instead.

Training graphs (grad enabled, inputs that require grad) run their forward through xcomp with the
parameters read per call; the backward graph runs eagerly.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from xcomp.errors import XcompError
from xcomp.ir.builder import Builder
from xcomp.ir.core import Block, Func, Program, Value
from xcomp.ir.types import DType, TensorType
from xcomp.logs import get_logger

log = get_logger("dynamo")

OPTIONS = {"target": "mlx", "passes": None, "freeze": True, "fallback": True}


def _options(options: dict | None) -> dict:
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise XcompError(f"unknown xcomp backend option(s) {unknown}; known: {sorted(OPTIONS)}")
    return {**OPTIONS, **options}


def xcomp_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: dict | None = None):
    """The Dynamo backend: compile one Dynamo graph for `options["target"]` (see module doc)."""
    from torch._decomp import core_aten_decompositions
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func
    from xcomp.backends import get_target, require_runnable
    opts = _options(options)
    target = get_target(opts["target"])
    require_runnable(target)
    target.prepare()   # background work its builds may need (cpp: the prebuilt parts)
    weights = _static_inputs(gm, example_inputs) if opts["freeze"] else {}

    def inference(aot_gm, aot_inputs):
        return GraphRunner(aot_gm, _frozen_inputs(aot_gm, weights), opts).boxed()

    def forward(aot_gm, aot_inputs):
        return GraphRunner(aot_gm, {}, opts).boxed()

    def backward(aot_gm, aot_inputs):
        return make_boxed_func(aot_gm.forward)

    compiler = aot_autograd(fw_compiler=forward, inference_compiler=inference, bw_compiler=backward,
                            decompositions=core_aten_decompositions())
    return compiler(gm, example_inputs)


def _static_inputs(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> dict[int, tuple[str, Any]]:
    """Flat-argument index -> (weight name, tensor) for the graph's parameters and buffers, in
    AOTAutograd's argument order (the graph module's own parameters and buffers first, then
    Dynamo's inputs, of which those Dynamo marks static are the module's parameters and buffers)."""
    own = {**dict(gm.named_parameters(remove_duplicate=False)), **dict(gm.named_buffers(remove_duplicate=False))}
    found = {i: (name, t) for i, (name, t) in enumerate(own.items())}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for j, (node, value) in enumerate(zip(placeholders, example_inputs)):
        static = node.meta.get("tensor_dict", {}).get("_dynamo_static_input_type")
        if static and isinstance(value, torch.Tensor):
            name = _weight_name(node.name)
            taken = {n for n, _ in found.values()}
            found[len(own) + j] = (name if name not in taken else node.name, value)  # names stay unique
    return found


def _weight_name(placeholder: str) -> str:
    """`l_self_modules_fc1_parameters_weight_` -> `fc1.weight` (a readable name; still sanitized
    wherever a backend prints it)."""
    name = placeholder.removeprefix("l_self_").removeprefix("l_").rstrip("_")
    for part in ("modules_", "parameters_", "buffers_"):
        name = name.replace("_" + part, ".").removeprefix(part)
    return name


def _frozen_inputs(aot_gm: torch.fx.GraphModule, weights: dict[int, tuple[str, Any]]):
    """The weights that the inference graph's placeholders read, when AOTAutograd kept Dynamo's
    argument list as is (no duplicates removed, no synthetic bases) and the graph mutates none."""
    placeholders = [n for n in aot_gm.graph.nodes if n.op == "placeholder"]
    mutated = _mutated_inputs()
    frozen = {}
    for i, (name, t) in weights.items():
        if i >= len(placeholders) or i in mutated:
            return {}
        val = placeholders[i].meta.get("val")
        if not isinstance(val, torch.Tensor) or tuple(val.shape) != tuple(t.shape) or val.dtype != t.dtype:
            return {}
        frozen[i] = (name, t)
    return frozen


def _mutated_inputs() -> set[int]:
    ctx = torch._guards.TracingContext.try_get()
    meta = getattr(ctx, "fw_metadata", None) if ctx is not None else None
    if meta is None:
        return set()
    return {i for i, info in enumerate(meta.input_info) if info.mutates_data or info.mutates_metadata}


class GraphRunner:
    """One AOTAutograd graph compiled by xcomp: list of torch values in, list of torch tensors out.

    A graph with concrete shapes compiles at once; a graph with symbolic shapes (Dynamo's automatic
    dynamic shapes) compiles per concrete signature, re-traced with the call's values, as
    `xcomp.compile` does. A graph xcomp cannot convert runs eagerly when fallback is on."""

    def __init__(self, gm: torch.fx.GraphModule, frozen: dict[int, tuple[str, Any]], opts: dict):
        from xcomp.backends import get_target
        self.gm, self.frozen, self.opts = gm, frozen, opts
        self.target = get_target(opts["target"])
        self.cache: dict[Any, Any] = {}
        self.fallback_reason: str | None = None
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.static = all(_is_concrete(n.meta.get("val")) for n in placeholders)
        if self.static:
            self._build_guarded(None, gm)

    def boxed(self):
        run = self.__call__
        run_boxed = lambda args: run(args)  # noqa: E731  (AOTAutograd's boxed convention: one list)
        run_boxed._boxed_call = True
        return run_boxed

    def __call__(self, args: list) -> list:
        key = None if self.static else _signature(args, self.frozen)
        entry = self.cache.get(key)
        if entry is None:
            from torch.fx.experimental.proxy_tensor import make_fx
            self._build_guarded(key, make_fx(self.gm, tracing_mode="fake")(*args))
            entry = self.cache[key]
        if entry == "eager":
            return self.gm(*args)
        program, runner, _ = entry
        from xcomp.arrays import convert
        kind = self.target.array_kind
        native = [convert(a, kind, p.type) for a, p in zip(_runtime(args, self.frozen), program.main.args)]
        outs = runner(native)
        return [convert(o, "torch", t if isinstance(t, TensorType) else None)
                for o, t in zip(outs, program.main.result_types)]

    def _build_guarded(self, key, gm: torch.fx.GraphModule) -> None:
        try:
            self.cache[key] = self._build(gm)
        except XcompError as e:  # unsupported ops, or a target that cannot lower one
            if not self.opts["fallback"]:
                raise
            self.fallback_reason = str(e)
            log.warning("xcomp cannot compile a graph for target '%s'; it runs eagerly: %s",
                        self.target.name, e)
            self.cache[key] = "eager"

    def _build(self, gm: torch.fx.GraphModule):
        from torch._subclasses.fake_tensor import unset_fake_temporarily
        from xcomp import program_cache   # a graph seen by an earlier process skips the pass pipeline
        with unset_fake_temporarily():  # AOTAutograd compiles under its fake mode; weights are real
            program = program_from_graph(gm, self.frozen)
        optimized, _, _ = program_cache.optimize(program, self.target, self.opts["passes"])
        log.info("graph of %d ops -> %d ops for target '%s'", program.op_count(),
                 optimized.op_count(), self.target.name)
        return optimized, self.target.build(optimized), program  # (optimized, runner, as captured)


def _is_concrete(val) -> bool:
    if isinstance(val, torch.Tensor):
        return all(isinstance(d, int) for d in val.shape)
    return not isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool))


def _runtime(args: list, frozen: dict) -> list:
    return [a for i, a in enumerate(args) if i not in frozen and isinstance(a, torch.Tensor)]


def _signature(args: list, frozen: dict):
    return tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else ("const", repr(a))
                 for i, a in enumerate(args) if i not in frozen)


def program_from_graph(gm: torch.fx.GraphModule, frozen: dict[int, tuple[str, Any]]) -> Program:
    """An aten-level FX graph (placeholders with FakeTensor meta) as a Program: placeholders listed
    in `frozen` become named weights, other tensor placeholders the program's arguments, and
    non-tensor placeholders constants of the graph."""
    from xcomp.frontends.torch_export import FXContext, convert_graph, meta_type, to_dtype
    program = Program()
    body = Block()
    builder = Builder(body)
    cx = FXContext(builder, program)
    inputs: dict[str, Any] = {}
    arg_names = []
    graph, constants = _lift_constants(gm)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for i, node in enumerate(placeholders):
        val = node.meta.get("val")
        if i in frozen or node.name in constants:
            name, t = frozen[i] if i in frozen else (node.name, constants[node.name])
            arr = t.detach().cpu()
            dt = to_dtype(arr.dtype)
            program.weights[name] = (arr.float() if dt is DType.BF16 else arr).numpy().copy()
            inputs[node.name] = builder.create("weight", (), {"name": name},
                                               result_types=[TensorType(tuple(arr.shape), dt)]).result
        elif isinstance(val, torch.Tensor):
            inputs[node.name] = body.add_arg(meta_type(val), node.name)
            arg_names.append(node.name)
        else:
            inputs[node.name] = val
    outs = convert_graph(graph, inputs, cx, body)
    builder.loc = None
    outs = [o if isinstance(o, Value) else cx.tensor(o) for o in outs]
    builder.create("return", outs)
    program.funcs["main"] = Func("main", body, arg_names)
    return program


def _lift_constants(gm: torch.fx.GraphModule) -> tuple[torch.fx.Graph, dict[str, torch.Tensor]]:
    """A copy of the graph whose tensor constants (`get_attr` nodes, e.g. a `torch.tensor(...)` in
    forward) are placeholders after the real ones, and those constants by placeholder name."""
    graph = torch.fx.Graph()
    env: dict = {}
    out = graph.graph_copy(gm.graph, env)
    graph.output(out)
    constants = {}
    last = [n for n in graph.nodes if n.op == "placeholder"][-1:]
    for node in [n for n in graph.nodes if n.op == "get_attr"]:
        value = gm
        for part in node.target.split("."):
            value = getattr(value, part)
        anchor = last[0].next if last else next(iter(graph.nodes))
        with graph.inserting_before(anchor):
            ph = graph.placeholder(f"constant_{len(constants)}")
        ph.meta = dict(node.meta)
        node.replace_all_uses_with(ph)
        graph.erase_node(node)
        constants[ph.name] = value
        last = [ph]
    return graph, constants
