"""Read Go build information from an executable file (ELF, PE, Mach-O).

This layer knows executable formats and nothing else: no osquery, no processes. Its public API:

- ``read_build_info(path_or_fd)`` returns a :class:`BuildInfo` or raises a :class:`BuildInfoError`
  subclass carrying a short ``reason``;
- ``read_functions(path_or_fd)`` returns the :class:`FuncTable` of the pclntab (every function,
  including inline-only ones), raising the same errors;
- :class:`Detector` wraps it in a bounded, thread-safe cache keyed by a file's identity and returns
  errors as values, so that callers scanning a whole host read each distinct binary once.
"""

from . import _godebug as godebug
from ._cache import Detector, Identity, Result, identity_of
from ._model import (
    DETECTION_BUILDID,
    DETECTION_BUILDINFO,
    DETECTION_GCCGO,
    DETECTION_PCLNTAB,
    DETECTION_SYMBOLS,
    SOURCE_BUILDINFO,
    SOURCE_DATA,
    SOURCE_LDFLAGS,
    SOURCE_SYMBOL,
    BuildInfo,
    BuildInfoError,
    FuncTable,
    MalformedExecutable,
    Module,
    NotGoExecutable,
    UnreadableFile,
    UnsupportedFormat,
    split_function,
)
from ._modinfo import needs_quote
from ._read import read_build_info, read_functions
from ._version import go_release

__all__ = [
    "DETECTION_BUILDID",
    "DETECTION_BUILDINFO",
    "DETECTION_GCCGO",
    "DETECTION_PCLNTAB",
    "DETECTION_SYMBOLS",
    "SOURCE_BUILDINFO",
    "SOURCE_DATA",
    "SOURCE_LDFLAGS",
    "SOURCE_SYMBOL",
    "BuildInfo",
    "BuildInfoError",
    "Detector",
    "FuncTable",
    "Identity",
    "MalformedExecutable",
    "Module",
    "NotGoExecutable",
    "Result",
    "UnreadableFile",
    "UnsupportedFormat",
    "go_release",
    "godebug",
    "identity_of",
    "needs_quote",
    "read_build_info",
    "read_functions",
    "split_function",
]
