"""Names from models made into safe Python identifiers for generated source.

A name from a model (a parameter path, an input name) never reaches generated code as written:
`sanitize` keeps ASCII letters, digits and underscores only, so the result is always a plain
identifier, and `Namer` avoids keywords, builtins, the module's own names and earlier names.
"""
from __future__ import annotations

import builtins
import keyword
import re

# mlx.nn.Module (a dict) attributes a parameter must not shadow; kept static so that emitted
# source is the same whether or not MLX is installed where it is generated.
MODULE_ATTRIBUTES = frozenset((
    "apply apply_to_modules children clear copy eval filter_and_map freeze fromkeys get is_module "
    "items keys leaf_modules load_weights modules named_modules parameters pop popitem save_weights "
    "set_dtype setdefault state train trainable_parameter_filter trainable_parameters training "
    "unfreeze update update_modules valid_child_filter valid_parameter_filter values").split())
RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {
    "mx", "nn", "math", "os", "self", "Model", "load", "WEIGHTS"}


def sanitize(name: str, fallback: str = "v") -> str:
    """`name` as an identifier: runs of other characters become one underscore, no leading
    underscore or digit (MLX ignores parameters whose name starts with an underscore)."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name.encode("ascii", "replace").decode("ascii"))
    s = re.sub(r"_+", "_", s).strip("_")
    if not s:
        s = fallback
    if s[0].isdigit():
        s = f"{fallback}_{s}"
    return s


class Namer:
    """Hands out unique identifiers, none of them reserved."""

    def __init__(self, reserved=frozenset()):
        self.reserved = frozenset(RESERVED) | frozenset(reserved)
        self.taken: set[str] = set(self.reserved)

    def __call__(self, name: str, fallback: str = "v") -> str:
        base = sanitize(name, fallback)
        if base in self.reserved:   # `class` -> `class_`, `parameters` -> `parameters_`
            base += "_"
        candidate, n = base, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate
