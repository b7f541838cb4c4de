"""One drive's verification: its structure (structure.py), then its contents as the mode asks (data.py), then
the paths any damage hurts (damage.py), all into one :class:`DriveReport`."""

from __future__ import annotations

import os
import sqlite3

from ..bundle import DriveReader
from ..errors import SneakernetError
from ..format import SEGMENT_NAME, SEGMENTS_DIR, DriveLabel, FileRecord, HardlinkRecord, show_path
from ..progress import Progress
from .catalog import Catalogs
from .damage import chunk_ranges, hurt_paths
from .data import DataCheck, HashAhead
from .report import DriveReport
from .settings import Mode, Settings
from .shipment import temporary_database
from .structure import StructureCheck


class DriveVerifier:
    """Runs every check on one drive and fills a :class:`DriveReport`."""

    def __init__(
        self,
        path: str,
        settings: Settings,
        progress: Progress,
    ) -> None:
        self.path = path
        self.settings = settings
        self.progress = progress
        self.report = DriveReport(path=path, mode=settings.mode.value, sample_percent=settings.sample_percent)
        #: What hashes this drive's segment files ahead, if anything does (see :meth:`hash_ahead`).
        self.ahead: HashAhead | None = None
        #: Catalogs parsed whole in this run: shared by the verifiers of one run (see catalog.Catalogs).
        self.catalogs: Catalogs = {}
        #: A temporary on-disk database (SQLite's own temporary file) for the set-wise checks: duplicate paths,
        #: and the catalog against the manifest. Shared by the verifiers of one run.
        self.db: sqlite3.Connection | None = None
        self.structure: StructureCheck | None = None

    def run(self) -> DriveReport:
        if self.check_structure():
            self.check_contents()
        return self.report

    def check_structure(self) -> bool:
        """Everything but the segments' contents (see StructureCheck.run): whether the contents are to be checked."""
        if self.db is None:
            self.db = temporary_database()
        self.structure = StructureCheck(self.path, self.report, self.settings, self.catalogs, self.db)
        return self.structure.run()

    def check_contents(self) -> None:
        """The segments' contents as the mode asks, and the paths any damage hurts."""
        structure = self.structure
        assert structure is not None and structure.reader is not None
        if self.settings.mode != Mode.QUICK:
            DataCheck(
                structure.reader, structure.manifest, structure.segment_sizes, self.report, self.settings,
                self.progress, self.ahead,
            ).run()  # fmt: skip
        if self.report.damaged_chunks:
            self._map_damage_to_paths(structure)

    def _map_damage_to_paths(self, structure: StructureCheck) -> None:
        """A pass over the file records: every piece over a damaged chunk names its path (and its hard links)."""
        assert structure.reader is not None
        damaged = sorted(self.report.damaged_chunks, key=lambda c: c.id)
        ranges = chunk_ranges(structure.manifest, [c.id for c in damaged])
        records = structure.reader.records(only=(FileRecord.TYPE, HardlinkRecord.TYPE))
        for index, path in hurt_paths(ranges, structure.manifest, records):
            damaged[index].paths.append(show_path(path))

    def hash_ahead(self, ahead: HashAhead) -> None:
        """Have ``ahead`` hash this drive's segment files while the drives before it and its manifest are
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
        self.ahead = ahead
        for name in names:
            if SEGMENT_NAME.fullmatch(name):
                ahead.add(self.path, name)

    def _may_resume(self, label: DriveLabel) -> bool:
        """Whether a saved progress of this drive (of any manifest or mode) is in the state directory."""
        if self.settings.state_dir is None or self.settings.restart:
            return False
        try:
            saved = os.listdir(self.settings.state_dir)
        except OSError:
            return False
        return any(name.startswith(f"{label.shipment}-{label.drive:04d}-") for name in saved)
