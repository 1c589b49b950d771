"""A Cython reader thread without the GIL against the decoder (issue 8, item 10): `_read_row`
is declared in _store.pxd, and every write of a row, mark_stale included, goes through its
seqlock."""
from __future__ import annotations

import importlib.util
import struct
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import fastfeed
from fastfeed import FeedDecoder
from fastfeed.proto import fastfeed_market_v3_pb2 as pb

MARK = 4321.25
FRAMES = 200_000


@pytest.fixture(scope="module")
def nogil_reader(tmp_path_factory):
    """tests/store/nogil_reader.pyx, compiled against the installed fastfeed's .pxd files."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    out = tmp_path_factory.mktemp("nogil_reader")
    pyx = out / "nogil_reader.pyx"
    pyx.write_text((Path(__file__).parent / "nogil_reader.pyx").read_text())
    include = str(Path(fastfeed.__file__).resolve().parent.parent)
    ext = Extension("nogil_reader", [str(pyx)], extra_compile_args=["-O2"])
    dist = Distribution({"ext_modules": cythonize([ext], include_path=[include], quiet=True,
                                                  compiler_directives={"boundscheck": False})})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(out)
    cmd.build_temp = str(out / "tmp")
    cmd.ensure_finalized()
    cmd.run()
    (built,) = [p for p in out.iterdir() if p.name.startswith("nogil_reader.") and p.suffix != ".pyx"
                and p.suffix != ".c"]
    spec = importlib.util.spec_from_file_location("nogil_reader", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def full_depth_frame() -> tuple[bytearray, list[int]]:
    """A live full_d30 frame whose ltp, cp and 60 depth prices are MARK, and where they lie."""
    r = pb.FeedResponse(type=pb.live_feed, currentTs=1)
    m = r.feeds["NSE_FO|1"].fullFeed.marketFF
    m.ltpc.ltp = m.ltpc.cp = MARK
    for _ in range(30):
        m.marketLevel.bidAskQuote.add(bidQ=1, bidP=MARK, askQ=1, askP=MARK)
    r.feeds["NSE_FO|1"].requestMode = pb.full_d30
    payload = r.SerializeToString()
    mark = struct.pack("<d", MARK)
    offsets = [i for i in range(len(payload) - 7) if payload[i:i + 8] == mark]
    assert len(offsets) == 62
    return bytearray(payload), offsets


def test_nogil_reader_thread_sees_only_whole_rows(nogil_reader):
    dec = FeedDecoder(max_instruments=1, ring_capacity=1024)
    buf, offsets = full_depth_frame()
    frames = []
    for n in range(1, 65):  # each with every price n: a torn copy mixes two of them
        for off in offsets:
            buf[off:off + 8] = struct.pack("<d", float(n))
        frames.append(bytes(buf))
    dec.decode(frames[0])
    done = np.zeros(1, dtype=np.uint64)
    result: list[tuple[int, ...]] = []
    reader = threading.Thread(target=lambda: result.append(nogil_reader.read_while(dec.store, 0, done)))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # the reader holds no GIL; keep the writer's turns short anyway
    reader.start()
    try:
        for n in range(FRAMES):
            dec.decode(frames[n & 63])
            if n % 16 == 0:
                dec.store.mark_stale()
    finally:
        done[0] = 1
        reader.join()
        sys.setswitchinterval(switch)
    reads, torn, silent, backwards, timeouts, stale = result[0]
    assert reads > 0
    assert (torn, silent, backwards, timeouts) == (0, 0, 0, 0), result[0]
