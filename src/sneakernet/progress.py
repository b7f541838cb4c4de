"""A small progress protocol, so the library reports progress without depending on tqdm.

The command line passes a tqdm-backed implementation (cli/progress.py); library users pass their own or nothing. Besides
the three methods of :class:`Progress`, an implementation may have ``drive(label)``, called when work on a drive
begins (the command line's bar names it); :func:`begin_drive` calls it only where it exists, so a progress object
written for the three methods keeps working.

Several drives worked on at once (verify and restore of many drives) report through :func:`open_drive`: one
:class:`DriveProgress` per drive, told from that drive's thread. An implementation with ``open_drive(label,
total_bytes)`` (:class:`DrivesProgress`, the command line's: one line per drive under the total bar) gives its own;
for any other, :func:`serialized` wraps it so that its methods are never called from two threads at once.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable


class Progress(Protocol):
    def start(self, total_bytes: int) -> None:
        """The work ahead, in bytes."""

    def advance(self, done_bytes: int) -> None:
        """``done_bytes`` more bytes are done."""

    def close(self) -> None:
        """The work is over (finished or not)."""


class DriveProgress(Protocol):
    """The progress of one drive among those worked on at once (see :func:`open_drive`)."""

    def advance(self, done_bytes: int) -> None:
        """``done_bytes`` more bytes of this drive are done (they count in the run's total too)."""

    def close(self) -> None:
        """Work on this drive is over (finished or not)."""


@runtime_checkable
class DrivesProgress(Protocol):
    """A :class:`Progress` that shows each drive worked on at once: its methods may be called from several
    threads at once (the drives' own), so it guards its state itself."""

    def start(self, total_bytes: int) -> None: ...

    def advance(self, done_bytes: int) -> None: ...

    def close(self) -> None: ...

    def open_drive(self, label: str, total_bytes: int) -> DriveProgress:
        """Work on drive ``label`` (``drive-0002``), of ``total_bytes`` bytes, begins."""


def begin_drive(progress: Progress, label: str) -> None:
    """Tell ``progress`` that work on drive ``label`` (``drive-0002``) begins, if it has a ``drive`` method."""
    drive = getattr(progress, "drive", None)
    if callable(drive):
        drive(label)


def open_drive(progress: Progress, label: str, total_bytes: int) -> DriveProgress:
    """The progress of drive ``label`` (``total_bytes`` to do) in ``progress``: its own line where ``progress``
    shows drives (:class:`DrivesProgress`), else the drive named (:func:`begin_drive`) and its bytes counted in the
    total. Call it from the drive's own thread; with several drives at once ``progress`` must be a
    :class:`DrivesProgress` (see :func:`serialized`)."""
    if isinstance(progress, DrivesProgress):
        return progress.open_drive(label, total_bytes)
    begin_drive(progress, label)
    return _Counted(progress)


class _Counted:
    """A drive's bytes counted in the total of a progress that does not show drives one by one."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def advance(self, done_bytes: int) -> None:
        self.progress.advance(done_bytes)

    def close(self) -> None:
        pass


def serialized(progress: Progress) -> DrivesProgress:
    """``progress`` made safe for several drives at once: a :class:`DrivesProgress` as it is; any other behind one
    lock (its ``drive(label)`` told as each drive begins, as when drives are worked on one after another)."""
    if isinstance(progress, DrivesProgress):
        return progress
    return _Serialized(progress)


class _Serialized:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.lock = threading.Lock()

    def start(self, total_bytes: int) -> None:
        with self.lock:
            self.progress.start(total_bytes)

    def advance(self, done_bytes: int) -> None:
        with self.lock:
            self.progress.advance(done_bytes)

    def close(self) -> None:
        with self.lock:
            self.progress.close()

    def open_drive(self, label: str, total_bytes: int) -> DriveProgress:
        with self.lock:
            begin_drive(self.progress, label)
        return _Counted(self)


class NullProgress:
    """Reports nothing."""

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass

    def close(self) -> None:
        pass
