"""space/budget.py: the space budget of a drive and the placement of chunks on drives and in segments."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from craft import RecordFileWriter
from sneakernet.format import CatalogDrive, CatalogEntry, CatalogHeader, EndRecord
from sneakernet.format.container import encode_record
from sneakernet.space.budget import (
    CATALOG_DRIVE_LINE,
    CATALOG_ENTRY_OVERHEAD,
    CATALOG_FIXED,
    CHECKSUM_LINE_BOUND,
    FILE_SLACK,
    FIXED_FILES,
    LABEL_BOUND,
    DriveBudget,
    DriveSpace,
    Placement,
    catalog_bound,
    catalog_entry_bound,
    default_reserve,
)

MiB = 2**20


def test_constants() -> None:
    assert FILE_SLACK == 128 * 1024
    assert LABEL_BOUND == 4096
    assert CHECKSUM_LINE_BOUND == 131
    assert FIXED_FILES == 5


def test_overhead_and_usable() -> None:
    budget = DriveBudget(capacity=10 * MiB, catalog_bound=5000)
    assert budget.overhead(0, 0) == 4096 + 131 * 3 + 5000 + FILE_SLACK * 5
    assert budget.overhead(2, 1000) == 1000 + 4096 + 131 * 5 + 5000 + FILE_SLACK * 7
    assert budget.usable(1000) == 10 * MiB - budget.overhead(1, 1000)
    assert budget.usable(1000) == 10 * MiB - (1000 + 4096 + 131 * 4 + 5000 + FILE_SLACK * 6)


def test_catalog_bound() -> None:
    assert catalog_bound(0, 0) == CATALOG_FIXED + CATALOG_FIXED // 1024
    assert catalog_bound(10_000, 3) == (10_000 + 4096 + 320 * 3) * 1025 // 1024
    assert CATALOG_DRIVE_LINE == 320


@pytest.mark.parametrize(
    ("size", "reserve"),
    [
        (0, 0),
        (99, 0),
        (100, 1),
        (150 * 10**6, 1_500_000),
        (10**9, 10**7),
        (500 * 10**9, 2**30),
        (8 * 10**12, 2**30),
        (100 * 2**30, 2**30),
        (100 * 2**30 - 100, 2**30 - 1),
        (100 * 2**30 + 100, 2**30),
    ],
)
def test_default_reserve(size: int, reserve: int) -> None:
    assert default_reserve(size) == reserve


# --- placing chunks -------------------------------------------------------------------------------------------


def test_first_chunk_opens_segment_one() -> None:
    space = DriveSpace(DriveBudget(10 * MiB, 0), segment_size=MiB)
    assert space.empty
    assert space.place(1000, 0) == Placement(segment=1, offset=0, new_segment=True)
    assert space.place(2000, 0) == Placement(segment=1, offset=1000, new_segment=False)
    assert space.place(MiB - 3000, 0) == Placement(segment=1, offset=3000, new_segment=False)
    assert space.place(1, 0) == Placement(segment=2, offset=0, new_segment=True)
    assert (space.data_bytes, space.segments, space.segment_used) == (MiB + 1, 2, 1)
    assert not space.empty


def test_empty_drive_refuses_only_what_cannot_fit() -> None:
    budget = DriveBudget(capacity=2 * MiB, catalog_bound=7000)
    room = budget.capacity - budget.overhead(1, 500)
    assert room == budget.usable(500)
    assert DriveSpace(budget, segment_size=MiB).place(room + 1, 500) is None
    assert DriveSpace(budget, segment_size=2 * MiB).place(room, 500) == Placement(1, 0, True)
    # a larger manifest bound leaves less room
    assert DriveSpace(budget, segment_size=2 * MiB).place(room, 501) is None


def test_refusal_leaves_the_state_alone() -> None:
    budget = DriveBudget(capacity=3 * MiB // 2, catalog_bound=0)
    space = DriveSpace(budget, segment_size=MiB)
    assert space.place(100_000, 0) == Placement(1, 0, True)
    before = (space.data_bytes, space.segments, space.segment_used)
    assert space.place(MiB, 0) is None
    assert (space.data_bytes, space.segments, space.segment_used) == before
    assert space.fits(0)
    assert not space.fits(budget.capacity)


def test_new_segment_costs_its_overhead() -> None:
    # Room for a second chunk in the open segment, but not for the slack of a new segment file.
    budget = DriveBudget(capacity=0, catalog_bound=0)
    budget = DriveBudget(capacity=budget.overhead(1, 0) + 3000 + FILE_SLACK // 2, catalog_bound=0)
    space = DriveSpace(budget, segment_size=4000)
    assert space.place(3000, 0) == Placement(1, 0, True)
    assert space.place(1000, 0) == Placement(1, 3000, False)
    assert space.place(1, 0) is None  # would need segment 2 and its FILE_SLACK
    other = DriveSpace(budget, segment_size=4000)
    other.place(3000, 0)
    assert other.place(1001, 0) is None


@dataclass
class Placed:
    drive: int
    segment: int
    offset: int
    size: int


@st.composite
def fill_case(draw: st.DrawFn) -> tuple[list[int], list[int], int, int, int]:
    segment_size = draw(st.integers(min_value=1, max_value=4 * MiB))
    small = draw(st.booleans())
    top = min(segment_size, 300) if small else segment_size
    stored = draw(st.lists(st.integers(min_value=1, max_value=top), min_size=1, max_size=200))
    manifest_max = draw(st.integers(min_value=0, max_value=2 * MiB))
    manifests = draw(
        st.lists(st.integers(min_value=0, max_value=manifest_max), min_size=len(stored), max_size=len(stored))
    )
    catalog = draw(st.integers(min_value=0, max_value=MiB))
    # Every drive can take at least the largest chunk with the largest manifest bound.
    need = DriveBudget(0, catalog).overhead(1, manifest_max) + max(stored)
    capacity = need + draw(st.integers(min_value=0, max_value=8 * MiB))
    return stored, manifests, segment_size, catalog, capacity


@settings(max_examples=200, deadline=None)
@given(fill_case())
def test_filling_drives(case: tuple[list[int], list[int], int, int, int]) -> None:
    stored, manifests, segment_size, catalog, capacity = case
    budget = DriveBudget(capacity, catalog)
    drives = [DriveSpace(budget, segment_size)]
    placed: list[Placed] = []
    for size, manifest in zip(stored, manifests, strict=True):
        space = drives[-1]
        before = (space.data_bytes, space.segments, space.segment_used)
        placement = space.place(size, manifest)
        if placement is None:
            assert (space.data_bytes, space.segments, space.segment_used) == before
            # refused only because it does not fit: the same chunk with a new segment or in the open one
            new_segment = space.segments == 0 or space.segment_used + size > segment_size
            assert space.data_bytes + size + budget.overhead(space.segments + new_segment, manifest) > capacity
            assert not space.empty, "an empty drive refused a chunk that fits on a drive"
            drives.append(DriveSpace(budget, segment_size))
            space = drives[-1]
            placement = space.place(size, manifest)
            assert placement is not None
        placed.append(Placed(len(drives), placement.segment, placement.offset, size))
        assert space.data_bytes + budget.overhead(space.segments, manifest) <= capacity
        assert space.fits(manifest)
        assert space.segment_used <= segment_size
        assert placement.segment == space.segments
        assert placement.offset + size == space.segment_used

    # every chunk exactly once, in order
    assert len(placed) == len(stored)
    assert [p.size for p in placed] == stored
    # every drive holds data, within its capacity
    for number, space in enumerate(drives, start=1):
        on_drive = [p for p in placed if p.drive == number]
        assert on_drive
        assert space.data_bytes == sum(p.size for p in on_drive)
        assert space.segments == max(p.segment for p in on_drive)
        # segments 1..n, each filled contiguously from 0, never beyond the segment size
        segments = [p.segment for p in on_drive]
        assert segments == sorted(segments)
        assert set(segments) == set(range(1, space.segments + 1))
        for segment in range(1, space.segments + 1):
            chunks = [p for p in on_drive if p.segment == segment]
            offset = 0
            for chunk in chunks:
                assert chunk.offset == offset
                offset += chunk.size
            assert offset <= segment_size
    # a drive was closed only when the next chunk did not fit
    for number in range(1, len(drives)):
        nxt = next(p for p in placed if p.drive == number + 1)
        space = drives[number - 1]
        new_segment = space.segment_used + nxt.size > segment_size
        manifest = manifests[placed.index(nxt)]
        assert space.data_bytes + nxt.size + budget.overhead(space.segments + new_segment, manifest) > capacity


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=4 * MiB),
    manifest=st.integers(min_value=0, max_value=MiB),
    catalog=st.integers(min_value=0, max_value=MiB),
    slack=st.integers(min_value=-2, max_value=2),
)
def test_empty_drive_boundary(size: int, manifest: int, catalog: int, slack: int) -> None:
    need = DriveBudget(0, catalog).overhead(1, manifest) + size
    space = DriveSpace(DriveBudget(need + slack, catalog), segment_size=4 * MiB)
    placement = space.place(size, manifest)
    if slack >= 0:
        assert placement == Placement(1, 0, True)
    else:
        assert placement is None
        assert space.empty


# --- the catalog's bounds -------------------------------------------------------------------------------------

KINDS = ["file", "dir", "symlink", "hardlink"]


@settings(max_examples=200, deadline=None)
@given(
    path=st.binary(max_size=600),
    kind=st.sampled_from(KINDS),
    size=st.integers(min_value=0, max_value=2**64 - 1),
    first=st.integers(min_value=0, max_value=999_999),
    last=st.integers(min_value=0, max_value=999_999),
)
def test_catalog_entry_bound(path: bytes, kind: str, size: int, first: int, last: int) -> None:
    line = encode_record(CatalogEntry(path, kind, size, first, last).to_json())
    assert len(line) <= catalog_entry_bound(path)


@pytest.mark.parametrize(
    "path",
    [b"", b"a", b'"', b"\\", b"\x00", b"\x7f", b"\xff", "é".encode(), "😀".encode(), b"\n" * 50, b"\x01" * 4096],
)
def test_catalog_entry_bound_worst_cases(path: bytes) -> None:
    line = encode_record(CatalogEntry(path, "symlink", 2**64 - 1, 999_999, 999_999).to_json())
    assert len(line) <= catalog_entry_bound(path)
    line = encode_record(CatalogEntry(path, "hardlink", 2**64 - 1, 999_999, 999_999).to_json())
    assert len(line) <= catalog_entry_bound(path)


def test_catalog_entry_bound_values() -> None:
    assert catalog_entry_bound(b"") == CATALOG_ENTRY_OVERHEAD == 128
    assert catalog_entry_bound(b"plain/ascii name.txt") == 128 + 20
    assert catalog_entry_bound(b'quo"te') == 128 + 6 * 6
    assert catalog_entry_bound(b"caf\xe9") == 128 + 4 * 6
    assert catalog_entry_bound(b"tab\there") == 128 + 8 * 6


@settings(max_examples=25, deadline=None)
@given(
    paths=st.lists(st.binary(min_size=1, max_size=300), max_size=300),
    drives=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_catalog_bound_holds_for_a_written_catalog(
    tmp_path_factory: pytest.TempPathFactory, paths: list[bytes], drives: int, seed: int
) -> None:
    rng = random.Random(seed)
    path = Path(tmp_path_factory.mktemp("catalog")) / "catalog.jsonl.zst"
    writer = RecordFileWriter(path)
    hexdigest = rng.randbytes(32).hex()
    writer.write(
        CatalogHeader(
            "f" * 32, drives, hexdigest, "2024-01-01T00:00:00Z", "sneakernet 99.99.99", 2**40, 2**60, 2**60
        ).to_json()
    )
    for number in range(1, drives + 1):
        writer.write(CatalogDrive(number, f"drive-{number:04d}", 2**40, rng.randbytes(32).hex(), 2**50).to_json())
    for entry_path in paths:
        writer.write(CatalogEntry(entry_path, rng.choice(KINDS), rng.randrange(2**64), drives, drives).to_json())
    writer.write(EndRecord(writer.records + 1).to_json())
    size, _ = writer.close()
    assert size <= catalog_bound(sum(catalog_entry_bound(p) for p in paths), drives)
