"""A run of verify over the drives given: the drives are dealt to threads, one per drive checked at once, each
thread checking its drives one after another as verify always did (a drive's structure, then the contents of the
drive before it, while its segments are hashed ahead), and every report handed to the caller as soon as its drive
is done.

Which drives go at once (drive.drive_queues): by default the drives on different devices, each device's drives
one after another (two drives staged in one directory of one disk would only make its head seek between them),
and the copies of one drive always one after another (they share verify's saved progress). ``at_once`` N checks up
to N at once whatever their devices. BLAKE3 and the reads leave the interpreter lock free, so threads are enough
(bench/verify_drives.py measures it).

Memory stays bounded with many drives at once: each thread's read-ahead is HashAhead's digests and the data
pass's window of chunks, and the threads for hashing and decoding and the slice of a segment mapped while it is
hashed whole are shared out among the drives checked at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence

from ..drive import ListedDrive
from ..progress import DriveProgress, DrivesProgress
from .data import HashAhead
from .drive import DriveVerifier, Scratch, Shared
from .report import DriveReport
from .settings import Settings

log = logging.getLogger(__name__)

#: The least a drive hashes at a time with many drives at once (drive.reader.HASH_SLICE with one): one thread's
#: BLAKE3 runs as fast on 8 MiB as on more, and ten drives at once then map 80 MiB at most.
MIN_HASH_SLICE = 8 * 2**20

#: How long a stopped run waits for each of its threads to notice (they do at their next bytes read).
STOP_WAIT = 30.0


class Stopped(BaseException):
    """Raised in a drive's thread when the run stops (Ctrl-C, or another thread's error): not a problem of the
    drive, so no handler of drive errors catches it."""


class Run:
    """The drives of one run, checked in their queues; :meth:`verify` returns their reports in given order."""

    def __init__(self, paths: Sequence[str], settings: Settings, progress: DrivesProgress, at_once: int) -> None:
        self.paths = paths
        # The threads for hashing and decoding, and the pages mapped while a segment is hashed, shared out among
        # the drives checked at once.
        self.settings = dataclasses.replace(
            settings,
            workers=max(1, settings.workers // max(1, at_once)),
            hash_slice=max(MIN_HASH_SLICE, settings.hash_slice // max(1, at_once)),
        )
        self.stop = threading.Event()
        self.shared = Shared(_Stoppable(progress, self.stop))
        self.done: queue.Queue[tuple[int, DriveReport] | BaseException | None] = queue.Queue()
        #: The drives each shipment's catalog lists, as the drives checked read them (the longest listing: a
        #: parity drive added later lists more, docs/format.md 19.5).
        self.listings: dict[str, list[ListedDrive]] = {}
        self.lock = threading.Lock()

    def verify(self, queues: list[list[int]], on_drive: Callable[[DriveReport], None]) -> list[DriveReport]:
        reports: dict[int, DriveReport] = {}

        def hand_over(index: int, report: DriveReport) -> None:
            reports[index] = report
            on_drive(report)

        if len(queues) == 1:
            self.check_queue(queues[0], hand_over)  # on this thread: nothing to wait for
        else:
            self._in_threads(queues, hand_over)
        return [reports[index] for index in sorted(reports)]

    def _in_threads(self, queues: list[list[int]], hand_over: Callable[[int, DriveReport], None]) -> None:
        """Each queue on a thread of its own; the reports handed over on this thread as they come."""
        threads = [
            threading.Thread(target=self._thread, args=(q,), name=f"sneakernet-verify-{n}", daemon=True)
            for n, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = self.done.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    hand_over(*item)
        finally:
            # Ctrl-C here, or an error of a thread: the others stop at their next bytes read, before the
            # caller's progress and the shared services are closed under them.
            self.stop.set()
            for thread in threads:
                thread.join(STOP_WAIT)

    def _thread(self, indexes: list[int]) -> None:
        try:
            self.check_queue(indexes, lambda index, report: self.done.put((index, report)))
        except Stopped:
            pass
        except BaseException as exc:  # handed to the main thread, which raises it
            self.done.put(exc)
        finally:
            self.done.put(None)

    def check_queue(self, indexes: list[int], hand_over: Callable[[int, DriveReport], None]) -> None:
        """The drives of one queue one after another: the structure of each drive is checked before the contents
        of the one before it, so its manifest is parsed while the segments the one before waits for are still
        being hashed ahead."""
        scratch = Scratch(HashAhead(self.settings.workers, slice_size=self.settings.hash_slice))
        try:
            verifiers = [(i, DriveVerifier(self.paths[i], self.settings, self.shared, scratch)) for i in indexes]
            for _, verifier in verifiers:
                verifier.hash_ahead()
            waiting: tuple[int, DriveVerifier] | None = None
            for index, verifier in verifiers:
                whole = verifier.check_structure()
                self._note_listing(verifier)
                if waiting is not None:
                    hand_over(waiting[0], waiting[1].check_contents())
                waiting = (index, verifier) if whole else None
                if not whole:
                    hand_over(index, verifier.report)
            if waiting is not None:
                hand_over(waiting[0], waiting[1].check_contents())
        finally:
            scratch.close()

    def _note_listing(self, verifier: DriveVerifier) -> None:
        listed, shipment = verifier.listed(), verifier.report.shipment
        if listed and shipment is not None:
            with self.lock:
                if len(listed) > len(self.listings.get(shipment, [])):
                    self.listings[shipment] = listed

    def close(self) -> None:
        self.shared.close()


def device_of(path: str) -> int | None:
    """The device a drive directory is on (None when it cannot be told: such a path is checked on its own)."""
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


class _Stoppable:
    """The run's progress, whose drives raise :class:`Stopped` in their threads once the run is stopping."""

    def __init__(self, progress: DrivesProgress, stop: threading.Event) -> None:
        self.progress = progress
        self.stop = stop

    def start(self, total_bytes: int) -> None:
        self.progress.start(total_bytes)

    def advance(self, done_bytes: int) -> None:
        self.progress.advance(done_bytes)

    def close(self) -> None:
        self.progress.close()

    def open_drive(self, label: str, total_bytes: int) -> DriveProgress:
        return _StoppableDrive(self.progress.open_drive(label, total_bytes), self.stop)


class _StoppableDrive:
    def __init__(self, progress: DriveProgress, stop: threading.Event) -> None:
        self.progress = progress
        self.stop = stop

    def advance(self, done_bytes: int) -> None:
        if self.stop.is_set():
            raise Stopped
        self.progress.advance(done_bytes)

    def close(self) -> None:
        self.progress.close()
