"""A text parser whose pages carry classic histograms as NHCBs (scrape ``convert_classic_histograms_to_nhcb``).

:class:`NhcbTextParser` wraps a text :class:`~promlab.exposition.Parser` and a
:class:`~promlab.exposition.nhcb.ClassicConverter`: its pages are
:class:`~promlab.exposition.protobuf.HistogramPage` objects (float rows, then one
:data:`~promlab.exposition.protobuf.HISTOGRAM_MARK` row per converted histogram), the same shape
the protobuf parser gives, so a scrape loop handles both alike. Exemplars of converted
``_bucket`` rows move to the histogram's row, as Prometheus attaches them to the histogram.
"""

from __future__ import annotations

import numpy as np

from promlab.exposition.nhcb import ClassicConverter
from promlab.exposition.page import Exemplar
from promlab.exposition.parser import Parser
from promlab.exposition.protobuf import HISTOGRAM_MARK, HistogramPage
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram

__all__ = ["NhcbTextParser"]


class NhcbTextParser:
    """Parses text bodies of one target, converting ``histogram`` families to NHCBs.

    Parameters
    ----------
    keep_classic
        Also keep the classic series (``always_scrape_classic_histograms``).
    strict
        Passed to the text :class:`~promlab.exposition.Parser` (``False``: a Prometheus scrape's
        leniency about metadata lines).

    Examples
    --------
    >>> p = NhcbTextParser()
    >>> page = p.parse(b'# TYPE h histogram\\nh_bucket{le="1"} 2\\nh_bucket{le="+Inf"} 3\\n'
    ...                b'h_count 3\\nh_sum 4.5\\n')
    >>> [str(p.series[r]) for r in page.refs.tolist()], page.histograms[int(page.refs[0])].count
    (['h'], 3)
    """

    def __init__(self, *, keep_classic: bool = False, strict: bool = True) -> None:
        self.parser = Parser(strict=strict)
        self.converter = ClassicConverter(keep_classic=keep_classic)

    @property
    def series(self) -> list[Labels]:
        return self.converter.series

    def __len__(self) -> int:
        return len(self.converter.series)

    def parse(self, body: bytes | str, content_type: str | None = None) -> HistogramPage:
        page = self.parser.parse(body, content_type)
        c = self.converter.convert(page.series, page.refs, page.values, page.timestamps_ms, page.metadata)
        nf = int(c.refs.shape[0])
        refs = np.concatenate([c.refs, c.hist_refs]).astype(np.int32)
        values = np.concatenate([c.values, np.full(c.hist_refs.shape[0], HISTOGRAM_MARK, np.float64)])
        ts = np.concatenate([c.timestamps_ms, c.hist_timestamps_ms])
        hists: dict[int, Histogram | FloatHistogram] = {}
        for r, h in zip(c.hist_refs.tolist(), c.histograms, strict=True):
            hists.setdefault(r, h)
        exemplars: list[Exemplar] = []
        if page.exemplars:
            new_pos = np.full(len(page), -1, np.int64)
            new_pos[c.float_rows] = np.arange(nf)
            group = self.converter.group_of_rows(page.refs)
            hist_pos = {r: nf + k for k, r in enumerate(c.hist_refs.tolist())}
            for ex in page.exemplars:
                at = int(new_pos[ex.index])
                if at < 0:
                    at = hist_pos.get(int(group[ex.index]), -1)
                if at >= 0:
                    exemplars.append(Exemplar(at, ex.labels, ex.value, ex.timestamp_ms))
        empty = {int(self.converter.own_ref(r)): names for r, names in page.empty_labels.items()}
        return HistogramPage(refs=refs, values=values, timestamps_ms=ts, series=self.series,
                             metadata=page.metadata, exemplars=exemplars, empty_labels=empty,
                             histograms=hists)
