"""Durable writes: the one place that makes a file's bytes and its name survive a power loss.

A file written here is made under a temporary name (its final name plus ``.partial``, created ``O_EXCL |
O_NOFOLLOW`` so a symlink or file planted there is never written through), fsynced, renamed over its final name,
and its directory fsynced. Guarantee: once a function here returns, the file is on disk whole under its final
name; if the machine stops before, the final name holds what it held before (or nothing), never a part. What
must not be written before a file is durable (a journal commit, drive.json) is written after the call returns.

No policy lives here: which files, and in what order, are the callers'; so are the words of an error, which
:func:`write_error` maps to the project's classes the same way for every writer.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
from collections.abc import Iterable
from typing import Any, BinaryIO

from ..errors import DestinationError, OutOfSpace, SneakernetError
from ..format import PARTIAL_SUFFIX

#: What an OSError of a write says when the disk, or the user's quota, is full.
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Bytes read at a time by :func:`copy_atomic`.
COPY_BLOCK = 1 << 20
#: A temporary file is new (O_EXCL), never a symlink followed (O_NOFOLLOW), and not inherited by a child.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def fsync_dir(path: str) -> None:
    """Make the names in directory ``path`` durable: a rename is not until its directory is fsynced."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(fd: int) -> None:
    """Make everything written to the filesystem holding ``fd`` durable: Linux's syncfs, which leaves other
    filesystems alone, else ``os.sync()``."""
    syncfs = _syncfs()
    if syncfs is None or syncfs(fd) != 0:
        os.sync()


@functools.cache
def _syncfs() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def write_atomic(path: str, data: bytes, mode: int = 0o666) -> None:
    """Write ``data`` to ``path``, all or nothing, durably (``mode`` as for :func:`open`, less the umask)."""
    write_chunks_atomic(path, (data,), mode)


def copy_atomic(source: BinaryIO, path: str, mode: int = 0o666) -> None:
    """Copy what ``source`` holds from where it stands to ``path``, all or nothing, durably. A read error of
    ``source`` is raised as it comes, and leaves ``path`` as it was."""
    write_chunks_atomic(path, iter(functools.partial(source.read, COPY_BLOCK), b""), mode)


def write_chunks_atomic(path: str, chunks: Iterable[bytes], mode: int = 0o666) -> None:
    """Write the bytes ``chunks`` yields to ``path``, all or nothing, durably: a caller that reads from
    somewhere maps its own read errors (an exception from ``chunks`` leaves ``path`` as it was). A temporary file
    left by a run killed while it wrote is replaced."""
    partial = path + PARTIAL_SUFFIX
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)
    with os.fdopen(os.open(partial, _NEW_FILE, mode), "wb") as target:
        for chunk in chunks:
            target.write(chunk)
        target.flush()
        os.fsync(target.fileno())
    install(partial, path)


def install(partial: str, path: str) -> None:
    """Rename ``partial`` (written whole and fsynced) over ``path``, and make the rename durable."""
    os.replace(partial, path)
    fsync_dir(os.path.dirname(path) or ".")


def write_error(exc: OSError, full: str, other: str, *, too_large_is_full: bool = False) -> SneakernetError:
    """The project's error for a failed write, the one mapping every writer uses: :class:`OutOfSpace` (``full``)
    when the disk or a quota is full (with ``too_large_is_full``, also a file too large for its filesystem: EFBIG),
    else :class:`DestinationError` (``other``). The messages are the caller's: it knows what is left behind."""
    if exc.errno in FULL or (too_large_is_full and exc.errno == errno.EFBIG):
        return OutOfSpace(full)
    return DestinationError(other)
