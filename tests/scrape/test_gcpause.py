"""scrape.gcpause: the collector is paused inside the block, its state restored after, and the
objects made meanwhile frozen only when asked."""

from __future__ import annotations

import gc

import pytest

from promlab.scrape.gcpause import paused_gc


@pytest.mark.parametrize(("enabled", "freeze"), [(True, False), (True, True), (False, False), (False, True)],
                         ids=["on", "on-freeze", "off", "off-freeze"])
def test_paused_gc(enabled: bool, freeze: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        before = gc.get_freeze_count()
        with paused_gc() as flag:
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]  # tracked containers
            flag.freeze = freeze
        assert gc.isenabled() == enabled
        assert (gc.get_freeze_count() >= before + len(made)) == freeze
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
