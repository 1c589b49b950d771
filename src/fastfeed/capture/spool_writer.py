"""The writer process of ``Recorder(writer="process")``: the spool's records into the capture file.

``python -m fastfeed.capture.spool_writer SPEC``, SPEC a JSON object: ``shm`` (the shared memory's
name), ``path``, ``compression``, ``metadata``, ``parent`` (the feed's pid) and ``cpus`` (or
null). It writes until the feed's side closes the spool, or until the feed's process is gone (a
crash: what reached the spool is written and the file finished), then leaves its last word in
the spool's header (batches, bytes, the error if any) and exits. Ctrl-C is the feed's to handle:
this process ignores it and finishes when told.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

_IDLE = 0.001   # seconds between looks at an empty spool


def run(spec: dict[str, Any]) -> None:
    from multiprocessing import resource_tracker, shared_memory

    from fastfeed.capture._spool import Spool
    from fastfeed.capture.recorder import chunk_batch, new_stream
    from fastfeed.capture.file import KINDS, pyarrow, schema

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.get("cpus") and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, spec["cpus"])
        except OSError:
            pass  # a cpuset without them: write anyway, wherever this runs
    shm = shared_memory.SharedMemory(name=spec["shm"])
    # An attached segment is registered with this process's resource tracker too (always before
    # Python 3.13, by default since), which would remove it when this process exits: it is the
    # feed's process's to remove.
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    spool = Spool(shm.buf)
    batches = file_bytes = 0
    error = None
    try:
        pa = pyarrow()
        sch = schema(spec["metadata"])
        kinds = pa.array(KINDS, pa.string())
        sink, writer = new_stream(pa, spec["path"], sch, spec["compression"])
        spool.mark_ready()
        try:
            while True:
                spool.beat()
                records, head = spool.records()
                if records:
                    writer.write_table(pa.Table.from_batches(
                        [chunk_batch(pa, sch, kinds, *r) for r in records], schema=sch))
                    batches += len(records)
                    del records   # views into the ring: gone before their room is reused
                    spool.release(head)
                    spool.set_batches(batches)
                    continue
                if spool.closed or os.getppid() != spec["parent"]:
                    if spool.records()[0]:
                        continue  # the last ones came in meanwhile
                    break
                time.sleep(_IDLE)
        finally:
            writer.close()
            file_bytes = sink.tell()
            sink.close()
    except BaseException as exc:  # a full disk, say: the feed's side reports it
        error = repr(exc)
    spool.finish(batches, file_bytes, error)
    spool.release_buffer()
    shm.close()


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
