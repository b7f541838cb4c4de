"""The refusals a pack makes up front, before anything is written: bad input, drives too small."""

from __future__ import annotations

from ..codec import stored_size_bound
from ..errors import DestinationError, SourceError, UsageError
from ..format import FINISHED_NAME, MAX_SEGMENTS, show_path
from ..io.source import Source
from ..journal import JOURNAL_NAME
from ..options import PackOptions
from ..scan import ScanTotals, describe
from ..space.budget import RECORD_BOUND, DriveBudget, catalog_bound
from ..units import counted, format_size
from .resume import FinishedDrives
from .targets import DriveTargets


def _refuse_bad_input(totals: ScanTotals, options: PackOptions, source: Source) -> None:
    _refuse_reserved(totals.reserved, source)
    if totals.unreadable and not options.skip_unreadable:
        raise SourceError(
            f"{counted(len(totals.unreadable), 'entry', 'entries')} cannot be read: {describe(totals.unreadable)}; "
            "fix their permissions or pack with --skip-unreadable"
        )


def _refuse_reserved(reserved: list[bytes], source: Source) -> None:
    """A source holding restore's own top-level name cannot be shipped as it is: restored, it would land in the
    destination's journal directory (docs/format.md, section 12.2). The user decides: exclude it, or rename it."""
    if not reserved:
        return
    name = show_path(reserved[0])
    if source.is_file(reserved[0] + b"/" + JOURNAL_NAME.encode()):
        raise SourceError(
            f"the source holds {name} at its top, the journal a restore kept there (restore --keep-journal), not "
            f"data: pack with --exclude /{name} to leave it out"
        )
    if source.is_file(reserved[0] + b"/" + FINISHED_NAME.encode()):
        # Only the record is left out on its own (scan.restore_record_excludes): here something else is beside it.
        raise SourceError(
            f"the source holds {name} at its top, with a finished restore's record and other files: pack with "
            f"--exclude /{name} to leave it all out, or move those files elsewhere"
        )
    raise SourceError(
        f"the source holds {name} at its top, a name restore keeps for its own files in the destination: pack "
        f"with --exclude /{name} to leave it out, or rename it"
    )


def _check_space(
    targets: DriveTargets,
    totals: ScanTotals,
    options: PackOptions,
    finished: FinishedDrives | None = None,
    assume_ratio: float | None = None,
) -> int:
    """The catalog bound, after refusing drives too small for the format or, together, for the data (at
    ``assume_ratio`` of its size when given, else uncompressed).

    ``finished`` drives (of a resumed pack) hold data already: neither they nor their data are counted.
    """
    done = len(finished.labels) if finished else 0
    left = totals.unique_bytes - (sum(label.raw_bytes for label in finished.labels) if finished else 0)
    slots = targets.known_slots()[done:] or targets.known_slots()
    smallest = min(slots, key=lambda s: s.capacity)
    chunk_bound = stored_size_bound(options.chunk_size)
    one_chunk_records = RECORD_BOUND * 8
    without_catalog = DriveBudget(smallest.capacity, catalog_bound(totals.catalog_entry_bytes, 0))
    per_drive = without_catalog.usable(one_chunk_records)
    if per_drive < chunk_bound:
        needed = smallest.capacity - per_drive + chunk_bound
        raise DestinationError(
            f"drive size too small: {smallest.path} can take {format_size(max(smallest.capacity, 0))} after the "
            f"reserve, the format needs at least {format_size(needed)} for one chunk, its manifest and the catalog: "
            "use larger drives"
        )
    # Worst case: nothing compresses, and the manifests take about as much room as the catalog's entries again.
    worst_case = chunk_bound * (totals.unique_bytes // options.chunk_size + 1) + totals.catalog_entry_bytes
    # Estimate the drive count twice, the second time with the catalog of the first estimate in place, then
    # reserve for twice as many drives and some: a drive line costs 320 bytes, running short fails at the end.
    drives = 2 * (worst_case // per_drive + 1) + 4
    per_drive = DriveBudget(smallest.capacity, catalog_bound(totals.catalog_entry_bytes, drives)).usable(
        one_chunk_records
    )
    drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
    catalog_size = catalog_bound(totals.catalog_entry_bytes, drives)
    budget = DriveBudget(smallest.capacity, catalog_size)
    if budget.usable(one_chunk_records) < chunk_bound:
        raise DestinationError(
            f"drive size too small: {smallest.path} cannot hold one chunk beside the catalog of "
            f"{format_size(catalog_size)}: use larger drives"
        )
    largest = max(s.capacity for s in slots)
    if largest // options.segment_size > MAX_SEGMENTS:
        raise UsageError(
            f"segment size too small for these drives: a drive holds at most {MAX_SEGMENTS} segments; "
            "use a larger --segment-size"
        )
    if targets.drives and targets.next_drive is None:
        room = sum(DriveBudget(s.capacity, catalog_size).usable(0) for s in slots)
        if room < left * (assume_ratio or 1.0):
            raise DestinationError(_drives_too_small(len(slots), room, left, assume_ratio))
    return catalog_size


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
