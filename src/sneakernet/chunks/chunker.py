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

from .stream import RawChunk, Slice


@dataclass
class Chunker:
    """Groups small files and cuts large ones; :meth:`add` returns the chunks that became complete.

    The caller reads the files and hands over their bytes; what it hands over defines the chunks, so a file that
    shrank while it was read simply has fewer bytes.
    """

    chunk_size: int
    next_id: int = 0
    #: The group's file contents, or their sizes alone for files read dry (see :class:`RawChunk`).
    _group: list[bytes | int] = field(default_factory=list)
    _group_slices: list[Slice] = field(default_factory=list)
    _group_size: int = 0

    def add_small(self, file_index: int, data: bytes | int) -> list[RawChunk]:
        """The whole content of a small file (at most the chunk size), or its size alone when read dry; returns
        the group it closed, if any."""
        size = data if isinstance(data, int) else len(data)
        if size > self.chunk_size:
            raise ValueError("a small file must fit in one chunk")
        done = self.close_group() if closes_group(self._group_size, size, self.chunk_size) else []
        self._group_slices.append(Slice(file_index, 0, self._group_size, size))
        self._group.append(data)
        self._group_size += size
        return done

    def dry_files(self) -> list[int]:
        """Files of the open group known by size alone."""
        return [s.file_index for s, part in zip(self._group_slices, self._group, strict=True) if isinstance(part, int)]

    def fill(self, file_index: int, data: bytes) -> None:
        """Give the bytes of a file of the open group that was added dry (exactly its size)."""
        for position, piece in enumerate(self._group_slices):
            if piece.file_index == file_index:
                if len(data) != piece.length:
                    raise ValueError("filled bytes must have the size the file was added with")
                self._group[position] = data

    def add_large_piece(self, file_index: int, file_offset: int, data: bytes | int) -> list[RawChunk]:
        """One piece (at most the chunk size) of a large file, in order; it becomes a chunk of its own.

        Call :meth:`close_group` first: a group never spans a large file.
        """
        size = data if isinstance(data, int) else len(data)
        if size > self.chunk_size or self._group_slices:
            raise ValueError("a piece must fit in one chunk, after the group was closed")
        if isinstance(data, int):
            return [self._new_chunk(b"", [Slice(file_index, file_offset, 0, size)], dry=True)]
        return [self._new_chunk(data, [Slice(file_index, file_offset, 0, size)])]

    def close_group(self) -> list[RawChunk]:
        """The open group of small files as a chunk, if there is one."""
        if not self._group_slices:
            return []
        parts = self._group
        if any(isinstance(part, int) for part in parts):
            chunk = self._new_chunk(b"", self._group_slices, dry=True)
        else:
            data = parts[0] if len(parts) == 1 else b"".join(parts)  # type: ignore[arg-type]
            chunk = self._new_chunk(data, self._group_slices)  # type: ignore[arg-type]
            chunk.group = True
        self._group, self._group_slices, self._group_size = [], [], 0
        return [chunk]

    def _new_chunk(self, data: bytes, slices: list[Slice], dry: bool = False) -> RawChunk:
        chunk = RawChunk(self.next_id, data, slices, dry)
        self.next_id += 1
        return chunk


def is_large(size: int, chunk_size: int) -> bool:
    """Whether a file of ``size`` bytes gets chunks of its own."""
    return size >= chunk_size


def closes_group(group_size: int, size: int, chunk_size: int) -> bool:
    """Whether a small file of ``size`` bytes closes the open group of ``group_size`` bytes: it would not fit.
    The one statement of the grouping rule, for :class:`Chunker` and for plan's walk."""
    return group_size + size > chunk_size


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
