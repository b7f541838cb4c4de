"""A shipment's chunk codec: how a chunk's raw bytes become its stored bytes and back, built from the manifest
header that records how the shipment was packed.

Today the codec is compression alone (compress.py: zstd at the header's level when it pays, else a stored frame;
decoding refuses any frame that is not exactly one of the size the manifest declares). Per-chunk encryption will be
one more step of the chain here, named by the header (docs/format.md section 19), so pack, verify, restore and
plan keep calling :meth:`ChunkCodec.encode` and :meth:`ChunkCodec.decode` alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format import ManifestHeader
from ..options import DEFAULT_LEVEL
from .compress import decode_chunk, encode_chunk, frame_problem


@dataclass(frozen=True)
class ChunkCodec:
    """Encodes and decodes the chunks of one shipment; safe to share across threads (it holds no state)."""

    #: The zstd level chunks are compressed at (decoding does not depend on it).
    level: int = DEFAULT_LEVEL

    @classmethod
    def from_header(cls, header: ManifestHeader) -> ChunkCodec:
        """The codec a drive's chunks were written with (a header without a level: pack's default)."""
        return cls(DEFAULT_LEVEL if header.level is None else header.level)

    def encode(self, raw: bytes | memoryview) -> tuple[str, bytes]:
        """``(method, stored bytes)`` for a chunk's ``raw`` bytes (see :func:`compress.encode_chunk`)."""
        return encode_chunk(raw, self.level)

    def decode(self, stored: bytes | memoryview, raw_size: int) -> bytes:
        """The raw bytes of a chunk's ``stored`` bytes, refusing (FormatError) anything but ``raw_size`` of them."""
        return decode_chunk(stored, raw_size)

    def frame_problem(self, stored: bytes | memoryview, raw_size: int) -> str | None:
        """Why ``stored`` cannot decode to exactly ``raw_size`` bytes, found without decoding, or None."""
        return frame_problem(stored, raw_size)
