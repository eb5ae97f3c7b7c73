"""``promlab.model.arrays.unique``: np.unique's answer, and safe in a daemon thread at exit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from promlab.model.arrays import unique

CASES = [
    ("empty", np.zeros(0, np.int64)),
    ("one", np.array([7], np.int32)),
    ("ints", np.array([3, 1, 3, 2, 1], np.int64)),
    ("int32-codes", np.array([-1, 4, 4, 0, -1], np.int32)),
    ("uint8", np.array([255, 0, 255], np.uint8)),
    ("floats-nans", np.array([np.nan, 1.5, -0.0, 0.0, np.nan, 1.5])),
    ("all-nan", np.array([np.nan, np.nan])),
    ("strings", np.array(["b", "a", "b"])),
    ("2-d", np.array([[2, 1], [1, 3]])),
]


@pytest.mark.parametrize("values", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_unique_matches_numpy(values: np.ndarray) -> None:
    got, want = unique(values), np.unique(values)
    assert got.dtype == want.dtype
    assert got.tolist() == want.tolist() or np.array_equal(got, want, equal_nan=True)


_EXIT = """
import threading, numpy as np
from promlab.model.arrays import unique
a = np.random.default_rng(0).integers(0, 1000, 2_000_000).astype(np.int32)
ran = threading.Event()
def loop():
    while True:
        unique(a)
        ran.set()
for _ in range(2):
    threading.Thread(target=loop, daemon=True).start()
ran.wait()
"""


def test_daemon_threads_in_unique_at_exit() -> None:
    """Two daemon threads inside ``unique`` while the interpreter exits: every run exits 0
    (np.unique's hash table aborted about a third of such runs with numpy 2.4)."""
    for _ in range(8):
        done = subprocess.run([sys.executable, "-c", _EXIT], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-2000:]


def test_no_hash_table_unique_in_the_package() -> None:
    """No plain ``np.unique(x)`` (the hash-table path) in promlab: ``unique`` instead. Calls with
    ``return_index``/``return_inverse``/``return_counts`` or ``axis`` sort, and stay."""
    import ast
    from pathlib import Path

    import promlab

    found = []
    for path in Path(promlab.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("unique", "unique_values")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "np"
                    and not any(k.arg in ("return_index", "return_inverse", "return_counts",
                                          "axis") for k in node.keywords)):
                found.append(f"{path}:{node.lineno}")
    assert not found, found
