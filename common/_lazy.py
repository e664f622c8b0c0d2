"""Module-level singletons built on first use, so that importing a module builds nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def singletons(namespace: dict[str, Any], **factories: Callable[[], object]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that builds each named singleton from its factory on
    first use, once whichever thread asks first, and stores it in ``namespace`` (the module's
    ``globals()``) so later uses are plain lookups. ``from module import NAME`` works too.

    Usage: ``NAME: Type`` (the annotation, for type checkers) and
    ``__getattr__ = singletons(globals(), NAME=Type)``.
    """
    lock = threading.Lock()
    module = namespace.get("__name__", "?")

    def __getattr__(name: str) -> Any:
        factory = factories.get(name)
        if factory is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        with lock:
            if name not in namespace:
                namespace[name] = factory()
        return namespace[name]

    return __getattr__
