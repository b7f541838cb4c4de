"""What a run of verify asks of each drive it checks: the same for every drive, frozen, plain data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ..drive.reader import HASH_SLICE
from ..io.store import DriveStore, LocalStore
from .state import StateStore

if TYPE_CHECKING:
    from ..drive.keys import Unlock


class Mode(str, Enum):
    QUICK = "quick"
    FULL = "full"
    DEEP = "deep"


@dataclass(frozen=True)
class Settings:
    """The checks asked for (checked by ``verify()`` before any drive is read)."""

    mode: Mode = Mode.FULL
    #: The fingerprint the drives must be of, as lowercase hex (at least MIN_FINGERPRINT_DIGITS digits).
    expected_fingerprint: str | None = None
    #: --sample: the percentage of segments to read (None: all of them).
    sample_percent: float | None = None
    seed: int | None = None
    #: Where the progress of the data pass is kept for resuming (None: it is not kept).
    state: StateStore | None = None
    #: Start over, forgetting a saved progress.
    restart: bool = False
    #: Threads for hashing and decoding.
    workers: int = 1
    #: The shipment's catalog, for a drive that carries none (--catalog).
    catalog: str | None = None
    #: Bytes of a segment mapped at a time while it is hashed whole (drive.reader.HASH_SLICE; smaller when many
    #: drives are checked at once, so that their mapped pages stay bounded: see run.py).
    hash_slice: int = HASH_SLICE
    #: The store each drive is read through, from its path (io/store.py; tests hand in stores that fail).
    open_store: Callable[[str], DriveStore] = LocalStore
    #: What opens an encrypted shipment (--identity, a passphrase); None: its drives are checked without it, every
    #: stored byte against its recorded BLAKE3, names and contents left unread (docs/format.md 19.8.4).
    key: Unlock | None = field(default=None, repr=False)
