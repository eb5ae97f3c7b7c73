"""``promlab demo``: the README's main command.

By default it scrapes the demo targets (node_exporter when installed, a simulated web service
with a recurring incident, promlab's own ``/metrics``) into ``./data`` with the demo rules and
opens JupyterLab on ``quickstart.ipynb`` (:mod:`promlab.demo.lab`); ``--headless`` runs the
terminal demo instead (:mod:`promlab.demo.headless`: scrape, import a dataset slice, query, plot).
The targets and the rules are in :mod:`promlab.demo.targets`.

Examples
--------
>>> from promlab.demo import run
>>> run(data="/tmp/promlab-demo", quick=True)            # doctest: +SKIP
0
"""

from __future__ import annotations

import os

from promlab.demo.headless import run_headless
from promlab.demo.lab import run_lab
from promlab.demo.targets import (
    DEMO_RULES,
    NODE_EXPORTER,
    DemoApp,
    NodeExporter,
    find_node_exporter,
    scrape_config_text,
)

__all__ = ["DEMO_RULES", "NODE_EXPORTER", "DemoApp", "NodeExporter", "find_node_exporter", "run",
           "scrape_config_text"]


def run(*, data: str | os.PathLike[str] = "data", headless: bool = False, duration: float | None = None,
        quick: bool = False, hours: float | None = None, scale: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None, open_browser: bool = True) -> int:
    """Run the demo; returns the exit code.

    With JupyterLab (the default): until Ctrl-C, or for ``duration`` seconds when given; see
    :func:`promlab.demo.lab.run_lab`. ``headless`` (implied by ``quick``): the terminal demo of
    :func:`promlab.demo.headless.run_headless` (``duration`` seconds of scraping, default 30; 5
    with ``quick``; ``hours``/``scale``/``cache_dir`` choose the imported dataset slice).
    """
    if headless or quick:
        return run_headless(data=data, duration=duration, quick=quick, hours=hours, scale=scale,
                            cache_dir=cache_dir)
    return run_lab(data=data, open_browser=open_browser, duration=duration)
