"""A scrape pool's effective config as Prometheus prints it: YAML text and relabel rules as JSON.

``/api/v1/scrape_pools/config`` answers with the YAML of one ``scrape_configs`` entry after the
global defaults were applied, secrets redacted (``<secret>``), keys in the order and with the
omissions of Prometheus's config marshalling (checked against the ``scrape_configs`` entries of
Prometheus 2.42's ``/api/v1/status/config``). Only what promlab models is printed: keys of
Prometheus 3 that promlab has no setting for (``enable_compression``,
``track_timestamps_staleness``, ``metric_name_validation_scheme``, ...) are left out.
``enable_http2`` is printed ``false``: promlab's scrapes are HTTP/1.1.
"""

from __future__ import annotations

from typing import Any

import yaml

from promlab.config import ScrapeConfig
from promlab.config.model import HTTPClientConfig, TLSConfig
from promlab.config.relabel import RelabelConfig
from promlab.model import format_duration
from promlab.model.time import format_size

__all__ = ["SECRET", "relabel_rule_json", "scrape_config_yaml"]

#: What Prometheus prints instead of a password or token.
SECRET = "<secret>"


class _Flow(list[str]):
    """A list Prometheus prints in flow style (``source_labels: [a, b]``)."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def relabel_rule_json(rule: RelabelConfig) -> dict[str, Any]:
    """One relabel rule as Prometheus's ``relabel.Config`` marshals to JSON.

    ``source_labels``, ``modulus`` and ``target_label`` are left out when empty; ``separator``,
    ``regex``, ``replacement`` and ``action`` are always there.

    Examples
    --------
    >>> relabel_rule_json(RelabelConfig(target_label="env", replacement="dev"))
    {'separator': ';', 'regex': '(.*)', 'target_label': 'env', 'replacement': 'dev', 'action': 'replace'}
    """
    out: dict[str, Any] = {}
    if rule.source_labels:
        out["source_labels"] = list(rule.source_labels)
    out["separator"] = rule.separator
    out["regex"] = rule.regex
    if rule.modulus:
        out["modulus"] = rule.modulus
    if rule.target_label:
        out["target_label"] = rule.target_label
    out["replacement"] = rule.replacement
    out["action"] = rule.action
    return out


def _relabel_yaml(rule: RelabelConfig) -> dict[str, Any]:
    out = relabel_rule_json(rule)
    if rule.source_labels:
        out["source_labels"] = _Flow(rule.source_labels)
    return out


def _tls_yaml(tls: TLSConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("ca_file", "cert_file", "key_file", "server_name"):
        value = getattr(tls, key)
        if value:
            out[key] = value
    out["insecure_skip_verify"] = tls.insecure_skip_verify
    return out


def _http_yaml(http: HTTPClientConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if http.basic_auth is not None:
        ba = http.basic_auth
        auth: dict[str, Any] = {"username": ba.username}
        if ba.password:
            auth["password"] = SECRET
        if ba.password_file:
            auth["password_file"] = ba.password_file
        out["basic_auth"] = auth
    if http.authorization is not None:
        az = http.authorization
        auth = {"type": az.type}
        if az.credentials:
            auth["credentials"] = SECRET
        if az.credentials_file:
            auth["credentials_file"] = az.credentials_file
        out["authorization"] = auth
    if http.tls_config != TLSConfig():  # Prometheus leaves the default TLS config out
        out["tls_config"] = _tls_yaml(http.tls_config)
    out["follow_redirects"] = http.follow_redirects
    out["enable_http2"] = False
    return out


def _scrape_config_data(sc: ScrapeConfig) -> dict[str, Any]:
    d: dict[str, Any] = {"job_name": sc.job_name}
    if sc.honor_labels:
        d["honor_labels"] = True
    d["honor_timestamps"] = sc.honor_timestamps
    if sc.params:
        d["params"] = {k: list(v) for k, v in sc.params.items()}
    d["scrape_interval"] = format_duration(sc.scrape_interval_ms)
    d["scrape_timeout"] = format_duration(sc.scrape_timeout_ms)
    if sc.scrape_protocols:
        d["scrape_protocols"] = list(sc.scrape_protocols)
    for key in ("scrape_native_histograms", "always_scrape_classic_histograms",
                "convert_classic_histograms_to_nhcb"):
        if getattr(sc, key):
            d[key] = True
    d["metrics_path"] = sc.metrics_path
    d["scheme"] = sc.scheme
    if sc.body_size_limit:
        d["body_size_limit"] = format_size(sc.body_size_limit)
    for key in ("sample_limit", "target_limit", "label_limit", "label_name_length_limit",
                "label_value_length_limit", "native_histogram_bucket_limit",
                "native_histogram_min_bucket_factor"):
        value = getattr(sc, key)
        if value:
            d[key] = value
    d.update(_http_yaml(sc.http))
    if sc.relabel_configs:
        d["relabel_configs"] = [_relabel_yaml(r) for r in sc.relabel_configs]
    if sc.metric_relabel_configs:
        d["metric_relabel_configs"] = [_relabel_yaml(r) for r in sc.metric_relabel_configs]
    if sc.file_sd_configs:
        d["file_sd_configs"] = [{"files": list(f.files),
                                 "refresh_interval": format_duration(f.refresh_interval_ms)}
                                for f in sc.file_sd_configs]
    if sc.http_sd_configs:
        d["http_sd_configs"] = [{"url": h.url, **_http_yaml(h.http),
                                 "refresh_interval": format_duration(h.refresh_interval_ms)}
                                for h in sc.http_sd_configs]
    if sc.static_configs:
        statics = []
        for s in sc.static_configs:
            entry: dict[str, Any] = {"targets": list(s.targets)}
            if len(s.labels):
                entry["labels"] = s.labels.to_dict()
            statics.append(entry)
        d["static_configs"] = statics
    return d


def scrape_config_yaml(sc: ScrapeConfig) -> str:
    """``sc`` as the YAML text of ``/api/v1/scrape_pools/config`` (secrets redacted).

    Examples
    --------
    >>> print(scrape_config_yaml(ScrapeConfig(job_name="node")), end="")
    job_name: node
    honor_timestamps: true
    scrape_interval: 1m
    scrape_timeout: 10s
    metrics_path: /metrics
    scheme: http
    follow_redirects: true
    enable_http2: false
    """
    return str(yaml.dump(_scrape_config_data(sc), Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True))
