"""space/reserve.py: the catalog's reservation and the up-front refusals, one copy for pack and plan."""

from __future__ import annotations

import pytest

from sneakernet.chunks.compress import stored_size_bound
from sneakernet.errors import DestinationError, UsageError
from sneakernet.format import MAX_SEGMENTS
from sneakernet.options import PackOptions
from sneakernet.space.budget import DriveBudget, catalog_bound
from sneakernet.space.reserve import ONE_CHUNK_RECORDS, catalog_reservation, data_room, holds, refuse_given_drives

MiB = 2**20
OPTIONS = PackOptions(chunk_size=MiB, segment_size=64 * MiB)


def test_the_reservation_bounds_the_catalog_for_more_drives_than_the_data_needs() -> None:
    entry_bytes, data_bytes, capacity = 50_000, 100 * MiB, 20 * MiB
    size = catalog_reservation(entry_bytes, data_bytes, [capacity], OPTIONS)
    # At least twice the drives the data needs even if nothing compresses, plus 4.
    needed = data_bytes // DriveBudget(capacity, size).usable(ONE_CHUNK_RECORDS) + 1
    assert size >= catalog_bound(entry_bytes, 2 * needed + 4)
    # The smallest drive decides: a larger one beside it changes nothing.
    assert catalog_reservation(entry_bytes, data_bytes, [capacity, 10 * capacity], OPTIONS) == size


@pytest.mark.parametrize(("drive", "subject"), [(None, "a drive"), ("/mnt/usb1", "/mnt/usb1")])
def test_a_drive_too_small_for_one_chunk_is_refused_by_name(drive: str | None, subject: str) -> None:
    capacity = stored_size_bound(OPTIONS.chunk_size)
    with pytest.raises(DestinationError, match=f"drive size too small: {subject} can take"):
        catalog_reservation(0, MiB, [capacity], OPTIONS, drive=drive)


def test_too_many_segments_for_the_largest_drive_are_refused() -> None:
    options = PackOptions(chunk_size=MiB, segment_size=MiB)
    with pytest.raises(UsageError, match=f"at most {MAX_SEGMENTS} segments"):
        catalog_reservation(0, MiB, [8 * MiB, (MAX_SEGMENTS + 1) * MiB], options)


def test_given_drives_must_hold_the_data_uncompressed_or_at_the_assumed_ratio() -> None:
    capacity, size = 20 * MiB, catalog_reservation(0, 30 * MiB, [20 * MiB], OPTIONS)
    room = 2 * data_room(capacity, size)
    assert holds(room, room) and not holds(room, room + 1)
    assert holds(room, 2 * room, assume_ratio=0.5)
    refuse_given_drives([capacity, capacity], size, room, None)
    with pytest.raises(DestinationError, match=r"the 2 drives given hold about .* --assume-ratio R"):
        refuse_given_drives([capacity, capacity], size, room + 1, None)
    with pytest.raises(DestinationError, match=r"at --assume-ratio 0\.5: add drives"):
        refuse_given_drives([capacity, capacity], size, 3 * room, 0.5)
