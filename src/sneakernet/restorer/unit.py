"""One drive's unit of work (:func:`restore_drive`): it takes what the run's drives share (drive.Shared) and
returns the drive's outcome."""

from __future__ import annotations

import logging
import os

from ..drive import DriveReader
from ..errors import FormatError
from ..format import short_fingerprint, show_path
from ..progress import begin_drive
from ..units import counted
from .check import shipment_named, validate_drive
from .destination import check_room, space_error
from .drive_restorer import DriveRestorer, Shared
from .journal import Journal
from .report import DriveOutcome
from .states import DriveState, OutcomeStatus

log = logging.getLogger(__name__)

#: The copy, in DEST/.sneakernet, of the manifest of the drive being restored (see DriveReader.pin_manifest).
PINNED_MANIFEST = "drive-manifest.jsonl.zst"


def restore_drive(reader: DriveReader, shared: Shared, check_space: bool = False) -> DriveOutcome:
    """One drive's unit of work: refused (another shipment, or its checks fail: nothing written), already done, or
    checked, restored and recorded in the journal; its outcome. With ``check_space``, refused when its data does
    not fit (:func:`check_room`)."""
    journal, tree, includes = shared.journal, shared.tree, shared.includes
    label = reader.label
    log.info("%s (%s): checking, then restoring", label.label, reader.path)
    begin_drive(shared.progress, label.label)
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
        reader.pin_manifest(os.path.join(Journal.directory(journal.dest), PINNED_MANIFEST))
        chunk_map = validate_drive(reader, journal, includes)
    except FormatError as exc:
        outcome.status, outcome.message = OutcomeStatus.REFUSED, f"refused, nothing written for it: {exc}"
        return outcome
    except OSError as exc:
        raise space_error(exc, journal.dest) from exc
    if check_space:
        check_room(label.label, chunk_map.raw_bytes, tree.root)
    if includes:
        journal.place_aliases(label.drive)
    tree.take_replaced()
    DriveRestorer.of(reader, chunk_map, outcome, shared).run()
    outcome.replaced_count, replaced = tree.take_replaced()
    outcome.replaced = [show_path(p) for p in replaced]
    state = DriveState.DONE if not outcome.failed_count and not outcome.collisions else DriveState.PARTIAL
    if state != DriveState.DONE:
        outcome.status = OutcomeStatus.DAMAGED
        outcome.message = (
            f"{counted(outcome.failed_count + len(outcome.collisions), 'entry', 'entries')} could not be restored"
        )
        if outcome.blocked_count == outcome.failed_count and not outcome.collisions:
            # Nothing wrong with the drive: this one again, once the way is clear, finishes it.
            state, outcome.status = DriveState.BLOCKED, OutcomeStatus.BLOCKED
            outcome.message += (
                ": the destination is in the way (named below); move those out, then restore this drive again"
            )
    journal.set_drive(label.drive, label.label, label.manifest_blake3, state, outcome.failed_count)
    journal.commit()
    return outcome
