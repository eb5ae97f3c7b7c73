"""Waiting in tests for something another thread or process does: poll, never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for"]


def wait_for(pred: Callable[[], Any], what: str = "the condition", timeout: float = 30.0) -> Any:
    """``pred()``'s first truthy answer, polled every 50 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
