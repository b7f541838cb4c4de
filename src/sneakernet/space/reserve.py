"""The catalog's reservation on every drive and the refusals made up front, before anything is written.

Pure arithmetic over the budget (budget.py), in one copy for pack (real drives, named in its messages) and plan
(drives of one size): drives too small for one chunk beside the catalog, too many segments a drive, and given
drives that together cannot hold the data.
"""

from __future__ import annotations

from ..codec import stored_size_bound
from ..errors import DestinationError, UsageError
from ..format import MAX_SEGMENTS
from ..units import format_size
from .budget import RECORD_BOUND, DriveBudget, catalog_bound

#: The manifest room one chunk's records take at most, counted when a drive must hold at least one chunk.
ONE_CHUNK_RECORDS = RECORD_BOUND * 8


def catalog_reservation(
    catalog_entry_bytes: int,
    unique_bytes: int,
    capacity: int,
    chunk_size: int,
    segment_size: int,
    *,
    largest: int | None = None,
    drive: str | None = None,
) -> int:
    """The catalog bound reserved on every drive, after refusing drives too small for one chunk beside the
    catalog, or with room for more segments than a drive may hold.

    ``capacity`` is the smallest drive's (``largest`` the largest's, by default the same), both after the reserve;
    ``drive`` names the smallest drive in the refusals (plan, which has no drives, says "a drive"). The drive count
    is estimated from the worst case (nothing compresses, manifests as large as the catalog's entries), twice, the
    second time with the catalog of the first estimate in place; the catalog is bounded for twice that many drives
    and some: a drive line costs 320 bytes, running short fails at the end.
    """
    chunk_bound = stored_size_bound(chunk_size)
    per_drive = DriveBudget(capacity, catalog_bound(catalog_entry_bytes, 0)).usable(ONE_CHUNK_RECORDS)
    if per_drive < chunk_bound:
        raise DestinationError(
            f"drive size too small: {drive or 'a drive'} can take {format_size(max(capacity, 0))} after the reserve, "
            f"the format needs at least {format_size(capacity - per_drive + chunk_bound)} for one chunk, its manifest "
            "and the catalog: use larger drives"
        )
    worst_case = chunk_bound * (unique_bytes // chunk_size + 1) + catalog_entry_bytes
    drives = 0
    for _ in range(2):
        drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
        per_drive = DriveBudget(capacity, catalog_bound(catalog_entry_bytes, drives)).usable(ONE_CHUNK_RECORDS)
    size = catalog_bound(catalog_entry_bytes, drives)
    if per_drive < chunk_bound:
        subject = drive or f"a drive of {format_size(max(capacity, 0))} after the reserve"
        raise DestinationError(
            f"drive size too small: {subject} cannot hold one chunk beside the catalog of {format_size(size)}: "
            "use larger drives"
        )
    if (capacity if largest is None else largest) // segment_size > MAX_SEGMENTS:
        raise UsageError(
            f"segment size too small for these drives: a drive holds at most {MAX_SEGMENTS} segments; "
            "use a larger --segment-size"
        )
    return size
