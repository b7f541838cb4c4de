"""Restoring a shipment drive by drive, in any order: ``sneakernet.restore()`` and ``sneakernet.status()``.

Each run takes the drives it is given, checks each one whole before writing anything for it (the manifest parses
and matches drive.json and the catalog, every path is a plain relative path, no path appears twice), then writes
the files it carries. A file is assembled under a temporary name in DEST/.sneakernet/parts and appears under its
final name only once complete and matching its whole-file BLAKE3. The journal (journal.py) records what is done,
so running a drive twice is a no-op and a killed run resumes without redoing finished work. When the last drive
is in (every wanted entry of the catalog done in the journal), directory metadata is set (deepest first), the
finished record is written, the journal is removed, and the fingerprint is stated.

Durability: finished files are installed in batches. A batch's files are written, their metadata set, then
``syncfs`` (else ``os.sync()``) makes them durable, then they are renamed to their final names, then the journal
commits them. A crash at any point leaves every final name either absent, or holding the exact, synced bytes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import blake3

from ._version import __version__
from .bundle import (
    CatalogReader,
    ChunkMap,
    DriveReader,
    open_drive_file,
    refuse_non_directory,
)
from .durable import copy_atomic, fsync_dir, sync_filesystem, write_atomic
from .errors import DestinationError, FormatError, OutOfSpace, UnsupportedVersion, UsageError
from .format import (
    CATALOG_NAME,
    DRIVE_LABEL_NAME,
    FINISHED_NAME,
    MAX_CHUNK_SIZE,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    Metadata,
    SymlinkRecord,
    catalog_is_consistent,
    drive_label,
    fold_name,
    short_fingerprint,
    show_path,
)
from .journal import (
    CATALOG_COPY,
    DONE,
    FAILED,
    INSTALLING,
    JOURNAL_DIR,
    JOURNAL_NAME,
    PARTS_DIR,
    PENDING,
    REOPENED,
    ROWS_PER_STATEMENT,
    Entry,
    Journal,
)
from .output import SCHEMA_VERSION, versioned
from .patterns import Include
from .progress import NullProgress, Progress, begin_drive
from .safetree import InTheWay, SafeTree, UnsafePath
from .units import counted, format_size
from .validate import CatalogIndex, ManifestCheck, Seen, seen_of

log = logging.getLogger(__name__)

#: Files installed per batch, and bytes: one syncfs and one journal commit per batch.
BATCH_FILES = 2000
BATCH_BYTES = 256 * 2**20
#: Most raw chunk bytes read ahead (each also held stored while it is decoded).
PREFETCH_BYTES = 32 * 2**20
#: Small files handed to the writer pool in one job, up to this many or this many bytes.
JOB_FILES = 64
JOB_BYTES = 4 * 2**20
#: Records whose journal entries are looked up together (see Journal.prefetch).
LOOKUP_WINDOW = 500
_ENTRY_RECORDS = (FileRecord, DirRecord, SymlinkRecord, HardlinkRecord)
#: Whole files below this size are written on the writer pool; larger ones are written here as their chunks come
#: (from the read-ahead pool), so memory never holds a whole large file.
POOLED_FILE_LIMIT = 8 * 2**20
#: Files below this size hand the writer pool a copy of their bytes rather than a view into their chunk.
SMALL_COPY = 1 << 20
#: Bytes of whole files handed to the writer pool and not yet written (they keep their chunks alive).
INFLIGHT_BYTES = 32 * 2**20
#: Slices of a large file waiting for the hash lane: a few chunks of memory at most.
HASH_LANE_DEPTH = 4
#: How many failed or colliding paths a report lists; the counts are always complete.
LISTED_PATHS = 100
#: Cleared from files unless ``keep_setuid`` (as bsdtar does without -p): a drive from outside must not plant a
#: program that runs with its owner's rights, root's least of all. A directory keeps its setgid bit (and every
#: sticky bit stays): it only gives files made inside later the directory's group and runs nothing, and shared
#: trees rely on it.
SETID_BITS = stat.S_ISUID | stat.S_ISGID


#: The copy, in DEST/.sneakernet, of the manifest of the drive being restored (see DriveReader.pin_manifest).
PINNED_MANIFEST = "drive-manifest.jsonl.zst"
#: A drive whose entries were kept out only by what the destination holds (journal state and report status).
BLOCKED = "blocked"


@dataclass
class DriveOutcome:
    """What one run did with one drive."""

    path: str
    label: str | None = None
    drive: int | None = None
    status: str = "restored"  # restored | already | refused | damaged | blocked
    message: str = ""
    files: int = 0
    bytes: int = 0
    #: Data bytes written, including pieces of files that continue on other drives.
    written: int = 0
    failed: list[str] = field(default_factory=list)
    failed_count: int = 0
    #: Of the failed entries, those the destination was in the way of (a directory where a file goes): nothing
    #: wrong with the drive.
    blocked_count: int = 0
    collisions: list[str] = field(default_factory=list)
    #: Files of the destination replaced by the drive's (a destination restored into with --force): the first
    #: LISTED_PATHS, and how many.
    replaced: list[str] = field(default_factory=list)
    replaced_count: int = 0
    #: Files installed with their setuid/setgid bits cleared (see :data:`SETID_BITS`).
    setid_cleared: int = 0

    @property
    def clean(self) -> bool:
        return self.status in ("restored", "already")


@dataclass
class WaitingDrive:
    drive: int
    label: str
    files: int
    bytes: int
    #: missing | partial (damaged: a good copy is needed) | blocked (the destination was in the way) | reopened
    #: (restored before a later drive showed it carries an included hard link's content: restore it again)
    state: str


@dataclass
class ShipmentStatus:
    """Where a restore stands: which drives are in, which are still needed and what waits on each."""

    dest: str
    shipment: str
    fingerprint: str
    drives: int
    restored: list[int]
    waiting: list[WaitingDrive]
    failed: list[str]
    failed_count: int
    complete: bool
    finished: bool = False
    #: When the restore finished (UTC, ISO 8601), once its journal is gone: from the finished record.
    finished_at: str | None = None
    includes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = versioned(self.__dict__)
        out["waiting"] = [w.__dict__ for w in self.waiting]
        out["short_fingerprint"] = short_fingerprint(self.fingerprint)
        return out


@dataclass
class RestoreReport:
    drives: list[DriveOutcome]
    status: ShipmentStatus
    #: What the last drive's run could not finish for the whole shipment (hard links whose target never came).
    problems: list[str] = field(default_factory=list)
    #: What the user should know that did not stop anything (a damaged catalog copy passed over for another).
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.drives) and not self.problems

    @property
    def setid_cleared(self) -> int:
        """Files this run installed without the setuid/setgid bits the drives gave them."""
        return sum(d.setid_cleared for d in self.drives)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "drives": [d.__dict__ for d in self.drives],
            "problems": self.problems,
            "notes": self.notes,
            "setid_cleared": self.setid_cleared,
            "status": self.status.to_json(),
            "clean": self.clean,
        }


#: The finished record's format name and version (docs/restore.md, "The finished record").
FINISHED_FORMAT = "sneakernet-finished"
FINISHED_VERSION = 1


@dataclass(frozen=True)
class FinishedRecord:
    """DEST/.sneakernet/finished.json: what a finished restore leaves when its journal goes, so that ``status``
    says complete and a drive of the shipment restored again is a no-op instead of a refusal or a new restore."""

    shipment: str
    fingerprint: str
    drives: int
    labels: list[str]
    includes: list[str]
    files: int
    finished: str
    tool: str = f"sneakernet {__version__}"

    def to_json(self) -> dict[str, Any]:
        return {"format": FINISHED_FORMAT, "version": FINISHED_VERSION, **self.__dict__}

    @classmethod
    def from_json(cls, raw: Any) -> FinishedRecord:
        if not isinstance(raw, dict) or raw.get("format") != FINISHED_FORMAT:
            raise ValueError(f"not a {FINISHED_FORMAT} record")
        if raw.get("version") != FINISHED_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, this sneakernet reads version {FINISHED_VERSION}")
        fields = {"shipment": str, "fingerprint": str, "drives": int, "labels": list, "includes": list, "files": int,
                  "finished": str, "tool": str}  # fmt: skip
        for name, kind in fields.items():
            if not isinstance(raw.get(name), kind) or isinstance(raw.get(name), bool):
                raise ValueError(f"{name!r} is missing or not a {kind.__name__}")
        return cls(**{name: raw[name] for name in fields})

    def status(self, dest: str) -> ShipmentStatus:
        return ShipmentStatus(
            dest, self.shipment, self.fingerprint, self.drives, list(range(1, self.drives + 1)), [], [], 0,
            complete=True, finished=True, finished_at=self.finished, includes=self.includes,
        )  # fmt: skip


def read_finished(dest: str) -> FinishedRecord | None:
    """The finished record in ``dest``, None when there is none; a damaged one is refused in one line."""
    path = os.path.join(Journal.directory(dest), FINISHED_NAME)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return FinishedRecord.from_json(json.loads(raw))
    except ValueError as exc:
        raise UsageError(
            f"{path} is damaged ({exc}): it says a restore into {dest} finished; remove it to restore into {dest} again"
        ) from exc


def _write_finished(journal: Journal) -> None:
    """Durably (written under a temporary name, fsynced, renamed, the directory fsynced) before the journal goes."""
    record = FinishedRecord(
        shipment=journal.get_json("shipment"),
        fingerprint=journal.get_json("fingerprint"),
        drives=int(journal.get_json("drives")),
        labels=journal.get_json("labels"),
        includes=journal.get_json("includes") or [],
        files=int(journal.get_json("files") or 0),
        finished=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    directory = Journal.directory(journal.dest)
    write_atomic(os.path.join(directory, FINISHED_NAME), (json.dumps(record.to_json(), indent=2) + "\n").encode())


# --- selecting paths ----------------------------------------------------------------------------------------


class Includes:
    """``--include`` patterns, in the dialect :class:`patterns.Include` names. No pattern: everything."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.rules = [Include(p.encode("utf-8", "surrogateescape")) for p in patterns]
        self.patterns = [rule.pattern for rule in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def wants(self, path: bytes) -> bool:
        if not self.rules:
            return True
        return any(rule.matches(path) for rule in self.rules)

    def refuse_unmatched(self, catalog: str) -> None:
        """A pattern that matches no path of the shipment is a typo, not a wish to restore nothing (tar says so
        too): refused before anything is written. Reads the catalog until every pattern has matched."""
        unmatched = list(self.rules)
        for record in CatalogReader(catalog).records():
            if isinstance(record, CatalogEntry):
                unmatched = [rule for rule in unmatched if not rule.matches(record.path)]
                if not unmatched:
                    return
        shown = ", ".join(repr(rule.pattern.decode("utf-8", "surrogateescape")) for rule in unmatched)
        raise UsageError(
            f"--include {shown} matches no path of the shipment: check the pattern (sneakernet ls DRIVE lists the "
            "paths)"
        )


# --- reading a drive's raw stream -----------------------------------------------------------------------------


class ChunkCursor:
    """Hands out the raw bytes of a drive's chunks for increasing ranges.

    Each chunk read is checked (stored BLAKE3, a bounded decode, raw BLAKE3); a damaged one gives None. With
    ``prefetch`` (a thread pool), the next chunks are read, checked and decoded ahead on all cores while files are
    written; without it (a partial restore), only chunks that are asked for are read.
    """

    def __init__(
        self, reader: DriveReader, chunk_map: ChunkMap, prefetch: ThreadPoolExecutor | None = None, depth: int = 0
    ) -> None:
        self.reader = reader
        self.map = chunk_map
        self.records: Iterator[ChunkRecord] = (
            r for r in reader.records(only=(ChunkRecord.TYPE,)) if isinstance(r, ChunkRecord)
        )
        self.pool = prefetch
        self.depth = depth if prefetch else 0
        self.ahead: deque[tuple[ChunkRecord, Future[bytes | None] | None]] = deque()
        self.index = -1
        self.current: ChunkRecord | None = None
        self.future: Future[bytes | None] | None = None
        self.raw: bytes | None = None
        self.loaded = -1

    def slices(self, start: int, end: int) -> Iterator[tuple[int, memoryview | None]]:
        """``(position, bytes or None)`` covering ``[start, end)`` of the drive's raw stream, in order."""
        offsets = self.map.raw_offsets
        position = start
        while position < end:
            self._seek(position)
            chunk_start, chunk_end = offsets[self.index], offsets[self.index + 1]
            stop = min(end, chunk_end)
            raw = self._load()
            yield position, None if raw is None else memoryview(raw)[position - chunk_start : stop - chunk_start]
            position = stop

    def _seek(self, position: int) -> None:
        offsets = self.map.raw_offsets
        while self.index < 0 or offsets[self.index + 1] <= position:
            self.current, self.future = self.ahead.popleft() if self.ahead else (next(self.records), None)
            self.index += 1

    def _load(self) -> bytes | None:
        if self.loaded != self.index:
            assert self.current is not None
            self.raw = self.future.result() if self.future is not None else self._read(self.current)
            self.loaded = self.index
            self._top_up()
        return self.raw

    def _top_up(self) -> None:
        while self.pool is not None and len(self.ahead) < self.depth:
            record = next(self.records, None)
            if record is None:
                return
            self.ahead.append((record, self.pool.submit(self._read, record)))

    def _read(self, record: ChunkRecord) -> bytes | None:
        try:
            # Every byte restore uses is checked again in its file's whole-file BLAKE3.
            return self.reader.read_chunk(record, check_raw=False)
        except FormatError:
            return None


# --- restoring one drive ------------------------------------------------------------------------------------


@dataclass
class _WriterJob:
    """Whole files written by one job on the writer pool, in order: one future for many small files, not a future
    (and its lock, and a wake-up of a writer) for each."""

    files: list[tuple[bytes, list[memoryview | bytes], int, str, Metadata, tuple[int, int] | None]] = field(
        default_factory=list
    )
    size: int = 0
    #: Set once submitted: for each file, None when it matched its BLAKE3, else why not.
    future: Future[list[str | None]] | None = None


@dataclass
class _Finished:
    part: bytes
    path: bytes
    size: int
    spanning: bool
    #: A file written on the writer pool: its job, and its place among the job's files.
    job: _WriterJob | None = None
    index: int = 0
    #: Its setuid/setgid bits were cleared.
    cleared: bool = False
    #: ``(st_dev, st_ino)`` of the part whose bytes were hashed (a file written here, not on the pool): the part
    #: renamed must be that very file.
    identity: tuple[int, int] | None = None

    def problem(self) -> str | None:
        """Why the file written on the pool cannot be installed (None: it matched); waits for its job."""
        if self.job is None:
            return None
        assert self.job.future is not None
        return self.job.future.result()[self.index]


class DriveRestorer:
    """Writes what one (already validated) drive carries into the destination."""

    def __init__(
        self,
        reader: DriveReader,
        chunk_map: ChunkMap,
        journal: Journal,
        tree: SafeTree,
        includes: Includes,
        outcome: DriveOutcome,
        progress: Progress,
        fold_names: bool,
        spanning: dict[bytes, tuple[Any, int]] | None = None,
        keep_setuid: bool = False,
        parts_fd: int | None = None,
    ) -> None:
        self.reader = reader
        self.drive = reader.label.drive
        self.map = chunk_map
        self.journal = journal
        self.tree = tree
        self.includes = includes
        self.outcome = outcome
        self.progress = progress
        self.fold_names = fold_names
        #: The parts directory, opened once for the run (see :func:`open_parts`); its own when not given.
        self.own_parts = parts_fd is None
        self.parts_fd = open_parts(journal.dest) if parts_fd is None else parts_fd
        self.owner = os.geteuid() == 0
        self.keep_setuid = keep_setuid
        self.batch: list[_Finished] = []
        self.batch_bytes = 0
        self.deferred_links: list[HardlinkRecord] = []
        #: Writes whole files in parallel (set by :meth:`run`); the jobs in flight and the bytes they hold.
        self.writers: ThreadPoolExecutor | None = None
        #: One thread hashing a large file's bytes in order while the main thread writes them: BLAKE3 and pwrite
        #: both let go of the interpreter lock, so the two overlap instead of taking turns.
        self.hash_lane: HashLane | None = None
        #: Files spanning drives whose pieces came in order in this run: their hash so far, and up to where.
        self.spanning: dict[bytes, tuple[Any, int]] = spanning if spanning is not None else {}
        #: The writer job taking files (submitted when full, or when the batch is collected), and those submitted.
        self.job = _WriterJob()
        self.inflight: deque[_WriterJob] = deque()
        self.inflight_bytes = 0
        #: Paths not restored because their name collides on this destination, and so everything below them.
        self.collided: set[bytes] = set()

    def run(self) -> None:
        workers = os.cpu_count() or 1
        # A partial restore reads only the chunks it needs; a whole one reads ahead on every core.
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="sneakernet-read") as pool,
            ThreadPoolExecutor(workers, thread_name_prefix="sneakernet-write") as writers,
        ):
            self.writers, self.hash_lane = writers, HashLane(HASH_LANE_DEPTH)
            # Read ahead two chunks a worker, but never more than PREFETCH_BYTES of chunks (large chunks: fewer).
            chunk_size = self.map.header.chunk_size if self.map.header else MAX_CHUNK_SIZE
            depth = max(1, min(2 * workers, PREFETCH_BYTES // max(chunk_size, 1)))
            try:
                self._run(ChunkCursor(self.reader, self.map, None if self.includes else pool, depth))
            finally:
                self.hash_lane.close()
                self.writers, self.hash_lane = None, None

    def _run(self, cursor: ChunkCursor) -> None:
        wanted = (FileRecord.TYPE, DirRecord.TYPE, SymlinkRecord.TYPE, HardlinkRecord.TYPE)
        try:
            for window in _windows(self.reader.records(only=wanted), LOOKUP_WINDOW):
                # The journal's entries of the window's paths in one statement, not one per record.
                self.journal.prefetch([record.path for record in window if isinstance(record, _ENTRY_RECORDS)])
                for record in window:
                    if isinstance(record, FileRecord):
                        self._file(record, cursor)
                    elif isinstance(record, DirRecord):
                        self._dir(record)
                    elif isinstance(record, SymlinkRecord):
                        self._symlink(record)
                    elif isinstance(record, HardlinkRecord):
                        self._hardlink(record)
            self._flush()
        finally:
            if self.own_parts:
                os.close(self.parts_fd)

    # -- entries --

    def _claim(
        self, path: bytes, kind: str, target: bytes | None = None, final: FileRecord | None = None
    ) -> Entry | None:
        """The journal's entry for ``path``, created if new; None when the path must be skipped."""
        entry = self.journal.entry(path)
        if entry is not None:
            if entry.kind != kind:
                self._fail(path, f"is a {entry.kind} on drive {entry.drive} and a {kind} here")
                return None
            return entry
        if self.fold_names:
            parent, _, name = path.rpartition(b"/")
            inside = next((p for p in _ancestors(path) if p in self.collided), None)
            other = inside or self.journal.claim_name(parent, fold_name(name), path)
            if other is not None:
                what = "lies inside" if inside else "collides with"
                self.outcome.collisions.append(f"{show_path(path)} {what} {show_path(other)}")
                self.collided.add(path)
                return None
        if final is not None and final.final and final.meta is not None:
            # The usual case, a file wholly on this drive: one insert with everything.
            meta = final.meta
            entry = Entry(
                path, kind, self.drive, PENDING, final.size, final.blake3, meta.mode, meta.mtime_ns, meta.uid,
                meta.gid, target, self.drive,
            )  # fmt: skip
        else:
            entry = Entry(path, kind, self.drive, PENDING, None, None, None, None, None, None, target, None)
        self.journal.add_entry(entry)
        return entry

    def _dir(self, record: DirRecord) -> None:
        if not self.includes.wants(record.path) or self._claim(record.path, "dir") is None:
            return
        try:
            self.tree.make_dir(record.path)
        except UnsafePath as exc:
            self._fail(record.path, f"cannot be made: {exc}")
            return
        meta = record.meta
        self.journal.set_final(record.path, self.drive, 0, "", (meta.mode, meta.mtime_ns, meta.uid, meta.gid))
        self.journal.set_state(record.path, DONE)

    def _symlink(self, record: SymlinkRecord) -> None:
        if not self.includes.wants(record.path):
            return
        entry = self._claim(record.path, "symlink", target=record.target)
        if entry is None or entry.state == DONE:
            return
        try:
            self.tree.symlink(record.path, record.target)
        except UnsafePath as exc:
            self._fail(record.path, f"cannot be made: {exc}")
            return
        self.tree.set_metadata(record.path, None, record.meta.mtime_ns, self._owner(record.meta.uid, record.meta.gid))
        self.journal.set_state(record.path, DONE)

    def _hardlink(self, record: HardlinkRecord) -> None:
        if not self.includes.wants(record.path):
            return
        target = record.target
        if not self.includes.wants(target):
            alias = self._alias(target)
            if alias == record.path:
                # This name gets the target's content, from whichever drive carries it (see _place_aliases); until
                # then the completion check counts it as absent, waiting on that drive.
                return
            if alias is None:
                # validate_drive notes every such link before the drive is restored: never silently dropped.
                self._fail(record.path, f"is a hard link to {show_path(target)}, which --include leaves out")
                return
            target = alias
        entry = self._claim(record.path, "hardlink", target=target)
        if entry is None or entry.state == DONE:
            return
        if any(item.path == target for item in self.batch):
            self.deferred_links.append(HardlinkRecord(record.path, target))
        else:
            self._link(record.path, target)

    def _alias(self, target: bytes) -> bytes | None:
        row = self.journal.db.execute("SELECT link FROM aliases WHERE target = ?", (target,)).fetchone()
        return bytes(row[0]) if row else None

    def _link(self, path: bytes, target: bytes) -> None:
        problem = link_pending_or_now(self.journal, self.tree, path, target)
        if problem is not None:
            self._fail(path, problem)

    # -- file data --

    def _file(self, record: FileRecord, cursor: ChunkCursor) -> None:
        path = record.path
        if not self.includes.wants(path):
            alias = self._alias(path)
            if alias is None:
                return
            path = alias  # left out by --include, but a wanted hard link names it: restored under that name
        entry = self._claim(path, "file", final=record)
        if entry is None or entry.state == DONE:
            return
        if record.final and entry.final_drive is None:
            assert record.meta is not None and record.size is not None and record.blake3 is not None
            meta = record.meta
            self.journal.set_final(
                path, self.drive, record.size, record.blake3, (meta.mode, meta.mtime_ns, meta.uid, meta.gid)
            )
        whole = record.final and record.offset == 0
        if whole and self.writers is not None and (record.size or 0) < POOLED_FILE_LIMIT:
            self._write_whole(record, path, new_part_name(), cursor)
            return
        if whole:
            self._whole_file(record, path, cursor)
        else:
            self._piece(record, path, cursor)

    def _whole_file(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> None:
        """A large file wholly on this drive: written as its chunks come, hashed on the hash lane."""
        opened = self._open_part(path, whole=True)
        if opened is None:
            return
        fd, part = opened
        hasher = blake3.blake3()
        try:
            if self._write_piece(fd, record, cursor, hasher, record.offset):
                self._fail(path, f"has damaged bytes on {self.reader.label.label}", part=part)
            elif hasher.hexdigest() != record.blake3:
                self._fail(path, "does not match its BLAKE3", part=part)
            else:
                assert record.meta is not None and record.size is not None
                self._finish(fd, part, path, record.meta, record.size, spanning=False)
        finally:
            os.close(fd)

    def _piece(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> None:
        """A piece of a file spanning drives. The part only ever holds the file's bytes from 0 on, as far as the
        pieces given so far reach without a gap: a piece that lies beyond (its drive came before the one holding
        the bytes before it) waits in a part of its own, as long as itself, until those come. So a part never
        grows past what the drives given supplied (a piece claiming offset 2^40 made a 1 TiB sparse part), and
        pieces that overlap, leave a gap or run past the file's size are refused, naming the drives."""
        pieces = self.journal.pieces(path)
        if any(drive == self.drive for _, _, drive in pieces):
            return  # this drive's piece is in already (a drive restored again after some of its files failed)
        problem = _piece_problem(record, self.drive, self.reader.label.label, pieces, self.journal.entry(path))
        if problem is not None:
            # The other drives' pieces stay: a good copy of this drive completes the file.
            self._fail(path, f"cannot be assembled: {problem}", keep_part=True)
            return
        end = _contiguous_end(pieces)
        if record.offset != end:
            if not self._park(record, path, cursor):
                self.journal.add_piece(path, record.offset, record.length, self.drive)
            return
        # Hashed as written when it follows the bytes hashed so far in this run, else read back at the end.
        hasher, upto = self.spanning.pop(path, (None, -1))
        if record.offset == 0:
            hasher, upto = blake3.blake3(), 0
        if upto != record.offset:
            hasher = None
        opened = self._open_part(path, whole=False)
        if opened is None:
            return
        fd, part = opened
        try:
            os.ftruncate(fd, end)  # whatever a killed run wrote past the pieces recorded
            if self._write_piece(fd, record, cursor, hasher, record.offset):
                self._fail(path, f"has damaged bytes on {self.reader.label.label}", keep_part=True)
                return
            absorbed = self._absorb(fd, path, pieces, record.offset + record.length, hasher)
            if absorbed is None:
                return
            self.journal.add_piece(path, record.offset, record.length, self.drive)
            if hasher is not None:
                self.spanning[path] = (hasher, absorbed)
            entry = self.journal.entry(path)
            if entry is not None and entry.size == absorbed:
                self._finish_spanning(fd, part, path)
        finally:
            os.close(fd)

    def _park(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> bool:
        """Write a piece that does not follow the part's bytes into a part of its own (a random name, recorded in
        the journal under the path and the drive); True if it is damaged (the file fails)."""
        key = _parked_key(path, self.drive)
        known = self.journal.part(key)
        if known is not None:  # a killed run's: made again
            with contextlib.suppress(FileNotFoundError):
                os.unlink(known[0], dir_fd=self.parts_fd)
        name = new_part_name()
        fd = create_part(self.parts_fd, name, self.journal.dest)
        try:
            st = os.fstat(fd)
            self.journal.set_parts([(key, name, st.st_dev, st.st_ino)])
            broken = self._write_piece(fd, record, cursor, None, 0)
        finally:
            os.close(fd)
        if broken:
            self._fail(path, f"has damaged bytes on {self.reader.label.label}", keep_part=True)
            self._drop_parked(key)
        return broken

    def _absorb(self, fd: int, path: bytes, pieces: list[tuple[int, int, int]], end: int, hasher: Any) -> int | None:
        """Append to the part, in order, the parked pieces that now follow its bytes; the new end of its bytes, or
        None when a parked piece is gone or was replaced (the file is failed: its drive must be restored again)."""
        for offset, length, drive in pieces:
            if offset != end or not length:
                continue
            source = self._open_parked(path, drive)
            if source is None:
                self._fail(
                    path, f"lost its piece of drive {drive} from DEST/.sneakernet/parts: restore that drive again"
                )
                return None
            try:
                position = 0
                while position < length and (data := os.pread(source, min(1 << 22, length - position), position)):
                    if hasher is not None:
                        hasher.update(data)
                    _pwrite_all(fd, data, end + position, self.journal.dest)
                    position += len(data)
            finally:
                os.close(source)
            if position != length:
                self._fail(path, f"lost bytes of its piece of drive {drive} from DEST/.sneakernet/parts")
                return None
            end += length
        return end

    def _open_parked(self, path: bytes, drive: int) -> int | None:
        """The parked piece of ``drive``, opened for reading if it is still the file restore made, else None."""
        known = self.journal.part(_parked_key(path, drive))
        if known is None:
            return None
        name, dev, ino = known
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC, dir_fd=self.parts_fd)
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino) or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd

    def _drop_parked(self, key: bytes) -> None:
        known = self.journal.part(key)
        if known is not None:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(known[0], dir_fd=self.parts_fd)
            self.journal.drop_parts([key])

    def _drop_pieces(self, path: bytes) -> None:
        """Forget the pieces of ``path`` and remove the parts of their own that any of them waited in."""
        for _, _, drive in self.journal.pieces(path):
            self._drop_parked(_parked_key(path, drive))
        self.journal.drop_pieces(path)

    def _open_part(self, path: bytes, whole: bool) -> tuple[int, bytes] | None:
        """The part to write ``path``'s bytes into, and its name: a new one (O_EXCL, a random name) for a whole file
        or the first piece of a file spanning drives; else the one the journal recorded, refused (the file fails,
        None) when it is gone or is not the file that was made (replaced since an earlier drive wrote into it)."""
        known = None if whole else self.journal.part(path)
        if known is None:
            name = new_part_name()
            fd = create_part(self.parts_fd, name, self.journal.dest)
            if not whole:
                st = os.fstat(fd)
                self.journal.set_parts([(path, name, st.st_dev, st.st_ino)])
            return fd, name
        name, dev, ino = known
        try:
            fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | _CLOEXEC, dir_fd=self.parts_fd)
        except FileNotFoundError:
            self._fail(path, "lost its part (the bytes of its earlier drives) from DEST/.sneakernet/parts")
            return None
        except OSError as exc:
            self._fail(path, f"has a part that cannot be opened ({exc.strerror}): it is not the file restore made")
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino) or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._fail(path, "has a part that was replaced since an earlier drive wrote into it: not installed")
            return None
        return fd, name

    def _write_whole(self, record: FileRecord, path: bytes, part: bytes, cursor: ChunkCursor) -> None:
        """A file wholly on this drive, the usual case: its (already checked) chunk bytes are handed to the writer
        pool, which writes, hashes and closes it; the batch installs it once the job said it matched."""
        assert record.meta is not None and record.size is not None and record.blake3 is not None
        span = self.map.piece_range(record)
        pieces = list(cursor.slices(*span)) if span else []
        if any(data is None for _, data in pieces):
            self._fail(path, f"has damaged bytes on {self.reader.label.label}")
            return
        # A small file's slice is copied out: a view would keep its whole chunk alive while the job waits.
        datas = [data if record.size >= SMALL_COPY else bytes(data) for _, data in pieces if data is not None]
        owner = (record.meta.uid, record.meta.gid) if self.owner else None
        meta, cleared = self._file_meta(record.meta)
        job = self.job
        job.files.append((part, datas, record.size, record.blake3, meta, owner))
        job.size += record.size
        self.outcome.written += record.size
        self.progress.advance(record.size)
        self.batch.append(_Finished(part, path, record.size, False, job, len(job.files) - 1, cleared))
        if len(job.files) >= JOB_FILES or job.size >= JOB_BYTES:
            self._submit_job()
        self.batch_bytes += record.size
        if len(self.batch) >= BATCH_FILES or self.batch_bytes >= BATCH_BYTES:
            self._flush()

    def _submit_job(self) -> None:
        job, self.job = self.job, _WriterJob()
        if not job.files:
            return
        assert self.writers is not None
        # The job lets go of its files' bytes as it is handed over: the batch keeps it (for its results) until
        # the batch is installed, up to BATCH_BYTES later.
        files, job.files = job.files, []
        job.future = self.writers.submit(_write_files, self.parts_fd, files, self.journal.dest)
        self.inflight.append(job)
        self.inflight_bytes += job.size
        # The jobs hold their chunks' bytes: bound them.
        while self.inflight and self.inflight_bytes > INFLIGHT_BYTES:
            done = self.inflight.popleft()
            assert done.future is not None
            done.future.exception()
            self.inflight_bytes -= done.size

    def _write_piece(self, fd: int, record: FileRecord, cursor: ChunkCursor, hasher: Any, at: int) -> bool:
        """Write the piece's bytes into ``fd`` from offset ``at`` on, hashing them with ``hasher`` (if any) in
        order; True if some of its chunks are damaged."""
        span = self.map.piece_range(record)
        if span is None:
            return False
        broken = False
        lane = self.hash_lane
        try:
            for position, data in cursor.slices(*span):
                if data is None:
                    broken = True
                    continue
                if hasher is not None:
                    if lane is None:
                        hasher.update(data)
                    else:
                        lane.update(hasher, data)
                _pwrite_all(fd, data, at + position - span[0], self.journal.dest)
                self.outcome.written += len(data)
                self.progress.advance(len(data))
        finally:
            if lane is not None:
                lane.drain()  # the hasher is complete when this returns
        return broken

    def _finish_spanning(self, fd: int, part: bytes, path: bytes) -> None:
        """A file spanning drives whose every byte is in its part: hash the assembled part and install it."""
        entry = self.journal.entry(path)
        assert entry is not None and entry.size is not None
        hasher, position = self.spanning.pop(path, (blake3.blake3(), 0))
        # Pieces that came in order in this run were hashed as they were written; the rest is read back.
        while data := os.pread(fd, 1 << 22, position):
            hasher.update(data)
            position += len(data)
        if hasher.hexdigest() != entry.blake3:
            self._fail(path, "does not match its BLAKE3 once assembled from its drives", part=part)
            return
        assert entry.mode is not None and entry.mtime_ns is not None and entry.uid is not None
        assert entry.gid is not None
        meta = Metadata(entry.mode, entry.mtime_ns, entry.uid, entry.gid)
        self._finish(fd, part, path, meta, entry.size, spanning=True)

    def _finish(self, fd: int, part: bytes, path: bytes, meta: Metadata, size: int, spanning: bool) -> None:
        meta, cleared = self._file_meta(meta)
        if self.owner:
            os.fchown(fd, meta.uid, meta.gid)
        os.fchmod(fd, meta.mode)
        os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
        st = os.fstat(fd)
        self.batch.append(_Finished(part, path, size, spanning, cleared=cleared, identity=(st.st_dev, st.st_ino)))
        self.batch_bytes += size
        self.outcome.files += 1
        self.outcome.bytes += size
        if len(self.batch) >= BATCH_FILES or self.batch_bytes >= BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Make the batch durable, install it under final names, then record it (see the module docstring)."""
        self._collect_jobs()
        if self.batch:
            log.debug("installing %d files (%d bytes)", len(self.batch), self.batch_bytes)
            sync_filesystem(self.parts_fd)
            # Recorded before the renames: a run killed among them finds these and completes them (see
            # recover_installing), as their parts were verified and synced.
            self.journal.set_states([item.path for item in self.batch], INSTALLING)
            self.journal.set_parts([(item.path, item.part, *(item.identity or (None, None))) for item in self.batch])
            self.journal.commit()
            installed = []
            for item in self.batch:
                if not self._same_part(item):
                    self._fail(item.path, "has a part that was replaced after it was hashed: not installed")
                    continue
                try:
                    self.tree.install(self.parts_fd, item.part, item.path)
                except UnsafePath as exc:
                    os.unlink(item.part, dir_fd=self.parts_fd)
                    # A directory of the destination's where a file goes is in the way; anything else (a symlink
                    # above it, of this very shipment maybe) is not the destination's doing.
                    if isinstance(exc, InTheWay):
                        where = "is a directory in the destination, where the shipment has a file"
                        self._fail(item.path, where, in_the_way=True)
                    else:
                        self._fail(item.path, f"cannot be installed: {exc}")
                    continue
                except OSError as exc:
                    raise _space_error(exc, self.journal.dest) from exc
                installed.append(item.path)
                self.outcome.setid_cleared += item.cleared
                if item.spanning:
                    self._drop_pieces(item.path)
            # The renames are durable before the journal calls the files done.
            sync_filesystem(self.parts_fd)
            self.journal.set_states(installed, DONE)
            self.journal.drop_parts([item.path for item in self.batch])
            if self.journal.has_pending_links():
                for path in installed:
                    link_waiting(self.journal, self.tree, path)
        for link in self.deferred_links:
            self._link(link.path, link.target)
        self.journal.commit()
        self.batch, self.batch_bytes, self.deferred_links = [], 0, []

    def _collect_jobs(self) -> None:
        """Wait for the batch's writer jobs; a file that did not match is failed, the others count as done."""
        self._submit_job()
        kept = []
        for item in self.batch:
            problem = item.problem()
            if problem is not None:
                self._fail(item.path, problem, part=item.part)
                continue
            if item.job is not None:
                self.outcome.files += 1
                self.outcome.bytes += item.size
            kept.append(item)
        self.batch = kept
        self.inflight.clear()
        self.inflight_bytes = 0

    def _same_part(self, item: _Finished) -> bool:
        """Whether the part about to be renamed is still the file whose bytes were hashed (for a file written on
        the pool, made O_EXCL under a random name moments ago, there is nothing to compare)."""
        if item.identity is None:
            return True
        try:
            st = os.stat(item.part, dir_fd=self.parts_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == item.identity

    def _fail(
        self, path: bytes, reason: str, keep_part: bool = False, in_the_way: bool = False, part: bytes | None = None
    ) -> None:
        """``path`` is not restored; ``in_the_way``: because of what the destination holds, not the drive.
        ``part``: its part, when known (else the journal's, if any), removed unless ``keep_part``."""
        if self.journal.entry(path) is not None:
            self.journal.set_state(path, FAILED)
        self.outcome.failed_count += 1
        self.outcome.blocked_count += in_the_way
        if len(self.outcome.failed) < LISTED_PATHS:
            self.outcome.failed.append(f"{show_path(path)} {reason}")
        if not keep_part:
            self._drop_pieces(path)
            known = self.journal.part(path)
            self.journal.drop_parts([path])
            for name in {part, known[0] if known else None} - {None}:
                assert name is not None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self.parts_fd)

    def _owner(self, uid: int, gid: int) -> tuple[int, int] | None:
        return (uid, gid) if self.owner else None

    def _file_meta(self, meta: Metadata) -> tuple[Metadata, bool]:
        """A file's metadata as installed: without setuid/setgid unless kept; and whether any was cleared."""
        if self.keep_setuid or not meta.mode & SETID_BITS:
            return meta, False
        return replace(meta, mode=meta.mode & ~SETID_BITS), True


class HashLane:
    """BLAKE3 updates run in order on a thread of their own, so that the thread writing the same bytes overlaps
    with the hashing instead of taking turns with it (both pwrite and BLAKE3 free the interpreter lock). At most
    ``depth`` updates wait, each holding its buffer. :meth:`drain` before reading a digest."""

    def __init__(self, depth: int = 4) -> None:
        self.depth = depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sneakernet-hash")
        self._pending: deque[Future[None]] = deque()

    def update(self, hasher: Any, data: bytes | memoryview) -> None:
        self._pending.append(self._pool.submit(hasher.update, data))
        while len(self._pending) > self.depth:
            self._pending.popleft().result()

    def drain(self) -> None:
        """Every update handed over so far is done."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _write_files(
    parts_fd: int,
    files: list[tuple[bytes, list[memoryview | bytes], int, str, Metadata, tuple[int, int] | None]],
    dest: str,
) -> list[str | None]:
    """On the writer pool: the files of one job, in order (see :func:`_write_file`)."""
    return [_write_file(parts_fd, *file, dest) for file in files]


def _write_file(
    parts_fd: int,
    part: bytes,
    datas: list[memoryview | bytes],
    size: int,
    expected: str,
    meta: Metadata,
    owner: tuple[int, int] | None,
    dest: str,
) -> str | None:
    """On the writer pool: write a whole file's bytes into its part, hashing them as they go; set its metadata.
    Returns None when it matched its BLAKE3, else why not."""
    fd = create_part(parts_fd, part, dest)
    try:
        hasher = blake3.blake3()
        offset = 0
        for data in datas:
            _pwrite_all(fd, data, offset, dest)
            hasher.update(data)
            offset += len(data)
        if offset != size or hasher.hexdigest() != expected:
            return "does not match its BLAKE3"
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, meta.mode)
        os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
    finally:
        os.close(fd)
    return None


def _pwrite_all(fd: int, data: memoryview | bytes, offset: int, dest: str) -> None:
    """Write all of ``data`` at ``offset``: a short write (a filling disk) is continued, never ignored."""
    while data:
        try:
            written = os.pwrite(fd, data, offset)
        except OSError as exc:
            raise _space_error(exc, dest) from exc
        if written == 0:
            raise OutOfSpace(f"the destination {dest} takes no more bytes: free space and run the same restore again")
        data, offset = data[written:], offset + written


def _ancestors(path: bytes) -> Iterator[bytes]:
    """``a``, ``a/b`` for ``a/b/c``."""
    parts = path.split(b"/")
    for depth in range(1, len(parts)):
        yield b"/".join(parts[:depth])


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: How a part is made: a new file (never one that exists, whatever it is: a planted hard link or symlink is
#: refused, not written through), not inherited by the programs a hook may run.
_NEW_PART = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def new_part_name() -> bytes:
    """A part's name: 128 random bits, so that nothing can name a part before restore makes it (a name derived
    from the path, as before, let a shipment put its own file there)."""
    return secrets.token_hex(16).encode("ascii") + b".part"


def _parked_key(path: bytes, drive: int) -> bytes:
    """What the journal records the part of drive ``drive``'s parked piece of ``path`` under (a NUL, which no
    shipment path holds, keeps it apart from every path)."""
    return path + b"\0%d" % drive


def _contiguous_end(pieces: list[tuple[int, int, int]]) -> int:
    """Where the bytes of a file's pieces (sorted by offset) reach from 0 without a gap: what its part holds."""
    end = 0
    for offset, length, _ in pieces:
        if offset != end:
            break
        end += length
    return end


def _piece_problem(
    record: FileRecord, drive: int, label: str, pieces: list[tuple[int, int, int]], entry: Entry | None
) -> str | None:
    """Why a piece on drive ``label`` cannot be part of its file beside the ``pieces`` other drives gave (None: it
    can). Pieces are contiguous in drive order: the piece of the drive before ends where this one starts, the next
    drive's starts where this one ends; none overlap; none runs past the file's size."""
    start, end = record.offset, record.offset + record.length
    size = record.size if record.final else entry.size if entry is not None else None
    here = f"its piece on {label}"
    if size is not None and end > size:
        return f"{here} ends at byte {end}, past its size of {size} bytes"
    for offset, length, other in pieces:
        there = f"its piece on drive {other}"
        if size is not None and offset + length > size:
            return f"{there} ends at byte {offset + length}, past its size of {size} bytes"
        if (other == drive - 1 and offset + length != start) or (other < drive and offset + length > start):
            return f"{here} starts at byte {start}, but {there} ends at byte {offset + length} (pieces must abut)"
        if (other == drive + 1 and offset != end) or (other > drive and offset < end):
            return f"{here} ends at byte {end}, but {there} starts at byte {offset} (pieces must abut)"
    return None


def create_part(parts_fd: int, name: bytes, dest: str) -> int:
    """Make part ``name`` in the parts directory (``O_EXCL|O_NOFOLLOW``); a descriptor open for reading and writing."""
    try:
        return os.open(name, _NEW_PART, 0o600, dir_fd=parts_fd)
    except OSError as exc:
        raise _space_error(exc, dest) from exc


def open_parts(dest: str) -> int:
    """DEST/.sneakernet/parts, each level opened with O_NOFOLLOW: every part is reached through this descriptor,
    and a symlink put in place of either directory is refused, never followed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
    try:
        top = os.open(Journal.directory(dest), flags)
        try:
            return os.open(PARTS_DIR, flags, dir_fd=top)
        finally:
            os.close(top)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DestinationError(
                f"{os.path.join(Journal.directory(dest), PARTS_DIR)} is a symlink or not a directory: it must be "
                "restore's own directory; remove it and run the same restore again"
            ) from exc
        raise _space_error(exc, dest) from exc


def sweep_parts(journal: Journal, parts_fd: int) -> None:
    """Remove the parts no journal entry names: those of files a killed run was writing (made again from the
    drive) and any file put there meanwhile."""
    kept = journal.part_names()
    for name in os.listdir(parts_fd):
        raw = os.fsencode(name)
        if raw not in kept:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                os.unlink(raw, dir_fd=parts_fd)


def _legacy_part_name(path: bytes) -> bytes:
    """The part name a sneakernet before random part names gave ``path``: only to finish an install a run of it
    was killed in (its journal records the state, not the name)."""
    return blake3.blake3(path).hexdigest()[:40].encode("ascii") + b".part"


def _windows(records: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """``records`` in lists of ``size`` (the last one shorter)."""
    while window := list(itertools.islice(records, size)):
        yield window


def link_pending_or_now(journal: Journal, tree: SafeTree, path: bytes, target: bytes) -> str | None:
    """Create hard link ``path`` now if its target is installed, else leave it pending in the journal (its target
    may be on a drive still to come). Returns why it cannot be made, if it cannot."""
    target_entry = journal.entry(target)
    if target_entry is None or (target_entry.state != DONE and target_entry.kind == "file"):
        return None
    if target_entry.kind != "file":
        return f"is a hard link to {show_path(target)}, a {target_entry.kind}, not a regular file"
    try:
        tree.hardlink(target, path)
    except (UnsafePath, FileNotFoundError) as exc:
        return f"cannot be linked: {exc}"
    journal.set_state(path, DONE)
    return None


def link_waiting(journal: Journal, tree: SafeTree, target: bytes) -> None:
    """Hard links that were waiting for ``target``."""
    rows = journal.db.execute(
        "SELECT path FROM entries WHERE kind = 'hardlink' AND state = ? AND target = ?", (PENDING, target)
    ).fetchall()
    for (path,) in rows:
        problem = link_pending_or_now(journal, tree, bytes(path), target)
        if problem is not None:
            journal.set_state(bytes(path), FAILED)


def _remove_journal(dest: str) -> None:
    """Remove a restore's journal, the journal itself last: a finished one's run killed meanwhile leaves a
    journal that says finished, and the next run just finishes again. The finished record (written before)
    stays; without one, the directory goes too."""
    directory = Journal.directory(dest)
    for name in os.listdir(directory):
        if name not in (JOURNAL_NAME, FINISHED_NAME):
            path = os.path.join(directory, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    os.unlink(os.path.join(directory, JOURNAL_NAME))
    if os.listdir(directory):
        fsync_dir(directory)
    else:
        os.rmdir(directory)  # no finished record: a restore given up before it began leaves nothing


def _journal_error(exc: sqlite3.OperationalError, dest: str) -> Exception:
    if "full" in str(exc).lower():
        return _space_error(OSError(errno.ENOSPC, str(exc)), dest)
    return exc


def _space_error(exc: OSError, dest: str) -> Exception:
    """What a failed write into the destination tells the user: full, or what else (never a traceback)."""
    # Only a journal keeps anything: a destination that could not even take one (read-only) holds nothing of it.
    kept = (
        "the journal keeps everything already done"
        if os.path.exists(os.path.join(Journal.directory(dest), JOURNAL_NAME))
        else "nothing was written"
    )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutOfSpace(
            f"the destination {dest} is full ({exc.strerror}): free space and run the same restore again; {kept}"
        )
    where = f" ({os.fsdecode(exc.filename)})" if exc.filename else ""
    return DestinationError(
        f"cannot write into the destination {dest}: {exc.strerror or exc}{where}; fix that and run the same "
        f"restore again ({kept})"
    )


def _shipment_named(reader: DriveReader) -> str:
    """A drive's shipment as a person can match it: its id, and the fingerprint when the drive carries the catalog."""
    from .info import catalog_header

    try:
        header = catalog_header(reader)
    except FormatError:
        header = None
    known = f" (fingerprint {short_fingerprint(header.fingerprint)})" if header is not None else ""
    return reader.label.shipment + known


def check_room(label: str, needed: int, dest: str) -> None:
    """Refuse a drive whose data does not fit in the destination's free space, before anything of it is written:
    a restore that fills the destination stops half way, with its parts area full, to be freed and run again.

    ``needed`` is the data bytes of the drive's chunks, from its manifest once checked (drive.json's count is not
    trusted); a drive partly restored by a killed run counts whole. Files are written once, under
    .sneakernet/parts, then renamed into place on the same filesystem.
    """
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if needed > free:
        raise OutOfSpace(
            f"{label} carries {format_size(needed)} of data and the destination {dest} has {format_size(free)} free: "
            f"free {format_size(needed - free)} or more (or --include a part, or --no-space-check on a filesystem "
            f"that compresses), then run the same restore again; nothing of {label} was written"
        )


# --- checking a drive before writing anything ----------------------------------------------------------------


def validate_drive(reader: DriveReader, journal: Journal, includes: Includes | None = None) -> ChunkMap:
    """Read the whole manifest and refuse the drive (FormatError) if anything would be unsafe or wrong: every
    record through the validation verify runs too (validate.py: bounds, paths, chunks against their segments),
    no path twice, none inside a path that is not a directory, and the drive's entries exactly the catalog's for
    it (the catalog, indexed in the journal, names the one drive that finishes each path).

    With ``includes``, it also notes in the journal's ``aliases`` each file left out by the patterns that a
    wanted hard link names: its content is restored under the first such link's name instead, from whichever
    drive carries it (see :func:`_place_aliases`).
    """
    chunk_map = ChunkMap()
    expected = journal.manifest_of_catalog(reader.label.drive)
    if expected is None:
        raise FormatError(f"the catalog has no drive {reader.label.drive}")
    if reader.label.manifest_blake3 != expected:
        raise FormatError("its manifest is not the one the catalog names for this drive (a drive of another copy?)")
    db = journal.db
    if includes:
        journal.make_aliases()
    check = ManifestCheck()
    index = CatalogIndex(db)

    def entries() -> Iterator[Seen]:
        for record in reader.records():
            if problems := check.check(record):
                raise FormatError(problems[0])
            if isinstance(record, ManifestHeader):
                chunk_map.header = record
            elif isinstance(record, ChunkRecord):
                chunk_map.add_chunk(record)
            elif isinstance(record, _ENTRY_RECORDS):
                if isinstance(record, FileRecord):
                    chunk_map.piece_range(record)
                elif (
                    isinstance(record, HardlinkRecord)
                    and includes
                    and includes.wants(record.path)
                    and not includes.wants(record.target)
                ):
                    db.execute(
                        "INSERT OR IGNORE INTO aliases (target, link) VALUES (?, ?)", (record.target, record.path)
                    )
                seen = seen_of(record)
                if seen is not None:
                    yield seen
        if problems := check.finish():
            raise FormatError(problems[0])

    for problem in itertools.chain(index.load_seen(entries()), index.compare(reader.label.drive)):
        raise FormatError(problem)
    return chunk_map


def index_catalog(journal: Journal, catalog: str) -> None:
    """The catalog's entries into the journal (validate.CatalogIndex), once per restore: what each drive is
    checked against. A catalog that lists a path twice or out of drive order lies: UsageError."""
    index = CatalogIndex(journal.db)
    if index.built() or journal.get("finished") == "true":
        return
    entries = (r for r in CatalogReader(catalog).records() if isinstance(r, CatalogEntry))
    try:
        lies = index.build(entries)
    except FormatError as exc:
        raise UsageError(f"the catalog {catalog} is damaged ({exc}): use another drive's catalog") from exc
    if lies:
        journal.db.rollback()
        raise UsageError(f"{lies[0]}: use another drive's catalog (--catalog FILE), or ask the sender for one")
    journal.commit()


# --- the entry points ---------------------------------------------------------------------------------------


def _journal_for(
    dest: str,
    readers: list[DriveReader],
    includes: Includes,
    force: bool,
    catalog: str | None = None,
    notes: list[str] | None = None,
) -> Journal:
    """Open the destination's journal, or start one from ``catalog`` or the first good catalog among the drives
    (``notes`` is told of damaged copies passed over)."""
    notes = notes if notes is not None else []
    if Journal.exists(dest):
        journal = _open_journal(dest)
        stored = journal.get_json("includes") or []
        given = [p.decode("utf-8", "surrogateescape") for p in includes.patterns]
        if includes and given != stored:
            journal.close()
            raise UsageError(
                f"{dest} is a restore with --include {stored or '(everything)'}: give the same patterns or none"
            )
        try:
            _mend_catalog_copy(journal, readers, catalog, notes)
            # A run killed while it indexed the catalog (or a journal made before the index existed).
            index_catalog(journal, os.path.join(Journal.directory(dest), CATALOG_COPY))
        except UsageError:
            journal.close()
            raise
        return journal
    # A run killed while it set up its journal leaves .sneakernet without one: that is no user data.
    over_existing = os.path.isdir(dest) and bool(set(os.listdir(dest)) - {JOURNAL_DIR})
    if over_existing and not force:
        raise UsageError(
            f"{dest} is not empty and holds no restore of a shipment: give an empty directory, or --force to restore "
            "over what it holds (files where the shipment has files are replaced, and named)"
        )
    if catalog is None:
        catalog, header, drives = _first_good_catalog(readers, notes)
    elif not os.path.isfile(catalog):
        raise UsageError(f"catalog {catalog} is not a file: give the catalog.jsonl.zst of the shipment")
    else:
        header, drives = read_catalog(catalog)
    if includes:
        includes.refuse_unmatched(catalog)
    # The catalog copy first, whole and durable: the journal, made last, is what says a restore exists.
    os.makedirs(os.path.join(Journal.directory(dest), PARTS_DIR), exist_ok=True)
    copy = os.path.join(Journal.directory(dest), CATALOG_COPY)
    _copy_catalog(catalog, copy)
    with contextlib.suppress(FileNotFoundError):
        # Forced over a finished restore of another shipment: that record no longer says what DEST holds.
        os.unlink(os.path.join(Journal.directory(dest), FINISHED_NAME))
    journal = Journal.create(
        dest,
        {
            "shipment": header.shipment,
            "fingerprint": header.fingerprint,
            "drives": header.drives,
            "files": header.files,
            "manifests": [d.manifest_blake3 for d in drives],
            "labels": [d.label for d in drives],
            "includes": [p.decode("utf-8", "surrogateescape") for p in includes.patterns],
            # Restored over what DEST held (--force): what each install replaces is counted and named.
            "over_existing": over_existing,
        },
    )
    try:
        index_catalog(journal, copy)
    except UsageError:
        # Nothing restored yet: the lying catalog leaves no restore behind, another catalog starts afresh.
        journal.close()
        _remove_journal(dest)
        raise
    return journal


def _copy_catalog(catalog: str, copy: str) -> None:
    """``catalog`` copied to ``copy`` durably before anything (the journal) can say the copy is there; its
    temporary file O_EXCL|O_NOFOLLOW: a symlink left in the journal directory is refused, never written through."""
    with open_drive_file(catalog) as original:
        copy_atomic(original, copy, 0o600)


def _catalog_copy_problem(journal: Journal) -> str | None:
    """What is wrong with the catalog copy of ``journal``'s restore, None when it reads whole and is of the
    journal's shipment. A journal of an older sneakernet, which did not fsync the copy, can outlive it after a
    power loss: the copy empty, cut or missing."""
    copy = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    if not os.path.lexists(copy):
        return "missing"
    try:
        header, _ = read_catalog(copy)
    except UsageError as exc:
        return f"damaged ({exc.__cause__ or exc})"
    if header.fingerprint != journal.get_json("fingerprint"):
        return "of another shipment"
    return None


def _mend_catalog_copy(journal: Journal, readers: list[DriveReader], catalog: str | None, notes: list[str]) -> None:
    """A bad catalog copy (see :func:`_catalog_copy_problem`) copied again from ``catalog`` or the first drive
    given whose catalog reads whole and is the journal's shipment's; without one, UsageError saying what to
    give. A finished restore's copy is not read again (it may be gone)."""
    if journal.get("finished") == "true" or (problem := _catalog_copy_problem(journal)) is None:
        return
    copy = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    fingerprint = journal.get_json("fingerprint")
    candidates = [catalog] if catalog is not None else [r.file(CATALOG_NAME) for r in readers]
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        try:
            header, _ = read_catalog(candidate)
        except UsageError:
            continue
        if header.fingerprint == fingerprint:
            _copy_catalog(candidate, copy)
            notes.append(f"the catalog copy {copy} was {problem}: copied it again from {candidate}")
            return
    given = f"--catalog {catalog} is not a good catalog of it" if catalog else "none of these drives carries it"
    raise UsageError(
        f"the catalog copy {copy} is {problem} and {given}: restore with a drive of shipment "
        f"{short_fingerprint(fingerprint)} that carries its catalog, or give --catalog FILE"
    )


def _first_good_catalog(readers: list[DriveReader], notes: list[str]) -> tuple[str, CatalogHeader, list[CatalogDrive]]:
    """The catalog of the first drive given whose copy reads whole and matches its fingerprint: every drive carries
    the same catalog, so one damaged copy does not stop a restore that other drives can start. ``notes`` is told
    which copies were passed over and which was used."""
    damaged: list[tuple[DriveReader, UsageError]] = []
    for reader in readers:
        path = reader.file(CATALOG_NAME)
        if not os.path.lexists(path):
            continue
        try:
            header, drives = read_catalog(path)
        except UsageError as exc:
            damaged.append((reader, exc))
            continue
        for bad, why in damaged:
            notes.append(f"the catalog of {bad.label.label} ({bad.path}) is damaged ({why.__cause__ or why}): used the "
                         f"copy on {reader.label.label} ({reader.path})")  # fmt: skip
        return path, header, drives
    if damaged:
        raise damaged[0][1]
    raise UsageError(
        "none of these drives carries the shipment's catalog: restore first a drive that does (with --out every "
        "drive does; with --swap the last one), or give --catalog with the sender's copy"
    )


def read_catalog(path: str) -> tuple[CatalogHeader, list[CatalogDrive]]:
    """A catalog's header and drive list, after reading it whole (FormatError when damaged or inconsistent)."""
    try:
        header, drives = CatalogReader(path).drives()
    except UnsupportedVersion:
        raise  # not damage: every drive's copy is of that version, and a newer release reads it
    except FormatError as exc:
        raise UsageError(f"the catalog {path} is damaged ({exc}): use another drive's catalog") from exc
    if not catalog_is_consistent(header, drives):
        raise UsageError(f"the catalog {path} is inconsistent with its fingerprint: use another drive's catalog")
    return header, drives


def _probe_folding(dest: str) -> bool:
    """Whether the destination's filesystem merges names that differ in case or Unicode normalisation."""
    directory = Journal.directory(dest)
    probe = os.path.join(directory, "Probe-\u00e9")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)  # left by a killed run, or a symlink: never written through
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o600))
        folded = os.path.exists(os.path.join(directory, "probe-\u00e9")) or os.path.exists(
            os.path.join(directory, "Probe-e\u0301")
        )
    finally:
        os.remove(probe)
    return folded


def restore(
    drives: Sequence[str],
    into: str,
    *,
    include: Sequence[str] = (),
    keep_journal: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    catalog: str | None = None,
    check_space: bool = True,
    on_drive: Callable[[DriveOutcome], None] | None = None,
    keep_setuid: bool = False,
) -> RestoreReport:
    """Restore what ``drives`` carry into ``into``; finish the shipment when its last drive is in.

    With ``check_space`` (and no ``include``), drives whose data exceeds the destination's free space are refused
    up front (:func:`check_room`); without it, a destination that fills stops the restore, as it would anyway.

    Files lose their setuid and setgid bits (each drive's ``setid_cleared`` counts them) unless ``keep_setuid``:
    for a shipment from a sender trusted to plant programs that run as their owners.

    Drives that fail their checks are refused with nothing written for them and reported; damaged files are
    never installed and are reported. ``on_drive`` is called with each drive's outcome as soon as that drive is
    done (a drive gone over again for a hard link's content, once more with what that pass did). Raises
    :class:`~sneakernet.errors.UsageError` for bad arguments and :class:`~sneakernet.errors.OutOfSpace` when the
    destination fills (the journal keeps what is done).
    """
    if not drives:
        raise UsageError("give at least one drive to restore")
    refuse_non_directory(into, "destination")
    readers = [DriveReader(path) for path in drives]
    refuse_nested(readers, into)
    with _only_restore_into(into):
        finished = _restored_already(readers, into, Includes(include), force)
        if finished is not None:
            return finished
        return _restore(
            readers,
            into,
            Includes(include),
            keep_journal,
            force,
            progress or NullProgress(),
            catalog,
            check_space,
            on_drive,
            keep_setuid,
        )


def refuse_nested(readers: list[DriveReader], dest: str) -> None:
    """A destination inside one of the drives (it would write onto the drive) or a drive inside the destination
    (it would restore into what it reads from) is refused before anything is written. Directories are compared
    by device and inode up from each real path, so a symlink or a bind mount of either is caught too."""
    existing = os.path.abspath(dest)
    while not os.path.exists(existing):  # DEST is made if missing: its nearest existing ancestor decides
        existing = os.path.dirname(existing)
    dest_ancestors = _ancestor_ids(existing)
    dest_id = dest_ancestors[0] if existing == os.path.abspath(dest) else None
    for reader in readers:
        drive_ancestors = _ancestor_ids(reader.path)
        if drive_ancestors[0] in dest_ancestors:
            raise UsageError(
                f"the destination {dest} is inside the drive {reader.path}: restoring there would write onto the "
                "drive; give a destination outside every drive"
            )
        if dest_id is not None and dest_id in drive_ancestors:
            raise UsageError(
                f"the drive {reader.path} is inside the destination {dest}: give a destination that holds no drive "
                "(or move the drive out of it)"
            )


def _ancestor_ids(path: str) -> list[tuple[int, int]]:
    """(st_dev, st_ino) of ``path`` and of every directory above its real path, up to /."""
    ids = []
    current = os.path.realpath(path)
    while True:
        info = os.stat(current)
        ids.append((info.st_dev, info.st_ino))
        parent = os.path.dirname(current)
        if parent == current:
            return ids
        current = parent


def _restored_already(readers: list[DriveReader], dest: str, includes: Includes, force: bool) -> RestoreReport | None:
    """A destination whose restore finished (a finished record, no journal): drives of that shipment are a no-op,
    writing nothing; drives of another one only with --force (a new restore over the finished tree). None: not
    finished, or forced over."""
    if Journal.exists(dest):
        return None
    record = read_finished(dest)
    if record is None:
        return None
    ours = [reader for reader in readers if reader.label.shipment == record.shipment]
    held = f"the finished restore of shipment {record.shipment} (fingerprint {short_fingerprint(record.fingerprint)})"
    if not ours:
        if force:
            return None
        raise UsageError(
            f"{dest} holds {held}; {readers[0].path} is a drive of shipment {readers[0].label.shipment}: give another "
            "destination, or --force to restore this shipment over it"
        )
    given = [p.decode("utf-8", "surrogateescape") for p in includes.patterns]
    if includes and given != record.includes:
        raise UsageError(
            f"{dest} holds {held} with --include {record.includes or '(everything)'}: give the same patterns or none, "
            "or another destination for other paths"
        )
    outcomes = []
    for reader in readers:
        outcome = DriveOutcome(reader.path, reader.label.label, reader.label.drive, status="already")
        outcome.message = f"already restored: {dest} holds this shipment, finished {record.finished}; nothing to do"
        if reader.label.shipment != record.shipment:
            outcome.status = "refused"
            outcome.message = f"this drive is of shipment {reader.label.shipment}; {dest} holds {held}"
        outcomes.append(outcome)
    return RestoreReport(outcomes, record.status(dest))


@contextlib.contextmanager
def _only_restore_into(dest: str) -> Iterator[None]:
    """Hold an exclusive lock on the destination directory itself while restoring into it: a second restore
    into the same destination (a second terminal, a drive that arrived meanwhile) is refused instead of racing
    this one over the journal and the parts. flock on the directory's own descriptor: no lock file left
    behind, and the kernel lets it go however the process ends."""
    try:
        os.makedirs(dest, exist_ok=True)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _space_error(exc, dest) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another restore is writing into {dest}: let it finish, then run this one (one run takes "
                "several drives: give them all to it)"
            ) from None
        yield
    finally:
        os.close(fd)


def _restore(
    readers: list[DriveReader],
    into: str,
    includes: Includes,
    keep_journal: bool,
    force: bool,
    progress: Progress,
    catalog: str | None,
    check_space: bool = True,
    on_drive: Callable[[DriveOutcome], None] | None = None,
    keep_setuid: bool = False,
) -> RestoreReport:
    notes: list[str] = []
    told = on_drive or (lambda outcome: None)
    try:
        journal = _journal_for(into, readers, includes, force, catalog, notes)
    except sqlite3.OperationalError as exc:
        raise _journal_error(exc, into) from exc
    except OSError as exc:
        raise _space_error(exc, into) from exc
    try:
        # A run killed while it removed a finished journal (parts first, the journal last) leaves the journal
        # alone: this run finishes again, and needs the parts directory back.
        os.makedirs(os.path.join(Journal.directory(into), PARTS_DIR), exist_ok=True)
        parts_fd = open_parts(into)
    except OSError as exc:
        journal.close()
        raise _space_error(exc, into) from exc
    except DestinationError:
        journal.close()
        raise
    tree = SafeTree(into, note_replaced=journal.get("over_existing") == "true", listed=LISTED_PATHS)
    outcomes: list[DriveOutcome] = []
    try:
        recover_installing(journal, tree, parts_fd)
        sweep_parts(journal, parts_fd)
        includes = Includes(journal.get_json("includes") or [])
        fold = _probe_folding(into)
        progress.start(sum(r.label.raw_bytes for r in readers))
        spanning: dict[bytes, tuple[Any, int]] = {}  # hashes of files spanning drives, kept across this run's drives
        # With --include only a part of each drive is written: its data bytes say nothing of the room it needs.
        check_space = check_space and not includes
        for reader in readers:
            outcomes.append(
                _restore_drive(
                    reader, journal, tree, includes, progress, fold, spanning, check_space, keep_setuid, parts_fd
                )
            )
            told(outcomes[-1])
        # A drive of this run that a later one reopened (it carries a wanted hard link's content) goes again.
        for index, reader in enumerate(readers):
            if journal.drive_state(reader.label.drive) == REOPENED:
                again = _restore_drive(
                    reader, journal, tree, includes, progress, fold, spanning, False, keep_setuid, parts_fd
                )
                told(again)
                outcomes[index] = _merged(outcomes[index], again)
        progress.close()
        status = shipment_status(into, journal)
        problems: list[str] = []
        if not status.waiting and journal.has_pending_links():
            # Every drive needed is in: a hard link still waiting names a target the shipment never gave.
            problems = _settle_links(journal, tree)
            status = shipment_status(into, journal)
        if status.complete:
            _finish_directories(journal, tree)
            _write_finished(journal)
            status.finished = True
    except sqlite3.OperationalError as exc:
        raise _journal_error(exc, into) from exc
    finally:
        os.close(parts_fd)
        tree.close()
        journal.close()
    if status.finished and not keep_journal:
        _remove_journal(into)
    return RestoreReport(outcomes, status, problems, notes)


def _restore_drive(
    reader: DriveReader,
    journal: Journal,
    tree: SafeTree,
    includes: Includes,
    progress: Progress,
    fold: bool,
    spanning: dict[bytes, tuple[Any, int]],
    check_space: bool = False,
    keep_setuid: bool = False,
    parts_fd: int | None = None,
) -> DriveOutcome:
    label = reader.label
    log.info("%s (%s): checking, then restoring", label.label, reader.path)
    begin_drive(progress, label.label)
    outcome = DriveOutcome(reader.path, label.label, label.drive)
    if label.shipment != journal.get_json("shipment"):
        outcome.status = "refused"
        ours = f"{journal.get_json('shipment')} (fingerprint {short_fingerprint(journal.get_json('fingerprint'))})"
        outcome.message = (
            "this drive is of another shipment than the restore in progress: the drive's is "
            f"{_shipment_named(reader)}, the destination's {ours}: give a drive of that shipment, or restore this one "
            "into another destination"
        )
        return outcome
    if journal.drive_state(label.drive) == DONE:
        outcome.status, outcome.message = "already", "already restored: nothing to do"
        return outcome
    try:
        # Both passes read one private copy of the manifest, so what is written is what was checked.
        reader.pin_manifest(os.path.join(Journal.directory(journal.dest), PINNED_MANIFEST))
        chunk_map = validate_drive(reader, journal, includes)
    except FormatError as exc:
        outcome.status, outcome.message = "refused", f"refused, nothing written for it: {exc}"
        return outcome
    except OSError as exc:
        raise _space_error(exc, journal.dest) from exc
    if check_space:
        check_room(label.label, chunk_map.raw_bytes, tree.root)
    if includes:
        _place_aliases(journal, label.drive)
    tree.take_replaced()
    DriveRestorer(
        reader, chunk_map, journal, tree, includes, outcome, progress, fold, spanning, keep_setuid, parts_fd
    ).run()
    outcome.replaced_count, replaced = tree.take_replaced()
    outcome.replaced = [show_path(p) for p in replaced]
    state = DONE if not outcome.failed_count and not outcome.collisions else "partial"
    if state != DONE:
        outcome.status = "damaged"
        outcome.message = (
            f"{counted(outcome.failed_count + len(outcome.collisions), 'entry', 'entries')} could not be restored"
        )
        if outcome.blocked_count == outcome.failed_count and not outcome.collisions:
            # Nothing wrong with the drive: this one again, once the way is clear, finishes it.
            state = outcome.status = BLOCKED
            outcome.message += (
                ": the destination is in the way (named below); move those out, then restore this drive again"
            )
    journal.set_drive(label.drive, label.label, label.manifest_blake3, state, outcome.failed_count)
    journal.commit()
    return outcome


def _place_aliases(journal: Journal, drive: int) -> None:
    """The aliases ``drive``'s hard links just made (see :func:`validate_drive`): which drives carry their
    content, from the catalog, and every one of those already restored without it is reopened (REOPENED):
    it must be restored again. A link may name a target on an earlier drive, so without this the content was
    never written and the link silently absent."""
    db = journal.db
    if db.execute("SELECT 1 FROM aliases WHERE fresh = 1 LIMIT 1").fetchone() is None:
        return
    # Set-wise, from the catalog's index in the journal (index_catalog builds it before any drive is restored).
    db.execute(
        "UPDATE aliases SET (first_drive, last_drive, size) = (SELECT first_drive, last_drive, size FROM "
        f"{CatalogIndex.TABLE} AS c WHERE c.path = aliases.target) WHERE first_drive IS NULL AND fresh = 1"
    )
    db.execute(
        "UPDATE drives SET state = ? WHERE state = ? AND drive != ? AND EXISTS (SELECT 1 FROM aliases WHERE fresh = 1 "
        "AND first_drive <= drives.drive AND drives.drive <= last_drive)",
        (REOPENED, DONE, drive),
    )
    db.execute("UPDATE aliases SET fresh = 0 WHERE fresh = 1")


def recover_installing(journal: Journal, tree: SafeTree, parts_fd: int) -> None:
    """Finish the installs a killed run had started: parts that were verified and synced but maybe not renamed
    (each the part the journal recorded for it, and the very file when its identity was recorded)."""
    for entry in list(journal.entries("file", INSTALLING)):
        known = journal.part(entry.path)
        name, identity = (known[0], known[1:]) if known else (_legacy_part_name(entry.path), (None, None))
        try:
            st = os.stat(name, dir_fd=parts_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None  # renamed before the kill
        if st is not None and not (stat.S_ISREG(st.st_mode) and identity in ((None, None), (st.st_dev, st.st_ino))):
            # Not the part that was hashed: never installed (nor left to be taken for it).
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=parts_fd)
            journal.set_state(entry.path, FAILED)
            journal.drop_pieces(entry.path)
            journal.drop_parts([entry.path])
            continue
        if st is not None:
            tree.install(parts_fd, name, entry.path)
        journal.set_state(entry.path, DONE)
        journal.drop_pieces(entry.path)
        journal.drop_parts([entry.path])
        link_waiting(journal, tree, entry.path)
    journal.commit()


def _merged(first: DriveOutcome, again: DriveOutcome) -> DriveOutcome:
    """One drive's outcome over the two times a run restored it (the second for what a later drive reopened)."""
    merged = replace(again, status=first.status if again.status == "already" else again.status)
    if first.status == "restored" and again.status in ("restored", "already"):
        merged.message = first.message
    merged.files += first.files
    merged.bytes += first.bytes
    merged.written += first.written
    merged.failed = (first.failed + again.failed)[:LISTED_PATHS]
    merged.failed_count += first.failed_count
    merged.blocked_count += first.blocked_count
    merged.setid_cleared += first.setid_cleared
    merged.collisions = first.collisions + again.collisions
    merged.replaced = (first.replaced + again.replaced)[:LISTED_PATHS]
    merged.replaced_count += first.replaced_count
    return merged


def _settle_links(journal: Journal, tree: SafeTree) -> list[str]:
    """Every drive is in: each pending hard link is made now, or recorded as failed (its target never came).
    Returns what could not be done."""
    failures = []
    for entry in list(journal.entries("hardlink", PENDING)):
        assert entry.target is not None
        problem = link_pending_or_now(journal, tree, entry.path, entry.target)
        if problem is None and not tree.exists(entry.path):
            problem = f"is a hard link to {show_path(entry.target)}, which is not in the shipment"
        if problem is not None:
            journal.set_state(entry.path, FAILED)
            failures.append(f"{show_path(entry.path)} {problem}")
    journal.commit()
    return failures


def _finish_directories(journal: Journal, tree: SafeTree) -> None:
    """Every wanted entry is in: directory metadata, deepest first (their mtimes last of all)."""
    owner = os.geteuid() == 0
    rows = journal.db.execute(
        "SELECT path, mode, mtime_ns, uid, gid FROM entries WHERE kind = 'dir' ORDER BY length(path) DESC, path"
    )
    for path, mode, mtime_ns, uid, gid in rows.fetchall():
        tree.set_metadata(bytes(path), mode, mtime_ns, (uid, gid) if owner else None)
    journal.set("finished", "true")
    journal.commit()


def _open_journal(dest: str) -> Journal:
    """The journal of the restore in ``dest``; one it cannot use (another version, a symlink) is one line."""
    try:
        return Journal.open(dest)
    except ValueError as exc:
        raise UsageError(f"cannot use the journal in {dest}: {exc}") from exc


def shipment_status(dest: str, journal: Journal | None = None) -> ShipmentStatus:
    """Which drives are restored, which are still needed and how many files and bytes wait on each."""
    own = journal is None
    if journal is None:
        if not Journal.exists(dest):
            raise UsageError(f"{dest} holds no restore in progress (no {Journal.directory(dest)}/{JOURNAL_NAME})")
        journal = _open_journal(dest)
    try:
        labels: list[str] = journal.get_json("labels")
        count = int(journal.get_json("drives"))
        if journal.get("finished") == "true":
            # A finished restore whose journal was kept or being removed: nothing waits (its catalog copy may be
            # gone); when, its finished record says.
            record = read_finished(dest)
            return ShipmentStatus(
                dest, journal.get_json("shipment"), journal.get_json("fingerprint"), count,
                list(range(1, count + 1)), [], [], 0, complete=True, finished=True,
                finished_at=record.finished if record else None, includes=journal.get_json("includes") or [],
            )  # fmt: skip
        if own and (problem := _catalog_copy_problem(journal)) is not None:
            copy = os.path.join(Journal.directory(dest), CATALOG_COPY)
            raise UsageError(
                f"the catalog copy {copy} is {problem}: run sneakernet restore into {dest} again with any drive of "
                "the shipment (or --catalog FILE), which copies it again"
            )
        states = journal.drives()
        restored = sorted(d for d, (_, state, _) in states.items() if state == DONE)
        includes = Includes(journal.get_json("includes") or [])
        absent = _absent_entries(journal, includes, set(restored), count)
        waiting = [
            WaitingDrive(d, labels[d - 1] if d <= len(labels) else drive_label(d), *absent.on_drive.get(d, (0, 0)),
                         states[d][1] if d in states else "missing")
            for d in range(1, count + 1)
            if d not in restored and (d in absent.on_drive or not includes)
        ]  # fmt: skip
        failed = [show_path(p) for p in journal.failed_paths(LISTED_PATHS)]
        failed += [show_path(p) for p in absent.stuck][: LISTED_PATHS - len(failed)]
        failed_count = journal.count(FAILED) + absent.stuck_count
        return ShipmentStatus(
            dest=dest,
            shipment=journal.get_json("shipment"),
            fingerprint=journal.get_json("fingerprint"),
            drives=count,
            restored=restored,
            waiting=waiting,
            failed=failed,
            failed_count=failed_count,
            # Positive: every entry asked for is done in the journal, not merely every drive seen.
            complete=absent.count == 0 and not waiting and failed_count == 0,
            finished=journal.get("finished") == "true",
            includes=journal.get_json("includes") or [],
        )
    finally:
        if own:
            journal.close()


@dataclass
class _Absent:
    """Wanted catalog entries the journal does not call done."""

    count: int = 0
    #: drive -> (entries, bytes of files) that wait on it, of the drives not restored.
    on_drive: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Entries absent though every drive carrying them is restored (and not recorded as failed): the first
    #: LISTED_PATHS, and how many.
    stuck: list[bytes] = field(default_factory=list)
    stuck_count: int = 0

    def wait(self, drive: int, size: int) -> None:
        files, size_so_far = self.on_drive.get(drive, (0, 0))
        self.on_drive[drive] = (files + 1, size_so_far + size)


def _absent_entries(journal: Journal, includes: Includes, restored: set[int], drives: int) -> _Absent:
    """Every wanted entry of the catalog that the journal does not call done, and the drives not restored (of
    the shipment's ``drives``, whatever an entry claims) that they wait on. A hard link waits on the drives of
    the content it gets: its target's when --include left the target out (the aliases), or its target's own
    entry's when that is wanted (counted there)."""
    out = _Absent()
    aliases = journal.has_aliases()
    for absent in _absent_windows(journal, includes):
        out.count += len(absent)
        links = [row.path for row in absent if row.kind == "hardlink"]
        targets = [row.target for row in absent if row.kind == "hardlink" and row.target is not None]
        via: dict[bytes, tuple[Any, ...]] = {}
        if aliases and links:
            query = "SELECT link, first_drive, last_drive, size FROM aliases WHERE first_drive IS NOT NULL AND link IN "
            query += "({})"
            via = _rows(journal, query, links + targets)
        target_states = _rows(journal, "SELECT path, state FROM entries WHERE path IN ({})", targets)
        for row in absent:
            carriers = set(range(row.first_drive, min(row.last_drive, drives) + 1))
            size = row.size if row.kind == "file" else 0
            content = via.get(row.path) or (via.get(row.target) if row.target is not None else None)
            if content is not None:
                carriers.update(range(content[0], min(content[1], drives) + 1))
                size = int(content[2] or 0) if row.path in via else 0
            needed = sorted(d for d in carriers if d not in restored)
            for drive in needed:
                out.wait(drive, size)
            # A link whose wanted target is not in yet waits with it; anything else absent with all its drives in
            # is named (a restore must never call it complete).
            with_target = row.target is not None and target_states.get(row.target, (None,))[0] != DONE
            if not needed and row.state != FAILED and not with_target:
                out.stuck_count += 1
                if len(out.stuck) < LISTED_PATHS:
                    out.stuck.append(row.path)
    return out


@dataclass(frozen=True)
class _AbsentRow:
    """A wanted catalog entry and its journal entry's state and target (None: no journal entry)."""

    path: bytes
    kind: str
    size: int
    first_drive: int
    last_drive: int
    state: str | None
    target: bytes | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> _AbsentRow:
        path, kind, size, first, last, state, target = row
        return cls(bytes(path), kind, size, first, last, state, None if target is None else bytes(target))


def _absent_windows(journal: Journal, includes: Includes) -> Iterator[list[_AbsentRow]]:
    """The wanted catalog entries not done in the journal, a window at a time (memory bounded by the window).
    Set-wise in SQLite, one join of the catalog's index (validate.CatalogIndex, built when the restore began)
    with the journal's entries; a journal of an earlier sneakernet without that index: the catalog copy, a window
    of paths looked up at a time."""
    db = journal.db
    if CatalogIndex(db).built():
        where = "e.state IS NULL OR e.state != ?"
        if includes:
            db.create_function("sneakernet_wants", 1, lambda path: includes.wants(bytes(path)), deterministic=True)
            where = f"({where}) AND sneakernet_wants(c.path)"
        cursor = db.execute(
            "SELECT c.path, c.kind, c.size, c.first_drive, c.last_drive, e.state, e.target "
            f"FROM {CatalogIndex.TABLE} AS c LEFT JOIN entries AS e ON e.path = c.path WHERE {where}",
            (DONE,),
        )
        while rows := cursor.fetchmany(ROWS_PER_STATEMENT):
            yield [_AbsentRow.of(row) for row in rows]
        return
    catalog = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    wanted = (r for r in CatalogReader(catalog).records() if isinstance(r, CatalogEntry) and includes.wants(r.path))
    for window in _windows(wanted, ROWS_PER_STATEMENT):
        known = _rows(journal, "SELECT path, state, target FROM entries WHERE path IN ({})", [r.path for r in window])
        rows = [(r.path, r.kind, r.size, r.first_drive, r.last_drive, *known.get(r.path, (None, None))) for r in window]
        absent = [_AbsentRow.of(row) for row in rows if row[5] != DONE]
        if absent:
            yield absent


def _rows(journal: Journal, query: str, paths: list[bytes]) -> dict[bytes, tuple[Any, ...]]:
    """``query`` (with ``{}`` for the placeholders) run for ``paths``: first column -> the others."""
    out: dict[bytes, tuple[Any, ...]] = {}
    for start in range(0, len(paths), ROWS_PER_STATEMENT):
        part = paths[start : start + ROWS_PER_STATEMENT]
        for row in journal.db.execute(query.format(", ".join("?" * len(part))), part):
            out[bytes(row[0])] = tuple(row[1:])
    return out


def status(dest: str) -> ShipmentStatus:
    """The status of the restore in ``dest``: in progress (see :func:`shipment_status`) or finished (from its
    finished record). A path that does not exist, a drive, or a directory that holds no restore: UsageError."""
    if not os.path.lexists(dest):
        raise UsageError(f"{dest} does not exist: give the destination of a restore (the DEST of restore --into DEST)")
    if not os.path.isdir(dest):
        raise UsageError(f"{dest} is not a directory: give the destination of a restore (restore --into DEST)")
    if Journal.exists(dest):
        return shipment_status(dest)
    record = read_finished(dest)
    if record is not None:
        return record.status(dest)
    if os.path.exists(os.path.join(dest, DRIVE_LABEL_NAME)):
        raise UsageError(
            f"{dest} is a drive, not the destination of a restore: status takes the DEST of restore --into DEST "
            "(for a drive: sneakernet info or verify)"
        )
    raise UsageError(f"{dest} holds no restore, in progress or finished (no {Journal.directory(dest)})")


__all__ = ["RestoreReport", "ShipmentStatus", "restore", "status"]
