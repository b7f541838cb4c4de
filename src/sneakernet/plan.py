"""Planning a shipment before packing it: ``sneakernet.plan.plan()``.

How many drives, how full each one, how long packing takes, and how long the same bytes would take over a
network link. The plan reads the source's metadata (the same scan pack does) and a small, bounded, deterministic
sample of its data, never the whole of it:

- **the sample**: the data, seen as one stream of bytes in walk order, is cut into equal *strata*; each stratum
  is represented by one piece of :data:`SAMPLE_PIECE` bytes read where it starts (a window of a large file, or a
  small file followed by its neighbours, as pack groups small files). Each piece goes through pack's own encoder
  (:func:`sneakernet.pack.encode`: the same store-or-compress decision, at the same level), which gives the
  stratum's stored ratio and, timed, the encoder's throughput.
- **the fill**: the entries are replayed through pack's chunker (:class:`~sneakernet.chunking.Chunker`, by size
  alone) and each chunk, its stored size estimated from the strata it spans, is placed on drives with pack's
  space arithmetic (:class:`~sneakernet.planner.DriveSpace` under a :class:`~sneakernet.planner.DriveBudget`
  that reserves room for the catalog as pack computes it). Manifests are estimated from record sizes. One pass
  over the scan's spool does both: a stratum is sampled before any chunk that overlaps it is placed.

It writes nothing. It must not grow into a second packer: whatever pack decides, the plan asks pack's modules.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import blake3

from .chunking import Chunker, RawChunk, is_large
from .codec import stored_size_bound
from .errors import DestinationError, UsageError
from .format import MAX_SEGMENTS, METHOD_STORE
from .pack import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVEL,
    DEFAULT_SEGMENT_SIZE,
    PATH_ESCAPE_FACTOR,
    RECORD_BOUND,
    PackOptions,
    encode,
)
from .planner import DriveBudget, DriveSpace, catalog_bound, default_reserve
from .recordfile import FLUSH_EVERY
from .scan import KIND_DIR, KIND_FILE, KIND_SYMLINK, ScanSpool, ScanTotals, SourceEntry, Unreadable, scan
from .units import format_size

# --- link rates ---------------------------------------------------------------------------------------------

#: The links a plan compares with when none is given: an office line, a data-centre port, a fast backbone.
DEFAULT_LINKS = ("100Mbit", "1Gbit", "10Gbit")

_RATE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([kmgtp]?)(i?)([a-z/]*)\s*", re.ASCII | re.IGNORECASE)
_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY_PREFIXES = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
# A lower-case b is a bit and an upper-case B a byte, as in every network data sheet: 1Gbps, 100MB/s.
_BIT_UNITS = {"bps", "b/s"}
_BIT_WORDS = {"bit", "bits", "bit/s", "bits/s"}
_BYTE_UNITS = {"Bps", "B/s"}
_BYTE_WORDS = {"byte/s", "bytes/s"}
_RATE_HINT = "give bits or bytes per second, e.g. 1Gbps, 10Gbit, 500Mbps or 100MB/s"


@dataclass(frozen=True)
class Link:
    """A network link (or any transfer rate): what was given, how it reads, and its rate in bytes a second."""

    text: str
    label: str
    bytes_per_second: float

    @property
    def bits_per_second(self) -> float:
        return self.bytes_per_second * 8


def parse_rate(text: str) -> Link:
    """A transfer rate such as ``1Gbps``, ``10Gbit``, ``500Mbps``, ``100MB/s`` or ``1.5 GiB/s``.

    Bits are a lower-case ``b`` or the word ``bit`` (``bps``, ``b/s``, ``bit``, ``bit/s``), bytes an upper-case
    ``B`` or the word ``byte`` (``B/s``, ``Bps``, ``byte/s``); prefixes are decimal (k, M, G, T, P, any case) or
    binary (Ki, Mi, Gi, Ti, Pi). Raises :class:`UsageError` for anything else, or a rate of zero.
    """
    match = _RATE_RE.fullmatch(text)
    if not match:
        raise UsageError(f"cannot read rate {text!r}: {_RATE_HINT}")
    number, prefix, binary, unit = match.groups()
    prefix = prefix.lower()
    if unit in _BIT_UNITS or unit.lower() in _BIT_WORDS:
        bits = True
    elif unit in _BYTE_UNITS or unit.lower() in _BYTE_WORDS:
        bits = False
    else:
        why = "say bits or bytes per second" if not unit else f"unknown unit {unit!r}"
        raise UsageError(f"cannot read rate {text!r} ({why}): {_RATE_HINT}")
    value = Decimal(number)
    if value <= 0:
        raise UsageError(f"rate {text!r} is zero: a link must move some bytes")
    if binary and not prefix:
        raise UsageError(f"cannot read rate {text!r}: {_RATE_HINT}")
    scale = _BINARY_PREFIXES[prefix] if binary else _PREFIXES[prefix]
    per_second = float(value * scale)
    shown = format(value.normalize(), "f")
    letter = ("k" if prefix == "k" and not binary else prefix.upper()) + ("i" if binary else "")
    label = f"{shown} {letter}bit/s" if bits else f"{shown} {letter}B/s"
    return Link(text.strip(), label, per_second / 8 if bits else per_second)


def format_duration(seconds: float) -> str:
    """``seconds`` as a person says it: ``42 s``, ``7.5 min``, ``9 h``, ``7.4 days``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    days = hours / 24
    return f"{days:.1f} days" if days < 100 else f"{days:.0f} days"


# --- the sample ---------------------------------------------------------------------------------------------

#: The piece read for one stratum: large enough for zstd to find what it finds in a chunk of text, small enough
#: that a thousand of them are a moment's work.
SAMPLE_PIECE = 64 * 1024
#: The sample is 1/64 of the data, at least 4 MiB and at most 64 MiB: a few hundred strata are enough to see a
#: mix of text and media, and a bounded sample keeps what a plan of 80 TB reads as small as for 4 GB.
SAMPLE_SHARE = 64
SAMPLE_MIN = 4 * 2**20
SAMPLE_MAX = 64 * 2**20


def default_sample_bytes(data_bytes: int) -> int:
    return min(max(data_bytes // SAMPLE_SHARE, SAMPLE_MIN), SAMPLE_MAX)


@dataclass
class _Group:
    """Small files read for one or more strata, in walk order, as pack groups small files."""

    strata: list[int]
    data: bytearray


class Sampler:
    """Reads one piece per stratum of the data and encodes it as pack would, as the entries stream by.

    The data is the scan's file sizes end to end, in walk order (a hard link's size included, though it has no
    data of its own); stratum ``k`` is ``[bounds[k], bounds[k + 1])`` and is sampled where it starts: a window
    of :data:`SAMPLE_PIECE` bytes of the file there, or that small file and the small files after it. Sampling
    at the start means a stratum is sampled before any chunk that overlaps it is complete.
    """

    def __init__(self, root: bytes, data_bytes: int, sample_bytes: int, chunk_size: int, level: int) -> None:
        count = max(1, min(sample_bytes // SAMPLE_PIECE, -(-data_bytes // SAMPLE_PIECE))) if data_bytes else 0
        self.root = root
        self.data_bytes = data_bytes
        self.chunk_size = chunk_size
        self.level = level
        self.bounds = [-(-k * data_bytes // count) for k in range(count + 1)] if count else [0]
        self.ratios: list[float | None] = [None] * count
        self.stored: list[bool] = [False] * count
        self.next = 0
        self.group: _Group | None = None
        self.last: tuple[float, bool] = (1.0, True)
        self.bytes_read = 0
        self.stored_bytes = 0
        self.pieces = 0
        #: Distinct files read (a large file gives several pieces) and files that could not be.
        self.files = 0
        self._last_path = b""
        self.unreadable = 0
        self.encode_seconds = 0.0
        self.hash_seconds = 0.0

    def skip(self, end: int) -> None:
        """Data up to ``end`` that is not read: a hard link's size, an empty file."""
        while self.next < len(self.ratios) and self.bounds[self.next] < end:
            self.next += 1

    def add(self, path: bytes, start: int, size: int) -> None:
        """The file ``path`` holds the data ``[start, start + size)``."""
        end = start + size
        if self.group is None and (self.next >= len(self.ratios) or self.bounds[self.next] >= end):
            return
        joined: _Group | None = None
        full = os.path.join(self.root, path)
        if self.group is not None:
            if is_large(size, self.chunk_size):
                self.finish_group()
            else:
                self.group.data += self._read(full, 0, SAMPLE_PIECE - len(self.group.data))
                joined = self.group
        while self.next < len(self.ratios) and self.bounds[self.next] < end:
            if size > SAMPLE_PIECE:
                offset = min(self.bounds[self.next] - start, size - SAMPLE_PIECE)
                self._encode([self.next], self._read(full, offset, SAMPLE_PIECE))
            elif joined is not None:
                joined.strata.append(self.next)
            else:
                self.group = joined = _Group([self.next], bytearray(self._read(full, 0, size)))
            self.next += 1
        if self.group is not None and len(self.group.data) >= SAMPLE_PIECE:
            self.finish_group()

    def finish_group(self) -> None:
        if self.group is not None:
            group, self.group = self.group, None
            self._encode(group.strata, bytes(group.data))

    def estimate(self, start: int, length: int) -> tuple[float, bool]:
        """Estimated stored bytes of the data ``[start, start + length)``, and whether every stratum it touches
        was stored rather than compressed. A stratum not sampled (yet, or at all) takes the last ratio seen."""
        count = len(self.ratios)
        if not count or length <= 0:
            return float(length), True
        first = min(start * count // self.data_bytes, count - 1)
        last = min((start + length - 1) * count // self.data_bytes, count - 1)
        ratio = self.ratios[first]
        if first == last and ratio is not None:  # most chunks of a large file: within one stratum
            self.last = (ratio, self.stored[first])
            return length * ratio, self.stored[first]
        estimate, stored = 0.0, True
        for k in range(first, last + 1):
            if self.ratios[k] is None and self.group is not None and k in self.group.strata:
                self.finish_group()
            ratio = self.ratios[k]
            if ratio is None:
                ratio, stored_k = self.last
            else:
                stored_k = self.stored[k]
                self.last = (ratio, stored_k)
            overlap = min(start + length, self.bounds[k + 1]) - max(start, self.bounds[k])
            estimate += max(overlap, 0) * ratio
            stored = stored and stored_k
        return estimate, stored

    def _read(self, path: bytes, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; nothing from a file that cannot be read (pack reports those)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0))
        except OSError:
            self.unreadable += 1
            return b""
        try:
            data = os.pread(fd, size, offset)
        except OSError:
            self.unreadable += 1
            return b""
        finally:
            os.close(fd)
        if path != self._last_path:
            self.files += 1
            self._last_path = path
        return data

    def _encode(self, strata: list[int], data: bytes) -> None:
        if not data:
            return
        started = time.perf_counter()
        encoded = encode(RawChunk(-1, data, []), self.level)
        middle = time.perf_counter()
        blake3.blake3(data)  # pack hashes every whole file once more (large ones as read, small ones with their chunk)
        self.hash_seconds += time.perf_counter() - middle
        self.encode_seconds += middle - started
        self.pieces += 1
        self.bytes_read += len(data)
        self.stored_bytes += len(encoded.stored)
        for k in strata:
            self.ratios[k] = len(encoded.stored) / len(data)
            self.stored[k] = encoded.method == METHOD_STORE


# --- the fill -----------------------------------------------------------------------------------------------

#: Uncompressed sizes of manifest records beside their paths (compact JSON with the widest usual numbers;
#: measured on format.py's records): a chunk, a file's final record, a piece continuing on the next drive, a
#: directory, a symlink, a hard link, a skipped entry (with its reason), a segment, the header and the end.
CHUNK_LINE = 300
FILE_LINE = 250
PIECE_LINE = 100
DIR_LINE = 90
SYMLINK_LINE = 110
HARDLINK_LINE = 45
SKIPPED_LINE = 90
SEGMENT_LINE = 160
HEADER_LINE = 240
END_LINE = 30
#: What zstd leaves of manifest records at recordfile's level: about 0.20 measured (the BLAKE3 hex digits do not
#: compress below half), rounded up so that the estimate errs towards fuller drives.
MANIFEST_RATIO = 0.25
#: zstd's frame header and last block (recordfile.py bounds it the same way).
MANIFEST_SLACK = 64


def record_bound(path_length: int) -> int:
    """The manifest room pack reserves for a record of a path of ``path_length`` bytes."""
    return RECORD_BOUND + PATH_ESCAPE_FACTOR * path_length


@dataclass
class _Manifest:
    """A drive's manifest as pack's RecordWriter would grow it: compressed every FLUSH_EVERY bytes, with the
    unflushed rest counted uncompressed in the bound."""

    flushed: float = 0.0
    unflushed: int = 0
    records: int = 0
    #: The part of :meth:`size_bound` that changes only when the manifest is flushed.
    base: int = MANIFEST_SLACK

    def add(self, size: int) -> None:
        self.records += 1
        self.unflushed += size
        if self.unflushed >= FLUSH_EVERY:
            self.flushed += self.unflushed * MANIFEST_RATIO
            self.unflushed = 0
            self.base = math.ceil(self.flushed) + MANIFEST_SLACK

    def size_bound(self, extra: int) -> int:
        pending = self.unflushed + extra
        return self.base + pending + pending // 1024

    def final_size(self) -> int:
        return math.ceil(self.flushed + self.unflushed * MANIFEST_RATIO) + MANIFEST_SLACK


@dataclass(frozen=True)
class DriveFill:
    """One planned drive: its chunk bytes, the raw bytes they hold, its segments, and the bytes its directory
    takes on disk at most (chunks, manifest, catalog, drive.json, B3SUMS and allocation slack)."""

    drive: int
    stored_bytes: int
    raw_bytes: int
    segments: int
    used_bytes: int
    fill: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "fill": round(self.fill, 4)}


class _Fill:
    """Drives filled in order as pack's ShipmentWriter fills them, with estimated chunk sizes."""

    def __init__(self, budget: DriveBudget, segment_size: int, drive_size: int) -> None:
        self.budget = budget
        self.segment_size = segment_size
        self.drive_size = drive_size
        self.drives: list[DriveFill] = []
        self.space: DriveSpace | None = None
        self.manifest = _Manifest()
        self.raw_bytes = 0
        #: Open pieces of files on this drive: file index -> path length.
        self.pieces: dict[int, int] = {}
        self.pieces_bound = 0
        #: Manifest bytes the open drive takes beside its data: see :meth:`_records_fit`.
        self.record_room = 0

    def _room(self, stored: int, extra: int) -> None:
        for attempt in range(2):
            if self.space is None:
                self.space = DriveSpace(self.budget, self.segment_size)
                self.manifest = _Manifest()
                self.manifest.add(HEADER_LINE)
            bound = self.manifest.size_bound(extra + self.pieces_bound + 2 * RECORD_BOUND)
            if stored:
                placement = self.space.place(stored, bound)
                if placement is not None:
                    if placement.new_segment and placement.segment > 1:
                        self.manifest.add(SEGMENT_LINE)
                    self._note_room(self.space)
                    return
            elif self.space.fits(bound):
                self._note_room(self.space)
                return
            if attempt == 1 or (self.space.empty and self.manifest.records <= 1):
                raise DestinationError(
                    f"drive size too small: a drive of {self.drive_size} bytes cannot take even one chunk with its "
                    "records: use larger drives or a smaller --chunk-size"
                )
            self._finish()

    def _note_room(self, space: DriveSpace) -> None:
        self.record_room = self.budget.capacity - space.data_bytes - self.budget.overhead(space.segments, 0)

    def _records_fit(self, extra: int) -> bool:
        """``space.fits(manifest.size_bound(...))`` as :meth:`_room` asks it, from :attr:`record_room`: the
        drive's overhead is linear in its manifest bound, and this is asked for every entry."""
        if self.space is None:
            return False
        pending = self.manifest.unflushed + extra + self.pieces_bound + 2 * RECORD_BOUND
        return self.manifest.base + pending + pending // 1024 <= self.record_room

    def entry(self, line: int, path_length: int) -> None:
        extra = record_bound(path_length)
        if not self._records_fit(extra):
            self._room(0, extra)
        self.manifest.add(line + path_length)

    def chunk(self, stored: int, raw_size: int, slices: list[tuple[int, int]], records: int) -> None:
        """A chunk of ``stored`` bytes holding ``slices`` (file index, path length) whose records take at most
        ``records`` bytes (the chunk's and its pieces')."""
        self._room(stored, records)
        self.manifest.add(CHUNK_LINE)
        self.raw_bytes += raw_size
        for index, length in slices:
            if index not in self.pieces:
                self.pieces[index] = length
                self.pieces_bound += record_bound(length)

    def end(self, index: int, path_length: int) -> None:
        extra = 0 if index in self.pieces else record_bound(path_length)
        if not self._records_fit(extra):
            self._room(0, extra)
        length = self.pieces.pop(index, None)  # gone if the drive was finished: its piece record is written
        if length is not None:
            self.pieces_bound -= record_bound(length)
        self.manifest.add(FILE_LINE + path_length)

    def _finish(self) -> None:
        assert self.space is not None
        for length in self.pieces.values():
            self.manifest.add(PIECE_LINE + length)
        self.pieces, self.pieces_bound = {}, 0
        if self.space.segments:
            self.manifest.add(SEGMENT_LINE)
        self.manifest.add(END_LINE)
        used = self.space.data_bytes + self.budget.overhead(self.space.segments, self.manifest.final_size())
        self.drives.append(
            DriveFill(
                len(self.drives) + 1, self.space.data_bytes, self.raw_bytes, self.space.segments, used,
                used / self.drive_size,
            )
        )  # fmt: skip
        self.space, self.raw_bytes = None, 0

    def close(self) -> None:
        if self.space is None and not self.drives:
            self._room(0, 0)
        if self.space is not None:
            self._finish()


@dataclass
class _Layout:
    """Counts the replay of the entries finds, as pack's summary would count them."""

    files: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0


def replay(spool: ScanSpool, sampler: Sampler, estimated: _Fill, worst: _Fill, chunk_size: int) -> _Layout:
    """Replay the scanned entries in pack's order (pack's SourceReader) through pack's chunker, by size alone,
    into both fills: ``estimated`` with the sampler's estimate of each chunk, ``worst`` as if nothing compressed.
    The sampler reads each file's pieces just before the file's chunks need them: one pass over the spool."""
    replayer = _Replay(sampler, (estimated, worst), Chunker(chunk_size))
    for index, entry in enumerate(spool.entries()):
        if isinstance(entry, Unreadable):
            replayer.entry(SKIPPED_LINE, len(entry.path))
        elif entry.kind == KIND_FILE:
            replayer.file(index, entry)
        elif entry.kind == KIND_DIR:
            replayer.entry(DIR_LINE, len(entry.path))
        else:
            replayer.entry(SYMLINK_LINE if entry.kind == KIND_SYMLINK else SKIPPED_LINE, len(entry.path))
    replayer.finish()
    return replayer.layout


class _Replay:
    """The stream of records and chunks pack's SourceReader makes of the entries, fed to the fills."""

    def __init__(self, sampler: Sampler, fills: tuple[_Fill, _Fill], chunker: Chunker) -> None:
        self.sampler = sampler
        self.fills = fills
        self.chunker = chunker
        self.layout = _Layout()
        #: Where each file with data still in flight starts in the stream of scanned sizes, and its path length.
        self.starts: dict[int, tuple[int, int]] = {}
        #: Ends waiting for their group's chunk: (file index, or -1 for a hard link; path length).
        self.pending: list[tuple[int, int]] = []
        self.seen: set[tuple[int, int]] = set()
        #: Where the next file starts in the stream of scanned sizes.
        self.position = 0

    def entry(self, line: int, path_length: int) -> None:
        for fill in self.fills:
            fill.entry(line, path_length)

    def file(self, index: int, entry: SourceEntry) -> None:
        length, size, start = len(entry.path), entry.size, self.position
        self.position += size
        if entry.nlink > 1:
            key = (entry.dev, entry.ino)
            if key in self.seen:
                # A hard link: no data; its record waits behind a small file's end, as in pack.
                self.layout.hardlinks += 1
                self.sampler.skip(start + size)
                if self.pending:
                    self.pending.append((-1, 2 * length))
                else:
                    self.entry(HARDLINK_LINE, 2 * length)
                return
            self.seen.add(key)
        self.layout.files += 1
        self.layout.raw_bytes += size
        if size == 0:
            self._end(index, length)
            return
        self.sampler.add(entry.path, start, size)
        if not is_large(size, self.chunker.chunk_size):
            self.starts[index] = (start, length)
            closed = self.chunker.add_small(index, size)
            for raw in closed:
                self._group_chunk(raw)
            if closed:
                self._drain()
            self.pending.append((index, length))
            return
        for raw in self.chunker.close_group():
            self._group_chunk(raw)
        self._drain()
        # A large file's chunks are its own, chunk_size bytes each (chunking.py): no Chunker needed to cut them.
        slices, records = [(index, length)], RECORD_BOUND + record_bound(length)
        for offset in range(0, size, self.chunker.chunk_size):
            piece = min(self.chunker.chunk_size, size - offset)
            estimate, stored_only = self.sampler.estimate(start + offset, piece)
            self._chunk(piece, estimate, stored_only, slices, records)
        self._end(index, length)

    def finish(self) -> None:
        self.sampler.finish_group()
        for raw in self.chunker.close_group():
            self._group_chunk(raw)
        self._drain()
        for fill in self.fills:
            fill.close()

    def _group_chunk(self, raw: RawChunk) -> None:
        estimate, stored_only = 0.0, True
        # A group's files are mostly back to back in the stream: estimate each run of them at once.
        runs: list[list[int]] = []
        for piece in raw.slices:
            begin = self.starts[piece.file_index][0] + piece.file_offset
            if runs and runs[-1][0] + runs[-1][1] == begin:
                runs[-1][1] += piece.length
            else:
                runs.append([begin, piece.length])
        for begin, length in runs:
            part, part_stored = self.sampler.estimate(begin, length)
            estimate += part
            stored_only = stored_only and part_stored
        slices = [(piece.file_index, self.starts[piece.file_index][1]) for piece in raw.slices]
        records = RECORD_BOUND + sum(record_bound(length) for _, length in slices)
        self._chunk(raw.raw_size, estimate, stored_only, slices, records)

    def _chunk(
        self, raw_size: int, estimate: float, stored_only: bool, slices: list[tuple[int, int]], records: int
    ) -> None:
        bound = stored_size_bound(raw_size)
        stored = bound if stored_only else min(math.ceil(estimate), bound)
        self.layout.stored_bytes += stored
        estimated, worst = self.fills
        estimated.chunk(stored, raw_size, slices, records)
        worst.chunk(bound, raw_size, slices, records)

    def _end(self, index: int, path_length: int) -> None:
        for fill in self.fills:
            fill.end(index, path_length)

    def _drain(self) -> None:
        for index, length in self.pending:
            if index < 0:
                self.entry(HARDLINK_LINE, length)
            else:
                self._end(index, length)
                del self.starts[index]
        self.pending.clear()


# --- the catalog's room -------------------------------------------------------------------------------------


def catalog_reservation(totals: ScanTotals, capacity: int, chunk_size: int, segment_size: int) -> int:
    """The catalog bound pack reserves on every drive, after the refusals pack makes up front: drives too small
    for one chunk beside the catalog, too many segments a drive.

    The same arithmetic as pack's ``_check_space`` for drives of one size, through planner.py's functions: the
    drive count is estimated from the worst case (nothing compresses, manifests as large as the catalog's
    entries), twice, and the catalog is bounded for twice that many drives and some.
    """
    chunk_bound = stored_size_bound(chunk_size)
    one_chunk_records = RECORD_BOUND * 8
    per_drive = DriveBudget(capacity, catalog_bound(totals.catalog_entry_bytes, 0)).usable(one_chunk_records)
    if per_drive < chunk_bound:
        raise DestinationError(
            f"drive size too small: a drive can take {max(capacity, 0)} bytes after the reserve, the format needs "
            f"at least {capacity - per_drive + chunk_bound} for one chunk, its manifest and the catalog: "
            "use larger drives"
        )
    worst_case = chunk_bound * (totals.unique_bytes // chunk_size + 1) + totals.catalog_entry_bytes
    drives = 0
    for _ in range(2):
        drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
        per_drive = DriveBudget(capacity, catalog_bound(totals.catalog_entry_bytes, drives)).usable(one_chunk_records)
    size = catalog_bound(totals.catalog_entry_bytes, drives)
    if per_drive < chunk_bound:
        raise DestinationError(
            f"drive size too small: a drive of {max(capacity, 0)} bytes after the reserve cannot hold one chunk "
            f"beside the catalog of {size} bytes: use larger drives"
        )
    if capacity // segment_size > MAX_SEGMENTS:
        raise UsageError(
            f"segment size too small for these drives: a drive holds at most {MAX_SEGMENTS} segments; "
            "use a larger --segment-size"
        )
    return size


# --- the plan -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTime:
    link: Link
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "link": self.link.label,
            "bits_per_second": round(self.link.bits_per_second),
            "bytes_per_second": round(self.link.bytes_per_second),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Plan:
    """What :func:`plan` found and estimates; ``to_json()`` is the schema documented in docs/plan.md."""

    source: str
    drive_size: int
    reserve: int
    capacity: int
    chunk_size: int
    segment_size: int
    level: int
    files: int
    dirs: int
    symlinks: int
    hardlinks: int
    data_bytes: int
    excluded_entries: int
    excluded_bytes: int
    specials: int
    unreadable: int
    catalog_bound: int
    stored_bytes: int
    drives: list[DriveFill]
    drives_if_nothing_compresses: int
    drives_given: int | None
    drives_given_accepted: bool | None
    sample_bytes: int
    sample_pieces: int
    sample_files: int
    #: Estimated seconds pack takes, and the rate that makes (bytes of data a second).
    pack_seconds: float
    pack_rate: float
    pack_rate_measured: bool
    threads: int
    links: list[LinkTime]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def drives_needed(self) -> int:
        return len(self.drives)

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.data_bytes if self.data_bytes else 1.0

    @property
    def drives_suffice(self) -> bool | None:
        return None if self.drives_given is None else self.drives_given >= self.drives_needed

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": self.files,
            "dirs": self.dirs,
            "symlinks": self.symlinks,
            "hardlinks": self.hardlinks,
            "data_bytes": self.data_bytes,
            "excluded_entries": self.excluded_entries,
            "excluded_bytes": self.excluded_bytes,
            "specials": self.specials,
            "unreadable": self.unreadable,
            "drive_size": self.drive_size,
            "reserve": self.reserve,
            "capacity": self.capacity,
            "chunk_size": self.chunk_size,
            "segment_size": self.segment_size,
            "level": self.level,
            "catalog_bound": self.catalog_bound,
            "stored_bytes": self.stored_bytes,
            "ratio": round(self.ratio, 4),
            "sample": {"bytes": self.sample_bytes, "pieces": self.sample_pieces, "files": self.sample_files},
            "drives_needed": self.drives_needed,
            "drives_if_nothing_compresses": self.drives_if_nothing_compresses,
            "drives_given": self.drives_given,
            "drives_suffice": self.drives_suffice,
            "drives_given_accepted": self.drives_given_accepted,
            "drives": [drive.to_json() for drive in self.drives],
            "pack": {
                "seconds": round(self.pack_seconds, 1),
                "rate_bytes_per_second": round(self.pack_rate),
                "measured": self.pack_rate_measured,
                "threads": self.threads,
            },
            "links": [link.to_json() for link in self.links],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


#: What pack spends on each file besides its bytes (open, fstat, close, its records in the manifest and the
#: catalog, the hand-offs between its threads): about 80 microseconds, measured on a tree of 9,000 files.
PER_FILE_SECONDS = 80e-6


def pack_seconds_estimate(sampler: Sampler, data_bytes: int, files: int, threads: int) -> float:
    """Seconds pack needs for its CPU work, from the sample's timings: the encoder runs on ``threads`` threads
    (all cores for 0), and every byte is hashed once more as part of its whole file (large files on the reading
    thread, small ones on the encoding pool), no faster than the cores allow; plus :data:`PER_FILE_SECONDS` a
    file. Reading the source and writing the drives are not counted."""
    cores = os.cpu_count() or 1
    workers = min(threads or cores, cores)
    seconds = files * PER_FILE_SECONDS
    if sampler.bytes_read and sampler.encode_seconds > 0:
        encode_cost = sampler.encode_seconds / sampler.bytes_read
        hash_cost = max(sampler.hash_seconds, 1e-9) / sampler.bytes_read
        seconds += data_bytes * max(encode_cost / workers, hash_cost, (encode_cost + hash_cost) / cores)
    return seconds


def plan(
    source: str | os.PathLike[str],
    *,
    drive_size: int | None,
    drives: int | None = None,
    links: Sequence[str | Link] = DEFAULT_LINKS,
    level: int = DEFAULT_LEVEL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    excludes: Sequence[str] = (),
    reserve: int | None = None,
    threads: int = 0,
    rate: str | Link | None = None,
    sample_bytes: int | None = None,
) -> Plan:
    """Plan packing ``source`` onto drives of ``drive_size`` bytes, as ``pack(source, out=..., drive_size=...,
    options=PackOptions(...))`` with the same options would pack it.

    Reads the metadata and a sample of at most ``sample_bytes`` (default: :func:`default_sample_bytes`). With
    ``drives``, says whether that many drives suffice. ``rate`` (such as ``"200MB/s"``, or a :class:`Link`)
    replaces the pack rate measured on the sample. Raises :class:`UsageError`, :class:`SourceError` or
    :class:`DestinationError` for what pack would refuse up front.
    """
    started = time.monotonic()
    if drive_size is None:
        raise UsageError("plan needs --drive-size, the size of the drives the shipment will go on")
    if drive_size <= 0:
        raise UsageError("drive size must be above zero")
    if drives is not None and drives < 1:
        raise UsageError(f"--drives must be at least 1, not {drives}")
    options = PackOptions(
        chunk_size=chunk_size, segment_size=segment_size, level=level, reserve=reserve, excludes=tuple(excludes),
        threads=threads,
    )  # fmt: skip
    options.check()
    parsed_links = [link if isinstance(link, Link) else parse_rate(link) for link in links]
    override = rate if isinstance(rate, Link) or rate is None else parse_rate(rate)
    kept = reserve if reserve is not None else default_reserve(drive_size)
    capacity = drive_size - kept
    totals, spool = scan(source, options.excludes)
    try:
        catalog_size = catalog_reservation(totals, capacity, chunk_size, segment_size)
        budget = sample_bytes if sample_bytes is not None else default_sample_bytes(totals.data_bytes)
        sampler = Sampler(os.fsencode(source), totals.data_bytes, budget, chunk_size, level)
        estimated = _Fill(DriveBudget(capacity, catalog_size), segment_size, drive_size)
        worst = _Fill(DriveBudget(capacity, catalog_size), segment_size, drive_size)
        layout = replay(spool, sampler, estimated, worst, chunk_size)
    finally:
        spool.close()
    accepted = None
    if drives is not None:
        # pack --drive refuses, before writing, drives that together cannot hold the data uncompressed.
        accepted = drives * DriveBudget(capacity, catalog_size).usable(0) >= totals.unique_bytes
    if override is None:
        pack_seconds = pack_seconds_estimate(sampler, layout.raw_bytes, layout.files, threads)
    else:
        pack_seconds = layout.raw_bytes / override.bytes_per_second
    result = Plan(
        source=os.fsdecode(source),
        drive_size=drive_size,
        reserve=kept,
        capacity=capacity,
        chunk_size=chunk_size,
        segment_size=segment_size,
        level=level,
        files=layout.files,
        dirs=totals.dirs,
        symlinks=totals.symlinks,
        hardlinks=layout.hardlinks,
        data_bytes=layout.raw_bytes,
        excluded_entries=totals.excluded_entries,
        excluded_bytes=totals.excluded_bytes,
        specials=len(totals.specials),
        unreadable=len(totals.unreadable),
        catalog_bound=catalog_size,
        stored_bytes=layout.stored_bytes,
        drives=estimated.drives,
        drives_if_nothing_compresses=len(worst.drives),
        drives_given=drives,
        drives_given_accepted=accepted,
        sample_bytes=sampler.bytes_read,
        sample_pieces=sampler.pieces,
        sample_files=sampler.files,
        pack_seconds=pack_seconds,
        pack_rate=layout.raw_bytes / pack_seconds if pack_seconds > 0 else 0.0,
        pack_rate_measured=override is None,
        threads=min(threads or os.cpu_count() or 1, os.cpu_count() or 1),
        links=[LinkTime(link, layout.raw_bytes / link.bytes_per_second) for link in parsed_links],
    )
    result.notes.extend(_notes(result, sampler))
    result.seconds = time.monotonic() - started
    return result


def _counted(count: int, word: str, plural: str) -> str:
    return f"{count} {word if count == 1 else plural}"


def _notes(result: Plan, sampler: Sampler) -> Iterator[str]:
    if result.unreadable:
        unreadable = _counted(result.unreadable, "entry", "entries")
        yield f"{unreadable} cannot be read: pack refuses them unless --skip-unreadable"
    if result.specials:
        specials = _counted(result.specials, "special file", "special files")
        yield f"{specials} (FIFO, socket, device) will be skipped, as pack does"
    if sampler.unreadable:
        yield (
            f"{_counted(sampler.unreadable, 'file', 'files')} could not be read for the sample; "
            "the data around them was estimated alike"
        )
    if result.drives_given_accepted is False and result.drives_given is not None:
        yield (
            f"pack --drive refuses {_counted(result.drives_given, 'drive', 'drives')} of "
            f"{format_size(result.drive_size)} up front: it wants room for all the data uncompressed "
            "(pack --out has no such check)"
        )


__all__ = ["DEFAULT_LINKS", "DriveFill", "Link", "LinkTime", "Plan", "format_duration", "parse_rate", "plan"]
