"""State shared by every table of one extension process, built on first use (importing builds
nothing). Table modules reach it as ``_shared.DETECTOR`` inside functions, never ``from ._shared
import DETECTOR`` at import, which would build it there (tests/test_imports.py checks)."""

from ..buildinfo import Detector
from ..common import singletons

DETECTOR: Detector  # one cache: each distinct binary is read once per extension process
__getattr__ = singletons(globals(), DETECTOR=Detector)
