"""Op definitions, one module per family; importing this package registers them all."""
from xcomp.ops import registry  # noqa: F401
from xcomp.ops import structural, elementwise  # noqa: F401
from xcomp.ops.registry import REGISTRY, OpDef, Trait, get  # noqa: F401

# Families added by later modules register themselves on import.
for _family in ("reduction", "linalg", "nn", "shape", "indexing", "factory", "host"):
    try:
        __import__(f"xcomp.ops.{_family}")
    except ModuleNotFoundError as _e:  # family not written yet
        if _e.name != f"xcomp.ops.{_family}":
            raise
