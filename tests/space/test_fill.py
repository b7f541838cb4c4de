"""space/fill.py: the one fill model pack and plan share, driven here through a fake of its Drives seam."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.space.budget import RECORD_BOUND, DriveBudget, DriveSpace
from sneakernet.space.fill import Fill

KiB = 2**10
CAPACITY = 2_000 * KiB
SEGMENT = 256 * KiB


class TooSmall(Exception):
    pass


@dataclass
class FakeManifest:
    """A manifest whose size is exactly the bytes of its records (the fill asks only for a bound)."""

    records: int = 1  # the header
    written: int = 0

    def size_bound(self, extra: int) -> int:
        return self.written + extra

    def add(self, size: int) -> None:
        self.records += 1
        self.written += size


@dataclass
class FakeDrives:
    """Drives of one budget; notes each drive as it is finished (data bytes, segments, manifest bytes)."""

    budget: DriveBudget
    finished: list[tuple[int, int, int]] = field(default_factory=list)
    manifest: FakeManifest = field(default_factory=FakeManifest)

    def open_drive(self) -> tuple[DriveBudget, FakeManifest]:
        self.manifest = FakeManifest()
        return self.budget, self.manifest

    def finish_drive(self, space: DriveSpace) -> None:
        self.finished.append((space.data_bytes, space.segments, self.manifest.written))

    def too_small(self) -> Exception:
        return TooSmall()


def feed(fill: Fill, drives: FakeDrives, chunks: list[int]) -> None:
    for stored in chunks:
        fill.room(stored, RECORD_BOUND)
        drives.manifest.add(RECORD_BOUND)
    if fill.space is not None:
        fill.finish()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, SEGMENT), min_size=1, max_size=60))
def test_every_drive_is_within_its_budget_and_full_before_the_next(chunks: list[int]) -> None:
    drives = FakeDrives(DriveBudget(CAPACITY, 64 * KiB))
    fill = Fill(drives, SEGMENT)
    feed(fill, drives, chunks)
    assert sum(data for data, _, _ in drives.finished) == sum(chunks)
    for data, segments, manifest in drives.finished:
        assert data + drives.budget.overhead(segments, manifest + 2 * RECORD_BOUND) <= CAPACITY
    # A drive is finished only when the next chunk does not fit on it: replayed on one DriveSpace each.
    position = 0
    for data, _, _ in drives.finished[:-1]:
        space, written = DriveSpace(drives.budget, SEGMENT), 0
        while space.data_bytes < data:
            assert space.place(chunks[position], written + RECORD_BOUND + 2 * RECORD_BOUND) is not None
            written += RECORD_BOUND
            position += 1
        assert space.place(chunks[position], written + RECORD_BOUND + 2 * RECORD_BOUND) is None


def test_an_empty_drive_too_small_for_one_chunk_raises_the_drives_error() -> None:
    drives = FakeDrives(DriveBudget(CAPACITY, 0))
    with pytest.raises(TooSmall):
        Fill(drives, SEGMENT).room(CAPACITY, RECORD_BOUND)
    assert drives.finished == []


def test_records_alone_finish_a_full_drive_and_open_the_next() -> None:
    drives = FakeDrives(DriveBudget(CAPACITY, 0))
    fill = Fill(drives, SEGMENT)
    assert fill.room(0, 0) is None
    first = fill.space
    records = 0
    while fill.space is first:
        fill.room(0, 64 * KiB)
        drives.manifest.add(64 * KiB)
        records += 1
    assert len(drives.finished) == 1 and drives.finished[0][0] == 0
    assert records > 1


def test_open_pieces_are_reserved_and_forgotten_with_their_drive() -> None:
    drives = FakeDrives(DriveBudget(CAPACITY, 0))
    fill = Fill(drives, SEGMENT)
    fill.room(SEGMENT, RECORD_BOUND)
    fill.pieces_bound = 10 * KiB
    assert fill.closing_bound() == 10 * KiB + 2 * RECORD_BOUND
    fill.finish()
    assert fill.pieces_bound == 0 and fill.space is None
