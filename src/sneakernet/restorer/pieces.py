"""Files spanning drives: the pieces each drive gives, assembled in a part from byte 0 on as far as they reach,
a piece that comes early parked in a part of its own."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import blake3

from ..drive import ChunkMap, DriveReader
from ..format import FileRecord, Metadata
from ..io.tree import Parts
from ..progress import DriveProgress
from .cursor import ChunkCursor
from .desk import Stopped
from .journal import Journal
from .parts import HashLane, contiguous_end, create_part, new_part_name, parked_key, piece_problem, pwrite_all
from .report import DriveOutcome
from .states import EntryState


class PieceLocks:
    """One lock a file spanning drives, for drives restored at once: the pieces of a file are checked, written
    or parked, recorded and absorbed by one drive at a time (else two drives could each park their piece with
    none left to absorb the other's). Files wholly on one drive need none."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        #: path -> (its lock, how many drives hold or wait for it): gone once none does.
        self._locks: dict[bytes, tuple[threading.Lock, int]] = {}
        #: Files whose part a drive is writing into, without the file's lock (see :meth:`take_part`): the drive.
        self._writing: dict[bytes, int] = {}
        #: Files assembled whole in this run, each handed to one drive's batch to install (never to two).
        self.assembled: set[bytes] = set()

    def take_part(self, path: bytes, drive: int) -> bool:
        """Whether ``drive`` may write into the part of ``path`` now (no other drive is): then it does until it
        gives it back (:meth:`give_part`, under the file's lock, so that a drive recording a parked piece next
        sees the part free)."""
        with self._guard:
            if path in self._writing:
                return False
            self._writing[path] = drive
            return True

    def give_part(self, path: bytes, drive: int) -> None:
        """``drive`` is done with the part of ``path`` (if it held it)."""
        with self._guard:
            if self._writing.get(path) == drive:
                del self._writing[path]

    @contextlib.contextmanager
    def hold(self, path: bytes) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(path, (threading.Lock(), 0))
            self._locks[path] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[path]
                if users == 1:
                    del self._locks[path]
                else:
                    self._locks[path] = (lock, users - 1)


class Fail(Protocol):
    """How the drive restorer is told that ``path`` is not restored (see DriveRestorer.fail)."""

    def __call__(self, path: bytes, reason: str, keep_part: bool = False, *, part: bytes | None = None) -> None: ...


#: How the drive restorer is given a file whose bytes are all in its part, verified: it installs it in a batch
#: (``fd``, ``part``, ``path``, metadata, size, spanning drives).
Finish = Callable[[int, bytes, bytes, Metadata, int, bool], None]


class PartWriter:
    """The part files of one drive's restore, given to its :class:`~sneakernet.restorer.drive_restorer.
    DriveRestorer`: a piece of a file spanning drives, a part opened or made, a piece's bytes written into it.
    It tells the drive restorer, through ``fail`` and ``finish``, of a file that fails or is complete."""

    def __init__(
        self,
        reader: DriveReader,
        chunk_map: ChunkMap,
        journal: Journal,
        parts: Parts,
        outcome: DriveOutcome,
        progress: DriveProgress,
        spanning: dict[bytes, tuple[Any, int]],
        fail: Fail,
        finish: Finish,
        locks: PieceLocks | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.reader = reader
        self.drive = reader.label.drive
        self.map = chunk_map
        self.journal = journal
        self.parts = parts
        self.dest = journal.dest
        self.outcome = outcome
        self.progress = progress
        self.spanning = spanning
        self._fail = fail
        self._finish = finish
        self.locks = locks or PieceLocks()
        #: Set when the run stops: a piece being written ends (:class:`Stopped`).
        self.stop = stop or threading.Event()
        #: Set by the drive restorer while it runs (see DriveRestorer.hash_lane).
        self.hash_lane: HashLane | None = None

    def piece(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> None:
        """A piece of a file spanning drives. The part only ever holds the file's bytes from 0 on, as far as the
        pieces recorded reach without a gap: a piece that lies beyond (its drive came, or is being written, before
        the one holding the bytes before it) waits in a part of its own, as long as itself, until those come. So a
        part never grows past what the drives given supplied (a piece claiming offset 2^40 made a 1 TiB sparse
        part), and pieces that overlap, leave a gap or run past the file's size are refused, naming the drives.

        With drives written at once, each step that reads or changes the file's pieces holds its lock
        (:class:`PieceLocks`); the bytes are written without it, so a drive never waits for another's piece to
        be written. One drive at a time writes into the file's part; a parked piece is recorded only while it
        does not follow the bytes recorded (else it is moved into the part in the same step): whatever moment a
        run is killed at, the part holds the bytes of the pieces recorded that reach from 0 without a gap."""
        with self.locks.hold(path):
            pieces = self.journal.pieces(path)
            if any(drive == self.drive for _, _, drive in pieces):
                # This drive's piece is in already (a drive restored again after some of its files failed, or
                # after a kill).
                self._settle(path, pieces)
                return
            if not self._fits(record, path, pieces):
                return
            end = contiguous_end(pieces)
            into_part = record.offset == end and self.locks.take_part(path, self.drive)
        if into_part:
            try:
                self._write_into_part(record, path, cursor, end)
            finally:
                self.locks.give_part(path, self.drive)  # if it ended before it gave it back
        elif not self._park(record, path, cursor):
            with self.locks.hold(path):
                self._record_parked(record, path)

    def _settle(self, path: bytes, pieces: list[tuple[int, int, int]]) -> None:
        """Finish a file whose every piece is recorded but that is not installed: with drives written at once,
        another drive's commit can make the last piece's record durable before the drive that recorded it
        installed the file, and a run killed in between leaves it so (under the file's lock)."""
        entry = self.journal.entry(path)
        if entry is None or entry.state != EntryState.PENDING or entry.size != contiguous_end(pieces):
            return
        if path in self.locks.assembled:
            return  # another drive of this run has it in its batch
        if self.locks.take_part(path, self.drive):
            self._in_part(path, lambda fd, part: self._finish_spanning(fd, part, path))

    def _in_part(self, path: bytes, work: Callable[[int, bytes], None]) -> None:
        """``work`` on the part of ``path`` (opened, then closed), which this drive took (given back after)."""
        try:
            opened = self.open_part(path, whole=False)
            if opened is None:
                return
            fd, part = opened
            try:
                work(fd, part)
            finally:
                self.parts.close_file(fd)
        finally:
            self.locks.give_part(path, self.drive)

    def _fits(self, record: FileRecord, path: bytes, pieces: list[tuple[int, int, int]]) -> bool:
        """Whether this drive's piece fits beside the ``pieces`` recorded (else the file fails, theirs kept)."""
        problem = piece_problem(record, self.drive, self.reader.label.label, pieces, self.journal.entry(path))
        if problem is not None:
            # The other drives' pieces stay: a good copy of this drive completes the file.
            self._fail(path, f"cannot be assembled: {problem}", keep_part=True)
        return problem is None

    def _write_into_part(self, record: FileRecord, path: bytes, cursor: ChunkCursor, end: int) -> None:
        """Write the piece that follows the part's bytes into the part (holding it, not the file's lock), then
        record it, with the parked pieces that now follow, under the file's lock."""
        # Hashed as written when it follows the bytes hashed so far in this run, else read back at the end.
        hasher, upto = self.spanning.pop(path, (None, -1))
        if record.offset == 0:
            hasher, upto = blake3.blake3(), 0
        if upto != record.offset:
            hasher = None
        opened = self.open_part(path, whole=False)
        if opened is None:
            return
        fd, part = opened
        try:
            self.parts.truncate(fd, end)  # whatever a killed run wrote past the pieces recorded
            if self.write_piece(fd, record, cursor, hasher, record.offset):
                self._fail(path, f"has damaged bytes on {self.reader.label.label}", keep_part=True)
                return
            with self.locks.hold(path):
                try:
                    pieces = self.journal.pieces(path)  # parked by other drives meanwhile
                    if self._fits(record, path, pieces):
                        self._absorb_and_record(fd, part, path, pieces, record, hasher)
                finally:
                    self.locks.give_part(path, self.drive)
        finally:
            self.parts.close_file(fd)

    def _record_parked(self, record: FileRecord, path: bytes) -> None:
        """Record a piece written into a part of its own (under the file's lock). When the bytes before it came
        meanwhile (another drive wrote them while this one parked), it goes into the part at once instead."""
        pieces = self.journal.pieces(path)
        key = parked_key(path, self.drive)
        if not self._fits(record, path, pieces):
            self.drop_parked(key)
            return
        end = contiguous_end(pieces)
        if record.offset != end or not self.locks.take_part(path, self.drive):
            self.journal.add_piece(path, record.offset, record.length, self.drive)
            return

        def move_in(fd: int, part: bytes) -> None:
            self.parts.truncate(fd, end)
            hasher, upto = self.spanning.pop(path, (None, -1))
            mine = (record.offset, record.length, self.drive)
            self._absorb_and_record(
                fd, part, path, sorted([*pieces, mine]), record, hasher if upto == end else None, at=end
            )

        self._in_part(path, move_in)

    def _absorb_and_record(
        self,
        fd: int,
        part: bytes,
        path: bytes,
        pieces: list[tuple[int, int, int]],
        record: FileRecord,
        hasher: Any,
        at: int | None = None,
    ) -> None:
        """Move the parked pieces that follow the part's bytes (from ``at``, else the end of this drive's piece)
        into it, record this drive's piece, and finish the file when its every byte is in (under its lock)."""
        absorbed = self._absorb(fd, path, pieces, record.offset + record.length if at is None else at, hasher)
        if absorbed is None:
            return
        self.journal.add_piece(path, record.offset, record.length, self.drive)
        if hasher is not None:
            self.spanning[path] = (hasher, absorbed)
        entry = self.journal.entry(path)
        if entry is not None and entry.size == absorbed:
            self._finish_spanning(fd, part, path)

    def _park(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> bool:
        """Write a piece that does not follow the part's bytes into a part of its own (a random name, recorded in
        the journal under the path and the drive); True if it is damaged (the file fails)."""
        key = parked_key(path, self.drive)
        known = self.journal.part(key)
        if known is not None:  # a killed run's: made again
            self.parts.remove(known[0])
        name = new_part_name()
        fd = create_part(self.parts, name, self.dest)
        try:
            self.journal.set_parts([(key, name, *self._identity(fd))])
            broken = self.write_piece(fd, record, cursor, None, 0)
        finally:
            self.parts.close_file(fd)
        if broken:
            self._fail(path, f"has damaged bytes on {self.reader.label.label}", keep_part=True)
            self.drop_parked(key)
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
                while position < length and (
                    data := self.parts.read(source, min(1 << 22, length - position), position)
                ):
                    if hasher is not None:
                        hasher.update(data)
                    pwrite_all(self.parts, fd, data, end + position, self.dest)
                    position += len(data)
            finally:
                self.parts.close_file(source)
            if position != length:
                self._fail(path, f"lost bytes of its piece of drive {drive} from DEST/.sneakernet/parts")
                return None
            end += length
        return end

    def _open_parked(self, path: bytes, drive: int) -> int | None:
        """The parked piece of ``drive``, opened for reading if it is still the file restore made, else None."""
        known = self.journal.part(parked_key(path, drive))
        if known is None:
            return None
        name, dev, ino = known
        try:
            fd = self.parts.open(name)
        except OSError:
            return None
        if self.parts.identity(fd) != (dev, ino):
            self.parts.close_file(fd)
            return None
        return fd

    def drop_parked(self, key: bytes) -> None:
        known = self.journal.part(key)
        if known is not None:
            with contextlib.suppress(IsADirectoryError):
                self.parts.remove(known[0])
            self.journal.drop_parts([key])

    def drop_pieces(self, path: bytes) -> None:
        """Forget the pieces of ``path`` and remove the parts of their own that any of them waited in."""
        for _, _, drive in self.journal.pieces(path):
            self.drop_parked(parked_key(path, drive))
        self.journal.drop_pieces(path)

    def open_part(self, path: bytes, whole: bool) -> tuple[int, bytes] | None:
        """The part to write ``path``'s bytes into, and its name: a new one (O_EXCL, a random name) for a whole file
        or the first piece of a file spanning drives; else the one the journal recorded, refused (the file fails,
        None) when it is gone or is not the file that was made (replaced since an earlier drive wrote into it)."""
        known = None if whole else self.journal.part(path)
        if known is None:
            name = new_part_name()
            fd = create_part(self.parts, name, self.dest)
            if not whole:
                self.journal.set_parts([(path, name, *self._identity(fd))])
            return fd, name
        name, dev, ino = known
        try:
            fd = self.parts.open(name, writable=True)
        except FileNotFoundError:
            self._fail(path, "lost its part (the bytes of its earlier drives) from DEST/.sneakernet/parts")
            return None
        except OSError as exc:
            self._fail(path, f"has a part that cannot be opened ({exc.strerror}): it is not the file restore made")
            return None
        if self.parts.identity(fd) != (dev, ino):
            self.parts.close_file(fd)
            self._fail(path, "has a part that was replaced since an earlier drive wrote into it: not installed")
            return None
        return fd, name

    def write_piece(self, fd: int, record: FileRecord, cursor: ChunkCursor, hasher: Any, at: int) -> bool:
        """Write the piece's bytes into ``fd`` from offset ``at`` on, hashing them with ``hasher`` (if any) in
        order; True if some of its chunks are damaged."""
        span = self.map.piece_range(record)
        if span is None:
            return False
        broken = False
        lane = self.hash_lane
        try:
            for position, data in cursor.slices(*span):
                if self.stop.is_set():
                    raise Stopped
                if data is None:
                    broken = True
                    continue
                if hasher is not None:
                    if lane is None:
                        hasher.update(data)
                    else:
                        lane.update(hasher, data)
                pwrite_all(self.parts, fd, data, at + position - span[0], self.dest)
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
        while data := self.parts.read(fd, 1 << 22, position):
            hasher.update(data)
            position += len(data)
        if hasher.hexdigest() != entry.blake3:
            self._fail(path, "does not match its BLAKE3 once assembled from its drives", part=part)
            return
        assert entry.mode is not None and entry.mtime_ns is not None and entry.uid is not None
        assert entry.gid is not None
        meta = Metadata(entry.mode, entry.mtime_ns, entry.uid, entry.gid)
        self.locks.assembled.add(path)
        self._finish(fd, part, path, meta, entry.size, True)

    def _identity(self, fd: int) -> tuple[int | None, int | None]:
        """What the journal records of a part just made: its ``(st_dev, st_ino)``."""
        return self.parts.identity(fd) or (None, None)
