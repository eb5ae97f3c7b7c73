"""The Go type Prometheus decodes each part of ``prometheus.yml`` into, by key path.

go-yaml names the type in its errors (``field foo not found in type config.ScrapeConfig``,
``cannot unmarshal !!seq into config.plain``); the names are what Prometheus 2.42's promtool
prints (a section decoded through an ``UnmarshalYAML`` with a ``plain`` alias shows as
``<package>.plain``).
"""

from __future__ import annotations

import re

__all__ = ["go_type_of"]

_STATIC_GROUP = 'struct { Targets []string "yaml:\\"targets\\""; Labels model.LabelSet "yaml:\\"labels\\"" }'

# Key paths with list indexes as ``[]``; the ``*`` forms match the tail of any path.
_EXACT = {
    "": "config.plain",
    "global": "config.plain",
    "global.external_labels": "map[string]string",
    "rule_files": "[]string",
    "scrape_configs": "[]*config.ScrapeConfig",
    "scrape_configs[]": "config.ScrapeConfig",
    "scrape_configs[].params": "url.Values",
    "alerting": "config.plain",
    "alerting.alertmanagers": "config.AlertmanagerConfigs",
    "alerting.alertmanagers[]": "config.AlertmanagerConfig",
    "remote_write": "[]*config.RemoteWriteConfig",
    "remote_write[]": "config.plain",
    "remote_write[].queue_config": "config.QueueConfig",
    "remote_write[].metadata_config": "config.MetadataConfig",
    "remote_write[].headers": "map[string]string",
    "remote_read": "[]*config.RemoteReadConfig",
    "remote_read[]": "config.plain",
    "remote_read[].headers": "map[string]string",
    "remote_read[].required_matchers": "model.LabelSet",
    "storage": "config.StorageConfig",
    "storage.tsdb": "config.plain",
    "storage.exemplars": "config.ExemplarsConfig",
}
_TAILS = [
    ("static_configs", "[]*targetgroup.Group"),
    ("static_configs[]", _STATIC_GROUP),
    ("static_configs[].labels", "model.LabelSet"),
    ("static_configs[].targets", "[]string"),
    ("file_sd_configs", "[]*file.SDConfig"),
    ("file_sd_configs[]", "file.plain"),
    ("file_sd_configs[].files", "[]string"),
    ("http_sd_configs", "[]*http.SDConfig"),
    ("http_sd_configs[]", "http.plain"),
    ("relabel_configs", "[]*relabel.Config"),
    ("relabel_configs[]", "relabel.plain"),
    ("basic_auth", "config.plain"),
    ("authorization", "config.Authorization"),
    ("tls_config", "config.plain"),
]
_INDEX = re.compile(r"\[\d+\]")


def go_type_of(path: str) -> str | None:
    """The Go type at key path ``path`` (``scrape_configs[0].static_configs``), or None.

    Examples
    --------
    >>> go_type_of("scrape_configs[2]")
    'config.ScrapeConfig'
    >>> go_type_of("alerting.alertmanagers[0].relabel_configs[1]")
    'relabel.plain'
    >>> go_type_of("scrape_configs[0].params.module")
    '[]string'
    """
    key = _INDEX.sub("[]", path)
    if key in _EXACT:
        return _EXACT[key]
    if key.startswith("scrape_configs[].params."):
        return "[]string"
    for tail, name in _TAILS:  # metric_relabel_configs, write_relabel_configs: relabel_configs
        if key == tail or key.endswith(("." + tail, "_" + tail)):
            return name
    return None
