"""`compile(traced, check_inputs=[...], original=fn)`: the tracing trap, made visible.

A traced module bakes in the path its example input took through data-dependent control flow.
`check_trace` runs every check input through the compiled module, the TorchScript module and the
original Python callable: xcomp must reproduce the TorchScript module (what the user saved), and
the TorchScript module must agree with the Python code; the first divergence raises
`TraceCheckError` naming the input and the output. TracerWarnings from re-tracing `original` are
returned as notes for `explain()`.
"""
from __future__ import annotations

import warnings

import numpy as np

from xcomp.arrays import to_numpy
from xcomp.errors import TraceCheckError
from xcomp.frontends.torchscript.load import quiet


def _leaves(x) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for e in x for leaf in _leaves(e)]
    return [x]


def _diverge(a, b, rtol=1e-4, atol=1e-5) -> str | None:
    """Why two outputs differ, or None."""
    la, lb = _leaves(a), _leaves(b)
    if len(la) != len(lb):
        return f"{len(la)} outputs vs {len(lb)}"
    for i, (x, y) in enumerate(zip(la, lb)):
        x, y = np.asarray(to_numpy(x) if hasattr(x, "shape") else x), np.asarray(to_numpy(y) if hasattr(y, "shape") else y)
        if x.shape != y.shape:
            return f"output {i}: shape {x.shape} vs {y.shape}"
        if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True):
            return f"output {i}: max abs difference {float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))}"
    return None


def tracer_warnings(original, example) -> list[str]:
    """TorchScript's TracerWarnings from tracing `original` on `example`."""
    import torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        with quiet():
            warnings.simplefilter("always", torch.jit.TracerWarning)
            torch.jit.trace(original, tuple(example), check_trace=False)
    seen = []
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            msg = f"TracerWarning: {str(w.message).splitlines()[0]} ({w.filename}:{w.lineno})"
            if msg not in seen:
                seen.append(msg)
    return seen


def check_trace(compiled, module, original, check_inputs: list) -> list[str]:
    """Compare compiled vs TorchScript module vs `original` on each input; notes for explain()."""
    notes = tracer_warnings(original, check_inputs[0]) if original is not None and check_inputs else []
    for k, args in enumerate(check_inputs):
        with quiet():
            scripted = module(*args)
        ours = compiled(*args)
        why = _diverge(ours, scripted)
        if why:
            raise TraceCheckError(f"check input {k}: xcomp disagrees with the TorchScript module ({why})")
        if original is not None:
            why = _diverge(scripted, original(*args))
            if why:
                hint = ("; " + "; ".join(notes)) if notes else ""
                raise TraceCheckError(
                    f"check input {k}: the traced module diverges from the Python code it was traced from "
                    f"({why}): the trace baked in the path its example input took through data-dependent "
                    f"control flow; script it (torch.jit.script) instead{hint}")
    return notes
