"""A shipment's chunk codec: how a chunk's raw bytes become its stored bytes and back, built from the manifest
header that records how the shipment was packed.

The chain has two steps. Compression (compress.py: zstd at the header's level when it pays, else a stored frame;
decoding refuses any frame that is not exactly one of the size the manifest declares) runs on pack's pool of
workers. Encryption (docs/format.md 19.8.2, crypto/aead.py), when the header names a ``cipher``, seals each frame
with its segment's key: it needs the chunk's place (drive, segment, offset, its index in the segment), which only
the drive writer knows once it has placed the chunk, so the writer calls :meth:`ChunkCodec.seal` there; readers
call :meth:`ChunkCodec.decode_record`, which opens the chunk (the tag checked first) and then decodes its frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AuthenticationFailed, FormatError
from ..format import CIPHERS, ChunkRecord, ManifestHeader
from ..format.sealed import TAG_SIZE, OpenableChunk
from ..options import DEFAULT_LEVEL
from .compress import decode_chunk, encode_chunk, frame_problem

if TYPE_CHECKING:  # the crypt extra is imported only by shipments that are encrypted
    from ..crypto.aead import SegmentKeys, SegmentSealer


@dataclass(frozen=True)
class ChunkCodec:
    """Encodes and decodes the chunks of one shipment; safe to share across threads (it holds no state of its own:
    a sealer is one segment's, the keys are read only)."""

    #: The zstd level chunks are compressed at (decoding does not depend on it).
    level: int = DEFAULT_LEVEL
    #: The cipher of an encrypted shipment (one of :data:`~sneakernet.format.CIPHERS`, as its manifest header names
    #: it), None for a clear one.
    cipher: str | None = None
    #: An encrypted drive's segment keys, from its sealed index: what lets a reader open its chunks.
    keys: SegmentKeys | None = None

    def __post_init__(self) -> None:
        if self.cipher is not None and self.cipher not in CIPHERS:
            raise FormatError(
                f"cipher {str(self.cipher)[:40]!r} is not one of {', '.join(CIPHERS)}, the ones sneakernet reads"
            )

    @classmethod
    def from_header(cls, header: ManifestHeader, keys: SegmentKeys | None = None) -> ChunkCodec:
        """The codec a drive's chunks were written with (a header without a level: pack's default; with a
        ``cipher``, the drive's ``keys`` open its chunks)."""
        cipher: Any = getattr(header, "cipher", None)
        return cls(DEFAULT_LEVEL if header.level is None else header.level, cipher, keys)

    @property
    def sealed(self) -> bool:
        """Whether chunks are encrypted: their stored bytes are the sealed frame, :data:`TAG_SIZE` longer."""
        return self.cipher is not None

    def stored_size(self, frame_size: int) -> int:
        """The stored size of a chunk whose frame is ``frame_size`` bytes."""
        return frame_size + TAG_SIZE if self.sealed else frame_size

    def encode(self, raw: bytes | memoryview) -> tuple[str, bytes]:
        """``(method, frame)`` for a chunk's ``raw`` bytes (see :func:`compress.encode_chunk`): its stored bytes
        for a clear shipment, what :meth:`seal` encrypts for an encrypted one."""
        return encode_chunk(raw, self.level)

    def seal(
        self, frame: bytes | memoryview, sealer: SegmentSealer, out: bytearray, *, chunk_id: int, offset: int,
        raw_size: int,
    ) -> memoryview:  # fmt: skip
        """The stored bytes of the next chunk of ``sealer``'s segment, at ``offset`` in it, sealed into ``out``
        (grown as needed, kept by the caller from chunk to chunk): a view of ``out``, valid until the next call."""
        size = self.stored_size(len(frame))
        if len(out) < size:
            out.extend(bytes(size - len(out)))
        written = sealer.seal_into(frame, out, chunk_id=chunk_id, offset=offset, raw_size=raw_size)
        return memoryview(out)[:written]

    def open(self, stored: bytes | memoryview, chunk: ChunkRecord) -> bytes:
        """The frame of an encrypted drive's ``chunk`` from its ``stored`` bytes, the tag checked
        (:class:`~sneakernet.errors.AuthenticationFailed` when it does not match)."""
        if self.keys is None or self.cipher is None or not isinstance(chunk, OpenableChunk):
            raise FormatError(f"chunk {chunk.id} is encrypted: reading it needs the shipment's key")
        return self.keys.opener(chunk.segment_number, self.cipher).open(
            stored, index=chunk.index, chunk_id=chunk.id, offset=chunk.offset, raw_size=chunk.raw_size
        )

    def decode(self, stored: bytes | memoryview, raw_size: int) -> bytes:
        """The raw bytes of a clear chunk's ``stored`` bytes, refusing (FormatError) anything but ``raw_size``."""
        return decode_chunk(stored, raw_size)

    def decode_record(self, stored: bytes | memoryview, chunk: ChunkRecord) -> bytes:
        """The raw bytes of ``chunk`` from its ``stored`` bytes: opened first when the shipment is encrypted."""
        frame = self.open(stored, chunk) if self.sealed else stored
        return decode_chunk(frame, chunk.raw_size)

    def chunk_problem(self, stored: bytes | memoryview, chunk: ChunkRecord) -> str | None:
        """Why ``chunk``'s ``stored`` bytes are not one frame of its raw size: a sealed chunk is opened first (its
        tag checked, which reads it whole), a clear one's frame headers are walked without decoding."""
        if not self.sealed:
            return self.frame_problem(stored, chunk.raw_size)
        try:
            frame = self.open(stored, chunk)
        except AuthenticationFailed:
            return f"{chunk.id} fails authentication: its bytes are damaged or not in their place"
        except FormatError as error:
            return f"{chunk.id} cannot be opened: {error}"
        return self.frame_problem(frame, chunk.raw_size)

    def frame_problem(self, stored: bytes | memoryview, raw_size: int) -> str | None:
        """Why a clear chunk's ``stored`` bytes cannot decode to exactly ``raw_size`` bytes, found without
        decoding, or None."""
        return frame_problem(stored, raw_size)
