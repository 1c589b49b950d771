"""Named shared-memory segments for the store: create (replacing a stale one), open read-only,
unlink.

Segments are files in /dev/shm opened with `os.open` and mapped with `mmap`, not
`multiprocessing.shared_memory`: on Python 3.11 and 3.12 that module registers every segment a
process attaches with the resource tracker, which unlinks it when the process exits, so a reader's
exit would destroy the hub's segment. The control socket lives beside the segment.
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
import re
from dataclasses import dataclass

from fastfeed._shared import STATE_OPEN, read_identity, segment_size
from fastfeed.errors import FastfeedError

log = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def check_name(name: str) -> str:
    """A share name: 1-80 letters, digits, '_', '.' or '-', not starting with a symbol."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".sock"):
        raise ValueError(f"share name must be 1-80 characters of [A-Za-z0-9_.-], starting with a "
                         f"letter or digit (and not ending in .sock), not {name!r}")
    return name


def segment_path(name: str) -> str:
    return os.path.join(SHM_DIR, check_name(name))


def socket_path(name: str) -> str:
    """The hub's control socket, beside its segment."""
    return segment_path(name) + ".sock"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class Identity:
    """What a segment's header says about its writer."""

    valid: bool
    version: int
    pid: int
    generation: int
    state: int

    @property
    def live(self) -> bool:
        return self.valid and self.state == STATE_OPEN and pid_alive(self.pid)


def identity_of(path: str) -> tuple[Identity, int] | None:
    """The identity and inode of the segment at `path`, or None if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_size == 0:
            return Identity(False, 0, 0, 0, 0), st.st_ino
        with mmap.mmap(fd, min(st.st_size, mmap.PAGESIZE), prot=mmap.PROT_READ) as m:
            ident = Identity(*read_identity(m))
        return ident, st.st_ino
    finally:
        os.close(fd)


class WriterSegment:
    """A new segment, mapped read-write by the one process that writes it."""

    def __init__(self, name: str, max_instruments: int, ring_capacity: int) -> None:
        self.name = check_name(name)
        self.path = segment_path(name)
        if not os.path.isdir(SHM_DIR):
            raise FastfeedError(f"shared feeds need {SHM_DIR} (Linux)")
        self.size = segment_size(max_instruments, ring_capacity)
        self.generation = 1
        old = identity_of(self.path)
        if old is not None:
            ident, _ = old
            if ident.live:
                raise FastfeedError(f"shared feed {name!r} is already served by a live hub "
                                    f"(pid {ident.pid})")
            if ident.valid:
                self.generation = ident.generation + 1
            log.warning("replacing the stale segment %s (pid %s is gone)", self.path, ident.pid)
        # Built under a private name and linked into place whole: a reader never maps a segment
        # that is still being laid out.
        tmp = f"{self.path}.{os.getpid()}.new"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, self.size)
            self.map = mmap.mmap(fd, self.size)
            self.inode = os.fstat(fd).st_ino
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        self._tmp: str | None = tmp

    def publish(self) -> None:
        """Put the laid-out segment under its name, replacing a stale one."""
        tmp = self._tmp
        assert tmp is not None
        self._tmp = None
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            old = identity_of(self.path)
            if old is not None and old[0].live:
                os.unlink(tmp)
                raise FastfeedError(f"shared feed {self.name!r} is already served by a live hub "
                                    f"(pid {old[0].pid})") from None
            os.replace(tmp, self.path)
        else:
            os.unlink(tmp)

    def unlink(self) -> None:
        """Remove the name, if it is still ours (a newer hub may have replaced a stale one)."""
        if self._tmp is not None:
            _unlink_quietly(self._tmp)
            self._tmp = None
            return
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass


def map_reader(name: str) -> tuple[mmap.mmap, int]:
    """Map the segment `name` read-only: (mapping, inode). FileNotFoundError if there is none."""
    fd = os.open(segment_path(name), os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size < mmap.PAGESIZE:
            raise OSError(errno.EINVAL, "segment not laid out yet")
        return mmap.mmap(fd, st.st_size, prot=mmap.PROT_READ), st.st_ino
    finally:
        os.close(fd)


def inode_of(name: str) -> int | None:
    try:
        return os.stat(segment_path(name)).st_ino
    except FileNotFoundError:
        return None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
