"""Packing a source tree into drive directories: ``sneakernet.pack()``.

The pipeline: scan the tree once into a spool (totals, problems, the catalog's size bound), refuse bad input
before anything is written, then read files in walk order into chunks (chunking.py), encode chunks on a pool
of threads (zstd and BLAKE3 release the GIL), and hand them in order to :class:`ShipmentWriter`, which fills
one drive after another (space/budget.py) through :class:`~sneakernet.bundle.DriveWriter`. Last, the catalog and the
fingerprint are written to every drive.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

import blake3

from ._version import __version__
from .bundle import (
    FILESYSTEM_ENTRIES,
    SHIPMENT_NAMES,
    DriveWriter,
    EncodedChunk,
    holds_shipment,
    refuse_non_directory,
)
from .chunking import Chunker, RawChunk, is_large
from .codec import encode_chunk, stored_size_bound
from .drive.catalog import catalog_entry, copy_catalog, finish_shipment
from .errors import DestinationError, OutOfSpace, SourceError, UsageError
from .format import (
    CATALOG_NAME,
    DRIVE_LABEL_NAME,
    FINISHED_NAME,
    MANIFEST_NAME,
    MAX_SEGMENTS,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EntryRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    ManifestRecord,
    Metadata,
    SkippedRecord,
    SymlinkRecord,
    drive_label,
    fingerprint,
    short_fingerprint,
    show_path,
)
from .journal import JOURNAL_NAME
from .options import PackOptions
from .output import versioned
from .progress import NullProgress, Progress, begin_drive
from .resume import (
    FinishedDrives,
    clear_unfinished,
    find_finished,
    match,
    out_drive_paths,
    replayed_records,
    store_bytes,
)
from .scan import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    ScanTotals,
    SourceEntry,
    Unreadable,
    describe,
    restore_record_excludes,
    scan,
)
from .space.budget import (
    PATH_ESCAPE_FACTOR,
    RECORD_BOUND,
    DriveBudget,
    DriveSpace,
    Placement,
    catalog_bound,
    default_reserve,
)
from .units import counted, format_size

log = logging.getLogger(__name__)

#: Reasons recorded in skipped records and shown in warnings.
VANISHED = "vanished before it was read"
SPECIAL = "special file (FIFO, socket or device)"
#: How many paths a summary lists for each kind of problem; the counts are always complete.
LISTED_PATHS = 100


@dataclass(frozen=True)
class DriveSlot:
    """Where drive ``index`` goes and how many bytes its directory may take on disk."""

    index: int
    path: str
    capacity: int
    #: The drive's size before the reserve: --drive-size, or a mounted drive's free space when smaller.
    size: int = 0


#: Asked for the next drive at the one mount point of a swapping pack: ``(drive number, problem with what is
#: mounted now or None)``; it returns once the user (or a hook command) has put the next drive in place, or raises
#: to stop.
NextDrive = Callable[[int, "str | None"], None]


class DriveTargets:
    """The drives to fill: ``OUT/drive-NNNN`` for as many as needed, a given list of mounted drives, or one mount
    point where drive after drive is swapped in (``next_drive``)."""

    def __init__(
        self,
        out: str | None,
        drives: Sequence[str],
        drive_size: int | None,
        reserve: int | None,
        resume: bool = False,
        next_drive: NextDrive | None = None,
    ) -> None:
        if bool(out) == bool(drives):
            raise UsageError("give either --out DIR or at least one --drive PATH")
        if next_drive is not None and (len(drives) != 1 or resume):
            raise UsageError("swapping drives needs exactly one --drive mount point, and cannot --resume")
        self.next_drive = next_drive
        self._swapped_in = 1
        #: Seconds spent in ``next_drive`` (a person swapping drives): not packing time, so not in the rate.
        self.waited = 0.0
        if out and drive_size is None:
            raise UsageError("--out needs --drive-size, the size of the drives the shipment will go on")
        self.out = out
        self.drives = list(drives)
        self.drive_size = drive_size
        self.reserve = reserve
        self.resume = resume
        if out:
            refuse_non_directory(out, "output")
            if not resume and os.path.isdir(out) and any(n.startswith("drive-") for n in os.listdir(out)):
                raise DestinationError(_holds_shipment_message(f"output {out}", list(out_drive_paths(out))))
        for number, path in enumerate(self.drives):
            if not os.path.isdir(path):
                raise DestinationError(f"drive {path} is not a directory: mount the drive and give its path")
            if holds_shipment(path) and not resume:
                raise DestinationError(_holds_shipment_message(f"drive {path}", self.drives[: number + 1]))
            others = sorted(set(os.listdir(path)) - FILESYSTEM_ENTRIES - set(SHIPMENT_NAMES))
            if others and not holds_shipment(path):
                raise DestinationError(
                    f"drive {path} is not empty (it holds {', '.join(others[:3])}): give an empty drive, "
                    "or a new directory on it"
                )
            if not os.access(path, os.W_OK):
                raise DestinationError(f"drive {path} is not writable")
        if len(set(map(os.path.realpath, self.drives))) != len(self.drives):
            raise UsageError("the same drive is given twice")

    def drive_paths(self) -> Iterator[str]:
        """The drives in order: the given ones, or those under the output directory."""
        return iter(self.drives) if self.drives else out_drive_paths(self.out or "")

    def _reserve_for(self, size: int) -> int:
        return self.reserve if self.reserve is not None else default_reserve(size)

    def slot(self, index: int) -> DriveSlot | None:
        """Drive ``index`` (1-based), or None when the given drives are used up."""
        if self.out:
            assert self.drive_size is not None
            path = os.path.join(self.out, drive_label(index))
            return DriveSlot(index, path, self.drive_size - self._reserve_for(self.drive_size), self.drive_size)
        if self.next_drive is not None:
            self._swap_in(index)
            path = self.drives[0]
        elif index > len(self.drives):
            return None
        else:
            path = self.drives[index - 1]
        free = shutil.disk_usage(path).free
        size = min(free, self.drive_size) if self.drive_size else free
        return DriveSlot(index, path, size - self._reserve_for(size), size)

    def _swap_in(self, index: int) -> None:
        """Have drive ``index`` put in at the mount point: ask until an empty drive is there."""
        assert self.next_drive is not None
        if index <= self._swapped_in:
            return
        problem: str | None = None
        while True:
            asked = time.monotonic()
            self.next_drive(index, problem)
            self.waited += time.monotonic() - asked
            problem = self._not_ready(self.drives[0])
            if problem is None:
                self._swapped_in = index
                return

    @staticmethod
    def _not_ready(path: str) -> str | None:
        if not os.path.isdir(path):
            return f"nothing is mounted at {path}"
        if holds_shipment(path):
            return f"the drive at {path} already holds (part of) a shipment: put in the next, empty drive"
        others = sorted(set(os.listdir(path)) - FILESYSTEM_ENTRIES)
        if others:
            return f"the drive at {path} is not empty (it holds {', '.join(others[:3])}): put in an empty drive"
        if not os.access(path, os.W_OK):
            return f"the drive at {path} is not writable"
        return None

    def known_slots(self) -> list[DriveSlot]:
        """The drives known before packing: all given drives, or the first drive of an output directory."""
        count = len(self.drives) if self.drives else 1
        return [slot for i in range(1, count + 1) if (slot := self.slot(i)) is not None]


def _holds_shipment_message(where: str, drives: list[str]) -> str:
    finished = [d for d in drives if os.path.exists(os.path.join(d, DRIVE_LABEL_NAME))]
    complete = bool(finished) and all(os.path.exists(os.path.join(d, CATALOG_NAME)) for d in finished)
    if complete and len(finished) == len(drives):
        return f"{where} already holds a shipment: choose an empty directory or drive"
    return (
        f"{where} holds an interrupted pack ({counted(len(finished), 'drive')} finished): run the same command with "
        "--resume to continue it, or empty it to start over"
    )


@dataclass
class PackSummary:
    """What pack did, for the human summary and ``--json``."""

    shipment: str
    fingerprint: str
    drives: list[dict[str, Any]]
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    stored_raw_bytes: int = 0
    chunks: int = 0
    excluded_entries: int = 0
    excluded_bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    changed: list[str] = field(default_factory=list)
    changed_count: int = 0
    seconds: float = 0.0
    #: Drives a resumed pack kept from the interrupted one.
    resumed_drives: int = 0
    #: The sender's copy of the catalog, when one was asked for (one dock: only the last drive carries it).
    catalog_copy: str | None = None
    #: The source is a restored tree: its top-level .sneakernet held only a finished restore's record, left out.
    restore_record_left_out: bool = False

    @property
    def short_fingerprint(self) -> str:
        return short_fingerprint(self.fingerprint)

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.raw_bytes if self.raw_bytes else 1.0

    def to_json(self) -> dict[str, Any]:
        out = versioned(self.__dict__)
        out.update(short_fingerprint=self.short_fingerprint, ratio=round(self.ratio, 4))
        out["rate_bytes_per_second"] = round(self.raw_bytes / self.seconds) if self.seconds else None
        return out

    def note_skipped(self, path: bytes, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < LISTED_PATHS:
            self.skipped.append({"path": _show(path), "reason": reason})

    def note_changed(self, path: bytes) -> None:
        self.changed_count += 1
        if len(self.changed) < LISTED_PATHS:
            self.changed.append(_show(path))


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


# --- reading the source -------------------------------------------------------------------------------------


@dataclass(slots=True)
class FileEnd:
    """A file has been read to its end: what its final record needs (``blake3`` is None while replaying)."""

    index: int
    size: int
    blake3: str | None
    meta: Metadata
    changed: bool
    #: The BLAKE3 is computed with the file's group chunk, on the encoding pool (a small file read live): the
    #: reading thread, the one that reads every file, does not hash it.
    with_chunk: bool = False


@dataclass
class SourceReader:
    """Turns the spooled entries into an ordered stream of records, chunks and file ends.

    Order guarantees the writer relies on: a file's :class:`FileEnd` comes after the chunk holding its last
    bytes and before any later chunk; a group chunk comes before the ends of the files it holds.
    """

    root: bytes
    options: PackOptions
    summary: PackSummary
    paths: dict[int, bytes] = field(default_factory=dict)
    on_bytes: Callable[[int], None] = lambda n: None
    #: Replaying what finished drives already hold (a resumed pack): files are neither opened nor read, chunks
    #: are laid out from the sizes the scan found. :meth:`go_live` ends it.
    dry: bool = False
    _hardlinks: dict[tuple[int, int], bytes] = field(default_factory=dict)
    _pending_ends: list[FileEnd | HardlinkRecord] = field(default_factory=list)
    _chunker: Chunker | None = None
    #: While replaying: the raw BLAKE3 of the finished drives' chunks of the large file in progress, and the
    #: last chunk replayed with a function that reads its bytes back from its drive.
    replayed_chunks: dict[int, list[str]] = field(default_factory=dict)
    last_replayed: tuple[RawChunk, Callable[[], bytes]] | None = None

    def items(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[EntryRecord | RawChunk | FileEnd]:
        chunker = self._chunker = Chunker(self.options.chunk_size)
        for index, entry in enumerate(entries):
            if isinstance(entry, Unreadable):
                self.summary.note_skipped(entry.path, f"unreadable: {entry.reason}")
                yield SkippedRecord(entry.path, f"unreadable: {entry.reason}")
            elif entry.kind == KIND_DIR:
                self.summary.dirs += 1
                yield DirRecord(entry.path, _meta(entry))
            elif entry.kind == KIND_SYMLINK:
                yield from self._symlink(entry)
            elif entry.kind == KIND_FILE:
                yield from self._file(index, entry, chunker)
            else:
                self.summary.note_skipped(entry.path, SPECIAL)
                yield SkippedRecord(entry.path, SPECIAL)
        yield from self._flush_group(chunker)

    def _drain_ends(self) -> Iterator[FileEnd | HardlinkRecord]:
        """The waiting file ends, each taken off the list as it is handed out (a replay may end between two)."""
        while self._pending_ends:
            yield self._pending_ends.pop(0)

    def _symlink(self, entry: SourceEntry) -> Iterator[EntryRecord]:
        try:
            target = os.readlink(os.path.join(self.root, entry.path))
        except FileNotFoundError:
            self.summary.note_skipped(entry.path, VANISHED)
            yield SkippedRecord(entry.path, VANISHED)
            return
        self.summary.symlinks += 1
        yield SymlinkRecord(entry.path, target, _meta(entry))

    def _flush_group(self, chunker: Chunker) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        yield from chunker.close_group()
        yield from self._drain_ends()

    def _file(self, index: int, entry: SourceEntry, chunker: Chunker) -> Iterator[EntryRecord | RawChunk | FileEnd]:
        if entry.nlink > 1:
            key = (entry.dev, entry.ino)
            if key in self._hardlinks:
                self.summary.hardlinks += 1
                link = HardlinkRecord(entry.path, self._hardlinks[key])
                if self._pending_ends:
                    # The target may be a small file still waiting for its group chunk: the link follows its record.
                    self._pending_ends.append(link)
                else:
                    yield link
                return
        if self.dry:
            yield from self._dry_file(index, entry, chunker)
            return
        try:
            fd = _open_source(self.root + b"/" + entry.path)
        except FileNotFoundError:
            self.summary.note_skipped(entry.path, VANISHED)
            yield SkippedRecord(entry.path, VANISHED)
            return
        except OSError as exc:
            if not self.options.skip_unreadable:
                raise SourceError(
                    f"cannot read {_show(entry.path)}: {exc.strerror}; fix it or pack with --skip-unreadable"
                ) from exc
            self.summary.note_skipped(entry.path, f"unreadable: {exc.strerror}")
            yield SkippedRecord(entry.path, f"unreadable: {exc.strerror}")
            return
        try:
            before = os.fstat(fd)
            if entry.nlink > 1:
                self._hardlinks[(entry.dev, entry.ino)] = entry.path
            self.paths[index] = entry.path
            self.summary.files += 1
            if is_large(before.st_size, self.options.chunk_size):
                yield from self._large_file(index, fd, before, chunker)
            else:
                yield from self._small_file(index, fd, before, chunker)
        finally:
            os.close(fd)

    def _small_file(
        self, index: int, fd: int, before: os.stat_result, chunker: Chunker
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        # Ask for one byte more than the size: getting it means the file grew while it was read.
        data = _read_exactly(fd, before.st_size + 1, before.st_size)
        grew = len(data) > before.st_size
        data = data[: before.st_size]
        self.on_bytes(len(data))
        end = self._end(index, fd, before, len(data), EMPTY_BLAKE3 if not data else None, grew, bool(data))
        if not data:
            yield end
            return
        closed = chunker.add_small(index, data)
        if closed:
            yield from closed
            yield from self._drain_ends()
        self._pending_ends.append(end)

    def _large_file(
        self, index: int, fd: int, before: os.stat_result, chunker: Chunker, offset: int = 0
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """Read a large file into chunks of its own, from ``offset``: a resumed pack re-reads what lies before,
        which must be exactly what the finished drives hold (their chunks' raw BLAKE3)."""
        if offset == 0:
            yield from self._flush_group(chunker)
        hasher = blake3.blake3()
        chunk_size = self.options.chunk_size
        stored = self.replayed_chunks.pop(index, [])
        position = 0
        for digest in stored:
            data = _read_exactly(fd, min(chunk_size, offset - position))
            if blake3.blake3(data).hexdigest() != digest:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            hasher.update(data)
            position += len(data)
        if position != offset:
            raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
        while offset < before.st_size:
            data = _read_exactly(fd, min(chunk_size, before.st_size - offset))
            if not data:
                break
            hasher.update(data)
            self.on_bytes(len(data))
            yield from chunker.add_large_piece(index, offset, data)
            offset += len(data)
        grew = offset == before.st_size and bool(os.pread(fd, 1, offset))
        yield self._end(index, fd, before, offset, hasher.hexdigest(), grew)

    def _end(
        self, index: int, fd: int, before: os.stat_result, size: int, digest: str | None, grew: bool,
        with_chunk: bool = False,
    ) -> FileEnd:  # fmt: skip
        after = os.fstat(fd)
        changed = grew or size != before.st_size or after.st_size != before.st_size
        changed = changed or after.st_mtime_ns != before.st_mtime_ns
        if changed:
            self.summary.note_changed(self.paths[index])
        self.summary.raw_bytes += size
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return FileEnd(index, size, digest, meta, changed, with_chunk)

    # -- replaying a resumed pack --

    def _dry_file(
        self, index: int, entry: SourceEntry, chunker: Chunker
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """A file as the finished drives hold it, from its scanned size: no open, no read."""
        if entry.nlink > 1:
            self._hardlinks[(entry.dev, entry.ino)] = entry.path
        self.paths[index] = entry.path
        self.summary.files += 1
        self.summary.raw_bytes += entry.size
        self.on_bytes(entry.size)
        meta = _meta(entry)
        if not is_large(entry.size, self.options.chunk_size):
            if entry.size == 0:
                yield FileEnd(index, 0, EMPTY_BLAKE3, meta, False)
                return
            closed = chunker.add_small(index, entry.size)
            if closed:
                yield from closed
                yield from self._drain_ends()
            self._pending_ends.append(FileEnd(index, entry.size, None, meta, False))
            return
        yield from self._flush_group(chunker)
        offset = 0
        while offset < entry.size and self.dry:
            piece = min(self.options.chunk_size, entry.size - offset)
            yield from chunker.add_large_piece(index, offset, piece)
            offset += piece
        if self.dry:
            yield FileEnd(index, entry.size, None, meta, False)
            return
        # The replay ended inside this file: the rest is read for real, after hashing what came before.
        self.summary.raw_bytes -= entry.size
        fd = self._open_unchanged(index, entry.size, entry.mtime_ns)
        try:
            yield from self._large_file(index, fd, os.fstat(fd), chunker, offset)
        finally:
            os.close(fd)

    def go_live(self) -> None:
        """End the replay: what follows is read for real, and replayed files still to come are read now.

        Files whose bytes are in the last replayed chunk (on a finished drive) but whose final record is not must
        still be what that chunk holds.
        """
        self.dry = False
        assert self._chunker is not None
        for index in self._chunker.dry_files():
            data, end = self._read_whole(index)
            self._chunker.fill(index, data)
            self._replace_end(end)
        stored: dict[int, bytes] = {}
        if self.last_replayed is not None:
            chunk, read_back = self.last_replayed
            raw = read_back()
            stored = {s.file_index: raw[s.chunk_offset : s.chunk_offset + s.length] for s in chunk.slices}
        for item in list(self._pending_ends):
            if isinstance(item, FileEnd) and item.blake3 is None and not item.with_chunk:
                data, end = self._read_whole(item.index)
                if stored.get(item.index, data) != data:
                    raise SourceError(f"{_show(self.paths[item.index])} changed since the interrupted pack: start over")
                self._replace_end(end)

    def _replace_end(self, end: FileEnd) -> None:
        self._pending_ends = [
            end if isinstance(item, FileEnd) and item.index == end.index else item for item in self._pending_ends
        ]

    def _read_whole(self, index: int) -> tuple[bytes, FileEnd]:
        """A replayed small file read for real; it must be as the scan saw it."""
        dry = next(e for e in self._pending_ends if isinstance(e, FileEnd) and e.index == index)
        assert isinstance(dry, FileEnd)
        fd = self._open_unchanged(index, dry.size, dry.meta.mtime_ns)
        try:
            data = _read_exactly(fd, dry.size + 1, dry.size)
            if len(data) != dry.size:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            after = os.fstat(fd)
        finally:
            os.close(fd)
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return data, FileEnd(index, dry.size, blake3.blake3(data).hexdigest(), meta, False)

    def _open_unchanged(self, index: int, size: int, mtime_ns: int) -> int:
        path = self.paths[index]
        try:
            fd = _open_source(os.path.join(self.root, path))
        except OSError as exc:
            raise SourceError(f"cannot read {_show(path)} ({exc.strerror}) to resume: start over") from exc
        st = os.fstat(fd)
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            os.close(fd)
            raise SourceError(f"{_show(path)} changed since the interrupted pack: start over (without --resume)")
        return fd


EMPTY_BLAKE3 = blake3.blake3(b"").hexdigest()


def _meta(entry: SourceEntry) -> Metadata:
    return Metadata(entry.mode, entry.mtime_ns, entry.uid, entry.gid)


_SOURCE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)


def _open_source(path: bytes) -> int:
    try:
        # O_NOATIME spares the source an inode write per file read; only the owner (or root) may ask for it.
        return os.open(path, _SOURCE_FLAGS | _NOATIME)
    except PermissionError:
        return os.open(path, _SOURCE_FLAGS)


def _read_exactly(fd: int, size: int, expected: int | None = None) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the file.

    A short read is taken as the end without asking again once ``expected`` bytes (the size fstat gave) are
    in: that spares small files a second read; any other short read (a shrinking file, a network filesystem)
    is followed up.
    """
    data = os.read(fd, size)
    if len(data) == size or not data or len(data) == expected:
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := os.read(fd, size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encode(chunk: RawChunk, level: int) -> EncodedChunk:
    """Compress (or store) and hash one chunk, and the small files of a group; runs on the pool."""
    method, stored = encode_chunk(chunk.data, level)
    files: dict[int, str] = {}
    if chunk.group:
        view = memoryview(chunk.data)
        for piece in chunk.slices:
            files[piece.file_index] = blake3.blake3(
                view[piece.chunk_offset : piece.chunk_offset + piece.length]
            ).hexdigest()
    encoded = EncodedChunk(
        id=chunk.id,
        stored=stored,
        method=method,
        raw_size=len(chunk.data),
        stored_blake3=blake3.blake3(stored).hexdigest(),
        raw_blake3=blake3.blake3(chunk.data).hexdigest(),
        file_blake3=files,
    )
    # The writer needs only the slices from here on: let the raw bytes go while the chunk waits its turn.
    chunk.data = b""
    return encoded


# --- writing drives -----------------------------------------------------------------------------------------


@dataclass
class _Piece:
    """The part of a file written to the current drive so far."""

    chunk: int
    chunk_offset: int
    offset: int
    length: int


def _record_bound(path: bytes) -> int:
    return RECORD_BOUND + PATH_ESCAPE_FACTOR * len(path)


class ShipmentWriter:
    """Fills drives in order with records and chunks; opens the next drive when one is full."""

    def __init__(
        self, targets: DriveTargets, options: PackOptions, catalog_size: int, shipment: str, created: str
    ) -> None:
        self.targets = targets
        self.options = options
        self.catalog_size = catalog_size
        self.shipment = shipment
        self.created = created
        self.labels: list[DriveLabel] = []
        self.checksums: list[list[tuple[str, str]]] = []
        self.drive: DriveWriter | None = None
        self.space: DriveSpace | None = None
        self.slot: DriveSlot | None = None
        self.pieces: dict[int, _Piece] = {}
        #: The first drive of each file whose pieces span drives, until its final record.
        self.first_drive: dict[bytes, int] = {}
        #: The catalog's entry lines, in order, as JSON Lines (uncompressed, in a temporary file).
        self.catalog_lines: BinaryIO = tempfile.TemporaryFile(prefix="sneakernet-catalog-")  # noqa: SIM115
        #: Sum of the record bounds of the open pieces, kept as pieces open and close (summing it on every
        #: record would cost the square of the files in a chunk).
        self.pieces_bound = 0
        self.paths: dict[int, bytes] = {}
        self.stored_raw_bytes = 0
        #: Each drive's size (before the reserve) by drive number, for the drives this run filled.
        self.sizes: dict[int, int] = {}
        #: Told which drive is being filled (the command line's bar names it).
        self.progress: Progress = NullProgress()

    def take_over(self, finished: FinishedDrives) -> Iterator[tuple[ManifestRecord, Callable[[], bytes]]]:
        """Continue after the drives an interrupted pack finished: their labels, checksums and catalog entries;
        returns the records to replay (see :func:`_run_pipeline`)."""
        self.labels = list(finished.labels)
        self.checksums = list(finished.checksums)

        def absorb(record: ManifestRecord, drive: int) -> None:
            self._catalog(catalog_entry(record, drive, self.first_drive))
            self.stored_raw_bytes += store_bytes(record)

        return replayed_records(finished, absorb)

    # The manifest may still need, beyond what is written: the records of open pieces, a segment record and
    # the end record. Every check reserves them.
    def _closing_bound(self) -> int:
        return self.pieces_bound + 2 * RECORD_BOUND

    def _ensure_room(self, stored_size: int, extra_records: int) -> tuple[DriveWriter, Placement | None]:
        """Make the current drive take ``stored_size`` chunk bytes (None: no chunk) and ``extra_records`` manifest
        bytes, finishing it and opening the next when they do not fit."""
        for attempt in range(2):
            if self.drive is None:
                self._open_drive()
            assert self.drive is not None and self.space is not None and self.slot is not None
            bound = self.drive.manifest.size_bound(extra_records + self._closing_bound())
            if stored_size:
                placement = self.space.place(stored_size, bound)
                if placement is not None:
                    return self.drive, placement
            elif self.space.fits(bound):
                return self.drive, None
            if attempt == 1 or (self.space.empty and self.drive.manifest.records <= 1):
                raise DestinationError(
                    f"{self.slot.path} cannot take even one chunk with its records in "
                    f"{format_size(self.slot.capacity)}: use larger drives or a smaller --chunk-size"
                )
            self._finish_drive()
        raise AssertionError("unreachable")

    def add_entry(self, record: EntryRecord) -> None:
        target = getattr(record, "target", b"")
        drive, _ = self._ensure_room(0, _record_bound(record.path + target))
        drive.add_record(record)
        self._catalog(catalog_entry(record, drive.header.drive, self.first_drive))

    def add_chunk(self, chunk: EncodedChunk, raw: RawChunk) -> None:
        extra = RECORD_BOUND + sum(_record_bound(self.paths[s.file_index]) for s in raw.slices)
        drive, placement = self._ensure_room(len(chunk.stored), extra)
        assert placement is not None
        drive.add_chunk(chunk, placement.new_segment)
        if chunk.method == "store":
            self.stored_raw_bytes += chunk.raw_size
        for piece in raw.slices:
            open_piece = self.pieces.get(piece.file_index)
            if open_piece is None:
                self.pieces[piece.file_index] = _Piece(raw.id, piece.chunk_offset, piece.file_offset, piece.length)
                self.pieces_bound += _record_bound(self.paths[piece.file_index])
            else:
                open_piece.length += piece.length

    def end_file(self, end: FileEnd) -> None:
        path = self.paths[end.index]
        # Room first: should the drive fill here, the open piece is closed on it and the final record, empty,
        # goes on the next drive. An open piece's record is already counted by _closing_bound.
        drive, _ = self._ensure_room(0, 0 if end.index in self.pieces else _record_bound(path))
        del self.paths[end.index]
        piece = self.pieces.pop(end.index, None)
        if piece is None:
            piece = _Piece(-1, 0, end.size, 0)
        else:
            self.pieces_bound -= _record_bound(path)
        record = FileRecord(
            path, piece.offset, piece.length, piece.chunk, piece.chunk_offset, True,
            end.size, end.blake3, end.meta, end.changed,
        )  # fmt: skip
        drive.add_record(record)
        self._catalog(catalog_entry(record, drive.header.drive, self.first_drive))

    def _catalog(self, entry: CatalogEntry | None) -> None:
        """Spool the catalog's entry lines as entries are written: the catalog needs no second read of manifests."""
        if entry is not None:
            self.catalog_lines.write(entry.to_line())

    def finish(self) -> None:
        if self.drive is None:
            if self.labels:
                return  # a resumed pack whose finished drives already held everything
            self._open_drive()
        self._finish_drive()

    def abort(self) -> None:
        if self.drive is not None:
            self.drive.abort()
        self.catalog_lines.close()

    def _open_drive(self) -> None:
        index = len(self.labels) + 1
        slot = self.targets.slot(index)
        if slot is None:
            raise OutOfSpace(
                f"the {index - 1} drives given are full and data is left to pack; every one of them is finished: "
                "run the same pack with --resume and one more --drive PATH (or a larger drive) to go on"
            )
        header = ManifestHeader(
            shipment=self.shipment,
            drive=index,
            created=self.created,
            chunk_size=self.options.chunk_size,
            segment_size=self.options.segment_size,
            tool=f"sneakernet {__version__}",
            level=self.options.level,
        )
        self.slot = slot
        self.sizes[index] = slot.size
        log.info("%s: filling %s (room for %d bytes)", drive_label(index), slot.path, slot.capacity)
        begin_drive(self.progress, drive_label(index))
        self.drive = DriveWriter(slot.path, drive_label(index), header, self.options.segment_size)
        self.space = DriveSpace(DriveBudget(slot.capacity, self.catalog_size), self.options.segment_size)

    def _finish_drive(self) -> None:
        assert self.drive is not None
        # Pieces of files that continue on the next drive end here.
        for index, piece in self.pieces.items():
            record = FileRecord(self.paths[index], piece.offset, piece.length, piece.chunk, piece.chunk_offset, False)
            self.drive.add_record(record)
            self.first_drive.setdefault(record.path, self.drive.header.drive)
        self.pieces = {}
        self.pieces_bound = 0
        self.labels.append(self.drive.finish())
        label = self.labels[-1]
        log.info(
            "%s finished at %s: %d segments, %d bytes stored for %d bytes of data",
            label.label, self.drive.path, label.segments, label.stored_bytes, label.raw_bytes,
        )  # fmt: skip
        self.checksums.append(self.drive.checksums)
        self.drive = None


# --- the entry point ----------------------------------------------------------------------------------------


def pack(
    source: str | os.PathLike[str],
    *,
    out: str | None = None,
    drives: Sequence[str] = (),
    drive_size: int | None = None,
    options: PackOptions | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    next_drive: NextDrive | None = None,
    catalog_dir: str | None = None,
    assume_ratio: float | None = None,
) -> PackSummary:
    """Pack the tree at ``source`` into ``out/drive-NNNN`` directories of ``drive_size`` bytes, or onto the
    mounted ``drives`` in order (each up to its free space or ``drive_size``, whichever is smaller).

    Raises a :class:`~sneakernet.errors.SneakernetError` subclass for every refusal, before anything is
    written when the problem is visible up front. ``summary.changed`` lists files that changed while they were
    read: their stored bytes and hashes agree with each other, but may be a mix of old and new content.

    With ``resume``, an interrupted pack into the same output continues (see resume.py): its finished drives are
    re-checked and kept, the result is the shipment an uninterrupted run would have written.

    With ``next_drive`` (one dock), every drive goes in at the one mount point ``drives[0]``: when a drive is
    full, ``next_drive`` is called until an empty drive is there. Only the last drive can then carry the catalog;
    ``catalog_dir`` is where the sender keeps a copy of it, ``<shipment>.catalog.jsonl.zst``
    (``summary.catalog_copy``).

    Given ``drives`` must together hold the data uncompressed, or, with ``assume_ratio`` R (stored bytes per byte
    of data, as plan estimates it), R of it: should they run out, :class:`~sneakernet.errors.OutOfSpace` is raised
    with every drive so far finished, and ``resume`` with one more drive goes on.
    """
    options = options or PackOptions()
    progress = progress or NullProgress()
    started = time.monotonic()
    options.check()
    targets = DriveTargets(out, drives, drive_size, options.reserve, resume, next_drive)
    own_record = restore_record_excludes(source)
    totals, spool = scan(source, options.excludes + own_record)
    try:
        _refuse_bad_input(totals, options, source)
        finished = (
            find_finished(targets.drive_paths(), options.chunk_size, options.segment_size, options.level)
            if resume
            else FinishedDrives()
        )
        catalog_size = _check_space(targets, totals, options, finished, assume_ratio)
        created = finished.labels[0].created if finished.labels else _now()
        summary = PackSummary(shipment=finished.shipment or uuid.uuid4().hex, fingerprint="", drives=[])
        summary.excluded_entries, summary.excluded_bytes = totals.excluded_entries, totals.excluded_bytes
        summary.resumed_drives = len(finished.labels)
        summary.restore_record_left_out = bool(own_record)
        if out:
            try:
                os.makedirs(out, exist_ok=True)
            except OSError as exc:
                raise DestinationError(f"cannot make the output directory {out}: {exc.strerror}") from exc
        if resume:
            for path in list(targets.drive_paths())[len(finished.labels) :]:
                clear_unfinished(path)
        writer = ShipmentWriter(targets, options, catalog_size, summary.shipment, created)
        replay = writer.take_over(finished) if finished.labels else None
        writer.progress = progress
        progress.start(totals.unique_bytes)
        try:
            _run_pipeline(os.fsencode(source), spool, writer, options, summary, progress, replay)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.close()
    finally:
        spool.close()
    drive_paths = [
        os.path.join(out, label.label) if out else drives[0 if next_drive else label.drive - 1]
        for label in writer.labels
    ]
    summary.fingerprint = fingerprint(label.manifest_blake3 for label in writer.labels)
    summary.stored_bytes = sum(label.stored_bytes for label in writer.labels)
    summary.stored_raw_bytes = writer.stored_raw_bytes
    try:
        header = CatalogHeader(
            shipment=summary.shipment,
            drives=len(writer.labels),
            fingerprint=summary.fingerprint,
            created=writer.labels[0].created,
            tool=writer.labels[0].tool,
            files=summary.files,
            raw_bytes=summary.raw_bytes,
            stored_bytes=summary.stored_bytes,
        )
        finish_shipment(
            drive_paths, writer.labels, writer.checksums, header, catalog_size, writer.catalog_lines,
            swapped=next_drive is not None,
        )  # fmt: skip
        _drive_summaries(drive_paths, writer, summary)
        if catalog_dir:
            summary.catalog_copy = os.path.join(catalog_dir, f"{summary.shipment}.catalog.jsonl.zst")
            copy_catalog(drive_paths[-1], summary.catalog_copy)
    finally:
        writer.catalog_lines.close()
    summary.seconds = time.monotonic() - started - targets.waited
    return summary


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refuse_bad_input(totals: ScanTotals, options: PackOptions, source: str | os.PathLike[str]) -> None:
    _refuse_reserved(totals.reserved, source)
    if totals.unreadable and not options.skip_unreadable:
        raise SourceError(
            f"{counted(len(totals.unreadable), 'entry', 'entries')} cannot be read: {describe(totals.unreadable)}; "
            "fix their permissions or pack with --skip-unreadable"
        )


def _refuse_reserved(reserved: list[bytes], source: str | os.PathLike[str]) -> None:
    """A source holding restore's own top-level name cannot be shipped as it is: restored, it would land in the
    destination's journal directory (docs/format.md, section 12.2). The user decides: exclude it, or rename it."""
    if not reserved:
        return
    name = show_path(reserved[0])
    kept = os.path.join(os.fsencode(source), reserved[0])
    if os.path.isfile(os.path.join(kept, JOURNAL_NAME.encode())):
        raise SourceError(
            f"the source holds {name} at its top, the journal a restore kept there (restore --keep-journal), not "
            f"data: pack with --exclude /{name} to leave it out"
        )
    if os.path.isfile(os.path.join(kept, FINISHED_NAME.encode())):
        # Only the record is left out on its own (scan.restore_record_excludes): here something else is beside it.
        raise SourceError(
            f"the source holds {name} at its top, with a finished restore's record and other files: pack with "
            f"--exclude /{name} to leave it all out, or move those files elsewhere"
        )
    raise SourceError(
        f"the source holds {name} at its top, a name restore keeps for its own files in the destination: pack "
        f"with --exclude /{name} to leave it out, or rename it"
    )


def _check_space(
    targets: DriveTargets,
    totals: ScanTotals,
    options: PackOptions,
    finished: FinishedDrives | None = None,
    assume_ratio: float | None = None,
) -> int:
    """The catalog bound, after refusing drives too small for the format or, together, for the data (at
    ``assume_ratio`` of its size when given, else uncompressed).

    ``finished`` drives (of a resumed pack) hold data already: neither they nor their data are counted.
    """
    done = len(finished.labels) if finished else 0
    left = totals.unique_bytes - (sum(label.raw_bytes for label in finished.labels) if finished else 0)
    slots = targets.known_slots()[done:] or targets.known_slots()
    smallest = min(slots, key=lambda s: s.capacity)
    chunk_bound = stored_size_bound(options.chunk_size)
    one_chunk_records = RECORD_BOUND * 8
    without_catalog = DriveBudget(smallest.capacity, catalog_bound(totals.catalog_entry_bytes, 0))
    per_drive = without_catalog.usable(one_chunk_records)
    if per_drive < chunk_bound:
        needed = smallest.capacity - per_drive + chunk_bound
        raise DestinationError(
            f"drive size too small: {smallest.path} can take {format_size(max(smallest.capacity, 0))} after the "
            f"reserve, the format needs at least {format_size(needed)} for one chunk, its manifest and the catalog: "
            "use larger drives"
        )
    # Worst case: nothing compresses, and the manifests take about as much room as the catalog's entries again.
    worst_case = chunk_bound * (totals.unique_bytes // options.chunk_size + 1) + totals.catalog_entry_bytes
    # Estimate the drive count twice, the second time with the catalog of the first estimate in place, then
    # reserve for twice as many drives and some: a drive line costs 320 bytes, running short fails at the end.
    drives = 2 * (worst_case // per_drive + 1) + 4
    per_drive = DriveBudget(smallest.capacity, catalog_bound(totals.catalog_entry_bytes, drives)).usable(
        one_chunk_records
    )
    drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
    catalog_size = catalog_bound(totals.catalog_entry_bytes, drives)
    budget = DriveBudget(smallest.capacity, catalog_size)
    if budget.usable(one_chunk_records) < chunk_bound:
        raise DestinationError(
            f"drive size too small: {smallest.path} cannot hold one chunk beside the catalog of "
            f"{format_size(catalog_size)}: use larger drives"
        )
    largest = max(s.capacity for s in slots)
    if largest // options.segment_size > MAX_SEGMENTS:
        raise UsageError(
            f"segment size too small for these drives: a drive holds at most {MAX_SEGMENTS} segments; "
            "use a larger --segment-size"
        )
    if targets.drives and targets.next_drive is None:
        room = sum(DriveBudget(s.capacity, catalog_size).usable(0) for s in slots)
        if room < left * (assume_ratio or 1.0):
            raise DestinationError(_drives_too_small(len(slots), room, left, assume_ratio))
    return catalog_size


def _drives_too_small(count: int, room: int, left: int, assume_ratio: float | None) -> str:
    """Why the given drives are refused, and the three ways on."""
    drives = f"the {count} drive{'s' if count != 1 else ''} given hold{'s' if count == 1 else ''}"
    needed = f"fits only if it compresses to {room / left:.2f} of its size or less"
    if assume_ratio is not None:
        return (
            f"{drives} about {format_size(room)} after overhead; the source has {format_size(left)} left to pack, "
            f"{format_size(left * assume_ratio)} at --assume-ratio {assume_ratio:g}: add drives"
        )
    return (
        f"{drives} about {format_size(room)} after overhead; the source has {format_size(left)} left to pack, which "
        f"{needed}: add drives; or accept the risk with --assume-ratio R (sneakernet plan estimates R; should the "
        "drives run out, pack stops with exit code 4 and --resume with one more --drive goes on); or pack with "
        "--out DIR --drive-size SIZE and copy the drive directories onto the drives"
    )


def _run_pipeline(
    root: bytes,
    spool: Any,
    writer: ShipmentWriter,
    options: PackOptions,
    summary: PackSummary,
    progress: Progress,
    replay: Iterator[tuple[ManifestRecord, Callable[[], bytes]]] | None = None,
) -> None:
    """Three stages that overlap: a thread reads the source (and hashes whole files), a pool encodes chunks, and
    this thread writes in order; at most a few chunks per worker are in flight, so memory stays flat.

    With ``replay`` (a resumed pack: the records of the finished drives), the stream's first items are only
    compared with those records, without reading files, until they run out; then packing goes on for real.
    """
    reader = SourceReader(root, options, summary, paths=writer.paths, on_bytes=progress.advance)
    items = reader.items(spool.entries())
    if replay is not None:
        _replay(items, reader, replay, writer, summary)
    window: deque[tuple[Any, Future[EncodedChunk] | None]] = deque()
    # Enough chunks in flight to keep every worker busy while the writer waits on the oldest one. Chunks are
    # counted, not items: a chunk of small files comes with a record for each file, and counting those would
    # leave one chunk in flight at a time (measured: the encode pool idle half the time on 400 KB images).
    limit = options.workers + 2
    encoding = 0
    files: dict[int, str] = {}
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="sneakernet-encode") as pool:
        for item in read_ahead(items, limit):
            if isinstance(item, RawChunk):
                window.append((item, pool.submit(encode, item, options.level)))
                encoding += 1
            else:
                window.append((item, None))
            while encoding > limit or (window and window[0][1] is None):
                done, future = window.popleft()
                encoding -= future is not None
                _write_item(writer, done, future, summary, files)
        while window:
            _write_item(writer, *window.popleft(), summary, files)


def _replay(
    items: Iterator[Any],
    reader: SourceReader,
    replay: Iterator[tuple[ManifestRecord, Callable[[], bytes]]],
    writer: ShipmentWriter,
    summary: PackSummary,
) -> None:
    """Consume the stream's items that the finished drives already hold, checking each; then go live."""
    expected = next(replay, None)
    reader.dry = expected is not None
    while expected is not None:
        item = next(items, None)
        if item is None:
            raise SourceError(
                "the source has fewer entries than the interrupted pack wrote: it changed; start over without --resume"
            )
        record, read_back = expected
        match(item, record, writer.paths)
        if isinstance(item, RawChunk):
            summary.chunks += 1
            reader.last_replayed = (item, read_back)
            if len(item.slices) == 1 and item.slices[0].chunk_offset == 0 and isinstance(record, ChunkRecord):
                reader.replayed_chunks.setdefault(item.slices[0].file_index, []).append(record.raw_blake3)
        elif isinstance(item, FileEnd):
            del writer.paths[item.index]
            reader.replayed_chunks.pop(item.index, None)
        expected = next(replay, None)
    reader.go_live()


#: Items handed from the reading thread at a time: a chunk ends a batch, so each holds at most one chunk.
READ_BATCH = 256
_END: Any = object()


def read_ahead(items: Iterator[Any], batches: int) -> Iterator[Any]:
    """``items``, produced on a thread of its own at most ``batches`` batches ahead (each with one chunk at most).

    Reading and whole-file hashing then overlap with encoding and writing. An exception in the producer is raised
    here; when the consumer stops early, the producer stops too and closes the generator.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=batches)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch: list[Any] = []
        try:
            for item in items:
                batch.append(item)
                if (isinstance(item, RawChunk) or len(batch) >= READ_BATCH) and not put(batch):
                    return
                if isinstance(item, RawChunk) or len(batch) >= READ_BATCH:
                    batch = []
            if put(batch):
                put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
        finally:
            if stop.is_set():
                items.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=produce, name="sneakernet-read", daemon=True)
    thread.start()
    try:
        while (got := handoff.get()) is not _END:
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        stop.set()
        thread.join()


def _write_item(
    writer: ShipmentWriter, item: Any, future: Future[EncodedChunk] | None, summary: PackSummary, files: dict[int, str]
) -> None:
    """Write one item of the stream; ``files`` carries the whole-file hashes of a group chunk to its files' ends,
    which follow the chunk."""
    if future is not None:
        encoded = future.result()
        writer.add_chunk(encoded, item)
        files.update(encoded.file_blake3)
        summary.chunks += 1
    elif isinstance(item, FileEnd):
        if item.with_chunk:
            item.blake3, item.with_chunk = files.pop(item.index), False
        writer.end_file(item)
    else:
        writer.add_entry(item)


def _drive_summaries(paths: list[str], writer: ShipmentWriter, summary: PackSummary) -> None:
    """Each drive of the shipment, as the summary lists it."""
    for path, label in zip(paths, writer.labels, strict=False):
        summary.drives.append(
            {
                "drive": label.drive,
                "label": label.label,
                "path": path,
                "segments": label.segments,
                "stored_bytes": label.stored_bytes,
                "raw_bytes": label.raw_bytes,
                "manifest_blake3": label.manifest_blake3,
                # None for a drive kept from an interrupted pack (--resume): its size was not measured this time.
                "size": writer.sizes.get(label.drive),
            }
        )


__all__ = ["DRIVE_LABEL_NAME", "MANIFEST_NAME", "PackOptions", "PackSummary", "pack"]
