"""Server notifications: ``/api/v1/notifications`` and ``/api/v1/notifications/live``.

Prometheus 3 keeps a short list of notices about the server itself for its web UI (a failed
config reload, starting up, shutting down). promlab reports the one that applies to it: a
failed ``/-/reload`` adds :data:`CONFIG_RELOAD_FAILED`, the next successful one removes it.
(promlab's store replays its WAL before the server starts, so there is no "starting up" time to
report.) A notice is ``{"text", "date", "active"}``; the live endpoint streams each change as a
Server-Sent Event ``data: <notice JSON>``, the active notices first, and answers 204 when
:data:`MAX_SUBSCRIBERS` streams are open already.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.metrics import ApiMetrics
from promlab.api.v1 import handler

__all__ = ["CONFIG_RELOAD_FAILED", "MAX_SUBSCRIBERS", "Notice", "Notifications", "routes"]

#: Prometheus's text for a failed configuration reload.
CONFIG_RELOAD_FAILED = "Configuration reload has failed."

#: Live streams served at once (Prometheus's ``--web.max-notifications-subscribers`` default).
MAX_SUBSCRIBERS = 16

#: How often an idle live stream checks whether its client left or the server stops.
_POLL_S = 1.0


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification, as Prometheus's ``notifications.Notification`` marshals it."""

    text: str
    date: str
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "date": self.date, "active": self.active}


class Notifications:
    """The active notices and the live streams that follow them (thread-safe)."""

    def __init__(self, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self.max_subscribers = max_subscribers
        self._lock = threading.Lock()
        self._notices: list[Notice] = []
        self._subscribers: dict[asyncio.Queue[Notice], asyncio.AbstractEventLoop] = {}
        self.closed = False

    def add(self, text: str) -> None:
        """Make ``text`` active (a notice already active gets a new date)."""
        notice = Notice(text, _now_text())
        with self._lock:
            at = next((i for i, n in enumerate(self._notices) if n.text == text), None)
            if at is None:
                self._notices.append(notice)
            else:
                self._notices[at] = notice
        self._publish(notice)

    def delete(self, text: str) -> None:
        """Remove the notice ``text``; live streams get it with ``active: false``."""
        with self._lock:
            gone = [n for n in self._notices if n.text == text]
            self._notices = [n for n in self._notices if n.text != text]
        for n in gone:
            self._publish(replace(n, active=False))

    def active(self) -> list[Notice]:
        """The active notices, oldest first."""
        with self._lock:
            return list(self._notices)

    def close(self) -> None:
        """End every live stream (the server stops)."""
        self.closed = True

    def _publish(self, notice: Notice) -> None:
        with self._lock:
            subs = list(self._subscribers.items())
        for queue, loop in subs:
            loop.call_soon_threadsafe(queue.put_nowait, notice)

    def subscribe(self) -> asyncio.Queue[Notice] | None:
        """A queue of the active notices, then of every change (None when there are too many
        streams). Call from the event loop that reads the queue."""
        with self._lock:
            if len(self._subscribers) >= self.max_subscribers:
                return None
            queue: asyncio.Queue[Notice] = asyncio.Queue()
            for n in self._notices:
                queue.put_nowait(n)
            self._subscribers[queue] = asyncio.get_running_loop()
            return queue

    @property
    def subscribers(self) -> int:
        """Live streams open now."""
        with self._lock:
            return len(self._subscribers)

    def unsubscribe(self, queue: asyncio.Queue[Notice]) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)


def routes(notices: Notifications, metrics: ApiMetrics) -> list[BaseRoute]:
    """``/api/v1/notifications`` and its live stream over ``notices``."""

    async def current(request: Request) -> Response:
        return success([n.to_json() for n in notices.active()])

    async def live(request: Request) -> Response:
        queue = notices.subscribe()
        if queue is None:
            return Response(status_code=204)
        return StreamingResponse(_stream(request, notices, queue), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    named: list[tuple[str, Callable[[Request], Any]]] = [
        ("notifications", current), ("notifications/live", live)]
    return [Route(f"/api/v1/{name}", handler(f"/api/v1/{name}", metrics, fn), methods=["GET"])
            for name, fn in named]


async def _stream(request: Request, notices: Notifications,
                  queue: asyncio.Queue[Notice]) -> AsyncIterator[bytes]:
    try:
        while not notices.closed:
            try:
                notice = await asyncio.wait_for(queue.get(), _POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            yield _event(notice)
    finally:
        notices.unsubscribe(queue)


def _event(notice: Notice) -> bytes:
    return b"data: " + json.dumps(notice.to_json(), separators=(",", ":")).encode() + b"\n\n"
