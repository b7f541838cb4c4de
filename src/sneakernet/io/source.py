"""The source a pack reads: the :class:`Source` protocol (walk, open, read, re-stat) and :class:`LocalSource`, a
local directory tree, walked in a deterministic order (:func:`walk`) and whose files are opened without following
symlinks.

The walk is depth-first with each directory's entries sorted by their name's bytes, a directory before what it
holds, so the same tree always gives the same sequence. Symlinks are reported, never followed. Only one directory
listing per level is in memory at a time.

Pack and plan read their source only through these: a test hands them a fake source to inject a fault (a file
that cannot be opened, grows or shrinks while it is read), and other sources (an object store) can stand in later.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..errors import SourceError
from ..format import FINISHED_NAME, RESERVED_NAME
from ..patterns import Excluder

KIND_FILE = "file"
KIND_DIR = "dir"
KIND_SYMLINK = "symlink"
#: FIFOs, sockets and device nodes: reported and skipped, never packed.
KIND_SPECIAL = "special"
#: An entry's kind by the file-type bits of its mode (``st_mode & FILE_TYPE_BITS``, what ``stat.S_IFMT()``
#: keeps); anything else is special.
KIND_BY_FORMAT = {stat.S_IFREG: KIND_FILE, stat.S_IFDIR: KIND_DIR, stat.S_IFLNK: KIND_SYMLINK}
FILE_TYPE_BITS = 0o170000


class SourceEntry(NamedTuple):
    """One entry of the source tree, from a single ``lstat``; ``path`` is relative with ``/`` separators.

    A named tuple, not a dataclass: a million of them are made, pickled to the spool and read back.
    """

    path: bytes
    kind: str
    size: int
    mode: int
    mtime_ns: int
    uid: int
    gid: int
    dev: int
    ino: int
    nlink: int

    @classmethod
    def from_stat(cls, path: bytes, st: os.stat_result) -> SourceEntry:
        mode = st.st_mode
        kind = KIND_BY_FORMAT.get(mode & FILE_TYPE_BITS, KIND_SPECIAL)
        size = st.st_size if kind == KIND_FILE else 0
        # tuple.__new__ is what _make does, without its length check: this runs for every entry of a scan.
        return tuple.__new__(
            cls,
            (path, kind, size, mode & 0o7777, st.st_mtime_ns, st.st_uid, st.st_gid, st.st_dev, st.st_ino, st.st_nlink),
        )


@dataclass(frozen=True)
class Excluded:
    """An entry an exclude pattern matched (its subtree was not read)."""

    entry: SourceEntry


@dataclass(frozen=True)
class Unreadable:
    """An entry that could not be listed or stat'ed."""

    path: bytes
    reason: str


#: Directory descriptors a walk keeps open beside its checkpoints: one per level for the deepest levels, so a
#: pathological depth (thousands of levels) does not run the process out of descriptors. Every level whose depth
#: is a multiple of it keeps its descriptor too (a checkpoint); a level in between is opened again from the
#: checkpoint above it when the walk comes back up to it. Nothing is reached by a path from the root, whose
#: length the kernel limits (PATH_MAX, 4096 bytes): a tree 10,000 levels deep is walked like a flat one.
MAX_OPEN_LEVELS = 64
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
#: The source itself is followed if it is a symlink (``/data/current -> v3``, as ``find -H`` does): the user named
#: it. Below it, nothing is followed.
_OPEN_ROOT = _OPEN_DIR & ~getattr(os, "O_NOFOLLOW", 0)


@dataclass
class _Level:
    """A directory being walked: its path below the root, a descriptor (None while closed to save descriptors,
    see :data:`MAX_OPEN_LEVELS`), which directory it is (device, inode), and the names still to visit, sorted."""

    rel: bytes
    fd: int | None
    identity: tuple[int, int]
    names: Iterator[bytes]
    #: Found moved or replaced when opened again: the rest of its names are not visited.
    abandoned: bool = False


def walk(
    root: str | os.PathLike[str], excluder: Excluder | None = None
) -> Iterator[SourceEntry | Excluded | Unreadable]:
    """Every entry below ``root`` in deterministic order; ``root`` itself is not yielded."""
    for item in walk_stats(root, excluder):
        yield SourceEntry.from_stat(*item) if isinstance(item, tuple) else item


def walk_stats(
    root: str | bytes | os.PathLike[str], excluder: Excluder | None = None
) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
    """What :func:`walk` gives, with each entry as its path and ``lstat`` rather than a :class:`SourceEntry`:
    what plan reads, which needs a few of the fields of a million entries.

    Each directory is opened once (``O_NOFOLLOW``, relative to its parent's descriptor) and its entries stat'ed
    relative to it: no path is resolved from the root, and a directory swapped for a symlink while walking is
    never followed. The walk is a loop over a stack of levels rather than nested generators, whose every item
    would climb the nesting; the level on top of the stack always has its descriptor open.
    """
    top = os.fsencode(root)
    stack: list[_Level] = []
    first = _open_level(top, b"", None)
    if isinstance(first, Unreadable):
        yield first
        return
    stack.append(first)
    lstat = os.stat
    try:
        while stack:
            level = stack[-1]
            fd, rel = level.fd, level.rel
            # The names of the level on top of the stack, until one is a directory to descend into.
            for name in level.names:
                assert fd is not None
                path = rel + b"/" + name if rel else name
                try:
                    st = lstat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since it was listed: it is simply not part of the shipment
                except OSError as exc:
                    yield Unreadable(path, exc.strerror or str(exc))
                    continue
                is_dir = st.st_mode & FILE_TYPE_BITS == stat.S_IFDIR
                if excluder is not None and excluder.excludes(path, is_dir):
                    yield Excluded(SourceEntry.from_stat(path, st))
                    continue
                yield path, st
                if is_dir:
                    below = _open_level(top, path, fd)
                    if isinstance(below, Unreadable):
                        yield below
                    else:
                        stack.append(below)
                        _let_go_below(stack)
                        break
            else:
                stack.pop()
                if fd is not None:
                    os.close(fd)
                if stack and stack[-1].fd is None and not stack[-1].abandoned:
                    yield from _reopen(stack)
    finally:
        for level in stack:
            if level.fd is not None:
                os.close(level.fd)


def _let_go_below(stack: list[_Level]) -> None:
    """Close the descriptor of the level :data:`MAX_OPEN_LEVELS` below the top, unless it is a checkpoint."""
    index = len(stack) - 1 - MAX_OPEN_LEVELS
    fd = stack[index].fd if index > 0 and index % MAX_OPEN_LEVELS else None
    if fd is not None:
        os.close(fd)
        stack[index].fd = None


def _reopen(stack: list[_Level]) -> Iterator[Unreadable]:
    """Open again the levels from the nearest open one above the top down to the top, one name at a time, each
    checked to be the directory it was; one that is not (moved or replaced meanwhile) is reported and the rest
    of it and of the levels inside it left unwalked."""
    first = len(stack) - 1
    while stack[first - 1].fd is None:  # at most MAX_OPEN_LEVELS steps: the root and checkpoints stay open
        first -= 1
    for index in range(first, len(stack)):
        level, parent_fd = stack[index], stack[index - 1].fd
        try:
            if parent_fd is None:
                raise FileNotFoundError
            level.fd = os.open(level.rel.rsplit(b"/", 1)[-1], _OPEN_DIR, dir_fd=parent_fd)
            st = os.fstat(level.fd)
            same = (st.st_dev, st.st_ino) == level.identity
        except OSError:
            same = False
        if not same:
            for abandoned in stack[index:]:
                abandoned.names, abandoned.abandoned = iter(()), True
            yield Unreadable(level.rel, "it was moved or replaced while the source was read")
            return


def _open_level(top: bytes, rel: bytes, parent: int | None) -> _Level | Unreadable:
    """The directory ``rel`` (a name in the directory open as ``parent``; the root when ``rel`` is empty) opened
    and listed, or why it could not be."""
    fd: int | None = None
    try:
        if parent is not None:
            fd = os.open(rel.rsplit(b"/", 1)[-1], _OPEN_DIR, dir_fd=parent)
        else:
            fd = os.open(os.path.join(top, rel), _OPEN_DIR) if rel else os.open(top, _OPEN_ROOT)
        st = os.fstat(fd)
        # listdir of a descriptor gives str names: back to the bytes they are, as os.fsencode would.
        names = sorted([name.encode(_FS_ENCODING, _FS_ERRORS) for name in os.listdir(fd)])
    except OSError as exc:
        if fd is not None:
            os.close(fd)
        return Unreadable(rel or b".", exc.strerror or str(exc))
    return _Level(rel, fd, (st.st_dev, st.st_ino), iter(names))


def check_source(root: str | os.PathLike[str]) -> None:
    """Raises :class:`SourceError` when ``root`` is missing or not a directory."""
    root_text = os.fsdecode(root)
    if not os.path.exists(root_text):
        raise SourceError(f"source {root_text} does not exist: give the directory to pack")
    if not os.path.isdir(root_text):
        raise SourceError(f"source {root_text} is not a directory: give the directory to pack")


#: The pattern pack and plan add themselves for a restored tree (see :func:`restore_record_excludes`).
RESTORE_RECORD_EXCLUDE = "/" + RESERVED_NAME
#: A finished record is a few hundred bytes; anything much larger under that name is not one.
_FINISHED_RECORD_LIMIT = 1 << 20


def restore_record_excludes(root: str | os.PathLike[str]) -> tuple[str, ...]:
    """``(RESTORE_RECORD_EXCLUDE,)`` when ``root`` holds at its top exactly what a finished restore leaves there
    (the reserved directory holding only its finished record), else ``()``.

    Every restored destination keeps that record, and packing a restored tree onward is common: it is the tool's
    own bookkeeping, not data, so it is left out (and said) rather than refused. Anything else under the reserved
    name (a kept journal, a user's own files) is still refused by pack, with the option that handles it."""
    directory = os.path.join(os.fsencode(root), RESERVED_NAME.encode())
    record = os.path.join(directory, FINISHED_NAME.encode())
    try:
        if not stat.S_ISDIR(os.lstat(directory).st_mode) or os.listdir(directory) != [FINISHED_NAME.encode()]:
            return ()
        info = os.lstat(record)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _FINISHED_RECORD_LIMIT:
            return ()
        with open(record, "rb") as handle:
            fields = json.loads(handle.read(_FINISHED_RECORD_LIMIT))
    except (OSError, ValueError):
        return ()
    is_record = isinstance(fields, dict) and {"shipment", "fingerprint"} <= fields.keys()
    return (RESTORE_RECORD_EXCLUDE,) if is_record else ()


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

    def walk(self, excluder: Excluder | None) -> Iterator[SourceEntry | Excluded | Unreadable]:
        """Every entry of the tree (not the tree itself), in the deterministic order pack writes; raises
        :class:`~sneakernet.errors.SourceError` when there is no tree to walk."""

    def walk_stats(self, excluder: Excluder | None) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
        """Walk the tree once in the same order, each entry as its path and ``lstat``: what plan reads (a few
        fields of a million entries, see :func:`walk_stats`)."""

    def readable(self, path: bytes) -> bool:
        """Whether the regular file at ``path`` may be opened for reading (the scan and plan ask it of every
        file)."""

    def restore_record_excludes(self) -> tuple[str, ...]:
        """The exclude pattern of a finished restore's record at the tree's top, if that is all it holds there."""

    def is_file(self, path: bytes) -> bool:
        """Whether ``path`` is a regular file (following a symlink)."""

    def open(self, path: bytes) -> SourceFile:
        """Open the file at ``path`` (never through a symlink); raises ``OSError`` (``FileNotFoundError`` when it
        is gone)."""

    def readlink(self, path: bytes) -> bytes:
        """The target of the symlink at ``path``; raises ``FileNotFoundError`` when it is gone."""

    def ahead(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[SourceEntry | Unreadable]:
        """``entries`` (the walk's, which the reader then opens in order), as they are: a source whose reads have a
        latency (an object store) starts reading the next files' bytes meanwhile."""


_SOURCE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)


class LocalSource:
    """A directory on a local filesystem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self.root = os.fsencode(path)
        # root reads every file whatever its mode: no access() call per file then.
        self._reads_all = os.geteuid() == 0

    def walk(self, excluder: Excluder | None) -> Iterator[SourceEntry | Excluded | Unreadable]:
        check_source(self.path)
        return walk(self.path, excluder)

    def walk_stats(self, excluder: Excluder | None) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
        return walk_stats(self.root, excluder)

    def readable(self, path: bytes) -> bool:
        return self._reads_all or os.access(os.path.join(self.root, path), os.R_OK)

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

    def ahead(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[SourceEntry | Unreadable]:
        return entries  # the page cache and the kernel's read-ahead do it for a local file


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
