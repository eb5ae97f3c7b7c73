"""``describe_store``: what ``promlab tsdb info`` and the demo report, at each stage of a store."""

from __future__ import annotations

import json

import pytest

from promlab.model import Labels
from promlab.storage import StoreInfo, describe_store, open_store

T0 = 1_700_000_000_000


def _fill(store, *, series: int, samples: int) -> None:
    app = store.appender()
    for s in range(series):
        labels = Labels({"__name__": "m", "instance": f"i{s}", "job": "j"})
        for k in range(samples):
            app.append(labels, T0 + k * 15_000, float(k))
    app.commit()


@pytest.mark.parametrize(("series", "samples", "flush", "want_blocks"), [
    pytest.param(0, 0, False, 0, id="empty"),
    pytest.param(3, 10, False, 0, id="head-only"),
    pytest.param(3, 10, True, 1, id="flushed"),
])
def test_describe_store(tmp_path, series, samples, flush, want_blocks):
    with open_store(tmp_path / "s") as store:
        _fill(store, series=series, samples=samples)
        if flush:
            store.flush()
        info = describe_store(store)
    assert isinstance(info, StoreInfo)
    assert (info.series, info.samples) == (series, series * samples)
    assert info.blocks == want_blocks
    if samples:
        assert (info.mint_ms, info.maxt_ms) == (T0, T0 + (samples - 1) * 15_000)
        assert info.label_names == ["__name__", "instance", "job"]
    else:
        assert (info.mint_ms, info.maxt_ms, info.label_names) == (None, None, [])
    if flush:
        assert info.block_samples == series * samples and info.block_bytes > 0
        assert info.bytes_per_sample == pytest.approx(info.block_bytes / info.block_samples)
    else:
        assert (info.block_samples, info.block_bytes, info.bytes_per_sample) == (0, 0, None)
    assert info.other_bytes >= 0
    assert json.loads(json.dumps(info.to_dict())) == info.to_dict()
    assert set(info.to_dict()) == {
        "series", "samples", "mint_ms", "maxt_ms", "label_names", "blocks", "block_samples",
        "block_bytes", "other_bytes", "bytes_per_sample", "wal_losses"}
    assert info.wal_losses == {"records": 0, "samples": 0, "series": 0, "bytes": 0,
                               "checkpoints": 0, "torn_bytes": 0}
