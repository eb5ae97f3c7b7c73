"""``promlab demo``: the demo targets scraped into ``./data`` with the demo rules, and JupyterLab
opened on ``quickstart.ipynb``.

It starts the targets of :func:`~promlab.demo.headless.start_targets` (node_exporter when
installed, the simulated web service with its recurring incident, promlab's own API and
``/metrics``), writes ``prometheus.yml`` and the demo rules into the data directory, scrapes and
evaluates the rules through a :class:`promlab.Session`, copies the example notebooks into
``<data>/notebooks`` (from the source checkout's ``notebooks/``, or from
``<prefix>/share/promlab/notebooks`` where the wheel installs them; notebooks already there are
kept, so edits survive the next run) and starts JupyterLab there. It prints the Lab URL with its
token as soon as Lab answers, then the demo alert's state changes, until Ctrl-C or SIGTERM; then
it stops Lab (its whole process group: kernels too), the rules, the scraper, the API and the
targets, and leaves the data.

The kernel reads the store the demo writes: ``PROMLAB_DEMO_DATA`` (the data directory, to open
read-only beside the demo) and ``PROMLAB_DEMO_CONFIG`` (its ``prometheus.yml``) are set in
Lab's environment.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from promlab.demo.headless import sigterm_as_interrupt, start_targets, write_config
from promlab.demo.targets import REPO, free_port

if TYPE_CHECKING:
    from promlab.session import Session

__all__ = ["Lab", "find_notebooks", "run_lab"]

#: Seconds JupyterLab has to answer before the demo gives up on it.
LAB_TIMEOUT = 30.0


def find_notebooks() -> Path | None:
    """The example notebooks: the checkout's ``notebooks/``, else the installed copy."""
    for d in (REPO / "notebooks", Path(sys.prefix) / "share" / "promlab" / "notebooks"):
        if (d / "quickstart.ipynb").is_file():
            return d
    return None


def copy_notebooks(src: Path | None, dest: Path) -> list[str]:
    """Copy ``src``'s notebooks into ``dest`` (existing ones are kept); their names."""
    dest.mkdir(parents=True, exist_ok=True)
    if src is not None:
        for nb in sorted(src.glob("*.ipynb")):
            if not (dest / nb.name).exists():
                shutil.copy2(nb, dest / nb.name)
    return sorted(p.name for p in dest.glob("*.ipynb"))


class Lab:
    """JupyterLab on ``root`` in its own process group on a free 127.0.0.1 port with a random
    token; :meth:`stop` ends the group (kernels included)."""

    def __init__(self, root: Path, *, env: dict[str, str], open_browser: bool = True,
                 log: IO[bytes] | None = None) -> None:
        import httpx

        root = root.resolve()  # Lab runs in ``root``: a relative root would be taken from there
        self.port, self.token = free_port(), secrets.token_hex(16)
        args = [sys.executable, "-m", "jupyterlab", "--ip", "127.0.0.1", f"--port={self.port}",
                f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
                "--ServerApp.port_retries=0", "--LabApp.news_url=None"]
        if not open_browser:
            args.append("--no-browser")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        if open_browser:
            args.append(str(root / "quickstart.ipynb"))
        self.process = subprocess.Popen(args, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                        stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + LAB_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited with {self.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.base}/api/status?token={self.token}", timeout=2).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JupyterLab did not answer within {LAB_TIMEOUT:g} s")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The quickstart notebook's URL, token included."""
        return f"{self.base}/lab/tree/quickstart.ipynb?token={self.token}"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to Lab's process group, SIGKILL after ``timeout``."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        with contextlib.suppress(ProcessLookupError):  # kernels that outlived Lab in its group
            os.killpg(self.process.pid, signal.SIGKILL)


def run_lab(*, data: str | os.PathLike[str] = "data", open_browser: bool = True,
            duration: float | None = None) -> int:
    """Run the demo with JupyterLab; returns the exit code (0 after Ctrl-C or ``duration``
    seconds, 1 when it could not start)."""
    from promlab.errors import PromlabError
    from promlab.session import Session as _Session

    root = Path(data)
    print(f"promlab demo: targets -> {root} (scraped, rules evaluated) -> JupyterLab", flush=True)
    with sigterm_as_interrupt(), contextlib.ExitStack() as stack:
        try:
            try:
                session = _Session(root)
            except PromlabError as e:  # e.g. a `promlab scrape` daemon holds the store's lock
                print(f"promlab demo: cannot open the store {root}: {e}", file=sys.stderr)
                return 1
            stack.callback(_closing(session.close, "scraper, rules and API stopped; the data stays in " + str(root)))
            targets = start_targets(stack, session)
            cfg = write_config(root, targets)
            session.scrape.start(cfg)
            session.rules.start(notify=False)
            print(f"  scraping every 1 s into {root} ({cfg}), rules from {root / 'demo_rules.yml'}", flush=True)
            work = root / "notebooks"
            names = copy_notebooks(find_notebooks(), work)
            print(f"  notebooks: {work} ({', '.join(names) or 'none found'})", flush=True)
            env = dict(os.environ, PROMLAB_DEMO_DATA=str(root.resolve()), PROMLAB_DEMO_CONFIG=str(cfg.resolve()))
            try:
                log = stack.enter_context((root / "jupyterlab.log").open("ab"))
                lab = Lab(work, env=env, open_browser=open_browser, log=log)
            except (ImportError, RuntimeError, TimeoutError, OSError) as e:
                print(f"promlab demo: JupyterLab did not start ({e}); see {root / 'jupyterlab.log'}. "
                      "Run `promlab demo --headless` for the terminal demo.", file=sys.stderr, flush=True)
                return 1
            stack.callback(_closing(lab.stop, "JupyterLab stopped"))
            print(f"\nJupyterLab: {lab.url}\n", flush=True)
            print("Ctrl-C stops the demo (the data stays).", flush=True)
            _watch(session, duration)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping JupyterLab, the scraper, the rules and the targets", flush=True)
    return 0


def _closing(fn: Callable[[], None], message: str) -> Callable[[], None]:
    def close() -> None:
        fn()
        print(f"  {message}", flush=True)

    return close


def _watch(session: Session, duration: float | None) -> None:
    """Print the demo alerts' state changes until ``duration`` has passed (forever if None)."""
    deadline = None if duration is None else time.monotonic() + duration
    shown: dict[str, str] = {}
    while deadline is None or time.monotonic() < deadline:
        time.sleep(1.0)
        now = {f"{a['labels'].get('alertname', '')}{{job=\"{a['labels'].get('job', '')}\"}}": str(a["state"])
               for a in session.rules.alerts_data()}
        for key in sorted(set(now) | set(shown)):
            if now.get(key) != shown.get(key):
                print(f"  {time.strftime('%H:%M:%S')} alert {key}: {now.get(key, 'resolved')}", flush=True)
        shown = now
