"""Read Go build information from an executable file (ELF, PE, Mach-O).

This layer knows executable formats and nothing else: no osquery, no processes. Its public API:

- ``read_build_info(path_or_fd)`` returns a :class:`BuildInfo` or raises a :class:`BuildInfoError`
  subclass carrying a short ``reason``;
- :class:`Detector` wraps it in a bounded, thread-safe cache keyed by a file's identity and returns
  errors as values, so that callers scanning a whole host read each distinct binary once;
- :class:`Cache` is that cache type, the one every layer uses.
"""

from ._cache import Cache, Detector, Identity, Result, identity_of
from ._model import (
    DETECTION_BUILDID,
    DETECTION_BUILDINFO,
    DETECTION_GCCGO,
    DETECTION_PCLNTAB,
    DETECTION_SYMBOLS,
    BuildInfo,
    BuildInfoError,
    MalformedExecutable,
    Module,
    NotGoExecutable,
    UnreadableFile,
    UnsupportedFormat,
)
from ._read import read_build_info

__all__ = [
    "DETECTION_BUILDID",
    "DETECTION_BUILDINFO",
    "DETECTION_GCCGO",
    "DETECTION_PCLNTAB",
    "DETECTION_SYMBOLS",
    "BuildInfo",
    "BuildInfoError",
    "Cache",
    "Detector",
    "Identity",
    "MalformedExecutable",
    "Module",
    "NotGoExecutable",
    "Result",
    "UnreadableFile",
    "UnsupportedFormat",
    "identity_of",
    "read_build_info",
]
