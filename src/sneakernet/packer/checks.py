"""The refusals a pack makes up front, before anything is written: bad input, drives too small."""

from __future__ import annotations

from ..errors import SourceError
from ..format import FINISHED_NAME, JOURNAL_NAME, show_path
from ..io.source import Source
from ..options import PackOptions
from ..scan import ScanTotals, describe
from ..space.reserve import catalog_reservation, refuse_given_drives
from ..units import counted
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
        # Only the record is left out on its own (io.source.restore_record_excludes): here something else is beside it.
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
    refuse: bool = True,
) -> int:
    """The catalog bound, after refusing drives too small for the format or, together, for the data (at
    ``assume_ratio`` of its size when given, else uncompressed).

    ``finished`` drives (of a resumed pack) hold data already: neither they nor their data are counted.
    """
    done = len(finished.labels) if finished else 0
    left = totals.unique_bytes - (sum(label.raw_bytes for label in finished.labels) if finished else 0)
    slots = targets.known_slots()[done:] or targets.known_slots()
    smallest = min(slots, key=lambda s: s.capacity)
    capacities = [slot.capacity for slot in slots]
    catalog_size = catalog_reservation(
        totals.catalog_entry_bytes, totals.unique_bytes, capacities, options, drive=smallest.path
    )
    if refuse and targets.drives and targets.next_drive is None:
        refuse_given_drives(capacities, catalog_size, left, assume_ratio)
    return catalog_size
