"""Durable writes: the one place that makes a file's bytes and its name survive a power loss.

A file written here is made under a temporary name (its final name plus ``.partial``, created ``O_EXCL |
O_NOFOLLOW`` so a symlink or file planted there is never written through), fsynced, renamed over its final name,
and its directory fsynced. Guarantee: once a function here returns, the file is on disk whole under its final
name; if the machine stops before, the final name holds what it held before (or nothing), never a part. What
must not be written before a file is durable (a journal commit, drive.json) is written after the call returns.

No policy lives here: which files, in what order, and what an OSError means to the user are the callers'.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
from collections.abc import Iterator
from typing import Any, BinaryIO

from .format import PARTIAL_SUFFIX

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
    with _new_partial(path, mode) as target:
        target.write(data)


def copy_atomic(source: BinaryIO, path: str, mode: int = 0o666) -> None:
    """Copy what ``source`` holds from where it stands to ``path``, all or nothing, durably. A read error of
    ``source`` is raised as it comes, and leaves ``path`` as it was."""
    with _new_partial(path, mode) as target:
        shutil.copyfileobj(source, target)


@contextlib.contextmanager
def _new_partial(path: str, mode: int) -> Iterator[BinaryIO]:
    """The temporary file of ``path`` open for writing (one left by a run killed while it wrote is replaced);
    on leaving, fsynced, renamed to ``path`` and its directory fsynced."""
    partial = path + PARTIAL_SUFFIX
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)
    with os.fdopen(os.open(partial, _NEW_FILE, mode), "wb") as target:
        yield target
        target.flush()
        os.fsync(target.fileno())
    os.replace(partial, path)
    fsync_dir(os.path.dirname(path) or ".")
