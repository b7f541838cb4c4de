"""One drive's verification, the unit of work of a run: its structure (structure.py), then its contents as the
mode asks (data.py), then the paths any damage hurts (damage.py), all into the :class:`DriveReport` it returns.
A drive's check shares nothing with the others of its run but the explicit, thread-safe services of
:class:`Shared`, and with the drives checked before it on its thread the :class:`Scratch` of that thread."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..drive import DriveReader, ListedDrive
from ..drive.role import is_parity_drive
from ..errors import FormatError, SneakernetError
from ..format import SEGMENT_NAME, SEGMENTS_DIR, DriveLabel, FileRecord, HardlinkRecord, show_path
from ..progress import DriveProgress, DrivesProgress, open_drive
from .catalog import CatalogMemo
from .damage import chunk_ranges, hurt_paths
from .data import DataCheck, HashAhead
from .report import DriveReport, Kind, Status
from .settings import Mode, Settings
from .shipment import PieceLog, temporary_database
from .structure import StructureCheck

if TYPE_CHECKING:
    from .parity import ParityFacts

log = logging.getLogger(__name__)


@dataclass
class Shared:
    """What the drive checks of one run share, and all they share, each safe to use from the drives' threads: the
    progress (one line per drive, see sneakernet.progress.DrivesProgress) and the pieces of files spanning
    drives (checked across the drives at the end)."""

    progress: DrivesProgress
    pieces: PieceLog = field(default_factory=PieceLog)
    #: What each parity drive checked found, for the shipment's verdict (appended from the drives' threads).
    parity: list[ParityFacts] = field(default_factory=list)

    def close(self) -> None:
        self.pieces.close()


@dataclass
class Scratch:
    """What the drive checks on one thread share, used from that thread only (sqlite3 refuses others)."""

    #: Hashes the segment files of the thread's drives to come while the manifests before them are checked.
    ahead: HashAhead
    catalogs: CatalogMemo = field(default_factory=CatalogMemo)
    #: The set-wise checks' database: duplicate paths, the catalog against the manifest.
    db: sqlite3.Connection = field(default_factory=temporary_database)

    def close(self) -> None:
        self.ahead.close()
        self.db.close()


class DriveVerifier:
    """Runs every check on one drive and fills a :class:`DriveReport`."""

    def __init__(self, path: str, settings: Settings, shared: Shared, scratch: Scratch) -> None:
        self.path = path
        self.settings = settings
        self.shared = shared
        self.scratch = scratch
        self.report = DriveReport(path=path, mode=settings.mode.value, sample_percent=settings.sample_percent)
        #: When the check of the drive began, and the bytes it read (the rate in the report: a resumed check's
        #: bytes checked before are not counted).
        self.started: float | None = None
        self.read_bytes = 0
        #: Whether the drive's segment files are being hashed ahead (see :meth:`hash_ahead`).
        self.hashing_ahead = False
        self.structure: StructureCheck | None = None
        #: Whether the contents are to be checked, once the structure is (see :meth:`check_structure`).
        self.whole = False

    def run(self) -> DriveReport:
        """The whole check of the drive, its structure then its contents."""
        self.check_structure()
        return self.check_contents()

    def check_structure(self) -> bool:
        """Everything but the segments' contents (see StructureCheck.run): whether the contents are to be checked.
        A drive that cannot be read to the end of it (an I/O error) is :meth:`unreadable`. A parity drive is checked
        whole here (parity.py), its facts kept for the shipment's verdict."""
        log.info("verifying %s (%s)", self.path, self.settings.mode.value)
        self.started = time.monotonic()
        if is_parity_drive(self.path):
            self._check_parity()
            return False
        scratch = self.scratch
        self.structure = StructureCheck(
            self.path, self.report, self.settings, scratch.catalogs, scratch.db, self.shared.pieces
        )
        try:
            self.whole = self.structure.run()
        except (OSError, FormatError) as exc:
            self.unreadable(exc)
        if not self.whole:
            self._finish()
        return self.whole

    def check_contents(self) -> DriveReport:
        """The segments' contents as the mode asks, and the paths any damage hurts (nothing when the structure
        says there is nothing to check): the drive's report, finished. A drive whose reading fails midway (an I/O
        error, a drive pulled out) is :meth:`unreadable`: the drives checked beside it go on."""
        structure = self.structure
        if structure is None or structure.reader is None or not self.whole:
            return self.report
        total = structure.reader.label.stored_bytes if self.settings.mode != Mode.QUICK else 0
        progress = _Counted(self, open_drive(self.shared.progress, self.report.label or self._name(), total))
        try:
            if self.settings.mode != Mode.QUICK:
                ahead = self.scratch.ahead if self.hashing_ahead else None
                DataCheck(
                    structure.reader, structure.manifest, structure.segment_sizes, self.report, self.settings,
                    progress, ahead,
                ).run()  # fmt: skip
            if self.report.damaged_chunks:
                self._map_damage_to_paths(structure)
        except (OSError, FormatError) as exc:
            self.unreadable(exc)
        finally:
            progress.close()
            structure.reader.close()  # the segments it mapped, also when the check stopped midway
        self._finish()
        report = self.report
        log.info("%s: %s, %d bytes checked", self.path, report.status, report.bytes_checked)
        return report

    def _check_parity(self) -> None:
        from .parity import ParityDriveCheck  # parity drives' checks and types: imported for a parity drive only

        total = _parity_bytes(self.path, self.settings) if self.settings.mode != Mode.QUICK else 0
        progress = _Counted(self, open_drive(self.shared.progress, self._name(), total))
        try:
            facts = ParityDriveCheck(self.path, self.report, self.settings, progress).run()
            if facts is not None:
                self.shared.parity.append(facts)
        except (OSError, FormatError) as exc:
            self.unreadable(exc)
        finally:
            progress.close()
        self._finish()

    def unreadable(self, exc: OSError | FormatError) -> None:
        """The check of the drive stopped on ``exc``: the drive is ``unreadable``, whatever was found before."""
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        self.report.add(
            Kind.UNREADABLE,
            f"the check of this drive stopped: {why}; what it found before is listed, and a run of verify once "
            "the drive reads again goes on from its last finished segment",
            status=Status.UNREADABLE,
        )
        self.report.status = Status.UNREADABLE.value  # outranks what the check found before it stopped
        self.whole = False

    def listed(self) -> list[ListedDrive]:
        """The drives of the shipment its catalog lists, when the catalog was read and is sound (else none)."""
        catalog = self.structure.catalog if self.structure is not None else None
        if catalog is None or catalog.header is None or any(p.kind == Kind.CATALOG for p in self.report.problems):
            return []
        return [ListedDrive.of(record) for record in catalog.drives]

    def _name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))

    def _finish(self) -> None:
        """The drive's check is over: its time and rate in the report, and nothing more of it hashed ahead (an 8
        TB drive whose manifest is damaged must not be hashed ahead for hours before the next drive)."""
        if self.started is not None:
            seconds = time.monotonic() - self.started
            self.report.seconds = round(seconds, 3)
            self.report.bytes_per_second = round(self.read_bytes / seconds) if seconds > 0 else 0
        if self.hashing_ahead:
            self.scratch.ahead.forget(self.path)

    def _map_damage_to_paths(self, structure: StructureCheck) -> None:
        """A pass over the file records: every piece over a damaged chunk names its path (and its hard links)."""
        assert structure.reader is not None
        damaged = sorted(self.report.damaged_chunks, key=lambda c: c.id)
        ranges = chunk_ranges(structure.manifest, [c.id for c in damaged])
        records = structure.reader.records(only=(FileRecord.TYPE, HardlinkRecord.TYPE))
        for index, path in hurt_paths(ranges, structure.manifest, records):
            damaged[index].paths.append(show_path(path))

    def hash_ahead(self) -> None:
        """Have the run's HashAhead hash this drive's segment files while the drives before it and its manifest are
        checked: for a full check of every segment (not --quick, --deep or --sample, which read other things
        or fewer segments), and not when a saved progress of this drive may be resumed (its finished segments
        are not to be read again)."""
        if self.settings.mode != Mode.FULL or self.settings.sample_percent is not None:
            return
        try:
            reader = DriveReader(self.path, self.settings.open_store(self.path), public=True)
        except (SneakernetError, OSError):
            return  # run() says what is wrong with the drive
        if self._may_resume(reader.label):
            return
        try:
            names = [f"{SEGMENTS_DIR}/{name}" for name in reader.list(SEGMENTS_DIR)]
        except OSError:
            return
        self.hashing_ahead = True
        for name in names:
            if SEGMENT_NAME.fullmatch(name):
                self.scratch.ahead.add(reader, name)

    def _may_resume(self, label: DriveLabel) -> bool:
        """Whether a saved progress of this drive (of any manifest or mode) is kept."""
        store = self.settings.state
        if store is None or self.settings.restart:
            return False
        return store.holds(f"{label.shipment}-{label.drive:04d}-")


def _parity_bytes(path: str, settings: Settings) -> int:
    """A parity drive's stored bytes (for its progress line), 0 when its drive.json does not read."""
    from ..drive.parity.reader import ParityDriveReader

    try:
        return ParityDriveReader(path, settings.open_store(path)).label.stored_bytes
    except (SneakernetError, OSError):
        return 0


class _Counted:
    """A drive's progress that also counts the bytes read for the drive's rate."""

    def __init__(self, verifier: DriveVerifier, progress: DriveProgress) -> None:
        self.verifier = verifier
        self.progress = progress

    def advance(self, done_bytes: int) -> None:
        self.verifier.read_bytes += done_bytes
        self.progress.advance(done_bytes)

    def close(self) -> None:
        self.progress.close()
