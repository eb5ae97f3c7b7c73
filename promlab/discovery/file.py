"""File-based discovery (``file_sd_configs``): JSON or YAML files of target groups, watched.

Files are re-listed and their modification times checked every second (``poll_interval``); a
changed, new or removed file is re-read at once, and everything is re-read every
``refresh_interval``. A file that cannot be read or parsed keeps its last good groups.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import yaml

from promlab.config import FileSDConfig
from promlab.discovery.group import TargetGroup, groups_from_data
from promlab.errors import ConfigError

__all__ = ["FileProvider", "read_file_groups"]

log = logging.getLogger("promlab.discovery.file")


def read_file_groups(path: str) -> list[TargetGroup]:
    """Parse one SD file (by extension: ``.json``, else YAML) into groups with ``__meta_filepath``.

    Raises
    ------
    ConfigError
        When the file cannot be read or does not hold valid target groups.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        data: Any = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read target groups: {exc}", file=path) from exc
    return groups_from_data(data, path, {"__meta_filepath": path})


class FileProvider:
    """Watches the files matching ``config.files``."""

    def __init__(self, config: FileSDConfig, *, poll_interval: float = 1.0) -> None:
        self.config = config
        self.poll_interval = min(poll_interval, config.refresh_interval_ms / 1000)
        self._stamps: dict[str, tuple[float, int]] = {}
        self._groups: dict[str, list[TargetGroup]] = {}
        self.errors = 0

    def _list(self) -> dict[str, tuple[float, int]]:
        out = {}
        for pattern in self.config.files:
            for p in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out[p] = (st.st_mtime, st.st_size)
        return out

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read changed files (all when ``force``); True when the groups changed."""
        stamps = self._list()
        changed = False
        for p in list(self._groups):
            if p not in stamps:
                del self._groups[p]
                changed = True
        for p, st in stamps.items():
            if not force and self._stamps.get(p) == st and p in self._groups:
                continue
            try:
                groups = read_file_groups(p)
            except ConfigError as exc:
                self.errors += 1
                log.error("file_sd: %s (keeping the last good targets)", exc)
                continue
            if self._groups.get(p) != groups:
                self._groups[p] = groups
                changed = True
        self._stamps = stamps
        return changed

    def groups(self) -> list[TargetGroup]:
        return [g for p in sorted(self._groups) for g in self._groups[p]]

    async def run(self, send: Callable[[list[TargetGroup]], None]) -> None:
        loop = asyncio.get_running_loop()
        self.refresh(force=True)
        send(self.groups())
        last_full = loop.time()
        while True:
            await asyncio.sleep(self.poll_interval)
            force = loop.time() - last_full >= self.config.refresh_interval_ms / 1000
            if force:
                last_full = loop.time()
            if self.refresh(force=force):
                send(self.groups())
