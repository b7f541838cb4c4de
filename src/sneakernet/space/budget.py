"""How much fits on a drive: the space budget of one drive directory and the placement of chunks in it.

Pure logic, no I/O: pack asks :class:`DriveSpace` whether the next chunk still fits, and plan and the tests use
the same arithmetic. A drive holds its segments, its manifest, drive.json, B3SUMS and the shipment's catalog;
every one of them is counted, rounded up for the filesystem's allocation, before a chunk is accepted, so a drive
directory never exceeds its size on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format import MAX_SEGMENTS

#: Bounds of one manifest record, used to reserve manifest room before a chunk is accepted (compact JSON;
#: a path can grow sixfold when escaped).
RECORD_BOUND = 512
PATH_ESCAPE_FACTOR = 6
#: Allocation rounding counted per file on a drive: exFAT uses clusters of up to 128 KiB on large volumes.
FILE_SLACK = 128 * 1024
#: drive.json is a few hundred bytes; this bounds it with room to spare.
LABEL_BOUND = 4096
#: One line of B3SUMS: 64 hex digits, two spaces, a name of at most 64 ASCII characters, a newline.
CHECKSUM_LINE_BOUND = 64 + 2 + 64 + 1
#: Files on a drive besides its segments: drive.json, manifest, B3SUMS, catalog and the segments directory.
FIXED_FILES = 5
#: The reserve kept free on each drive for the filesystem: 1% of the drive, at most 1 GiB, unless chosen.
RESERVE_FRACTION = 0.01
RESERVE_MAX = 2**30


#: A catalog entry line without its path, with the widest numbers: ``{"type":"entry","path":"","kind":"symlink",
#: "size":18446744073709551615,"first_drive":999999,"last_drive":999999}`` and a newline, rounded up.
CATALOG_ENTRY_OVERHEAD = 128
#: The catalog's header, end record and zstd framing; plus a line per drive.
CATALOG_FIXED = 4096
CATALOG_DRIVE_LINE = 320
#: The bytes JSON writes as they are: printable ASCII but the quote and the backslash.
JSON_PLAIN = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def record_bound(path_length: int) -> int:
    """The manifest room reserved for a record of a path of ``path_length`` bytes, before it is written."""
    return RECORD_BOUND + PATH_ESCAPE_FACTOR * path_length


def catalog_entry_bound(path: bytes) -> int:
    """The longest catalog line ``path`` can take: printable ASCII as is, anything else at most 6 bytes a byte."""
    # translate() deleting the plain bytes is several times faster than a regular expression search.
    escaped = len(path) * 6 if path.translate(None, JSON_PLAIN) else len(path)
    return CATALOG_ENTRY_OVERHEAD + escaped


def catalog_bound(entry_bytes: int, drives: int) -> int:
    """Bytes the catalog can take on disk: the uncompressed bound, which zstd never exceeds by more than its
    framing (counted in :data:`CATALOG_FIXED` with a byte per KiB)."""
    raw = entry_bytes + CATALOG_FIXED + CATALOG_DRIVE_LINE * drives
    return raw + raw // 1024


def default_reserve(drive_size: int) -> int:
    return min(int(drive_size * RESERVE_FRACTION), RESERVE_MAX)


@dataclass(frozen=True)
class DriveBudget:
    """The bytes one drive directory may take on disk, and the catalog size every drive must make room for."""

    capacity: int
    catalog_bound: int

    def overhead(self, segments: int, manifest_bound: int) -> int:
        """Bytes on disk for everything but segment data, with ``segments`` segments and that manifest bound."""
        return (
            manifest_bound
            + LABEL_BOUND
            + CHECKSUM_LINE_BOUND * (segments + 3)
            + self.catalog_bound
            + FILE_SLACK * (segments + FIXED_FILES)
        )

    def usable(self, manifest_bound: int) -> int:
        """Segment bytes an empty drive can take, leaving aside the growth of its manifest."""
        return self.capacity - self.overhead(1, manifest_bound)


@dataclass(frozen=True)
class Placement:
    """Where a chunk goes on the current drive: segment ``segment`` (1-based) at ``offset``."""

    segment: int
    offset: int
    new_segment: bool


@dataclass
class DriveSpace:
    """The fill state of one drive under a budget; :meth:`place` accepts a chunk or says it does not fit."""

    budget: DriveBudget
    segment_size: int
    data_bytes: int = 0
    segments: int = 0
    segment_used: int = 0

    def place(self, stored_size: int, manifest_bound: int) -> Placement | None:
        """Accept ``stored_size`` bytes if they fit with the manifest grown to ``manifest_bound``, else None."""
        new_segment = self.segments == 0 or self.segment_used + stored_size > self.segment_size
        segments = self.segments + new_segment
        if segments > MAX_SEGMENTS:
            return None
        if self.data_bytes + stored_size + self.budget.overhead(segments, manifest_bound) > self.budget.capacity:
            return None
        if new_segment:
            self.segments, self.segment_used = segments, 0
        placement = Placement(self.segments, self.segment_used, new_segment)
        self.segment_used += stored_size
        self.data_bytes += stored_size
        return placement

    def fits(self, manifest_bound: int) -> bool:
        """Whether the drive as it is takes a manifest grown to ``manifest_bound``."""
        return self.data_bytes + self.budget.overhead(self.segments, manifest_bound) <= self.budget.capacity

    @property
    def empty(self) -> bool:
        return self.data_bytes == 0 and self.segments == 0
