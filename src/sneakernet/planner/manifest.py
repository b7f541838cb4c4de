"""A drive's manifest as plan estimates it: the sizes of its records, and its growth as pack's RecordWriter grows
it (compressed every FLUSH_EVERY bytes). Pure arithmetic, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..format.container import FLUSH_EVERY

#: Uncompressed sizes of manifest records beside their paths (compact JSON with the widest usual numbers;
#: measured on format/'s records): a chunk, a file's final record, a piece continuing on the next drive, a
#: directory, a symlink, a hard link, a skipped entry (with its reason), a segment, the header and the end.
CHUNK_LINE = 300
FILE_LINE = 250
PIECE_LINE = 100
DIR_LINE = 90
SYMLINK_LINE = 110
HARDLINK_LINE = 45
SKIPPED_LINE = 90
SEGMENT_LINE = 160
HEADER_LINE = 240
END_LINE = 30
#: What zstd leaves of manifest records at the container's level: about 0.20 measured (the BLAKE3 hex digits do not
#: compress below half), rounded up so that the estimate errs towards fuller drives.
MANIFEST_RATIO = 0.25
#: zstd's frame header and last block (format/container.py bounds it the same way).
MANIFEST_SLACK = 64


@dataclass
class ManifestEstimate:
    """A drive's manifest as pack's RecordWriter would grow it: compressed every FLUSH_EVERY bytes, with the
    unflushed rest counted uncompressed in the bound."""

    flushed: float = 0.0
    unflushed: int = 0
    records: int = 0
    #: The part of :meth:`size_bound` that changes only when the manifest is flushed.
    base: int = MANIFEST_SLACK
    #: 2 for an encrypted drive (docs/format.md 19.8.3): its public manifest and its sealed index each take about
    #: what a clear manifest does for the same records, as pack counts them (the bound of both).
    copies: int = 1

    def add(self, size: int) -> None:
        self.records += 1
        size *= self.copies
        self.unflushed += size
        if self.unflushed >= FLUSH_EVERY:
            self.flushed += self.unflushed * MANIFEST_RATIO
            self.unflushed = 0
            self.base = math.ceil(self.flushed) + MANIFEST_SLACK

    def size_bound(self, extra: int) -> int:
        pending = self.unflushed + extra
        return self.base + pending + pending // 1024

    def final_size(self) -> int:
        return math.ceil(self.flushed + self.unflushed * MANIFEST_RATIO) + MANIFEST_SLACK
