"""``%promql``, ``%%promql`` and ``%promlab``: thin adapters over the notebook's Session.

``%promql [--time T | --range 1h [--end E] --step 30s | --start S --end E --step D] [--wide]
[--plot [--kind line|stacked|heatmap] [--tz UTC|local]] [-o NAME] EXPR`` evaluates ``EXPR`` and
returns the result frame (``--wide``: one column per series; ``--plot``: shows a plot instead;
``-o NAME``: also stores the frame in ``NAME``). ``%%promql`` takes the expression from the cell
body. ``{name}`` is replaced by the Python variable ``name``. A failed query prints the
expression with a caret under the problem, without a traceback; ``%promql --help`` prints the
options (``--opt=value`` works too; a mistyped ``--option`` is an error, not a query).

``%promlab`` subcommands: ``data DIR``, ``info``, ``scrape start CONFIG | stop | status``,
``targets``, ``import FILE``, ``rules load FILE``, ``alerts``, ``serve [--listen ADDR]``,
``serve stop | status``.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from promlab.errors import PromlabError
from promlab.notebook.format import error_text
from promlab.notebook.options import USAGE, interpolate, split_options

if TYPE_CHECKING:
    from promlab.notebook.state import NotebookState

__all__ = ["PromlabMagics"]

_USAGE = """\
%promlab data DIR              use the store in DIR (closes the current session)
%promlab info                  what the store holds
%promlab scrape start CONFIG   scrape the targets of a prometheus.yml in the background
%promlab scrape stop | status
%promlab targets               the scrape targets and their health
%promlab import FILE           import an OpenMetrics / text exposition file
%promlab rules load FILE       load alerting and recording rules
%promlab alerts                the alerts of the loaded rules
%promlab serve [--listen ADDR] the Prometheus HTTP API in the background
%promlab serve stop | status"""


def _fail(message: str) -> None:
    print(message, file=sys.stderr)


@magics_class
class PromlabMagics(Magics):
    """The magics of the promlab extension (see the module docstring)."""

    def __init__(self, shell: Any, state: NotebookState) -> None:
        super().__init__(shell)
        self.state = state
        self.matcher: Any = None
        self.atexit: Any = None

    # --- %promql ---------------------------------------------------------------------------------
    @no_var_expand
    @line_magic
    def promql(self, line: str) -> Any:
        """Evaluate a PromQL expression: ``%promql [options] EXPR`` (see the module docs)."""
        return self._run(line, None)

    @no_var_expand
    @cell_magic("promql")  # type: ignore[arg-type]
    def promql_cell(self, line: str, cell: str) -> Any:
        """``%%promql [options]`` with the expression in the cell body."""
        return self._run(line, cell)

    def _run(self, line: str, cell: str | None) -> Any:
        ns = self.shell.user_ns if self.shell is not None else {}
        try:
            opts, expr = split_options(interpolate(line, ns))
        except (ValueError, AttributeError) as e:
            _fail(f"%promql: {e}")
            return None
        if opts.help:
            print(USAGE)
            return None
        if cell is not None:
            expr = (expr + "\n" + interpolate(cell, ns)).strip()
        if not expr:
            _fail("%promql: no expression given")
            return None
        try:
            result = self.state.session.evaluate(expr, **opts.query_kwargs())
            df = result.to_frame()
        except (PromlabError, ValueError) as e:
            _fail(error_text(e, expr))
            return None
        if opts.output:
            ns[opts.output] = df
        if opts.plot:
            from IPython.display import display

            from promlab.plotting import plot_frame

            kind: Any = opts.kind
            ax = plot_frame(df, kind=kind, tz=opts.tz)
            display(ax.figure)  # type: ignore[no-untyped-call]
            import matplotlib.pyplot as plt

            plt.close(ax.get_figure(root=True))
            return None
        return df.prom.wide() if opts.wide else df

    # --- %promlab ----------------------------------------------------------------------------------
    @line_magic
    def promlab(self, line: str) -> Any:
        """Control the notebook's promlab session: ``%promlab help`` lists the subcommands."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            _fail(f"%promlab: {e}")
            return None
        if not words or words[0] in ("help", "-h", "--help"):
            print(_USAGE)
            return None
        cmd, args = words[0], words[1:]
        handler = getattr(self, f"_cmd_{cmd}", None)
        if handler is None:
            _fail(f"%promlab: unknown command {cmd!r}\n{_USAGE}")
            return None
        try:
            return handler(args)
        except (PromlabError, OSError, ValueError) as e:
            _fail(f"%promlab {cmd}: {type(e).__name__}: {e}")
            return None

    def _cmd_data(self, args: list[str]) -> None:
        if len(args) != 1:
            print(f"data directory: {self.state.data}")
            return
        self.state.use(args[0])
        s = self.state.session
        print(f"promlab: using {s.path or s.store!r}")

    def _cmd_info(self, args: list[str]) -> Any:
        return self.state.session.info()

    def _cmd_scrape(self, args: list[str]) -> Any:
        scrape = self.state.session.scrape
        sub = args[0] if args else "status"
        if sub == "start":
            scrape.start(args[1] if len(args) > 1 else None)
            print(f"promlab: scraping {len(scrape.targets())} target(s) in the background")
            return None
        if sub == "stop":
            scrape.stop()
            print("promlab: scraper stopped")
            return None
        if sub == "status":
            print(f"promlab: scraper {'running' if scrape.running else 'stopped'}")
            return scrape.targets() if scrape.running else None
        raise ValueError(f"unknown scrape command {sub!r}: start CONFIG, stop or status")

    def _cmd_targets(self, args: list[str]) -> Any:
        return self.state.session.scrape.targets()

    def _cmd_import(self, args: list[str]) -> Any:
        if len(args) != 1:
            raise ValueError("usage: %promlab import FILE")
        return self.state.session.import_file(args[0])

    def _cmd_rules(self, args: list[str]) -> Any:
        rules = getattr(self.state.session, "rules", None)
        if rules is None:
            _fail("%promlab rules: this promlab has no rule manager yet")
            return None
        if len(args) != 2 or args[0] != "load":
            raise ValueError("usage: %promlab rules load FILE")
        return rules.load(args[1])

    def _cmd_alerts(self, args: list[str]) -> Any:
        rules = getattr(self.state.session, "rules", None)
        if rules is None:
            _fail("%promlab alerts: this promlab has no rule manager yet")
            return None
        return rules.alerts()

    def _cmd_serve(self, args: list[str]) -> Any:
        session = self.state.session
        if not hasattr(session, "serve"):
            _fail("%promlab serve: the HTTP API is not available in this promlab yet")
            return None
        server = getattr(session, "server", None)
        if args in (["stop"], ["status"]):
            if server is None or not server.running:
                print("promlab: not serving")
            elif args == ["stop"]:
                server.stop()
                print(f"promlab: stopped serving {server.url}")
            else:
                print(f"promlab: serving the Prometheus API at {server.url}")
            return None
        if args and (len(args) != 2 or args[0] != "--listen"):
            raise ValueError(f"usage: %promlab serve [--listen HOST:PORT] | stop | status "
                             f"(got {' '.join(args)!r})")
        server = session.serve(args[1] if args else "127.0.0.1:9090")
        print(f"promlab: serving the Prometheus API at {getattr(server, 'url', '?')} "
              "(until %promlab serve stop, or with the session)")
        return None
