"""Differential test: what promlab's scrape loop stores vs what real Prometheus 2.42 stores.

One local HTTP server serves, per job, a fixed sequence of exposition pages: the k-th scrape of
each client (Prometheus, recognised by its ``Prometheus/`` User-Agent, or promlab) gets page
``k`` (the last page repeats). One Prometheus and one promlab scraper run the same config (one
job per case, ``scrape_interval`` 1 s) into their stores; then the raw samples of both are read
(Prometheus through remote read, so staleness markers are visible) and compared after mapping
each sample's timestamp to its scrape number (the n-th ``up`` sample of the target). Samples
with an explicit page timestamp keep their timestamp. ``scrape_duration_seconds`` values are
not compared (they are timings).

``PROMLAB_SCRAPE_DIFF_ROUNDS=N`` scrapes for N rounds instead of the default (longer hunts).

Deliberate differences from 2.42 (promlab follows Prometheus 3.x) are listed in
:data:`ALLOWED`, each with its reason.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

import promlab.scrape as scrape
from benchmarks import realprom
from promlab.model import Labels, Matcher, MatchType
from promlab.remote.client import read_range
from promlab.storage import open_store

pytestmark = pytest.mark.realprom

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
STALE_BITS = 0x7FF0000000000002
ROUNDS = int(os.environ.get("PROMLAB_SCRAPE_DIFF_ROUNDS", "6"))


@dataclass
class Case:
    """One job: its pages (``@T-5000`` is replaced by the server's base time minus 5 s, in ms),
    extra scrape-config keys and static target labels."""

    name: str
    pages: list[str]
    cfg: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ctype: str = TEXT
    sleep: dict[int, float] = field(default_factory=dict)  # page index -> seconds before answering
    #: ``instance`` values this case's pages set on their series (honor_labels): such series
    #: are this case's, whatever their scrape times share with other targets'.
    instances: tuple[str, ...] = ()


def _relabel_all() -> list[dict[str, Any]]:
    return [
        {"source_labels": ["__name__"], "regex": "drop_me.*", "action": "drop"},
        {"source_labels": ["a", "b"], "separator": "-", "regex": "(.+)-(.+)", "target_label": "ab",
         "replacement": "${2}_${1}"},
        {"source_labels": ["a"], "target_label": "job", "regex": "overwrite", "replacement": "new_job"},
        {"source_labels": ["a"], "target_label": "hm", "modulus": 7, "action": "hashmod"},
        {"regex": "lbl_(.+)", "action": "labelmap", "replacement": "mapped_${1}"},
        {"regex": "lbl_.+", "action": "labeldrop"},
        {"regex": "tmp", "action": "labeldrop"},
        {"source_labels": ["up"], "target_label": "upper", "action": "uppercase"},
        {"source_labels": ["low"], "target_label": "lower", "action": "lowercase"},
        {"source_labels": ["k1"], "target_label": "k2", "action": "keepequal"},
        {"source_labels": ["d2"], "regex": "", "target_label": "d2", "replacement": "none"},
        {"source_labels": ["d1"], "target_label": "d2", "action": "dropequal"},
        {"regex": "(a|b|ab|hm|job|instance|__name__|mapped_.*|upper|lower|up|low|k1|k2|d1|d2|v)",
         "action": "labelkeep"},
        {"source_labels": ["v"], "regex": "", "target_label": "v", "replacement": "was_empty"},
    ]


CASES = [
    Case("basic", [
        'a{x="1"} 1\nb 2\nc{y=""} 3\nnan_v NaN\npinf +Inf\nninf -Inf\ndup 1\ndup 2\n',
        'a{x="1"} 2\nc 4\nnan_v NaN\npinf +Inf\nninf -Inf\ndup 3\n',
        'a{x="1"} 3\nb 5\nnew_one 1\n',
        'b 6\nnew_one 2\n',
    ]),
    Case("exported", [
        'm{job="theirs",instance="i",exported_job="e1",exported_exported_job="e2",env="pg"} 1\n'
        'n{job=""} 2\nq{exported_env="x",env="y"} 3\nr{instance=""} 4\n',
    ], labels={"env": "t", "exported_env": "te"}),
    Case("honor", [
        'm{job="theirs",instance="i",env="pg"} 1\nn{job=""} 2\nq{env=""} 3\nr 4\n',
        'm{job="theirs",instance="i",env="pg"} 5\nn{job=""} 6\n',
    ], cfg={"honor_labels": True}, labels={"env": "t"}, instances=("i",)),
    Case("relabel", [
        'keep_me{a="1",b="2",tmp="t",lbl_foo="f",up="Aa",low="Bb",k1="z",k2="z",d1="q",d2="r"} 1\n'
        'keep_me{a="overwrite",b="x",v=""} 2\n'
        'eq{k1="z",k2="y"} 3\neq2{d1="s",d2="s"} 4\ndrop_me_too 5\n'
        'coll{tmp="1"} 6\ncoll{tmp="2"} 7\ncoll{tmp="3"} 8\n',
        'keep_me{a="1",b="2",tmp="t",lbl_foo="f",up="Aa",low="Bb",k1="z",k2="z",d1="q",d2="r"} 9\n'
        'coll{tmp="2"} 10\ncoll{tmp="1"} 11\n',
    ], cfg={"metric_relabel_configs": _relabel_all()}),
    Case("noname", [
        'ok 1\n', 'ok 2\nbad_name 3\n', 'ok 4\n',
    ], cfg={"metric_relabel_configs": [{"source_labels": ["__name__"], "regex": "bad_.*",
                                        "target_label": "__name__", "replacement": ""}]}),
    Case("name_labeldrop", [
        'ok 1\n', 'ok 2\n',
    ], cfg={"metric_relabel_configs": [{"regex": "__name__", "action": "labeldrop"}]}),
    Case("ts_honored", [
        'past 1 @T-5000\npast_dup 1 @T-4000\npast_dup 1 @T-4000\nooo 1 @T-3000\nooo 2 @T-6000\n'
        'now_one 7\nts_gone 1 @T-2000\nsame_ts_other_val 1 @T-1000\nsame_ts_other_val 2 @T-1000\n',
        'past 1 @T-5000\npast 2 @T-4500\nooo 3 @T-2500\nnow_one 8\n',
        'past 3 @T-4500\nnow_one 9\n',
    ]),
    Case("ts_ignored", [
        'past 1 @T-5000\npast_dup 1 @T-4000\nooo 1 @T-3000\nooo 2 @T-6000\nnow_one 7\nts_gone 1 @T-2000\n',
        'past 1 @T-5000\nooo 3 @T-2500\nnow_one 8\n',
    ], cfg={"honor_timestamps": False}),
    Case("sample_limit", [
        'a 1\nb 2\nc 3\n', 'a 1\nnew 1\nb 2\nc 3\nd 4\ne 5\n', 'a 1\nb 2\ndrop_x 3\ndrop_y 4\ndrop_z 5\n', 'a 2\n',
    ], cfg={"sample_limit": 3,
            "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": "drop_.*", "action": "drop"}]}),
    Case("label_limit", [
        'a{x="1"} 1\nz 0\n', 'a{x="1"} 2\nb{x="1",y="2"} 3\nc 4\nnew 5\n', 'a{x="1"} 4\nb{x="1",y=""} 5\n',
    ], cfg={"label_limit": 4}),
    Case("name_len", [
        'a{xx="1"} 1\n', 'a{xx="1"} 2\nb{xxxxxxxxxxxx="1"} 3\n', 'a{xx="1"} 4\n',
    ], cfg={"label_name_length_limit": 10}),
    Case("value_len", [
        'a{x="1"} 1\nz 0\n', 'new 1\na{x="1"} 2\nb{x="123456789012345678901"} 3\nc 1\n',
        'a{x="1"} 4\nb{x="12345678901234567890"} 5\n',
    ], cfg={"label_value_length_limit": 20}),
    Case("parse_error", ['a 1\nb 2\nc 3\n', 'a 2\nb 3\nnew 1\nthis is { bad\nd 4\n', 'a 3\nb 4\n']),
    Case("refused_sample", ['a 1\nb 2\nc 3\n', 'a 2\nnew 1\nx{l="1",l="2"} 3\nd 4\n', 'a 3\nb 4\n']),
    Case("om_no_eof", ['a 1\nb 2\n# EOF\n', 'a 2\nnew 1\n', 'a 3\n# EOF\n'], ctype=OM),
    Case("body_size", [
        'a 1\n', 'a 2\n' + "".join(f'pad{{i="{i}"}} {i}\n' for i in range(60)), 'a 3\n',
    ], cfg={"body_size_limit": "1KB"}),
    Case("timeout", ['a 1\n', 'a 2\n', 'a 3\n'], cfg={"scrape_timeout": "400ms"}, sleep={1: 0.8}),
    Case("params", ['PARAMS'], cfg={"params": {"p": ["x"], "q": ["y1", "y2"]}}),
    Case("target_collide", [
        'm{job="p",custom="pc",__tmp="z"} 1\n',
    ], cfg={"metric_relabel_configs": [
        {"target_label": "instance", "replacement": "from_relabel"},
        {"source_labels": ["exported_job"], "target_label": "custom"},
    ]}, labels={"custom": "tc"}),
    Case("openmetrics", [
        '# TYPE c counter\nc_total{l="1"} 1\nc_created{l="1"} 1000\n# TYPE g gauge\ng NaN\n'
        '# TYPE i info\ni_info{v="1"} 1\n# TYPE s stateset\ns{s="a"} 1\ns{s="b"} 0\n'
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 3\n# EOF\n',
        '# TYPE c counter\nc_total{l="1"} 2\n# TYPE g gauge\ng 1 @S-3\n# EOF\n',
    ], ctype=OM),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _PageServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        u = urlsplit(self.path)
        name = u.path.strip("/")
        case = self.server.case
        if name != case.name:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        who = "prom" if self.headers.get("User-Agent", "").startswith("Prometheus/") else "lab"
        with self.server.lock:
            k = self.server.counts.get((who, name), 0)
            self.server.counts[(who, name)] = k + 1
        i = min(k, len(case.pages) - 1)
        text = case.pages[i]
        if text == "PARAMS":
            text = "".join(f'param{{k="{a}",v="{b}",n="{n}"}} 1\n'
                           for n, (a, b) in enumerate(sorted(parse_qsl(u.query))))
        base = self.server.base_ms
        text = re.sub(r"@T([-+]\d+)", lambda m: str(base + int(m.group(1))), text)
        text = re.sub(r"@S([-+]\d+)", lambda m: f"{base / 1000 + int(m.group(1)):.3f}", text)
        body = text.encode()
        if case.sleep.get(i):
            time.sleep(case.sleep[i])
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(200)
            self.send_header("Content-Type", case.ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, case: Case, base_ms: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.case = case
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.base_ms = base_ms

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a scraper that timed out hangs up


@contextlib.contextmanager
def page_servers(cases: list[Case]) -> Iterator[list[_PageServer]]:
    """One server (own port, so own ``instance``) per case."""
    base = int(time.time() * 1000) // 1000 * 1000
    servers = [_PageServer(c, base) for c in cases]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in servers]
    for th in threads:
        th.start()
    try:
        yield servers
    finally:
        for s, th in zip(servers, threads, strict=True):
            s.shutdown()
            s.server_close()
            th.join(5)


def config(servers: list[_PageServer]) -> dict[str, Any]:
    jobs = []
    for s in servers:
        c = s.case
        job: dict[str, Any] = {"job_name": c.name, "metrics_path": f"/{c.name}",
                               "static_configs": [{"targets": [s.addr], **({"labels": c.labels} if c.labels else {})}]}
        job.update(c.cfg)
        jobs.append(job)
    return {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms"}, "scrape_configs": jobs}


Sample = tuple[Any, str]
Dump = dict[str, dict[Labels, list[Sample]]]


def _value(v: float) -> str:
    if math.isnan(v):
        return "stale" if struct.unpack("<q", struct.pack("<d", v))[0] == STALE_BITS else "NaN"
    return repr(v)


def normalise(series: list[tuple[Labels, list[int], list[float]]], rounds: int,
              owners: dict[str, str] | None = None) -> Dump:
    """Per job: series -> [(scrape number or ("ts", ms), value)], up to scrape ``rounds``
    (``owners``: the job of series whose page set their ``instance``, see ``Case.instances``)."""
    scrape_ts: dict[str, list[int]] = {}
    job_of: dict[str, str] = {}
    inst_of_job: dict[str, str] = {}
    for ls, ts, vs in series:
        if ls.name == "up":
            scrape_ts[ls.get("instance")] = [t for t, v in zip(ts, vs, strict=True) if _value(v) != "stale"]
            job_of[ls.get("instance")] = ls.get("job")
            inst_of_job[ls.get("job")] = ls.get("instance")
    out: Dump = {}
    for ls, ts, vs in series:
        # Each case has its own instance; a series whose instance label the page set belongs to
        # the case that says so, one whose relabeling replaced it to the target whose scrape
        # times it shares most (two targets may be scraped at the same times: ties are not
        # broken by time).
        inst = ls.get("instance")
        owner = (owners or {}).get(inst)
        if owner is not None and owner in inst_of_job:
            inst = inst_of_job[owner]
        elif inst not in scrape_ts:
            inst = max(scrape_ts, key=lambda k: len(set(scrape_ts[k]) & set(ts)))
        job = job_of[inst]
        times = scrape_ts[inst][:rounds]
        pos = {t: i for i, t in enumerate(times)}
        last = times[-1] if times else 0
        samples: list[Sample] = []
        for t, v in zip(ts, vs, strict=True):
            val = "*" if ls.name == "scrape_duration_seconds" and _value(v) != "stale" else _value(v)
            if t in pos:
                samples.append((pos[t], val))
            elif t <= last and val != "stale":
                samples.append((("ts", t), val))
        if samples:
            out.setdefault(job, {})[ls] = samples
    return out


def prom_dump(prom: realprom.Prometheus) -> list[tuple[Labels, list[int], list[float]]]:
    with httpx.Client(timeout=30) as client:
        res = read_range(client, prom.url + "/api/v1/read", [Matcher(MatchType.REGEX, "__name__", ".+")],
                         0, int(time.time() * 1000) + 60_000)
    by: dict[int, tuple[list[int], list[float]]] = {}
    for i, t, v in zip(res.index.tolist(), res.ts_ms.tolist(), res.values.tolist(), strict=True):
        ts, vs = by.setdefault(i, ([], []))
        ts.append(t)
        vs.append(v)
    return [(res.series[i], *by[i]) for i in sorted(by)]


def lab_dump(store: Any) -> list[tuple[Labels, list[int], list[float]]]:
    q = store.querier(0, 1 << 62)
    ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
    out = []
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        out.append((ls, ts.tolist(), vs.tolist()))
    q.close()
    return out


def differences(theirs: Dump, ours: Dump) -> list[tuple[str, Labels, str]]:
    """``(job, series, report)`` for every series stored differently."""
    diffs = []
    for job in sorted(set(theirs) | set(ours)):
        t, o = theirs.get(job, {}), ours.get(job, {})
        for ls in sorted(set(t) | set(o)):
            if t.get(ls) != o.get(ls):
                diffs.append((job, ls, f"{job}: {ls}\n    prometheus: {t.get(ls)}\n    promlab:    {o.get(ls)}"))
    return diffs


ALLOWED: dict[tuple[str, str], str] = {
    ("sample_limit", "d"): "2.42 tracks a series for staleness before appending it, so the series past "
    "sample_limit on the failed page get markers at the next scrape although they never had a sample; "
    "Prometheus 3 (limitAppender before trackStaleness) and promlab write none",
    ("sample_limit", "e"): "as ('sample_limit', 'd')",
    ("basic", "scrape_series_added"): "Prometheus's scrape cache is keyed by the series text, promlab's "
    "parser by label set: 'c{y=\"\"}' then 'c' is a new series for Prometheus only",
}
"""``(job, metric name)`` of deliberate or out-of-scope differences, with the reason."""


def scrape_both(cases: list[Case], rounds: int, tmp: Path, *, slack: float = 20,
                ) -> tuple[Any, Any, dict[str, str], dict[str, str]]:
    """Serve ``cases`` to one Prometheus and one promlab scraper running the same config until
    both scraped each at least ``rounds + 1`` times (at most ``rounds + slack`` s): the raw
    samples each stored (:func:`prom_dump`, :func:`lab_dump`) and each job's last error."""
    with page_servers(cases) as servers:
        cfg = config(servers)
        store = open_store(tmp / "store", ooo_window=0, wal_fsync=False)
        try:
            with realprom.prometheus(config=cfg) as prom:
                with scrape.start(cfg, data=store) as handle:
                    deadline = time.monotonic() + rounds + slack
                    while time.monotonic() < deadline:
                        if all(s.counts.get((w, s.case.name), 0) >= rounds + 1
                               for s in servers for w in ("prom", "lab")):
                            break
                        time.sleep(0.2)
                    time.sleep(1.0)  # the last compared scrapes are committed
                    ours_raw = lab_dump(store)
                    ours_err = {r.scrape_pool: r.last_error if isinstance(r.last_error, str) else ""
                                for r in handle.targets().itertuples()}
                theirs_raw = prom_dump(prom)
                active = httpx.get(prom.url + "/api/v1/targets", timeout=30).json()["data"]["activeTargets"]
                theirs_err = {t["labels"]["job"]: t["lastError"] for t in active}
        finally:
            store.close()
    return theirs_raw, ours_raw, theirs_err, ours_err


def run_diff(cases: list[Case], rounds: int, tmp: Path) -> list[str]:
    theirs_raw, ours_raw, _, _ = scrape_both(cases, rounds, tmp)
    owners = {i: c.name for c in cases for i in c.instances}
    theirs, ours = normalise(theirs_raw, rounds, owners), normalise(ours_raw, rounds, owners)
    return [text for job, ls, text in differences(theirs, ours) if (job, ls.name) not in ALLOWED]


def test_scrape_store_matches_prometheus(require_binary: Any, tmp_path: Path) -> None:
    require_binary("prometheus")
    diffs = run_diff(CASES, ROUNDS, tmp_path)
    assert not diffs, "\n".join(diffs)
