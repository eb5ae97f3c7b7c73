"""The server's fixed glibc malloc policy (promlab.api.malloc).

The policy changes the allocator of the whole process, so what it does is checked in child
processes; only calls that change nothing run in the test process.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from promlab.api.malloc import ENV_VAR, fix_malloc_policy

glibc = pytest.mark.skipif(not sys.platform.startswith("linux")
                           or platform.libc_ver()[0] != "glibc", reason="glibc only")

# 32 blocks of 512 KiB allocated, written and freed, five times; prints the minor page faults
# of the last three rounds. With glibc's adaptive policy each block stays mmapped (the mmap
# threshold rises only to the freed block's own size) and faults in again every round; with
# the fixed policy the blocks come from the heap, which is not trimmed between rounds.
_CHILD = """
import resource, sys
import numpy as np
from promlab.api.malloc import fix_malloc_policy
print(fix_malloc_policy())
faults = 0
for r in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [np.ones(1 << 16) for _ in range(32)]
    del blocks
    if r >= 2:
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults)
"""


def _child_faults(env_value: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _CHILD], env={**os.environ, ENV_VAR: env_value},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.parametrize("environ", [
    pytest.param({ENV_VAR: "default"}, id="default"),
    pytest.param({ENV_VAR: " Default "}, id="default-spaced"),
])
def test_turned_off_by_environment(environ: dict[str, str]) -> None:
    assert fix_malloc_policy(environ=environ) is False


@glibc
def test_fixed_policy_keeps_heap_between_rounds() -> None:
    fixed_on, fixed = _child_faults("fixed")
    default_on, adaptive = _child_faults("default")
    assert (fixed_on, default_on) == (True, False)
    # 3 rounds x 16 MiB = 12,288 pages re-faulted under the adaptive policy
    assert adaptive > 6000
    assert fixed < adaptive // 10
