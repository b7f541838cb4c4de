"""The catalog's reservation on every drive and the refusals made up front, before anything is written.

Pure arithmetic over the budget (budget.py), in one copy for pack (real drives, named in its messages) and plan
(drives of one size): drives too small for one chunk beside the catalog, too many segments a drive, and given
drives that together cannot hold the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..chunks.compress import stored_size_bound
from ..errors import DestinationError, UsageError
from ..format import MAX_SEGMENTS
from ..options import PackOptions
from ..units import format_size
from .budget import RECORD_BOUND, DriveBudget, catalog_bound

#: The manifest room one chunk's records take at most, counted when a drive must hold at least one chunk.
ONE_CHUNK_RECORDS = RECORD_BOUND * 8


def catalog_reservation(
    entry_bytes: int, data_bytes: int, capacities: Sequence[int], options: PackOptions, drive: str | None = None
) -> int:
    """The catalog bound reserved on every drive, for ``data_bytes`` of data whose catalog entries take at most
    ``entry_bytes``, after refusing drives too small for one chunk beside the catalog, or with room for more
    segments than a drive may hold.

    ``capacities`` are the drives' (after the reserve); ``drive`` names the smallest in the refusals (plan, which
    has no drives, says "a drive"). The drive count is estimated from the worst case (nothing compresses, manifests
    as large as the catalog's entries), twice, the second time with the catalog of the first estimate in place;
    the catalog is bounded for twice that many drives and some: a drive line costs 320 bytes, running short fails
    at the end.
    """
    capacity, chunk_size, segment_size = min(capacities), options.chunk_size, options.segment_size
    chunk_bound = stored_size_bound(chunk_size)
    per_drive = DriveBudget(capacity, catalog_bound(entry_bytes, 0)).usable(ONE_CHUNK_RECORDS)
    if per_drive < chunk_bound:
        raise DestinationError(
            f"drive size too small: {drive or 'a drive'} can take {format_size(max(capacity, 0))} after the reserve, "
            f"the format needs at least {format_size(capacity - per_drive + chunk_bound)} for one chunk, its manifest "
            "and the catalog: use larger drives"
        )
    worst_case = chunk_bound * (data_bytes // chunk_size + 1) + entry_bytes
    drives = 0
    for _ in range(2):
        drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
        per_drive = DriveBudget(capacity, catalog_bound(entry_bytes, drives)).usable(ONE_CHUNK_RECORDS)
    size = catalog_bound(entry_bytes, drives)
    if per_drive < chunk_bound:
        subject = drive or f"a drive of {format_size(max(capacity, 0))} after the reserve"
        raise DestinationError(
            f"drive size too small: {subject} cannot hold one chunk beside the catalog of {format_size(size)}: "
            "use larger drives"
        )
    if max(capacities) // segment_size > MAX_SEGMENTS:
        raise UsageError(
            f"segment size too small for these drives: a drive holds at most {MAX_SEGMENTS} segments; "
            "use a larger --segment-size"
        )
    return size


#: What an encrypted shipment's catalogs may take beyond the unencrypted catalog's bound (space/budget.py): the
#: public catalog's fixed part and drive records are a second copy of those, and age adds its header and a 16-byte
#: tag per 64 KiB to the sealed one (a thousandth of the bound covers the tags).
SEALED_CATALOG_SLACK = 64 * 1024


def sealed_catalog_reservation(catalog_bound: int) -> int:
    """The room reserved on every drive of an encrypted shipment for its two catalogs (docs/format.md 19.8.3),
    given the bound of an unencrypted catalog of the same shipment: pack's and plan's."""
    return catalog_bound + catalog_bound // 1024 + SEALED_CATALOG_SLACK


def data_room(capacity: int, catalog_size: int) -> int:
    """Segment bytes one drive of ``capacity`` bytes (after the reserve) takes beside the catalog, manifests aside."""
    return DriveBudget(capacity, catalog_size).usable(0)


def holds(room: int, left: int, assume_ratio: float | None = None) -> bool:
    """Whether drives of ``room`` data bytes together take ``left`` bytes of data: uncompressed, or at
    ``assume_ratio`` of its size when given (stored bytes per byte of data, as plan estimates it)."""
    return room >= left * (assume_ratio or 1.0)


def refuse_given_drives(capacities: Sequence[int], catalog_size: int, left: int, assume_ratio: float | None) -> None:
    """Refuse given drives that together cannot hold the ``left`` bytes of data (see :func:`holds`)."""
    room = sum(data_room(capacity, catalog_size) for capacity in capacities)
    if not holds(room, left, assume_ratio):
        raise DestinationError(_drives_too_small(len(capacities), room, left, assume_ratio))


def _drives_too_small(count: int, room: int, left: int, assume_ratio: float | None) -> str:
    """Why the given drives are refused, and the three ways on."""
    drives = f"the {count} drive{'s' if count != 1 else ''} given hold{'s' if count == 1 else ''}"
    needed = f"fits only if it compresses to {room / left:.2f} of its size or less"
    if assume_ratio is not None:
        return (
            f"{drives} about {format_size(room)} after overhead; the source has {format_size(left)} left to pack, "
            f"{format_size(left * assume_ratio)} at --assume-ratio {assume_ratio:g}: add drives"
        )
    return (
        f"{drives} about {format_size(room)} after overhead; the source has {format_size(left)} left to pack, which "
        f"{needed}: add drives; or accept the risk with --assume-ratio R (sneakernet plan estimates R; should the "
        "drives run out, pack stops with exit code 4 and --resume with one more --drive goes on); or pack with "
        "--out DIR --drive-size SIZE and copy the drive directories onto the drives"
    )
