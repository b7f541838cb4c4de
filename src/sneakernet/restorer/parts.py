"""Part files in DEST/.sneakernet/parts: where a file's bytes are assembled before it is installed, made
O_EXCL|O_NOFOLLOW under random names, every operation on them through the destination's
:class:`~sneakernet.io.tree.Parts`; the writer pool's jobs and the hash lane."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import blake3

from ..errors import DestinationError, OutOfSpace
from ..format import FileRecord, Metadata
from ..io.tree import Destination, Parts
from .destination import space_error
from .journal import PARTS_DIR, Entry, Journal


def new_part_name() -> bytes:
    """A part's name: 128 random bits, so that nothing can name a part before restore makes it (a name derived
    from the path, as before, let a shipment put its own file there)."""
    return secrets.token_hex(16).encode("ascii") + b".part"


def parked_key(path: bytes, drive: int) -> bytes:
    """What the journal records the part of drive ``drive``'s parked piece of ``path`` under (a NUL, which no
    shipment path holds, keeps it apart from every path)."""
    return path + b"\0%d" % drive


def contiguous_end(pieces: list[tuple[int, int, int]]) -> int:
    """Where the bytes of a file's pieces (sorted by offset) reach from 0 without a gap: what its part holds."""
    end = 0
    for offset, length, _ in pieces:
        if offset != end:
            break
        end += length
    return end


def piece_problem(
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


def create_part(parts: Parts, name: bytes, dest: str) -> int:
    """Make part ``name`` (``O_EXCL|O_NOFOLLOW``); a descriptor open for reading and writing."""
    try:
        return parts.create(name)
    except OSError as exc:
        raise space_error(exc, dest) from exc


def open_parts(tree: Destination, dest: str) -> Parts:
    """DEST/.sneakernet/parts (:meth:`Destination.open_parts`): every part is reached through it, and a symlink put
    in place of either directory is refused, never followed."""
    try:
        return tree.open_parts()
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DestinationError(
                f"{os.path.join(Journal.directory(dest), PARTS_DIR)} is a symlink or not a directory: it must be "
                "restore's own directory; remove it and run the same restore again"
            ) from exc
        raise space_error(exc, dest) from exc


def sweep_parts(journal: Journal, parts: Parts) -> None:
    """Remove the parts no journal entry names: those of files a killed run was writing (made again from the
    drive) and any file put there meanwhile."""
    kept = journal.part_names()
    for name in parts.names():
        if name not in kept:
            with contextlib.suppress(IsADirectoryError, PermissionError):
                parts.remove(name)


def legacy_part_name(path: bytes) -> bytes:
    """The part name a sneakernet before random part names gave ``path``: only to finish an install a run of it
    was killed in (its journal records the state, not the name)."""
    return blake3.blake3(path).hexdigest()[:40].encode("ascii") + b".part"


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


def write_files(
    parts: Parts,
    dest: str,
    files: list[tuple[bytes, list[memoryview | bytes], int, str, Metadata, tuple[int, int] | None]],
) -> list[str | None]:
    """On the writer pool: the files of one job, in order (see :func:`_write_file`)."""
    return [_write_file(parts, dest, *file) for file in files]


def _write_file(
    parts: Parts,
    dest: str,
    part: bytes,
    datas: list[memoryview | bytes],
    size: int,
    expected: str,
    meta: Metadata,
    owner: tuple[int, int] | None,
) -> str | None:
    """On the writer pool: write a whole file's bytes into its part, hashing them as they go; set its metadata.
    Returns None when it matched its BLAKE3, else why not."""
    fd = create_part(parts, part, dest)
    try:
        hasher = blake3.blake3()
        offset = 0
        for data in datas:
            pwrite_all(parts, fd, data, offset, dest)
            hasher.update(data)
            offset += len(data)
        if offset != size or hasher.hexdigest() != expected:
            return "does not match its BLAKE3"
        seal_part(parts, fd, meta, owner, dest)
    finally:
        parts.close_file(fd)
    return None


def seal_part(parts: Parts, fd: int, meta: Metadata, owner: tuple[int, int] | None, dest: str) -> None:
    """A finished part's metadata, as its file will have it (see :meth:`Parts.seal`)."""
    try:
        parts.seal(fd, meta.mode, meta.mtime_ns, owner)
    except OSError as exc:
        raise space_error(exc, dest) from exc


def pwrite_all(parts: Parts, fd: int, data: memoryview | bytes, offset: int, dest: str) -> None:
    """Write all of ``data`` at ``offset`` of a part: a short write (a filling disk) is continued, never ignored."""
    while data:
        try:
            written = parts.write(fd, data, offset)
        except OSError as exc:
            raise space_error(exc, dest) from exc
        if written == 0:
            raise OutOfSpace(f"the destination {dest} takes no more bytes: free space and run the same restore again")
        data, offset = data[written:], offset + written
