"""Loading ``prometheus.yml``: :func:`load_config` from a path, a dict or a :class:`Config`.

Defaults and checks follow Prometheus's config loader (``promtool check config`` accepts what
this accepts). Every problem raises :class:`~promlab.errors.ConfigError` with the file and the
key path (``scrape_configs[0].relabel_configs[1].action``). Keys Prometheus knows but promlab
does not act on (``oauth2``, ``sigv4``, other service discoveries, the rest of ``storage.tsdb``, ...) are accepted
and logged. Relative file names, ``rule_files`` globs included, are resolved against the config
file's directory, as Prometheus does.

From a file, problems come in the order and grouping Prometheus's decoder gives them: type
errors (a value of the wrong type, an unknown or repeated key) are collected over the whole
file and reported together (``yaml: unmarshal errors:`` and a line each); any other problem
stops the loading at once; a section's own checks (a scrape config's ``job_name``, an HTTP
client's auth options) run only when its fields had no type error (:meth:`Reader.section`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from promlab.config.histograms import GLOBAL_KEYS as _HIST_GLOBAL_KEYS
from promlab.config.histograms import SCRAPE_KEYS as _HIST_SCRAPE_KEYS
from promlab.config.histograms import global_options as _hist_global
from promlab.config.histograms import scrape_options as _hist_scrape
from promlab.config.model import (
    AlertingConfig,
    AlertmanagerConfig,
    Config,
    GlobalConfig,
    RemoteReadConfig,
    RemoteWriteConfig,
    ScrapeConfig,
)
from promlab.config.reader import (
    HTTP_IGNORED,
    HTTP_KEYS,
    SD_IGNORED,
    Reader,
    check_static_targets,
    file_sd_configs,
    http_client,
    http_sd_configs,
    join,
    label_set,
    relabel_configs,
    static_configs,
    url_problem,
)
from promlab.config.yamlfile import load_config_file
from promlab.model.labels import format_label_value

__all__ = ["ConfigSource", "load", "load_config", "parse"]

ConfigSource = Config | Mapping[str, Any] | str | os.PathLike[str]
"""What :func:`load_config` accepts."""

_SCRAPE_KEYS = {
    "job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params", "honor_labels",
    "honor_timestamps", "static_configs", "file_sd_configs", "http_sd_configs", "relabel_configs",
    "metric_relabel_configs", "sample_limit", "label_limit", "label_name_length_limit",
    "label_value_length_limit", "target_limit", "body_size_limit",
} | HTTP_KEYS | _HIST_SCRAPE_KEYS


def _scrape_config(r: Reader, data: Any, path: str, g: GlobalConfig) -> ScrapeConfig:
    with r.section():  # checked once read, as Prometheus's ScrapeConfig.UnmarshalYAML does
        cfg = _scrape_fields(r, data, path, g)
        if not cfg.job_name:
            r.invalid(join(path, "job_name"), "job_name is empty")
        check_static_targets(r, cfg.static_configs, cfg.relabel_configs, join(path, "static_configs"))
    if cfg.scrape_timeout_ms == 0:
        cfg = replace(cfg, scrape_timeout_ms=min(g.scrape_timeout_ms, cfg.scrape_interval_ms))
    return cfg


def _scrape_fields(r: Reader, data: Any, path: str, g: GlobalConfig) -> ScrapeConfig:
    d = r.mapping(data, path, _SCRAPE_KEYS, (HTTP_IGNORED - {"follow_redirects"}) | SD_IGNORED)
    job = r.string(d, "job_name", path)
    interval = r.duration(d, "scrape_interval", path) or g.scrape_interval_ms
    timeout = r.duration(d, "scrape_timeout", path)
    params: dict[str, tuple[str, ...]] = {}
    pp = join(path, "params")
    for k, v in r.mapping(d.get("params"), pp, set(d.get("params") or ())).items():
        if not isinstance(v, list):
            r.bad_type(join(pp, str(k)), "[]string", f"cannot unmarshal {v!r} into []string")
            continue
        params[str(k)] = tuple(str(x) for x in v)
    body_limit = r.size(d, "body_size_limit", path)
    return ScrapeConfig(
        job_name=job, scrape_interval_ms=interval, scrape_timeout_ms=timeout,
        metrics_path=r.string(d, "metrics_path", path, "/metrics") or "/metrics",
        scheme=r.string(d, "scheme", path, "http") or "http",
        params=params,
        honor_labels=r.boolean(d, "honor_labels", path, False),
        honor_timestamps=r.boolean(d, "honor_timestamps", path, True),
        static_configs=static_configs(r, d.get("static_configs"), join(path, "static_configs")),
        file_sd_configs=file_sd_configs(r, d.get("file_sd_configs"), join(path, "file_sd_configs")),
        http_sd_configs=http_sd_configs(r, d.get("http_sd_configs"), join(path, "http_sd_configs")),
        relabel_configs=relabel_configs(r, d.get("relabel_configs"), join(path, "relabel_configs")),
        metric_relabel_configs=relabel_configs(r, d.get("metric_relabel_configs"), join(path, "metric_relabel_configs")),
        http=http_client(r, d, path),
        sample_limit=r.uint(d, "sample_limit", path), label_limit=r.uint(d, "label_limit", path),
        label_name_length_limit=r.uint(d, "label_name_length_limit", path),
        label_value_length_limit=r.uint(d, "label_value_length_limit", path),
        target_limit=r.uint(d, "target_limit", path), body_size_limit=body_limit,
        **_hist_scrape(r, d, path, g),
    )


def _global(r: Reader, data: Any) -> GlobalConfig:
    p = "global"
    with r.section():
        d = r.mapping(data, p, {"scrape_interval", "scrape_timeout", "evaluation_interval", "external_labels",
                                "query_log_file", "rule_query_offset"} | _HIST_GLOBAL_KEYS)
        interval = r.duration(d, "scrape_interval", p) or 60_000
        timeout = r.duration(d, "scrape_timeout", p)
        g = GlobalConfig(scrape_interval_ms=interval, scrape_timeout_ms=timeout or min(10_000, interval),
                         evaluation_interval_ms=r.duration(d, "evaluation_interval", p) or 60_000,
                         rule_query_offset_ms=r.duration(d, "rule_query_offset", p),
                         external_labels=label_set(r, d.get("external_labels"), join(p, "external_labels")),
                         query_log_file=r.file_path(r.string(d, "query_log_file", p)), **_hist_global(r, d, p))
        if timeout > interval:
            r.invalid(join(p, "scrape_timeout"), "global scrape timeout greater than scrape interval")
    return g


def _alerting(r: Reader, data: Any) -> AlertingConfig:
    d = r.mapping(data, "alerting", {"alert_relabel_configs", "alertmanagers"})
    ams = []
    for i, am in enumerate(r.seq(d.get("alertmanagers"), "alerting.alertmanagers")):
        with r.section():
            ams.append(_alertmanager(r, am, f"alerting.alertmanagers[{i}]"))
    return AlertingConfig(relabel_configs(r, d.get("alert_relabel_configs"), "alerting.alert_relabel_configs"),
                          tuple(ams))


def _alertmanager(r: Reader, data: Any, p: str) -> AlertmanagerConfig:
    a = r.mapping(data, p, {"scheme", "path_prefix", "timeout", "api_version", "static_configs",
                            "file_sd_configs", "http_sd_configs", "relabel_configs",
                            "alert_relabel_configs"} | HTTP_KEYS,
                  (HTTP_IGNORED - {"follow_redirects"}) | SD_IGNORED | {"sigv4"})
    version = r.string(a, "api_version", p, "v2") or "v2"
    if version not in ("v1", "v2"):
        raise r.err(join(p, "api_version"), f"expected Alertmanager api version to be one of [v1 v2] but got {version}")
    am = AlertmanagerConfig(
        scheme=r.string(a, "scheme", p, "http") or "http", path_prefix=r.string(a, "path_prefix", p, "/") or "/",
        timeout_ms=r.duration(a, "timeout", p, 10_000) or 10_000, api_version=version,
        static_configs=static_configs(r, a.get("static_configs"), join(p, "static_configs")),
        file_sd_configs=file_sd_configs(r, a.get("file_sd_configs"), join(p, "file_sd_configs")),
        http_sd_configs=http_sd_configs(r, a.get("http_sd_configs"), join(p, "http_sd_configs")),
        relabel_configs=relabel_configs(r, a.get("relabel_configs"), join(p, "relabel_configs")),
        alert_relabel_configs=relabel_configs(r, a.get("alert_relabel_configs"),
                                              join(p, "alert_relabel_configs")),
        http=http_client(r, a, p))
    check_static_targets(r, am.static_configs, am.relabel_configs, join(p, "static_configs"))
    return am


def _check_glob(r: Reader, pattern: str, path: str) -> None:
    # Go's filepath.Match rejects unbalanced brackets and a trailing backslash.
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
            if i >= len(pattern):
                r.invalid(path, "syntax error in pattern")
                return
        elif c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                r.invalid(path, "syntax error in pattern")
                return
            depth -= 1
        i += 1
    if depth:
        r.invalid(path, "syntax error in pattern")


# Headers Prometheus sets itself on remote requests; a config may not override them.
_RESERVED_HEADERS = {h.lower() for h in (
    "Authorization", "Host", "Content-Encoding", "Content-Length", "Content-Type", "User-Agent",
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Www-Authenticate",
    "Accept-Encoding", "X-Prometheus-Remote-Write-Version", "X-Prometheus-Remote-Read-Version")}
_REMOTE_IGNORED = (HTTP_IGNORED - {"follow_redirects"}) | {"sigv4", "azuread", "google_iam",
                                                            "protobuf_message", "round_robin_dns"}


def _headers(r: Reader, data: Any, path: str) -> dict[str, str]:
    m = r.mapping(data, path, set(data) if isinstance(data, Mapping) else set())
    out = {}
    for k in m:
        if str(k).lower() in _RESERVED_HEADERS:
            r.invalid(join(path, str(k)), f"{k} is a reserved header. It must not be changed")
        out[str(k)] = r.string(m, k, path)
    return out


def _remote_url(r: Reader, d: Mapping[str, Any], path: str, what: str) -> str:
    url = r.string(d, "url", path)
    if not url:
        r.invalid(join(path, "url"), f"url for {what} is empty")
        return url
    problem = url_problem(url)  # Prometheus's URL type refuses it as it is decoded
    if problem:
        raise r.err(join(path, "url"), f"parse {format_label_value(url)}: {problem}")
    return url


def _unique_names(r: Reader, names: list[str], section: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name and name in seen:
            r.invalid(f"{section}[{i}].name", f'found multiple {what} configs with job name "{name}"')
        seen.add(name)


# remote_write blocks promlab keeps but does not act on: Prometheus's fields and their types.
_QUEUE_FIELDS = {"capacity": "int", "max_shards": "int", "min_shards": "int", "max_samples_per_send": "int",
                 "batch_send_deadline": "duration", "min_backoff": "duration", "max_backoff": "duration",
                 "retry_on_http_429": "bool", "sample_age_limit": "duration"}
_METADATA_FIELDS = {"send": "bool", "send_interval": "duration", "max_samples_per_send": "int"}


def _typed_block(r: Reader, data: Any, path: str, fields: dict[str, str]) -> dict[str, Any]:
    """A mapping of known scalar fields, each checked against its Go type (int, bool, duration)."""
    d = r.mapping(data, path, set(fields))
    for key, kind in fields.items():
        v = d.get(key)
        if v is None:
            continue
        if kind == "duration":
            r.duration(d, key, path)
        elif kind == "bool":
            r.boolean(d, key, path, False)
        else:
            r.integer(d, key, path, gotype="int")
    return dict(d)


def _remote_write(r: Reader, data: Any) -> tuple[RemoteWriteConfig, ...]:
    out = []
    for i, rw in enumerate(r.seq(data, "remote_write")):
        p = f"remote_write[{i}]"
        with r.section():
            out.append(_remote_write_one(r, rw, p))
    return tuple(out)


def _remote_write_one(r: Reader, data: Any, p: str) -> RemoteWriteConfig:
    d = r.mapping(data, p, {"url", "name", "remote_timeout", "headers", "write_relabel_configs",
                            "send_exemplars", "send_native_histograms", "queue_config",
                            "metadata_config"} | HTTP_KEYS, _REMOTE_IGNORED)
    return RemoteWriteConfig(
        url=_remote_url(r, d, p, "remote_write"), name=r.string(d, "name", p),
        remote_timeout_ms=r.duration(d, "remote_timeout", p, 30_000),
        headers=_headers(r, d.get("headers"), join(p, "headers")),
        write_relabel_configs=relabel_configs(r, d.get("write_relabel_configs"), join(p, "write_relabel_configs")),
        send_exemplars=r.boolean(d, "send_exemplars", p, False),
        send_native_histograms=r.boolean(d, "send_native_histograms", p, False),
        queue_config=_typed_block(r, d.get("queue_config"), join(p, "queue_config"), _QUEUE_FIELDS),
        metadata_config=_typed_block(r, d.get("metadata_config"), join(p, "metadata_config"),
                                     _METADATA_FIELDS),
        http=http_client(r, d, p))


def _remote_read(r: Reader, data: Any) -> tuple[RemoteReadConfig, ...]:
    out = []
    for i, rr in enumerate(r.seq(data, "remote_read")):
        p = f"remote_read[{i}]"
        with r.section():
            out.append(_remote_read_one(r, rr, p))
    return tuple(out)


def _remote_read_one(r: Reader, data: Any, p: str) -> RemoteReadConfig:
    d = r.mapping(data, p, {"url", "name", "remote_timeout", "headers", "required_matchers", "read_recent",
                            "filter_external_labels"} | HTTP_KEYS, _REMOTE_IGNORED)
    return RemoteReadConfig(
        url=_remote_url(r, d, p, "remote_read"), name=r.string(d, "name", p),
        remote_timeout_ms=r.duration(d, "remote_timeout", p, 60_000),
        headers=_headers(r, d.get("headers"), join(p, "headers")),
        required_matchers=label_set(r, d.get("required_matchers"), join(p, "required_matchers")),
        read_recent=r.boolean(d, "read_recent", p, False),
        filter_external_labels=r.boolean(d, "filter_external_labels", p, True),
        http=http_client(r, d, p))


def parse(data: Any, *, file: str | None = None) -> Config:
    """Build a :class:`Config` from YAML data (the loaded mapping); ``file`` anchors relative paths."""
    base = str(Path(file).resolve().parent) if file else None
    r = Reader(file, base, data)
    # go-yaml reports every type error of the file at once (r.finish); the file-wide checks of
    # Prometheus's Config.UnmarshalYAML, at the end of the section, only when there was none.
    with r.section():
        d = r.mapping(data, "", {"global", "scrape_configs", "rule_files", "alerting", "remote_write",
                                 "remote_read", "storage"}, {"tracing", "otlp", "runtime"})
        g = _global(r, d.get("global"))
        rule_files: list[str] = []
        for i, rf in enumerate(r.seq(d.get("rule_files"), "rule_files")):
            if isinstance(rf, Mapping | list):
                r.bad_type(f"rule_files[{i}]", "string", f"cannot unmarshal {type(rf).__name__} into string")
                continue
            rule_files.append(str(rf))
        scs: list[ScrapeConfig | None] = [
            None if sc is None else _scrape_config(r, sc, f"scrape_configs[{i}]", g)
            for i, sc in enumerate(r.seq(d.get("scrape_configs"), "scrape_configs"))]
        cfg = Config(global_config=g, scrape_configs=tuple(sc for sc in scs if sc is not None),
                     rule_files=tuple(map(r.file_path, rule_files)), alerting=_alerting(r, d.get("alerting")),
                     remote_write=_remote_write(r, d.get("remote_write")),
                     remote_read=_remote_read(r, d.get("remote_read")), file=file, **_storage(r, d.get("storage")))
        for i, rf in enumerate(rule_files):
            _check_glob(r, rf, f"rule_files[{i}]")
        _check_scrape_configs(r, scs)
        _unique_names(r, [c.name for c in cfg.remote_write], "remote_write", "remote write")
        _unique_names(r, [c.name for c in cfg.remote_read], "remote_read", "remote read")
    r.finish()
    return cfg


def _check_scrape_configs(r: Reader, scs: list[ScrapeConfig | None]) -> None:
    """Config.UnmarshalYAML's checks of each scrape config (the timeout is checked here in 2.42,
    in the scrape config in 3.x: here only type errors anywhere in the file skip it)."""
    seen: set[str] = set()
    for i, sc in enumerate(scs):
        p = f"scrape_configs[{i}]"
        if sc is None:
            r.invalid(p, "empty or null scrape config section")
            continue
        if sc.scrape_timeout_ms > sc.scrape_interval_ms:
            r.invalid(join(p, "scrape_timeout"), "scrape timeout greater than scrape interval for scrape config "
                      f'with job name "{sc.job_name}"')
        if sc.job_name in seen:
            r.invalid(join(p, "job_name"), f'found multiple scrape configs with job name "{sc.job_name}"')
        seen.add(sc.job_name)


def _storage(r: Reader, data: Any) -> dict[str, int]:
    """``storage.tsdb.out_of_order_time_window`` in ms (a ``<duration>``; Prometheus's default 0)
    and ``storage.exemplars.max_exemplars`` (default 100000), as :class:`Config` fields."""
    storage = r.mapping(data, "storage", {"tsdb", "exemplars"})
    ooo_ms = 0
    tsdb = storage.get("tsdb")
    if tsdb is not None:
        tsdb = r.mapping(tsdb, "storage.tsdb", set(tsdb) if isinstance(tsdb, dict) else set())
        ooo_ms = r.duration(tsdb, "out_of_order_time_window", "storage.tsdb")
    ex = r.mapping(storage.get("exemplars"), "storage.exemplars", {"max_exemplars"})
    max_exemplars = 100_000
    if ex.get("max_exemplars") is not None:
        max_exemplars = max(r.integer(ex, "max_exemplars", "storage.exemplars", gotype="int64"), 0)
    return {"out_of_order_time_window_ms": ooo_ms, "max_exemplars": max_exemplars}


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check a ``prometheus.yml`` file.

    Raises
    ------
    ConfigError
        When the file cannot be read, is not YAML, or is not a valid configuration.
    """
    p = str(path)
    # As Prometheus (gopkg.in/yaml.v2) reads it: go-yaml's syntax errors, type errors with lines.
    return parse(load_config_file(p), file=p)


def load_config(config: ConfigSource) -> Config:
    """Accept a parsed :class:`Config`, a dict shaped like ``prometheus.yml`` or a file path.

    Examples
    --------
    >>> cfg = load_config({"global": {"scrape_interval": "15s"}, "scrape_configs": [{"job_name": "a"}]})
    >>> cfg.scrape_configs[0].scrape_interval_ms
    15000
    >>> load_config(cfg) is cfg
    True
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return parse(config)
    return load(config)
