"""What ``promtool check config`` checks in a loaded ``prometheus.yml`` beyond its syntax.

:func:`referenced_files` expands ``rule_files`` and checks that the files a configuration names
exist: rule files given without ``*``, authorization credentials (``bearer_token_file`` too) and
client certificates and keys of scrape configs. File discovery files are only listed (a missing
one is a warning): reading their target groups needs discovery and scrape, above this package.

Paths are shown as Prometheus shows them, joined to the directory of the config file as it was
named (``rules.yml`` for ``prometheus.yml``, ``/etc/prometheus/rules.yml`` for
``/etc/prometheus/prometheus.yml``), although :class:`Config` holds them resolved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from promlab.config.goglob import BadPattern, go_glob
from promlab.config.model import Config, FileSDConfig
from promlab.errors import ConfigError

__all__ = ["ReferencedFiles", "referenced_files"]


@dataclass
class ReferencedFiles:
    """The files a configuration names, as :func:`referenced_files` found them.

    ``rule_files``: the rule files to check, in order (as shown). ``file_sd``: by job name, the
    scrape config's discovery files in order, each as found and its pattern as shown, or None
    and a ``WARNING:`` line for a pattern that matches nothing (promtool prints it when it gets
    there). ``warnings``: those of Alertmanager configs, which promtool checks last.
    """

    rule_files: list[str] = field(default_factory=list)
    file_sd: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Shown:
    """Paths resolved against the config's directory, shown joined to the directory as named."""

    def __init__(self, config_file: str) -> None:
        self.named_dir = os.path.dirname(config_file)
        self.resolved_dir = str(Path(config_file).resolve().parent)

    def __call__(self, path: str) -> str:
        rel = os.path.relpath(path, self.resolved_dir) if os.path.isabs(path) else path
        if rel.startswith(os.pardir) or os.path.isabs(rel):
            return path
        return os.path.normpath(os.path.join(self.named_dir, rel))


def _stat(what: str, path: str, shown: str) -> None:
    if path and not os.path.exists(path):
        raise ConfigError(f'error checking {what} "{shown}": stat {shown}: no such file or directory')


def _glob(pattern: str) -> list[str]:
    try:
        return go_glob(pattern)
    except BadPattern as exc:
        raise ConfigError(str(exc)) from None


def _sd_files(configs: tuple[FileSDConfig, ...], shown: _Shown, owner: str) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for sd in configs:
        for pattern in sd.files:
            matches = _glob(pattern)
            if not matches:
                found.append((None, f'  WARNING: file "{shown(pattern)}" for file_sd in {owner} does not exist'))
            found += [(m, shown(pattern)) for m in matches]
    return found


def referenced_files(cfg: Config, config_file: str, *, syntax_only: bool = False) -> ReferencedFiles:
    """Expand ``rule_files`` and check the files ``cfg`` (loaded from ``config_file``) names, as
    ``promtool check config`` does; with ``syntax_only`` nothing is looked up on disk.

    Raises
    ------
    ConfigError
        The first problem, worded as promtool words it (``"rules.yml" does not point to an
        existing file``, ``error checking client cert file "c.pem": stat c.pem: ...``).
    """
    out = ReferencedFiles()
    if syntax_only:
        return out
    shown = _Shown(config_file)
    for pattern in cfg.rule_files:
        matches = _glob(pattern)
        if "*" not in pattern and not matches:  # an explicit file must exist; a glob may match none
            raise ConfigError(f'"{shown(pattern)}" does not point to an existing file')
        out.rule_files += [shown(m) for m in matches]
    for sc in cfg.scrape_configs:
        auth = sc.http.authorization
        if auth is not None:
            _stat("authorization credentials or bearer token file", auth.credentials_file,
                  shown(auth.credentials_file))
        tls = sc.http.tls_config
        _stat("client cert file", tls.cert_file, shown(tls.cert_file))
        _stat("client key file", tls.key_file, shown(tls.key_file))
        out.file_sd[sc.job_name] = _sd_files(sc.file_sd_configs, shown, f'scrape job "{sc.job_name}"')
    for am in cfg.alerting.alertmanagers:
        # TODO(helper): promtool also builds the Alertmanager targets of the files found.
        out.warnings += [w for f, w in _sd_files(am.file_sd_configs, shown, "alertmanager config") if f is None]
    return out
