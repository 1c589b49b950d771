"""The spool between a recording's tap and its writer process (``Recorder(writer="process")``).

Why a process: compressing a full-rate feed costs about as much CPU as receiving it, and a
writer thread elsewhere in the feed's process needs the GIL back at every pyarrow call; each
time, the receiving thread that holds it is stopped for the hand-over (on a VM, a wake-up of
another CPU), and the writer waits for the switch interval first. A writer process has a GIL of
its own.

- In the feed's process a forwarding thread, which never takes the GIL, moves each chunk the
  tap hands over (``FrameTap.take_chunk``) into a byte ring in shared memory, one record per
  chunk, and gives the chunk back.
- The writer process maps the ring, hands each record's arrays to pyarrow without a copy
  (``records()``), writes them as record batches and then frees them (``release``).

The ring has one producer and one consumer, with monotonic byte offsets (``head`` the
consumer's, ``tail`` the producer's, each written by its side only, with release stores). A
record that would cross the end of the ring is preceded by a skip marker and starts at the
ring's start. Per record, all 8-byte aligned: total length, n, payload bytes, then recv_ns
(n int64), offsets (n + 1 int32), kind (n int8), payload.

The header also carries what the sides tell each other: ready (the writer takes records),
closed (no more records), done (the writer finished, with batches, file bytes and an error text
if it failed) and the writer's heartbeat, so that a forwarder never waits for room from a writer that is gone.
"""

from cpython.buffer cimport PyBUF_READ
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
from libc.string cimport memcpy

from fastfeed._clock cimport now_ns
from fastfeed._tap cimport Chunk, FrameTap, ff_load, ff_load64, ff_store64

cdef extern from "unistd.h":
    int usleep(unsigned int) nogil

cdef enum:
    H_HEAD = 0
    H_TAIL = 1
    H_CLOSED = 2
    H_DONE = 3
    H_BATCHES = 4
    H_FILE_BYTES = 5
    H_ERROR_LEN = 6
    H_HEARTBEAT = 7
    H_READY = 8
    ERROR_AT = 128
    ERROR_MAX = 896
    REC_HEADER = 24
    HEADER = 1024

HEADER_BYTES = HEADER
# A writer that has not beaten for this long is gone: the forwarder stops waiting for room.
cdef int64_t WRITER_SILENT_NS = 10 * 1000000000


cdef inline int64_t pad8(int64_t n) noexcept nogil:
    return (n + 7) & ~(<int64_t>7)


cdef struct Layout:             # byte offsets in a record of n messages, from its start
    int64_t offsets
    int64_t kind
    int64_t data


cdef inline Layout layout(int64_t n) noexcept nogil:
    cdef Layout at
    at.offsets = REC_HEADER + 8 * n        # recv_ns come first, right after the header
    at.kind = at.offsets + pad8(4 * (n + 1))
    at.data = at.kind + pad8(n)
    return at


cdef class Spool:
    """The ring over a writable buffer of ``HEADER_BYTES`` + capacity bytes (shared memory)."""

    cdef object view            # the buffer's memoryview, held while mapped
    cdef char* base
    cdef int64_t* hdr
    cdef char* ring
    cdef readonly int64_t capacity

    def __cinit__(self, buffer):
        cdef uint8_t[::1] mv = buffer
        if mv.shape[0] < HEADER + 4096 or (mv.shape[0] - HEADER) % 8:
            raise ValueError("a spool needs a buffer of HEADER_BYTES + a multiple of 8 (>= 4096)")
        self.view = mv
        self.base = <char*>&mv[0]
        self.hdr = <int64_t*>self.base
        self.ring = self.base + HEADER
        self.capacity = mv.shape[0] - HEADER

    def release_buffer(self):
        """Let go of the buffer (before the shared memory is closed); the spool is unusable."""
        self.view = None
        self.base = self.ring = NULL
        self.hdr = NULL

    # -- the feed's side: the forwarding thread ---------------------------------------------------
    cdef int _room(self, int64_t need) noexcept nogil:
        """Wait until `need` contiguous bytes are free at the tail (a skip marker written when
        the ring's end is in the way); 0, or -1 when the writer is done or silent."""
        cdef int64_t tail = self.hdr[H_TAIL]
        cdef int64_t pos, left
        while True:
            pos = tail % self.capacity
            left = self.capacity - pos
            if left < need:
                if self.capacity - (tail - ff_load64(&self.hdr[H_HEAD])) >= left:
                    (<int64_t*>(self.ring + pos))[0] = -1   # skip to the ring's start
                    tail += left
                    ff_store64(&self.hdr[H_TAIL], tail)
                    continue
            elif self.capacity - (tail - ff_load64(&self.hdr[H_HEAD])) >= need:
                return 0
            if (ff_load64(&self.hdr[H_DONE])
                    or now_ns() - ff_load64(&self.hdr[H_HEARTBEAT]) > WRITER_SILENT_NS):
                return -1
            usleep(200)

    cdef int put(self, int64_t n, const int64_t* recv_ns, const int8_t* kind,
                 const int32_t* offsets, const char* data, int64_t data_len) noexcept nogil:
        cdef Layout at = layout(n)
        cdef int64_t total = at.data + pad8(data_len)
        cdef char* p
        if total > self.capacity or self._room(total) < 0:  # (the Recorder sizes it to fit)
            return -1
        p = self.ring + self.hdr[H_TAIL] % self.capacity
        (<int64_t*>p)[0] = total
        (<int64_t*>p)[1] = n
        (<int64_t*>p)[2] = data_len
        memcpy(p + REC_HEADER, recv_ns, 8 * n)
        memcpy(p + at.offsets, offsets, 4 * (n + 1))
        memcpy(p + at.kind, kind, n)
        if data_len:
            memcpy(p + at.data, data, data_len)
        ff_store64(&self.hdr[H_TAIL], self.hdr[H_TAIL] + total)
        return 0

    def forward(self, FrameTap tap, double flush_interval):
        """Move the tap's chunks into the ring until the tap is closed and empty, without the
        GIL; a partly filled chunk goes at least every `flush_interval` seconds. True when all
        went, False when the writer was gone (the caller closes the tap)."""
        cdef int64_t interval = <int64_t>(flush_interval * 1e9)
        cdef int64_t now, next_flush
        cdef int cid, rc = 0
        cdef bint closed, due
        cdef Chunk* c
        with nogil:
            next_flush = now_ns() + interval
            while True:
                closed = ff_load(&tap.closed_flag)
                now = now_ns()
                due = closed or now >= next_flush
                cid = tap.take_chunk(False)
                if cid < 0 and due:
                    cid = tap.take_chunk(True)
                    next_flush = now + interval
                if cid >= 0:
                    c = &tap.chunks[cid]
                    rc = self.put(c.n, c.recv_ns, c.kind, c.offsets, c.data, c.data_len)
                    tap.give_back_chunk(cid)
                    if rc < 0:
                        break
                    continue
                if closed:
                    break
                tap.wait_chunks(next_flush - now)
        return rc == 0

    def put_message(self, int kind, int64_t recv_ns, bytes payload):
        """One record of one message (the tail gap); False when the writer is gone."""
        cdef int8_t k = kind
        cdef int32_t offsets[2]
        offsets[0] = 0
        offsets[1] = <int32_t>len(payload)
        return self.put(1, &recv_ns, &k, offsets, payload, len(payload)) == 0

    # -- the writer process's side -----------------------------------------------------------------
    def records(self):
        """``(records, head)``: every record written so far as ``(n, recv_ns, kind, offsets,
        data)`` read-only views into the ring, valid until ``release(head)``."""
        cdef int64_t head = self.hdr[H_HEAD]
        cdef int64_t tail = ff_load64(&self.hdr[H_TAIL])
        cdef int64_t total, n, data_len
        cdef char* p
        cdef Layout at
        out = []
        while head < tail:
            p = self.ring + head % self.capacity
            total = (<int64_t*>p)[0]
            if total < 0:
                head += self.capacity - head % self.capacity
                continue
            n = (<int64_t*>p)[1]
            data_len = (<int64_t*>p)[2]
            at = layout(n)
            out.append((n,
                        PyMemoryView_FromMemory(p + REC_HEADER, 8 * n, PyBUF_READ),
                        PyMemoryView_FromMemory(p + at.kind, n, PyBUF_READ),
                        PyMemoryView_FromMemory(p + at.offsets, 4 * (n + 1), PyBUF_READ),
                        PyMemoryView_FromMemory(p + at.data, data_len, PyBUF_READ)))
            head += total
        return out, head

    def release(self, int64_t head):
        """The records before `head` are written: their room is free again."""
        ff_store64(&self.hdr[H_HEAD], head)

    def beat(self):
        ff_store64(&self.hdr[H_HEARTBEAT], now_ns())

    def mark_ready(self):
        """The writer has its file open and takes records."""
        ff_store64(&self.hdr[H_READY], 1)

    @property
    def ready(self):
        return bool(ff_load64(&self.hdr[H_READY]))

    # -- what the two sides tell each other --------------------------------------------------------
    @property
    def closed(self):
        return bool(ff_load64(&self.hdr[H_CLOSED]))

    def close(self):
        ff_store64(&self.hdr[H_CLOSED], 1)

    @property
    def pending_bytes(self):
        return ff_load64(&self.hdr[H_TAIL]) - ff_load64(&self.hdr[H_HEAD])

    @property
    def done(self):
        return bool(ff_load64(&self.hdr[H_DONE]))

    def finish(self, int64_t batches, int64_t file_bytes, str error=None):
        """The writer's last word: what it wrote, and why it stopped if it failed."""
        cdef bytes text
        self.hdr[H_BATCHES] = batches
        self.hdr[H_FILE_BYTES] = file_bytes
        if error is not None:
            text = error.encode("utf-8", "replace")[:ERROR_MAX]
            memcpy(self.base + ERROR_AT, <char*>text, len(text))
            self.hdr[H_ERROR_LEN] = len(text)
        ff_store64(&self.hdr[H_DONE], 1)

    def set_batches(self, int64_t batches):
        ff_store64(&self.hdr[H_BATCHES], batches)

    @property
    def batches(self):
        return ff_load64(&self.hdr[H_BATCHES])

    @property
    def file_bytes(self):
        return ff_load64(&self.hdr[H_FILE_BYTES])

    @property
    def error(self):
        cdef int64_t n = ff_load64(&self.hdr[H_ERROR_LEN])
        if not n:
            return None
        return (<bytes>(self.base + ERROR_AT)[:n]).decode("utf-8", "replace")
