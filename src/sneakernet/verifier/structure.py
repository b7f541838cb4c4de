"""The structure of one drive: everything but the segments' contents. Its label, its catalog (catalog.py), one
streaming pass over its manifest (every record checked, validate.py, and the chunk map built that places file
pieces on the drive), its segment files' presence and sizes, the files that are not part of it, and B3SUMS."""

from __future__ import annotations

import dataclasses
import sqlite3
import stat
from collections.abc import Iterator

import blake3

from ..drive import FILESYSTEM_ENTRIES, ChunkMap, DriveReader, file_kind
from ..errors import CryptoError, FormatError, NotADrive, UnfinishedDrive, UnsupportedVersion
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    INDEX_NAME,
    KEYS_DIR,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    SEALED_CATALOG_NAME,
    SEGMENTS_DIR,
    CatalogDrive,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    SealedRecord,
    SegmentRecord,
    SymlinkRecord,
)
from ..format.sealed import PublicChunk
from ..io.store import DriveStore
from ..validate import LISTED_PROBLEMS, CatalogIndex, ManifestCheck, Seen, seen_of
from .catalog import CatalogCheck, CatalogMemo
from .report import DriveReport, Kind, Status
from .settings import Settings
from .shipment import PieceLog


class StructureCheck:
    """Checks the structure of the drive at ``path`` into ``report``; what it learns (the reader, the chunk map,
    the segment files' sizes) is what the data pass reads by."""

    def __init__(
        self,
        path: str,
        report: DriveReport,
        settings: Settings,
        catalogs: CatalogMemo,
        db: sqlite3.Connection,
        pieces: PieceLog,
    ) -> None:
        self.path = path
        self.report = report
        self.settings = settings
        #: Catalogs parsed whole by the drive checks of this thread (see catalog.CatalogMemo).
        self.catalogs = catalogs
        #: The set-wise checks' database (see shipment.temporary_database) of the drive checks of this thread.
        self.db = db
        #: The pieces of files spanning drives, of every drive of the run (see shipment.PieceLog).
        self.pieces = pieces
        self.reader: DriveReader | None = None
        self.catalog: CatalogCheck | None = None
        self.manifest = ChunkMap()
        #: Sizes of the segment files on the drive, by name (missing ones are absent).
        self.segment_sizes: dict[str, int] = {}
        #: Record problems of the manifest not listed one by one (beyond LISTED_PROBLEMS).
        self.unlisted = 0
        #: An encrypted drive's sealed and key files, as its public manifest pins them, by name.
        self.sealed: dict[str, SealedRecord] = {}

    def run(self) -> bool:
        """Everything but the segments' contents: label, catalog, manifest, segment files, B3SUMS. Whether the
        contents are to be checked too (not when the drive is not one, is unfinished or of another shipment)."""
        report = self.report
        store = self.settings.open_store(self.path)
        try:
            self.reader = self._open(store)
        except NotADrive as exc:
            report.add(Kind.NOT_A_DRIVE, str(exc), status=Status.NOT_A_DRIVE)
            return False
        except UnsupportedVersion as exc:
            report.add(Kind.LABEL, str(exc), status=Status.NOT_A_DRIVE)
            return False
        except UnfinishedDrive as exc:
            report.add(Kind.UNFINISHED, str(exc), status=Status.UNFINISHED)
            self._check_unexpected(store, set())
            return False
        except FormatError as exc:
            report.add(Kind.LABEL, f"{DRIVE_LABEL_NAME} is damaged: {exc}")
            return False
        label = self.reader.label
        report.label, report.drive, report.shipment = label.label, label.drive, label.shipment
        self.catalog = catalog = CatalogCheck(self.reader, report, self.settings, self.catalogs, self.db)
        catalog.read(label)
        if not self._check_manifest():
            return False
        label = self.reader.label  # as the catalog vouches for it, when drive.json was damaged
        if catalog.header is not None and catalog.header.shipment != label.shipment:
            report.add(
                Kind.OTHER_SHIPMENT,
                f"this drive is from shipment {label.shipment}, its catalog from {catalog.header.shipment}",
                status=Status.WRONG_SHIPMENT,
            )
            return False
        catalog.check_against_drive(label)
        self._check_label(label)
        self._check_segment_files()
        if label.encrypted:
            self._check_sealed()
        self._check_unexpected(self.reader.store, set(self.manifest.segments))
        self._check_checksums(label)
        return True

    def _open(self, store: DriveStore) -> DriveReader:
        """The drive's reader: an encrypted drive's with the key given, else its public side (docs/format.md
        19.8.4), the report saying what that leaves unread."""
        key = self.settings.key
        reader: DriveReader | None = None
        if key is not None:
            try:
                reader = DriveReader(self.path, store, key=key)
            except CryptoError as exc:  # another shipment's drive among those the key opens: checked without
                self.report.notes.append(f"{exc}: checked without the key")
        if reader is None:
            reader = DriveReader(self.path, store, public=True)
        if reader.encrypted and reader.identity is None:
            self.report.notes.append(
                "an encrypted shipment's drive, checked without its key: every stored byte against its BLAKE3; "
                "names and contents need the key (--identity FILE), and damage is named by chunk and segment only"
            )
        return reader

    def _check_manifest(self, retried: bool = False) -> bool:
        """One pass over the manifest: its structure, hash, and the chunk map; False when it cannot be trusted."""
        assert self.reader is not None and self.catalog is not None
        check = ManifestCheck(self.catalog.lanes())
        self.unlisted = 0
        index = CatalogIndex(self.db)  # this drive's paths only: no catalog table needed
        bad = [0]  # records refused: they are not compared with the catalog (nothing hostile goes to SQLite)

        def entries() -> Iterator[Seen]:
            assert self.reader is not None
            for record in self.reader.records():
                problems = check.check(record)
                for problem in problems:
                    self._record_problem(problem)
                bad[0] += bool(problems)
                if isinstance(record, ChunkRecord | PublicChunk):
                    self.manifest.add_chunk(record)
                elif isinstance(record, SealedRecord):
                    self.sealed[record.name] = record
                elif isinstance(record, FileRecord):
                    self.manifest.piece_range(record)  # a piece must lie within this drive's chunks
                    if not problems and (record.offset or not record.final):
                        self.pieces.note(self.reader.label, record)
                elif isinstance(record, SegmentRecord):
                    self.manifest.segments[record.name] = record
                elif isinstance(record, ManifestHeader):
                    self.manifest.header = record
                if not problems and isinstance(record, FileRecord | DirRecord | SymlinkRecord | HardlinkRecord):
                    seen = seen_of(record)
                    if seen is not None:
                        yield seen

        try:
            # Paths twice on the drive, or inside a path that is not a directory: set-wise, on disk.
            duplicates = list(index.load_seen(entries()))
            for problem in [*duplicates, *check.finish()]:
                self._record_problem(problem)
            self.catalog.cross_check(not duplicates and not bad[0])
        except FormatError as exc:
            vouched = self.catalog.vouched_drive()
            if vouched is not None and not retried and self._label_differs(vouched):
                # The manifest is one the catalog names: it is drive.json that is wrong. The drive is checked as
                # the catalog describes it (its number, shipment and manifest hash).
                label = self.reader.label
                self.report.add(
                    Kind.LABEL, f"{DRIVE_LABEL_NAME} is damaged: it does not describe the manifest it names"
                )
                self.reader.label = dataclasses.replace(
                    label,
                    drive=vouched.drive,
                    shipment=self.catalog.header.shipment if self.catalog.header else label.shipment,
                    manifest_size=vouched.manifest_size,
                    manifest_blake3=vouched.manifest_blake3,
                )
                self.catalog.own = vouched
                self.report.drive, self.report.shipment = vouched.drive, self.reader.label.shipment
                self.manifest = ChunkMap()
                return self._check_manifest(retried=True)
            else:
                self.report.add(
                    Kind.MANIFEST,
                    f"{MANIFEST_NAME} is damaged ({exc}); every file with bytes on this drive may be hurt: "
                    "ask the sender for a new copy of the drive",
                    self.catalog.paths_on_drive(),
                )
                return False
        if self.unlisted:
            self.report.add(Kind.MANIFEST, f"and {self.unlisted} more problems in the records of {MANIFEST_NAME}")
        for name, record in self.manifest.segments.items():
            if self.manifest.chunks_per_segment.get(name, 0) != record.chunks:
                self.report.add(
                    Kind.MANIFEST, f"{MANIFEST_NAME} lists {record.chunks} chunks for {name}, but has others"
                )
        return True

    def _label_differs(self, vouched: CatalogDrive) -> bool:
        """Whether drive.json says otherwise than the catalog's record of the manifest on the drive (else the
        manifest, or an encrypted drive's index, is what is damaged, and drive.json is not to blame)."""
        assert self.reader is not None
        label = self.reader.label
        return (label.drive, label.manifest_size, label.manifest_blake3, label.lane, label.lane_seq) != (
            vouched.drive, vouched.manifest_size, vouched.manifest_blake3, vouched.lane, vouched.lane_seq,
        ) or (self.catalog is not None and self.catalog.header is not None and
              self.catalog.header.shipment != label.shipment)  # fmt: skip

    def _record_problem(self, problem: str) -> None:
        """A record of the manifest that a reader must refuse (see validate.py): a problem, listed up to a limit."""
        listed = sum(p.kind == Kind.MANIFEST for p in self.report.problems)
        if listed >= LISTED_PROBLEMS:
            self.unlisted += 1
            return
        self.report.add(Kind.MANIFEST, f"{MANIFEST_NAME}: {problem}")

    def _check_label(self, label: DriveLabel) -> None:
        # An encrypted drive's drive.json has no raw size (docs/format.md 19.3): it would tell the files' sizes.
        raw = 0 if label.encrypted else self.manifest.raw_bytes
        found = (len(self.manifest.segments), self.manifest.stored_bytes, raw)
        if found != (label.segments, label.stored_bytes, label.raw_bytes):
            self.report.add(
                Kind.LABEL,
                f"{DRIVE_LABEL_NAME} says {label.segments} segments, {label.stored_bytes} stored and {label.raw_bytes} "
                f"raw bytes; the manifest has {found[0]}, {found[1]} and {found[2]}",
            )

    def _check_checksums(self, label: DriveLabel) -> None:
        """B3SUMS must name exactly the drive's files, with the hashes the manifest, label and catalog pin."""
        assert self.reader is not None
        expected = {name: seg.blake3 for name, seg in self.manifest.segments.items()}
        expected[MANIFEST_NAME] = self.reader.manifest_blake3 or label.manifest_blake3
        expected[DRIVE_LABEL_NAME] = blake3.blake3(self.reader.label_bytes).hexdigest()
        if self.catalog is not None and self.catalog.digest is not None:
            expected[CATALOG_NAME] = self.catalog.digest
        expected.update((name, record.blake3) for name, record in self.sealed.items())
        if self.catalog is not None and self.catalog.sealed is not None:
            expected[SEALED_CATALOG_NAME] = self.catalog.sealed.blake3
        try:
            sums = self.reader.checksums()
        except OSError as exc:
            self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} cannot be read ({exc.strerror})")
            return
        if sums.problem is not None:
            self.report.add(Kind.CHECKSUMS, sums.problem)
            if sums.damaged_line is not None:
                return
        found = sums.digests()
        for name in sorted(set(expected) | set(found)):
            if name not in found:
                self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} has no line for {name}")
            elif name not in expected:
                self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} names {name}, which is not part of this drive")
            elif found[name] != expected[name]:
                self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} disagrees with the drive about {name}")

    # -- files on the drive --

    def _check_sealed(self) -> None:
        """An encrypted drive's sealed files (its index, its key files) against the public manifest's records,
        and its sealed catalog against the public catalog's (docs/format.md 19.8.4): checkable without the key."""
        assert self.reader is not None
        pinned = dict(self.sealed)
        if self.catalog is not None and self.catalog.sealed is not None and self.catalog.digest is not None:
            pinned[SEALED_CATALOG_NAME] = self.catalog.sealed
        if INDEX_NAME not in self.sealed:
            self.report.add(Kind.SEALED, f"{MANIFEST_NAME} pins no {INDEX_NAME}: the drive's index is not part of it")
        from ..drive.sealed import sealed_problems  # the crypt extra: an encrypted drive's

        for problem in sealed_problems(self.reader.store, [pinned[name] for name in sorted(pinned)]):
            self.report.add(Kind.SEALED, problem)

    def _check_segment_files(self) -> None:
        assert self.reader is not None
        for name, segment in sorted(self.manifest.segments.items()):
            info = self.reader.stat(name)
            if info is None:
                self.report.missing.append(name)
                self.report.add(Kind.MISSING_SEGMENT, f"segment {name} is missing")
                continue
            if not stat.S_ISREG(info.mode):
                # A FIFO would block a reader, a symlink lead it off the drive: as good as missing.
                self.report.missing.append(name)
                self.report.add(Kind.MISSING_SEGMENT, f"segment {name} is {file_kind(info.mode)}, not a regular file")
                continue
            size = info.size
            self.segment_sizes[name] = size
            if size < segment.size:
                self.report.add(Kind.TRUNCATED_SEGMENT, f"segment {name} is truncated: {size} of {segment.size} bytes")
            elif size > segment.size:
                self.report.add(Kind.OVERSIZED_SEGMENT, f"segment {name} has {size - segment.size} bytes too many")

    def _check_unexpected(self, store: DriveStore, segments: set[str]) -> None:
        """Files on the drive that are not part of it (strays, leftovers of an unfinished pack)."""
        expected = {DRIVE_LABEL_NAME, MANIFEST_NAME, CATALOG_NAME, CHECKSUMS_NAME}
        if self.reader is not None and self.reader.label.encrypted:
            expected |= {INDEX_NAME, SEALED_CATALOG_NAME, KEYS_DIR} | set(self.sealed)
            keys = store.stat(KEYS_DIR)
            if keys is not None and stat.S_ISDIR(keys.mode):
                for name in sorted(store.list(KEYS_DIR)):
                    if f"{KEYS_DIR}/{name}" not in expected:
                        self._unexpected(f"{KEYS_DIR}/{name}")
        segments_dir = store.stat(SEGMENTS_DIR)
        has_segments_dir = segments_dir is not None and stat.S_ISDIR(segments_dir.mode)
        for name in sorted(store.list()):
            if name in FILESYSTEM_ENTRIES:
                continue
            if name not in expected and not (name == SEGMENTS_DIR and has_segments_dir):
                self._unexpected(name)
        if has_segments_dir:
            for name in sorted(store.list(SEGMENTS_DIR)):
                relative = f"{SEGMENTS_DIR}/{name}"
                if relative not in segments:
                    self._unexpected(relative)

    def _unexpected(self, name: str) -> None:
        self.report.unexpected.append(name)
        if self.report.status == Status.UNFINISHED.value:
            return
        if name.endswith(PARTIAL_SUFFIX):
            # Pack's own file, half written: a pack (or its finish step) was interrupted on this drive.
            self.report.add(
                Kind.UNEXPECTED_FILE,
                f"{name} is not part of this drive (left by a pack that did not finish: run it again with --resume)",
            )
            return
        # Anything else hurts nothing of the shipment: a warning (a stray file made an intact drive "DAMAGED").
        self.report.add(Kind.UNEXPECTED_FILE, f"{name} is not part of this drive", status=Status.UNEXPECTED_FILES)

    # -- the data --
