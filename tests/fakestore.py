"""A drive store with faults injected (io/store.py's seam): drive/ writes and reads a local directory through it,
and a test decides what goes wrong: the n-th write fails (or is interrupted), the drive fills up, an fsync fails,
reads of some files fail, or something happens before a file is started or after each step of a write (a test kills
its own process there)."""

from __future__ import annotations

import errno
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from sneakernet.io.store import LocalStore, PartialFile


class FaultyStore(LocalStore):
    """A local drive directory whose writes fail as told (LocalStore's write_atomic goes through :meth:`create`).

    ``fail_write``: the n-th write (1-based, counted over every file written through this store) raises EIO, or
    ``fault`` when given (a KeyboardInterrupt, say; ``fail_read`` raises it too); ``full_after``: once this many
    bytes were written through the store, a write raises ENOSPC (the drive full); ``only``: the names (a
    predicate) whose writes count and fail (default all); ``fail_sync``: every fsync of a file written raises
    EIO; ``fail_read``: the names whose opening, reading and mapping raise EIO; ``before_create(name)``: called
    before each file is started (a test fills the disk there, say); ``after(event, name)``: called after each
    "create", "write", "sync" and "commit" of a file written. :attr:`written` is the bytes written so far,
    :attr:`writes` the writes counted.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fail_write: int | None = None,
        full_after: int | None = None,
        only: Callable[[str], bool] = lambda name: True,
        fail_sync: bool = False,
        fail_read: Callable[[str], bool] = lambda name: False,
        fault: BaseException | None = None,
        before_create: Callable[[str], None] | None = None,
        after: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(path)
        self.fail_write = fail_write
        self.full_after = full_after
        self.only = only
        self.fail_sync = fail_sync
        self.fail_read = fail_read
        self.fault = fault
        self.before_create = before_create
        self.after = after
        self.written = 0
        self.writes = 0

    def create(self, name: str) -> PartialFile:
        if self.before_create is not None:
            self.before_create(name)
        created = FaultyPartial(super().create(name), self)
        self.event("create", name)
        return created

    def reopen(self, name: str, keep: int) -> PartialFile:
        return FaultyPartial(super().reopen(name, keep), self)

    def open(self, name: str) -> BinaryIO:
        self.check_read(name)
        return super().open(name)

    def read_range(self, name: str, offset: int, size: int) -> bytes:
        self.check_read(name)
        return super().read_range(name, offset, size)

    def map(self, name: str) -> mmap.mmap:
        self.check_read(name)
        return super().map(name)

    def check_read(self, name: str) -> None:
        if self.fail_read(name):
            raise self.fault or OSError(errno.EIO, os.strerror(errno.EIO), os.path.join(self.path, name))

    def event(self, event: str, name: str) -> None:
        if self.after is not None:
            self.after(event, name)

    def check_write(self, name: str, size: int) -> None:
        """Raise the fault this write meets, if any (before a byte of it is written)."""
        if not self.only(name):
            return
        self.writes += 1
        if self.fail_write is not None and self.writes == self.fail_write:
            raise self.fault or OSError(errno.EIO, os.strerror(errno.EIO), os.path.join(self.path, name))
        if self.full_after is not None and self.written + size > self.full_after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(self.path, name))
        self.written += size


class FaultyPartial:
    """A file written through a :class:`FaultyStore`: its writes and fsyncs meet the store's faults."""

    def __init__(self, inner: PartialFile, store: FaultyStore) -> None:
        self.inner = inner
        self.store = store
        self.name = inner.name

    @property
    def size(self) -> int:
        return self.inner.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.store.check_write(self.name, len(data))
        self.inner.write(data)
        self.store.event("write", self.name)

    def sync(self) -> None:
        if self.store.fail_sync and self.store.only(self.name):
            raise OSError(errno.EIO, os.strerror(errno.EIO), os.path.join(self.store.path, self.name))
        self.inner.sync()
        self.store.event("sync", self.name)

    def commit(self) -> None:
        self.sync()
        self.inner.commit()
        self.store.event("commit", self.name)

    def abort(self) -> None:
        self.inner.abort()


@dataclass(frozen=True)
class SlowDrives:
    """Opens every drive as a local directory whose segment writes each take ``delay`` seconds more (a slow drive):
    a pack onto several drives at once lasts long enough for a test to kill it while they are all being written.
    Plain data, so that a lane's process can unpickle it (this module is on its path)."""

    delay: float

    def __call__(self, path: str) -> FaultyStore:
        return FaultyStore(path, after=partial(_slow_segment, self.delay))


def _slow_segment(delay: float, event: str, name: str) -> None:
    if event == "write" and name.endswith(".seg"):
        time.sleep(delay)
