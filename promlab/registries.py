"""One object per ``prometheus_client`` registry: a component's metrics, made once.

A metric can be registered in a registry only once, while a notebook stops and starts a
session's components (rules, notifier, server) as often as it likes: each component takes its
metrics from a :class:`PerRegistry`, which makes them on first use and hands the same object
out afterwards, and forgets it with the registry.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

__all__ = ["PerRegistry"]

T = TypeVar("T")


class PerRegistry(Generic[T]):
    """``make(registry)``, called once per registry: ``per(registry)`` returns it."""

    def __init__(self, make: Callable[[CollectorRegistry], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: weakref.WeakKeyDictionary[CollectorRegistry, T] = weakref.WeakKeyDictionary()

    def __call__(self, registry: CollectorRegistry) -> T:
        with self._lock:
            got = self._made.get(registry)
            if got is None:
                got = self._made[registry] = self._make(registry)
            return got

    def get(self, registry: CollectorRegistry) -> T | None:
        """What was made for ``registry``, or None (nothing is made)."""
        with self._lock:
            return self._made.get(registry)
