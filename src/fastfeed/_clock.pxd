# Wall-clock receive times, shared by the decoder and the transport listener.
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include <stdint.h>
    #ifdef _WIN32
    #include <windows.h>
    static inline int64_t ff_now_ns(void) {
        FILETIME ft;
        ULARGE_INTEGER t;
        GetSystemTimePreciseAsFileTime(&ft);
        t.LowPart = ft.dwLowDateTime;
        t.HighPart = ft.dwHighDateTime;
        return (int64_t)(t.QuadPart - 116444736000000000ULL) * 100;  /* 1601 -> 1970, 100 ns */
    }
    #else
    #include <time.h>
    static inline int64_t ff_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    #endif
    """
    int64_t now_ns "ff_now_ns"() noexcept nogil
