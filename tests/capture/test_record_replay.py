"""Record against the simulator over real sockets, then replay: the decoder ends where the live
feed ended, every field of every key."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import fastfeed.capture as capture
from fastfeed import CaptureError, FeedDecoder, MarketFeed
from fastfeed.capture.file import proto_schema_hash, public_url

from capture_helpers import KEYS, TOKEN, Recording, record_session, wait


def test_replay_ends_with_every_live_quote(recording: Recording) -> None:
    decoder = capture.replay(recording.path)
    assert isinstance(decoder, FeedDecoder)
    assert decoder.frames == recording.frames and decoder.updates == recording.updates
    assert set(decoder.store.instruments) == set(recording.quotes) == set(KEYS)
    for key, live in recording.quotes.items():
        assert decoder.quote(key) == live, key  # every field, recv_ns included


def test_replay_into_a_given_decoder_with_on_update(recording: Recording) -> None:
    decoder = FeedDecoder(max_instruments=64, ring_capacity=1 << 12)
    seen: list[int] = []
    keys_seen: set[int] = set()

    def on_update(records: Any) -> None:
        seen.append(len(records))
        keys_seen.update(records["row"].tolist())

    out = capture.replay(recording.path, decoder=decoder, on_update=on_update)
    assert out is decoder
    assert sum(seen) == recording.updates and len(keys_seen) == len(KEYS)


def test_replay_keeps_the_recorded_pace(recording: Recording) -> None:
    info = capture.info(recording.path)
    span = info["seconds"]
    assert span > 0.5
    import time
    started = time.perf_counter()
    capture.replay(recording.path, speed=4.0)
    elapsed = time.perf_counter() - started
    assert elapsed >= span / 4.0 * 0.9  # never early; late is allowed on a loaded machine


def test_bad_arguments_are_refused(recording: Recording, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        capture.replay(recording.path, speed=0)
    with pytest.raises(TypeError):
        capture.replay(recording.path, on_update=42)
    junk = tmp_path / "junk.arrows"
    junk.write_bytes(b"not arrow at all" * 10)
    with pytest.raises(CaptureError):
        capture.replay(junk)
    with pytest.raises(CaptureError):
        list(capture.frames(junk))


def test_frames_are_the_received_payloads(recording: Recording) -> None:
    frames = list(capture.frames(recording.path))
    assert len(frames) == recording.frames
    assert sum(len(p) for _, p in frames) == recording.stats["bytes"]
    times = [t for t, _ in frames]
    assert times == sorted(times) and all(isinstance(p, bytes) for _, p in frames)
    # Each payload decodes alone to what the feed decoded from it.
    decoder = FeedDecoder()
    for t, p in frames:
        decoder.decode(p, recv_ns=t)
    for key, live in recording.quotes.items():
        assert decoder.quote(key) == live


def test_metadata_and_requests(recording: Recording, sim: Any) -> None:
    info = capture.info(recording.path)
    meta = info["metadata"]
    assert meta["feed"] == "market"
    assert meta["fastfeed_version"]
    assert meta["proto_schema_hash"] == proto_schema_hash()
    assert meta["feed_url"] == sim.market_url
    assert json.loads(meta["subscriptions"]) == {k: "full" for k in KEYS}
    assert info["counts"]["frame"] == recording.frames and info["counts"]["request"] >= 1
    assert info["complete"] and info["batches"] >= 1
    requests = [json.loads(p) for _, kind, p in capture.records(recording.path) if kind == "request"]
    assert requests[0]["method"] == "sub" and sorted(requests[0]["data"]["instrumentKeys"]) == sorted(KEYS)


def test_public_url_drops_credentials() -> None:
    assert public_url("wss://user:secret@api.upstox.com:443/v3/feed?code=abc#x") == \
        "wss://api.upstox.com:443/v3/feed"


def test_pyarrow_alone_reads_the_file(recording: Recording) -> None:
    code = (
        "import sys, pyarrow.ipc as ipc\n"
        "t = ipc.open_stream(sys.argv[1]).read_all()\n"
        "assert not [m for m in sys.modules if m.startswith('fastfeed')]\n"
        "kinds = t.column('kind').to_pylist()\n"
        "print(t.num_rows, kinds.count('frame'), sum(len(p) for p, k in zip(t.column('payload').to_pylist(), kinds) if k == 'frame'),"
        " t.schema.field('recv_ns').type, t.schema.metadata[b'feed'].decode())\n")
    out = subprocess.run([sys.executable, "-c", code, str(recording.path)], capture_output=True,
                         text=True, timeout=60, check=True)
    rows, frames, nbytes, recv_type, feed = out.stdout.split()
    assert int(frames) == recording.frames and int(nbytes) == recording.stats["bytes"]
    assert recv_type == "int64" and feed == "market"


def test_a_truncated_file_reads_up_to_its_last_whole_batch(recording: Recording, tmp_path: Path) -> None:
    data = recording.path.read_bytes()
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        batch_frames = [int((b.column("kind").indices.to_numpy() == 0).sum()) for b in reader]
    assert len(batch_frames) >= 3, "the recording should have several batches"
    whole = set(np.cumsum([0] + batch_frames).tolist())
    cut = tmp_path / "cut.arrows"
    seen = []
    for size in np.linspace(len(data) // 20, len(data) - 1, 25).astype(int).tolist():
        cut.write_bytes(data[:size])
        n = sum(1 for _ in capture.frames(cut))
        assert n in whole, (size, n)
        seen.append(n)
        decoder = capture.replay(cut)
        assert decoder.frames == n
    assert seen == sorted(seen) and seen[-1] == recording.frames  # only the end marker was cut
    assert not capture.info(cut)["complete"]
    cut.write_bytes(data[:40])  # inside the schema: not readable at all
    with pytest.raises(CaptureError):
        capture.info(cut)


def test_no_token_in_the_file(recording: Recording) -> None:
    data = recording.path.read_bytes()
    assert TOKEN.encode() not in data
    assert TOKEN[: len(TOKEN) // 2].encode() not in data
    # The uncompressed content too (compression would hide it from a grep of the file).
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    assert TOKEN.encode() not in b"".join(table.column("payload").to_pylist())
    assert TOKEN not in json.dumps({k.decode(): v.decode() for k, v in table.schema.metadata.items()})


def test_record_and_stop_while_running(sim: Any, tmp_path: Path) -> None:
    path = tmp_path / "window.arrows"
    feed = MarketFeed(TOKEN, url=sim.market_url, instruments=KEYS[:2], mode="ltpc")
    feed.start(timeout=20)
    try:
        wait(lambda: feed.decoder.updates >= 50)
        recorder = feed.record(path, compression="lz4")
        with pytest.raises(RuntimeError):
            feed.record(tmp_path / "second.arrows")
        before = feed.decoder.frames
        feed.subscribe(KEYS[2:4], "full")
        wait(lambda: recorder.tap.records >= 300)  # the tap is attached on the feed's loop
        stats = feed.stop_recording()
        assert feed.recording is None and recorder.closed and feed.stop_recording() is None
        after = feed.decoder.frames
        wait(lambda: feed.decoder.frames >= after + 50)  # the feed goes on, unrecorded
    finally:
        feed.stop()
    assert stats is not None and stats["dropped"] == 0
    info = capture.info(path)
    assert info["metadata"]["compression"] == "lz4" and info["complete"]
    assert json.loads(info["metadata"]["subscriptions"]) == {k: "ltpc" for k in KEYS[:2]}
    # The tap counted every record it took: frames and the subscribe request sent meanwhile.
    assert sum(info["counts"].values()) >= 300
    assert info["counts"]["frame"] <= after - before
    assert info["counts"]["frame"] + info["counts"]["request"] == stats["records"]
    requests = [json.loads(p) for _, kind, p in capture.records(path) if kind == "request"]
    assert any(r["method"] == "sub" and r["data"]["mode"] == "full" for r in requests)


def test_a_reconnect_is_a_gap_record_and_replay_matches(sim: Any, tmp_path: Path) -> None:
    def drop_connection(feed: MarketFeed) -> None:
        wait(lambda: feed.decoder.updates >= 300)
        connections = feed.connections
        sim.abort_all()
        wait(lambda: feed.connections > connections and feed.decoder.updates >= 600)

    rec = record_session(sim, tmp_path / "gap.arrows", updates=900, during=drop_connection)
    gaps = [json.loads(p) for _, kind, p in capture.records(rec.path) if kind == "gap"]
    assert len(gaps) == 1 and gaps[0]["reason"] == "reconnect"
    assert gaps[0]["restarted_ns"] >= gaps[0]["stopped_ns"] > 0
    requests = [p for _, kind, p in capture.records(rec.path) if kind == "request"]
    assert len(requests) >= 2  # the re-subscription after the reconnect is recorded too
    decoder = capture.replay(rec.path)
    for key, live in rec.quotes.items():
        assert decoder.quote(key) == live, key


def test_export_to_arrow_and_parquet(recording: Recording, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from fastfeed import RECORD_DTYPE

    table = capture.to_arrow(recording.path)
    assert table.num_rows == recording.updates
    assert table.column_names == ["instrument_key", *RECORD_DTYPE.names]
    keys = table.column("instrument_key").to_pylist()
    ltps = table.column("ltp").to_pylist()
    last = dict(zip(keys, ltps))
    assert {k: recording.quotes[k].ltp for k in last} == last
    assert table.column("seq").to_pylist() == list(range(1, recording.updates + 1))
    out = tmp_path / "ticks.parquet"
    capture.to_parquet(recording.path, out)
    assert pq.read_table(out).equals(table)
