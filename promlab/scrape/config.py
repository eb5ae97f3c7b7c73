"""The ``prometheus.yml`` model: frozen dataclasses, defaults and checks as in Prometheus.

:func:`load` reads a file, :func:`load_config` accepts a path, a dict or a :class:`Config`.
Every problem raises :class:`~promlab.errors.ConfigError` with the file and the key path
(``scrape_configs[0].relabel_configs[1].action``). Keys Prometheus knows but promlab does not act
on (``remote_write``, ``oauth2``, other service discoveries, ...) are accepted and logged.
Relative file names are resolved against the config file's directory, as Prometheus does.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from promlab.errors import ConfigError
from promlab.model import Labels
from promlab.scrape.configmodel import (
    AlertingConfig,
    AlertmanagerConfig,
    Authorization,
    BasicAuth,
    Config,
    FileSDConfig,
    GlobalConfig,
    HTTPClientConfig,
    HTTPSDConfig,
    ScrapeConfig,
    StaticConfig,
    TLSConfig,
)
from promlab.scrape.relabel import RelabelConfig, is_valid_label_name

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
    "load",
    "load_config",
    "parse_config_duration",
    "parse_size",
]

log = logging.getLogger("promlab.scrape.config")

_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z")
_DURATION_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
_SIZE = re.compile(r"(\d+)([A-Za-z]+)\Z")
_SIZE_UNITS = {"B": 0, "KB": 1, "KIB": 1, "MB": 2, "MIB": 2, "GB": 3, "GIB": 3, "TB": 4, "TIB": 4,
               "PB": 5, "PIB": 5, "EB": 6, "EIB": 6}
_SD_IGNORED = {f"{k}_sd_configs" for k in (
    "azure", "consul", "digitalocean", "docker", "dockerswarm", "dns", "ec2", "eureka", "gce",
    "hetzner", "ionos", "kubernetes", "kuma", "lightsail", "linode", "marathon", "nerve", "nomad",
    "openstack", "ovhcloud", "puppetdb", "scaleway", "serverset", "triton", "uyuni", "vultr")}
_HTTP_IGNORED = {"oauth2", "follow_redirects", "enable_http2", "proxy_url", "no_proxy",
                 "proxy_from_environment", "proxy_connect_header"}


def parse_config_duration(text: Any) -> int:
    """A Prometheus config duration (``1h30m``, ``15s``, ``0``) in ms; ValueError if malformed."""
    if not isinstance(text, str) or text == "":
        raise ValueError(f"not a valid duration string: {text!r}")
    if text == "0":
        return 0
    m = _DURATION.match(text)
    if m is None or not any(m.groups()):
        raise ValueError(f'not a valid duration string: "{text}"')
    return sum(int(g) * u for g, u in zip(m.groups(), _DURATION_MS, strict=True) if g)


def parse_size(text: Any) -> int:
    """A ``<size>`` (``512MB``; units are powers of 1024 as in Prometheus) in bytes."""
    m = _SIZE.match(str(text).strip())
    if m is None:
        raise ValueError(f"units: unknown unit  in {text}")
    unit = m.group(2)
    if unit.upper() not in _SIZE_UNITS or unit not in (unit.upper(), unit[:-2].upper() + "iB"):
        raise ValueError(f"units: unknown unit {unit} in {text}")
    return int(m.group(1)) * int(1024 ** _SIZE_UNITS[unit.upper()])


class _Reader:
    """Walks the YAML tree with a key path, rejecting unknown keys and wrong types."""

    def __init__(self, file: str | None, base_dir: str | None) -> None:
        self.file = file
        self.base_dir = base_dir

    def err(self, path: str, reason: str) -> ConfigError:
        return ConfigError(reason, file=self.file, path=path or None)

    def mapping(self, data: Any, path: str, known: set[str], ignored: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.err(path, f"expected a mapping, got {type(data).__name__}")
        for k in data:
            if k in ignored:
                log.warning("%s: %s is not supported by promlab and is ignored", path or "config", k)
            elif k not in known:
                raise self.err(_join(path, str(k)), f"field {k} not found")
        return {k: v for k, v in data.items() if k in known}

    def seq(self, data: Any, path: str) -> list[Any]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise self.err(path, f"expected a list, got {type(data).__name__}")
        return data

    def string(self, data: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        v = data.get(key)
        if v is None:
            return default
        if isinstance(v, Mapping | list):
            raise self.err(_join(path, key), f"cannot unmarshal {type(v).__name__} into string")
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        v = data.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.err(_join(path, key), f"cannot unmarshal {v!r} into bool")
        return v

    def uint(self, data: Mapping[str, Any], key: str, path: str) -> int:
        v = data.get(key)
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.err(_join(path, key), f"cannot unmarshal {v!r} into uint")
        return v

    def duration(self, data: Mapping[str, Any], key: str, path: str, default: int = 0) -> int:
        v = data.get(key)
        if v is None:
            return default
        try:
            return parse_config_duration(v if isinstance(v, str) else str(v) if not isinstance(v, int) else f"{v}")
        except ValueError as exc:
            raise self.err(_join(path, key), str(exc)) from None

    def file_path(self, p: str) -> str:
        if not p or os.path.isabs(p) or self.base_dir is None:
            return p
        return os.path.join(self.base_dir, p)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _http_client(r: _Reader, d: dict[str, Any], path: str) -> HTTPClientConfig:
    basic = None
    if d.get("basic_auth") is not None:
        p = _join(path, "basic_auth")
        b = r.mapping(d["basic_auth"], p, {"username", "password", "password_file"})
        basic = BasicAuth(r.string(b, "username", p), r.string(b, "password", p),
                          r.file_path(r.string(b, "password_file", p)))
        if basic.password and basic.password_file:
            raise r.err(p, "at most one of basic_auth password & password_file must be configured")
    bearer = r.string(d, "bearer_token", path)
    bearer_file = r.string(d, "bearer_token_file", path)
    if bearer and bearer_file:
        raise r.err(path, "at most one of bearer_token & bearer_token_file must be configured")
    if basic is not None and (bearer or bearer_file):
        raise r.err(path, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured")
    auth = None
    if d.get("authorization") is not None:
        p = _join(path, "authorization")
        a = r.mapping(d["authorization"], p, {"type", "credentials", "credentials_file"})
        if bearer or bearer_file:
            raise r.err(p, "authorization is not compatible with bearer_token & bearer_token_file")
        if basic is not None:
            raise r.err(p, "at most one of basic_auth, oauth2 & authorization must be configured")
        auth = Authorization(r.string(a, "type", p, "Bearer") or "Bearer", r.string(a, "credentials", p),
                             r.file_path(r.string(a, "credentials_file", p)))
        if auth.type.strip().lower() == "basic":
            raise r.err(p, 'authorization type cannot be set to "basic", use "basic_auth" instead')
        if auth.credentials and auth.credentials_file:
            raise r.err(p, "at most one of authorization credentials & credentials_file must be configured")
    elif bearer or bearer_file:
        auth = Authorization("Bearer", bearer, r.file_path(bearer_file))
    tls = TLSConfig()
    if d.get("tls_config") is not None:
        p = _join(path, "tls_config")
        t = r.mapping(d["tls_config"], p, {"ca_file", "cert_file", "key_file", "server_name",
                                           "insecure_skip_verify"}, {"min_version", "max_version"})
        tls = TLSConfig(r.file_path(r.string(t, "ca_file", p)), r.file_path(r.string(t, "cert_file", p)),
                        r.file_path(r.string(t, "key_file", p)), r.string(t, "server_name", p),
                        r.boolean(t, "insecure_skip_verify", p, False))
        if bool(tls.cert_file) != bool(tls.key_file):
            raise r.err(p, "exactly one of key or key_file must be configured when a client certificate is configured")
    return HTTPClientConfig(basic, auth, tls, r.boolean(d, "follow_redirects", path, True))


_HTTP_KEYS = {"basic_auth", "authorization", "bearer_token", "bearer_token_file", "tls_config", "follow_redirects"}


def _label_set(r: _Reader, data: Any, path: str) -> Labels:
    m = r.mapping(data, path, set(data) if isinstance(data, Mapping) else set())
    out = {}
    for k, v in m.items():
        if not isinstance(k, str) or not is_valid_label_name(k):
            raise r.err(_join(path, str(k)), f"{k!r} is not a valid label name")
        out[k] = "" if v is None else r.string(m, k, path)
    return Labels(out)


def _static(r: _Reader, data: Any, path: str) -> tuple[StaticConfig, ...]:
    out = []
    for i, sc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        s = r.mapping(sc, p, {"targets", "labels"})
        targets = []
        for j, t in enumerate(r.seq(s.get("targets"), _join(p, "targets"))):
            t = str(t)
            if "/" in t:
                raise r.err(f"{p}.targets[{j}]", f'"{t}" is not a valid hostname')
            targets.append(t)
        out.append(StaticConfig(tuple(targets), _label_set(r, s.get("labels"), _join(p, "labels"))))
    return tuple(out)


def _file_sd(r: _Reader, data: Any, path: str) -> tuple[FileSDConfig, ...]:
    out = []
    for i, fc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        f = r.mapping(fc, p, {"files", "refresh_interval"})
        files = [str(x) for x in r.seq(f.get("files"), _join(p, "files"))]
        if not files:
            raise r.err(p, "file service discovery config must contain at least one path name")
        for name in files:
            if not name.endswith((".json", ".yml", ".yaml")):
                raise r.err(_join(p, "files"), f'path name "{name}" is not valid for file discovery')
        out.append(FileSDConfig(tuple(r.file_path(x) for x in files),
                                r.duration(f, "refresh_interval", p, 300_000) or 300_000))
    return tuple(out)


def _http_sd(r: _Reader, data: Any, path: str) -> tuple[HTTPSDConfig, ...]:
    out = []
    for i, hc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        h = r.mapping(hc, p, {"url", "refresh_interval"} | _HTTP_KEYS, _HTTP_IGNORED - {"follow_redirects"})
        url = r.string(h, "url", p)
        if not url:
            raise r.err(p, "URL is missing")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise r.err(_join(p, "url"), "URL scheme must be 'http' or 'https'")
        if not parts.hostname:
            raise r.err(_join(p, "url"), "host is missing in URL")
        out.append(HTTPSDConfig(url, r.duration(h, "refresh_interval", p, 60_000) or 60_000,
                                _http_client(r, h, p)))
    return tuple(out)


def _relabels(r: _Reader, data: Any, path: str) -> tuple[RelabelConfig, ...]:
    out = []
    for i, rc in enumerate(r.seq(data, path)):
        if rc is None:
            raise r.err(f"{path}[{i}]", "empty or null relabeling rule")
        out.append(RelabelConfig.from_dict(rc, file=r.file, path=f"{path}[{i}]"))
    return tuple(out)


_SCRAPE_KEYS = {
    "job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params", "honor_labels",
    "honor_timestamps", "static_configs", "file_sd_configs", "http_sd_configs", "relabel_configs",
    "metric_relabel_configs", "sample_limit", "label_limit", "label_name_length_limit",
    "label_value_length_limit", "target_limit", "body_size_limit",
} | _HTTP_KEYS


def _scrape_config(r: _Reader, data: Any, path: str, g: GlobalConfig) -> ScrapeConfig:
    if data is None:
        raise r.err(path, "empty or null scrape config section")
    d = r.mapping(data, path, _SCRAPE_KEYS, (_HTTP_IGNORED - {"follow_redirects"}) | _SD_IGNORED)
    job = r.string(d, "job_name", path)
    if not job:
        raise r.err(_join(path, "job_name"), "job_name is empty")
    interval = r.duration(d, "scrape_interval", path) or g.scrape_interval_ms
    timeout = r.duration(d, "scrape_timeout", path)
    if timeout > interval:
        raise r.err(_join(path, "scrape_timeout"),
                    f'scrape timeout greater than scrape interval for scrape config with job name "{job}"')
    if timeout == 0:
        timeout = min(g.scrape_timeout_ms, interval)
    params: dict[str, tuple[str, ...]] = {}
    pp = _join(path, "params")
    for k, v in r.mapping(d.get("params"), pp, set(d.get("params") or ())).items():
        if not isinstance(v, list):
            raise r.err(_join(pp, str(k)), f"cannot unmarshal {v!r} into []string")
        params[str(k)] = tuple(str(x) for x in v)
    body = d.get("body_size_limit")
    try:
        body_limit = parse_size(body) if body is not None else 0
    except ValueError as exc:
        raise r.err(_join(path, "body_size_limit"), str(exc)) from None
    return ScrapeConfig(
        job_name=job, scrape_interval_ms=interval, scrape_timeout_ms=timeout,
        metrics_path=r.string(d, "metrics_path", path, "/metrics") or "/metrics",
        scheme=r.string(d, "scheme", path, "http") or "http",
        params=params,
        honor_labels=r.boolean(d, "honor_labels", path, False),
        honor_timestamps=r.boolean(d, "honor_timestamps", path, True),
        static_configs=_static(r, d.get("static_configs"), _join(path, "static_configs")),
        file_sd_configs=_file_sd(r, d.get("file_sd_configs"), _join(path, "file_sd_configs")),
        http_sd_configs=_http_sd(r, d.get("http_sd_configs"), _join(path, "http_sd_configs")),
        relabel_configs=_relabels(r, d.get("relabel_configs"), _join(path, "relabel_configs")),
        metric_relabel_configs=_relabels(r, d.get("metric_relabel_configs"), _join(path, "metric_relabel_configs")),
        http=_http_client(r, d, path),
        sample_limit=r.uint(d, "sample_limit", path), label_limit=r.uint(d, "label_limit", path),
        label_name_length_limit=r.uint(d, "label_name_length_limit", path),
        label_value_length_limit=r.uint(d, "label_value_length_limit", path),
        target_limit=r.uint(d, "target_limit", path), body_size_limit=body_limit,
    )


def _global(r: _Reader, data: Any) -> GlobalConfig:
    p = "global"
    d = r.mapping(data, p, {"scrape_interval", "scrape_timeout", "evaluation_interval", "external_labels",
                            "query_log_file"})
    interval = r.duration(d, "scrape_interval", p) or 60_000
    timeout = r.duration(d, "scrape_timeout", p)
    if timeout > interval:
        raise r.err(_join(p, "scrape_timeout"), "global scrape timeout greater than scrape interval")
    if timeout == 0:
        timeout = min(10_000, interval)
    return GlobalConfig(interval, timeout, r.duration(d, "evaluation_interval", p) or 60_000,
                        _label_set(r, d.get("external_labels"), _join(p, "external_labels")),
                        r.file_path(r.string(d, "query_log_file", p)))


def _alerting(r: _Reader, data: Any) -> AlertingConfig:
    d = r.mapping(data, "alerting", {"alert_relabel_configs", "alertmanagers"})
    ams = []
    for i, am in enumerate(r.seq(d.get("alertmanagers"), "alerting.alertmanagers")):
        p = f"alerting.alertmanagers[{i}]"
        a = r.mapping(am, p, {"scheme", "path_prefix", "timeout", "api_version", "static_configs",
                              "file_sd_configs", "http_sd_configs", "relabel_configs"} | _HTTP_KEYS,
                      (_HTTP_IGNORED - {"follow_redirects"}) | _SD_IGNORED | {"sigv4"})
        version = r.string(a, "api_version", p, "v2") or "v2"
        if version not in ("v1", "v2"):
            raise r.err(_join(p, "api_version"), f"expected Alertmanager api version to be one of [v1 v2] but got {version}")
        ams.append(AlertmanagerConfig(
            scheme=r.string(a, "scheme", p, "http") or "http", path_prefix=r.string(a, "path_prefix", p, "/") or "/",
            timeout_ms=r.duration(a, "timeout", p, 10_000) or 10_000, api_version=version,
            static_configs=_static(r, a.get("static_configs"), _join(p, "static_configs")),
            file_sd_configs=_file_sd(r, a.get("file_sd_configs"), _join(p, "file_sd_configs")),
            http_sd_configs=_http_sd(r, a.get("http_sd_configs"), _join(p, "http_sd_configs")),
            relabel_configs=_relabels(r, a.get("relabel_configs"), _join(p, "relabel_configs")),
            http=_http_client(r, a, p)))
    return AlertingConfig(_relabels(r, d.get("alert_relabel_configs"), "alerting.alert_relabel_configs"),
                          tuple(ams))


def _check_glob(r: _Reader, pattern: str, path: str) -> None:
    # Go's filepath.Match rejects unbalanced brackets and a trailing backslash.
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
            if i >= len(pattern):
                raise r.err(path, "syntax error in pattern")
        elif c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                raise r.err(path, "syntax error in pattern")
            depth -= 1
        i += 1
    if depth:
        raise r.err(path, "syntax error in pattern")


def parse(data: Any, *, file: str | None = None) -> Config:
    """Build a :class:`Config` from YAML data (the loaded mapping)."""
    base = str(Path(file).resolve().parent) if file else None
    r = _Reader(file, base)
    d = r.mapping(data, "", {"global", "scrape_configs", "rule_files", "alerting"},
                  {"remote_write", "remote_read", "storage", "tracing"})
    g = _global(r, d.get("global"))
    rule_files = []
    for i, rf in enumerate(r.seq(d.get("rule_files"), "rule_files")):
        _check_glob(r, str(rf), f"rule_files[{i}]")
        rule_files.append(r.file_path(str(rf)))
    scs: list[ScrapeConfig] = []
    seen: set[str] = set()
    for i, sc in enumerate(r.seq(d.get("scrape_configs"), "scrape_configs")):
        cfg = _scrape_config(r, sc, f"scrape_configs[{i}]", g)
        if cfg.job_name in seen:
            raise r.err(f"scrape_configs[{i}].job_name",
                        f'found multiple scrape configs with job name "{cfg.job_name}"')
        seen.add(cfg.job_name)
        scs.append(cfg)
    return Config(g, tuple(scs), tuple(rule_files), _alerting(r, d.get("alerting")), file)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check a ``prometheus.yml`` file."""
    p = str(path)
    try:
        with open(p, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc}", file=p) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=p) from exc
    return parse(data, file=p)


def load_config(config: Config | Mapping[str, Any] | str | os.PathLike[str]) -> Config:
    """Accept a parsed :class:`Config`, a dict shaped like ``prometheus.yml`` or a file path."""
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return parse(config)
    return load(config)
