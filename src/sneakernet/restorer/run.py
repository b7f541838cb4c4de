"""The restore itself: :func:`restore` takes the drives given, all at once (at_once.py), and finishes the
shipment when its last drive is in."""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from ..drive import DriveReader, refuse_non_directory
from ..errors import DestinationError, UsageError
from ..format import short_fingerprint
from ..io.tree import Destination, DestinationFactory, SafeTree
from ..progress import NullProgress, Progress
from .at_once import restore_drives
from .destination import journal_error, only_restore_into, refuse_nested, space_error
from .drive_restorer import Shared
from .finished import read_finished, write_finished
from .includes import Includes
from .install import finish_directories, recover_installing, settle_links
from .journal import PARTS_DIR, Journal
from .lost import open_drives
from .parts import open_parts, sweep_parts
from .report import LISTED_PATHS, DriveOutcome, RestoreReport, merge_outcomes
from .session import journal_for, remove_journal
from .states import DriveState, OutcomeStatus
from .status import shipment_status
from .unit import restore_drive

if TYPE_CHECKING:
    from ..drive.keys import Unlock


def restore(
    drives: Sequence[str],
    into: str,
    *,
    include: Sequence[str] = (),
    keep_journal: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    catalog: str | None = None,
    check_space: bool = True,
    on_drive: Callable[[DriveOutcome], None] | None = None,
    keep_setuid: bool = False,
    open_destination: DestinationFactory = SafeTree,
    open_reader: Callable[[str], DriveReader] = DriveReader,
    wait: Callable[[str], None] | None = None,
    at_once: int | None = None,
    key: Unlock | None = None,
) -> RestoreReport:
    """Restore what ``drives`` carry into ``into``; finish the shipment when its last drive is in.

    The drives are checked one after the other, then written at once: by default the drives on different devices
    at once and those sharing a device one after another, with ``at_once`` N up to N at once whatever their
    devices (two copies of one drive always one after the other); a drive whose reading fails half way (an I/O
    error) stops alone, its outcome ``unreadable``.

    With ``check_space`` (and no ``include``), drives whose data exceeds the destination's free space are refused
    up front (:func:`check_room`); without it, a destination that fills stops the restore, as it would anyway.

    Files lose their setuid and setgid bits (each drive's ``setid_cleared`` counts them) unless ``keep_setuid``:
    for a shipment from a sender trusted to plant programs that run as their owners.

    Drives that fail their checks are refused with nothing written for them and reported; damaged files are
    never installed and are reported. ``on_drive`` is called with each drive's outcome as soon as that drive is
    done (a drive gone over again for a hard link's content, once more with what that pass did). Raises
    :class:`~sneakernet.errors.UsageError` for bad arguments and :class:`~sneakernet.errors.OutOfSpace` when the
    destination fills (the journal keeps what is done).

    ``open_destination`` opens ``into`` once its journal is there: everything restore makes in it goes through
    the :class:`~sneakernet.io.tree.Destination` it returns (:class:`~sneakernet.io.tree.SafeTree`; a test
    passes a fake that fails where it wants), once more for each drive written at once with others.
    ``open_reader`` opens each drive (:class:`~sneakernet.drive.DriveReader`; a test passes a slow or failing one).

    While another restore writes into ``into``, this one is refused (UsageError); with ``wait``, that is called
    with a line saying so and the restore waits until the other ends.

    An encrypted shipment's drives open with ``key`` (docs/format.md 19.8): a wrong one, or none, is refused before
    anything is written (:class:`~sneakernet.errors.CryptoError`, exit 2).
    """
    if key is not None and open_reader is DriveReader:
        open_reader = functools.partial(DriveReader, key=key)
    if not drives:
        raise UsageError("give at least one drive to restore")
    refuse_non_directory(into, "destination")
    with ExitStack() as stack:
        # Parity drives among them stand in for the data drives of their groups not given (restorer/lost.py).
        readers, rebuilt = open_drives(drives, stack, open_reader)
        refuse_nested(readers, into)
        stack.enter_context(only_restore_into(into, wait))
        finished = _restored_already(readers, into, Includes(include), force)
        if finished is not None:
            return finished
        report = _restore(
            readers,
            into,
            Includes(include),
            keep_journal,
            force,
            progress or NullProgress(),
            catalog,
            check_space,
            on_drive,
            keep_setuid,
            open_destination,
            at_once,
        )
        report.notes += rebuilt
        return report


def _restored_already(readers: list[DriveReader], dest: str, includes: Includes, force: bool) -> RestoreReport | None:
    """A destination whose restore finished (a finished record, no journal): drives of that shipment are a no-op,
    writing nothing; drives of another one only with --force (a new restore over the finished tree). None: not
    finished, or forced over."""
    if Journal.exists(dest):
        return None
    record = read_finished(dest)
    if record is None:
        return None
    ours = [reader for reader in readers if reader.label.shipment == record.shipment]
    held = f"the finished restore of shipment {record.shipment} (fingerprint {short_fingerprint(record.fingerprint)})"
    if not ours:
        if force:
            return None
        raise UsageError(
            f"{dest} holds {held}; {readers[0].path} is a drive of shipment {readers[0].label.shipment}: give another "
            "destination, or --force to restore this shipment over it"
        )
    given = [p.decode("utf-8", "surrogateescape") for p in includes.patterns]
    if includes and given != record.includes:
        raise UsageError(
            f"{dest} holds {held} with --include {record.includes or '(everything)'}: give the same patterns or none, "
            "or another destination for other paths"
        )
    outcomes = []
    for reader in readers:
        outcome = DriveOutcome(reader.path, reader.label.label, reader.label.drive, status=OutcomeStatus.ALREADY)
        outcome.message = f"already restored: {dest} holds this shipment, finished {record.finished}; nothing to do"
        if reader.label.shipment != record.shipment:
            outcome.status = OutcomeStatus.REFUSED
            outcome.message = f"this drive is of shipment {reader.label.shipment}; {dest} holds {held}"
        outcomes.append(outcome)
    return RestoreReport(outcomes, record.status(dest))


def _restore(
    readers: list[DriveReader],
    into: str,
    includes: Includes,
    keep_journal: bool,
    force: bool,
    progress: Progress,
    catalog: str | None,
    check_space: bool = True,
    on_drive: Callable[[DriveOutcome], None] | None = None,
    keep_setuid: bool = False,
    open_destination: DestinationFactory = SafeTree,
    at_once: int | None = None,
) -> RestoreReport:
    notes: list[str] = []
    told = on_drive or (lambda outcome: None)
    try:
        journal = journal_for(into, readers, includes, force, catalog, notes)
    except sqlite3.OperationalError as exc:
        raise journal_error(exc, into) from exc
    except OSError as exc:
        raise space_error(exc, into) from exc
    try:
        # A run killed while it removed a finished journal (parts first, the journal last) leaves the journal
        # alone: this run finishes again, and needs the parts directory back.
        os.makedirs(os.path.join(Journal.directory(into), PARTS_DIR), exist_ok=True)
    except OSError as exc:
        journal.close()
        raise space_error(exc, into) from exc
    over_existing = journal.get("over_existing") == "true"

    def open_tree() -> Destination:
        return open_destination(into, note_replaced=over_existing, listed=LISTED_PATHS)

    tree = open_tree()
    try:
        parts = open_parts(tree, into)
    except DestinationError:
        tree.close()
        journal.close()
        raise
    outcomes: list[DriveOutcome] = []
    try:
        recover_installing(journal, tree, parts)
        sweep_parts(journal, parts)
        includes = Includes(journal.get_json("includes") or [])
        shared = Shared(journal, tree, parts, progress, includes, tree.folds_names(), keep_setuid)
        progress.start(sum(r.label.raw_bytes for r in readers))
        # With --include only a part of each drive is written: its data bytes say nothing of the room it needs.
        check_space = check_space and not includes
        started = time.monotonic()
        outcomes = restore_drives(readers, shared, open_tree, check_space, told, at_once)
        # A drive of this run that a later one reopened (it carries a wanted hard link's content) goes again.
        for index, reader in enumerate(readers):
            if journal.drive_state(reader.label.drive) == DriveState.REOPENED:
                again = restore_drive(reader, shared, place=index)
                told(again)
                outcomes[index] = merge_outcomes(outcomes[index], again)
        seconds = time.monotonic() - started
        progress.close()
        status = shipment_status(into, journal)
        problems: list[str] = []
        if not status.waiting and journal.has_pending_links():
            # Every drive needed is in: a hard link still waiting names a target the shipment never gave.
            problems = settle_links(journal, tree)
            status = shipment_status(into, journal)
        if status.complete:
            finish_directories(journal, tree)
            write_finished(journal)
            status.finished = True
    except sqlite3.OperationalError as exc:
        raise journal_error(exc, into) from exc
    finally:
        parts.close()
        tree.close()
        journal.close()
    if status.finished and not keep_journal:
        remove_journal(into)
    return RestoreReport(outcomes, status, problems, notes, seconds)
