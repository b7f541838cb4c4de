"""Damaged ranges of a drive's raw stream -> the shipment paths they hurt.

Pure: it works on the chunk map a pass over the manifest built and on the manifest's file and hard link records
it is handed, and reads nothing itself, so that whatever learns of damaged chunks (verify, restore, a parity
rebuild) names the same files for them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from ..drive import ChunkMap
from ..format import FileRecord, HardlinkRecord, ManifestRecord


def chunk_ranges(chunk_map: ChunkMap, chunk_ids: Sequence[int]) -> list[tuple[int, int]]:
    """The ``[start, end)`` range of the drive's raw stream that each chunk of ``chunk_ids`` holds."""
    offsets, first = chunk_map.raw_offsets, chunk_map.first_chunk
    assert first is not None
    return [(offsets[i - first], offsets[i - first + 1]) for i in chunk_ids]


def hurt_paths(
    ranges: Sequence[tuple[int, int]], chunk_map: ChunkMap, records: Iterable[ManifestRecord]
) -> Iterator[tuple[int, bytes]]:
    """``(index into ranges, path)`` for every file piece over one of ``ranges`` (sorted and disjoint), in the
    order of the records, and for every hard link to a file so hurt, after the file's own. The records other than
    file and hard link records are passed over."""
    starts = [start for start, _ in ranges]
    ends = [end for _, end in ranges]
    hurt: dict[bytes, list[int]] = {}
    for record in records:
        if isinstance(record, FileRecord):
            span = chunk_map.piece_range(record)
            if span is None:
                continue
            # The ranges are disjoint and sorted: the first that ends after the piece starts, and on.
            index = bisect.bisect_right(ends, span[0])
            while index < len(ranges) and starts[index] < span[1]:
                yield index, record.path
                hurt.setdefault(record.path, []).append(index)
                index += 1
        elif isinstance(record, HardlinkRecord) and record.target in hurt:
            for index in hurt[record.target]:
                yield index, record.path
