"""Bytes of a lost data drive, rebuilt from the surviving drives of its parity group (docs/format.md 19.7.6).

:class:`Rebuilder` hands out a lost column's chunk, stored bytes, only once they match the chunk's recorded
``stored_blake3``: so a damaged or hostile parity drive (whose own hashes match its wrong bytes) can make a rebuild
fail, never make a reader accept a wrong byte. It tries, in order, until one gives the recorded hash:

1. the stripes solved with the lowest surviving rows, every surviving column taken as it reads;
2. the same after finding, in each stripe, the surviving columns whose chunks there fail their hashes and the rows
   whose blocks fail their ``pblock`` hashes, and counting them as lost too;
3. every other choice of surviving rows (a hostile row found by a rebuild that only the other rows make right);
4. where step 2 left more lost than the rows rebuild, some of the damaged columns taken as they read after all (a
   damaged chunk over two stripes may be damaged in only one of them);
5. for a chunk of a drive that is present (repair), the chunk as it reads mended byte by byte where parity says
   some byte is wrong (:mod:`sneakernet.parity.mend`): its own damage and other drives' in the same stripes are
   told apart, every damaged chunk there checked by its hash, unless two hit the same byte position.

Memory holds the blocks of the stripe being solved (k + m blocks) and a few rebuilt stripes, never a drive.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import blake3

from ...errors import FormatError
from ...format import ChunkRecord
from ...format.sealed import PublicChunk
from ...parity.engine import ParityCode
from ...parity.layout import stripes_of
from ...parity.mend import Suspect, differences, resolve
from ...parity.rebuild import Group, StripeLoss, matches, rebuild_stripe, stripe_loss, take_range
from ..stream import StoredStream
from .chunkindex import ChunkIndex

#: Rebuilt stripes kept: a chunk overlaps two stripes at most (chunks are no larger than a block), and the next
#: chunk starts where the last one ended, so two are what the next read needs; a few more absorb read-ahead.
CACHED_STRIPES = 4
#: Most ways of taking damaged columns as they read that a chunk is tried with (step 4 below).
MAX_TRIES = 64
#: Most stripes looked at to mend one chunk byte by byte (step 5): its own, and those the damaged chunks over
#: them reach in turn (a chunk is at most a block and a bit: three stripes).
MEND_STRIPES = 8


@dataclass
class Column:
    """One data drive of the group as the rebuild reads it: its stream (None: the drive is lost) and, to tell
    which of its chunks are damaged, the index of its chunks (None: taken as it reads)."""

    stream: StoredStream | None
    chunks: ChunkIndex | None = None


@dataclass
class Row:
    """One parity drive of the group: its stream (None: lost) and its ``pblock`` hashes by stripe (None: unknown)."""

    stream: StoredStream | None
    pblock: Callable[[int], str | None] | None = None


class Rebuilder:
    """Rebuilds chunks of lost columns of one parity group; safe to call from several threads (one at a time)."""

    def __init__(self, group: Group, code: ParityCode, columns: Sequence[Column], rows: Sequence[Row]) -> None:
        if len(columns) != group.k or len(rows) != group.m or code.k != group.k or code.m != group.m:
            raise ValueError("the columns, rows and code must be those of the group")
        self.group = group
        self.code = code
        self.columns = columns
        self.rows = rows
        self._zeros = bytes(group.block_size)
        self._cache: OrderedDict[tuple[int, frozenset[int], frozenset[int], tuple[int, ...]], dict[int, bytearray]]
        self._cache = OrderedDict()
        self._lock = threading.Lock()
        self._suspect_cache: OrderedDict[int, list[Suspect[tuple[int, int]]]] = OrderedDict()
        #: Chunks rebuilt and found right, and how many needed more than the first try (damage or a bad row).
        self.rebuilt = 0
        self.retried = 0
        #: Of those, chunks of a present drive mended byte by byte (step 5).
        self.mended = 0

    @property
    def lost(self) -> tuple[int, ...]:
        return tuple(c for c, column in enumerate(self.columns) if column.stream is None)

    def stored(self, column: int, offset: int, size: int, stored_blake3: str) -> bytes | None:
        """The ``size`` stored bytes at stream offset ``offset`` of column ``column`` (one chunk; its drive lost,
        or the chunk damaged on it), rebuilt from the other columns and the rows, and checked against
        ``stored_blake3``; None when no way to rebuild them gives that hash."""
        with self._lock:
            for attempt, data in enumerate(self._attempts(column, offset, size)):
                if data is not None and matches(data, size, stored_blake3):
                    self.rebuilt += 1
                    self.retried += attempt > 0
                    return data
            if self.columns[column].stream is not None:
                mended = self._mend(column, offset, size)
                if mended is not None and matches(mended, size, stored_blake3):
                    self.rebuilt += 1
                    self.retried += 1
                    self.mended += 1
                    return mended
            return None

    def _mend(self, column: int, offset: int, size: int) -> bytes | None:
        """Step 5: the chunk of a present column mended byte by byte (parity/mend.py), from every chunk and parity
        block that fails its hash over its stripes and the stripes they overlap in turn (up to MEND_STRIPES)."""
        block = self.group.block_size
        todo = list(stripes_of(offset, size, block))
        looked: set[int] = set()
        suspects: dict[tuple[int, int], Suspect[tuple[int, int]]] = {}
        while todo and len(looked) < MEND_STRIPES:
            stripe = todo.pop(0)
            looked.add(stripe)
            for found in self._stripe_suspects(stripe):
                known = suspects.setdefault(found.key, dataclasses.replace(found, fixes=dict(found.fixes)))
                if known.fixes is not found.fixes:
                    known.fixes |= found.fixes
                for other in stripes_of(found.start, found.size, block):
                    if other not in looked and other not in todo:
                        todo.append(other)
        for suspect in suspects.values():
            suspect.complete = set(stripes_of(suspect.start, suspect.size, block)) <= looked
        return resolve(
            list(suspects.values()),
            (column, offset),
            lambda s: read(self._suspect_stream(s.key), s.start, s.size),
            lambda s: self._digest(s.key),
        )

    def _suspect_stream(self, key: tuple[int, int]) -> StoredStream:
        # Data chunks are keyed (column, stream offset), parity blocks (-1 - row, stream offset).
        stream = self.columns[key[0]].stream if key[0] >= 0 else self.rows[-1 - key[0]].stream
        assert stream is not None
        return stream

    def _digest(self, key: tuple[int, int]) -> str | None:
        """The BLAKE3 the suspect ``key``'s bytes must have: a chunk's ``stored_blake3``, a block's pblock."""
        if key[0] < 0:
            pblock = self.rows[-1 - key[0]].pblock
            return pblock(key[1] // self.group.block_size) if pblock is not None else None
        chunks = self.columns[key[0]].chunks
        assert chunks is not None
        return next(c.chunk.stored_blake3 for c in chunks.overlapping(key[1], key[1] + 1) if c.offset == key[1])

    def _stripe_suspects(self, stripe: int) -> list[Suspect[tuple[int, int]]]:
        """:meth:`_suspects`, kept for the next chunks mended over the same stripes (the drives do not change while
        a rebuild runs; a repaired drive's segment is renamed into place once all its chunks are done)."""
        if stripe in self._suspect_cache:
            self._suspect_cache.move_to_end(stripe)
            return self._suspect_cache[stripe]
        found = self._suspects(stripe)
        self._suspect_cache[stripe] = found
        while len(self._suspect_cache) > 2 * MEND_STRIPES:
            self._suspect_cache.popitem(last=False)
        return found

    def _suspects(self, stripe: int) -> list[Suspect[tuple[int, int]]]:
        """Every chunk of a present column and the parity block in ``stripe`` that fail their hash, with the bytes
        parity gives them where they differ from what reads (one row: the lowest whose block passes its hash, else
        the lowest present, whose block is then a suspect too); none when a lost column has bytes here."""
        present = [r for r, row in enumerate(self.rows) if row.stream is not None]
        if not present or self.group.lost_in(stripe, self.lost):
            return []
        bad_rows = self._bad_rows(stripe)
        row = next((r for r in present if r not in bad_rows), present[0])
        others = frozenset(range(self.group.m)) - {row}
        block = self.group.block_size
        base = stripe * block
        found = []
        for c, column in enumerate(self.columns):
            if column.stream is None or column.chunks is None:
                continue
            failed = [
                chunk
                for chunk in column.chunks.overlapping(base, base + block)
                if not self._chunk_intact(column.stream, chunk.offset, chunk.chunk.stored_size, chunk.chunk)
            ]
            solved = self._solve(stripe, frozenset({c}), others, None) if failed else None
            if solved is None or c not in solved:
                continue
            try:
                existing = read(column.stream, base, block)
            except FormatError:
                continue
            at = differences(existing, solved[c])
            for chunk in failed:
                fixes = {base + i: solved[c][i] for i in at if chunk.offset <= base + i < chunk.end}
                found.append(Suspect((c, chunk.offset), chunk.offset, chunk.chunk.stored_size, fixes))
        if row in bad_rows:
            try:
                blocks = [self._column_block(c, stripe) for c in range(self.group.k)]
                stream = self.rows[row].stream
                assert stream is not None
                existing = read(stream, base, block)
            except FormatError:
                return found
            rebuilt = self.code.encode(blocks, [row])[0]
            fixes = {base + i: rebuilt[i] for i in differences(existing, rebuilt)}
            found.append(Suspect((-1 - row, base), base, block, fixes))
        return found

    def _attempts(self, column: int, offset: int, size: int) -> Iterator[bytes | None]:
        # The column rebuilt counts as lost even when its drive is here: repair rebuilds a damaged chunk of it.
        itself = frozenset({column})
        stripes = stripes_of(offset, size, self.group.block_size)
        yield self._take(column, offset, size, {s: (itself, frozenset(), None) for s in stripes})
        found = {s: self._damage(s, column) for s in stripes}
        if any(cols or rows for cols, rows in found.values()):
            yield self._take(column, offset, size, {s: (itself | c, r, None) for s, (c, r) in found.items()})
        choices: set[tuple[int, ...]] = set()
        for stripe, (cols, rows) in found.items():
            choices.update(self._loss(stripe, itself | cols, rows).row_choices())
        for choice in sorted(choices):
            yield self._take(column, offset, size, {s: (itself | c, r, choice) for s, (c, r) in found.items()})
        # A damaged chunk makes its column lost over every stripe it overlaps (19.7.6), though its damage may lie
        # in only one of them: where that leaves too many lost, some damaged columns are taken as they read.
        options = {s: self._partial_losses(s, itself, c, r) for s, (c, r) in found.items()}
        for index in range(1, min(MAX_TRIES, max(len(o) for o in options.values()))):
            plan = {s: (o[min(index, len(o) - 1)], found[s][1], None) for s, o in options.items()}
            yield self._take(column, offset, size, plan)

    def _partial_losses(
        self, stripe: int, itself: frozenset[int], damaged: frozenset[int], bad_rows: frozenset[int]
    ) -> list[frozenset[int]]:
        """The sets of columns to count as lost in ``stripe``: all the damaged ones first, then, when that is more
        than the rows can rebuild, every subset of them that the rows can (the largest first)."""
        whole = itself | damaged
        if self._loss(stripe, whole, bad_rows).recoverable:
            return [whole]
        rows = len(self._loss(stripe, itself, bad_rows).rows)
        found = [whole]
        for size in range(min(len(damaged), rows - 1), 0, -1):
            found += [itself | frozenset(c) for c in itertools.combinations(sorted(damaged), size)]
        return [*found, itself]

    def _loss(self, stripe: int, damaged: frozenset[int], bad_rows: frozenset[int]) -> StripeLoss:
        lost_rows = {r for r, row in enumerate(self.rows) if row.stream is None} | bad_rows
        return stripe_loss(self.group, stripe, {*self.lost, *damaged}, lost_rows)

    def _take(
        self,
        column: int,
        offset: int,
        size: int,
        plan: Mapping[int, tuple[frozenset[int], frozenset[int], tuple[int, ...] | None]],
    ) -> bytes | None:
        blocks = {}
        for stripe, (damaged, bad_rows, choice) in plan.items():
            solved = self._solve(stripe, damaged, bad_rows, choice)
            if solved is None or column not in solved:
                return None
            blocks[stripe] = solved[column]
        return take_range(offset, size, self.group.block_size, blocks)

    def _solve(
        self, stripe: int, damaged: frozenset[int], bad_rows: frozenset[int], choice: tuple[int, ...] | None
    ) -> dict[int, bytearray] | None:
        loss = self._loss(stripe, damaged, bad_rows)
        if not loss.recoverable:
            return None
        if choice is None or len(choice) != len(loss.columns) or not set(choice) <= set(loss.rows):
            choice = loss.rows[: len(loss.columns)]
        key = (stripe, damaged, bad_rows, choice)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            columns = {c: self._column_block(c, stripe) for c in range(self.group.k) if c not in loss.columns}
            rows = {r: self._row_block(r, stripe) for r in choice}
        except FormatError:
            return None  # a surviving drive cannot be read here: found as damage on the next attempt
        solved = rebuild_stripe(self.code, loss, columns, rows, choice)
        self._cache[key] = solved
        while len(self._cache) > CACHED_STRIPES:
            self._cache.popitem(last=False)
        return solved

    def _column_block(self, column: int, stripe: int) -> bytes | bytearray:
        stream = self.columns[column].stream
        if stream is None:  # lost, and past its end in this stripe (else it would be among the loss's columns)
            return self._zeros
        return read(stream, stripe * self.group.block_size, self.group.block_size)

    def _row_block(self, row: int, stripe: int) -> bytearray:
        stream = self.rows[row].stream
        assert stream is not None
        return read(stream, stripe * self.group.block_size, self.group.block_size)

    @staticmethod
    def _chunk_intact(stream: StoredStream, offset: int, size: int, chunk: ChunkRecord | PublicChunk) -> bool:
        try:
            stored = read(stream, offset, size)
        except FormatError:
            return False
        return matches(stored, size, chunk.stored_blake3)

    def _damage(self, stripe: int, rebuilding: int) -> tuple[frozenset[int], frozenset[int]]:
        """The surviving columns with a chunk in ``stripe`` that fails its hash or cannot be read (columns without a
        chunk index are taken as they read), and the rows whose block fails its ``pblock`` hash or cannot be read."""
        size = self.group.block_size
        damaged = set()
        for c, column in enumerate(self.columns):
            if c == rebuilding or column.stream is None or column.chunks is None:
                continue
            for chunk in column.chunks.overlapping(stripe * size, (stripe + 1) * size):
                if not self._chunk_intact(column.stream, chunk.offset, chunk.chunk.stored_size, chunk.chunk):
                    damaged.add(c)
                    break
        return frozenset(damaged), self._bad_rows(stripe)

    def _bad_rows(self, stripe: int) -> frozenset[int]:
        """The rows whose block of ``stripe`` fails its ``pblock`` hash or cannot be read."""
        size = self.group.block_size
        bad_rows = set()
        for r, row in enumerate(self.rows):
            if row.stream is None:
                continue
            expected = row.pblock(stripe) if row.pblock is not None else None
            try:
                block = read(row.stream, stripe * size, size)
            except FormatError:
                bad_rows.add(r)
                continue
            if expected is not None and blake3.blake3(block).hexdigest() != expected:
                bad_rows.add(r)
        return frozenset(bad_rows)


def read(stream: StoredStream, offset: int, size: int) -> bytearray:
    """``size`` bytes of ``stream`` from ``offset`` (zeros past its end); FormatError when they cannot be read."""
    out = bytearray(size)
    stream.read_at(offset, memoryview(out))
    return out
