"""Where a restore stands: :func:`status` and :func:`shipment_status` (the drives in, what waits on the others)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..drive import CatalogReader
from ..errors import UsageError
from ..format import DRIVE_LABEL_NAME, CatalogEntry, drive_label, show_path
from .catalog import catalog_copy_problem
from .cursor import windows
from .finished import read_finished
from .includes import Includes
from .journal import CATALOG_COPY, JOURNAL_NAME, ROWS_PER_STATEMENT, AbsentRow, Journal
from .report import LISTED_PATHS, ShipmentStatus, WaitingDrive
from .session import open_journal
from .states import DriveState, EntryState, WaitState


def shipment_status(dest: str, journal: Journal | None = None) -> ShipmentStatus:
    """Which drives are restored, which are still needed and how many files and bytes wait on each."""
    own = journal is None
    if journal is None:
        if not Journal.exists(dest):
            raise UsageError(f"{dest} holds no restore in progress (no {Journal.directory(dest)}/{JOURNAL_NAME})")
        journal = open_journal(dest)
    try:
        labels: list[str] = journal.get_json("labels")
        count = int(journal.get_json("drives"))
        if journal.get("finished") == "true":
            # A finished restore whose journal was kept or being removed: nothing waits (its catalog copy may be
            # gone); when, its finished record says.
            record = read_finished(dest)
            return ShipmentStatus(
                dest, journal.get_json("shipment"), journal.get_json("fingerprint"), count,
                list(range(1, count + 1)), [], [], 0, complete=True, finished=True,
                finished_at=record.finished if record else None, includes=journal.get_json("includes") or [],
            )  # fmt: skip
        if own and (problem := catalog_copy_problem(journal)) is not None:
            copy = os.path.join(Journal.directory(dest), CATALOG_COPY)
            raise UsageError(
                f"the catalog copy {copy} is {problem}: run sneakernet restore into {dest} again with any drive of "
                "the shipment (or --catalog FILE), which copies it again"
            )
        states = journal.drives()
        restored = sorted(d for d, (_, state, _) in states.items() if state == DriveState.DONE)
        includes = Includes(journal.get_json("includes") or [])
        absent = _absent_entries(journal, includes, set(restored), count)
        waiting = [
            WaitingDrive(d, labels[d - 1] if d <= len(labels) else drive_label(d), *absent.on_drive.get(d, (0, 0)),
                         states[d][1] if d in states else WaitState.MISSING)
            for d in range(1, count + 1)
            if d not in restored and (d in absent.on_drive or not includes)
        ]  # fmt: skip
        failed = [show_path(p) for p in journal.failed_paths(LISTED_PATHS)]
        failed += [show_path(p) for p in absent.stuck][: LISTED_PATHS - len(failed)]
        failed_count = journal.count(EntryState.FAILED) + absent.stuck_count
        return ShipmentStatus(
            dest=dest,
            shipment=journal.get_json("shipment"),
            fingerprint=journal.get_json("fingerprint"),
            drives=count,
            restored=restored,
            waiting=waiting,
            failed=failed,
            failed_count=failed_count,
            # Positive: every entry asked for is done in the journal, not merely every drive seen.
            complete=absent.count == 0 and not waiting and failed_count == 0,
            finished=journal.get("finished") == "true",
            includes=journal.get_json("includes") or [],
        )
    finally:
        if own:
            journal.close()


@dataclass
class _Absent:
    """Wanted catalog entries the journal does not call done."""

    count: int = 0
    #: drive -> (entries, bytes of files) that wait on it, of the drives not restored.
    on_drive: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Entries absent though every drive carrying them is restored (and not recorded as failed): the first
    #: LISTED_PATHS, and how many.
    stuck: list[bytes] = field(default_factory=list)
    stuck_count: int = 0

    def wait(self, drive: int, size: int) -> None:
        files, size_so_far = self.on_drive.get(drive, (0, 0))
        self.on_drive[drive] = (files + 1, size_so_far + size)


def _carriers(first: int, last: int, drives: int, lanes: list[list[int]] | None) -> set[int]:
    """The drives that carry an entry from ``first`` to ``last`` (of the shipment's ``drives``): in version 2 only
    those of its lane (``lanes``: each drive's lane and place, docs/format.md 19.4), not every number between."""
    span = range(first, min(last, drives) + 1)
    if not lanes or not 1 <= last <= len(lanes):
        return set(span)
    lane = lanes[last - 1][0]
    return {d for d in span if d <= len(lanes) and lanes[d - 1][0] == lane}


def _absent_entries(journal: Journal, includes: Includes, restored: set[int], drives: int) -> _Absent:
    """Every wanted entry of the catalog that the journal does not call done, and the drives not restored (of
    the shipment's ``drives``, whatever an entry claims) that they wait on. A hard link waits on the drives of
    the content it gets: its target's when --include left the target out (the aliases), or its target's own
    entry's when that is wanted (counted there)."""
    out = _Absent()
    aliases = journal.has_aliases()
    lanes: list[list[int]] | None = journal.get_json("lanes")
    for absent in _absent_windows(journal, includes):
        out.count += len(absent)
        links = [row.path for row in absent if row.kind == "hardlink"]
        targets = [row.target for row in absent if row.kind == "hardlink" and row.target is not None]
        via = journal.alias_contents(links + targets) if aliases and links else {}
        target_states = journal.states(targets)
        for row in absent:
            carriers = _carriers(row.first_drive, row.last_drive, drives, lanes)
            size = row.size if row.kind == "file" else 0
            content = via.get(row.path) or (via.get(row.target) if row.target is not None else None)
            if content is not None:
                carriers.update(_carriers(content[0], content[1], drives, lanes))
                size = int(content[2] or 0) if row.path in via else 0
            needed = sorted(d for d in carriers if d not in restored)
            for drive in needed:
                out.wait(drive, size)
            # A link whose wanted target is not in yet waits with it; anything else absent with all its drives in
            # is named (a restore must never call it complete).
            with_target = row.target is not None and target_states.get(row.target, (None, None))[0] != EntryState.DONE
            if not needed and row.state != EntryState.FAILED and not with_target:
                out.stuck_count += 1
                if len(out.stuck) < LISTED_PATHS:
                    out.stuck.append(row.path)
    return out


def _absent_windows(journal: Journal, includes: Includes) -> Iterator[list[AbsentRow]]:
    """The wanted catalog entries not done in the journal, a window at a time (memory bounded by the window):
    set-wise in the journal (:meth:`Journal.absent`) when it holds the catalog's index (built when the restore
    began); a journal of an earlier sneakernet without that index: the catalog copy, a window of paths looked up
    at a time."""
    if journal.catalog_index().built():
        yield from journal.absent(includes.wants if includes else None)
        return
    catalog = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    wanted = (r for r in CatalogReader(catalog).records() if isinstance(r, CatalogEntry) and includes.wants(r.path))
    for window in windows(wanted, ROWS_PER_STATEMENT):
        known = journal.states([r.path for r in window])
        rows = [(r.path, r.kind, r.size, r.first_drive, r.last_drive, *known.get(r.path, (None, None))) for r in window]
        absent = [AbsentRow.of(row) for row in rows if row[5] != EntryState.DONE]
        if absent:
            yield absent


def status(dest: str) -> ShipmentStatus:
    """The status of the restore in ``dest``: in progress (see :func:`shipment_status`) or finished (from its
    finished record). A path that does not exist, a drive, or a directory that holds no restore: UsageError."""
    if not os.path.lexists(dest):
        raise UsageError(f"{dest} does not exist: give the destination of a restore (the DEST of restore --into DEST)")
    if not os.path.isdir(dest):
        raise UsageError(f"{dest} is not a directory: give the destination of a restore (restore --into DEST)")
    if Journal.exists(dest):
        return shipment_status(dest)
    record = read_finished(dest)
    if record is not None:
        return record.status(dest)
    if os.path.exists(os.path.join(dest, DRIVE_LABEL_NAME)):
        raise UsageError(
            f"{dest} is a drive, not the destination of a restore: status takes the DEST of restore --into DEST "
            "(for a drive: sneakernet info or verify)"
        )
    raise UsageError(f"{dest} holds no restore, in progress or finished (no {Journal.directory(dest)})")
