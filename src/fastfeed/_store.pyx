"""Instrument registry, snapshot table, update ring and ring readers, all fixed at construction."""

cimport cython

from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_FillInfo, PyBuffer_Release,
                             PyBUF_SIMPLE, PyBUF_WRITABLE)
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDictProxy_New
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport NAN
from libc.stdint cimport int32_t, uint32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcmp, memcpy, memset

cdef extern from "<string.h>":
    size_t strnlen(const char* s, size_t maxlen)

from dataclasses import fields as _dataclass_fields

import numpy as np

from fastfeed._clock cimport now_ns

from fastfeed.errors import SeqlockTimeoutError
from fastfeed.quote import Bar as _PyBar, Quote, _Deferred
from fastfeed.schema import KIND_NAMES, MODES, mode_of

cdef Py_ssize_t ARENA_PER_KEY = 48
# Over a caller's buffer the arena cannot grow: room for keys longer than any Upstox key.
cdef Py_ssize_t FIXED_ARENA_PER_KEY = 64


cdef Py_ssize_t _slots_for(int max_instruments):
    cdef Py_ssize_t slots = 8
    while slots < 2 * max_instruments:
        slots <<= 1
    return slots


cdef inline Py_ssize_t _align(Py_ssize_t n):
    return (n + 63) & ~63


cdef tuple _offsets(int max_instruments, Py_ssize_t ring_capacity, Py_ssize_t slots):
    # The fixed layout of a store over a buffer: each table on its own cache line.
    # Returns the offsets of rows, records, slot hashes, slot rows, key offsets, key lengths,
    # the key arena, and the total size.
    cdef Py_ssize_t o = 0
    out = []
    for size in (max_instruments * sizeof(QuoteRow), ring_capacity * sizeof(UpdateRecord),
                 slots * sizeof(uint64_t), slots * sizeof(int32_t),
                 max_instruments * sizeof(Py_ssize_t), max_instruments * sizeof(int32_t),
                 max_instruments * FIXED_ARENA_PER_KEY):
        out.append(o)
        o = _align(o + size)
    out.append(o)
    return tuple(out)


cdef class _Memory:
    """A caller's buffer, held for a store built over it, and what its numpy views are made
    from. Not a memoryview: the garbage collector may clear a memoryview in a reference cycle
    while views still export it, which fails; this holds no references it could clear."""

    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, buffer, bint writable):
        PyObject_GetBuffer(buffer, &self.view, PyBUF_WRITABLE if writable else PyBUF_SIMPLE)
        self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)

    def __getbuffer__(self, Py_buffer* out, int flags):
        PyBuffer_FillInfo(out, self, self.view.buf, self.view.len, self.view.readonly, flags)

    def __releasebuffer__(self, Py_buffer* out):
        pass


def _struct_dtype(fields, Py_ssize_t itemsize):
    names, formats, offsets = zip(*fields)
    return np.dtype({"names": list(names), "formats": list(formats),
                     "offsets": list(offsets), "itemsize": itemsize})


cdef object _make_bar_dtype():
    cdef Bar b
    cdef char* o = <char*>&b
    return _struct_dtype([
        ("interval", "S16", <char*>&b.interval[0] - o),
        ("open", "<f8", <char*>&b.open - o),
        ("high", "<f8", <char*>&b.high - o),
        ("low", "<f8", <char*>&b.low - o),
        ("close", "<f8", <char*>&b.close - o),
        ("vol", "<i8", <char*>&b.vol - o),
        ("ts", "<i8", <char*>&b.ts - o),
    ], sizeof(Bar))


cdef object _make_row_dtype(object bar_dtype):
    cdef QuoteRow r
    cdef char* o = <char*>&r
    return _struct_dtype([
        ("seq", "<u8", <char*>&r.seq - o),
        ("updates", "<i8", <char*>&r.updates - o),
        ("server_ts", "<i8", <char*>&r.server_ts - o),
        ("recv_ns", "<i8", <char*>&r.recv_ns - o),
        ("mode", "<i4", <char*>&r.mode - o),
        ("kind", "<i4", <char*>&r.kind - o),
        ("parts", "<u4", <char*>&r.parts - o),
        ("flags", "<u4", <char*>&r.flags - o),
        ("ltp", "<f8", <char*>&r.ltp - o),
        ("ltt", "<i8", <char*>&r.ltt - o),
        ("ltq", "<i8", <char*>&r.ltq - o),
        ("cp", "<f8", <char*>&r.cp - o),
        ("ltpc_iep", "<f8", <char*>&r.ltpc_iep - o),
        ("atp", "<f8", <char*>&r.atp - o),
        ("vtt", "<i8", <char*>&r.vtt - o),
        ("oi", "<f8", <char*>&r.oi - o),
        ("iv", "<f8", <char*>&r.iv - o),
        ("tbq", "<f8", <char*>&r.tbq - o),
        ("tsq", "<f8", <char*>&r.tsq - o),
        ("iep", "<f8", <char*>&r.iep - o),
        ("rp", "<f8", <char*>&r.rp - o),
        ("ieq", "<i8", <char*>&r.ieq - o),
        ("iiq_total", "<i8", <char*>&r.iiq_total - o),
        ("iiq_m", "<i8", <char*>&r.iiq_m - o),
        ("cas_eligible", "<i4", <char*>&r.cas_eligible - o),
        ("n_levels", "<i4", <char*>&r.n_levels - o),
        ("delta", "<f8", <char*>&r.delta - o),
        ("theta", "<f8", <char*>&r.theta - o),
        ("gamma", "<f8", <char*>&r.gamma - o),
        ("vega", "<f8", <char*>&r.vega - o),
        ("rho", "<f8", <char*>&r.rho - o),
        ("bid_p", ("<f8", (MAX_LEVELS,)), <char*>&r.bid_p[0] - o),
        ("bid_q", ("<i8", (MAX_LEVELS,)), <char*>&r.bid_q[0] - o),
        ("ask_p", ("<f8", (MAX_LEVELS,)), <char*>&r.ask_p[0] - o),
        ("ask_q", ("<i8", (MAX_LEVELS,)), <char*>&r.ask_q[0] - o),
        ("n_bars", "<i4", <char*>&r.n_bars - o),
        ("bars_dropped", "<i4", <char*>&r.bars_dropped - o),
        ("bars", (bar_dtype, (MAX_BARS,)), <char*>&r.bars[0] - o),
    ], sizeof(QuoteRow))


cdef object _make_record_dtype():
    cdef UpdateRecord u
    cdef char* o = <char*>&u
    return _struct_dtype([
        ("seq", "<u8", <char*>&u.seq - o),
        ("row", "<i4", <char*>&u.row - o),
        ("parts", "<u4", <char*>&u.parts - o),
        ("mode", "<i4", <char*>&u.mode - o),
        ("kind", "<i4", <char*>&u.kind - o),
        ("recv_ns", "<i8", <char*>&u.recv_ns - o),
        ("server_ts", "<i8", <char*>&u.server_ts - o),
        ("ltp", "<f8", <char*>&u.ltp - o),
        ("ltt", "<i8", <char*>&u.ltt - o),
        ("ltq", "<i8", <char*>&u.ltq - o),
        ("cp", "<f8", <char*>&u.cp - o),
        ("bid_p", "<f8", <char*>&u.bid_p - o),
        ("bid_q", "<i8", <char*>&u.bid_q - o),
        ("ask_p", "<f8", <char*>&u.ask_p - o),
        ("ask_q", "<i8", <char*>&u.ask_q - o),
        ("vtt", "<i8", <char*>&u.vtt - o),
        ("oi", "<f8", <char*>&u.oi - o),
    ], sizeof(UpdateRecord))


BAR_DTYPE = _make_bar_dtype()
ROW_DTYPE = _make_row_dtype(BAR_DTYPE)
RECORD_DTYPE = _make_record_dtype()


cdef inline size_t _address(object array) except? 0:
    # Through the buffer protocol without a format: __array_interface__ describes every field
    # of a structured dtype, about 15 us for RECORD_DTYPE, on every ring read.
    cdef Py_buffer view
    cdef size_t address
    PyObject_GetBuffer(array, &view, PyBUF_SIMPLE)
    address = <size_t>view.buf
    PyBuffer_Release(&view)
    return address


cdef class Store:
    """The latest quote per instrument (the snapshot table) and the stream of updates (the ring).

    Both are numpy structured arrays over memory allocated once, here. Rows are written only by
    the decoder, on the thread that feeds it; ``quote()`` and ``reader()`` are safe from any
    thread (see ``QuoteRow.seq``).
    """

    def __cinit__(self, int max_instruments=4096, Py_ssize_t ring_capacity=1 << 16,
                  buffer=None, bint attach=False):
        cdef Py_ssize_t slots = _slots_for(max_instruments)
        cdef char* base
        if max_instruments < 1:
            raise ValueError("max_instruments must be at least 1")
        if ring_capacity < 2 or ring_capacity & (ring_capacity - 1):
            raise ValueError("ring_capacity must be a power of two, at least 2")
        self.max_instruments = max_instruments
        self.ring_capacity = ring_capacity
        self.ring_mask = ring_capacity - 1
        self.slot_mask = slots - 1
        self.keys = []
        if buffer is None:
            if attach:
                raise ValueError("attach needs the buffer of an existing store")
            self._allocate(slots)
        else:
            self._over_buffer(buffer, slots, attach)
        if not attach:
            # np.zeros maps pages lazily; write them now so that resident memory is fixed here
            # and the first pass over the ring costs no page faults on the hot path.
            memset(self.rows, 0, max_instruments * sizeof(QuoteRow))
            memset(self.records, 0, ring_capacity * sizeof(UpdateRecord))
            for i in range(max_instruments):
                self.rows[i].ltpc_iep = NAN
            memset(self.slot_hash, 0, slots * sizeof(uint64_t))
            memset(self.slot_row, 0xFF, slots * sizeof(int32_t))
        # Only the decoder writes, through the pointers: every view handed out is read-only, so
        # that no reader can break a row's seqlock or its counts.
        self._rows_array.flags.writeable = False
        self._ring_array.flags.writeable = False

    cdef int _allocate(self, Py_ssize_t slots) except -1:
        self._rows_array = np.zeros(self.max_instruments, dtype=ROW_DTYPE)
        self._ring_array = np.zeros(self.ring_capacity, dtype=RECORD_DTYPE)
        self.rows = <QuoteRow*>_address(self._rows_array)
        self.records = <UpdateRecord*>_address(self._ring_array)
        self.slot_hash = <uint64_t*>calloc(slots, sizeof(uint64_t))
        self.slot_row = <int32_t*>malloc(slots * sizeof(int32_t))
        self.key_off = <Py_ssize_t*>calloc(self.max_instruments, sizeof(Py_ssize_t))
        self.key_len = <int32_t*>calloc(self.max_instruments, sizeof(int32_t))
        self.arena_size = self.max_instruments * ARENA_PER_KEY
        self.arena = <char*>malloc(self.arena_size)
        if not (self.slot_hash and self.slot_row and self.key_off and self.key_len and self.arena):
            raise MemoryError()
        return 0

    cdef int _over_buffer(self, object buffer, Py_ssize_t slots, bint attach) except -1:
        # Every table at a fixed offset of the caller's buffer (Store.buffer_size bytes), so that
        # another process mapping the same bytes finds them: nothing here may grow.
        cdef Py_ssize_t size = Store.buffer_size(self.max_instruments, self.ring_capacity)
        cdef Py_ssize_t o_rows, o_records, o_hash, o_row, o_off, o_len, o_arena
        cdef char* base
        cdef _Memory memory = _Memory(buffer, not attach)
        self._memory = memory
        self.fixed = True
        if memory.view.len < size:
            raise ValueError(f"the store needs {size} bytes, the buffer has {memory.view.len}")
        o_rows, o_records, o_hash, o_row, o_off, o_len, o_arena, _ = _offsets(
            self.max_instruments, self.ring_capacity, slots)
        base = <char*>memory.view.buf
        self.rows = <QuoteRow*>(base + o_rows)
        self.records = <UpdateRecord*>(base + o_records)
        self.slot_hash = <uint64_t*>(base + o_hash)
        self.slot_row = <int32_t*>(base + o_row)
        self.key_off = <Py_ssize_t*>(base + o_off)
        self.key_len = <int32_t*>(base + o_len)
        self.arena = base + o_arena
        self.arena_size = self.max_instruments * FIXED_ARENA_PER_KEY
        self._rows_array = np.frombuffer(memory, ROW_DTYPE, self.max_instruments, o_rows)
        self._ring_array = np.frombuffer(memory, RECORD_DTYPE, self.ring_capacity, o_records)
        return 0

    @staticmethod
    def buffer_size(int max_instruments, Py_ssize_t ring_capacity):
        """Bytes a store of this size takes when built over a caller's buffer (``buffer=``)."""
        return _offsets(max_instruments, ring_capacity, _slots_for(max_instruments))[7]

    def __dealloc__(self):
        if self.fixed:
            return  # the memory is the caller's
        free(self.slot_hash)
        free(self.slot_row)
        free(self.key_off)
        free(self.key_len)
        free(self.arena)

    cdef int32_t add(self, const char* key, Py_ssize_t size, uint64_t h) except -2:
        """Register a key the caller has checked is new and valid UTF-8; returns its row."""
        cdef int32_t row = self.n_rows
        cdef uint64_t i = h & self.slot_mask
        cdef char* grown
        if row >= self.max_instruments:
            return -1
        if self.arena_used + size > self.arena_size:
            if self.fixed:
                raise MemoryError(f"the store's key arena ({self.arena_size} bytes) is full")
            grown = <char*>realloc(self.arena, 2 * self.arena_size + size)
            if grown == NULL:
                raise MemoryError()
            self.arena = grown
            self.arena_size = 2 * self.arena_size + size
        self.keys.append(key[:size].decode("utf-8"))
        memcpy(self.arena + self.arena_used, key, size)
        self.key_off[row] = self.arena_used
        self.key_len[row] = <int32_t>size
        self.arena_used += size
        while self.slot_row[i] >= 0:
            i = (i + 1) & self.slot_mask
        self.slot_hash[i] = h
        self.slot_row[i] = row
        self.n_rows += 1
        return row

    cdef void mark_all_stale(self) noexcept nogil:
        # A write like any other: inside the row's seqlock, so that readers see it.
        cdef int i
        cdef QuoteRow* row
        for i in range(self.n_rows):
            row = &self.rows[i]
            row.seq += 1
            FF_RELEASE_FENCE()
            row.flags |= FLAG_STALE
            FF_RELEASE_FENCE()
            row.seq += 1

    def mark_stale(self):
        """Flag every row stale until its next update (the feed calls this on a gap)."""
        self.mark_all_stale()

    # Python API ---------------------------------------------------------------------------

    def row(self, key):
        """The row id of ``key`` (a str, or its UTF-8 bytes), or -1 if it was never seen."""
        cdef bytes b
        if isinstance(key, str):
            b = key.encode("utf-8")
        elif isinstance(key, (bytes, bytearray, memoryview)):
            b = bytes(key)
        else:
            raise TypeError(f"an instrument key is a str such as 'NSE_EQ|INE002A01018', not "
                            f"{type(key).__name__}")
        return self.find(b, len(b), hash_key(b, len(b)))

    def key(self, int row):
        """The instrument key of a row."""
        if row < 0 or row >= self.n_rows:
            raise IndexError(row)
        return self.keys[row]

    @property
    def instruments(self):
        """Instrument keys in row order."""
        return list(self.keys)

    def __len__(self):
        return self.n_rows

    def __contains__(self, key):
        return self.row(key) >= 0

    @property
    def snapshot(self):
        """Zero-copy view of the snapshot table (``ROW_DTYPE``), one row per instrument."""
        return self._rows_array[:self.n_rows]

    @property
    def ring(self):
        """Zero-copy view of the whole ring (``RECORD_DTYPE``); slot ``(seq - 1) % capacity``."""
        return self._ring_array

    @property
    def updates_written(self):
        """Updates written to the ring since construction (the seq of the newest)."""
        return self.head

    def row_copy(self, int row):
        """A consistent copy of one snapshot row as a numpy record (seqlock read)."""
        cdef QuoteRow copy
        if row < 0 or row >= self.n_rows:
            raise IndexError(row)
        read_or_raise(self.rows, row, &copy)
        out = np.zeros(1, dtype=ROW_DTYPE)
        memcpy(<void*>_address(out), &copy, sizeof(QuoteRow))
        return out[0]

    def quote(self, key):
        """The latest state of ``key`` as an immutable :class:`Quote`, or None if never seen."""
        cdef int32_t row = self.row(key)
        if row < 0:
            return None
        return self.quote_at(row)

    cpdef object quote_at(self, int32_t row):
        """The latest state of a row as an immutable :class:`Quote` (no key lookup: the row is
        the one the registry gave, e.g. an update record's ``row``)."""
        cdef QuoteRow r
        if row < 0 or row >= self.n_rows:
            raise IndexError(row)
        read_or_raise(self.rows, row, &r)
        return _to_quote(<str>self.keys[row], &r)

    def reader(self, bint from_start=False):
        """A new reader of the ring; by default it starts at the newest update."""
        return RingReader(self, from_start)

    def latest(self, Py_ssize_t n):
        """The newest `n` records (at most the ring's capacity), oldest first: a view into the
        ring when they lie in one piece, else a copy. Valid until the ring moves on."""
        if n > self.ring_capacity:
            n = self.ring_capacity
        if n < 0 or <uint64_t>n > self.head:
            raise ValueError(f"only {self.head} records written")
        return self._records_from(self.head - n, n)

    cdef object _records_from(self, uint64_t position, uint64_t n):
        # Records position .. position + n - 1 of the stream, where the ring keeps them.
        cdef uint64_t start = position & self.ring_mask
        cdef uint64_t cap = <uint64_t>self.ring_capacity
        ring = self._ring_array
        if start + n <= cap:
            return ring[start:start + n]
        return np.concatenate((ring[start:], ring[:start + n - cap]))


cdef int _read_row(QuoteRow* rows, int32_t row, QuoteRow* out) noexcept nogil:
    # Seqlock read: retry while the writer is inside the row, pausing the CPU between tries;
    # the clock is looked at every 1024 tries only.
    cdef uint64_t before
    cdef uint64_t tries = 0
    cdef int64_t deadline = 0
    while True:
        before = (<volatile uint64_t*>&rows[row].seq)[0]
        if not before & 1:
            FF_ACQUIRE_FENCE()
            memcpy(out, &rows[row], sizeof(QuoteRow))
            FF_ACQUIRE_FENCE()
            if (<volatile uint64_t*>&rows[row].seq)[0] == before:
                return 0
        FF_CPU_PAUSE()
        tries += 1
        if tries & 1023 == 0:
            if deadline == 0:
                deadline = now_ns() + READ_ROW_TIMEOUT_MS * 1000000LL
            elif now_ns() > deadline:
                return -1


cdef int read_or_raise(QuoteRow* rows, int32_t row, QuoteRow* out) except -1:
    # The GIL is kept: a writer that holds it is never inside a row while we run.
    if _read_row(rows, row, out) < 0:
        raise SeqlockTimeoutError(row, READ_ROW_TIMEOUT_MS / 1000)
    return 0


cdef inline int clamp(int32_t n, int32_t most) noexcept nogil:
    # Counts in a row are trusted nowhere: memory shared with another process, or a bug, must
    # not turn into reads past the row.
    return 0 if n < 0 else (most if n > most else n)


cdef extern from *:
    """
    #include <structmember.h>
    /* A Quote is built without its dataclass __init__ (a frozen dataclass's __init__ pays an
       object.__setattr__ per field, microseconds for 32 fields): it is allocated as
       object.__new__ does and each slot is filled as its member descriptor would fill it. */
    static PyObject* ff_alloc(PyObject* type, Py_ssize_t items) {
        return ((PyTypeObject*)type)->tp_alloc((PyTypeObject*)type, items);
    }
    /* The byte offset of an object slot in its instances, or -1 if `descr` is not one. */
    static Py_ssize_t ff_slot_offset(PyObject* descr) {
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        PyMemberDef* m = ((PyMemberDescrObject*)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }
    /* An object slot's value (a borrowed reference), or NULL while it is unset. */
    static inline PyObject* ff_slot_get(PyObject* obj, Py_ssize_t offset) {
        return *(PyObject**)((char*)obj + offset);
    }
    /* Empty a slot, dropping its reference. */
    static inline void ff_slot_clear(PyObject* obj, Py_ssize_t offset) {
        Py_CLEAR(*(PyObject**)((char*)obj + offset));
    }
    /* Fill an empty slot (a new object's): takes a new reference to value. */
    static inline void ff_slot_fill(PyObject* obj, Py_ssize_t offset, PyObject* value) {
        Py_INCREF(value);
        *(PyObject**)((char*)obj + offset) = value;
    }
    """
    object ff_alloc(object type, Py_ssize_t items)  # items: a tuple subclass's length
    Py_ssize_t ff_slot_offset(object descr)
    PyObject* ff_slot_get(object obj, Py_ssize_t offset)
    void ff_slot_clear(object obj, Py_ssize_t offset)
    void ff_slot_fill(object obj, Py_ssize_t offset, object value)


cdef enum:
    QUOTE_FIELDS = 32

# Quote's fields in order (fastfeed.quote.Quote); BIDS, ASKS and OHLC are left to QuoteParts.
cdef enum:
    F_KEY = 0
    F_LTP, F_LTT, F_LTQ, F_CP, F_LTPC_IEP, F_ATP, F_VTT, F_OI, F_IV, F_TBQ, F_TSQ, F_IEP
    F_RP, F_IEQ, F_IIQ_TOTAL, F_IIQ_M, F_CAS_ELIGIBLE, F_DELTA, F_THETA, F_GAMMA, F_VEGA, F_RHO
    F_BIDS, F_ASKS, F_OHLC, F_MODE, F_KIND, F_SERVER_TS, F_RECV_NS, F_UPDATES, F_STALE

# The byte offsets of Quote's slots in field order, and of its _parts slot.
cdef Py_ssize_t _QUOTE_SLOTS[QUOTE_FIELDS]
cdef Py_ssize_t _PARTS_SLOT


cdef int _find_quote_slots() except -1:
    global _PARTS_SLOT
    names = [f.name for f in _dataclass_fields(Quote)]
    if len(names) != QUOTE_FIELDS or names[F_BIDS:F_OHLC + 1] != ["bids", "asks", "ohlc"]:
        raise ImportError(f"fastfeed.quote.Quote's fields are not the {QUOTE_FIELDS} _store builds")
    for i, name in enumerate(names):
        _QUOTE_SLOTS[i] = ff_slot_offset(Quote.__dict__[name])
        if _QUOTE_SLOTS[i] < 0:
            raise ImportError(f"Quote.{name} is not a slot")
    _PARTS_SLOT = ff_slot_offset(_Deferred.__dict__["_parts"])
    if _PARTS_SLOT < 0:
        raise ImportError("Quote._parts is not a slot")
    return 0


_find_quote_slots()


cdef tuple _levels(const double* prices, const int64_t* quantities, int n):
    cdef tuple out = PyTuple_New(n)
    cdef int i
    for i in range(n):
        _set_item(out, i, (prices[i], quantities[i]))
    return out


@cython.freelist(8)
cdef class QuoteParts:
    """A Quote's depth levels and OHLC bars, copied out of the row's consistent copy and made
    into ``bids``, ``asks`` and ``ohlc`` only when one of them is first read (Quote.__getattr__).
    It holds no Python object, so the cyclic GC never tracks it."""

    cdef int n_levels
    cdef int n_bars
    cdef double bid_p[MAX_LEVELS]
    cdef int64_t bid_q[MAX_LEVELS]
    cdef double ask_p[MAX_LEVELS]
    cdef int64_t ask_q[MAX_LEVELS]
    cdef Bar bars[MAX_BARS]

    def build(self):
        """``(bids, asks, ohlc)``, as Quote's fields hold them."""
        cdef int i
        cdef dict ohlc = {}
        for i in range(self.n_bars):
            ohlc[_interval_name(self.bars[i].interval)] = _bar(&self.bars[i])
        return (_levels(self.bid_p, self.bid_q, self.n_levels),
                _levels(self.ask_p, self.ask_q, self.n_levels), PyDictProxy_New(ohlc))


cdef object _bar(Bar* b):
    # A Bar (a NamedTuple: a tuple subclass) allocated with its six items, as tuple.__new__
    # would, without the argument tuple it copies them from.
    bar = ff_alloc(_PyBar, 6)
    _set_item(bar, 0, b.open)
    _set_item(bar, 1, b.high)
    _set_item(bar, 2, b.low)
    _set_item(bar, 3, b.close)
    _set_item(bar, 4, b.vol)
    _set_item(bar, 5, b.ts)
    return bar


cdef inline void _set_item(object tuple_, Py_ssize_t i, object value) noexcept:
    Py_INCREF(value)
    PyTuple_SET_ITEM(tuple_, i, value)


# Interval names decoded before ("1d", "I1", ...): a row's bars name the same few all day.
cdef enum:
    NAMES_KEPT = 8
cdef char _names_raw[NAMES_KEPT][INTERVAL_SIZE]
cdef list _names = []


cdef str _interval_name(const char* interval):
    cdef Py_ssize_t i
    for i in range(len(_names)):
        if memcmp(_names_raw[i], interval, INTERVAL_SIZE) == 0:
            return <str>_names[i]
    name = PyUnicode_DecodeUTF8(interval, strnlen(interval, INTERVAL_SIZE), NULL)
    if len(_names) < NAMES_KEPT:
        memcpy(_names_raw[len(_names)], interval, INTERVAL_SIZE)
        _names.append(name)
    return name


cdef QuoteParts _parts_of(QuoteRow* r):
    cdef QuoteParts parts = QuoteParts.__new__(QuoteParts)
    cdef int n = clamp(r.n_levels, MAX_LEVELS)
    parts.n_levels = n
    parts.n_bars = clamp(r.n_bars, MAX_BARS)
    memcpy(parts.bid_p, r.bid_p, n * sizeof(double))
    memcpy(parts.bid_q, r.bid_q, n * sizeof(int64_t))
    memcpy(parts.ask_p, r.ask_p, n * sizeof(double))
    memcpy(parts.ask_q, r.ask_q, n * sizeof(int64_t))
    memcpy(parts.bars, r.bars, parts.n_bars * sizeof(Bar))
    return parts


cdef class _DeferredField:
    """Quote's descriptor for ``bids``, ``asks`` or ``ohlc`` (in place of the slot's own): the
    slot's value, made with the other two from the Quote's QuoteParts when it is still unset."""

    cdef object member      # the slot's member descriptor: setting and deleting go to it
    cdef Py_ssize_t offset
    cdef int index          # 0, 1, 2: bids, asks, ohlc

    def __cinit__(self, member, int index):
        self.member = member
        self.offset = ff_slot_offset(member)
        self.index = index

    def __get__(self, obj, owner):
        cdef PyObject* value
        cdef PyObject* parts
        cdef int i
        if obj is None:
            return self
        if not isinstance(obj, Quote):
            raise TypeError(f"descriptor for Quote applied to {type(obj).__name__}")
        value = ff_slot_get(obj, self.offset)
        if value != NULL:
            return <object>value
        parts = ff_slot_get(obj, _PARTS_SLOT)
        if parts == NULL or <object>parts is None:
            return self.member.__get__(obj, owner)  # unset and nothing to make it of: AttributeError
        built = (<QuoteParts>parts).build()
        for i in range(3):  # unless another thread got there first, during build()
            if ff_slot_get(obj, _QUOTE_SLOTS[F_BIDS + i]) == NULL:
                ff_slot_fill(obj, _QUOTE_SLOTS[F_BIDS + i], built[i])
        ff_slot_clear(obj, _PARTS_SLOT)  # its copy is of no more use
        return <object>ff_slot_get(obj, self.offset)

    def __set__(self, obj, value):
        self.member.__set__(obj, value)

    def __delete__(self, obj):
        self.member.__delete__(obj)


cdef int _install_deferred_fields() except -1:
    for i, name in enumerate(("bids", "asks", "ohlc")):
        setattr(Quote, name, _DeferredField(Quote.__dict__[name], i))
    return 0


_install_deferred_fields()


cdef inline void _put(object quote, int field, object value) noexcept:
    ff_slot_fill(quote, _QUOTE_SLOTS[field], value)


cdef tuple _MODE_NAMES = MODES


cdef object _to_quote(str key, QuoteRow* r):
    # Every field but bids, asks and ohlc, straight into the new Quote's slots (no tuple of
    # values in between); those three stay unset, their data in _parts.
    quote = ff_alloc(Quote, 0)
    _put(quote, F_KEY, key)
    _put(quote, F_LTP, r.ltp)
    _put(quote, F_LTT, r.ltt)
    _put(quote, F_LTQ, r.ltq)
    _put(quote, F_CP, r.cp)
    _put(quote, F_LTPC_IEP, r.ltpc_iep if r.flags & FLAG_LTPC_IEP else None)
    _put(quote, F_ATP, r.atp)
    _put(quote, F_VTT, r.vtt)
    _put(quote, F_OI, r.oi)
    _put(quote, F_IV, r.iv)
    _put(quote, F_TBQ, r.tbq)
    _put(quote, F_TSQ, r.tsq)
    _put(quote, F_IEP, r.iep)
    _put(quote, F_RP, r.rp)
    _put(quote, F_IEQ, r.ieq)
    _put(quote, F_IIQ_TOTAL, r.iiq_total)
    _put(quote, F_IIQ_M, r.iiq_m)
    _put(quote, F_CAS_ELIGIBLE, r.cas_eligible != 0)
    _put(quote, F_DELTA, r.delta)
    _put(quote, F_THETA, r.theta)
    _put(quote, F_GAMMA, r.gamma)
    _put(quote, F_VEGA, r.vega)
    _put(quote, F_RHO, r.rho)
    _put(quote, F_MODE, _MODE_NAMES[r.mode] if 0 <= r.mode < len(_MODE_NAMES) else mode_of(r.mode))
    _put(quote, F_KIND, KIND_NAMES[clamp(r.kind, len(KIND_NAMES) - 1)])
    _put(quote, F_SERVER_TS, r.server_ts)
    _put(quote, F_RECV_NS, r.recv_ns)
    _put(quote, F_UPDATES, r.updates)
    _put(quote, F_STALE, (r.flags & FLAG_STALE) != 0)
    ff_slot_fill(quote, _PARTS_SLOT, _parts_of(r))
    return quote


cdef class RingReader:
    """One consumer's cursor over the ring. A reader that falls more than the ring's capacity
    behind loses the oldest updates; ``read()`` reports how many, and ``missed`` totals them."""

    cdef Store store
    cdef readonly uint64_t cursor
    cdef readonly uint64_t missed

    def __cinit__(self, Store store, bint from_start=False):
        self.store = store
        self.cursor = 0 if from_start else store.head
        self.missed = 0

    @property
    def pending(self):
        """Updates written since this reader's cursor (may exceed the ring's capacity)."""
        return self.store.head - self.cursor

    def read(self, Py_ssize_t limit=-1):
        """Take the updates since the last read, oldest first: ``(records, missed_now)``.

        ``records`` is a copy (``RECORD_DTYPE``) in which each record is exactly the update its
        ``seq`` names; ``missed_now`` counts updates overwritten before this reader got to them
        (records the writer overwrote during the copy included), so that over a reader's life
        the records it got plus ``missed`` are every update written since it started.
        """
        cdef Store s = self.store
        cdef uint64_t head = (<volatile uint64_t*>&s.head)[0]
        cdef uint64_t cap = <uint64_t>s.ring_capacity
        cdef uint64_t lost = 0, raced = 0
        cdef uint64_t n, i, first, start
        cdef UpdateRecord* out_p
        FF_ACQUIRE_FENCE()
        if head - self.cursor > cap:
            lost = head - self.cursor - cap
            self.cursor = head - cap
        n = head - self.cursor
        if limit >= 0 and n > <uint64_t>limit:
            n = <uint64_t>limit
        # Over a bytearray: half the cost of np.empty(n, RECORD_DTYPE), on every read.
        out = np.frombuffer(bytearray(n * sizeof(UpdateRecord)), dtype=RECORD_DTYPE)
        out_p = <UpdateRecord*>_address(out)
        # Copied in C, holding the GIL throughout (numpy would let go of it for a big copy and
        # let the decoder overwrite slots mid-copy), then checked record by record: a writer
        # that does not need the GIL clears a slot's seq before overwriting it, so a record
        # whose seq is not its position's, in the copy or in the ring after the copy, raced.
        first = self.cursor
        start = first & s.ring_mask
        if start + n <= cap:
            memcpy(out_p, &s.records[start], n * sizeof(UpdateRecord))
        else:
            memcpy(out_p, &s.records[start], (cap - start) * sizeof(UpdateRecord))
            memcpy(out_p + (cap - start), s.records, (start + n - cap) * sizeof(UpdateRecord))
        FF_ACQUIRE_FENCE()
        for i in range(n):
            if (out_p[i].seq != first + i + 1
                    or (<volatile uint64_t*>&s.records[(first + i) & s.ring_mask].seq)[0]
                    != first + i + 1):
                raced = i + 1   # the writer goes oldest first: everything before it raced too
        if raced:
            out = out[raced:]
        self.cursor = first + n
        lost += raced
        self.missed += lost
        return out, lost
