"""One drive's verification, the unit of work of a run: its structure (structure.py), then its contents as the
mode asks (data.py), then the paths any damage hurts (damage.py), all into the :class:`DriveReport` it returns.
A drive's check shares nothing with the others of its run but the explicit services of :class:`Shared`."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field

from ..drive import DriveReader
from ..errors import SneakernetError
from ..format import SEGMENT_NAME, SEGMENTS_DIR, DriveLabel, FileRecord, HardlinkRecord, show_path
from ..progress import Progress, begin_drive
from .catalog import CatalogMemo
from .damage import chunk_ranges, hurt_paths
from .data import DataCheck, HashAhead
from .report import DriveReport
from .settings import Mode, Settings
from .shipment import temporary_database
from .structure import StructureCheck

log = logging.getLogger(__name__)


@dataclass
class Shared:
    """What the drive checks of one run share, and all they share. The progress is told from the thread that
    checks drives; :class:`HashAhead` and :class:`CatalogMemo` are safe to use from several; the scratch
    database (shipment.temporary_database) is used from the thread that made it (sqlite3 refuses others)."""

    progress: Progress
    #: Hashes the segment files of the drives to come while the manifests before them are checked.
    ahead: HashAhead
    catalogs: CatalogMemo = field(default_factory=CatalogMemo)
    #: The set-wise checks' database: duplicate paths, the catalog against the manifest, pieces across drives.
    db: sqlite3.Connection = field(default_factory=temporary_database)

    def close(self) -> None:
        self.ahead.close()
        self.db.close()


class DriveVerifier:
    """Runs every check on one drive and fills a :class:`DriveReport`."""

    def __init__(self, path: str, settings: Settings, shared: Shared) -> None:
        self.path = path
        self.settings = settings
        self.shared = shared
        self.report = DriveReport(path=path, mode=settings.mode.value, sample_percent=settings.sample_percent)
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
        """Everything but the segments' contents (see StructureCheck.run): whether the contents are to be checked."""
        log.info("verifying %s (%s)", self.path, self.settings.mode.value)
        shared = self.shared
        self.structure = StructureCheck(self.path, self.report, self.settings, shared.catalogs, shared.db)
        self.whole = self.structure.run()
        if not self.whole:
            self._forget()
        return self.whole

    def check_contents(self) -> DriveReport:
        """The segments' contents as the mode asks, and the paths any damage hurts (nothing when the structure
        says there is nothing to check): the drive's report, finished."""
        structure = self.structure
        if structure is None or structure.reader is None or not self.whole:
            return self.report
        begin_drive(self.shared.progress, self.report.label or os.path.basename(self.path))
        if self.settings.mode != Mode.QUICK:
            ahead = self.shared.ahead if self.hashing_ahead else None
            DataCheck(
                structure.reader, structure.manifest, structure.segment_sizes, self.report, self.settings,
                self.shared.progress, ahead,
            ).run()  # fmt: skip
        if self.report.damaged_chunks:
            self._map_damage_to_paths(structure)
        self._forget()  # segment files the manifest does not list
        report = self.report
        log.info("%s: %s, %d bytes checked", self.path, report.status, report.bytes_checked)
        return report

    def _forget(self) -> None:
        """Nothing more of this drive is to be hashed ahead (its structure failed, or its check is over): an 8 TB
        drive whose manifest is damaged must not be hashed ahead for hours before the next drive."""
        if self.hashing_ahead:
            self.shared.ahead.forget(self.path)

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
            label = DriveReader(self.path).label
        except (SneakernetError, OSError):
            return  # run() says what is wrong with the drive
        if self._may_resume(label):
            return
        segments_dir = os.path.join(self.path, SEGMENTS_DIR)
        try:
            names = sorted(f"{SEGMENTS_DIR}/{name}" for name in os.listdir(segments_dir))
        except OSError:
            return
        self.hashing_ahead = True
        for name in names:
            if SEGMENT_NAME.fullmatch(name):
                self.shared.ahead.add(self.path, name)

    def _may_resume(self, label: DriveLabel) -> bool:
        """Whether a saved progress of this drive (of any manifest or mode) is kept."""
        store = self.settings.state
        if store is None or self.settings.restart:
            return False
        return store.holds(f"{label.shipment}-{label.drive:04d}-")
