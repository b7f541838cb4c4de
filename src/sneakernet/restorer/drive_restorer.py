"""Restoring one drive (already checked) into the destination: :class:`DriveRestorer`, with the
:class:`~sneakernet.restorer.pieces.PartWriter` it is given for its part files."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import blake3

from ..drive import ChunkMap, DriveReader
from ..errors import DriveUnreadable
from ..format import (
    MAX_CHUNK_SIZE,
    DirRecord,
    FileRecord,
    HardlinkRecord,
    Metadata,
    SymlinkRecord,
    fold_name,
    show_path,
)
from ..io.tree import Destination, InTheWay, Parts
from ..progress import DriveProgress, Progress
from ..validate import UnsafePath
from .check import ENTRY_RECORDS
from .cursor import ChunkCursor, windows
from .desk import Stopped
from .destination import space_error
from .includes import Includes
from .install import link_pending_or_now, link_waiting
from .journal import Entry, Journal
from .parts import HashLane, new_part_name, seal_part, write_files
from .pieces import PartWriter, PieceLocks
from .report import LISTED_PATHS, DriveOutcome
from .states import EntryState

log = logging.getLogger(__name__)

#: Files installed per batch, and bytes: one syncfs and one journal commit per batch.
BATCH_FILES = 2000
BATCH_BYTES = 256 * 2**20
#: Most raw chunk bytes read ahead (each also held stored while it is decoded); with drives restored at once,
#: shared between them (see Shared.at_once), as the bytes below: memory stays that of one drive.
PREFETCH_BYTES = 32 * 2**20
#: Small files handed to the writer pool in one job, up to this many or this many bytes.
JOB_FILES = 64
JOB_BYTES = 4 * 2**20
#: Records whose journal entries are looked up together (see Journal.prefetch).
LOOKUP_WINDOW = 500
#: Whole files below this size are written on the writer pool; larger ones are written here as their chunks come
#: (from the read-ahead pool), so memory never holds a whole large file.
POOLED_FILE_LIMIT = 8 * 2**20
#: Files below this size hand the writer pool a copy of their bytes rather than a view into their chunk.
SMALL_COPY = 1 << 20
#: Bytes of whole files handed to the writer pool and not yet written (they keep their chunks alive).
INFLIGHT_BYTES = 32 * 2**20
#: Slices of a large file waiting for the hash lane: a few chunks of memory at most.
HASH_LANE_DEPTH = 4
#: Cleared from files unless ``keep_setuid`` (as bsdtar does without -p): a drive from outside must not plant a
#: program that runs with its owner's rights, root's least of all. A directory keeps its setgid bit (and every
#: sticky bit stays): it only gives files made inside later the directory's group and runs nothing, and shared
#: trees rely on it.
SETID_BITS = stat.S_ISUID | stat.S_ISGID


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


@dataclass
class Shared:
    """What the drives of one run share, explicitly, and nothing else: the one journal writer, the destination and
    its parts directory (opened once for the run, see :func:`~sneakernet.restorer.parts.open_parts`), the progress
    fan-in, and the run's settings. Each drive's unit of work takes it and returns its own outcome."""

    journal: Journal
    tree: Destination
    parts: Parts
    progress: Progress
    includes: Includes
    #: The destination merges names that differ in case or normalisation (see Destination.folds_names).
    fold_names: bool
    keep_setuid: bool = False
    #: Files spanning drives whose pieces came in order in this run: their hash so far, and up to where; carried
    #: from one drive to the next.
    spanning: dict[bytes, tuple[Any, int]] = field(default_factory=dict)
    #: With drives restored at once: one drive at a time works on a file spanning drives.
    piece_locks: PieceLocks = field(default_factory=PieceLocks)
    #: Set when the run stops (another drive's work failed, Ctrl-C): each drive's work ends soon (Stopped).
    stop: threading.Event = field(default_factory=threading.Event)
    #: Drives written at once: each takes its share of the read-ahead and of the bytes handed to its writers.
    at_once: int = 1


class DriveRestorer:
    """Writes what one (already validated) drive carries into the destination; its part files through the
    :class:`PartWriter` it is given (made from the same drive and :class:`Shared` by :meth:`of`)."""

    @classmethod
    def of(
        cls, reader: DriveReader, chunk_map: ChunkMap, outcome: DriveOutcome, shared: Shared, progress: DriveProgress
    ) -> DriveRestorer:
        """The drive restorer of one drive, with its part writer; ``progress``: the drive's."""
        restorer = cls(reader, chunk_map, outcome, shared, progress)
        restorer.part_writer = PartWriter(
            reader, chunk_map, shared.journal, shared.parts, outcome, progress, shared.spanning,
            restorer.fail, restorer.finish, shared.piece_locks, shared.stop,
        )  # fmt: skip
        return restorer

    def __init__(
        self, reader: DriveReader, chunk_map: ChunkMap, outcome: DriveOutcome, shared: Shared, progress: DriveProgress
    ) -> None:
        self.reader = reader
        self.drive = reader.label.drive
        self.map = chunk_map
        self.outcome = outcome
        self.journal = shared.journal
        self.tree = shared.tree
        self.parts = shared.parts
        #: Given by :meth:`of`: writes the parts of files spanning drives and of large files.
        self.part_writer: PartWriter
        self.progress = progress
        self.includes = shared.includes
        self.fold_names = shared.fold_names
        self.keep_setuid = shared.keep_setuid
        self.spanning = shared.spanning
        self.stop = shared.stop
        self.owner = os.geteuid() == 0
        self.batch: list[_Finished] = []
        self.batch_bytes = 0
        self.deferred_links: list[HardlinkRecord] = []
        #: Writes whole files in parallel (set by :meth:`run`); the jobs in flight and the bytes they hold.
        self.writers: ThreadPoolExecutor | None = None
        #: One thread hashing a large file's bytes in order while the main thread writes them: BLAKE3 and pwrite
        #: both let go of the interpreter lock, so the two overlap instead of taking turns.
        self.hash_lane: HashLane | None = None
        #: The writer job taking files (submitted when full, or when the batch is collected), and those submitted.
        self.job = _WriterJob()
        self.inflight: deque[_WriterJob] = deque()
        self.inflight_bytes = 0
        self.inflight_limit = max(INFLIGHT_BYTES // shared.at_once, JOB_BYTES)
        self.prefetch_bytes = PREFETCH_BYTES // shared.at_once
        #: The journal's entries of the records being restored (see :meth:`_run`): None, none yet.
        self.window: dict[bytes, Entry | None] = {}
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
            self.part_writer.hash_lane = self.hash_lane
            # Read ahead two chunks a worker, but never more than PREFETCH_BYTES of chunks (large chunks: fewer).
            chunk_size = self.map.header.chunk_size if self.map.header else MAX_CHUNK_SIZE
            depth = max(1, min(2 * workers, self.prefetch_bytes // max(chunk_size, 1)))
            try:
                try:
                    self._run(ChunkCursor(self.reader, self.map, None if self.includes else pool, depth))
                except DriveUnreadable:
                    self._flush()  # the files it gave whole before it failed are installed
                    raise
            finally:
                self.hash_lane.close()
                self.writers, self.hash_lane = None, None
                self.part_writer.hash_lane = None

    def _run(self, cursor: ChunkCursor) -> None:
        wanted = (FileRecord.TYPE, DirRecord.TYPE, SymlinkRecord.TYPE, HardlinkRecord.TYPE)
        for window in windows(self.reader.records(only=wanted), LOOKUP_WINDOW):
            # The journal's entries of the window's paths in one statement, not one per record; kept here too, so
            # that a drive restored beside others asks the journal's thread once a window, not once a file.
            self.window = self.journal.prefetch([record.path for record in window if isinstance(record, ENTRY_RECORDS)])
            for record in window:
                if self.stop.is_set():
                    raise Stopped
                if isinstance(record, FileRecord):
                    self._file(record, cursor)
                elif isinstance(record, DirRecord):
                    self._dir(record)
                elif isinstance(record, SymlinkRecord):
                    self._symlink(record)
                elif isinstance(record, HardlinkRecord):
                    self._hardlink(record)
        self._flush()

    # -- entries --

    def _claim(
        self, path: bytes, kind: str, target: bytes | None = None, final: FileRecord | None = None
    ) -> Entry | None:
        """The journal's entry for ``path``, created if new; None when the path must be skipped."""
        whole = final is None or (final.final and final.offset == 0)
        # Only this drive has an entry for a path wholly on it (each path is on one drive, and once on it): what
        # the window looked up is still true. A piece's entry, which other drives change, is asked for.
        entry = self.window[path] if whole and path in self.window else self.journal.entry(path)
        if entry is not None:
            if entry.kind != kind:
                self.fail(path, f"is a {entry.kind} on drive {entry.drive} and a {kind} here")
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
                path, kind, self.drive, EntryState.PENDING, final.size, final.blake3, meta.mode, meta.mtime_ns,
                meta.uid, meta.gid, target, self.drive,
            )  # fmt: skip
        else:
            entry = Entry(path, kind, self.drive, EntryState.PENDING, None, None, None, None, None, None, target, None)
        if final is not None and not (final.final and final.offset == 0):
            # A piece of a file spanning drives: another drive written at once may be adding its entry too.
            claimed = self.journal.claim_entry(entry)
            if claimed.kind != kind:
                self.fail(path, f"is a {claimed.kind} on drive {claimed.drive} and a {kind} here")
                return None
            return claimed
        self.journal.add_entry(entry)
        return entry

    def _dir(self, record: DirRecord) -> None:
        if not self.includes.wants(record.path) or self._claim(record.path, "dir") is None:
            return
        try:
            self.tree.make_dir(record.path)
        except UnsafePath as exc:
            self.fail(record.path, f"cannot be made: {exc}")
            return
        meta = record.meta
        self.journal.set_final(record.path, self.drive, 0, "", (meta.mode, meta.mtime_ns, meta.uid, meta.gid))
        self.journal.set_state(record.path, EntryState.DONE)

    def _symlink(self, record: SymlinkRecord) -> None:
        if not self.includes.wants(record.path):
            return
        entry = self._claim(record.path, "symlink", target=record.target)
        if entry is None or entry.state == EntryState.DONE:
            return
        try:
            self.tree.symlink(record.path, record.target)
        except UnsafePath as exc:
            self.fail(record.path, f"cannot be made: {exc}")
            return
        self.tree.set_metadata(record.path, None, record.meta.mtime_ns, self._owner(record.meta.uid, record.meta.gid))
        self.journal.set_state(record.path, EntryState.DONE)

    def _hardlink(self, record: HardlinkRecord) -> None:
        if not self.includes.wants(record.path):
            return
        target = record.target
        if not self.includes.wants(target):
            alias = self.journal.alias_of(target)
            if alias == record.path:
                # This name gets the target's content, from whichever drive carries it (see Journal.place_aliases);
                # until then the completion check counts it as absent, waiting on that drive.
                return
            if alias is None:
                # validate_drive notes every such link before the drive is restored: never silently dropped.
                self.fail(record.path, f"is a hard link to {show_path(target)}, which --include leaves out")
                return
            target = alias
        entry = self._claim(record.path, "hardlink", target=target)
        if entry is None or entry.state == EntryState.DONE:
            return
        if any(item.path == target for item in self.batch):
            self.deferred_links.append(HardlinkRecord(record.path, target))
        else:
            self._link(record.path, target)

    def _link(self, path: bytes, target: bytes) -> None:
        problem = link_pending_or_now(self.journal, self.tree, path, target)
        if problem is not None:
            self.fail(path, problem)

    # -- file data --

    def _file(self, record: FileRecord, cursor: ChunkCursor) -> None:
        path = record.path
        if not self.includes.wants(path):
            alias = self.journal.alias_of(path)
            if alias is None:
                return
            path = alias  # left out by --include, but a wanted hard link names it: restored under that name
        entry = self._claim(path, "file", final=record)
        if entry is None or entry.state == EntryState.DONE:
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
            self.part_writer.piece(record, path, cursor)

    def _whole_file(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> None:
        """A large file wholly on this drive: written as its chunks come, hashed on the hash lane."""
        opened = self.part_writer.open_part(path, whole=True)
        if opened is None:
            return
        fd, part = opened
        hasher = blake3.blake3()
        try:
            if self.part_writer.write_piece(fd, record, cursor, hasher, record.offset):
                self.fail(path, f"has damaged bytes on {self.reader.label.label}", part=part)
            elif hasher.hexdigest() != record.blake3:
                self.fail(path, "does not match its BLAKE3", part=part)
            else:
                assert record.meta is not None and record.size is not None
                self.finish(fd, part, path, record.meta, record.size, False)
        finally:
            self.parts.close_file(fd)

    def _write_whole(self, record: FileRecord, path: bytes, part: bytes, cursor: ChunkCursor) -> None:
        """A file wholly on this drive, the usual case: its (already checked) chunk bytes are handed to the writer
        pool, which writes, hashes and closes it; the batch installs it once the job said it matched."""
        assert record.meta is not None and record.size is not None and record.blake3 is not None
        span = self.map.piece_range(record)
        pieces = list(cursor.slices(*span)) if span else []
        if any(data is None for _, data in pieces):
            self.fail(path, f"has damaged bytes on {self.reader.label.label}")
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
        job.future = self.writers.submit(write_files, self.parts, self.journal.dest, files)
        self.inflight.append(job)
        self.inflight_bytes += job.size
        # The jobs hold their chunks' bytes: bound them.
        while self.inflight and self.inflight_bytes > self.inflight_limit:
            done = self.inflight.popleft()
            assert done.future is not None
            done.future.exception()
            self.inflight_bytes -= done.size

    def finish(self, fd: int, part: bytes, path: bytes, meta: Metadata, size: int, spanning: bool) -> None:
        """A file whose every byte is in its part, verified: its metadata set, it joins the batch to install."""
        meta, cleared = self._file_meta(meta)
        seal_part(self.parts, fd, meta, self._owner(meta.uid, meta.gid), self.journal.dest)
        identity = self.parts.identity(fd)
        self.batch.append(_Finished(part, path, size, spanning, cleared=cleared, identity=identity))
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
            self.tree.sync(self.parts.fd)
            # Recorded before the renames: a run killed among them finds these and completes them (see
            # recover_installing), as their parts were verified and synced.
            self.journal.set_states([item.path for item in self.batch], EntryState.INSTALLING)
            self.journal.set_parts([(item.path, item.part, *(item.identity or (None, None))) for item in self.batch])
            self.journal.commit()
            installed = []
            for item in self.batch:
                if not self._same_part(item):
                    self.fail(item.path, "has a part that was replaced after it was hashed: not installed")
                    continue
                try:
                    self.tree.install(self.parts.fd, item.part, item.path)
                except UnsafePath as exc:
                    self.parts.remove(item.part)
                    # A directory of the destination's where a file goes is in the way; anything else (a symlink
                    # above it, of this very shipment maybe) is not the destination's doing.
                    if isinstance(exc, InTheWay):
                        where = "is a directory in the destination, where the shipment has a file"
                        self.fail(item.path, where, in_the_way=True)
                    else:
                        self.fail(item.path, f"cannot be installed: {exc}")
                    continue
                except OSError as exc:
                    raise space_error(exc, self.journal.dest) from exc
                installed.append(item.path)
                self.outcome.setid_cleared += item.cleared
                if item.spanning:
                    self.part_writer.drop_pieces(item.path)
            # The renames are durable before the journal calls the files done.
            self.tree.sync(self.parts.fd)
            self.journal.set_states(installed, EntryState.DONE)
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
                self.fail(item.path, problem, part=item.part)
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
        st = self.parts.stat(item.part)
        return st is not None and (st.st_dev, st.st_ino) == item.identity

    def fail(
        self, path: bytes, reason: str, keep_part: bool = False, in_the_way: bool = False, part: bytes | None = None
    ) -> None:
        """``path`` is not restored; ``in_the_way``: because of what the destination holds, not the drive.
        ``part``: its part, when known (else the journal's, if any), removed unless ``keep_part``."""
        if self.journal.entry(path) is not None:
            self.journal.set_state(path, EntryState.FAILED)
        self.outcome.failed_count += 1
        self.outcome.blocked_count += in_the_way
        if len(self.outcome.failed) < LISTED_PATHS:
            self.outcome.failed.append(f"{show_path(path)} {reason}")
        if not keep_part:
            self.part_writer.drop_pieces(path)
            known = self.journal.part(path)
            self.journal.drop_parts([path])
            for name in {part, known[0] if known else None} - {None}:
                assert name is not None
                self.parts.remove(name)

    def _owner(self, uid: int, gid: int) -> tuple[int, int] | None:
        return (uid, gid) if self.owner else None

    def _file_meta(self, meta: Metadata) -> tuple[Metadata, bool]:
        """A file's metadata as installed: without setuid/setgid unless kept; and whether any was cleared."""
        if self.keep_setuid or not meta.mode & SETID_BITS:
            return meta, False
        return replace(meta, mode=meta.mode & ~SETID_BITS), True


def _ancestors(path: bytes) -> Iterator[bytes]:
    """``a``, ``a/b`` for ``a/b/c``."""
    parts = path.split(b"/")
    for depth in range(1, len(parts)):
        yield b"/".join(parts[:depth])
