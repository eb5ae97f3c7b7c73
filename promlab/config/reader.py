"""Reading YAML sections shared by several parts of ``prometheus.yml``.

:class:`Reader` walks the loaded YAML with a key path so that every problem becomes a
:class:`~promlab.errors.ConfigError` naming the file and the key
(``scrape_configs[0].relabel_configs[1].action``). The functions below read the blocks that
scrape configs, Alertmanager configs and remote write/read share: HTTP client settings, static
and file/HTTP discovery, label sets and relabel rules.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import yaml

from promlab.config.gotypes import go_type_of
from promlab.config.goyaml import go_yaml_desc, go_yaml_int, go_yaml_tag
from promlab.config.model import (
    Authorization,
    BasicAuth,
    FileSDConfig,
    HTTPClientConfig,
    HTTPSDConfig,
    StaticConfig,
    TLSConfig,
)
from promlab.config.relabel import RelabelConfig
from promlab.config.yamlfile import YamlMap, node_of, unmarshal_error
from promlab.errors import ConfigError
from promlab.model import Labels
from promlab.model.labels import format_label_value, is_valid_label_name
from promlab.model.time import parse_go_duration, parse_size

__all__ = [
    "HTTP_IGNORED",
    "HTTP_KEYS",
    "SD_IGNORED",
    "Reader",
    "check_static_targets",
    "file_sd_configs",
    "http_client",
    "http_sd_configs",
    "join",
    "label_set",
    "relabel_configs",
    "static_configs",
    "url_problem",
]

log = logging.getLogger("promlab.config")

SD_IGNORED = {f"{k}_sd_configs" for k in (
    "azure", "consul", "digitalocean", "docker", "dockerswarm", "dns", "ec2", "eureka", "gce",
    "hetzner", "ionos", "kubernetes", "kuma", "lightsail", "linode", "marathon", "nerve", "nomad",
    "openstack", "ovhcloud", "puppetdb", "scaleway", "serverset", "triton", "uyuni", "vultr")}
HTTP_IGNORED = {"oauth2", "follow_redirects", "enable_http2", "proxy_url", "no_proxy",
                "proxy_from_environment", "proxy_connect_header"}


_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")
_TRUE_V2 = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_MAP_TYPES = ("map[", "model.LabelSet", "url.Values")


def _go_quote_key(key: Any) -> str:
    if isinstance(key, str):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(key)


class Reader:
    """Walks the YAML tree with a key path, rejecting unknown keys and wrong types.

    ``file`` names the config file in errors; relative paths are resolved against ``base_dir``.
    ``root`` is the loaded document: when it came from a file (:class:`YamlMap` nodes), type
    errors, unknown and repeated keys are worded as go-yaml words them for Prometheus
    (``yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `abc` into uint``).
    """

    def __init__(self, file: str | None, base_dir: str | None, root: Any = None) -> None:
        self.file = file
        self.base_dir = base_dir
        self.root = root
        # go-yaml goes on decoding after a type error and reports them all at the end; an error
        # of another kind (a bad duration, regex, action) stops it and is the only one reported.
        # From a file, type errors are collected here as (line, problem, key path).
        self.collect = isinstance(root, YamlMap)
        self.type_errors: list[tuple[int, str, str]] = []
        self._sections: list[tuple[int, list[ConfigError]]] = []

    def err(self, path: str, reason: str) -> ConfigError:
        return ConfigError(reason, file=self.file, path=path or None)

    @contextmanager
    def section(self) -> Iterator[None]:
        """A part Prometheus decodes with an ``UnmarshalYAML`` of its own, which validates it
        once its fields are decoded, and only when none had a type error: the problems
        :meth:`invalid` notes inside are raised (the first) when the part is read, and dropped
        after a type error in it."""
        pending: list[ConfigError] = []
        self._sections.append((len(self.type_errors), pending))
        try:
            yield
        finally:
            mark, _ = self._sections.pop()
        if pending and len(self.type_errors) == mark:
            raise pending[0]

    def invalid(self, path: str, reason: str) -> None:
        """Note a validation problem of the innermost :meth:`section` (raised at once outside
        of one)."""
        if not self._sections:
            raise self.err(path, reason)
        self._sections[-1][1].append(self.err(path, reason))

    def finish(self) -> None:
        """Raise the collected type errors together, in document order, as go-yaml does."""
        if self.type_errors:
            problems = sorted(self.type_errors, key=lambda p: p[0])
            body = "\n  ".join(f"line {line}: {text}" for line, text, _ in problems)
            raise ConfigError(f"yaml: unmarshal errors:\n  {body}", file=self.file,
                              path=problems[0][2] or None, line=problems[0][0])

    def bad_type(self, path: str, gotype: str | None, fallback: str) -> None:
        """A value of the wrong type at ``path``: collected when it came from a file (the caller
        goes on with the field's zero value), raised otherwise."""
        node = self.node_at(path)
        if node is None or gotype is None or not self.collect:
            raise self.type_error(path, gotype, fallback)
        self.type_errors.append((node.start_mark.line + 1,
                                 f"cannot unmarshal {go_yaml_desc(node, version='v2')} into {gotype}", path))

    def node_at(self, path: str) -> yaml.Node | None:
        """The node the value at key path ``path`` was loaded from, if it came from a file."""
        container: Any = self.root
        node = None
        for m in _PATH_PART.finditer(path):
            key: Any = int(m.group(1)) if m.group(1) is not None else m.group(2)
            node = node_of(container, key)
            if node is None:
                return None
            try:
                container = container[key]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def type_error(self, path: str, gotype: str | None, fallback: str) -> ConfigError:
        """go-yaml's ``cannot unmarshal <tag> `text` into <gotype>`` with the value's line, or
        ``fallback`` when the value did not come from a file."""
        node = self.node_at(path)
        if node is None or gotype is None:
            return self.err(path, fallback)
        return unmarshal_error(node.start_mark.line + 1,
                               f"cannot unmarshal {go_yaml_desc(node, version='v2')} into {gotype}",
                               file=self.file, path=path or None)

    def mapping(self, data: Any, path: str, known: set[str], ignored: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if data is None:
            return {}
        gotype = go_type_of(path)
        if not isinstance(data, Mapping):
            self.bad_type(path, gotype, f"expected a mapping, got {type(data).__name__}")
            return {}
        problems: list[tuple[int, str, str]] = []
        lines = data.key_lines if isinstance(data, YamlMap) else {}
        for k in data:
            if k in ignored:
                log.warning("%s: %s is not supported by promlab and is ignored", path or "config", k)
            elif k not in known:
                if gotype is None or k not in lines:
                    raise self.err(join(path, str(k)), f"field {k} not found")
                problems.append((lines[k], f"field {k} not found in type {gotype}", str(k)))
        if isinstance(data, YamlMap) and gotype is not None:
            for k, line in data.dups:
                problems.append((line, f"key {_go_quote_key(k)} already set in map"
                                 if gotype.startswith(_MAP_TYPES)
                                 else f"field {k} already set in type {gotype}", str(k)))
        if problems:
            self.type_errors.extend((line, text, join(path, key)) for line, text, key in problems)
            if not self.collect:
                self.finish()
        if isinstance(data, YamlMap):
            return data.subset(known)
        return {k: v for k, v in data.items() if k in known}

    def seq(self, data: Any, path: str) -> list[Any]:
        if data is None:
            return []
        if not isinstance(data, list):
            self.bad_type(path, go_type_of(path), f"expected a list, got {type(data).__name__}")
            return []
        return data

    def _scalar_text(self, data: Mapping[str, Any], key: str, v: Any) -> str:
        node = node_of(data, key)
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)  # go-yaml gives a string field the scalar's text
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    def string(self, data: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        v = data.get(key)
        if v is None:
            return default
        if isinstance(v, Mapping | list):
            self.bad_type(join(path, key), "string", f"cannot unmarshal {type(v).__name__} into string")
            return default
        return self._scalar_text(data, key, v)

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        v = data.get(key)
        if v is None:
            return default
        node = node_of(data, key)
        if node is not None:
            if go_yaml_tag(node, version="v2") != "!!bool":
                self.bad_type(join(path, key), "bool", "")
                return default
            return str(node.value) in _TRUE_V2
        if not isinstance(v, bool):
            raise self.err(join(path, key), f"cannot unmarshal {v!r} into bool")
        return v

    def integer(self, data: Mapping[str, Any], key: str, path: str, *, gotype: str = "uint") -> int:
        """An integer field of Go type ``gotype`` (``uint``, ``int``, ``int64``); 0 when absent.
        A float is truncated, as go-yaml does."""
        v = data.get(key)
        if v is None:
            return 0
        node = node_of(data, key)
        n = go_yaml_int(node) if isinstance(node, yaml.ScalarNode) else (
            None if isinstance(v, bool) or not isinstance(v, int) else v)
        if n is None or (gotype.startswith("uint") and n < 0):
            self.bad_type(join(path, key), gotype, f"cannot unmarshal {v!r} into {gotype}")
            return 0
        return n

    def uint(self, data: Mapping[str, Any], key: str, path: str) -> int:
        return self.integer(data, key, path, gotype="uint")

    def duration(self, data: Mapping[str, Any], key: str, path: str, default: int = 0) -> int:
        v = data.get(key)
        if v is None:
            return default
        if isinstance(v, Mapping | list):
            self.bad_type(join(path, key), "string", f"cannot unmarshal {type(v).__name__} into string")
            return default
        try:
            return parse_go_duration(self._scalar_text(data, key, v))
        except ValueError as exc:
            raise self.err(join(path, key), str(exc)) from None

    def size(self, data: Mapping[str, Any], key: str, path: str) -> int:
        """A ``<size>`` (``512MB``) in bytes; 0 when absent."""
        v = data.get(key)
        if v is None:
            return 0
        try:
            return parse_size(str(v))
        except ValueError as exc:
            raise self.err(join(path, key), str(exc)) from None

    def file_path(self, p: str) -> str:
        if not p or os.path.isabs(p) or self.base_dir is None:
            return p
        return os.path.join(self.base_dir, p)


_HOST_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"%")


def url_problem(url: str) -> str | None:
    """Why Go's ``url.Parse`` (and so Prometheus) refuses ``url``, or None: control characters,
    a character not allowed in a host name, a port that is not a number."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "net/url: invalid control character in URL"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed '[' (Go: "missing ']' in host")
        return "missing ']' in host"
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):
        if "]" not in host:
            return "missing ']' in host"
        port = host[host.find("]") + 1:]
    else:
        for c in host:
            if c < "\x80" and c not in _HOST_OK:
                return f"invalid character {format_label_value(c)} in host name"
        port = host[host.rfind(":"):] if ":" in host else ""
    if port and (port[0] != ":" or (not port[1:].isdigit() and port != ":")):
        return f"invalid port {format_label_value(port)} after host"
    return None


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def http_client(r: Reader, d: dict[str, Any], path: str) -> HTTPClientConfig:
    basic = None
    if d.get("basic_auth") is not None:
        p = join(path, "basic_auth")
        b = r.mapping(d["basic_auth"], p, {"username", "password", "password_file"})
        basic = BasicAuth(r.string(b, "username", p), r.string(b, "password", p),
                          r.file_path(r.string(b, "password_file", p)))
        if basic.password and basic.password_file:
            r.invalid(p, "at most one of basic_auth password & password_file must be configured")
    bearer = r.string(d, "bearer_token", path)
    bearer_file = r.string(d, "bearer_token_file", path)
    if bearer and bearer_file:
        r.invalid(path, "at most one of bearer_token & bearer_token_file must be configured")
    if basic is not None and (bearer or bearer_file):
        r.invalid(path, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured")
    auth = None
    if d.get("authorization") is not None:
        p = join(path, "authorization")
        a = r.mapping(d["authorization"], p, {"type", "credentials", "credentials_file"})
        if bearer or bearer_file:
            r.invalid(p, "authorization is not compatible with bearer_token & bearer_token_file")
        if basic is not None:
            r.invalid(p, "at most one of basic_auth, oauth2 & authorization must be configured")
        auth = Authorization(r.string(a, "type", p, "Bearer") or "Bearer", r.string(a, "credentials", p),
                             r.file_path(r.string(a, "credentials_file", p)))
        if auth.type.strip().lower() == "basic":
            r.invalid(p, 'authorization type cannot be set to "basic", use "basic_auth" instead')
        if auth.credentials and auth.credentials_file:
            r.invalid(p, "at most one of authorization credentials & credentials_file must be configured")
    elif bearer or bearer_file:
        auth = Authorization("Bearer", bearer, r.file_path(bearer_file))
    tls = TLSConfig()
    if d.get("tls_config") is not None:
        p = join(path, "tls_config")
        t = r.mapping(d["tls_config"], p, {"ca_file", "cert_file", "key_file", "server_name",
                                           "insecure_skip_verify"}, {"min_version", "max_version"})
        tls = TLSConfig(ca_file=r.file_path(r.string(t, "ca_file", p)),
                        cert_file=r.file_path(r.string(t, "cert_file", p)),
                        key_file=r.file_path(r.string(t, "key_file", p)), server_name=r.string(t, "server_name", p),
                        insecure_skip_verify=r.boolean(t, "insecure_skip_verify", p, False))
        if bool(tls.cert_file) != bool(tls.key_file):
            r.invalid(p, "exactly one of key or key_file must be configured when a client certificate is configured")
    return HTTPClientConfig(basic_auth=basic, authorization=auth, tls_config=tls,
                            follow_redirects=r.boolean(d, "follow_redirects", path, True))


HTTP_KEYS = {"basic_auth", "authorization", "bearer_token", "bearer_token_file", "tls_config", "follow_redirects"}


def label_set(r: Reader, data: Any, path: str) -> Labels:
    out = {}
    with r.section():  # model.LabelSet checks its names once decoded
        m = r.mapping(data, path, set(data) if isinstance(data, Mapping) else set())
        for k, v in m.items():
            if not isinstance(k, str) or not is_valid_label_name(k):
                r.invalid(join(path, str(k)), f"{format_label_value(str(k))} is not a valid label name")
                continue
            out[k] = "" if v is None else r.string(m, k, path)
    return Labels(out)


def static_configs(r: Reader, data: Any, path: str) -> tuple[StaticConfig, ...]:
    out = []
    for i, sc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        s = r.mapping(sc, p, {"targets", "labels"})
        targets = []
        for j, t in enumerate(r.seq(s.get("targets"), join(p, "targets"))):
            if isinstance(t, Mapping | list):
                r.bad_type(f"{p}.targets[{j}]", "string", f"cannot unmarshal {type(t).__name__} into string")
                continue
            targets.append("" if t is None else str(t))  # go-yaml: a null target is ""
        out.append(StaticConfig(tuple(targets), label_set(r, s.get("labels"), join(p, "labels"))))
    return tuple(out)


def check_static_targets(r: Reader, static: tuple[StaticConfig, ...], relabel: tuple[RelabelConfig, ...],
                         path: str) -> None:
    """Prometheus's check for URLs in static targets, made by the scrape or Alertmanager config
    that holds them, and only when it has no ``relabel_configs`` (which may mend the address)."""
    if relabel:
        return
    for i, sc in enumerate(static):
        for j, t in enumerate(sc.targets):
            if "/" in t:
                r.invalid(f"{path}[{i}].targets[{j}]", f'"{t}" is not a valid hostname')


def file_sd_configs(r: Reader, data: Any, path: str) -> tuple[FileSDConfig, ...]:
    out = []
    for i, fc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        with r.section():
            f = r.mapping(fc, p, {"files", "refresh_interval"})
            files = [str(x) for x in r.seq(f.get("files"), join(p, "files"))]
            refresh_ms = r.duration(f, "refresh_interval", p, 300_000) or 300_000
            if not files:
                r.invalid(p, "file service discovery config must contain at least one path name")
            for name in files:
                if not name.endswith((".json", ".yml", ".yaml")):
                    r.invalid(join(p, "files"), f'path name "{name}" is not valid for file discovery')
        out.append(FileSDConfig(tuple(r.file_path(x) for x in files), refresh_ms))
    return tuple(out)


def http_sd_configs(r: Reader, data: Any, path: str) -> tuple[HTTPSDConfig, ...]:
    out = []
    for i, hc in enumerate(r.seq(data, path)):
        p = f"{path}[{i}]"
        with r.section():
            h = r.mapping(hc, p, {"url", "refresh_interval"} | HTTP_KEYS, HTTP_IGNORED - {"follow_redirects"})
            url = r.string(h, "url", p)
            refresh_ms = r.duration(h, "refresh_interval", p, 60_000) or 60_000
            problem = url_problem(url)
            if not url:
                r.invalid(p, "URL is missing")
            elif problem:
                r.invalid(join(p, "url"), f"parse {format_label_value(url)}: {problem}")
            elif urlsplit(url).scheme not in ("http", "https"):
                r.invalid(join(p, "url"), "URL scheme must be 'http' or 'https'")
            elif not urlsplit(url).hostname:
                r.invalid(join(p, "url"), "host is missing in URL")
            http = http_client(r, h, p)
        out.append(HTTPSDConfig(url, refresh_ms, http))
    return tuple(out)


def relabel_configs(r: Reader, data: Any, path: str) -> tuple[RelabelConfig, ...]:
    out = []
    for i, rc in enumerate(r.seq(data, path)):
        if rc is None:
            raise r.err(f"{path}[{i}]", "empty or null relabeling rule")
        if not isinstance(rc, Mapping):
            r.bad_type(f"{path}[{i}]", "relabel.plain", "relabel config must be a mapping")
            continue
        out.append(RelabelConfig.from_dict(rc, file=r.file, path=f"{path}[{i}]",
                                           type_errors=r.type_errors if r.collect else None))
    return tuple(out)
