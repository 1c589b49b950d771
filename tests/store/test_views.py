"""Readers cannot break the store: read-only views, clamped counts, a bounded seqlock spin
(issue 8, item 2) and a stale mark inside the seqlock (item 10)."""
import ctypes
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastfeed import ROW_DTYPE, FeedDecoder
from fastfeed.benchmark.frames import frame, instrument_keys

KEYS = instrument_keys(3)


def decoder_with_depth() -> FeedDecoder:
    dec = FeedDecoder(8, 64)
    dec.decode(frame(KEYS, "full_d30"))
    return dec


def poke(dec: FeedDecoder, row: int, field: str, value: int) -> None:
    """Write a row's field behind the store's back, as a bug or a foreign process could."""
    base = dec.store.snapshot.__array_interface__["data"][0]
    ctype = {"<i4": ctypes.c_int32, "<u4": ctypes.c_uint32, "<u8": ctypes.c_uint64}[
        ROW_DTYPE.fields[field][0].str]
    ctype.from_address(base + row * ROW_DTYPE.itemsize + ROW_DTYPE.fields[field][1]).value = value


def test_views_are_read_only():
    dec = decoder_with_depth()
    snap = dec.snapshot
    with pytest.raises(ValueError):
        snap["n_levels"][0] = 100000
    with pytest.raises(ValueError):
        snap["seq"][0] |= 1
    with pytest.raises(ValueError):
        dec.ring["ltp"][0] = 1.0
    with pytest.raises(ValueError):
        dec.store.latest(1)["row"][0] = 5
    with pytest.raises(ValueError):
        dec.store.snapshot.flags.writeable = True  # numpy refuses: the base is read-only
    assert dec.quote(KEYS[0]).bids and len(dec.quote(KEYS[0]).bids) == 30
    # Copies are the reader's own.
    recs, _ = dec.reader(from_start=True).read()
    recs["ltp"][0] = 1.0
    dec.store.row_copy(0)["ltp"] = 1.0


def test_reader_clamps_counts_read_from_a_row():
    dec = decoder_with_depth()
    poke(dec, 0, "n_levels", 100000)
    poke(dec, 0, "n_bars", 1 << 30)
    poke(dec, 0, "kind", -7)
    q = dec.quote(dec.store.key(0))
    assert len(q.bids) == len(q.asks) == 30
    assert len(q.ohlc) <= 4
    assert q.kind == "none"
    poke(dec, 1, "n_levels", -5)
    assert dec.quote(dec.store.key(1)).bids == ()


def test_writer_clamps_counts_read_from_a_row():
    dec = decoder_with_depth()
    neighbour = dec.snapshot[1:].tobytes()
    poke(dec, 0, "n_levels", 100000)
    poke(dec, 0, "n_bars", 7)
    dec.decode(frame([dec.store.key(0)], "full"))  # five levels and two bars over row 0
    assert dec.snapshot[1:].tobytes() == neighbour
    q = dec.quote(dec.store.key(0))
    assert len(q.bids) == 5 and len(q.ohlc) <= 4


def test_seqlock_spin_is_bounded():
    # In a child process: on a store without the bound, quote() spins forever holding the GIL.
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_views import decoder_with_depth, poke
        dec = decoder_with_depth()
        seq = int(dec.snapshot["seq"][0])
        poke(dec, 0, "seq", seq | 1)
        t0 = time.monotonic()
        try:
            dec.quote(dec.store.key(0))
        except Exception as e:
            assert e.row == 0, e
            print(type(e).__name__, "after", round(time.monotonic() - t0, 2), "s")
        poke(dec, 0, "seq", seq + 2)
        assert dec.quote(dec.store.key(0)).ltp > 0
        print("ok")
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("quote() spun for a minute on a row whose seq stays odd")
    assert out.returncode == 0, out.stderr
    assert "SeqlockTimeoutError after" in out.stdout and out.stdout.strip().endswith("ok"), out.stdout


def test_mark_stale_is_a_seqlock_write():
    dec = decoder_with_depth()
    before = dec.snapshot["seq"].copy()
    assert not np.any(before & 1)
    dec.store.mark_stale()
    after = dec.snapshot["seq"]
    assert np.all(after == before + 2)
    assert all(dec.quote(k).stale for k in KEYS)
