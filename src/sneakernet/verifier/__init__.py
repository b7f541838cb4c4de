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
from collections.abc import Callable, Sequence

from ..drive import DriveReader
from ..errors import SneakernetError, UsageError
from ..progress import NullProgress, Progress
from .catalog import normalise_fingerprint
from .data import HashAhead
from .drive import DriveVerifier, Shared
from .report import DamagedChunk, DriveReport, Kind, Problem, Status, VerifyReport
from .settings import Mode, Settings
from .shipment import check_pieces, check_same_shipment
from .state import StateDir, StateStore, VerifyState, default_state_dir

__all__ = [
    "DamagedChunk",
    "DriveReport",
    "DriveVerifier",
    "Kind",
    "Mode",
    "Problem",
    "Settings",
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
) -> VerifyReport:
    """Check each drive in ``drives`` alone, read-only, and report what is wrong and which paths it hurts.

    Raises :class:`~sneakernet.errors.UsageError` for bad arguments; damage is never raised, it is reported.
    ``state_dir`` keeps progress for resuming: a directory, or a :class:`StateStore` (None: keep none).
    ``on_drive`` is called with each drive's report as soon as that drive is checked, in the order given (the
    drives of another shipment among them are only known at the end: the returned report has that problem,
    reports already handed over get it added).
    """
    if not drives:
        raise UsageError("give at least one drive directory to verify")
    if sample_percent is not None and not 0 < sample_percent <= 100:
        raise UsageError(f"--sample takes a percentage above 0 and at most 100, not {sample_percent}")
    if sample_percent is not None and mode == Mode.QUICK:
        raise UsageError("--sample and --quick do not go together: --quick reads no data")
    wanted = normalise_fingerprint(expected_fingerprint) if expected_fingerprint else None
    progress = progress or NullProgress()
    workers = threads or os.cpu_count() or 1
    progress.start(sum(_stored_bytes(path) for path in drives) if mode != Mode.QUICK else 0)
    reports: list[DriveReport] = []

    def done(report: DriveReport) -> None:
        reports.append(report)
        if on_drive is not None:
            on_drive(report)

    store = StateDir(os.fspath(state_dir)) if isinstance(state_dir, str | os.PathLike) else state_dir
    settings = Settings(mode, wanted, sample_percent, seed, store, restart, workers, catalog)
    shared = Shared(progress, HashAhead(workers))
    try:
        verifiers = [DriveVerifier(path, settings, shared) for path in drives]
        for verifier in verifiers:
            verifier.hash_ahead()
        # The structure of each drive is checked before the contents of the one before it: the main thread
        # parses a manifest while the segments it waits for are still being hashed ahead.
        waiting: DriveVerifier | None = None
        for verifier in verifiers:
            whole = verifier.check_structure()
            if waiting is not None:
                done(waiting.check_contents())
            waiting = verifier if whole else None
            if not whole:
                done(verifier.report)
        if waiting is not None:
            done(waiting.check_contents())
        # Known only once every drive is read: the reports already shown get it added (see on_drive).
        check_pieces(shared.db, reports)
    finally:
        shared.close()
        progress.close()
    check_same_shipment(reports)
    return VerifyReport(reports)


def _stored_bytes(path: str) -> int:
    try:
        return DriveReader(path).label.stored_bytes
    except SneakernetError:
        return 0
