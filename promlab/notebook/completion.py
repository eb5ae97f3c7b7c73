"""Completion of PromQL: metric names, label names and label values, from a session's store.

:func:`complete_promql` is the logic (what to offer at the end of a piece of text);
:func:`promql_matcher` adapts it to IPython's completer inside ``%promql`` and ``%%promql``.

Examples
--------
>>> from promlab import MemoryStorage, Labels, Session
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "http_requests_total", "code": "200"}), [0], [1.0])
>>> with Session(st) as s:
...     complete_promql(s, "rate(http_req")[1], complete_promql(s, 'http_requests_total{code="')[1]
(['http_requests_total'], ['200'])
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from promlab.promql.parser.functions import FUNCTIONS
from promlab.promql.parser.lexer import AGGREGATORS

if TYPE_CHECKING:
    from promlab.session import Session

__all__ = ["complete_promql", "promql_matcher"]

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*$")
_LABEL_VALUE = re.compile(
    r'(?P<metric>[A-Za-z_:][A-Za-z0-9_:]*)?\{(?:[^{}]*,)?\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)'
    r'\s*(?:=~|!~|!=|=)\s*"(?P<prefix>[^"]*)$')
_LABEL_NAME = re.compile(
    r'(?P<metric>[A-Za-z_:][A-Za-z0-9_:]*)?\{(?:[^{}]*,)?\s*(?P<prefix>[A-Za-z_][A-Za-z0-9_]*)?$')
_GROUPING = re.compile(
    r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?:[^()]*,)?\s*'
    r'(?P<prefix>[A-Za-z_][A-Za-z0-9_]*)?$')
_WORDS = sorted({*FUNCTIONS, *AGGREGATORS})
_MAGIC = re.compile(r"^\s*%%?promql\b")


def complete_promql(session: Session, text: str) -> tuple[str, list[str]]:
    """What may follow ``text`` (the expression up to the cursor).

    Returns the prefix being completed (the end of ``text`` that each candidate replaces) and
    the candidates, sorted: label values inside ``{label="``, label names inside ``{`` and
    after ``by (``/``without (``/``on (``/``ignoring (``, otherwise metric names, then
    function and aggregation names.
    """
    if m := _LABEL_VALUE.search(text):
        sel = [m["metric"]] if m["metric"] else []
        values = session.label_values(m["label"], *sel)
        prefix = m["prefix"]
        return prefix, [v for v in values if v.startswith(prefix)]
    if m := _LABEL_NAME.search(text):
        sel = [m["metric"]] if m["metric"] else []
        prefix = m["prefix"] or ""
        names = [n for n in session.labels(*sel) if n != "__name__"]
        return prefix, [n for n in names if n.startswith(prefix)]
    if m := _GROUPING.search(text):
        prefix = m["prefix"] or ""
        return prefix, [n for n in session.labels() if n != "__name__" and n.startswith(prefix)]
    m = _IDENT.search(text)
    prefix = m.group(0) if m else ""
    if not prefix:
        return "", []
    metrics = [v for v in session.label_values("__name__") if v.startswith(prefix)]
    return prefix, metrics + [w for w in _WORDS if w.startswith(prefix) and w not in metrics]


def promql_matcher(get_session: Any) -> Any:
    """An IPython (v2) completion matcher over ``get_session()`` for ``%promql`` lines and
    ``%%promql`` cells; elsewhere it offers nothing and lets the other matchers run."""
    from IPython.core.completer import SimpleCompletion, context_matcher

    @context_matcher()  # type: ignore[untyped-decorator]
    def promql(context: Any) -> dict[str, Any]:
        full: str = context.full_text
        before = _text_before_cursor(full, context.cursor_line, context.cursor_position)
        first = full.split("\n", 1)[0]
        if _MAGIC.match(first) is None:
            return {"completions": [], "suppress": False}
        if first.lstrip().startswith("%%"):
            expr = before.split("\n", 1)[1] if "\n" in before else ""
        else:
            expr = re.sub(r"^\s*%promql\s*", "", before.split("\n")[-1])
        if not expr:
            return {"completions": [], "suppress": False}
        try:
            prefix, found = complete_promql(get_session(), _strip_options(expr))
        except Exception:  # completion must never raise into the editor
            return {"completions": [], "suppress": False}
        token: str = context.token
        # IPython replaces its own token; keep whatever of it lies before our prefix.
        keep = token[: len(token) - len(prefix)] if token.endswith(prefix) else ""
        return {"completions": [SimpleCompletion(keep + f, type="promql") for f in found],
                "suppress": True}

    return promql


def _text_before_cursor(full: str, line: int, column: int) -> str:
    lines = full.split("\n")
    return "\n".join([*lines[:line], lines[line][:column]]) if line < len(lines) else full


def _strip_options(expr: str) -> str:
    """Drop leading ``--option value`` words of a ``%promql`` line."""
    from promlab.notebook.options import split_options

    try:
        return split_options(expr)[1]
    except ValueError:
        return expr
