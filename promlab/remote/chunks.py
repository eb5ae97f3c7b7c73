"""Prometheus's XOR ("Gorilla") float chunks: an encoder for serving, a vectorised decoder.

Layout of one chunk (all bits most significant first):

- 2 bytes, big-endian: the number of samples;
- sample 0: its timestamp as a zig-zag varint, then its value's 64 bits;
- sample 1: the timestamp delta as an unsigned varint, then the value's XOR encoding;
- sample 2 on: the delta-of-delta of the timestamp (``0`` / ``10``+14 bits / ``110``+17 bits /
  ``1110``+20 bits / ``1111``+64 bits), then the value's XOR encoding against the previous value:
  ``0`` (same value), ``10`` + the meaningful bits inside the previous leading/trailing-zero
  window, or ``11`` + 5 bits leading zeros + 6 bits length (0 means 64) + the meaningful bits.

The decoder walks all chunks of a batch in lockstep: iteration ``i`` decodes sample ``i`` of
every chunk that has one with a few dozen numpy operations over the batch, so the Python cost is
per sample *position* (at most 120 for Prometheus's chunks), not per sample.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError

__all__ = [
    "MAX_SAMPLES_PER_CHUNK", "decode_xor_chunks", "encode_xor_chunk", "encode_xor_series", "read_uvarints",
]

# Prometheus cuts head chunks at 120 samples; remote read serves them as they are.
MAX_SAMPLES_PER_CHUNK = 120

_U64 = np.uint64
_MASK64 = (1 << 64) - 1


class _BitWriter:
    """Appends bit fields to one Python int (chunks are small: ~1-2 kB at most)."""

    __slots__ = ("acc", "nbits")

    def __init__(self) -> None:
        self.acc = 0
        self.nbits = 0

    def write(self, value: int, nbits: int) -> None:
        self.acc = (self.acc << nbits) | (value & ((1 << nbits) - 1))
        self.nbits += nbits

    def write_bytes(self, data: bytes) -> None:
        self.write(int.from_bytes(data, "big"), 8 * len(data))

    def getvalue(self) -> bytes:
        pad = -self.nbits % 8
        return (self.acc << pad).to_bytes((self.nbits + pad) // 8, "big")


def _uvarint(x: int) -> bytes:
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def _varint(x: int) -> bytes:
    ux = (x << 1) & _MASK64
    if x < 0:
        ux ^= _MASK64
    return _uvarint(ux)


def _fits(dod: int, nbits: int) -> bool:
    return -((1 << (nbits - 1)) - 1) <= dod <= (1 << (nbits - 1))


def encode_xor_chunk(ts_ms: Sequence[int], values: Sequence[float]) -> bytes:
    """One XOR chunk of the given samples (at most 65535; Prometheus uses at most 120).

    Examples
    --------
    >>> data = encode_xor_chunk([1000, 2000, 3000], [1.0, 1.0, 2.5])
    >>> ts, vals, _ = decode_xor_chunks([data])
    >>> ts.tolist(), vals.tolist()
    ([1000, 2000, 3000], [1.0, 1.0, 2.5])
    """
    n = len(ts_ms)
    if n != len(values):
        raise ValueError("encode_xor_chunk: ts_ms and values differ in length")
    if n > 0xFFFF:
        raise ValueError("encode_xor_chunk: more than 65535 samples")
    w = _BitWriter()
    w.write(n, 16)
    bits = struct.unpack(f"<{n}Q", struct.pack(f"<{n}d", *values)) if n else ()
    t_prev = delta_prev = 0
    v_prev = 0
    leading, trailing = 0xFF, 0
    for i in range(n):
        t = int(ts_ms[i])
        v = bits[i]
        if i == 0:
            w.write_bytes(_varint(t))
            w.write(v, 64)
        else:
            delta = t - t_prev
            if i == 1:
                w.write_bytes(_uvarint(delta & _MASK64))
            else:
                dod = delta - delta_prev
                if dod == 0:
                    w.write(0, 1)
                elif _fits(dod, 14):
                    w.write(0b10, 2)
                    w.write(dod, 14)
                elif _fits(dod, 17):
                    w.write(0b110, 3)
                    w.write(dod, 17)
                elif _fits(dod, 20):
                    w.write(0b1110, 4)
                    w.write(dod, 20)
                else:
                    w.write(0b1111, 4)
                    w.write(dod, 64)
            delta_prev = delta
            x = v ^ v_prev
            if x == 0:
                w.write(0, 1)
            else:
                lead = min(64 - x.bit_length(), 31)
                trail = (x & -x).bit_length() - 1
                if leading != 0xFF and lead >= leading and trail >= trailing:
                    w.write(0b10, 2)
                    w.write(x >> trailing, 64 - leading - trailing)
                else:
                    leading, trailing = lead, trail
                    sig = 64 - lead - trail
                    w.write(0b11, 2)
                    w.write(lead, 5)
                    w.write(sig & 0x3F, 6)
                    w.write(x >> trail, sig)
        t_prev, v_prev = t, v
    return w.getvalue()


def encode_xor_series(ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], *,
                      max_samples: int = MAX_SAMPLES_PER_CHUNK) -> list[tuple[int, int, bytes]]:
    """One series' sorted samples as ``(min_time_ms, max_time_ms, data)`` chunks."""
    out = []
    t_list = np.asarray(ts_ms, np.int64).tolist()
    v_list = np.asarray(values, np.float64).tolist()
    for a in range(0, len(t_list), max_samples):
        t = t_list[a:a + max_samples]
        out.append((t[0], t[-1], encode_xor_chunk(t, v_list[a:a + max_samples])))
    return out


def _windows(buf: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """``W[k]`` = the 64 bits starting at byte ``k`` of ``buf`` (buf padded by >= 16 bytes)."""
    n = buf.shape[0] - 8
    w = np.zeros(n, _U64)
    for k in range(8):
        w |= buf[k:k + n].astype(_U64) << _U64(56 - 8 * k)
    return w


class _Reader:
    """Vectorised bit reads at per-chunk bit positions over one shared byte buffer."""

    def __init__(self, buf: npt.NDArray[np.uint8]) -> None:
        self.w = _windows(buf)
        self.buf = buf.astype(_U64)

    def peek(self, pos: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        b = pos >> 3
        s = (pos & 7).astype(_U64)
        out: npt.NDArray[np.uint64] = (self.w[b] << s) | (self.buf[b + 8] >> (_U64(8) - s))
        return out

    @staticmethod
    def top(word: npt.NDArray[np.uint64], nbits: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """The first ``nbits`` (0..64) bits of ``word`` as an unsigned integer."""
        # (x >> 1) >> (63 - n) is x >> (64 - n) without the undefined shift by 64 when n == 0.
        full = nbits >= _U64(64)
        nb = np.where(full, _U64(63), nbits)
        return np.where(full, word, (word >> _U64(1)) >> (_U64(63) - nb))


def read_uvarints(buf: npt.NDArray[np.uint8], byte_pos: npt.NDArray[np.int64]
                  ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """Unsigned varints (protobuf / Go ``uvarint``) starting at byte positions, all at once.

    Returns ``(values, position after each)``. ``buf`` must extend 10 bytes past the last one.
    """
    val = np.zeros(byte_pos.shape[0], _U64)
    going = np.ones(byte_pos.shape[0], bool)
    end = byte_pos.copy()
    for k in range(10):
        b = buf[byte_pos + k]
        val |= np.where(going, (b & 0x7F).astype(_U64) << _U64(7 * k), _U64(0))
        end += going
        going &= b >= 0x80
        if not going.any():
            break
    if going.any():
        raise StorageError("XOR chunk: varint longer than 10 bytes")
    return val, end


def decode_xor_chunks(chunks: Sequence[bytes]
                      ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Decode many XOR chunks at once.

    Returns ``(ts_ms, values, counts)``: the samples of all chunks concatenated in the order of
    ``chunks`` (each chunk's samples in its own order) and the number of samples of each chunk.

    Raises
    ------
    StorageError
        A chunk is shorter than its sample count says.
    """
    m = len(chunks)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64)
    lens = np.fromiter((len(c) for c in chunks), np.int64, m)
    if int(lens.min()) < 2:
        raise StorageError("XOR chunk: shorter than its header")
    starts = np.zeros(m, np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    buf = np.frombuffer(b"".join(chunks) + bytes(32), np.uint8)
    counts = (buf[starts].astype(np.int64) << 8) | buf[starts + 1]
    # Sort chunks by count, longest first: the chunks still decoding at step i are a prefix.
    order = np.argsort(-counts, kind="stable")
    cnt = counts[order]
    ends_bits = (starts[order] + lens[order]) * 8
    nmax = int(cnt[0])
    ts_out = np.zeros((m, max(nmax, 1)), np.int64)
    v_out = np.zeros((m, max(nmax, 1)), _U64)
    rd = _Reader(buf)
    k = int((cnt > 0).sum())
    pos_b = starts[order][:k] + 2
    if k:
        zz, pos_b = read_uvarints(buf, pos_b)
        t = (zz >> _U64(1)).astype(np.int64) ^ -(zz & _U64(1)).astype(np.int64)
        v = rd.w[pos_b]
        pos = (pos_b + 8) * 8
        ts_out[:k, 0], v_out[:k, 0] = t, v
        final = np.zeros(m, np.int64)
        final[:k] = pos
        delta = np.zeros(k, np.int64)
        leading = np.full(k, 0xFF, _U64)
        trailing = np.zeros(k, _U64)
    for i in range(1, nmax):
        k = int((cnt > i).sum())
        t, v, pos = t[:k], v[:k], pos[:k]
        delta, leading, trailing = delta[:k], leading[:k], trailing[:k]
        if i == 1:
            d, pb = read_uvarints(buf, pos >> 3)
            delta = d.astype(np.int64)
            pos = pb * 8
        else:
            word = rd.peek(pos)
            top4 = (word >> _U64(60)).astype(np.int64)
            # Prefix 0 -> 1 bit; 10 -> 2 bits + 14; 110 -> 3 + 17; 1110 -> 4 + 20; 1111 -> 4 + 64.
            plen = np.select([top4 < 8, top4 < 12, top4 < 14], [1, 2, 3], 4)
            sz = np.select([top4 < 8, top4 < 12, top4 < 14, top4 < 15], [0, 14, 17, 20], 64)
            pos = pos + plen
            raw = rd.top(rd.peek(pos), sz.astype(_U64))
            dod = raw.astype(np.int64)
            small = (sz > 0) & (sz < 64)
            if small.any():
                half = np.int64(1) << np.maximum(sz - 1, 0)
                neg = small & (dod > half)
                dod = np.where(neg, dod - (half << 1), dod)
            delta = delta + dod
            pos = pos + sz
        t = t + delta
        # The value: 0 -> unchanged; 10 -> reuse window; 11 -> new window (5 + 6 bits).
        word = rd.peek(pos)
        changed = (word >> _U64(63)) == _U64(1)
        new_win = changed & (((word >> _U64(62)) & _U64(1)) == _U64(1))
        lead_new = (word >> _U64(57)) & _U64(0x1F)
        mb_new = (word >> _U64(51)) & _U64(0x3F)
        mb_new = np.where(mb_new == _U64(0), _U64(64), mb_new)
        leading = np.where(new_win, lead_new, leading)
        trailing = np.where(new_win, _U64(64) - lead_new - mb_new, trailing)
        mbits = np.where(changed, _U64(64) - leading - trailing, _U64(0))
        hdr = np.where(new_win, 13, np.where(changed, 2, 1))
        pos = pos + hdr
        bits = rd.top(rd.peek(pos), mbits)
        shift = np.minimum(trailing, _U64(63))
        v = v ^ np.where(changed, bits << shift, _U64(0))
        pos = pos + mbits.astype(np.int64)
        ts_out[:k, i], v_out[:k, i] = t, v
        final[:k] = pos
    if nmax and bool((final > ends_bits).any()):
        raise StorageError("XOR chunk: truncated data")
    # Back to the callers' chunk order, samples in order within each chunk.
    inv = np.empty(m, np.int64)
    inv[order] = np.arange(m)
    ts_out, v_out = ts_out[inv], v_out[inv]
    mask = np.arange(ts_out.shape[1])[None, :] < counts[:, None]
    return ts_out[mask], v_out[mask].view(np.float64), counts
