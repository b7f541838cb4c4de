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
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import json
import logging
import os
import random
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import blake3

from .bundle import (
    FILESYSTEM_ENTRIES,
    CatalogReader,
    ChunkMap,
    DriveReader,
    file_blake3,
    file_kind,
    open_drive_file,
    segment_blake3,
)
from .codec import decode_chunk
from .durable import write_atomic
from .errors import FormatError, NotADrive, SneakernetError, UnfinishedDrive, UnsupportedVersion, UsageError
from .format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    HEX64,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    SEGMENT_NAME,
    SEGMENTS_DIR,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    SegmentRecord,
    SymlinkRecord,
    catalog_is_consistent,
    fingerprint,
    short_fingerprint,
    show_path,
)
from .output import SCHEMA_VERSION
from .progress import NullProgress, Progress, begin_drive
from .units import counted
from .validate import LISTED_PROBLEMS, CatalogIndex, ManifestCheck, Seen, seen_of

log = logging.getLogger(__name__)

#: A fingerprint given on the command line must have at least this many hex digits (64 bits).
MIN_FINGERPRINT_DIGITS = 16
#: Chunks being hashed at once, per worker: enough to overlap reading with hashing.
IN_FLIGHT_PER_WORKER = 2


class Mode(str, Enum):
    QUICK = "quick"
    FULL = "full"
    DEEP = "deep"


class Status(str, Enum):
    INTACT = "intact"
    #: Every byte intact, but files that are not part of the drive are on it too: a warning, exit code 0.
    UNEXPECTED_FILES = "unexpected_files"
    DAMAGED = "damaged"
    UNFINISHED = "unfinished"
    WRONG_SHIPMENT = "wrong_shipment"
    #: A check that was asked for could not be made (--fingerprint on a drive without a catalog).
    UNCONFIRMED = "unconfirmed"
    NOT_A_DRIVE = "not_a_drive"


@dataclass
class Problem:
    """One thing wrong with a drive. ``kind`` is one of the documented kinds (docs/verify.md)."""

    kind: str
    message: str
    paths: list[str] = field(default_factory=list)


@dataclass
class DamagedChunk:
    """A chunk whose stored (or, with --deep, raw) bytes are not what the manifest says, and the paths it hurts."""

    id: int
    segment: str
    offset: int
    stored_size: int
    reason: str
    paths: list[str] = field(default_factory=list)


@dataclass
class DriveReport:
    """Everything verify found on one drive."""

    path: str
    mode: str
    status: str = Status.INTACT.value
    label: str | None = None
    drive: int | None = None
    drives: int | None = None
    shipment: str | None = None
    fingerprint: str | None = None
    sample_percent: float | None = None
    #: With --fingerprint: whether the catalog's fingerprint starts with the digits given (None: not asked or
    #: not checkable).
    fingerprint_matched: bool | None = None
    bytes_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    resumed: bool = False
    damaged_chunks: list[DamagedChunk] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every byte of the drive intact (unexpected files beside them hurt nothing)."""
        return self.status in (Status.INTACT.value, Status.UNEXPECTED_FILES.value)

    def add(self, kind: str, message: str, paths: Sequence[str] = (), status: Status = Status.DAMAGED) -> None:
        self.problems.append(Problem(kind, message, list(paths)))
        # The first problem sets the status; any problem outranks unexpected files.
        if self.status == Status.INTACT.value or (
            self.status == Status.UNEXPECTED_FILES.value and status != Status.UNEXPECTED_FILES
        ):
            self.status = status.value

    def hurt_paths(self) -> list[str]:
        """Every shipment path some problem of this drive hurts, sorted, once each."""
        paths = {p for chunk in self.damaged_chunks for p in chunk.paths}
        paths.update(p for problem in self.problems for p in problem.paths)
        return sorted(paths)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["hurt_paths"] = self.hurt_paths()
        return out


@dataclass
class VerifyReport:
    """The reports of all drives given, and the resend list for the sender."""

    drives: list[DriveReport]

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.drives)

    def to_json(self) -> dict[str, Any]:
        chunks = sorted({c.id for r in self.drives for c in r.damaged_chunks})
        paths = sorted({p for r in self.drives for p in r.hurt_paths()})
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "drives": [report.to_json() for report in self.drives],
            "resend": {"chunks": chunks, "paths": paths},
        }


# --- resumable state ----------------------------------------------------------------------------------------


def default_state_dir() -> str:
    """Where verify keeps its progress: $SNEAKERNET_STATE_DIR, else the user's cache directory."""
    if os.environ.get("SNEAKERNET_STATE_DIR"):
        return os.environ["SNEAKERNET_STATE_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "sneakernet", "verify")


@dataclass
class VerifyState:
    """Progress of one drive's data pass, saved after every finished segment (atomically, off the drive).

    It is keyed by the manifest's BLAKE3 and the mode, so a state never applies to other data or another check.
    """

    path: str
    key: str
    done_segments: list[str] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)
    bytes_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    file_problems: list[dict[str, Any]] = field(default_factory=list)
    #: The --sample choice, so a resumed run reads the same segments even when no --seed was given.
    seed: int | None = None

    @classmethod
    def load(cls, state_dir: str, key: str) -> VerifyState:
        path = os.path.join(state_dir, key + ".json")
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
            return cls(
                path, key, raw["done_segments"], raw["damaged"], raw["bytes_checked"], raw["chunks_checked"],
                raw["files_checked"], raw["file_problems"], raw["seed"],
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path, key)

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k not in ("path", "key")}
        write_atomic(self.path, json.dumps(data).encode("utf-8"))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


# --- the checks ---------------------------------------------------------------------------------------------


class HashAhead:
    """Hashes segment files whole, in the order given, on a thread of its own (BLAKE3 and the reads leave the
    interpreter lock free, and BLAKE3 spreads each slice over ``threads`` threads), while the main thread checks
    manifests and catalogs: a full check of intact drives then costs about the hashing alone."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sneakernet-verify-ahead")
        self.futures: dict[tuple[str, str], Future[str | None]] = {}

    def add(self, drive: str, segment: str) -> None:
        self.futures[drive, segment] = self.pool.submit(self._hash, drive, segment)

    def _hash(self, drive: str, segment: str) -> str | None:
        # The progress is told when the digest is used, on the main thread.
        return segment_blake3(os.path.join(drive, segment), self.threads, lambda _: None)

    def take(self, drive: str, segment: str) -> Future[str | None] | None:
        return self.futures.pop((drive, segment), None)

    def forget(self, drive: str) -> None:
        """Drop what is still to be hashed of ``drive`` (its structure failed, or its check is over): an 8 TB
        drive whose manifest is damaged must not be hashed ahead for hours before the next drive."""
        for key in [key for key in self.futures if key[0] == drive]:
            self.futures.pop(key).cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DriveVerifier:
    """Runs every check on one drive and fills a :class:`DriveReport`."""

    def __init__(
        self,
        path: str,
        mode: Mode,
        expected_fingerprint: str | None,
        sample_percent: float | None,
        seed: int | None,
        state_dir: str | None,
        restart: bool,
        workers: int,
        progress: Progress,
        catalog: str | None = None,
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.mode = mode
        self.expected_fingerprint = expected_fingerprint
        self.sample_percent = sample_percent
        self.seed = seed
        self.state_dir = state_dir
        self.restart = restart
        self.workers = workers
        self.progress = progress
        self.report = DriveReport(path=path, mode=mode.value, sample_percent=sample_percent)
        self.manifest = ChunkMap()
        self.reader: DriveReader | None = None
        self.catalog_digest: str | None = None
        self.catalog_drive: CatalogDrive | None = None
        self.catalog_header: CatalogHeader | None = None
        self.catalog_drives: list[CatalogDrive] = []
        #: Sizes of the segment files on the drive, by name (missing ones are absent).
        self.segment_sizes: dict[str, int] = {}
        #: Segments hashed whole (their bytes are in the progress once, even if checked again chunk by chunk).
        self.hashed_whole: set[str] = set()
        #: What hashes this drive's segment files ahead, if anything does (see :meth:`hash_ahead`).
        self.ahead: HashAhead | None = None
        #: Catalogs parsed whole in this run, by BLAKE3: shared by the verifiers of one run, with the index of
        #: their entries (None when the catalog lies, see validate.CatalogIndex) in :attr:`db`.
        self.catalogs: dict[str, tuple[CatalogHeader, list[CatalogDrive], CatalogIndex | None, list[str]]] = {}
        #: A temporary on-disk database (SQLite's own temporary file) for the set-wise checks: duplicate paths,
        #: and the catalog against the manifest. Shared by the verifiers of one run.
        self.db: sqlite3.Connection | None = None
        #: The catalog's entries as an index, when the catalog parsed and does not lie.
        self.catalog_index: CatalogIndex | None = None
        #: Record problems of the manifest not listed one by one (beyond LISTED_PROBLEMS).
        self.unlisted = 0

    def run(self) -> DriveReport:
        if self.check_structure():
            self.check_contents()
        return self.report

    def check_structure(self) -> bool:
        """Everything but the segments' contents: label, catalog, manifest, segment files, B3SUMS. Whether the
        contents are to be checked too (not when the drive is not one, is unfinished or of another shipment)."""
        report = self.report
        try:
            self.reader = DriveReader(self.path)
        except NotADrive as exc:
            report.add("not_a_drive", str(exc), status=Status.NOT_A_DRIVE)
            return False
        except UnsupportedVersion as exc:
            report.add("label", str(exc), status=Status.NOT_A_DRIVE)
            return False
        except UnfinishedDrive as exc:
            report.add("unfinished", str(exc), status=Status.UNFINISHED)
            self._check_unexpected(set())
            return False
        except FormatError as exc:
            report.add("label", f"{DRIVE_LABEL_NAME} is damaged: {exc}")
            return False
        label = self.reader.label
        report.label, report.drive, report.shipment = label.label, label.drive, label.shipment
        self._read_catalog(label)
        if not self._check_manifest():
            return False
        label = self.reader.label  # as the catalog vouches for it, when drive.json was damaged
        if self.catalog_header is not None and self.catalog_header.shipment != label.shipment:
            report.add(
                "other_shipment",
                f"this drive is from shipment {label.shipment}, its catalog from {self.catalog_header.shipment}",
                status=Status.WRONG_SHIPMENT,
            )
            return False
        self._check_catalog_against_drive(label)
        self._check_label(label)
        self._check_segment_files()
        self._check_unexpected(set(self.manifest.segments))
        self._check_checksums(label)
        return True

    def check_contents(self) -> None:
        """The segments' contents as the mode asks, and the paths any damage hurts."""
        if self.mode != Mode.QUICK:
            self._check_data()
        if self.report.damaged_chunks:
            self._map_damage_to_paths()

    # -- manifest, label, catalog, checksums --

    def _drive_the_catalog_vouches_for(self) -> CatalogDrive | None:
        """The catalog's drive whose manifest BLAKE3 is that of the manifest on this drive, if any."""
        assert self.reader is not None
        actual = self.reader.manifest_blake3
        if actual is None:
            try:
                actual = file_blake3(self.reader.file(MANIFEST_NAME))[1]
            except OSError:
                return None
        return next((d for d in self.catalog_drives if d.manifest_blake3 == actual), None)

    def _check_manifest(self, retried: bool = False) -> bool:
        """One pass over the manifest: its structure, hash, and the chunk map; False when it cannot be trusted."""
        assert self.reader is not None
        check = ManifestCheck()
        self.unlisted = 0
        index = CatalogIndex(self._database())  # this drive's paths only: no catalog table needed
        bad = [0]  # records refused: they are not compared with the catalog (nothing hostile goes to SQLite)

        def entries() -> Iterator[Seen]:
            assert self.reader is not None
            for record in self.reader.records():
                problems = check.check(record)
                for problem in problems:
                    self._record_problem(problem)
                bad[0] += bool(problems)
                if isinstance(record, ChunkRecord):
                    self.manifest.add_chunk(record)
                elif isinstance(record, FileRecord):
                    self.manifest.piece_range(record)  # a piece must lie within this drive's chunks
                    if not problems and (record.offset or not record.final):
                        self._note_piece(record)
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
            self._cross_check_catalog(not duplicates and not bad[0])
        except FormatError as exc:
            vouched = self._drive_the_catalog_vouches_for()
            if vouched is not None and not retried:
                # The manifest is one the catalog names: it is drive.json that is wrong. The drive is checked as
                # the catalog describes it (its number, shipment and manifest hash).
                label = self.reader.label
                self.report.add("label", f"{DRIVE_LABEL_NAME} is damaged: it does not describe the manifest it names")
                self.reader.label = dataclasses.replace(
                    label,
                    drive=vouched.drive,
                    shipment=self.catalog_header.shipment if self.catalog_header else label.shipment,
                    manifest_size=vouched.manifest_size,
                    manifest_blake3=vouched.manifest_blake3,
                )
                self.catalog_drive = vouched
                self.report.drive, self.report.shipment = vouched.drive, self.reader.label.shipment
                self.manifest = ChunkMap()
                return self._check_manifest(retried=True)
            else:
                self.report.add(
                    "manifest",
                    f"{MANIFEST_NAME} is damaged ({exc}); every file with bytes on this drive may be hurt: "
                    "ask the sender for a new copy of the drive",
                    self._paths_on_drive_from_catalog(),
                )
                return False
        if self.unlisted:
            self.report.add("manifest", f"and {self.unlisted} more problems in the records of {MANIFEST_NAME}")
        for name, record in self.manifest.segments.items():
            if self.manifest.chunks_per_segment.get(name, 0) != record.chunks:
                self.report.add("manifest", f"{MANIFEST_NAME} lists {record.chunks} chunks for {name}, but has others")
        return True

    def _note_piece(self, record: FileRecord) -> None:
        """A piece of a file spanning drives, for :func:`_check_pieces` once every drive is read."""
        assert self.reader is not None
        db = self._database()
        db.execute(_PIECES_TABLE)
        label = self.reader.label
        db.execute(
            "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?)",
            (
                label.shipment,
                record.path,
                label.drive,
                record.offset,
                record.length,
                record.size if record.final else None,
            ),
        )

    def _database(self) -> sqlite3.Connection:
        if self.db is None:
            self.db = temporary_database()
        return self.db

    def _record_problem(self, problem: str) -> None:
        """A record of the manifest that a reader must refuse (see validate.py): a problem, listed up to a limit."""
        listed = sum(p.kind == "manifest" for p in self.report.problems)
        if listed >= LISTED_PROBLEMS:
            self.unlisted += 1
            return
        self.report.add("manifest", f"{MANIFEST_NAME}: {problem}")

    def _cross_check_catalog(self, loaded: bool) -> None:
        """The catalog's slice for this drive against the manifest just read (docs/format.md section 9): the
        catalog is not covered by the fingerprint, so a reader must not trust its entries until they match.
        ``loaded``: the manifest's entries are all in the database (none was twice on the drive)."""
        assert self.reader is not None
        index, own = self.catalog_index, self.catalog_drive
        if not loaded or index is None or own is None or own.manifest_blake3 != self.reader.manifest_blake3:
            return  # no catalog to compare, or another problem already says the two do not belong together
        drive = self.reader.label.drive
        for problem in index.compare(drive):
            self.report.add("catalog", problem)
        for problem in index.link_problems(drive):
            self.report.add("manifest", f"{MANIFEST_NAME}: {problem}")

    def _paths_on_drive_from_catalog(self) -> list[str]:
        """The catalog's paths with bytes on this drive: what a damaged manifest may hurt."""
        assert self.reader is not None
        drive = self.reader.label.drive
        catalog = self.reader.file(CATALOG_NAME)
        if not os.path.exists(catalog):
            return []
        try:
            return [
                show_path(r.path)
                for r in CatalogReader(catalog).records()
                if isinstance(r, CatalogEntry) and r.first_drive <= drive <= r.last_drive
            ]
        except FormatError:
            return []

    def _check_label(self, label: DriveLabel) -> None:
        found = (len(self.manifest.segments), self.manifest.stored_bytes, self.manifest.raw_bytes)
        if found != (label.segments, label.stored_bytes, label.raw_bytes):
            self.report.add(
                "label",
                f"{DRIVE_LABEL_NAME} says {label.segments} segments, {label.stored_bytes} stored and {label.raw_bytes} "
                f"raw bytes; the manifest has {found[0]}, {found[1]} and {found[2]}",
            )

    def _read_catalog(self, label: DriveLabel) -> None:
        """Read the catalog whole: its integrity, its shipment, its fingerprint, and this drive's line in it."""
        assert self.reader is not None
        report = self.report
        own = self.reader.file(CATALOG_NAME)
        # A drive without its own catalog (all but the last of a --swap pack) can be checked against the sender's.
        path = own if os.path.exists(own) or self.catalog is None else self.catalog
        external = path != own
        if not os.path.exists(path):
            report.notes.append(
                "no catalog on this drive: the shipment's packing may not have finished; the drive was checked alone"
            )
            if self.expected_fingerprint:
                report.add(
                    "fingerprint",
                    "cannot check --fingerprint: this drive carries no catalog; give the shipment's catalog with "
                    "--catalog FILE (the last drive's catalog.jsonl.zst, or the copy a --swap pack kept in "
                    "~/.local/share/sneakernet/catalogs)",
                    status=Status.UNCONFIRMED,
                )
            return
        try:
            digest: str | None = file_blake3(path)[1]
        except OSError:
            digest = None
        try:
            header, drives = self._parsed_catalog(path, digest)
        except FormatError as exc:
            report.add("catalog", f"{CATALOG_NAME} is damaged: {exc}")
            self.catalog_digest = None if external else digest
            return
        self.catalog_digest = None if external else digest
        report.drives, report.fingerprint = header.drives, header.fingerprint
        self.catalog_header, self.catalog_drives = header, drives
        if header.shipment != label.shipment:
            # Decided once the manifest is read: drive.json may be the damaged one (see _check_manifest).
            return
        computed = fingerprint(d.manifest_blake3 for d in drives)
        if not catalog_is_consistent(header, drives):
            report.add("catalog", f"{CATALOG_NAME} is inconsistent: its drive list does not give its fingerprint")
        self.catalog_drive = next((d for d in drives if d.drive == label.drive), None)
        if self.catalog_drive is None:
            report.add("catalog", f"the catalog lists no drive {label.drive}")
        if self.expected_fingerprint:
            report.fingerprint_matched = computed.startswith(self.expected_fingerprint)
            if not report.fingerprint_matched:
                report.add(
                    "fingerprint",
                    fingerprint_mismatch(self.expected_fingerprint, computed),
                    status=Status.WRONG_SHIPMENT,
                )

    def _parsed_catalog(self, path: str, digest: str | None) -> tuple[CatalogHeader, list[CatalogDrive]]:
        """The header and drive list of the catalog whose BLAKE3 is ``digest``, its entries indexed (see
        :attr:`catalog_index`). Every drive of a shipment carries the same catalog: one whose bytes were parsed
        whole for an earlier drive of this run is not parsed again."""
        if digest is not None and digest in self.catalogs:
            cached_header, cached_drives, self.catalog_index, cached_lies = self.catalogs[digest]
            for problem in cached_lies:
                self.report.add("catalog", f"{CATALOG_NAME}: {problem}")
            return cached_header, cached_drives
        reader = CatalogReader(path)
        index = CatalogIndex(self._database(), f"catalog_{len(self.catalogs)}")
        found: list[CatalogHeader] = []
        drives: list[CatalogDrive] = []

        def entries() -> Iterator[CatalogEntry]:
            for record in reader.records():
                if isinstance(record, CatalogEntry):
                    yield record
                elif isinstance(record, CatalogDrive):
                    drives.append(record)
                elif isinstance(record, CatalogHeader):
                    found.append(record)

        lies = index.build(entries())
        for problem in lies:
            self.report.add("catalog", f"{CATALOG_NAME}: {problem}")
        header = found[0]
        if lies:
            # The rest is read to know whether the file is whole (its entries are no longer indexed).
            header, drives = reader.drives()
        if digest is not None:
            if reader.blake3 != digest:
                raise FormatError("it changed while it was read")
            self.catalogs[digest] = (header, drives, None if lies else index, lies)
        self.catalog_index = None if lies else index
        return header, drives

    def _check_catalog_against_drive(self, label: DriveLabel) -> None:
        """The manifest read must be the one the catalog (and so the fingerprint) names for this drive."""
        assert self.reader is not None
        own, actual = self.catalog_drive, self.reader.manifest_blake3
        if own is None or actual is None:
            return
        if own.manifest_blake3 != actual:
            self.report.add(
                "catalog",
                f"{MANIFEST_NAME} is not the one the catalog names for drive {label.drive}: "
                "the drive's files were changed or mixed with another drive's",
            )

    def _check_checksums(self, label: DriveLabel) -> None:
        """B3SUMS must name exactly the drive's files, with the hashes the manifest, label and catalog pin."""
        assert self.reader is not None
        expected = {name: seg.blake3 for name, seg in self.manifest.segments.items()}
        expected[MANIFEST_NAME] = self.reader.manifest_blake3 or label.manifest_blake3
        expected[DRIVE_LABEL_NAME] = blake3.blake3(self.reader.label_bytes).hexdigest()
        if self.catalog_digest is not None:
            expected[CATALOG_NAME] = self.catalog_digest
        try:
            with open_drive_file(self.reader.file(CHECKSUMS_NAME)) as handle:
                text = handle.read(1 << 24)
        except OSError as exc:
            self.report.add("checksums", f"{CHECKSUMS_NAME} cannot be read ({exc.strerror})")
            return
        found: dict[str, str] = {}
        for number, line in enumerate(text.decode("ascii", "replace").split("\n")[:-1], 1):
            digest, sep, file_name = line.partition("  ")
            if not sep or not HEX64.fullmatch(digest):
                self.report.add("checksums", f"{CHECKSUMS_NAME} line {number} is damaged")
                return
            found[file_name] = digest
        if not text.endswith(b"\n"):
            self.report.add("checksums", f"{CHECKSUMS_NAME} is cut short")
        for name in sorted(set(expected) | set(found)):
            if name not in found:
                self.report.add("checksums", f"{CHECKSUMS_NAME} has no line for {name}")
            elif name not in expected:
                self.report.add("checksums", f"{CHECKSUMS_NAME} names {name}, which is not part of this drive")
            elif found[name] != expected[name]:
                self.report.add("checksums", f"{CHECKSUMS_NAME} disagrees with the drive about {name}")

    # -- files on the drive --

    def _check_segment_files(self) -> None:
        assert self.reader is not None
        for name, segment in sorted(self.manifest.segments.items()):
            try:
                info = os.lstat(self.reader.file(name))
            except FileNotFoundError:
                self.report.missing.append(name)
                self.report.add("missing_segment", f"segment {name} is missing")
                continue
            if not stat.S_ISREG(info.st_mode):
                # A FIFO would block a reader, a symlink lead it off the drive: as good as missing.
                self.report.missing.append(name)
                self.report.add("missing_segment", f"segment {name} is {file_kind(info.st_mode)}, not a regular file")
                continue
            size = info.st_size
            self.segment_sizes[name] = size
            if size < segment.size:
                self.report.add("truncated_segment", f"segment {name} is truncated: {size} of {segment.size} bytes")
            elif size > segment.size:
                self.report.add("oversized_segment", f"segment {name} has {size - segment.size} bytes too many")

    def _check_unexpected(self, segments: set[str]) -> None:
        """Files on the drive that are not part of it (strays, leftovers of an unfinished pack)."""
        expected = {DRIVE_LABEL_NAME, MANIFEST_NAME, CATALOG_NAME, CHECKSUMS_NAME}
        segments_dir = os.path.join(self.path, SEGMENTS_DIR)
        for name in sorted(os.listdir(self.path)):
            if name in FILESYSTEM_ENTRIES:
                continue
            if name not in expected and not (name == SEGMENTS_DIR and os.path.isdir(segments_dir)):
                self._unexpected(name)
        if os.path.isdir(segments_dir):
            for name in sorted(os.listdir(segments_dir)):
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
                "unexpected_file",
                f"{name} is not part of this drive (left by a pack that did not finish: run it again with --resume)",
            )
            return
        # Anything else hurts nothing of the shipment: a warning (a stray file made an intact drive "DAMAGED").
        self.report.add("unexpected_file", f"{name} is not part of this drive", status=Status.UNEXPECTED_FILES)

    # -- the data --

    def _selected_segments(self, seed: int | None) -> set[str]:
        names = sorted(self.manifest.segments)
        if self.sample_percent is None:
            return set(names)
        count = max(1, round(len(names) * self.sample_percent / 100)) if names else 0
        return set(random.Random(seed).sample(names, count))

    def _check_data(self) -> None:
        """Read every selected chunk's stored bytes (and with --deep decode them and hash whole files)."""
        assert self.reader is not None and self.manifest.header is not None
        state = self._load_state()
        seed = self.seed
        if self.sample_percent is not None and seed is None:
            seed = state.seed if state is not None and state.seed is not None else random.randrange(2**32)
        if state is not None:
            state.seed = seed
        selected = self._selected_segments(seed)
        done = set(state.done_segments) if state else set()
        if state is not None and done:
            self._resume_from(state)
        if self.mode == Mode.FULL:
            # Segments hashed whole and found intact need no chunk read: the pass below only names damage.
            whole = selected - done
            selected = self._check_whole_segments(whole, state)
            self._check_frames(whole - selected)
        if selected or self.mode != Mode.FULL:
            self._check_chunks(selected, done, state)
        self.reader.close()
        if state is not None:
            state.clear()

    def _check_frames(self, intact: set[str]) -> None:
        """Each chunk of the ``intact`` segments (hashed whole, matching) is exactly one zstd frame of its raw size:
        the segment's hash says its bytes are as packed, not that the chunk records cut them into single frames (a
        second frame inside a chunk would pass). Only frame and block headers are read, from the memory map."""
        assert self.reader is not None
        if not intact:
            return
        for chunk in self._chunk_records():
            if chunk.segment in intact and (reason := self.reader.frame_problem(chunk)) is not None:
                self.report.damaged_chunks.append(
                    DamagedChunk(chunk.id, chunk.segment, chunk.offset, chunk.stored_size, reason)
                )
                if self.report.status == Status.INTACT.value:
                    self.report.status = Status.DAMAGED.value

    def _check_chunks(self, selected: set[str], done: set[str], state: VerifyState | None) -> None:
        """Check the chunks of ``selected`` segments (not ``done``) one by one, on the pool."""
        # Files that span the resume point cannot be hashed whole; the others still are.
        files = _FileHasher(self) if self.mode == Mode.DEEP and self.sample_percent is None else None
        segment_chunks: dict[str, int] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sneakernet-verify") as pool:
            window: list[tuple[ChunkRecord, Future[tuple[str | None, bytes | None]]]] = []
            limit = self.workers * IN_FLIGHT_PER_WORKER
            for chunk in self._chunk_records():
                if chunk.segment not in selected or chunk.segment in done:
                    if files is not None:
                        files.skip(chunk)
                    continue
                window.append((chunk, pool.submit(self._check_chunk, chunk, files is not None)))
                while len(window) > limit:
                    self._finish_chunk(*window.pop(0), files, segment_chunks, state)
            for item in window:
                self._finish_chunk(*item, files, segment_chunks, state)
        if files is not None and files.unchecked:
            self.report.notes.append(
                f"{counted(files.unchecked, 'file')} spanning the point where this verify resumed were not hashed "
                "whole (their chunks were); --restart checks them too"
            )

    def _resume_from(self, state: VerifyState) -> None:
        report = self.report
        report.resumed = True
        report.bytes_checked, report.chunks_checked = state.bytes_checked, state.chunks_checked
        report.files_checked = state.files_checked
        report.damaged_chunks.extend(DamagedChunk(**raw) for raw in state.damaged)
        report.problems.extend(Problem(**raw) for raw in state.file_problems)
        if (report.damaged_chunks or state.file_problems) and report.ok:  # damage outranks unexpected files
            report.status = Status.DAMAGED.value

    def _load_state(self) -> VerifyState | None:
        assert self.reader is not None
        if self.state_dir is None:
            return None
        label = self.reader.label
        key = f"{label.shipment}-{label.drive:04d}-{self.reader.manifest_blake3}-{self.mode.value}"
        if self.sample_percent is not None:
            key += f"-sample{self.sample_percent}-{'auto' if self.seed is None else self.seed}"
        state = VerifyState.load(self.state_dir, key)
        if self.restart:
            state.clear()
            state = VerifyState(state.path, key)
        return state

    def _chunk_records(self) -> Iterator[ChunkRecord]:
        """The chunk records again, fast: the first pass parsed and checked every record, this one must find as
        many chunks (a record whose ``type`` is not its first member would otherwise slip through)."""
        assert self.reader is not None
        count = 0
        for record in self.reader.records(only=(ChunkRecord.TYPE,)):
            if isinstance(record, ChunkRecord):
                count += 1
                yield record
        if count != len(self.manifest.raw_offsets) - 1 + (self.manifest.first_chunk is None):
            raise FormatError(f"{MANIFEST_NAME} changed while it was read")

    def _check_chunk(self, chunk: ChunkRecord, decode: bool) -> tuple[str | None, bytes | None]:
        """Runs on the pool: ``(reason the chunk is damaged or None, raw bytes when decoding)``."""
        assert self.reader is not None
        size = self.segment_sizes.get(chunk.segment)
        if size is None:
            return "its segment is missing", None
        if size < chunk.offset + chunk.stored_size:
            return "its segment is cut short before its end", None
        if not decode:
            # Hashed in place in the segment's memory map: no copy of the bytes.
            if not self.reader.stored_matches(chunk):
                return "stored bytes do not match their BLAKE3 (or cannot be read)", None
            return self.reader.frame_problem(chunk), None
        try:
            stored = self.reader.read_stored(chunk)
        except FormatError:
            return "stored bytes do not match their BLAKE3 (or cannot be read)", None
        try:
            raw = decode_chunk(stored, chunk.raw_size)
        except FormatError as exc:
            return f"does not decompress: {exc}", None
        if blake3.blake3(raw).hexdigest() != chunk.raw_blake3:
            return "decompressed bytes do not match their BLAKE3", None
        return None, raw

    def _finish_chunk(
        self,
        chunk: ChunkRecord,
        future: Future[tuple[str | None, bytes | None]],
        files: _FileHasher | None,
        segment_chunks: dict[str, int],
        state: VerifyState | None,
    ) -> None:
        reason, raw = future.result()
        self.report.bytes_checked += chunk.stored_size
        self.report.chunks_checked += 1
        if chunk.segment not in self.hashed_whole:  # its bytes were counted once already
            self.progress.advance(chunk.stored_size)
        if reason is not None:
            self.report.damaged_chunks.append(
                DamagedChunk(chunk.id, chunk.segment, chunk.offset, chunk.stored_size, reason)
            )
            if self.report.ok:  # damage outranks unexpected files
                self.report.status = Status.DAMAGED.value
        if files is not None:
            files.feed(chunk, raw)
        segment_chunks[chunk.segment] = segment_chunks.get(chunk.segment, 0) + 1
        if state is not None and segment_chunks[chunk.segment] == self.manifest.segments[chunk.segment].chunks:
            self._segment_done(chunk.segment, state)

    def _segment_done(self, segment: str, state: VerifyState) -> None:
        state.done_segments.append(segment)
        state.damaged = [asdict(c) for c in self.report.damaged_chunks]
        state.bytes_checked, state.chunks_checked = self.report.bytes_checked, self.report.chunks_checked
        state.files_checked = self.report.files_checked
        state.file_problems = [asdict(p) for p in self.report.problems if p.kind == "file_hash"]
        state.save()

    def hash_ahead(self, ahead: HashAhead) -> None:
        """Have ``ahead`` hash this drive's segment files while the drives before it and its manifest are
        checked: for a full check of every segment (not --quick, --deep or --sample, which read other things
        or fewer segments), and not when a saved progress of this drive may be resumed (its finished segments
        are not to be read again)."""
        if self.mode != Mode.FULL or self.sample_percent is not None:
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
        if self.state_dir is None or self.restart:
            return False
        try:
            saved = os.listdir(self.state_dir)
        except OSError:
            return False
        return any(name.startswith(f"{label.shipment}-{label.drive:04d}-") for name in saved)

    def _check_whole_segments(self, segments: set[str], state: VerifyState | None) -> set[str]:
        """Hash each of ``segments`` whole against its manifest record, as ``b3sum --check`` would, on all the
        threads BLAKE3 can use; return those that must be checked chunk by chunk to say what is damaged.

        A segment whose BLAKE3 is the manifest's (which the catalog vouches for) holds every chunk's stored bytes
        as packed, so its chunks need no hash of their own: the intact drive, the usual case, is read once at
        b3sum's speed. A segment missing, of the wrong size, unreadable or with another hash goes to the
        chunk-by-chunk pass, which names each damaged chunk and so each hurt file.
        """
        assert self.reader is not None
        damaged: set[str] = set()
        for name in sorted(segments):
            record = self.manifest.segments[name]
            if self.segment_sizes.get(name) != record.size:
                damaged.add(name)
                continue
            self.hashed_whole.add(name)
            ahead = self.ahead.take(self.path, name) if self.ahead is not None else None
            if ahead is not None:
                digest = ahead.result()
                self.progress.advance(record.size)
            else:
                digest = segment_blake3(self.reader.file(name), self.workers, self.progress.advance)
            if digest != record.blake3:
                damaged.add(name)
                continue
            self.report.bytes_checked += record.size
            self.report.chunks_checked += record.chunks
            if state is not None:
                self._segment_done(name, state)
        return damaged

    def _map_damage_to_paths(self) -> None:
        """A pass over the file records: every piece over a damaged chunk names its path (and its hard links)."""
        assert self.reader is not None
        offsets, first = self.manifest.raw_offsets, self.manifest.first_chunk
        assert first is not None
        damaged = sorted(self.report.damaged_chunks, key=lambda c: c.id)
        starts = [offsets[c.id - first] for c in damaged]
        ends = [offsets[c.id - first + 1] for c in damaged]
        hurt: dict[bytes, list[DamagedChunk]] = {}
        for record in self.reader.records(only=(FileRecord.TYPE, HardlinkRecord.TYPE)):
            if isinstance(record, FileRecord):
                span = self.manifest.piece_range(record)
                if span is None:
                    continue
                # Damaged chunks are disjoint and sorted: the first that ends after the piece starts, and on.
                index = bisect.bisect_right(ends, span[0])
                while index < len(damaged) and starts[index] < span[1]:
                    damaged[index].paths.append(show_path(record.path))
                    hurt.setdefault(record.path, []).append(damaged[index])
                    index += 1
            elif isinstance(record, HardlinkRecord) and record.target in hurt:
                for chunk in hurt[record.target]:
                    chunk.paths.append(show_path(record.path))


class _FileHasher:
    """--deep: hashes each file wholly on this drive from the decoded chunks, in the drive's raw order.

    File records come after their chunks in the manifest, so a second iterator over the manifest walks the file
    pieces while the chunks are fed in order; both advance together and hold one chunk at a time.
    """

    def __init__(self, verifier: DriveVerifier) -> None:
        assert verifier.reader is not None
        self.verifier = verifier
        self.pieces = (r for r in verifier.reader.records() if isinstance(r, FileRecord) and r.length)
        self.current: FileRecord | None = None
        self.skipping = False
        self.span: tuple[int, int] | None = None
        self.hasher = blake3.blake3()
        self.broken = False
        self.skipped = False
        self.position = 0
        #: Files wholly on the drive that could not be hashed because a resume skipped part of them.
        self.unchecked = 0
        self._next_piece()

    def _next_piece(self) -> None:
        self.current = next(self.pieces, None)
        self.span = self.verifier.manifest.piece_range(self.current) if self.current else None
        self.hasher = blake3.blake3()
        self.broken = False
        self.skipped = False

    def skip(self, chunk: ChunkRecord) -> None:
        """A chunk not read in this run (done before a resume, or not sampled)."""
        self.skipping = True
        self.feed(chunk, None)
        self.skipping = False

    def feed(self, chunk: ChunkRecord, raw: bytes | None) -> None:
        """The raw bytes of the next chunk, or None when they are unknown (damaged)."""
        end = self.position + chunk.raw_size
        while self.span is not None and self.span[0] < end:
            lo, hi = max(self.span[0], self.position), min(self.span[1], end)
            if raw is None:
                self.broken = True
                self.skipped = self.skipped or self.skipping
            else:
                self.hasher.update(memoryview(raw)[lo - self.position : hi - self.position])
            if self.span[1] > end:
                break
            self._close_piece()
        self.position = end

    def _close_piece(self) -> None:
        record = self.current
        assert record is not None
        if record.final and record.offset == 0 and self.broken and self.skipped:
            self.unchecked += 1
        if record.final and record.offset == 0 and not self.broken:
            self.verifier.report.files_checked += 1
            if self.hasher.hexdigest() != record.blake3:
                self.verifier.report.add(
                    "file_hash",
                    f"{show_path(record.path)} does not match its whole-file BLAKE3",
                    [show_path(record.path)],
                )
        self._next_piece()


# --- the entry point ----------------------------------------------------------------------------------------


#: A fingerprint given that differs from a drive's in at most this many digits looks mistyped: two fingerprints
#: of different shipments share a digit at a place one time in 16, so they differ in about 15 of every 16.
TYPO_DIGITS = 2


def fingerprint_mismatch(expected: str, computed: str) -> str:
    """Why a drive is not of the shipment whose fingerprint starts with ``expected``: a typo, or another shipment."""
    differ = [i for i, (a, b) in enumerate(zip(expected, computed, strict=False)) if a != b]
    given, found = short_fingerprint(expected.ljust(20, "?")), short_fingerprint(computed)
    if len(differ) <= TYPO_DIGITS:
        where = ", ".join(f"digit {i + 1}: {expected[i]} given, {computed[i]} on the drive" for i in differ)
        return (
            f"the fingerprint given, {given}, differs from this drive's, {found}, in only {len(differ)} of "
            f"{len(expected)} digits ({where}): it looks mistyped; check it against what the sender sent"
        )
    return (
        f"this drive belongs to shipment {found}, not to the expected {given} ({len(differ)} of {len(expected)} "
        "digits differ): it is a drive of another shipment"
    )


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as typed (any case, dashes or spaces between groups) as lowercase hex."""
    digits = "".join(ch for ch in text.lower() if ch not in "- :")
    if len(digits) < MIN_FINGERPRINT_DIGITS or len(digits) > 64 or any(ch not in "0123456789abcdef" for ch in digits):
        raise UsageError(
            f"cannot read fingerprint {text!r}: give at least {MIN_FINGERPRINT_DIGITS} hex digits, "
            "as pack printed them (e.g. 3f9a-12bc-77d0-e145-9abc)"
        )
    return digits


def verify(
    drives: Sequence[str],
    *,
    mode: Mode = Mode.FULL,
    expected_fingerprint: str | None = None,
    sample_percent: float | None = None,
    seed: int | None = None,
    state_dir: str | None = None,
    restart: bool = False,
    threads: int = 0,
    progress: Progress | None = None,
    catalog: str | None = None,
    on_drive: Callable[[DriveReport], None] | None = None,
) -> VerifyReport:
    """Check each drive in ``drives`` alone, read-only, and report what is wrong and which paths it hurts.

    Raises :class:`~sneakernet.errors.UsageError` for bad arguments; damage is never raised, it is reported.
    ``state_dir`` keeps progress for resuming (None: do not keep any). ``on_drive`` is called with each drive's
    report as soon as that drive is checked, in the order given (the drives of another shipment among them are
    only known at the end: the returned report has that problem, reports already handed over get it added).
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

    verifiers = [
        DriveVerifier(path, mode, wanted, sample_percent, seed, state_dir, restart, workers, progress, catalog)
        for path in drives
    ]
    ahead = HashAhead(workers)
    catalogs: dict[str, tuple[CatalogHeader, list[CatalogDrive], CatalogIndex | None, list[str]]] = {}
    db = temporary_database()
    try:
        for verifier in verifiers:
            verifier.catalogs, verifier.db = catalogs, db
            verifier.hash_ahead(ahead)
        # The structure of each drive is checked before the contents of the one before it: the main thread
        # parses a manifest while the segments it waits for are still being hashed ahead.
        waiting: DriveVerifier | None = None
        for verifier in verifiers:
            log.info("verifying %s (%s)", verifier.path, mode.value)
            whole = verifier.check_structure()
            if not whole:
                ahead.forget(verifier.path)
            if waiting is not None:
                done(_finish(waiting, ahead, progress))
            waiting = verifier if whole else None
            if not whole:
                done(verifier.report)
        if waiting is not None:
            done(_finish(waiting, ahead, progress))
        # Known only once every drive is read: the reports already shown get it added (see on_drive).
        _check_pieces(db, reports)
    finally:
        ahead.close()
        progress.close()
        db.close()
    _check_same_shipment(reports)
    return VerifyReport(reports)


def temporary_database() -> sqlite3.Connection:
    """The set-wise checks' database (see DriveVerifier.db): SQLite's own temporary file, removed when closed;
    nothing in it needs to survive a crash, so it is written without a journal or syncs."""
    db = sqlite3.connect("")
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db


def _finish(verifier: DriveVerifier, ahead: HashAhead, progress: Progress) -> DriveReport:
    begin_drive(progress, verifier.report.label or os.path.basename(verifier.path))
    verifier.check_contents()
    ahead.forget(verifier.path)  # segment files the manifest does not list
    report = verifier.report
    log.info("%s: %s, %d bytes checked", verifier.path, report.status, report.bytes_checked)
    return report


#: The pieces of files spanning drives seen on the drives verified together (see :func:`_check_pieces`).
_PIECES_TABLE = (
    "CREATE TABLE IF NOT EXISTS spans (shipment TEXT, path BLOB, drive INTEGER, offset INTEGER, length INTEGER, "
    "size INTEGER, PRIMARY KEY (shipment, path, drive))"
)


def _check_pieces(db: sqlite3.Connection, reports: list[DriveReport]) -> None:
    """The pieces of a file on the drives given abut in drive order, never overlap and never run past its size:
    what restore needs to assemble it (a piece claiming offset 2^40 would be refused there). Each problem goes to
    the report of the drive whose piece does not fit."""
    db.execute(_PIECES_TABLE)
    rows = db.execute(
        "SELECT b.shipment, b.path, b.drive, 'starts at byte ' || b.offset, 'its piece on drive ' || a.drive || "
        "' ends at byte ' || (a.offset + a.length) FROM spans AS a JOIN spans AS b ON a.shipment = b.shipment "
        "AND a.path = b.path AND a.drive < b.drive "
        "WHERE (b.drive = a.drive + 1 AND a.offset + a.length != b.offset) OR a.offset + a.length > b.offset "
        "UNION ALL SELECT a.shipment, a.path, a.drive, 'ends at byte ' || (a.offset + a.length), 'its size is ' || "
        "f.size FROM spans AS a JOIN spans AS f ON a.shipment = f.shipment AND a.path = f.path "
        "WHERE f.size IS NOT NULL AND a.offset + a.length > f.size LIMIT 100"
    ).fetchall()
    for shipment, path, drive, what, other in rows:
        shown = show_path(bytes(path))
        for report in reports:
            if report.shipment == shipment and report.drive == drive:
                message = f"{shown}: its piece on this drive {what}, but {other}: restore cannot assemble it"
                report.add("manifest", message, [shown])
                break


def _stored_bytes(path: str) -> int:
    try:
        return DriveReader(path).label.stored_bytes
    except SneakernetError:
        return 0


def _check_same_shipment(reports: list[DriveReport]) -> None:
    """Drives verified together must be of one shipment; the odd ones out are named."""
    shipments = [r.shipment for r in reports if r.shipment]
    if len(set(shipments)) < 2:
        return
    # The shipment most drives belong to; on a tie, the one of the first drive given (never set order).
    majority = max(dict.fromkeys(shipments), key=shipments.count)
    for report in reports:
        if report.shipment and report.shipment != majority:
            report.add(
                "other_shipment",
                f"this drive is from shipment {report.shipment}, the other drives from {majority}: "
                "a drive of another shipment is mixed in",
                status=Status.WRONG_SHIPMENT,
            )
