"""verifier/damage.py: damaged ranges of a drive's raw stream -> the paths they hurt, against a plain count."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sneakernet.drive import ChunkMap
from sneakernet.format import ChunkRecord, FileRecord, HardlinkRecord, ManifestRecord
from sneakernet.verifier.damage import chunk_ranges, hurt_paths

FIRST = 7  # a drive's chunks need not start at id 0


def chunk_map(raw_sizes: list[int]) -> ChunkMap:
    chunks = ChunkMap()
    for i, size in enumerate(raw_sizes):
        chunks.add_chunk(ChunkRecord(FIRST + i, "segments/s000001.seg", 0, 1, size, "zstd", "0" * 64, "0" * 64))
    return chunks


@st.composite
def drives(draw: st.DrawFn) -> tuple[list[int], list[ManifestRecord], set[int]]:
    """Chunk sizes, the file pieces laid over them end to end (with gaps, empty files and hard links), and the
    damaged chunk ids."""
    sizes = draw(st.lists(st.integers(1, 50), min_size=1, max_size=12))
    total = sum(sizes)
    cuts = sorted(draw(st.sets(st.integers(0, total), max_size=10)) | {0, total})
    records: list[ManifestRecord] = []
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    for n, (start, end) in enumerate(itertools.pairwise(cuts)):
        path = f"f{n}".encode()
        if draw(st.booleans()):
            continue  # a gap: bytes of no file of this drive (padding is not made, but a reader must not care)
        index = max(i for i, offset in enumerate(offsets[:-1]) if offset <= start)
        records.append(FileRecord(path, 0, end - start, FIRST + index, start - offsets[index], True, end - start))
        if draw(st.booleans()):
            records.append(HardlinkRecord(f"link{n}".encode(), path))
    if draw(st.booleans()):
        records.append(FileRecord(b"empty", 0, 0, -1, 0, True, 0))
    damaged = draw(st.sets(st.integers(FIRST, FIRST + len(sizes) - 1)))
    return sizes, records, damaged


@given(drives())
def test_each_damaged_chunk_names_exactly_the_pieces_over_it_and_their_links(
    drive: tuple[list[int], list[ManifestRecord], set[int]],
) -> None:
    sizes, records, damaged = drive
    chunks = chunk_map(sizes)
    ids = sorted(damaged)
    ranges = chunk_ranges(chunks, ids)
    got: dict[int, list[bytes]] = {i: [] for i in range(len(ids))}
    for index, path in hurt_paths(ranges, chunks, records):
        got[index].append(path)

    expected: dict[int, list[bytes]] = {i: [] for i in range(len(ids))}
    hurt: dict[bytes, list[int]] = {}
    for record in records:
        if isinstance(record, FileRecord) and record.length:
            start = sum(sizes[: record.chunk - FIRST]) + record.chunk_offset
            for i, chunk in enumerate(ids):
                lo = sum(sizes[: chunk - FIRST])
                if start < lo + sizes[chunk - FIRST] and lo < start + record.length:
                    expected[i].append(record.path)
                    hurt.setdefault(record.path, []).append(i)
        elif isinstance(record, HardlinkRecord):
            for i in hurt.get(record.target, []):
                expected[i].append(record.path)
    assert got == expected


def test_a_chunks_range_is_its_raw_bytes_in_the_drives_stream() -> None:
    chunks = chunk_map([10, 20, 5])
    assert chunk_ranges(chunks, [FIRST, FIRST + 2]) == [(0, 10), (30, 35)]
