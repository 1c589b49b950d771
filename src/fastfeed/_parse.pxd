# The FeedResponse schema walk: one pass over a frame into a reusable scratch area of C structs
# (presence bits, pools grown only when a frame is larger than any before). The decoder commits
# the scratch to the store; to_dict renders it as the SDK's dict. One walker, two readers.

from libc.stdint cimport uint8_t, int32_t, uint32_t, int64_t, uint64_t

from fastfeed._wire cimport WireError

# Feed.FeedUnion and FullFeed.FullFeedUnion cases.
cdef enum:
    CASE_NONE = 0
    CASE_LTPC = 1
    CASE_FULL = 2
    CASE_GREEKS = 3
    FF_NONE = 0
    FF_MARKET = 1
    FF_INDEX = 2

# Which sub-messages a scratch feed carried (presence, as protobuf tracks it for messages).
cdef enum:
    H_LTPC = 1
    H_IEP = 2
    H_LEVEL = 4
    H_GREEKS = 8
    H_OHLC = 16
    H_FIRST = 32
    H_STATS = 64            # SFeed.stats is set (zeroed when a branch with statistics starts)

# Which map of MarketInfo a scratch status entry belongs to.
cdef enum:
    MI_SEGMENT = 0
    MI_CAS = 1
    MI_PREOPEN = 2

ctypedef struct SQuote:
    int64_t bid_q
    double bid_p
    int64_t ask_q
    double ask_p

ctypedef struct SBar:
    Py_ssize_t interval_off
    Py_ssize_t interval_len
    int32_t repeats         # bars of this interval merged into this one (see Scratch.max_bars)
    double open
    double high
    double low
    double close
    int64_t vol
    int64_t ts

ctypedef struct SLtpc:
    double ltp
    int64_t ltt
    int64_t ltq
    double cp
    double iep              # LTPC.iep; meaningful only with H_IEP

ctypedef struct SStats:
    # MarketFullFeed's scalars; FirstLevelWithGreeks uses vtt, oi and iv.
    double atp
    int64_t vtt
    double oi
    double iv
    double tbq
    double tsq
    double iep
    double rp
    int64_t ieq
    int64_t iiq_total
    int64_t iiq_m
    int64_t cas_eligible

ctypedef struct SGreeks:
    double delta
    double theta
    double gamma
    double vega
    double rho

ctypedef struct SFeed:
    # What every feed touches comes first, in the struct's first 128 bytes with the LTPC: an
    # LTPC entry costs two cache lines of scratch, not four.
    Py_ssize_t key_off
    Py_ssize_t key_len
    # The map entry's content (key and value fields) as it came: the NATS bridge forwards it.
    Py_ssize_t entry_off
    Py_ssize_t entry_len
    int32_t row
    int32_t mode
    int32_t case_
    int32_t ff_case
    # Which sub-messages were present. Each sub-struct is zeroed when its bit is first set, so
    # a feed costs only what it carries.
    uint32_t has
    int32_t b_dropped       # bars not kept past Scratch.max_bars distinct intervals
    Py_ssize_t q_start
    Py_ssize_t q_count
    Py_ssize_t b_start
    Py_ssize_t b_count
    SLtpc ltpc
    SStats stats
    SGreeks greeks
    SQuote first
    uint64_t hash           # only for keys the decoder's prediction missed

ctypedef struct SStatus:
    int32_t map
    int32_t value           # segmentStatus: MarketStatus
    Py_ssize_t key_off
    Py_ssize_t key_len
    Py_ssize_t status_off
    Py_ssize_t status_len
    int64_t updated

ctypedef struct Scratch:
    # What a frame costs here is bounded by what it means, not by its length: a key repeated
    # in a frame keeps only its last entry (as the map does) once the feeds pool is full, and
    # a feed keeps its first max_quotes depth levels and at most max_bars distinct OHLC intervals
    # (the decoder sets them to what its store keeps; to_dict to PY_SSIZE_T_MAX, everything). Pools that a frame left oversized shrink after the next frame.
    Py_ssize_t max_quotes
    Py_ssize_t max_bars
    SQuote spare_quote      # where levels past max_quotes are parsed (checked, not kept)
    const uint8_t* buf
    int32_t type_
    int64_t current_ts
    bint has_market_info
    Py_ssize_t info_off     # the last MarketInfo's content, as it came (for the NATS bridge)
    Py_ssize_t info_len
    bint no_memory
    WireError err
    Py_ssize_t err_pos
    SFeed* feeds
    Py_ssize_t n_feeds
    Py_ssize_t cap_feeds
    SQuote* quotes
    Py_ssize_t n_quotes
    Py_ssize_t cap_quotes
    SBar* bars
    Py_ssize_t n_bars
    Py_ssize_t cap_bars
    SStatus* statuses
    Py_ssize_t n_statuses
    Py_ssize_t cap_statuses


cdef void init_scratch(Scratch* s, Py_ssize_t max_quotes, Py_ssize_t max_bars) noexcept nogil
cdef int parse_frame(Scratch* s, const uint8_t* data, Py_ssize_t size) noexcept nogil
cdef void settle_scratch(Scratch* s) noexcept nogil
cdef Py_ssize_t scratch_bytes(Scratch* s) noexcept nogil
cdef void free_scratch(Scratch* s) noexcept nogil
cdef bint utf8_valid(const uint8_t* s, Py_ssize_t n) noexcept nogil
cdef object wire_error(Scratch* s)
cdef object utf8_error(Py_ssize_t offset)
cdef str text_at(const uint8_t* buf, Py_ssize_t off, Py_ssize_t n)
cdef object enum_name(tuple names, int32_t value)
cdef object status_name(int32_t value)
