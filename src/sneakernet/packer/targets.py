"""Where a pack's drives go: ``OUT/drive-NNNN``, given mounted drives, or one mount point swapped in turn."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..drive import FILESYSTEM_ENTRIES, SHIPMENT_NAMES, holds_shipment, refuse_non_directory
from ..errors import DestinationError, UsageError
from ..format import CATALOG_NAME, DRIVE_LABEL_NAME, drive_label
from ..space.budget import default_reserve
from ..units import counted
from .resume import out_drive_paths


@dataclass(frozen=True)
class DriveSlot:
    """Where drive ``index`` goes and how many bytes its directory may take on disk."""

    index: int
    path: str
    capacity: int
    #: The drive's size before the reserve: --drive-size, or a mounted drive's free space when smaller.
    size: int = 0


#: Asked for the next drive at the one mount point of a swapping pack: ``(drive number, problem with what is
#: mounted now or None)``; it returns once the user (or a hook command) has put the next drive in place, or raises
#: to stop.
NextDrive = Callable[[int, "str | None"], None]


class DriveTargets:
    """The drives to fill: ``OUT/drive-NNNN`` for as many as needed, a given list of mounted drives, or one mount
    point where drive after drive is swapped in (``next_drive``)."""

    def __init__(
        self,
        out: str | None,
        drives: Sequence[str],
        drive_size: int | None,
        reserve: int | None,
        resume: bool = False,
        next_drive: NextDrive | None = None,
    ) -> None:
        if bool(out) == bool(drives):
            raise UsageError("give either --out DIR or at least one --drive PATH")
        if next_drive is not None and (len(drives) != 1 or resume):
            raise UsageError("swapping drives needs exactly one --drive mount point, and cannot --resume")
        self.next_drive = next_drive
        self._swapped_in = 1
        #: Seconds spent in ``next_drive`` (a person swapping drives): not packing time, so not in the rate.
        self.waited = 0.0
        if out and drive_size is None:
            raise UsageError("--out needs --drive-size, the size of the drives the shipment will go on")
        self.out = out
        self.drives = list(drives)
        self.drive_size = drive_size
        self.reserve = reserve
        self.resume = resume
        if out:
            refuse_non_directory(out, "output")
            if not resume and os.path.isdir(out) and any(n.startswith("drive-") for n in os.listdir(out)):
                raise DestinationError(_holds_shipment_message(f"output {out}", list(out_drive_paths(out))))
        for number, path in enumerate(self.drives):
            if not os.path.isdir(path):
                raise DestinationError(f"drive {path} is not a directory: mount the drive and give its path")
            if holds_shipment(path) and not resume:
                raise DestinationError(_holds_shipment_message(f"drive {path}", self.drives[: number + 1]))
            others = sorted(set(os.listdir(path)) - FILESYSTEM_ENTRIES - set(SHIPMENT_NAMES))
            if others and not holds_shipment(path):
                raise DestinationError(
                    f"drive {path} is not empty (it holds {', '.join(others[:3])}): give an empty drive, "
                    "or a new directory on it"
                )
            if not os.access(path, os.W_OK):
                raise DestinationError(f"drive {path} is not writable")
        if len(set(map(os.path.realpath, self.drives))) != len(self.drives):
            raise UsageError("the same drive is given twice")

    def drive_paths(self) -> Iterator[str]:
        """The drives in order: the given ones, or those under the output directory."""
        return iter(self.drives) if self.drives else out_drive_paths(self.out or "")

    def _reserve_for(self, size: int) -> int:
        return self.reserve if self.reserve is not None else default_reserve(size)

    def slot(self, index: int, kept: int = 0) -> DriveSlot | None:
        """Drive ``index`` (1-based), or None when the given drives are used up; ``kept`` bytes already on it
        stay there (a resumed pack's kept segments) and count as room."""
        if self.out:
            assert self.drive_size is not None
            path = os.path.join(self.out, drive_label(index))
            return DriveSlot(index, path, self.drive_size - self._reserve_for(self.drive_size), self.drive_size)
        if self.next_drive is not None:
            self._swap_in(index)
            path = self.drives[0]
        elif index > len(self.drives):
            return None
        else:
            path = self.drives[index - 1]
        free = shutil.disk_usage(path).free + kept
        size = min(free, self.drive_size) if self.drive_size else free
        return DriveSlot(index, path, size - self._reserve_for(size), size)

    def _swap_in(self, index: int) -> None:
        """Have drive ``index`` put in at the mount point: ask until an empty drive is there."""
        assert self.next_drive is not None
        if index <= self._swapped_in:
            return
        problem: str | None = None
        while True:
            asked = time.monotonic()
            self.next_drive(index, problem)
            self.waited += time.monotonic() - asked
            problem = self.not_ready(self.drives[0])
            if problem is None:
                self._swapped_in = index
                return

    @staticmethod
    def not_ready(path: str) -> str | None:
        """What keeps the drive at ``path`` from being filled (nothing mounted, not empty, not writable), or None."""
        if not os.path.isdir(path):
            return f"nothing is mounted at {path}"
        if holds_shipment(path):
            return f"the drive at {path} already holds (part of) a shipment: put in the next, empty drive"
        others = sorted(set(os.listdir(path)) - FILESYSTEM_ENTRIES)
        if others:
            return f"the drive at {path} is not empty (it holds {', '.join(others[:3])}): put in an empty drive"
        if not os.access(path, os.W_OK):
            return f"the drive at {path} is not writable"
        return None

    def known_slots(self) -> list[DriveSlot]:
        """The drives known before packing: all given drives, or the first drive of an output directory."""
        count = len(self.drives) if self.drives else 1
        return [slot for i in range(1, count + 1) if (slot := self.slot(i)) is not None]


def _holds_shipment_message(where: str, drives: list[str]) -> str:
    finished = [d for d in drives if os.path.exists(os.path.join(d, DRIVE_LABEL_NAME))]
    complete = bool(finished) and all(os.path.exists(os.path.join(d, CATALOG_NAME)) for d in finished)
    if complete and len(finished) == len(drives):
        return f"{where} already holds a shipment: choose an empty directory or drive"
    return (
        f"{where} holds an interrupted pack ({counted(len(finished), 'drive')} finished): run the same command with "
        "--resume to continue it, or empty it to start over"
    )
