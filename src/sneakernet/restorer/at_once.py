"""The drives of one run restored at once: :func:`restore_drives`.

Each drive is checked first, one after the other, on restore's own thread (the checks read the catalog's index in
the journal). The drives that passed are then written at the same time in queues (drive.drive_queues, as verify
does): by default one queue a device, its drives one after another (two drives staged in one directory of one disk
would only make its head seek between them), or with ``at_once`` N up to N queues whatever the devices. Each queue
is a thread of its own, each drive with its own reader, read-ahead and writer pool, each queue with its own
:class:`~sneakernet.io.tree.Destination` (a tree's open directories are not shared between threads); restore's
thread is meanwhile their one journal writer
(desk.JournalDesk) and tells each drive's outcome as soon as that drive is done. A file whose pieces lie on two
drives written at once is assembled by one drive at a time (pieces.PieceLocks), each piece recorded in the journal
once written. A drive whose reading fails stops alone (its outcome says so); a destination that fails (full, an
I/O error) stops them all, and its error is raised once every drive's thread has ended.

Two copies of one drive given together are written one after the other (the second finds the first's work done);
one queue in all (the drives all on one device) is written on restore's own thread, with no journal desk;
with the space check, drives are written together only while their data fits the destination's free space
together: the rest come once those are done, each checked again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..drive import DriveReader, GivenDrive, drive_queues
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
    at_once: int | None = None,
) -> list[DriveOutcome]:
    """Check then write ``readers`` (at once, see the module); their outcomes in the order given, each ``told`` as
    soon as its drive is done. ``open_tree`` opens the destination once more, for a queue of drives written on a
    thread of its own; ``at_once``: see the module."""
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
        queues = _queues(wave, at_once)
        if len(queues) == 1:
            for place, drive in queues[0]:
                alone = write_drive(drive, shared)
                outcomes[place] = alone
                told(alone)
        else:
            for place, outcome in _write_at_once(queues, shared, open_tree, told):
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


def _queues(wave: list[Placed], at_once: int | None) -> list[list[Placed]]:
    """The drives of ``wave`` in the queues written at once (see the module)."""
    given = [GivenDrive.of(drive.reader.path, drive.reader.label) for _, drive in wave]
    devices = [_device(drive.reader.path) for _, drive in wave]
    return [[wave[index] for index in queue] for queue in drive_queues(given, devices, at_once)]


def _device(path: str) -> int | None:
    """The device a drive directory is on (None when it cannot be told: such a drive goes on its own)."""
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def _write_at_once(
    queues: list[list[Placed]],
    shared: Shared,
    open_tree: Callable[[], Destination],
    told: Callable[[DriveOutcome], None],
) -> list[tuple[int, DriveOutcome]]:
    """Write the queues of drives at once, each on a thread of its own, serving their journal calls here
    meanwhile; their outcomes."""
    desk = JournalDesk(shared.journal, shared.stop)
    progress = serialized(shared.progress)
    done: list[tuple[int, DriveOutcome]] = []
    failures: list[BaseException] = []
    #: Each drive's work: its place, its queue's tree, and whether it is the queue's last drive (its tree closed then).
    works: dict[Future[DriveOutcome], tuple[int, Destination, bool]] = {}
    closed: set[Future[Any]] = set()

    def close(work: Future[Any]) -> None:
        closed.add(work)
        _, tree, last = works[work]
        if last:
            tree.close()

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
        for _ in queues:  # every tree opened before any drive starts: a drive waits for the journal served below
            trees.append(open_tree())
    except BaseException:
        for tree in trees:
            tree.close()
        raise
    with contextlib.ExitStack() as threads:
        for queue, tree in zip(queues, trees, strict=True):
            # One thread a queue: its drives one after another, each drive's end told as it comes.
            pool = threads.enter_context(ThreadPoolExecutor(1, thread_name_prefix="sneakernet-drive"))
            own = replace(shared, journal=desk.client(), tree=tree, progress=progress, at_once=len(queues))
            for place, drive in queue:
                works[pool.submit(write_drive, drive, own)] = (place, tree, queue[-1][0] == place)
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
