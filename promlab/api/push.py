"""A Pushgateway-compatible push endpoint: ``PUT|POST|DELETE /metrics/job/<job>{/<label>/<value>}``.

Groups are kept as the Pushgateway keeps them: ``PUT`` replaces a group's metrics, ``POST``
replaces only the metric families it pushes, ``DELETE`` drops the group (202), and each group has
``push_time_seconds`` and ``push_failure_time_seconds`` (last successful and failed push, 0 for
never). Label values may be base64url-encoded with a ``@base64`` suffix on the label name; the
grouping labels overwrite the pushed metrics' own. Bodies are the text format (read as Go's
parser reads it, :mod:`promlab.api.pushtext`) or delimited protobuf
(:mod:`promlab.api.pushproto`). A body that does not parse is refused (400); one with
timestamps, or that the Pushgateway could not gather beside the other groups (inconsistent
types, duplicate series, ...: :func:`promlab.api.pushcheck.check`) is refused too and sets the
group's failure time. The exposed families are the Pushgateway's (:mod:`promlab.api.pushcheck`;
checked request by request against the real one in tests/api/test_push_fuzz_pushgateway.py).
Groups are kept until deleted and survive a restart: they are saved to ``pushgateway.json`` in
the data directory (written to a temp file, then renamed).

How pushed samples reach queries: what a Prometheus scraping the Pushgateway with
``honor_labels: true`` would store. Every push appends its group at the push time, and a
background loop appends every group's current samples again every ``interval`` (15 s, a
common scrape interval), so a pushed value stays visible to instant queries for as long as it
is kept; a deleted or replaced series gets a staleness marker, as a scrape would write when
it disappears. Nothing is appended for a read-only session (the groups are still served).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from promlab.api.params import route_path
from promlab.api.pushcheck import (
    Pairs,
    PushError,
    Samples,
    check,
    complete,
    decode_base64,
    exposed,
    family_of,
    gunzip,
    implied_inf,
    parse_grouping_key,
    redirect,
)
from promlab.api.pushgroup import Group, labels_of
from promlab.api.pushproto import is_delimited, proto_rows
from promlab.api.pushtext import KeyParse, TextRows, text_rows
from promlab.errors import PromlabError
from promlab.model import STALE_NAN, Labels
from promlab.storage.interface import Storage

__all__ = ["Group", "PushError", "PushStore", "family_of", "parse_grouping_key", "routes"]

STATE_FILE = "pushgateway.json"
#: Pushed metric types as ``prometheus_client`` exposes them (anything else: unknown).
_EXPOSED_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
                  "summary": "summary", "untyped": "unknown", "unknown": "unknown"}
#: The families the Pushgateway keeps per group itself (a pushed one is replaced).
_PUSH_TIMES = ("push_time_seconds", "push_failure_time_seconds")
_INVALID = "pushed metrics are invalid or inconsistent with existing metrics: "



class PushStore:
    """The pushed groups, their persistence and their samples in ``store``.

    Parameters
    ----------
    store
        Where pushed samples are appended (None or read-only: not appended).
    path
        Directory for ``pushgateway.json`` (None: groups are kept in memory only).
    interval_s
        How often the groups are appended again (0: only at push time).
    """

    def __init__(self, store: Storage | None, path: str | None, *, interval_s: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.file = os.path.join(path, STATE_FILE) if path else None
        self.interval_s = interval_s
        self.clock = clock
        self.groups: dict[tuple[tuple[str, str], ...], Group] = {}
        self._lock = threading.RLock()
        # Each group's series last appended (a series it loses gets a staleness marker).
        self._last: dict[tuple[tuple[str, str], ...], set[Labels]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Pushes repeat the same series: their parsers, Labels objects and the series lists
        # handed to the store are kept (bounded), so the store's ref cache knows them.
        self._parses: dict[tuple[tuple[str, str], ...], KeyParse] = {}
        self._interned: dict[tuple[tuple[str, str], ...], Labels] = {}
        self._series_lists: dict[Any, list[Labels]] = {}
        self._load()

    MAX_PARSERS, MAX_INTERNED = 1024, 1 << 20  # keys' parsers and Labels objects kept

    def _labels_of(self, pairs: tuple[tuple[str, str], ...]) -> Labels:
        ls = self._interned.get(pairs)
        if ls is None:
            if len(self._interned) >= self.MAX_INTERNED:
                self._interned.clear()
            ls = self._interned[pairs] = labels_of(pairs)
        return ls

    # -- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.file or not os.path.exists(self.file):
            return
        with open(self.file, encoding="utf-8") as f:
            data = json.load(f)
        for g in data.get("groups", []):
            key = tuple((k, v) for k, v in g["key"])
            fams = {name: [(tuple((a, b) for a, b in pairs), float(v)) for pairs, v in samples]
                    for name, samples in g["families"].items()}
            self.groups[key] = Group(
                key, fams, dict(g.get("types", {})), float(g["push_time"]),
                float(g["failure_time"]), dict(g.get("helps", {})), dict(g.get("stamps", {})),
                {n: frozenset(tuple(map(tuple, p)) for p in ids)
                 for n, ids in g.get("implied", {}).items()})
        # Appended before the restart: a delete must mark them stale.
        self._last = {k: {ls for ls, _ in g.samples(self._labels_of)}
                      for k, g in self.groups.items()}

    def _save(self, *, sync: bool = False) -> None:
        """Write the groups to the state file (temp file, then renamed: never half a file).

        Not fsynced on every push (``sync``: on stop): a killed process loses nothing (the
        page cache holds the file), a power cut can cost the latest pushes' group state (their
        samples are in the store's WAL); the Pushgateway itself persists every 5 minutes.
        """
        if not self.file:
            return
        data = {"groups": [{"key": list(g.key), "types": g.types, "push_time": g.push_time,
                            "failure_time": g.failure_time, "helps": g.helps,
                            "stamps": g.stamps, "families": g.families_json(),
                            "implied": {n: list(i) for n, i in g.implied.items() if i}}
                           for g in self.groups.values()]}
        tmp = self.file + ".tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(data))
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.file)

    # -- pushes ------------------------------------------------------------------------------
    def push(self, key: Pairs, body: bytes, content_type: str | None, *,
             replace: bool) -> None:
        """``PUT`` (``replace``) or ``POST`` a body to a group; :class:`PushError` if refused.

        As the Pushgateway: a body that does not parse is refused as it is; one with
        timestamps, or that could not be gathered beside the other groups (see
        :func:`pushcheck.check`), also sets the group's ``push_failure_time_seconds``.
        """
        now = self.clock()
        problems: list[str] = []
        fams: dict[str, Samples] = {}
        ids: dict[str, list[Pairs]] = {}
        if is_delimited(content_type):
            types, helps, rows, stamped, problems, empty = proto_rows(key, body)
            fams.update({n: [] for n in empty})
            ids.update({n: [] for n in empty})
        else:
            types, helps, rows, stamped = self._read_text(key, body)
        if stamped:
            self._failed(key, now)
            raise PushError(_INVALID + "pushed metrics must not have timestamps")
        metrics: dict[str, dict[object, Pairs]] = {}  # per Go metric (see _read_text)
        for fam, pairs, own, ident, v in rows:
            if fam in _PUSH_TIMES:  # replaced by the group's own (see below for the failure time)
                continue
            # -0 kept (the JSON API shows it); exposed and stored as 0, as Go's text writer
            fams.setdefault(fam, []).append((pairs, v))
            if own is None:
                ids.setdefault(fam, []).append(ident)
            else:
                metrics.setdefault(fam, {}).setdefault(own, ident)
        for fam, by_labels in metrics.items():
            ids[fam] = list(by_labels.values())
        helps = {n: h for n, h in helps.items() if n in fams}
        with self._lock:
            old = self.groups.get(key)
            wanted: dict[str, tuple[str, Any]] = {
                n: (t, i) for n, (t, i) in (old.metric_ids().items() if old and not replace
                                            else ()) if n not in fams}
            wanted.update({n: (types.get(n, "untyped"), i) for n, i in ids.items()})
            # The Pushgateway keeps a pushed push_failure_time_seconds family in place of an
            # existing group's own: another type than gauge cannot be gathered beside the
            # other groups' (the family then replacing the group's is left out: TODO(handle)).
            if old is not None and len(self.groups) > 1 and types.get(
                    "push_failure_time_seconds", "gauge") != "gauge":
                problems.append("collected metric 'push_failure_time_seconds' is not a GAUGE")
            try:
                if problems:
                    raise PushError(problems[0])
                check(wanted, {k: g.metric_ids() for k, g in self.groups.items() if k != key}, key)
            except PushError as exc:
                self._failed(key, now)
                raise PushError(_INVALID + str(exc)) from exc
            g = old if old is not None and not replace else Group(
                key, failure_time=old.failure_time if old else 0.0,
                stamps={n: t for n, t in old.stamps.items() if n in _PUSH_TIMES} if old else {})
            self.groups[key] = g
            g.families.update({n: complete(n, types.get(n, "untyped"), s)
                               for n, s in fams.items()})
            g.implied.update({n: implied_inf(types.get(n, ""), s) for n, s in fams.items()})
            g.changed()
            # What the check saw is the group's now (no second pass over its samples).
            g._cache["ids"] = {n: (t, frozenset(i)) for n, (t, i) in wanted.items()}
            g.types.update({n: types.get(n, "untyped") for n in fams})
            for n in fams:
                g.helps.pop(n, None)
            g.helps.update(helps)
            g.push_time = now
            g.stamps.update(dict.fromkeys([*fams, "push_time_seconds"], now))
            g.stamps.setdefault("push_failure_time_seconds", now)
            self._save()
            self.append(now, key)

    def _read_text(self, key: Pairs, body: bytes) -> TextRows:
        """A text-format push (whatever its Content-Type says, as the Pushgateway), read with
        the key's parser (see :func:`pushtext.text_rows`)."""
        from promlab.exposition.parser import Parser

        # The key's parser, taken out while in use (parsers are not thread-safe).
        with self._lock:
            kp = self._parses.pop(key, None)
        if kp is None:
            kp = KeyParse(Parser(strict=False))  # Go's layout rules: go_layout
        try:
            return text_rows(kp, key, body)
        finally:
            with self._lock:
                while self._parses and len(self._parses) >= self.MAX_PARSERS:
                    del self._parses[next(iter(self._parses))]
                if self.MAX_PARSERS:
                    self._parses[key] = kp

    def _failed(self, key: Pairs, now: float) -> None:
        """Record a refused push: the group's failure time (the group made if new)."""
        with self._lock:
            g = self.groups.setdefault(key, Group(key))
            g.failure_time = now
            g.stamps["push_failure_time_seconds"] = now
            g.stamps.setdefault("push_time_seconds", now)
            self._save()
            self.append(now, key)

    def delete(self, key: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            if self.groups.pop(key, None) is not None:
                self._save()
                self.append(self.clock(), key)

    def wipe(self) -> None:
        """Delete every group (the Pushgateway's ``PUT /api/v1/admin/wipe``)."""
        with self._lock:
            if self.groups:
                self.groups.clear()
                self._save()
                self.append(self.clock())

    def copy_groups(self) -> list[Group]:
        """The groups as they are now (copies: later pushes do not change them)."""
        with self._lock:
            return [Group(g.key, dict(g.families), dict(g.types), g.push_time, g.failure_time,
                          dict(g.helps), dict(g.stamps), dict(g.implied))
                    for g in self.groups.values()]

    # -- samples in the store ----------------------------------------------------------------
    def samples(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return [s for g in self.groups.values() for s in g.samples(self._labels_of)]

    def append(self, now: float, key: tuple[tuple[str, str], ...] | None = None) -> int:
        """Append every group's samples (only group ``key``'s when given: a push or delete
        changes one group) at ``now``, and staleness markers for the series a group lost."""
        st = self.store
        if st is None:
            return 0
        samples: list[tuple[Labels, float]] = []
        gone: set[Labels] = set()
        with self._lock:
            for k in [key] if key is not None else list(set(self.groups) | set(self._last)):
                g = self.groups.get(k)
                mine = g.samples(self._labels_of) if g is not None else []
                current = {ls for ls, _ in mine}
                gone |= self._last.get(k, set()) - current
                if current:
                    self._last[k] = current
                else:
                    self._last.pop(k, None)
                samples += mine
            series = [ls for ls, _ in samples] + sorted(gone, key=lambda x: x.pairs)
            if not series:
                return 0
            # The same list object as last time when its series are the same: the store
            # resolves its series refs from its ref cache (no label hashing).
            list_key = ("group", key) if key is not None else ("all",)
            kept = self._series_lists.get(list_key)
            if kept == series:
                series = kept
            elif len(self._series_lists) < self.MAX_PARSERS or list_key in self._series_lists:
                self._series_lists[list_key] = series
        vals = np.array([v for _, v in samples] + [STALE_NAN] * len(gone), np.float64)
        ts = np.full(len(series), int(now * 1000), np.int64)
        app = st.appender()
        app.append_batch(series, np.arange(len(series)), ts, vals)
        return app.commit().appended

    # -- exposition --------------------------------------------------------------------------
    def collect(self) -> list[Any]:
        """The groups as ``prometheus_client`` metric families (what the Pushgateway shows on
        its ``/metrics``; see :func:`pushcheck.exposed`)."""
        with self._lock:
            return exposed(self.groups.values(), _EXPOSED_TYPES)

    def start(self) -> None:
        """Start the background loop that appends the groups every ``interval_s`` (again
        after :meth:`stop`: the server restarted)."""
        if self.interval_s <= 0 or self._thread is not None or self.store is None:
            return
        ref = weakref.ref(self)
        stop = self._stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.interval_s):
                me = ref()
                if me is None:
                    return
                with contextlib.suppress(PromlabError):
                    me.append(me.clock())
                del me

        self._thread = threading.Thread(target=loop, name="promlab-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the re-append loop and wait for it, write the state file durably (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        with self._lock:
            if self.file and os.path.exists(self.file):
                self._save(sync=True)


def routes(session: Any, *, push_interval_s: float = 15.0,
           closers: list[Callable[[], None]] | None = None,
           openers: list[Callable[[], None]] | None = None, metrics: Any = None,
           enable_admin_api: bool = False, server_flags: dict[str, str] | None = None,
           **_: Any) -> list[Any]:
    """The push routes for Starlette (``session``: a :class:`~promlab.api.service.Service`),
    and the Pushgateway's JSON API over the same groups (:mod:`promlab.api.pushapi`; its
    wipe only with ``enable_admin_api``, its status flags from ``server_flags``).

    The re-append loop's ``stop`` goes into ``closers`` (the app calls them when it stops), and
    what starts it again (and shows the groups on ``/metrics`` again) into ``openers`` (called
    when a stopped server starts again).
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    store = session.store
    writable = None if getattr(session, "read_only", False) or not isinstance(store, Storage) \
        else store
    pushes = PushStore(writable, getattr(session, "path", None), interval_s=push_interval_s)
    pushes.start()
    # The groups on the server's /metrics too, as the Pushgateway shows them on its own.
    registry = getattr(session, "registry", None)
    if registry is not None:
        registry.register(pushes)
    if closers is not None:
        closers.append(pushes.stop)
        if registry is not None:
            def unregister() -> None:
                with contextlib.suppress(KeyError):  # the server stopped before
                    registry.unregister(pushes)

            closers.append(unregister)
    if openers is not None:
        def reopen() -> None:  # the server starts again after a stop
            pushes.start()
            if registry is not None:
                with contextlib.suppress(ValueError):  # still registered
                    registry.register(pushes)

        openers.append(reopen)

    async def handle(request: Request) -> Response:
        path = route_path(request.scope)
        moved = redirect(request)
        if moved is not None:
            return moved
        try:
            job = request.path_params["job"]
            if path.startswith("/metrics/job@base64/"):
                try:
                    job = decode_base64(job)
                except PushError as exc:
                    raise PushError(f"invalid base64 encoding in job name {job!r}: {exc}") from exc
            key = parse_grouping_key(job, request.path_params.get("rest", ""))
            if request.method == "DELETE":
                await run_in_threadpool(pushes.delete, key)
                return Response(status_code=202)
            body = await request.body()
            enc = (request.headers.get("content-encoding") or "").lower()
            if enc == "gzip":
                body = gunzip(body)
            elif enc == "snappy":
                from promlab.remote.codec import decompress

                body = decompress(body)
            await run_in_threadpool(pushes.push, key, body, request.headers.get("content-type"),
                                    replace=request.method == "PUT")
        except (PushError, OSError, PromlabError) as exc:
            return PlainTextResponse(str(exc) + "\n", status_code=400)
        return Response(status_code=200)

    async def other(request: Request) -> Response:
        return redirect(request) or PlainTextResponse("404 page not found\n", status_code=404)

    methods = ["PUT", "POST", "DELETE"]
    r = [Route(f"/metrics/{j}/{{job}}{rest}", handle, methods=methods)
         for j in ("job", "job@base64") for rest in ("", "{rest:path}")]
    r += [Route(f"/metrics/{j}{{rest:path}}", other, methods=methods)
          for j in ("job", "job@base64")]
    r[0].pushes = pushes  # type: ignore[attr-defined]  # for tests and the session
    from promlab.api import pushapi
    from promlab.api.v1 import handler as counted

    flags = pushapi.pushgateway_flags(server_flags or {}, state_file=pushes.file,
                                      enable_admin_api=enable_admin_api)
    return r + pushapi.routes(pushes.copy_groups, pushes.wipe, flags=flags,
                              enable_admin_api=enable_admin_api,
                              wrap=None if metrics is None else
                              lambda name, fn: counted(name, metrics, fn))
