"""Driving a real :class:`~promlab.scrape.loop.ScrapeLoop` by hand: one scrape per given time,
into a store, through the scrape writer (what the scrape manager does, without its timer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from promlab.config import load_config
from promlab.config.httpclient import build_client
from promlab.discovery.static import StaticProvider
from promlab.scrape.loop import ScrapeLoop, ScrapeResult
from promlab.scrape.targets import build_targets
from promlab.scrape.writer import Writer

__all__ = ["scrape_rounds"]


def scrape_rounds(store: Any, config: dict[str, Any], times_ms: Sequence[int], *,
                  before: Callable[[int], None] | None = None,
                  after: Callable[[int], None] | None = None,
                  wait_commit: bool = False) -> list[ScrapeResult]:
    """Scrape the first target of ``config``'s first job once per time of ``times_ms``.

    ``before(i)`` runs before round ``i`` (e.g. to change the page), ``after(i)`` once its
    samples were handed to the writer (with ``wait_commit``: committed). Returns each
    round's :class:`ScrapeResult`; the writer is closed (everything committed) on return.
    """
    sc = load_config(config).scrape_configs[0]
    targets, _ = build_targets(StaticProvider(sc.static_configs).groups, sc)

    async def main() -> list[ScrapeResult]:
        writer = Writer(store, asyncio.get_running_loop(), linger_s=0)
        try:
            async with build_client(sc.http, timeout_s=5) as client:
                loop = ScrapeLoop(targets[0], sc, client=client, commit=writer.submit)
                out = []
                for i, t in enumerate(times_ms):
                    if before is not None:
                        before(i)
                    out.append(await loop.scrape_once(t, wait_commit=wait_commit))
                    if after is not None:
                        after(i)
                return out
        finally:
            writer.close()

    return asyncio.run(main())
