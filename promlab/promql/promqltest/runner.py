"""Running parsed test scripts against the promlab engine.

Mirrors Prometheus's ``promqltest`` runner: ``clear`` starts a fresh
:class:`~promlab.storage.MemoryStorage`, ``load`` appends samples, every ``eval`` is run and
compared. An instant eval also gets the hidden extra runs (step-invariance re-runs with ``@`` and
the range-mode check, see :mod:`.rewrite` and DSL.md §5). Each eval counts once: passed, failed
(first problem recorded as a :class:`Failure`) or skipped (reason counted, see :mod:`.skips`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from promlab.errors import FunctionNotImplemented, ParseError, PromlabError
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram
from promlab.promql.promqltest import skips
from promlab.promql.promqltest.compare import Observed, check_sorted, compare, diff
from promlab.promql.promqltest.dsl import ClearCmd, EvalCmd, LoadCmd, Script, parse_script
from promlab.promql.promqltest.hints import storage_hints
from promlab.promql.promqltest.histogram import nhcb_from_classic, to_float_histogram
from promlab.promql.promqltest.rewrite import add_at, rerun_times
from promlab.storage import MemoryStorage

__all__ = ["Failure", "FileResult", "Runner", "observe_instant", "observe_range"]

_QUERY_CONTEXT_FUNCS = re.compile(r"(start|end|range|step)\(\)")
_MINUTE = 60_000


@dataclass(slots=True)
class Failure:
    """Why one eval failed: where, in which run, and a category for grouping."""

    file: str
    line: int
    expr: str
    phase: str       # "instant", "range", "@-rerun t=..", "range-mode", ...
    message: str
    category: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: [{self.phase}] {self.expr}\n    {self.message}"


@dataclass(slots=True)
class FileResult:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        return f"{self.name}: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"


class _Problem(Exception):
    """A failed check inside one eval (carries the failure's phase and category)."""

    def __init__(self, phase: str, message: str, category: str) -> None:
        super().__init__(message)
        self.phase = phase
        self.message = message
        self.category = category


def observe_instant(value: Any) -> Observed:
    """Reduce an instant query's ``Result.value`` (a values.py frame) to an :class:`Observed`."""
    from promlab.promql.values import Matrix, Scalar, String, Vector

    if isinstance(value, Scalar):
        return Observed("scalar", scalar=float(np.asarray(value.values).reshape(-1)[0]))
    if isinstance(value, String):
        return Observed("string", string=value.value)
    if isinstance(value, Vector):
        present = np.asarray(value.present)
        vals = np.asarray(value.values)
        rows = np.flatnonzero(present[:, 0]) if present.size else np.zeros(0, np.int64)
        hs = value.histograms
        return Observed("vector", vector=[
            (value.labels[i], hs[i, 0] if hs is not None and hs[i, 0] is not None else float(vals[i, 0]))
            for i in rows.tolist()])
    if isinstance(value, Matrix):
        lo, hi = value.window_bounds()
        out = []
        for i, ls in enumerate(value.labels):
            a, b = int(lo[i, 0]), int(hi[i, 0])
            if b > a:
                out.append((ls, np.asarray(value.ts_ms[a:b], np.int64),
                            _mixed(value.values[a:b], None if value.histograms is None else value.histograms[a:b])))
        return Observed("matrix", matrix=out)
    raise TypeError(f"unexpected result value {type(value).__name__}")


def observe_range(value: Any, steps_ms: np.ndarray) -> Observed:
    """Reduce a range query's ``Result.value`` to a matrix :class:`Observed`."""
    from promlab.promql.values import Scalar, Vector

    steps = np.asarray(steps_ms, np.int64)
    if isinstance(value, Scalar):
        return Observed("matrix", matrix=[(Labels(), steps, np.asarray(value.values, np.float64))])
    if isinstance(value, Vector):
        present = np.asarray(value.present, bool)
        vals = np.asarray(value.values, np.float64)
        out = []
        hs = value.histograms
        for i, ls in enumerate(value.labels):
            p = present[i]
            if p.any():
                out.append((ls, steps[p], _mixed(vals[i][p], None if hs is None else hs[i][p])))
        return Observed("matrix", matrix=out)
    raise TypeError(f"unexpected range result value {type(value).__name__}")


def _mixed(values: np.ndarray, hists: np.ndarray | None) -> np.ndarray:
    """Float values, or (with histograms among them) an object array of floats and histograms."""
    if hists is None or not any(h is not None for h in hists):
        return np.asarray(values, np.float64)
    return np.array([h if h is not None else float(v) for v, h in zip(values, hists, strict=True)],
                    dtype=object)


def _error_texts(exc: BaseException) -> list[str]:
    texts = [str(exc)]
    if isinstance(exc, ParseError):
        texts.append(exc.reason)   # also accept the message without "1:7: parse error: "
    return texts


def _main_feature(expr: Any) -> str:
    """A short label for what an expression mainly exercises (for grouping failures)."""
    from promlab.promql.parser import ast

    if expr is None:
        return "?"
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            return f"{node.func.name}()"
        if isinstance(node, ast.AggregateExpr):
            return node.op
        if isinstance(node, ast.BinaryExpr):
            return f"operator {node.op}"
        if isinstance(node, ast.SubqueryExpr):
            return "subquery"
    for node in ast.walk(expr):
        if isinstance(node, ast.MatrixSelector):
            return "range selector"
        if isinstance(node, ast.VectorSelector):
            return "vector selector"
    return "literal"


class Runner:
    """Runs test scripts.

    Parameters
    ----------
    engine
        An object with ``instant(queryable, expr, time_ms)`` and ``range(queryable, expr,
        start_ms, end_ms, step_ms)``; by default ``Engine(lookback_delta="5m",
        max_samples=10000, default_subquery_step="1m")``, Prometheus's test settings.
    at_reruns, range_mode
        Whether to do the hidden extra runs of instant evals.
    file_skips
        Whether to skip every eval of the files listed in :data:`.skips.FILE_SKIPS` (off by
        default: the per-eval syntax rules already skip what those files test, and their
        other evals are ordinary PromQL worth running).
    """

    def __init__(self, engine: Any = None, *, at_reruns: bool = True, range_mode: bool = True,
                 file_skips: bool = False) -> None:
        if engine is None:
            from promlab.promql.engine import Engine

            # Prometheus's test scripts run with every experimental feature enabled.
            engine = Engine(lookback_delta="5m", max_samples=10000, default_subquery_step="1m",
                            features="all")
        self.engine = engine
        self.at_reruns = at_reruns
        self.range_mode = range_mode
        self.file_skips = file_skips

    # --- files ------------------------------------------------------------------------------
    def run_path(self, path: str | Path) -> FileResult:
        p = Path(path)
        return self.run_text(p.read_text(encoding="utf-8"), p.name)

    def run_text(self, text: str, name: str = "<script>") -> FileResult:
        t0 = time.perf_counter()
        res = FileResult(name)
        try:
            script = parse_script(text, name)
        except ParseError as exc:
            res.failed = 1
            res.failures.append(Failure(name, exc.line_col()[0], "", "script", str(exc), "script parse error"))
            return res
        self.run_script(script, res)
        res.seconds = time.perf_counter() - t0
        return res

    def run_script(self, script: Script, res: FileResult) -> None:
        file_reason = skips.file_skip_reason(script.name) if self.file_skips else None
        storage = MemoryStorage()
        for cmd in script.commands:
            if isinstance(cmd, ClearCmd):
                storage = MemoryStorage()
            elif isinstance(cmd, LoadCmd):
                self._load(storage, cmd)
            else:
                reason = file_reason or self._skip_reason(cmd)
                if reason:
                    res.skipped += 1
                    res.skip_reasons[reason] += 1
                    continue
                outcome = self._run_eval(storage, cmd, script.name)
                if outcome is None:
                    res.passed += 1
                else:
                    res.failed += 1
                    res.failures.append(outcome)

    @staticmethod
    def _load(storage: MemoryStorage, cmd: LoadCmd) -> None:
        for s in cmd.series.values():
            if s.hist_samples:
                items: dict[int, Any] = {t: to_float_histogram(h) for t, h in s.hist_samples}
                items.update(zip(s.ts_ms, s.values, strict=True))
                ts = sorted(items)
                storage.add_histogram_series(
                    s.labels, np.asarray(ts, np.int64), storage_hints(ts, [items[t] for t in ts]),
                    start_ts_ms=[s.start_ts.get(t, 0) for t in ts] if s.start_ts else None)
            elif s.ts_ms:
                storage.add_series(
                    s.labels, np.asarray(s.ts_ms, np.int64), np.asarray(s.values, np.float64),
                    start_ts_ms=[s.start_ts.get(t, 0) for t in s.ts_ms] if s.start_ts else None)
        if cmd.with_nhcb:
            for labels, (ts, hists) in nhcb_from_classic(cmd.series.values()).items():
                storage.add_histogram_series(labels, np.asarray(ts, np.int64), storage_hints(ts, hists))

    @staticmethod
    def _skip_reason(ev: EvalCmd) -> str | None:
        return skips.syntax_skip_reason(ev.expr)

    # --- one eval ---------------------------------------------------------------------------
    def _run_eval(self, storage: MemoryStorage, ev: EvalCmd, file: str) -> Failure | None:
        from promlab.promql.parser import parse_expr

        expr = None
        try:
            expr = parse_expr(ev.expr)
        except ParseError as exc:
            return Failure(file, ev.line, ev.expr, "parse", str(exc),
                           f"parse error: {_normalise_error(exc.reason)}")
        except Exception as exc:  # a parser crash is a failure, not a reason to stop the run
            return Failure(file, ev.line, ev.expr, "parse", repr(exc), f"parser crash: {type(exc).__name__}")
        try:
            if ev.is_range:
                self._check_range(storage, ev)
            else:
                self._check_instant(storage, ev, expr)
        except _Problem as p:
            category = p.category
            if category == "result mismatch":
                category = f"result mismatch: {_main_feature(expr)}"
            return Failure(file, ev.line, ev.expr, p.phase, p.message, category)
        return None

    def _query(self, phase: str, fn: Any, *args: Any) -> tuple[Any, BaseException | None]:
        try:
            return fn(*args), None
        except FunctionNotImplemented as exc:
            raise _Problem(phase, f"not implemented: {exc}", f"not implemented: {exc}") from None
        except PromlabError as exc:
            return None, exc
        except Exception as exc:
            raise _Problem(phase, f"engine crashed: {type(exc).__name__}: {exc}",
                           f"engine crash: {type(exc).__name__}: {str(exc)[:80]}") from None

    def _expect_failure(self, ev: EvalCmd, phase: str, exc: BaseException) -> None:
        texts = _error_texts(exc)
        if ev.expected_fail_message and ev.expected_fail_message not in texts:
            raise _Problem(phase, f"expected error {ev.expected_fail_message!r}, but got: {exc}",
                           "wrong error message")
        if ev.expected_fail_regexp is not None and not any(ev.expected_fail_regexp.search(t) for t in texts):
            raise _Problem(phase, f"expected error matching {ev.expected_fail_regexp.pattern!r}, but got: {exc}",
                           "wrong error message")
        fails = ev.expects.get("fail")
        if fails and not any(fails[0].matches(t) for t in texts):
            raise _Problem(phase, f"expected error matching {fails[0].describe()}, but got: {exc}",
                           "wrong error message")

    def _outcome(self, ev: EvalCmd, phase: str, result: Any, exc: BaseException | None) -> bool:
        """Handle an error or its absence; True when the result still needs comparing."""
        if exc is not None:
            if ev.is_fail:
                self._expect_failure(ev, phase, exc)
                return False
            msg = str(exc)
            raise _Problem(phase, f"unexpected error: {type(exc).__name__}: {msg}",
                           f"unexpected error: {_normalise_error(msg)}")
        if ev.is_fail:
            raise _Problem(phase, "expected error but got none", "expected an error, got none")
        self._check_annotations(ev, phase, result)
        return True

    @staticmethod
    def _check_annotations(ev: EvalCmd, phase: str, result: Any) -> None:
        ann = result.annotations
        warnings, infos = list(ann.warnings), list(ann.infos)
        if ev.warn and not warnings:
            raise _Problem(phase, "expected warnings but got none", "annotations: missing warning")
        if ev.info and not infos:
            raise _Problem(phase, "expected info annotations but got none", "annotations: missing info")
        for kind, actual in (("warn", warnings), ("info", infos)):
            expected = ev.expects.get(kind)
            if not expected:
                continue
            if not actual:
                raise _Problem(phase, f"expected {kind} annotations but none were found",
                               f"annotations: missing {kind}")
            for e in expected:
                if not any(e.matches(a) for a in actual):
                    raise _Problem(phase, f"expected {kind} annotation matching {e.describe()} but "
                                          f"no matching annotation was found, found: {warnings + infos}",
                                   f"annotations: wrong {kind} text")
            for a in actual:
                if not any(e.matches(a) for e in expected):
                    raise _Problem(phase, f"unexpected {kind} annotation {a!r}",
                                   f"annotations: unexpected {kind}")
        if ev.expects.get("no_warn") and warnings:
            raise _Problem(phase, f"unexpected warning annotations: {warnings}", "annotations: unexpected warn")
        if ev.expects.get("no_info") and infos:
            raise _Problem(phase, f"unexpected info annotations: {infos}", "annotations: unexpected info")

    def _check_range(self, storage: MemoryStorage, ev: EvalCmd) -> None:
        phase = "range"
        res, exc = self._query(phase, self.engine.range, storage, ev.expr, ev.start_ms, ev.end_ms, ev.step_ms)
        if not self._outcome(ev, phase, res, exc):
            return
        try:
            obs = observe_range(res.value, res.steps_ms)
        except TypeError as e:
            raise _Problem(phase, str(e), "wrong result type") from None
        err = compare(ev, obs)
        if err:
            raise _Problem(phase, _with_diff(err, ev, obs), "result mismatch")

    def _check_instant(self, storage: MemoryStorage, ev: EvalCmd, expr: Any) -> None:
        runs: list[tuple[str, str, int]] = [("instant", ev.expr, ev.eval_ms)]
        if self.at_reruns:
            pinned = add_at(expr, ev.eval_ms)
            if pinned is not None:
                from promlab.promql.parser import to_string

                text = to_string(pinned)
                runs += [(f"@-rerun at {t}ms", text, t) for t in rerun_times(ev.eval_ms)]
        for phase, text, t in runs:
            res, exc = self._query(phase, self.engine.instant, storage, text, t)
            if not self._outcome(ev, phase, res, exc):
                continue
            try:
                obs = observe_instant(res.value)
            except TypeError as e:
                raise _Problem(phase, str(e), "wrong result type") from None
            err = compare(ev, obs)
            if err:
                cat = "result mismatch" if phase == "instant" else "@-rerun mismatch"
                raise _Problem(phase, _with_diff(f"{err}\n    query: {text} at {t}ms", ev, obs), cat)
            if self.range_mode and not ev.exclude_from_range_query and not _QUERY_CONTEXT_FUNCS.search(text):
                self._check_range_mode(storage, ev, phase, text, t, obs)

    def _check_range_mode(self, storage: MemoryStorage, ev: EvalCmd, phase: str, text: str, t: int,
                          instant: Observed) -> None:
        phase = f"range-mode of {phase}"
        res, exc = self._query(phase, self.engine.range, storage, text, t - _MINUTE, t + _MINUTE, _MINUTE)
        if exc is not None:
            raise _Problem(phase, f"error in range mode: {type(exc).__name__}: {exc}",
                           f"range-mode error: {_normalise_error(str(exc))}")
        if ev.is_ordered:
            return
        try:
            obs = observe_range(res.value, res.steps_ms)
        except TypeError as e:
            raise _Problem(phase, str(e), "range-mode wrong result type") from None
        err = check_sorted(obs.matrix)
        if err is None:
            vec = []
            for ls, ts, vs in obs.matrix:
                hit = np.flatnonzero(ts == t)
                if hit.size:
                    x = vs[hit[0]]
                    vec.append((ls, x if isinstance(x, FloatHistogram) else float(x)))
            if instant.kind == "scalar":
                if not vec:
                    err = "range query of a scalar expression returned no point at the evaluation time"
                else:
                    err = compare(ev, Observed("scalar", scalar=float(vec[0][1])))  # type: ignore[arg-type]
            else:
                got = Observed("vector", vector=vec)
                err = compare(ev, got)
                if err:
                    err = _with_diff(err, ev, got)
        if err:
            raise _Problem(phase, f"{err}\n    query: {text} from {t - _MINUTE} to {t + _MINUTE} step 1m",
                           "range-mode mismatch")


def _with_diff(err: str, ev: EvalCmd, obs: Observed) -> str:
    d = diff(ev, obs)
    return f"{err}\n    diff (- expected, + got):\n      " + d.replace("\n", "\n      ") if d else err


_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b")
_QUOTED = re.compile(r'"[^"]*"|`[^`]*`')


def _normalise_error(msg: str) -> str:
    """An error message with quoted parts and numbers blanked, for grouping."""
    first = msg.splitlines()[0] if msg else ""
    return _NUMBERS.sub("N", _QUOTED.sub(lambda m: m.group(0)[0] * 2, first))[:100]
