"""From target groups to scrape targets: defaults, relabeling, ``job``/``instance``, the URL.

Follows Prometheus's ``PopulateLabels``: the group's labels under the target's own, then
``job``, ``__scrape_interval__``, ``__scrape_timeout__``, ``__metrics_path__``, ``__scheme__``
and (from ``params``) ``__param_<name>`` when not set; ``relabel_configs``; ``__meta_*`` removed; ``instance``
defaults to ``__address__``. Labels starting with ``__`` stay on the target (they build the URL)
but are not attached to samples.

As in Prometheus 3.x, an address without a port keeps none (2.x added ``:80`` or ``:443`` by
scheme and refused other schemes); the scrape URL then uses the scheme's default port.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from promlab.config import ScrapeConfig
from promlab.config.relabel import process_dict
from promlab.discovery.group import TargetGroup
from promlab.model import Labels, format_duration
from promlab.model.time import parse_go_duration

__all__ = ["DroppedTarget", "Target", "build_targets", "populate_labels"]

@dataclass(frozen=True)
class Target:
    """A target to scrape: its final labels (with ``__`` labels) and what it was discovered as."""

    labels: Labels
    discovered_labels: Labels
    params: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def sample_labels(self) -> Labels:
        """The labels attached to every sample: those not starting with ``__``."""
        return Labels.from_sorted_pairs(tuple(p for p in self.labels.pairs if not p[0].startswith("__")))

    @property
    def url(self) -> str:
        ls = self.labels
        params: dict[str, list[str]] = {k: list(v) for k, v in self.params.items()}
        for k, v in ls.pairs:
            if k.startswith("__param_"):
                name = k[len("__param_"):]
                vals = params.get(name)
                if vals:
                    vals[0] = v
                else:
                    params[name] = [v]
        query = urlencode(sorted(params.items()), doseq=True) if params else ""  # sorted, as Go's Values.Encode
        return _go_url(ls.get("__scheme__", ""), ls["__address__"], ls.get("__metrics_path__", ""), query)

    @property
    def interval_ms(self) -> int:
        return parse_go_duration(self.labels["__scrape_interval__"])

    @property
    def timeout_ms(self) -> int:
        return parse_go_duration(self.labels["__scrape_timeout__"])

    @property
    def hash(self) -> int:
        """Stable unsigned 64-bit identity of labels and URL (spreads scrape offsets)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.labels.hash.to_bytes(8, "little", signed=True))
        h.update(self.url.encode())
        return int.from_bytes(h.digest(), "little")


@dataclass(frozen=True)
class DroppedTarget:
    """A target that relabeling dropped (or that was invalid: ``error`` says why)."""

    discovered_labels: Labels
    error: str = ""


_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
_HOST_SAFE = _ALNUM | frozenset(b"!$&'()*+,;=:[]<>\"")
_PATH_SAFE = _ALNUM | frozenset(b"$&+,/:;=@")


def _escape(text: str, safe: frozenset[int]) -> str:
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())


def _go_url(scheme: str, host: str, path: str, query: str) -> str:
    """The URL as Go's ``url.URL.String`` writes it: the host and path percent-escaped (the path
    keeps ``/`` and ``$&+,:;=@``, and a path of ``*`` stays), a ``/`` put before a path that lacks
    one, no ``scheme:`` when the scheme is empty."""
    out = f"{scheme}:" if scheme else ""
    out += "//" + _escape(host, _HOST_SAFE) if host or path else ""
    escaped = "*" if path == "*" else _escape(path, _PATH_SAFE)
    if escaped and not escaped.startswith("/") and host:
        out += "/"
    out += escaped
    return out + (f"?{query}" if query else "")


def populate_labels(lset: dict[str, str], cfg: ScrapeConfig) -> tuple[Labels | None, Labels, str]:
    """``(final labels or None if dropped, labels before relabeling, error)`` of one target."""
    d = dict(lset)
    defaults = {
        "job": cfg.job_name,
        "__scrape_interval__": format_duration(cfg.scrape_interval_ms),
        "__scrape_timeout__": format_duration(cfg.scrape_timeout_ms),
        "__metrics_path__": cfg.metrics_path,
        "__scheme__": cfg.scheme,
    }
    for k, v in defaults.items():
        if not d.get(k):
            d[k] = v
    for k, vals in cfg.params.items():
        if vals and not d.get(f"__param_{k}"):  # a target's own __param_<k> wins (3.x; 2.x overrode it)
            d[f"__param_{k}"] = vals[0]
    pre = Labels(d)
    out = process_dict(pre.to_dict(), cfg.relabel_configs)
    if out is None:
        return None, pre, ""
    addr = out.get("__address__", "")
    if not addr:
        return None, pre, "no address"
    if "/" in addr:
        return None, pre, f'"{addr}" is not a valid hostname'
    try:
        interval = parse_go_duration(out.get("__scrape_interval__", ""))
    except ValueError as exc:
        return None, pre, f"error parsing scrape interval: {exc}"
    if interval == 0:
        return None, pre, "scrape interval cannot be 0"
    try:
        timeout = parse_go_duration(out.get("__scrape_timeout__", ""))
    except ValueError as exc:
        return None, pre, f"error parsing scrape timeout: {exc}"
    if timeout == 0:
        return None, pre, "scrape timeout cannot be 0"
    if timeout > interval:
        return None, pre, (f'scrape timeout cannot be greater than scrape interval '
                           f'("{out["__scrape_timeout__"]}" > "{out["__scrape_interval__"]}")')
    for k in [k for k in out if k.startswith("__meta_")]:
        del out[k]
    if not out.get("instance"):
        out["instance"] = addr
    return Labels(out), pre, ""


def build_targets(groups: Iterable[TargetGroup], cfg: ScrapeConfig) -> tuple[list[Target], list[DroppedTarget]]:
    """Active targets (deduplicated by final labels, in discovery order, each with the discovered
    labels of its last duplicate) and dropped ones for a job."""
    active: dict[Labels, Target] = {}
    dropped: list[DroppedTarget] = []
    for g in groups:
        for t in g.targets:
            lset = dict(g.labels)
            lset.update(t)
            final, pre, err = populate_labels(lset, cfg)
            if final is None:
                dropped.append(DroppedTarget(pre, err))
            else:
                # A duplicate keeps its place but shows the later discovered labels, as
                # Prometheus's scrape pool updates a known target's discovered labels.
                active[final] = Target(final, pre, dict(cfg.params))
    return list(active.values()), dropped
