"""The source a pack reads: the :class:`Source` protocol (walk, open, read, re-stat) and :class:`LocalSource`, a
local directory tree (the dir-fd walk of scan.py, files opened without following symlinks).

Pack and plan read their source only through these: a test hands them a fake source to inject a fault (a file
that cannot be opened, grows or shrinks while it is read), and other sources (an object store) can stand in later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from ..patterns import Excluder
from ..scan import Excluded, ScanSpool, ScanTotals, Unreadable, restore_record_excludes, scan, walk_stats


class FileStat(Protocol):
    """What pack needs of a file's metadata (``os.stat_result`` has it)."""

    @property
    def st_size(self) -> int: ...
    @property
    def st_mtime_ns(self) -> int: ...
    @property
    def st_mode(self) -> int: ...
    @property
    def st_uid(self) -> int: ...
    @property
    def st_gid(self) -> int: ...


class SourceFile(Protocol):
    """A file of the source, open for reading from its start."""

    def stat(self) -> FileStat:
        """Its metadata now: taken before and after reading, the two tell a file that changed while it was read."""

    def read(self, size: int, expected: int | None = None) -> bytes:
        """The next ``size`` bytes, fewer only at the end of the file; ``expected`` is the size :meth:`stat` gave,
        a hint that a short read reaching it is the end."""

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, without moving the position (to see whether a file grew)."""

    def close(self) -> None: ...


class Source(Protocol):
    """A tree to pack, whose entries are named by paths relative to it (``/`` separators, bytes)."""

    #: The tree's own name, as messages show it.
    root: bytes

    def scan(self, excludes: Sequence[str]) -> tuple[ScanTotals, ScanSpool]:
        """Walk the tree once, in the deterministic order pack writes (see scan.py)."""

    def walk_stats(self, excluder: Excluder | None) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
        """Walk the tree once in the same order, each entry as its path and ``lstat``: what plan reads (a few
        fields of a million entries, see :func:`sneakernet.scan.walk_stats`)."""

    def readable(self, path: bytes) -> bool:
        """Whether the regular file at ``path`` may be opened for reading (plan asks it of every file)."""

    def restore_record_excludes(self) -> tuple[str, ...]:
        """The exclude pattern of a finished restore's record at the tree's top, if that is all it holds there."""

    def is_file(self, path: bytes) -> bool:
        """Whether ``path`` is a regular file (following a symlink)."""

    def open(self, path: bytes) -> SourceFile:
        """Open the file at ``path`` (never through a symlink); raises ``OSError`` (``FileNotFoundError`` when it
        is gone)."""

    def readlink(self, path: bytes) -> bytes:
        """The target of the symlink at ``path``; raises ``FileNotFoundError`` when it is gone."""


_SOURCE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)


class LocalSource:
    """A directory on a local filesystem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.root = os.fsencode(path)
        # root reads every file whatever its mode: no access() call per file then (as scan does).
        self._check_access = os.geteuid() != 0

    def scan(self, excludes: Sequence[str]) -> tuple[ScanTotals, ScanSpool]:
        return scan(self.path, excludes)

    def walk_stats(self, excluder: Excluder | None) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
        return walk_stats(self.root, excluder)

    def readable(self, path: bytes) -> bool:
        return not self._check_access or os.access(os.path.join(self.root, path), os.R_OK)

    def restore_record_excludes(self) -> tuple[str, ...]:
        return restore_record_excludes(self.path)

    def is_file(self, path: bytes) -> bool:
        return os.path.isfile(os.path.join(self.root, path))

    def open(self, path: bytes) -> LocalFile:
        full = self.root + b"/" + path
        try:
            # O_NOATIME spares the source an inode write per file read; only the owner (or root) may ask for it.
            return LocalFile(os.open(full, _SOURCE_FLAGS | _NOATIME))
        except PermissionError:
            return LocalFile(os.open(full, _SOURCE_FLAGS))

    def readlink(self, path: bytes) -> bytes:
        return os.readlink(os.path.join(self.root, path))


class LocalFile:
    """A local file open for reading: a descriptor."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def read(self, size: int, expected: int | None = None) -> bytes:
        """Up to ``size`` bytes, fewer only at the end of the file.

        A short read is taken as the end without asking again once ``expected`` bytes (the size fstat gave) are
        in: that spares small files a second read; any other short read (a shrinking file, a network filesystem)
        is followed up.
        """
        data = os.read(self.fd, size)
        if len(data) == size or not data or len(data) == expected:
            return data
        parts = [data]
        got = len(data)
        while got < size and (more := os.read(self.fd, size - got)):
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def read_at(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        os.close(self.fd)
