"""A fixed glibc malloc policy for the server process (``promlab serve``).

glibc adjusts its thresholds as a process runs: freeing an mmapped block raises the mmap
threshold to that block's size and the trim threshold (free heap above which the heap top goes
back to the kernel) to twice that. So the policy a server ends up with depends on the largest
blocks it happened to free. An encoder that writes a 4 MB answer with small temporaries leaves
the trim threshold at ~8 MiB; the engine's arrays of the next query, freed together, then
exceed it, the heap top is returned to the kernel after every query and faults back in page by
page on the next: ~2,000 minor faults and +55 % on a 6 ms query (``benchmarks.apiquery``).
Setting the thresholds once at startup turns the adjustment off: blocks under
``mmap_threshold`` come from the heap, and up to ``trim_threshold`` bytes of free heap stay
mapped for the next query.

The cost is memory: the process keeps up to ``trim_threshold`` of free heap per malloc arena
(the event loop's and the query threads'), so its resident size stays near its peak instead
of shrinking between queries. ``promlab serve`` calls :func:`fix_malloc_policy` at startup;
``Session.serve`` in a notebook kernel does not (the kernel is not only a server). Set
``PROMLAB_MALLOC=default`` in the environment to keep glibc's adaptive policy. Without glibc
(macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Mapping

__all__ = ["ENV_VAR", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "fix_malloc_policy"]

log = logging.getLogger("promlab.api")

#: Environment variable: ``default`` keeps glibc's adaptive policy (anything else: fixed).
ENV_VAR = "PROMLAB_MALLOC"

#: Blocks from this size on are mmapped: the highest value glibc's own adjustment reaches on
#: 64-bit systems (32 MiB).
MMAP_THRESHOLD = 32 << 20

#: Free heap above this much is returned to the kernel.
TRIM_THRESHOLD = 128 << 20

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def fix_malloc_policy(*, mmap_threshold: int = MMAP_THRESHOLD,
                      trim_threshold: int = TRIM_THRESHOLD,
                      environ: Mapping[str, str] | None = None) -> bool:
    """Give this process fixed glibc mmap and trim thresholds (see the module docstring).

    Call it once, early, in a process that serves queries; it changes the allocator of the
    whole process.

    Parameters
    ----------
    mmap_threshold, trim_threshold
        In bytes.
    environ
        Where to look for :data:`ENV_VAR` (default: ``os.environ``).

    Returns
    -------
    bool
        Whether both thresholds were set: False without glibc, with ``PROMLAB_MALLOC=default``
        or when glibc refused a value.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip().lower() == "default":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has a no-op mallopt)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    if ok:
        log.debug("malloc: fixed mmap threshold %d, trim threshold %d", mmap_threshold,
                  trim_threshold)
    else:
        log.warning("malloc: glibc refused mmap threshold %d / trim threshold %d",
                    mmap_threshold, trim_threshold)
    return ok
