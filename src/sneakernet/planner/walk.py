"""plan's one pass over the source: the totals pack's scan gives, the sample's pieces, and the events the fill
places afterwards (spooled to a temporary file, so a tree of any size is planned in bounded memory)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from stat import S_IFDIR, S_IFLNK, S_IFREG
from typing import BinaryIO

from ..chunks.chunker import closes_group, is_large
from ..io.source import FILE_TYPE_BITS, Excluded, Source, Unreadable
from ..patterns import Excluder
from ..scan import ScanTotals
from ..space.budget import (
    CATALOG_ENTRY_OVERHEAD,
    JSON_PLAIN,
    catalog_entry_bound,
    record_bound,
)
from .manifest import DIR_LINE, FILE_LINE, HARDLINK_LINE, PIECE_LINE, SKIPPED_LINE, SYMLINK_LINE
from .sample import StreamSampler

#: Events of the walk, five integers each: a batch of records (lines, bound, 0, 0), a chunk of small files
#: (start in the stream, raw size, its files' record bound and piece lines), a large file (the same; it is cut
#: into chunks when placed).
EVENT_RECORDS, EVENT_GROUP, EVENT_LARGE = 0, 1, 2
_EVENT_WIDTH = 5
#: Events kept in memory before they go to the spool file: a tree of any size is planned in bounded memory.
EVENT_BATCH = 8192
#: A batch of records is cut when its bound reaches this: pack checks the room of every record, and a drive
#: must not seem too small for a directory of a hundred thousand empty files.
RECORDS_BATCH_BOUND = 64 * 1024


class EventSpool:
    """The walk's events, in order, in a temporary file once there are more than :data:`EVENT_BATCH`."""

    def __init__(self) -> None:
        self._batch = array("q")
        self._file: BinaryIO | None = None

    def add(self, kind: int, a: int, b: int, c: int, d: int) -> None:
        self._batch.extend((kind, a, b, c, d))
        if len(self._batch) >= EVENT_BATCH * _EVENT_WIDTH:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="sneakernet-plan-")  # noqa: SIM115
            self._batch.tofile(self._file)
            self._batch = array("q")

    def __iter__(self) -> Iterator[tuple[int, int, int, int, int]]:
        if self._file is not None:
            self._file.seek(0)
            while True:
                batch = array("q")
                with contextlib.suppress(EOFError):  # the last, shorter batch is read all the same
                    batch.fromfile(self._file, EVENT_BATCH * _EVENT_WIDTH)
                if not batch:
                    break
                yield from _events(batch)
        yield from _events(self._batch)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _events(batch: array[int]) -> Iterator[tuple[int, int, int, int, int]]:
    values = iter(batch)
    # One iterator five times over: each tuple takes the next five values.
    return zip(values, values, values, values, values, strict=True)


@dataclass
class Walked:
    """What the walk found: pack's scan totals, the counts of pack's summary, and the stream's length."""

    totals: ScanTotals = field(default_factory=ScanTotals)
    files: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    #: Every file's size end to end, hard links included: the stream the sample's strata cut.
    stream_bytes: int = 0


class Walk:
    """One pass over the source: the totals pack's scan gives, the sample, and the events of the fill.

    The chunks are pack's: small files grouped in walk order until the next would not fit, each large file cut
    into chunks of its own, by the chunker's own rules (:func:`~sneakernet.chunks.chunker.is_large`,
    :func:`~sneakernet.chunks.chunker.closes_group`; a test holds the walk to
    :class:`~sneakernet.chunks.chunker.Chunker`'s chunks); the records are pack's, a file's end after its chunk.
    The loop keeps the rest of a group's arithmetic inline: it runs for every file of the tree.
    """

    def __init__(self, source: Source, sampler: StreamSampler, events: EventSpool, chunk_size: int) -> None:
        self.source = source
        self.sampler = sampler
        self.events = events
        self.chunk_size = chunk_size
        self.walked = Walked()
        self.linked: set[tuple[int, int]] = set()
        #: Records since the last chunk (lines, bound); the open group (start, size, record bound, piece lines)
        #: and its files' ends, which follow its chunk.
        self.lines = self.bound = 0
        self.group_start = self.group_size = self.group_bound = self.group_pieces = 0
        self.ends_lines = self.ends_bound = 0

    def run(self, excluder: Excluder | None) -> Walked:
        walked, sampler, chunk_size = self.walked, self.sampler, self.chunk_size
        # The chunker's rules and the record bound, as locals: looked up for every file.
        large, closes, bound_of = is_large, closes_group, record_bound
        # The counts of every file are kept in locals and stored at the end: this loop runs for every file.
        position = files = data_bytes = catalog_bytes = unique_files = unique_bytes = 0
        readable = self.source.readable  # looked up once: it is asked of every file
        for item in self.source.walk_stats(excluder):
            if not isinstance(item, tuple):
                self._aside(item)
                continue
            path, st = item
            kind = st.st_mode & FILE_TYPE_BITS
            length = len(path)
            if kind != S_IFREG:
                self._other(path, kind)
                continue
            bound = bound_of(length)
            if not readable(path):
                walked.totals.unreadable.append(path)
                self._record(SKIPPED_LINE + length, bound)
                continue
            size = st.st_size
            files += 1
            data_bytes += size
            # catalog_entry_bound(path), inline
            catalog_bytes += CATALOG_ENTRY_OVERHEAD + (6 * length if path.translate(None, JSON_PLAIN) else length)
            if st.st_nlink > 1 and self._linked(st, path, position, size):
                position += size
                continue
            unique_files += 1
            unique_bytes += size
            if not size:
                self._record(FILE_LINE + length, bound)
                continue
            end = position + size
            if sampler.collecting or end > sampler.next_position:
                sampler.add(path, position, size)
            if large(size, chunk_size):
                self._large(position, size, length)
            else:
                if closes(self.group_size, size, chunk_size):
                    self._close_group()
                if not self.group_size:
                    self.group_start = position
                self.group_size += size
                self.group_bound += bound
                self.group_pieces += PIECE_LINE + length
                self.ends_lines += FILE_LINE + length
                self.ends_bound += bound
            position = end
        self._close_group()
        if self.lines:
            self.events.add(EVENT_RECORDS, self.lines, self.bound, 0, 0)
        totals = walked.totals
        totals.files += files
        totals.data_bytes += data_bytes
        totals.catalog_entry_bytes += catalog_bytes
        walked.files, walked.raw_bytes, walked.stream_bytes = unique_files, unique_bytes, position
        return walked

    def _record(self, line: int, bound: int) -> None:
        self.lines += line
        self.bound += bound
        if self.bound >= RECORDS_BATCH_BOUND:
            self.events.add(EVENT_RECORDS, self.lines, self.bound, 0, 0)
            self.lines = self.bound = 0

    def _chunk(self, kind: int, start: int, size: int, bound: int, pieces: int) -> None:
        if self.lines:
            self.events.add(EVENT_RECORDS, self.lines, self.bound, 0, 0)
            self.lines = self.bound = 0
        self.events.add(kind, start, size, bound, pieces)

    def _close_group(self) -> None:
        if self.group_size:
            self._chunk(EVENT_GROUP, self.group_start, self.group_size, self.group_bound, self.group_pieces)
            self._record(self.ends_lines, self.ends_bound)
            self.group_size = self.group_bound = self.group_pieces = self.ends_lines = self.ends_bound = 0

    def _large(self, start: int, size: int, length: int) -> None:
        self._close_group()
        self._chunk(EVENT_LARGE, start, size, record_bound(length), PIECE_LINE + length)
        self._record(FILE_LINE + length, record_bound(length))

    def _linked(self, st: os.stat_result, path: bytes, position: int, size: int) -> bool:
        """Whether this file is a further name of an inode already walked: a hard link, with no data of its own;
        its record waits behind the ends of the open group, as in pack."""
        key = (st.st_dev, st.st_ino)
        if key not in self.linked:
            self.linked.add(key)
            return False
        self.walked.totals.linked_bytes += size
        self.walked.hardlinks += 1
        self.sampler.skip(position + size)
        line, bound = HARDLINK_LINE + 2 * len(path), record_bound(2 * len(path))
        if self.group_size:
            self.ends_lines += line
            self.ends_bound += bound
        else:
            self._record(line, bound)
        return True

    def _other(self, path: bytes, kind: int) -> None:
        """A directory, a symlink or a special file (FIFO, socket, device: skipped, as pack skips them)."""
        totals, length = self.walked.totals, len(path)
        if kind == S_IFDIR:
            totals.dirs += 1
            self._record(DIR_LINE + length, record_bound(length))
        elif kind == S_IFLNK:
            totals.symlinks += 1
            self._record(SYMLINK_LINE + length, record_bound(length))
        else:
            totals.specials.append(path)
            self._record(SKIPPED_LINE + length, record_bound(length))
            return
        totals.catalog_entry_bytes += catalog_entry_bound(path)

    def _aside(self, item: Excluded | Unreadable) -> None:
        totals = self.walked.totals
        if isinstance(item, Excluded):
            totals.excluded_entries += 1
            totals.excluded_bytes += item.entry.size
        else:
            totals.unreadable.append(item.path)
            self._record(SKIPPED_LINE + len(item.path), record_bound(len(item.path)))
