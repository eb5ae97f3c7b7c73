"""The ``prometheus.yml`` model and its loader, shared by scrape, rules and the API.

``config`` sits below every part but :mod:`promlab.model`: it imports neither scrape nor storage
nor promql. Each part reads its own section of a :class:`Config`: ``scrape_configs`` for the
scraper, ``rule_files``, ``evaluation_interval`` and ``alerting`` for the rules, ``remote_*`` for
the API.

Examples
--------
>>> cfg = load_config({"rule_files": ["/etc/rules/*.yml"],
...                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["am:9093"]}]}]}})
>>> cfg.rule_files
('/etc/rules/*.yml',)
>>> cfg.alerting.alertmanagers[0].api_version
'v2'
"""

from promlab.config.load import ConfigSource, load, load_config, parse
from promlab.config.model import (
    AlertingConfig,
    AlertmanagerConfig,
    Authorization,
    BasicAuth,
    Config,
    FileSDConfig,
    GlobalConfig,
    HTTPClientConfig,
    HTTPSDConfig,
    RemoteReadConfig,
    RemoteWriteConfig,
    ScrapeConfig,
    StaticConfig,
    TLSConfig,
)
from promlab.config.relabel import RelabelConfig

__all__ = [
    "AlertingConfig",
    "AlertmanagerConfig",
    "Authorization",
    "BasicAuth",
    "Config",
    "ConfigSource",
    "FileSDConfig",
    "GlobalConfig",
    "HTTPClientConfig",
    "HTTPSDConfig",
    "RelabelConfig",
    "RemoteReadConfig",
    "RemoteWriteConfig",
    "ScrapeConfig",
    "StaticConfig",
    "TLSConfig",
    "load",
    "load_config",
    "parse",
]
