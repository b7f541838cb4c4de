"""A small progress protocol, so the library reports progress without depending on tqdm.

The command line passes a tqdm-backed implementation (cli/progress.py); library users pass their own or nothing. Besides
the three methods of :class:`Progress`, an implementation may have ``drive(label)``, called when work on a drive
begins (the command line's bar names it); :func:`begin_drive` calls it only where it exists, so a progress object
written for the three methods keeps working.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total_bytes: int) -> None:
        """The work ahead, in bytes."""

    def advance(self, done_bytes: int) -> None:
        """``done_bytes`` more bytes are done."""

    def close(self) -> None:
        """The work is over (finished or not)."""


def begin_drive(progress: Progress, label: str) -> None:
    """Tell ``progress`` that work on drive ``label`` (``drive-0002``) begins, if it has a ``drive`` method."""
    drive = getattr(progress, "drive", None)
    if callable(drive):
        drive(label)


class NullProgress:
    """Reports nothing."""

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass

    def close(self) -> None:
        pass
