"""Seeded generators of valid exposition pages for the differential tests, and the reference
(prometheus_client) side of the comparison."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from promlab.exposition import Page
from promlab.model import Labels

ALPHABET = 'ab xyz_09\\"\n{},=#é日🙂\t'
SPECIAL_VALUES = ["NaN", "+Inf", "-Inf", "0", "-0.0", "1e-05", "1.5e+300", "-17", "3.141592653589793"]


def escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def quote(s: str) -> str:
    return '"' + escape(s) + '"'


def _label_value(rnd: random.Random) -> str:
    n = rnd.choice([0, 1, 3, 8, 20])
    return "".join(rnd.choice(ALPHABET) for _ in range(n))


def _label_names(rnd: random.Random, k: int) -> list[str]:
    names: set[str] = set()
    while len(names) < k:
        first = rnd.choice("abcdefghijklmnopqrstuvwxyz_")
        rest = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(rnd.randint(0, 6)))
        name = first + rest
        if not name.startswith("__") and name not in ("le", "quantile"):
            names.add(name)
    return sorted(names, key=lambda _: rnd.random())


def _labels(rnd: random.Random, names: list[str], extra: str = "") -> str:
    parts = [f'{n}="{escape(_label_value(rnd))}"' for n in names]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else rnd.choice(["", "{}"])


def _value(rnd: random.Random, nonneg: bool = False) -> str:
    r = rnd.random()
    if r < 0.3:
        return str(rnd.randint(0 if nonneg else -1000, 10**12))
    if r < 0.7:
        v = rnd.random() * 10 ** rnd.randint(-5, 8)
        return repr(v if nonneg else v * rnd.choice([1, -1]))
    if nonneg:
        return rnd.choice(["0", "1e-05", "+Inf", "12.5"])
    return rnd.choice(SPECIAL_VALUES)


def text_page(seed: int, families: int = 12) -> str:
    """A valid Prometheus text-format page exercising escapes, all types, specials, timestamps."""
    rnd = random.Random(seed)
    out: list[str] = []
    for f in range(families):
        kind = rnd.choice(["counter", "gauge", "untyped", "histogram", "summary", "bare", "utf8"])
        name = f"fam{seed}_{f}"
        ts_mode = rnd.choice(["none", "none", "ms"])

        def ts(ts_mode: str = ts_mode) -> str:
            return "" if ts_mode == "none" else " " + str(rnd.randint(0, 2 * 10**12))

        if kind == "utf8":
            lab = f'"{escape("weird.label" + str(f))}"="{escape(_label_value(rnd))}"'
            out.append(f'{{"{name}.dotted", {lab}}} {_value(rnd)}{ts()}')
            continue
        if kind == "bare":
            out.append(f"{name}{rnd.choice([' ', '   '])}{_value(rnd)}{ts()}")
            continue
        if kind == "counter":
            name += "_total"
        if rnd.random() < 0.7:
            out.append(f"# HELP {name} help with \\\\ backslash and \\n newline é {f}")
        if rnd.random() < 0.3:
            out.append("# a free comment")
        if rnd.random() < 0.2:
            out.append("")
        out.append(f"# TYPE {name} {kind}")
        names = _label_names(rnd, rnd.randint(0, 4))
        for _ in range(rnd.randint(1, 3)):
            if kind == "histogram":
                base_vals = [f'{n}="{escape(_label_value(rnd))}"' for n in names]
                count = 0
                for le in ["0.005", "0.1", "1", "10", "+Inf"]:
                    count += rnd.randint(0, 100)
                    lab = "{" + ",".join([*base_vals, f'le="{le}"']) + "}"
                    out.append(f"{name}_bucket{lab} {count}{ts()}")
                base = "{" + ",".join(base_vals) + "}" if base_vals else ""
                out.append(f"{name}_sum{base} {_value(rnd)}{ts()}")
                out.append(f"{name}_count{base} {count}{ts()}")
            elif kind == "summary":
                base_vals = [f'{n}="{escape(_label_value(rnd))}"' for n in names]
                for q in ["0.5", "0.9", "0.99"]:
                    lab = "{" + ",".join([*base_vals, f'quantile="{q}"']) + "}"
                    out.append(f"{name}{lab} {_value(rnd)}{ts()}")
                base = "{" + ",".join(base_vals) + "}" if base_vals else ""
                out.append(f"{name}_sum{base} {_value(rnd)}{ts()}")
                out.append(f"{name}_count{base} {rnd.randint(0, 10**6)}{ts()}")
            else:
                out.append(f"{name}{_labels(rnd, names)} {_value(rnd)}{ts()}")
    return "\n".join(out) + "\n"


def om_page(seed: int, families: int = 12) -> str:
    """A valid OpenMetrics page: all types, _created, exemplars, units, float timestamps."""
    rnd = random.Random(seed)
    out: list[str] = []
    for f in range(families):
        kind = rnd.choice(["counter", "gauge", "unknown", "histogram", "gaugehistogram", "summary",
                           "info", "stateset"])
        name = f"fam{seed}_{f}"
        unit = ""
        if kind in ("counter", "gauge", "histogram", "summary") and rnd.random() < 0.3:
            unit = "seconds"
            name += "_seconds"
        ts_mode = rnd.choice(["none", "int", "float"])
        stamp = {"none": "", "int": f" {rnd.randint(10**9, 2 * 10**9)}",
                 "float": f" {rnd.randint(10**9, 2 * 10**9)}.{rnd.randint(0, 999):03d}"}[ts_mode]

        def exemplar() -> str:
            if rnd.random() < 0.5:
                return ""
            lab = rnd.choice(["{}", f'{{trace_id="{rnd.getrandbits(64):016x}"}}',
                              f'{{a="{rnd.choice(["x y", "é", "a=b,c"])}"}}'])
            ets = rnd.choice(["", f" {rnd.randint(10**9, 2 * 10**9)}.{rnd.randint(0, 999):03d}"])
            return f" # {lab} {_value(rnd, True)}{ets}"

        out.append(f"# TYPE {name} {kind}")
        if unit:
            out.append(f"# UNIT {name} {unit}")
        if rnd.random() < 0.7:
            out.append(f"# HELP {name} help \\\\ with \\n escapes \\\" and é")
        names = _label_names(rnd, rnd.randint(0, 3))
        if kind == "stateset":
            names = [n for n in names if n != name]
        for rep in range(rnd.randint(1, 3)):
            base_vals = [f'{n}="{escape(_label_value(rnd))}"' for n in names] + [f'rep="{rep}"']
            base = "{" + ",".join(base_vals) + "}"

            def lab(extra: str, base_vals: list[str] = base_vals) -> str:
                return "{" + ",".join([*base_vals, extra]) + "}"

            if kind == "counter":
                out.append(f"{name}_total{base} {_value(rnd, True)}{stamp}{exemplar()}")
                if rnd.random() < 0.5:
                    out.append(f"{name}_created{base} {rnd.randint(10**9, 2 * 10**9)}.5{stamp}")
            elif kind in ("gauge", "unknown"):
                out.append(f"{name}{base} {_value(rnd)}{stamp}")
            elif kind in ("histogram", "gaugehistogram"):
                count = 0
                for le in ["0.005", "0.1", "1.0", "10.0", "+Inf"]:
                    count += rnd.randint(0, 100)
                    out.append(f"{name}_bucket{lab('le=' + quote(le))} {count}{stamp}{exemplar()}")
                s, c = ("_sum", "_count") if kind == "histogram" else ("_gsum", "_gcount")
                out.append(f"{name}{c}{base} {count}{stamp}")
                out.append(f"{name}{s}{base} {rnd.random() * 100:.3f}{stamp}")
                if kind == "histogram" and rnd.random() < 0.5:
                    out.append(f"{name}_created{base} {rnd.randint(10**9, 2 * 10**9)}{stamp}")
            elif kind == "summary":
                for q in ["0.5", "0.9", "0.99"]:
                    out.append(f"{name}{lab('quantile=' + quote(q))} {_value(rnd, True)}{stamp}")
                out.append(f"{name}_sum{base} {rnd.random() * 100:.3f}{stamp}")
                out.append(f"{name}_count{base} {rnd.randint(0, 1000)}{stamp}")
            elif kind == "info":
                out.append(f"{name}_info{base} 1{stamp}")
                break
            else:  # stateset
                for state in ["a", "b", "c"]:
                    out.append(f"{name}{lab(name + '=' + quote(state))} {rnd.choice(['0', '1'])}{stamp}")
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _ts_ms(ts: Any, om: bool) -> int | None:
    if ts is None:
        return None
    if om:  # Prometheus's int64(seconds * 1000) of the correctly rounded float seconds
        if hasattr(ts, "sec"):
            return math.trunc(float(Decimal(int(ts.sec)) + Decimal(int(ts.nsec)).scaleb(-9)) * 1000)
        return math.trunc(float(ts) * 1000)
    return round(float(ts) * 1000)


def reference_samples(text: str, om: bool) -> list[tuple[Labels, float, int | None, Any]]:
    """Flattened samples as prometheus_client parses them: (labels, value, ts_ms, exemplar)."""
    out = []
    for fam in (om_families if om else text_families)(text):
        for s in fam.samples:
            d = {k: v for k, v in s.labels.items() if v != ""}
            d["__name__"] = s.name
            ex = None
            if s.exemplar is not None:
                ex = (Labels({k: v for k, v in s.exemplar.labels.items()}), float(s.exemplar.value),
                      _ts_ms(s.exemplar.timestamp, True))
            out.append((Labels(d), float(s.value), _ts_ms(s.timestamp, om), ex))
    return out


def page_samples(page: Page) -> list[tuple[Labels, float, int | None, Any]]:
    """The same shape from a promlab page."""
    ex = {e.index: (e.labels, e.value, e.timestamp_ms) for e in page.exemplars}
    return [(ls, v, t, ex.get(i)) for i, (ls, v, t) in enumerate(page.iter_samples())]


def same(a: list[tuple[Labels, float, int | None, Any]], b: list[tuple[Labels, float, int | None, Any]]) -> bool:
    """Equal sample lists, NaN equal to NaN."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[0] != y[0] or x[2] != y[2] or x[3] != y[3]:
            return False
        if not (x[1] == y[1] or (math.isnan(x[1]) and math.isnan(y[1]))):
            return False
    return True
