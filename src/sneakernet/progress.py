"""A small progress protocol, so the library reports progress without depending on tqdm.

The command line passes a tqdm-backed implementation (cli.py); library users pass their own or nothing.
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


class NullProgress:
    """Reports nothing."""

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass

    def close(self) -> None:
        pass
