"""State shared by every table of one extension process, built on first use (importing builds
nothing)."""

from ..buildinfo import Detector
from ..common import singletons

DETECTOR: Detector  # one cache: each distinct binary is read once per extension process
__getattr__ = singletons(globals(), DETECTOR=Detector)
