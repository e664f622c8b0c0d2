"""State shared by every table of one extension process."""

from ..buildinfo import Detector

DETECTOR = Detector()  # one cache: each distinct binary is read once per extension process
