"""Cutting the data of a stream of files into chunks: pure logic, no I/O.

A file shorter than the chunk size is a *small* file: small files are grouped, in order, into one chunk until
the next would not fit, so a million tiny files cost a few hundred frames, not a million. A file of at least the
chunk size is a *large* file: it closes any open group and is cut into its own chunks of exactly the chunk size
(the last one shorter), so a large file's chunks never carry other files' bytes and are the same whatever
surrounds the file (what incremental shipments will need to refer to chunks of an earlier one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Slice:
    """``length`` bytes of file ``file_index`` from ``file_offset``, at ``chunk_offset`` in their chunk."""

    file_index: int
    file_offset: int
    chunk_offset: int
    length: int


@dataclass
class RawChunk:
    """A chunk before encoding: its shipment-wide id, raw bytes, and the file slices they hold, in order."""

    id: int
    data: bytes
    slices: list[Slice]


@dataclass
class Chunker:
    """Groups small files and cuts large ones; :meth:`add` returns the chunks that became complete.

    The caller reads the files and hands over their bytes; what it hands over defines the chunks, so a file that
    shrank while it was read simply has fewer bytes.
    """

    chunk_size: int
    next_id: int = 0
    _group: list[bytes] = field(default_factory=list)
    _group_slices: list[Slice] = field(default_factory=list)
    _group_size: int = 0

    def add_small(self, file_index: int, data: bytes) -> list[RawChunk]:
        """The whole content of a small file (at most the chunk size); returns the group it closed, if any."""
        if len(data) > self.chunk_size:
            raise ValueError("a small file must fit in one chunk")
        done = self.close_group() if self._group_size + len(data) > self.chunk_size else []
        self._group_slices.append(Slice(file_index, 0, self._group_size, len(data)))
        self._group.append(data)
        self._group_size += len(data)
        return done

    def add_large_piece(self, file_index: int, file_offset: int, data: bytes) -> list[RawChunk]:
        """One piece (at most the chunk size) of a large file, in order; it becomes a chunk of its own.

        Call :meth:`close_group` first: a group never spans a large file.
        """
        if len(data) > self.chunk_size or self._group_slices:
            raise ValueError("a piece must fit in one chunk, after the group was closed")
        return [self._new_chunk(data, [Slice(file_index, file_offset, 0, len(data))])]

    def close_group(self) -> list[RawChunk]:
        """The open group of small files as a chunk, if there is one."""
        if not self._group_slices:
            return []
        data = self._group[0] if len(self._group) == 1 else b"".join(self._group)
        chunk = self._new_chunk(data, self._group_slices)
        self._group, self._group_slices, self._group_size = [], [], 0
        return [chunk]

    def _new_chunk(self, data: bytes, slices: list[Slice]) -> RawChunk:
        chunk = RawChunk(self.next_id, data, slices)
        self.next_id += 1
        return chunk


def is_large(size: int, chunk_size: int) -> bool:
    """Whether a file of ``size`` bytes gets chunks of its own."""
    return size >= chunk_size


def plan_chunks(sizes: Iterable[int], chunk_size: int) -> Iterator[RawChunk]:
    """The chunks for files of ``sizes`` (zero bytes standing for their content), as pack would cut them.

    Empty files carry no data and appear in no chunk.
    """
    chunker = Chunker(chunk_size)
    for index, size in enumerate(sizes):
        if size == 0:
            continue
        if is_large(size, chunk_size):
            yield from chunker.close_group()
            for offset in range(0, size, chunk_size):
                yield from chunker.add_large_piece(index, offset, bytes(min(chunk_size, size - offset)))
        else:
            yield from chunker.add_small(index, bytes(size))
    yield from chunker.close_group()
