"""The ``prometheus.yml`` model: frozen dataclasses with Prometheus's defaults.

Durations are int milliseconds (``*_ms``), sizes int bytes. Build a :class:`Config` with
:func:`promlab.config.load_config`; scrape, rules and the API each read their own part of it.
Constructors with more than three fields are keyword-only.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promlab.config.relabel import RelabelConfig
from promlab.model import Labels

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
    "RemoteReadConfig",
    "RemoteWriteConfig",
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


@dataclass(frozen=True, kw_only=True)
class TLSConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
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
    # Native histograms (Prometheus 3's names; see promlab.exposition.protobuf.ProtobufOptions).
    # scrape_native_histograms also selects the protobuf-first Accept header.
    scrape_native_histograms: bool = False
    always_scrape_classic_histograms: bool = False
    convert_classic_histograms_to_nhcb: bool = False
    native_histogram_bucket_limit: int = 0
    native_histogram_min_bucket_factor: float = 0.0
    scrape_protocols: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AlertmanagerConfig:
    """One ``alerting.alertmanagers`` entry: where and how the rules part sends alerts."""

    scheme: str = "http"
    path_prefix: str = "/"
    timeout_ms: int = 10_000
    api_version: str = "v2"
    static_configs: tuple[StaticConfig, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    http_sd_configs: tuple[HTTPSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    #: Applied to alerts sent to this entry's Alertmanagers only, after the global
    #: ``alerting.alert_relabel_configs`` (Prometheus 3.x).
    alert_relabel_configs: tuple[RelabelConfig, ...] = ()
    http: HTTPClientConfig = HTTPClientConfig()


@dataclass(frozen=True)
class AlertingConfig:
    alert_relabel_configs: tuple[RelabelConfig, ...] = ()
    alertmanagers: tuple[AlertmanagerConfig, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RemoteWriteConfig:
    """One ``remote_write`` entry. ``queue_config`` and ``metadata_config`` are kept as given."""

    url: str
    name: str = ""
    remote_timeout_ms: int = 30_000
    headers: Mapping[str, str] = field(default_factory=dict)
    write_relabel_configs: tuple[RelabelConfig, ...] = ()
    send_exemplars: bool = False
    send_native_histograms: bool = False
    queue_config: Mapping[str, Any] = field(default_factory=dict)
    metadata_config: Mapping[str, Any] = field(default_factory=dict)
    http: HTTPClientConfig = HTTPClientConfig()


@dataclass(frozen=True, kw_only=True)
class RemoteReadConfig:
    """One ``remote_read`` entry."""

    url: str
    name: str = ""
    remote_timeout_ms: int = 60_000
    headers: Mapping[str, str] = field(default_factory=dict)
    required_matchers: Labels = field(default_factory=Labels)
    read_recent: bool = False
    filter_external_labels: bool = True
    http: HTTPClientConfig = HTTPClientConfig()


@dataclass(frozen=True, kw_only=True)
class GlobalConfig:
    scrape_interval_ms: int = 60_000
    scrape_timeout_ms: int = 10_000
    evaluation_interval_ms: int = 60_000
    rule_query_offset_ms: int = 0
    external_labels: Labels = field(default_factory=Labels)
    query_log_file: str = ""
    scrape_native_histograms: bool = False
    always_scrape_classic_histograms: bool = False
    convert_classic_histograms_to_nhcb: bool = False
    scrape_protocols: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole ``prometheus.yml``; ``rule_files`` are patterns resolved against ``file``'s directory."""

    global_config: GlobalConfig = GlobalConfig()
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    rule_files: tuple[str, ...] = ()
    alerting: AlertingConfig = AlertingConfig()
    remote_write: tuple[RemoteWriteConfig, ...] = ()
    remote_read: tuple[RemoteReadConfig, ...] = ()
    file: str | None = None
    #: ``storage.exemplars.max_exemplars`` (Prometheus's default with ``exemplar-storage``; 0: off)
    max_exemplars: int = 100_000
    #: ``storage.tsdb.out_of_order_time_window`` in ms (0, Prometheus's default: out-of-order
    #: samples are refused); a Session gives it to its store
    out_of_order_time_window_ms: int = 0

    def scrape_config(self, job_name: str) -> ScrapeConfig:
        for sc in self.scrape_configs:
            if sc.job_name == job_name:
                return sc
        raise KeyError(job_name)

    def rule_file_paths(self) -> list[str]:
        """The rule files the ``rule_files`` globs match now, sorted within each pattern."""
        out: list[str] = []
        for pattern in self.rule_files:
            for p in sorted(glob.glob(pattern)):
                if p not in out:
                    out.append(p)
        return out
