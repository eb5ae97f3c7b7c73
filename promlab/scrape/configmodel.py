"""The ``prometheus.yml`` model: frozen dataclasses with Prometheus's defaults.

Times are int milliseconds (``*_ms``). Build them with :func:`promlab.scrape.config.load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from promlab.model import Labels
from promlab.scrape.relabel import RelabelConfig

__all__ = [
    "AlertingConfig",
    "AlertmanagerConfig",
    "Authorization",
    "BasicAuth",
    "Config",
    "FileSDConfig",
    "GlobalConfig",
    "HTTPClientConfig",
    "HTTPSDConfig",
    "ScrapeConfig",
    "StaticConfig",
    "TLSConfig",
]


@dataclass(frozen=True)
class BasicAuth:
    username: str = ""
    password: str = ""
    password_file: str = ""


@dataclass(frozen=True)
class Authorization:
    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str = ""


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class HTTPClientConfig:
    """How to talk HTTP to a target or an SD endpoint (``bearer_token*`` become ``authorization``)."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = TLSConfig()
    follow_redirects: bool = True


@dataclass(frozen=True)
class StaticConfig:
    targets: tuple[str, ...] = ()
    labels: Labels = field(default_factory=Labels)


@dataclass(frozen=True)
class FileSDConfig:
    files: tuple[str, ...]
    refresh_interval_ms: int = 300_000


@dataclass(frozen=True)
class HTTPSDConfig:
    url: str
    refresh_interval_ms: int = 60_000
    http: HTTPClientConfig = HTTPClientConfig()


@dataclass(frozen=True)
class ScrapeConfig:
    """One ``scrape_configs`` entry with the global defaults already applied."""

    job_name: str
    scrape_interval_ms: int = 60_000
    scrape_timeout_ms: int = 10_000
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    static_configs: tuple[StaticConfig, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    http_sd_configs: tuple[HTTPSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()
    http: HTTPClientConfig = HTTPClientConfig()
    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    target_limit: int = 0
    body_size_limit: int = 0


@dataclass(frozen=True)
class AlertmanagerConfig:
    """One ``alerting.alertmanagers`` entry, kept as data for the rules part."""

    scheme: str = "http"
    path_prefix: str = "/"
    timeout_ms: int = 10_000
    api_version: str = "v2"
    static_configs: tuple[StaticConfig, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    http_sd_configs: tuple[HTTPSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    http: HTTPClientConfig = HTTPClientConfig()


@dataclass(frozen=True)
class AlertingConfig:
    alert_relabel_configs: tuple[RelabelConfig, ...] = ()
    alertmanagers: tuple[AlertmanagerConfig, ...] = ()


@dataclass(frozen=True)
class GlobalConfig:
    scrape_interval_ms: int = 60_000
    scrape_timeout_ms: int = 10_000
    evaluation_interval_ms: int = 60_000
    external_labels: Labels = field(default_factory=Labels)
    query_log_file: str = ""


@dataclass(frozen=True)
class Config:
    """A whole ``prometheus.yml``."""

    global_config: GlobalConfig = GlobalConfig()
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    rule_files: tuple[str, ...] = ()
    alerting: AlertingConfig = AlertingConfig()
    file: str | None = None

    def scrape_config(self, job_name: str) -> ScrapeConfig:
        for sc in self.scrape_configs:
            if sc.job_name == job_name:
                return sc
        raise KeyError(job_name)
