"""ipywidgets front ends: the query explorer, the rule lab, dashboards and the targets view.

Each widget keeps its state in traits and calls library functions for everything it shows, so
every action is also a method callable from Python (``explorer.run()``, ``dash.refresh()``).
Widgets carry CSS classes (``promlab-explorer``, ``promlab-dashboard``, ``promlab-targets``,
``promlab-plot``, ``promlab-rulelab``, ...) for browser tests and styling.
"""
