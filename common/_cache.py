"""The project's one cache type, and a bounded buffer beside it: every layer keeps state in these,
so that nothing grows without a bound and every structure is safe to share between the server's
threads."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class Cache(Generic[K, V]):
    """A bounded, thread-safe map that evicts the least recently used entry: the one cache type
    every layer uses (the extension serves queries from several threads)."""

    __slots__ = ("_data", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries beyond the bound."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class Buffer(Generic[T]):
    """A bounded, thread-safe FIFO for what a reader thread produces between two queries (events):
    when full, the oldest item is dropped and counted, so a stalled consumer costs memory up to
    the bound and the next answer can say how much it missed."""

    __slots__ = ("_data", "_dropped", "_lock")

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("a buffer holds at least one item")
        self._lock = threading.Lock()
        self._data: deque[T] = deque(maxlen=max_items)
        self._dropped = 0

    def put(self, item: T) -> None:
        """Append ``item``, dropping (and counting) the oldest one when the buffer is full."""
        with self._lock:
            if len(self._data) == self._data.maxlen:
                self._dropped += 1
            self._data.append(item)

    def drain(self) -> tuple[list[T], int]:
        """Everything buffered, oldest first, and how many items were dropped since the last
        drain; the buffer is empty afterwards."""
        with self._lock:
            items, dropped = list(self._data), self._dropped
            self._data.clear()
            self._dropped = 0
            return items, dropped

    def snapshot(self) -> tuple[list[T], int]:
        """Everything buffered, oldest first, and how many items were dropped since the last
        drain, leaving both in place: for a store that every query reads (events kept until they
        expire) rather than one consumer."""
        with self._lock:
            return list(self._data), self._dropped

    def expire(self, old: Callable[[T], bool]) -> int:
        """Remove items from the oldest end while ``old(item)`` holds; how many went (an expiry,
        not counted as dropped)."""
        gone = 0
        with self._lock:
            while self._data and old(self._data[0]):
                self._data.popleft()
                gone += 1
        return gone

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
