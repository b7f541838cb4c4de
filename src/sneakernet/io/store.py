"""A drive's directory as a store: the one seam between drive/ and the bytes of a drive.

:class:`DriveStore` is what drive/ asks of a drive: write a file atomically (a ``.partial`` written, fsynced,
renamed, its directory fsynced), read it whole or by range, list, stat, remove, sync the filesystem. Names are
relative to the drive's root, ``/``-separated (``manifest.jsonl.zst``, ``segments/s000001.seg``): the same names
docs/format.md uses, and what an object store would take as keys.

:class:`LocalStore` is the local directory, today's code (io/atomic.py's guarantees). Tests hand drive/ a store of
their own (one that fails the n-th write, fills up, or fails an fsync) instead of patching private names; each
drive written at once gets a store of its own, so a failing drive fails only its own.

A store holds no policy: which files, in what order, and what an error is called are drive/'s.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import blake3

from ..format import PARTIAL_SUFFIX
from .atomic import install, sync_filesystem

#: How a reader opens a drive's files: a FIFO in place of one must not block it forever (O_NONBLOCK), and a
#: symlink planted in place of one is not followed (O_NOFOLLOW) but refused.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: A file being written is new (O_EXCL), never a symlink followed (O_NOFOLLOW), and not inherited by a child.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFLNK: "a symlink"}  # fmt: skip


def file_kind(mode: int) -> str:
    """What a file that should be a regular file is instead, for a message: "a FIFO", "a symlink", ..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


@dataclass(frozen=True)
class Stat:
    """What a store says of one name: its size and its mode (``stat.S_ISREG(mode)`` for a regular file), as
    ``lstat`` sees it: a symlink is a symlink, never what it points to."""

    size: int
    mode: int


class PartialFile(Protocol):
    """A file being written under its ``.partial`` name: nothing is under its final name until :meth:`commit`."""

    #: The final name, relative to the store's root.
    name: str
    #: Bytes in the file so far (what it held when reopened, plus what was written since).
    size: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def sync(self) -> None:
        """Make every byte written so far durable under the ``.partial`` name (flush, fsync)."""

    def commit(self) -> None:
        """Sync, close, rename to the final name and make the rename durable (fsync of the directory)."""

    def abort(self) -> None:
        """Close; the ``.partial`` stays behind, detectably incomplete. Never raises."""


class DriveStore(Protocol):
    """One drive's directory (see the module's docstring). Errors are OSErrors, as the local calls raise them;
    drive/ maps them to the project's errors."""

    #: Where the drive is, for messages (a local path for :class:`LocalStore`).
    path: str

    def make_dir(self, name: str) -> None:
        """Make directory ``name`` (and the drive's root) if missing."""

    def create(self, name: str) -> PartialFile:
        """Start writing ``name`` as a new ``name.partial`` (one already there, left by a killed run, is replaced;
        a symlink there is never written through)."""

    def reopen(self, name: str, keep: int) -> PartialFile:
        """Go on writing the ``name.partial`` a killed run left, cut to its first ``keep`` bytes (for appending)."""

    def write_atomic(self, name: str, chunks: Iterable[bytes]) -> None:
        """Write the bytes ``chunks`` yields to ``name``, all or nothing, durably (an exception from ``chunks``
        leaves ``name`` as it was)."""

    def open(self, name: str) -> BinaryIO:
        """Open ``name`` for reading, refused (an OSError whose ``strerror`` says why) unless a regular file."""

    def read_range(self, name: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of ``name`` from ``offset`` (fewer only where the file ends)."""

    def map(self, name: str) -> mmap.mmap:
        """The whole of regular file ``name`` mapped read-only, for hashing in place (closed by the caller)."""

    def list(self, name: str = "") -> list[str]:
        """The names in directory ``name`` (the root by default), unsorted; an OSError if it is not one."""

    def stat(self, name: str) -> Stat | None:
        """``name``'s size and mode (never following a symlink, but for the root ""), None if there is nothing
        by that name."""

    def remove(self, name: str) -> None:
        """Remove file or directory tree ``name`` (nothing there is fine)."""

    def sync_all(self) -> None:
        """Make everything written to the drive's filesystem durable (syncfs)."""


class _LocalPartial:
    """A local ``.partial`` file, written through a buffered file object."""

    def __init__(self, store: LocalStore, name: str, handle: BinaryIO, size: int) -> None:
        self.name = name
        self.size = size
        self._store = store
        self._handle = handle

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._handle.write(data)
        self.size += len(data)

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def commit(self) -> None:
        self.sync()
        self._handle.close()
        final = self._store.full(self.name)
        install(final + PARTIAL_SUFFIX, final)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()


class LocalStore:
    """A drive that is a local directory (io/atomic.py's durable writes; reads refuse anything but regular files,
    never block on a FIFO and never follow a symlink)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"LocalStore({self.path!r})"

    def full(self, name: str) -> str:
        """The local path of ``name`` (the root itself for "")."""
        return os.path.join(self.path, *name.split("/")) if name else self.path

    def make_dir(self, name: str) -> None:
        os.makedirs(self.full(name), exist_ok=True)

    def create(self, name: str) -> PartialFile:
        partial = self.full(name) + PARTIAL_SUFFIX
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        return _LocalPartial(self, name, os.fdopen(os.open(partial, _NEW_FILE, 0o666), "wb"), 0)

    def reopen(self, name: str, keep: int) -> PartialFile:
        fd = os.open(self.full(name) + PARTIAL_SUFFIX, os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", self.full(name) + PARTIAL_SUFFIX)
            os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
            return _LocalPartial(self, name, os.fdopen(fd, "wb"), keep)
        except BaseException:
            os.close(fd)
            raise

    def write_atomic(self, name: str, chunks: Iterable[bytes]) -> None:
        target = self.create(name)
        try:
            for chunk in chunks:
                target.write(chunk)
            target.commit()
        except BaseException:
            target.abort()
            raise

    def open(self, name: str) -> BinaryIO:
        return open_regular(self.full(name))

    def read_range(self, name: str, offset: int, size: int) -> bytes:
        with self.open(name) as handle:
            handle.seek(offset)
            return handle.read(size)

    def map(self, name: str) -> mmap.mmap:
        with self.open(name) as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    def list(self, name: str = "") -> list[str]:
        return os.listdir(self.full(name))

    def stat(self, name: str) -> Stat | None:
        try:
            # The root is the directory given (a mount point may be a symlink to it): followed; nothing inside is.
            info = os.lstat(self.full(name)) if name else os.stat(self.path)
        except FileNotFoundError:
            return None
        return Stat(info.st_size, info.st_mode)

    def remove(self, name: str) -> None:
        full = self.full(name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(full)

    def sync_all(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sync_filesystem(fd)
        finally:
            os.close(fd)


def open_regular(path: str) -> BinaryIO:
    """Open a local file for reading, refused (an OSError whose ``strerror`` says why) unless it is a regular file:
    checked with fstat on the descriptor opened, before a byte is read, so nothing can block or swap it."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "it is a symlink, not a regular file", path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"it is {file_kind(mode)}, not a regular file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _KeptPartial:
    """A ``.partial`` whose bytes, once committed, replace the final file only when they differ from it."""

    def __init__(self, store: KeepingStore, inner: PartialFile) -> None:
        self.name = inner.name
        self.size = inner.size
        self._store = store
        self._inner = inner
        self._hasher = blake3.blake3()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)
        self._hasher.update(data)
        self.size += len(data)

    def sync(self) -> None:
        self._inner.sync()

    def commit(self) -> None:
        if self._store.digest(self.name) == (self.size, self._hasher.hexdigest()):
            self._inner.abort()
            self._store.remove(self.name + PARTIAL_SUFFIX)
            self._store.kept.append(self.name)
            return
        self._inner.commit()
        self._store.written.append(self.name)

    def abort(self) -> None:
        self._inner.abort()


class KeepingStore(LocalStore):
    """A local drive written again in place (repair): every file goes through a ``.partial`` as in LocalStore, but
    one whose bytes are those already under its final name is dropped, the final file left untouched (its inode
    and mtime kept). ``kept`` and ``written`` name the files of each kind, in the order committed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.kept: list[str] = []
        self.written: list[str] = []

    def digest(self, name: str) -> tuple[int, str] | None:
        """Size and BLAKE3 of the final file ``name``; None when it is not there or cannot be read."""
        hasher = blake3.blake3()
        size = 0
        try:
            with self.open(name) as handle:
                while data := handle.read(1 << 20):
                    hasher.update(data)
                    size += len(data)
        except OSError:
            return None
        return size, hasher.hexdigest()

    def create(self, name: str) -> PartialFile:
        return _KeptPartial(self, super().create(name))
