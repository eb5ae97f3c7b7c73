"""Label sets and label matchers.

A :class:`Labels` is an immutable mapping of label names to values, kept sorted by name (the
order Prometheus compares and prints label sets in). Its :attr:`Labels.hash` is a stable 64-bit
hash of the sorted pairs, identical in every process, so it can serve as a series id on disk.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

from promlab.errors import BadData, RegexError
from promlab.model.re2 import Regex, compile_anchored

__all__ = ["METRIC_NAME", "Labels", "MatchType", "Matcher", "format_label_value", "is_valid_label_name"]

METRIC_NAME = "__name__"
_T = TypeVar("_T")

_SEP = b"\xff"
_LEGACY_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def is_valid_label_name(name: str) -> bool:
    """Whether ``name`` is a legacy Prometheus label name, ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    return _LEGACY_LABEL.fullmatch(name) is not None


def format_label_value(value: str) -> str:
    """Quote a label value the way Prometheus prints it (Go ``strconv.Quote``-like)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


class Labels(Mapping[str, str]):
    """An immutable, name-sorted set of labels.

    Parameters
    ----------
    data
        A mapping or an iterable of ``(name, value)`` pairs. Pairs with an empty value are
        dropped: in Prometheus an empty label value is the same as no label.

    Examples
    --------
    >>> ls = Labels({"job": "api", "__name__": "up"})
    >>> ls
    Labels({'__name__': 'up', 'job': 'api'})
    >>> str(ls)
    'up{job="api"}'
    >>> ls.name
    'up'
    """

    __slots__ = ("_hash", "_pairs", "_pyhash")

    _pairs: tuple[tuple[str, str], ...]

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] | None = None, /) -> None:
        if data is None:
            pairs: tuple[tuple[str, str], ...] = ()
        else:
            items = data.items() if isinstance(data, Mapping) else data
            pairs = tuple(sorted((str(k), str(v)) for k, v in items if v != ""))
            for i in range(1, len(pairs)):
                if pairs[i][0] == pairs[i - 1][0]:
                    raise BadData(f"duplicate label name {pairs[i][0]!r}")
        self._pairs = pairs
        self._hash: int | None = None
        self._pyhash: int | None = None

    @classmethod
    def from_sorted_pairs(cls, pairs: tuple[tuple[str, str], ...]) -> Labels:
        """Build from pairs already sorted by name, unique and without empty values (no checks)."""
        obj = cls.__new__(cls)
        obj._pairs = pairs
        obj._hash = None
        obj._pyhash = None
        return obj

    @classmethod
    def from_strings(cls, *args: str) -> Labels:
        """``Labels.from_strings("job", "api", "instance", "a:1")``."""
        if len(args) % 2:
            raise BadData("from_strings needs name/value pairs")
        return cls(zip(args[0::2], args[1::2], strict=True))

    # --- Mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> str:
        for k, v in self._pairs:
            if k == name:
                return v
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self._pairs)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...
    def get(self, name: str, /, default: Any = None) -> Any:
        for k, v in self._pairs:
            if k == name:
                return v
        return default

    # --- identity ----------------------------------------------------------------------------
    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The sorted ``(name, value)`` pairs."""
        return self._pairs

    @property
    def hash(self) -> int:
        """Stable signed 64-bit hash of the label set (same in every process and run)."""
        h = self._hash
        if h is None:
            h = _stable_hash(self._pairs)
            self._hash = h
        return h

    def __hash__(self) -> int:
        h = self._pyhash
        if h is None:
            h = hash(self._pairs)
            self._pyhash = h
        return h

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._pairs == other._pairs
        if isinstance(other, Mapping):
            return dict(self._pairs) == dict(other)
        return NotImplemented

    def __lt__(self, other: Labels) -> bool:
        return self._pairs < other._pairs

    def __le__(self, other: Labels) -> bool:
        return self._pairs <= other._pairs

    # --- derived sets --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The metric name (``__name__``), or ``""``."""
        return self.get(METRIC_NAME, "")

    def set(self, name: str, value: str) -> Labels:
        """A copy with ``name`` set to ``value`` (removed when ``value`` is empty)."""
        d = dict(self._pairs)
        if value == "":
            d.pop(name, None)
        else:
            d[name] = value
        return Labels(d)

    def update(self, other: Mapping[str, str]) -> Labels:
        """A copy with every label of ``other`` set (empty values remove)."""
        d = dict(self._pairs)
        for k, v in other.items():
            if v == "":
                d.pop(k, None)
            else:
                d[k] = v
        return Labels(d)

    def without(self, names: Iterable[str]) -> Labels:
        """A copy without the given label names."""
        drop = set(names)
        return Labels.from_sorted_pairs(tuple(p for p in self._pairs if p[0] not in drop))

    def keep(self, names: Iterable[str]) -> Labels:
        """A copy with only the given label names."""
        keep = set(names)
        return Labels.from_sorted_pairs(tuple(p for p in self._pairs if p[0] in keep))

    def without_name(self) -> Labels:
        """A copy without ``__name__``."""
        return self.without((METRIC_NAME,))

    def to_dict(self) -> dict[str, str]:
        return dict(self._pairs)

    # --- printing ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Labels({dict(self._pairs)!r})"

    def __str__(self) -> str:
        """Prometheus's text form: ``name{a="b", c="d"}``, quoting names that need it."""
        name = self.name
        parts = []
        for k, v in self._pairs:
            if k == METRIC_NAME and _LEGACY_NAME.match(name):
                continue
            key = k if _LEGACY_LABEL.match(k) else format_label_value(k)
            parts.append(f"{key}={format_label_value(v)}")
        if name and _LEGACY_NAME.match(name):
            return f"{name}{{{', '.join(parts)}}}" if parts else name
        return "{" + ", ".join(parts) + "}"


def _stable_hash(pairs: tuple[tuple[str, str], ...]) -> int:
    h = hashlib.blake2b(digest_size=8)
    for k, v in pairs:
        h.update(k.encode())
        h.update(_SEP)
        h.update(v.encode())
        h.update(_SEP)
    return int.from_bytes(h.digest(), "little", signed=True)


class MatchType(enum.Enum):
    """The four label-matcher operators."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"

    def __str__(self) -> str:
        return self.value


class Matcher:
    """A label matcher: ``name OP value``.

    Regular expressions are fully anchored, as in Prometheus. A matcher for an absent label sees
    the empty string, so ``{foo=""}`` selects series without ``foo``.

    Examples
    --------
    >>> Matcher.parse_op("=~", "job", "api|web").matches("web")
    True
    >>> Matcher(MatchType.REGEX, "job", "api").matches("api2")
    False
    """

    __slots__ = ("name", "regex", "type", "value")

    def __init__(self, type: MatchType, name: str, value: str) -> None:
        self.type = type
        self.name = name
        self.value = value
        self.regex: Regex | None = None
        if type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                self.regex = compile_anchored(value)
            except RegexError as exc:
                raise BadData(f"invalid regular expression {value!r}: {exc}") from exc

    @classmethod
    def parse_op(cls, op: str, name: str, value: str) -> Matcher:
        return cls(MatchType(op), name, value)

    def __reduce__(self) -> tuple[type[Matcher], tuple[MatchType, str, str]]:
        # Pickled as its parts: the compiled regex does not pickle and is rebuilt on load
        # (queries travel to Dask workers as ASTs).
        return (Matcher, (self.type, self.name, self.value))

    def matches(self, value: str) -> bool:
        t = self.type
        if t is MatchType.EQUAL:
            return value == self.value
        if t is MatchType.NOT_EQUAL:
            return value != self.value
        assert self.regex is not None
        hit = self.regex.matches(value)
        return hit if t is MatchType.REGEX else not hit

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return self.matches(labels.get(self.name, "") or "")

    def matches_empty(self) -> bool:
        """Whether this matcher selects series that lack the label."""
        return self.matches("")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matcher):
            return NotImplemented
        return (self.type, self.name, self.value) == (other.type, other.name, other.value)

    def __hash__(self) -> int:
        return hash((self.type, self.name, self.value))

    def __repr__(self) -> str:
        return f"Matcher({self.name}{self.type.value}{format_label_value(self.value)})"

    def __str__(self) -> str:
        name = self.name if _LEGACY_LABEL.match(self.name) else format_label_value(self.name)
        return f"{name}{self.type.value}{format_label_value(self.value)}"
