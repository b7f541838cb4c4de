"""How to pack: :class:`PackOptions` and the documented defaults, shared by pack, plan and the profiles.

A module of its own, light to import: ``sneakernet plan`` and the command line read the options without loading
the packer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .chunks.compress import stored_size_bound
from .errors import UsageError
from .format import MAX_CHUNK_SIZE

DEFAULT_CHUNK_SIZE = 4 * 2**20
"""4 MiB: large enough that per-chunk costs (a frame, a record, a pool hand-off) vanish, small enough that a
damaged chunk costs little to resend and that a few chunks per thread in flight keep memory low."""
MIN_CHUNK_SIZE = 64 * 2**10
DEFAULT_SEGMENT_SIZE = 2**30
"""1 GiB: few files per drive, yet far below FAT32's 4 GiB limit and easy for copy tools to resume."""
DEFAULT_LEVEL = 3


@dataclass(frozen=True)
class PackOptions:
    """Everything about how to pack, with the documented defaults."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    segment_size: int = DEFAULT_SEGMENT_SIZE
    level: int = DEFAULT_LEVEL
    #: Bytes kept free on each drive; None means 1% of the drive size, at most 1 GiB.
    reserve: int | None = None
    excludes: tuple[str, ...] = ()
    skip_unreadable: bool = False
    threads: int = 0
    #: The format version written: 1 unless a version 2 feature is used (docs/format.md 19, intro). 2 with no such
    #: feature (one lane, no parity, no encryption) is for the library and the tests only, not on the command line.
    format_version: int = 1

    def check(self) -> None:
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise UsageError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes (64KiB to 64MiB)")
        if self.segment_size < stored_size_bound(self.chunk_size):
            raise UsageError("segment size must be at least the chunk size (plus a few bytes of framing)")
        if not 1 <= self.level <= 22:
            raise UsageError(f"zstd level must be between 1 and 22, not {self.level}")
        if self.reserve is not None and self.reserve < 0:
            raise UsageError("reserve cannot be negative")
        if self.format_version not in (1, 2):
            raise UsageError(f"format version must be 1 or 2, not {self.format_version}")

    @property
    def workers(self) -> int:
        return self.threads or os.cpu_count() or 1


__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_LEVEL", "DEFAULT_SEGMENT_SIZE", "MIN_CHUNK_SIZE", "PackOptions"]
