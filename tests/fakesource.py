"""A source with faults injected (io/source.py's seam): pack reads a local tree through it, and a test decides
what goes wrong while a file is opened or read."""

from __future__ import annotations

import os
from collections.abc import Callable

from sneakernet.io.source import LocalSource, SourceFile


class FaultySource(LocalSource):
    """A local directory whose files raise ``refuse`` when opened, and which calls ``before_read(path, size)`` and
    ``after_read(path, data)`` around every read of a file's bytes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        refuse: OSError | None = None,
        before_read: Callable[[bytes, int], None] | None = None,
        after_read: Callable[[bytes, bytes], None] | None = None,
    ) -> None:
        super().__init__(path)
        self.refuse = refuse
        self.before_read = before_read
        self.after_read = after_read

    def open(self, path: bytes) -> SourceFile:
        if self.refuse is not None:
            raise self.refuse
        return FaultyFile(super().open(path), path, self)


class FaultyFile:
    def __init__(self, inner: SourceFile, path: bytes, source: FaultySource) -> None:
        self.inner, self.path, self.source = inner, path, source

    def stat(self) -> os.stat_result:
        return self.inner.stat()  # type: ignore[return-value]

    def read(self, size: int, expected: int | None = None) -> bytes:
        if self.source.before_read is not None:
            self.source.before_read(self.path, size)
        data = self.inner.read(size, expected)
        if self.source.after_read is not None:
            self.source.after_read(self.path, data)
        return data

    def read_at(self, offset: int, size: int) -> bytes:
        return self.inner.read_at(offset, size)

    def close(self) -> None:
        self.inner.close()
