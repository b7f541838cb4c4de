"""Verifying drives on arrival: ``sneakernet.verify()``.

Each drive is checked alone, offline and strictly read-only (nothing is ever written on a drive): its label,
manifest, segments, B3SUMS and catalog, then, by mode, the stored bytes of every chunk (default), a random sample
of segments (``sample``), decompressed bytes and whole-file hashes too (``deep``), or sizes and manifests only
(``quick``). Everything found is collected as typed :class:`Problem` records and mapped to the shipment paths it
hurts; the verdict comes once, at the end (bagit's ``validate`` works the same way).

Memory stays bounded: the manifest is streamed (two or three times), the only per-chunk state is one 8-byte
raw offset per chunk on the drive, and what needs every path at once (duplicates, the catalog against the manifest:
validate.py) is done set-wise in a temporary SQLite file. Progress is kept off the drive in a state file
(:class:`VerifyState`), so an interrupted verify resumes at the last finished segment.

The package: report.py (what is found), drive.py (one drive: structure.py, catalog.py, data.py, damage.py),
shipment.py (what is checked across the drives of a run), state.py (the saved progress); this module runs them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..drive import DriveReader, DriveSet, GivenDrive, drive_queues
from ..drive.role import is_parity_drive
from ..errors import SneakernetError, UsageError
from ..format import DriveLabel
from ..io.store import DriveStore, LocalStore
from ..progress import NullProgress, Progress, serialized
from .catalog import normalise_fingerprint
from .drive import DriveVerifier, Shared
from .report import DamagedChunk, DriveReport, Kind, Problem, Status, VerifyReport
from .run import Run, device_of
from .settings import Mode, Settings
from .shipment import check_same_shipment
from .state import StateDir, StateStore, VerifyState, default_state_dir

if TYPE_CHECKING:
    from ..drive.keys import Unlock

__all__ = [
    "DamagedChunk",
    "DriveReport",
    "DriveVerifier",
    "Kind",
    "Mode",
    "Problem",
    "Settings",
    "Shared",
    "StateDir",
    "StateStore",
    "Status",
    "VerifyReport",
    "VerifyState",
    "default_state_dir",
    "normalise_fingerprint",
    "verify",
]


def verify(
    drives: Sequence[str],
    *,
    mode: Mode = Mode.FULL,
    expected_fingerprint: str | None = None,
    sample_percent: float | None = None,
    seed: int | None = None,
    state_dir: str | os.PathLike[str] | StateStore | None = None,
    restart: bool = False,
    threads: int = 0,
    progress: Progress | None = None,
    catalog: str | None = None,
    on_drive: Callable[[DriveReport], None] | None = None,
    at_once: int | None = None,
    open_store: Callable[[str], DriveStore] | None = None,
    key: Unlock | None = None,
) -> VerifyReport:
    """Check each drive in ``drives`` alone, read-only, and report what is wrong and which paths it hurts.

    Raises :class:`~sneakernet.errors.UsageError` for bad arguments; damage is never raised, it is reported.
    ``state_dir`` keeps progress for resuming: a directory, or a :class:`StateStore` (None: keep none).
    Drives on different devices are checked at the same time, those on one device one after another (see
    run.py); ``at_once`` N checks up to N at once whatever their devices. ``on_drive`` is called with each drive's
    report as soon as that drive is checked, on the calling thread (a drive of another shipment among them, or a
    piece of a file that does not fit its piece on another drive, is only known at the end: the returned report
    has that problem, reports already handed over get it added). The returned report lists the drives in the
    order given, and what of the shipment was given (:class:`~sneakernet.drive.DriveSet`). ``open_store`` gives the
    store (io/store.py) each drive is read through: its local directory unless a test hands in one that fails.

    An encrypted shipment's drives (docs/format.md 19.8.4) are checked without ``key`` as far as their stored bytes
    go (every segment, chunk, sealed file and the catalog against the fingerprint; names and contents left unread,
    the report says so); with it (an :class:`~sneakernet.drive.keys.Unlock`), as any drive, ``deep`` included. A
    ``key`` that opens no drive given is :class:`~sneakernet.errors.WrongKey`, raised before anything is checked.
    """
    open_store = open_store or LocalStore
    if not drives:
        raise UsageError("give at least one drive directory to verify")
    if sample_percent is not None and not 0 < sample_percent <= 100:
        raise UsageError(f"--sample takes a percentage above 0 and at most 100, not {sample_percent}")
    if sample_percent is not None and mode == Mode.QUICK:
        raise UsageError("--sample and --quick do not go together: --quick reads no data")
    if at_once is not None and at_once < 1:
        raise UsageError(f"--at-once takes a number of drives of at least 1, not {at_once}")
    wanted = normalise_fingerprint(expected_fingerprint) if expected_fingerprint else None
    started = time.monotonic()
    shown = serialized(progress or NullProgress())
    workers = threads or os.cpu_count() or 1
    labels = [_label(path, open_store) for path in drives]
    _refuse_keyless_deep(mode, key, drives, labels, open_store)
    given = [GivenDrive.of(path, label) for path, label in zip(drives, labels, strict=True)]
    queues = drive_queues(given, [device_of(path) for path in drives], at_once)
    shown.start(sum(label.stored_bytes for label in labels if label) if mode != Mode.QUICK else 0)
    store = StateDir(os.fspath(state_dir)) if isinstance(state_dir, str | os.PathLike) else state_dir
    settings = Settings(
        mode, wanted, sample_percent, seed, store, restart, workers, catalog, open_store=open_store, key=key
    )
    run = Run(drives, settings, shown, len(queues))
    try:
        reports = run.verify(queues, on_drive or (lambda report: None))
        # Known only once every drive is read: the reports already shown get it added (see on_drive).
        run.shared.pieces.check(reports)
    finally:
        run.close()
        shown.close()
    check_same_shipment(reports)
    recovery = None
    if run.shared.parity:
        # Parity's verdict, and its record types, are imported only for a shipment given with parity drives.
        from .parity import shipment_verdict

        recovery = shipment_verdict(reports, run.shared.parity, catalog, open_store)
    seconds = time.monotonic() - started
    return VerifyReport(reports, DriveSet.build(given, run.listings), round(seconds, 3), recovery)


def _label(path: str, open_store: Callable[[str], DriveStore]) -> DriveLabel | None:
    try:
        if is_parity_drive(path):
            from ..drive.parity.reader import ParityDriveReader

            return ParityDriveReader(path, open_store(path)).label
        return DriveReader(path, open_store(path), public=True).label
    except (SneakernetError, OSError):
        return None


def _refuse_keyless_deep(
    mode: Mode,
    key: Unlock | None,
    drives: Sequence[str],
    labels: list[DriveLabel | None],
    open_store: Callable[[str], DriveStore],
) -> None:
    """--deep decodes chunks, which an encrypted shipment's need its key for; and a key given must open its drives
    (a wrong one is one line, before hours of hashing)."""
    encrypted = [path for path, label in zip(drives, labels, strict=True) if label is not None and label.encrypted]
    if mode == Mode.DEEP and key is None and encrypted:
        raise UsageError(
            f"{encrypted[0]} is a drive of an encrypted shipment: --deep decodes its chunks, which needs its key "
            "(--identity FILE or --passphrase-file FILE); without, verify checks every stored byte"
        )
    if key is not None and encrypted:
        DriveReader(encrypted[0], open_store(encrypted[0]), key=key)  # WrongKey, or the identity kept in key
