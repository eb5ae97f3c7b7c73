"""Static targets from ``static_configs``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from promlab.config import StaticConfig
from promlab.discovery.group import TargetGroup

__all__ = ["StaticProvider"]


class StaticProvider:
    """Sends the configured groups once and then idles."""

    def __init__(self, configs: tuple[StaticConfig, ...]) -> None:
        self.groups = [
            TargetGroup(tuple({"__address__": t} for t in sc.targets), sc.labels.to_dict(), str(i))
            for i, sc in enumerate(configs)
        ]

    async def run(self, send: Callable[[list[TargetGroup]], None]) -> None:
        send(self.groups)
        await asyncio.Event().wait()
