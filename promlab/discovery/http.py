"""HTTP discovery (``http_sd_configs``): GET a JSON list of target groups every refresh interval.

On any failure (connection, status, body) the last good groups stay in place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx

from promlab.config import HTTPSDConfig
from promlab.config.httpclient import build_client
from promlab.discovery.group import TargetGroup, groups_from_data
from promlab.errors import ConfigError

__all__ = ["HTTPProvider"]

log = logging.getLogger("promlab.discovery.http")


class HTTPProvider:
    def __init__(self, config: HTTPSDConfig) -> None:
        self.config = config
        self.last_error: str = ""
        self._groups: list[TargetGroup] | None = None

    async def fetch(self, client: httpx.AsyncClient) -> list[TargetGroup]:
        """One poll; raises ConfigError with the reason on failure."""
        headers = {"X-Prometheus-Refresh-Interval-Seconds": str(self.config.refresh_interval_ms / 1000)}
        try:
            resp = await client.get(self.config.url, headers=headers)
        except httpx.HTTPError as exc:
            raise ConfigError(f"http_sd request failed: {exc!r}", file=self.config.url) from exc
        if resp.status_code != 200:
            raise ConfigError(f"server returned HTTP status {resp.status_code} {resp.reason_phrase}",
                              file=self.config.url)
        ctype = resp.headers.get("content-type", "")
        if not ctype.lower().startswith("application/json"):
            raise ConfigError(f"unsupported content type {ctype!r}", file=self.config.url)
        try:
            data = json.loads(resp.content)
        except ValueError as exc:
            raise ConfigError(f"invalid JSON: {exc}", file=self.config.url) from exc
        return groups_from_data(data, self.config.url, {"__meta_url": self.config.url})

    async def run(self, send: Callable[[list[TargetGroup]], None]) -> None:
        async with build_client(self.config.http, timeout_s=max(self.config.refresh_interval_ms / 1000, 1.0)) as client:
            while True:
                try:
                    groups = await self.fetch(client)
                except ConfigError as exc:
                    self.last_error = str(exc)
                    log.error("%s (keeping the last good targets)", exc)
                else:
                    self.last_error = ""
                    if groups != self._groups:
                        self._groups = groups
                        send(groups)
                await asyncio.sleep(self.config.refresh_interval_ms / 1000)
