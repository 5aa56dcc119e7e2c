"""Model conversion (`xcomp convert`, `xcomp.export` of a SOURCE): sources and inputs
(`sources`), the verb's driver and report (`run`)."""
from xcomp.convert.sources import (CONVERT_TARGETS, InputSpec, Source, UsageError, parse_input,  # noqa: F401
                                   random_inputs, resolve_source)
