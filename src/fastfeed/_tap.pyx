"""The recording tap between the listener and a capture file's writer thread.

Design (the receive path never waits for the writer, and never for the disk):

- The listener's ``append`` copies a message, its receive time and its kind into the *active*
  chunk: C arrays laid out as an Arrow batch wants them (an int64 column, an int8 column, int32
  offsets and the payload bytes), so the writer hands them to pyarrow without a copy and no
  Python object is made per frame.
- A full chunk goes on the ``full`` queue to the writer; the receive path takes an empty one from
  the ``empty`` queue the writer returns chunks on. Both are one-producer one-consumer rings of
  chunk ids with atomic indices: no lock at all.
- The active chunk is owned through one atomic word: ``append`` swaps it for BUSY on entry and
  stores it back on exit (one atomic exchange per message, a few ns). Every flush interval the
  writer takes a partly filled active chunk with a compare-and-swap; if the receive path is inside
  ``append`` at that moment, the writer waits the few ns for it, never the other way round. (Under
  the GIL the two never even overlap; the protocol also holds without one.)
- The writer sleeps on a semaphore that the receive path posts when a chunk fills (only when the
  writer said it sleeps: one atomic load otherwise).
- Memory is bounded: chunks are allocated on demand up to ``max_bytes`` in all. When the writer
  falls that far behind, the receive path never blocks: it drops the message and counts it
  (``dropped``); the next message that fits is preceded by a gap record for the span lost.

One producer: the thread that receives (the feed's event loop), which also records the requests
it sends and the gaps. One consumer: the writer thread.
"""

from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.buffer cimport PyBUF_READ
from cpython.exc cimport PyErr_SetInterrupt
from cpython.pythread cimport (PyThread_allocate_lock, PyThread_free_lock, PyThread_acquire_lock,
                               PyThread_release_lock, PyThread_type_lock, WAIT_LOCK)
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.stdio cimport snprintf
from libc.string cimport memcpy

from fastfeed._clock cimport now_ns

cdef extern from "pythread.h":
    int PyThread_acquire_lock_timed(PyThread_type_lock, long long microseconds, int intr_flag) nogil

FRAME = TAP_FRAME
REQUEST = TAP_REQUEST
GAP = TAP_GAP

cdef Py_ssize_t RECORD_BYTES = 32   # chunk record slots: one per this many payload bytes

# Python bytecode that does nothing. The receive path runs C for long stretches (the event loop,
# the listener, the decoder) and CPython only hands the GIL to a thread that asked for it when
# bytecode runs; the writer needs it back once per write, so without this it waits until the
# loop goes idle (tens of ms at full rate: it falls behind and drops). Called once per chunk
# filled, not per message; a Cython function would not do (it runs no bytecode).
_let_writer_in = eval("lambda: None")


cdef void offer_gil() noexcept nogil:
    with gil:
        try:
            _let_writer_in()
        except KeyboardInterrupt:
            # Bytecode also runs pending signal handlers: a Ctrl-C raised here could not
            # propagate out of the receive path, so it is raised again where it can.
            PyErr_SetInterrupt()

cdef enum:
    GAP_BYTES = 160  # an overflow gap record's JSON
    BUSY = -2        # `active` while append runs

cdef inline Py_ssize_t chunk_cost(Py_ssize_t data_cap, Py_ssize_t cap) noexcept nogil:
    return data_cap + cap * (sizeof(int64_t) + sizeof(int8_t) + sizeof(int32_t)) + sizeof(int32_t)


cdef inline void q_push(IdQueue* q, Py_ssize_t size, int cid) noexcept nogil:
    cdef int64_t t = q.tail          # only this queue's producer writes it
    q.ids[t % size] = cid
    ff_store64(&q.tail, t + 1)


cdef inline int q_pop(IdQueue* q, Py_ssize_t size) noexcept nogil:
    cdef int64_t h = q.head          # only this queue's consumer writes it
    cdef int cid
    if h == ff_load64(&q.tail):
        return -1
    cid = q.ids[h % size]
    ff_store64(&q.head, h + 1)
    return cid


cdef class FrameTap:
    """Chunks of recorded messages between the receive path and one writer thread."""

    def __cinit__(self, Py_ssize_t chunk_bytes=4 << 20, Py_ssize_t max_bytes=64 << 20):
        cdef Py_ssize_t cost
        if chunk_bytes < 4096:
            raise ValueError(f"chunk_bytes must be at least 4096, not {chunk_bytes}")
        cost = chunk_cost(chunk_bytes, chunk_bytes // RECORD_BYTES)
        if max_bytes < 2 * cost:
            raise ValueError(f"max_bytes ({max_bytes}) must hold at least two chunks "
                             f"({cost} bytes each, with their record slots)")
        self.chunk_bytes = chunk_bytes
        self.max_bytes = max_bytes
        self.max_chunks = max_bytes // cost
        self.chunks = <Chunk*>malloc(self.max_chunks * sizeof(Chunk))
        self.full.ids = <int*>malloc(self.max_chunks * sizeof(int))
        self.empty.ids = <int*>malloc(self.max_chunks * sizeof(int))
        self.wakeup = PyThread_allocate_lock()
        if (self.chunks == NULL or self.full.ids == NULL or self.empty.ids == NULL
                or self.wakeup == NULL):
            raise MemoryError()
        PyThread_acquire_lock(self.wakeup, WAIT_LOCK)  # held: the writer's wait blocks on it
        self.active = -1
        self.held = -1
        # Two chunks up front: a steady recording never allocates on the receive path.
        for _ in range(2):
            if self._new_chunk(0) < 0:
                raise MemoryError()
            q_push(&self.empty, self.max_chunks, <int>(self.n_chunks - 1))

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.chunks != NULL:
            for i in range(self.n_chunks):
                free(self.chunks[i].data)
                free(self.chunks[i].recv_ns)
                free(self.chunks[i].kind)
                free(self.chunks[i].offsets)
        free(self.chunks)
        free(self.full.ids)
        free(self.empty.ids)
        if self.wakeup != NULL:
            PyThread_release_lock(self.wakeup)
            PyThread_free_lock(self.wakeup)

    # -- the receive path (one producer) ------------------------------------------------------------

    cdef int _new_chunk(self, Py_ssize_t need) noexcept nogil:
        """Allocate a chunk holding at least `need` payload bytes within the budget; its id or -1."""
        cdef Py_ssize_t data_cap = self.chunk_bytes if need <= self.chunk_bytes else need
        cdef Py_ssize_t cap = self.chunk_bytes // RECORD_BYTES
        cdef Py_ssize_t cost = chunk_cost(data_cap, cap)
        cdef Chunk* c
        if self.n_chunks == self.max_chunks or self.allocated_bytes + cost > self.max_bytes:
            return -1
        c = &self.chunks[self.n_chunks]
        c.data = <char*>malloc(data_cap)
        c.recv_ns = <int64_t*>malloc(cap * sizeof(int64_t))
        c.kind = <int8_t*>malloc(cap * sizeof(int8_t))
        c.offsets = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        if c.data == NULL or c.recv_ns == NULL or c.kind == NULL or c.offsets == NULL:
            free(c.data); free(c.recv_ns); free(c.kind); free(c.offsets)
            return -1
        c.data_cap = data_cap
        c.data_len = 0
        c.cap = cap
        c.n = 0
        c.offsets[0] = 0
        self.allocated_bytes += cost
        self.n_chunks += 1
        return <int>(self.n_chunks - 1)

    cdef int _fit(self, int cid, Py_ssize_t size) noexcept nogil:
        """Grow empty chunk `cid` to hold a `size`-byte message, within the budget: 0 or -1."""
        cdef Chunk* c = &self.chunks[cid]
        cdef char* grown
        if size <= c.data_cap:
            return 0
        if self.allocated_bytes + (size - c.data_cap) > self.max_bytes:
            return -1
        grown = <char*>realloc(c.data, size)
        if grown == NULL:
            return -1
        self.allocated_bytes += size - c.data_cap
        c.data = grown
        c.data_cap = size
        return 0

    cdef int _fresh_chunk(self, Py_ssize_t need) noexcept nogil:
        """An empty chunk: one the writer gave back, else a new one within the budget; or -1."""
        cdef int cid = q_pop(&self.empty, self.max_chunks)
        if cid < 0:
            cid = self._new_chunk(need)
        return cid

    cdef void _push_full(self, int cid) noexcept nogil:
        q_push(&self.full, self.max_chunks, cid)
        if ff_load(&self.writer_waiting) and ff_xchg(&self.writer_waiting, 0):
            PyThread_release_lock(self.wakeup)

    cdef void _put(self, Chunk* c, int8_t kind, int64_t recv_ns, const char* data,
                   Py_ssize_t size) noexcept nogil:
        if c.n == 0:
            c.seq = self.started
            self.started += 1
        if size:
            memcpy(c.data + c.data_len, data, size)
        c.data_len += size
        c.recv_ns[c.n] = recv_ns
        c.kind[c.n] = kind
        c.n += 1
        c.offsets[c.n] = <int32_t>c.data_len

    cdef int append(self, int8_t kind, int64_t recv_ns, const char* data, Py_ssize_t size) noexcept nogil:
        """Copy one message in. Never waits for the writer: no room within the budget drops it.

        After a drop, the next message that fits is preceded by a gap record saying how many
        were lost since when, so the file itself tells where it has a hole.
        """
        cdef Chunk* c
        cdef int cid = ff_xchg(&self.active, BUSY)
        cdef char gap[GAP_BYTES]
        cdef Py_ssize_t gap_len = 0
        cdef Py_ssize_t need = size
        cdef Py_ssize_t slots = 1
        cdef bint fits
        cdef bint pushed = False
        if ff_load(&self.closed_flag):
            ff_store_release(&self.active, cid)
            return 0
        if self.window_dropped:
            gap_len = snprintf(gap, GAP_BYTES,
                               '{"reason":"recording_overflow","dropped":%llu,"stopped_ns":%lld,"restarted_ns":%lld}',
                               <unsigned long long>self.window_dropped,
                               <long long>self.window_first_ns, <long long>recv_ns)
            need += gap_len
            slots = 2
        if cid >= 0:
            c = &self.chunks[cid]
            if c.n > 0 and (c.n + slots > c.cap or c.data_len + need > c.data_cap):
                self._push_full(cid)
                pushed = True
                cid = -1
        if cid < 0:
            cid = self._fresh_chunk(need)
        fits = False
        if cid >= 0 and need <= 0x7fffffff:
            c = &self.chunks[cid]
            fits = c.n + slots <= c.cap and (c.data_len + need <= c.data_cap
                                             or (c.n == 0 and self._fit(cid, need) == 0))
        if not fits:
            self.dropped += 1
            self.dropped_bytes += size
            if self.window_dropped == 0:
                self.window_first_ns = recv_ns
            self.window_dropped += 1
            ff_store_release(&self.active, cid)
            if pushed:
                offer_gil()
            return 0
        if gap_len:
            self._put(c, TAP_GAP, recv_ns, gap, gap_len)
            self.window_dropped = 0
        self._put(c, kind, recv_ns, data, size)
        self.records += 1
        self.bytes += size
        ff_store_release(&self.active, cid)
        if pushed:  # only once `active` is back: the writer may take the GIL here
            offer_gil()
        return 0

    def add(self, int kind, bytes payload, int64_t recv_ns=0):
        """Record one message from Python (a request sent, a gap), on the receiving thread.
        ``recv_ns`` 0: now."""
        if kind not in (TAP_FRAME, TAP_REQUEST, TAP_GAP):
            raise ValueError(f"unknown record kind {kind}")
        self.append(<int8_t>kind, recv_ns if recv_ns > 0 else now_ns(), payload, len(payload))

    # -- the writer thread (one consumer) ------------------------------------------------------------

    cdef int _steal_active(self) noexcept nogil:
        """Take the partly filled active chunk (waiting out an append in progress), or -1."""
        cdef int cid
        while True:
            cid = ff_load(&self.active)
            if cid == BUSY:
                continue  # the receive path is inside append for a memcpy's time
            if cid < 0 or self.chunks[cid].n == 0:
                return -1
            if ff_cas(&self.active, cid, -1):
                return cid

    def take(self, bint flush=False):
        """The id of the oldest chunk to write: a full one; with `flush` (or once closed) also
        the partly filled active one; or -1."""
        return self.take_chunk(flush)

    cdef int take_chunk(self, bint flush) noexcept nogil:
        cdef int cid, older
        cdef int64_t head = self.full.head
        if self.held >= 0 and (head == ff_load64(&self.full.tail) or
                               self.chunks[self.full.ids[head % self.max_chunks]].seq
                               > self.chunks[self.held].seq):
            cid, self.held = self.held, -1  # older than every chunk still on the full queue
            return cid
        cid = q_pop(&self.full, self.max_chunks)
        if cid >= 0:
            return cid
        if not (flush or ff_load(&self.closed_flag)):
            return -1
        cid = self._steal_active()
        if cid >= 0:
            # An append that was running may have queued an older chunk meanwhile: it goes first.
            older = q_pop(&self.full, self.max_chunks)
            if older >= 0:
                self.held = cid
                return older
        return cid

    def buffers(self, int cid):
        """``(n, recv_ns, kind, offsets, data)`` of a taken chunk: zero-copy read-only views of its
        C arrays, valid until ``give_back(cid)``."""
        if cid < 0 or cid >= self.n_chunks:
            raise IndexError(cid)
        cdef Chunk* c = &self.chunks[cid]
        return (c.n,
                PyMemoryView_FromMemory(<char*>c.recv_ns, c.n * sizeof(int64_t), PyBUF_READ),
                PyMemoryView_FromMemory(<char*>c.kind, c.n * sizeof(int8_t), PyBUF_READ),
                PyMemoryView_FromMemory(<char*>c.offsets, (c.n + 1) * sizeof(int32_t), PyBUF_READ),
                PyMemoryView_FromMemory(c.data, c.data_len, PyBUF_READ))

    def give_back(self, int cid):
        """A taken chunk is written: empty it and return it to the receive path."""
        if cid < 0 or cid >= self.n_chunks:
            raise IndexError(cid)
        self.give_back_chunk(cid)

    cdef void give_back_chunk(self, int cid) noexcept nogil:
        self.chunks[cid].n = 0
        self.chunks[cid].data_len = 0
        q_push(&self.empty, self.max_chunks, cid)

    def wait(self, double timeout):
        """Sleep (without the GIL) until a chunk fills, the tap closes, or `timeout` seconds pass."""
        with nogil:
            self.wait_chunks(<int64_t>(timeout * 1e9))

    cdef void wait_chunks(self, int64_t timeout_ns) noexcept nogil:
        cdef long long us = timeout_ns // 1000
        cdef int got
        ff_store(&self.writer_waiting, 1)
        if (ff_load64(&self.full.tail) != self.full.head or ff_load(&self.closed_flag)):
            got = 0
        else:
            got = PyThread_acquire_lock_timed(self.wakeup, us if us > 0 else 0, 0)
        if got != 1 and not ff_xchg(&self.writer_waiting, 0):
            # Someone cleared the flag first: their post is on its way; take it.
            PyThread_acquire_lock(self.wakeup, WAIT_LOCK)

    def tail_gap(self):
        """After close and the last ``take()``: the gap record (JSON bytes) for messages dropped
        since the last one that fitted, or None. The writer's, once the receive path is done."""
        if not ff_load(&self.closed_flag) or self.window_dropped == 0:
            return None
        gap = (f'{{"reason":"recording_overflow","dropped":{self.window_dropped},'
               f'"stopped_ns":{self.window_first_ns},"restarted_ns":null}}').encode()  # never restarted
        self.window_dropped = 0
        return gap

    def close(self):
        """Stop taking messages (any thread); the writer then takes what is left."""
        ff_store(&self.closed_flag, 1)
        if ff_xchg(&self.writer_waiting, 0):
            PyThread_release_lock(self.wakeup)

    @property
    def closed(self):
        return bool(ff_load(&self.closed_flag))

    @property
    def pending_chunks(self):
        return ff_load64(&self.full.tail) - self.full.head

    def stats(self):
        return {"records": self.records, "bytes": self.bytes, "dropped": self.dropped,
                "dropped_bytes": self.dropped_bytes, "buffer_bytes": self.allocated_bytes}
