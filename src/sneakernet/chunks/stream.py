"""The chunk stream's vocabulary, shared by the reader, the encoder, the drive writer and resume.

A pack reads its source into a stream of entry records, :class:`RawChunk` (each made of :class:`Slice` of files)
and :class:`FileEnd`; the encoder turns each raw chunk into an :class:`EncodedChunk`, which the drive writer
stores. Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..format import Metadata


class Slice(NamedTuple):
    """``length`` bytes of file ``file_index`` from ``file_offset``, at ``chunk_offset`` in their chunk.

    A named tuple, not a frozen dataclass: one is made for every small file (measured: 0.9 us a frozen dataclass,
    a fraction of that a tuple).
    """

    file_index: int
    file_offset: int
    chunk_offset: int
    length: int


@dataclass
class RawChunk:
    """A chunk before encoding: its shipment-wide id, raw bytes, and the file slices they hold, in order.

    A *dry* chunk has its layout but no bytes: a resumed pack replays the chunks already on finished drives
    without reading them again.
    """

    id: int
    data: bytes
    slices: list[Slice]
    dry: bool = False
    #: A group of small files, each slice a whole file: what lets the encoder hash the files with the chunk. Not
    #: part of a chunk's identity (its id, bytes and slices say that).
    group: bool = field(default=False, compare=False)

    @property
    def raw_size(self) -> int:
        return sum(piece.length for piece in self.slices)


@dataclass(slots=True)
class FileEnd:
    """A file has been read to its end: what its final record needs (``blake3`` is None while replaying)."""

    index: int
    size: int
    blake3: str | None
    meta: Metadata
    changed: bool
    #: The BLAKE3 is computed with the file's group chunk, on the encoding pool (a small file read live): the
    #: reading thread, the one that reads every file, does not hash it.
    with_chunk: bool = False


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk ready to be written: id, stored bytes, method, sizes and both hashes. In an encrypted shipment
    ``stored`` is the frame the drive writer seals (``overhead`` bytes longer once sealed), and ``stored_blake3``
    is left empty: the writer hashes the sealed bytes."""

    id: int
    stored: bytes
    method: str
    raw_size: int
    stored_blake3: str
    raw_blake3: str
    #: For a group of small files: each file's whole-file BLAKE3, by file index (hashed with the chunk).
    file_blake3: dict[int, str] = field(default_factory=dict)
    #: What sealing adds to ``stored`` (the tag), 0 in a clear shipment.
    overhead: int = 0

    @property
    def stored_size(self) -> int:
        """The chunk's size on the drive."""
        return len(self.stored) + self.overhead
