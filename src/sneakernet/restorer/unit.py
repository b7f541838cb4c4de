"""One drive's unit of work, in two steps: :func:`check_drive` (on restore's own thread, which holds the journal:
the checks read the catalog's index in it) and :func:`write_drive` (on the drive's own thread when drives are
restored at once), each taking what the run's drives share (drive_restorer.Shared) and the second returning the
drive's outcome. :func:`restore_drive` is both, one after the other."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from ..drive import ChunkMap, DriveReader
from ..errors import DriveUnreadable, FormatError
from ..format import short_fingerprint, show_path
from ..progress import open_drive
from ..units import counted
from .check import shipment_named, validate_drive
from .destination import check_room, space_error
from .drive_restorer import DriveRestorer, Shared
from .journal import Journal
from .report import DriveOutcome
from .states import DriveState, OutcomeStatus

log = logging.getLogger(__name__)

#: The copy, in DEST/.sneakernet, of the manifest of a drive being restored (see DriveReader.pin_manifest); the
#: drives of one run each have their own (``{}``: the drive's place among those given).
PINNED_MANIFEST = "drive-manifest-{}.jsonl.zst"


@dataclass
class CheckedDrive:
    """A drive that passed its checks (:func:`check_drive`): what writing it needs."""

    reader: DriveReader
    chunk_map: ChunkMap
    outcome: DriveOutcome

    @property
    def raw_bytes(self) -> int:
        """Its data bytes, from its manifest once checked (drive.json's count is not trusted)."""
        return self.chunk_map.raw_bytes


def check_drive(reader: DriveReader, shared: Shared, place: int = 0) -> DriveOutcome | CheckedDrive:
    """The first step, on the journal's thread: refused (another shipment, or its checks fail: nothing written)
    or already done (its outcome), else checked, ready to write. ``place``: the drive's among those given (its
    pinned manifest's name)."""
    journal, includes = shared.journal, shared.includes
    label = reader.label
    outcome = DriveOutcome(reader.path, label.label, label.drive)
    if label.shipment != journal.get_json("shipment"):
        outcome.status = OutcomeStatus.REFUSED
        ours = f"{journal.get_json('shipment')} (fingerprint {short_fingerprint(journal.get_json('fingerprint'))})"
        outcome.message = (
            "this drive is of another shipment than the restore in progress: the drive's is "
            f"{shipment_named(reader)}, the destination's {ours}: give a drive of that shipment, or restore this one "
            "into another destination"
        )
        return outcome
    if journal.drive_state(label.drive) == DriveState.DONE:
        outcome.status, outcome.message = OutcomeStatus.ALREADY, "already restored: nothing to do"
        return outcome
    try:
        # Both passes read one private copy of the manifest, so what is written is what was checked.
        reader.pin_manifest(os.path.join(Journal.directory(journal.dest), PINNED_MANIFEST.format(place)))
        chunk_map = validate_drive(reader, journal, includes)
    except FormatError as exc:
        outcome.status, outcome.message = OutcomeStatus.REFUSED, f"refused, nothing written for it: {exc}"
        return outcome
    except OSError as exc:
        raise space_error(exc, journal.dest) from exc
    if includes:
        journal.place_aliases(label.drive)
    return CheckedDrive(reader, chunk_map, outcome)


def write_drive(checked: CheckedDrive, shared: Shared) -> DriveOutcome:
    """The second step, on any thread: the checked drive written, its state recorded in the journal; its outcome.
    A drive that cannot be read half way (an I/O error: pulled out, a failing disk) stops, alone: what it wrote is
    kept, its outcome says so, and the drive (or a copy) again finishes it."""
    journal, tree = shared.journal, shared.tree
    reader, outcome = checked.reader, checked.outcome
    label = reader.label
    if journal.drive_state(label.drive) == DriveState.DONE:
        # The same drive given twice in one run (two copies): the first finished it.
        outcome.status, outcome.message = OutcomeStatus.ALREADY, "already restored: nothing to do"
        return outcome
    log.info("%s (%s): restoring", label.label, reader.path)
    progress = open_drive(shared.progress, label.label, checked.raw_bytes)
    started = time.monotonic()
    tree.take_replaced()
    try:
        DriveRestorer.of(reader, checked.chunk_map, outcome, shared, progress).run()
    except DriveUnreadable as exc:
        outcome.status = OutcomeStatus.UNREADABLE
        outcome.message = (
            f"stopped half way: {exc}; what it wrote is kept: give this drive (or a copy of it) again to finish it"
        )
    finally:
        outcome.seconds += time.monotonic() - started
        progress.close()
    outcome.replaced_count, replaced = tree.take_replaced()
    outcome.replaced = [show_path(p) for p in replaced]
    journal.set_drive(label.drive, label.label, label.manifest_blake3, _drive_state(outcome), outcome.failed_count)
    journal.commit()
    return outcome


def _drive_state(outcome: DriveOutcome) -> DriveState:
    """The journal's state of a drive written (the outcome's status and message set to match)."""
    if outcome.status == OutcomeStatus.UNREADABLE:
        return DriveState.PARTIAL
    if not outcome.failed_count and not outcome.collisions:
        return DriveState.DONE
    outcome.status = OutcomeStatus.DAMAGED
    outcome.message = (
        f"{counted(outcome.failed_count + len(outcome.collisions), 'entry', 'entries')} could not be restored"
    )
    if outcome.blocked_count == outcome.failed_count and not outcome.collisions:
        # Nothing wrong with the drive: this one again, once the way is clear, finishes it.
        outcome.status = OutcomeStatus.BLOCKED
        outcome.message += (
            ": the destination is in the way (named below); move those out, then restore this drive again"
        )
        return DriveState.BLOCKED
    return DriveState.PARTIAL


def restore_drive(reader: DriveReader, shared: Shared, check_space: bool = False, place: int = 0) -> DriveOutcome:
    """One drive's unit of work, both steps on this thread. With ``check_space``, refused when its data does not
    fit (:func:`check_room`)."""
    checked = check_drive(reader, shared, place)
    if isinstance(checked, DriveOutcome):
        return checked
    if check_space:
        check_room(reader.label.label, checked.raw_bytes, shared.tree.root)
    return write_drive(checked, shared)
