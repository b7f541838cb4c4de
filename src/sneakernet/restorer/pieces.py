"""Files spanning drives: the pieces each drive gives, assembled in a part from byte 0 on as far as they reach,
a piece that comes early parked in a part of its own."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from typing import Any

import blake3

from ..drive import ChunkMap, DriveReader
from ..format import FileRecord, Metadata
from ..io.tree import Destination
from ..progress import Progress
from .cursor import ChunkCursor
from .destination import CLOEXEC
from .journal import Journal
from .parts import HashLane, contiguous_end, create_part, new_part_name, parked_key, piece_problem, pwrite_all
from .report import DriveOutcome


class PartWriter:
    """The part files of one drive's restore (mixed into :class:`~sneakernet.restorer.drive.DriveRestorer`): a
    piece of a file spanning drives, a part opened or made, a piece's bytes written into it."""

    reader: DriveReader
    drive: int
    map: ChunkMap
    journal: Journal
    tree: Destination
    outcome: DriveOutcome
    progress: Progress
    parts_fd: int
    hash_lane: HashLane | None
    spanning: dict[bytes, tuple[Any, int]]

    # Given by DriveRestorer, which owns the drive's outcome and installs finished files: declared, not stubbed.
    _fail: Callable[..., None]
    _finish: Callable[..., None]

    def _piece(self, record: FileRecord, path: bytes, cursor: ChunkCursor) -> None:
        """A piece of a file spanning drives. The part only ever holds the file's bytes from 0 on, as far as the
        pieces given so far reach without a gap: a piece that lies beyond (its drive came before the one holding
        the bytes before it) waits in a part of its own, as long as itself, until those come. So a part never
        grows past what the drives given supplied (a piece claiming offset 2^40 made a 1 TiB sparse part), and
        pieces that overlap, leave a gap or run past the file's size are refused, naming the drives."""
        pieces = self.journal.pieces(path)
        if any(drive == self.drive for _, _, drive in pieces):
            return  # this drive's piece is in already (a drive restored again after some of its files failed)
        problem = piece_problem(record, self.drive, self.reader.label.label, pieces, self.journal.entry(path))
        if problem is not None:
            # The other drives' pieces stay: a good copy of this drive completes the file.
            self._fail(path, f"cannot be assembled: {problem}", keep_part=True)
            return
        end = contiguous_end(pieces)
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
        key = parked_key(path, self.drive)
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
                    pwrite_all(self.tree, fd, data, end + position)
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
        known = self.journal.part(parked_key(path, drive))
        if known is None:
            return None
        name, dev, ino = known
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | CLOEXEC, dir_fd=self.parts_fd)
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
            self._drop_parked(parked_key(path, drive))
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
            fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | CLOEXEC, dir_fd=self.parts_fd)
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
                pwrite_all(self.tree, fd, data, at + position - span[0])
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
