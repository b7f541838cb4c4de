"""The drives of one run restored at once: :func:`restore_drives`.

Each drive is checked first, one after the other, on restore's own thread (the checks read the catalog's index in
the journal). The drives that passed are then written at the same time, each on a thread of its own with its own
reader, read-ahead and writer pool, and its own :class:`~sneakernet.io.tree.Destination` (a tree's open
directories are not shared between threads); restore's thread is meanwhile their one journal writer
(desk.JournalDesk) and tells each drive's outcome as soon as that drive is done. A file whose pieces lie on two
drives written at once is assembled by one drive at a time (pieces.PieceLocks), each piece recorded in the journal
once written. A drive whose reading fails stops alone (its outcome says so); a destination that fails (full, an
I/O error) stops them all, and its error is raised once every drive's thread has ended.

Two copies of one drive given together are written one after the other (the second finds the first's work done);
with the space check, drives are written together only while their data fits the destination's free space
together: the rest come once those are done, each checked again.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..drive import DriveReader
from ..io.tree import Destination
from ..progress import serialized
from .desk import JournalDesk, Stopped
from .destination import check_room
from .drive_restorer import Shared
from .report import DriveOutcome
from .unit import CheckedDrive, check_drive, write_drive

#: One checked drive and its place among those given.
Placed = tuple[int, CheckedDrive]


def restore_drives(
    readers: Sequence[DriveReader],
    shared: Shared,
    open_tree: Callable[[], Destination],
    check_space: bool,
    told: Callable[[DriveOutcome], None],
) -> list[DriveOutcome]:
    """Check then write ``readers`` (at once, see the module); their outcomes in the order given, each ``told`` as
    soon as its drive is done. ``open_tree`` opens the destination once more, for a drive written on its own
    thread."""
    outcomes: list[DriveOutcome | None] = [None] * len(readers)
    checked: list[Placed] = []
    for place, reader in enumerate(readers):
        result = check_drive(reader, shared, place)
        if isinstance(result, DriveOutcome):
            outcomes[place] = result
            told(result)
        else:
            checked.append((place, result))
    for wave in _waves(checked, shared.tree.root if check_space else None):
        if check_space:
            first = wave[0][1]
            check_room(first.reader.label.label, first.raw_bytes, shared.tree.root)
        if len(wave) == 1:
            place, drive = wave[0]
            alone = write_drive(drive, shared)
            outcomes[place] = alone
            told(alone)
        else:
            for place, outcome in _write_at_once(wave, shared, open_tree, told):
                outcomes[place] = outcome
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _waves(checked: list[Placed], dest: str | None) -> Iterator[list[Placed]]:
    """The checked drives in groups written at once: one copy of each drive a group, and (with ``dest``, the space
    check) no more data than the destination has free; a group's first drive always (its own room is checked)."""
    rest = checked
    while rest:
        free = shutil.disk_usage(dest).free if dest is not None else None
        wave: list[Placed] = []
        later: list[Placed] = []
        numbers: set[int] = set()
        needed = 0
        for placed in rest:
            drive = placed[1]
            number = drive.reader.label.drive
            fits = free is None or not wave or needed + drive.raw_bytes <= free
            if number in numbers or not fits:
                later.append(placed)
                continue
            wave.append(placed)
            numbers.add(number)
            needed += drive.raw_bytes
        yield wave
        rest = later


def _write_at_once(
    wave: list[Placed], shared: Shared, open_tree: Callable[[], Destination], told: Callable[[DriveOutcome], None]
) -> list[tuple[int, DriveOutcome]]:
    """Write the drives of ``wave`` at once, serving their journal calls here meanwhile; their outcomes."""
    desk = JournalDesk(shared.journal, shared.stop)
    progress = serialized(shared.progress)
    done: list[tuple[int, DriveOutcome]] = []
    failures: list[BaseException] = []
    works: dict[Future[DriveOutcome], tuple[int, Destination]] = {}
    closed: set[Future[Any]] = set()

    def close(work: Future[Any]) -> None:
        closed.add(work)
        works[work][1].close()

    def ended(work: Future[Any]) -> None:
        close(work)
        place = works[work][0]
        failure = work.exception()
        if failure is None:
            done.append((place, work.result()))
            told(done[-1][1])
        elif not isinstance(failure, Stopped):
            failures.append(failure)
            desk.stop()  # the destination (or a bug) fails them all: the others end soon

    trees: list[Destination] = []
    try:
        for _ in wave:  # every tree opened before any drive starts: a drive waits for the journal served below
            trees.append(open_tree())
    except BaseException:
        for tree in trees:
            tree.close()
        raise
    with ThreadPoolExecutor(len(wave), thread_name_prefix="sneakernet-drive") as pool:
        for (place, drive), tree in zip(wave, trees, strict=True):
            own = replace(shared, journal=desk.client(), tree=tree, progress=progress, at_once=len(wave))
            works[pool.submit(write_drive, drive, own)] = (place, tree)
        try:
            desk.serve(list(works), ended)
        except BaseException:
            # Ctrl-C or SIGTERM here: the drives stop (their calls refused), then it goes on up.
            desk.stop()
            desk.serve([work for work in works if work not in closed], close)
            raise
    if failures:
        raise failures[0]
    return done
