"""The chunk map of one drive: where each chunk's raw bytes sit in the drive's raw stream, which places file
pieces (and maps damaged chunks to the files they hurt)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from ..errors import FormatError
from ..format import ChunkRecord, FileRecord, ManifestHeader, SegmentRecord, show_path
from ..format.sealed import PublicChunk


@dataclass
class ChunkMap:
    """What one streaming pass over a manifest learned: the chunk map that places file pieces on the drive."""

    header: ManifestHeader | None = None
    first_chunk: int | None = None
    #: Raw offset of each chunk on this drive in the drive's raw stream (chunk id - first_chunk as index),
    #: with one more entry for the end: what maps a damaged chunk to the file pieces over it.
    raw_offsets: array = field(default_factory=lambda: array("Q"))  # type: ignore[type-arg]
    segments: dict[str, SegmentRecord] = field(default_factory=dict)
    chunks_per_segment: dict[str, int] = field(default_factory=dict)
    stored_bytes: int = 0
    raw_bytes: int = 0

    def add_chunk(self, chunk: ChunkRecord | PublicChunk) -> None:
        """Place ``chunk``: an encrypted drive's public chunk record (read without the key) has no raw size, and
        takes none of the raw stream: without file records there is no piece to place on it."""
        if self.first_chunk is None:
            if self.header is not None and self.header.version >= 2 and chunk.id != 0:
                # Version 2 numbers chunks from 0 on every drive (docs/format.md 19.4).
                raise FormatError(f"the first chunk is chunk {chunk.id}: in format version 2 every drive's is 0")
            self.first_chunk = chunk.id
            self.raw_offsets.append(0)
        expected = self.first_chunk + len(self.raw_offsets) - 1
        if chunk.id != expected:
            raise FormatError(f"chunk ids are not consecutive: {chunk.id} follows {expected - 1}")
        raw_size = chunk.raw_size if isinstance(chunk, ChunkRecord) else 0
        self.raw_offsets.append(self.raw_offsets[-1] + raw_size)
        self.chunks_per_segment[chunk.segment] = self.chunks_per_segment.get(chunk.segment, 0) + 1
        self.stored_bytes += chunk.stored_size
        self.raw_bytes += raw_size

    def piece_range(self, record: FileRecord) -> tuple[int, int] | None:
        """The raw-stream range a file piece covers on this drive, or None for a piece without bytes."""
        if record.length == 0 or self.first_chunk is None:
            return None
        index = record.chunk - self.first_chunk
        if not 0 <= index < len(self.raw_offsets) - 1:
            raise FormatError(f"{show_path(record.path)} names chunk {record.chunk}, which is not on this drive")
        if record.chunk_offset >= self.raw_offsets[index + 1] - self.raw_offsets[index]:
            raise FormatError(
                f"{show_path(record.path)} starts at byte {record.chunk_offset} of chunk {record.chunk}, past its end"
            )
        start = self.raw_offsets[index] + record.chunk_offset
        if start + record.length > self.raw_offsets[-1]:
            raise FormatError(f"{show_path(record.path)} runs past the last chunk of this drive")
        return start, start + record.length
