"""Planning a shipment before packing it: ``sneakernet.plan.plan()``.

How many drives, how full each one, how long packing takes, and how long the same bytes would take over a
network link. The plan walks the source once, as pack's scan walks it (:func:`sneakernet.scan.walk_stats`), and
reads a small, bounded, deterministic sample of its data, never the whole of it:

- **the sample** (sample.py): the data, seen as one stream of bytes in walk order, is cut into strata, each
  represented by a 64 KiB piece compressed as pack compresses chunks; the pieces are noted during the walk and
  read and compressed after it.
- **the fill**: the walk cuts the data into pack's chunks by size alone (grouped as
  :class:`~sneakernet.chunking.Chunker` groups them) and notes them, with the records between them, as events in a
  spool; after the walk each chunk, its stored size estimated from the strata it spans, is placed on drives with
  pack's space arithmetic (:class:`~sneakernet.planner.DriveSpace` under a
  :class:`~sneakernet.planner.DriveBudget` that reserves room for the catalog as pack computes it). Manifests are
  estimated from record sizes.

It writes nothing but its temporary spool. It must not grow into a second packer: whatever pack decides, the plan
asks pack's modules (and a test holds its chunks to the chunker's).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from stat import S_IFDIR, S_IFLNK, S_IFREG
from typing import Any, BinaryIO

from .codec import stored_size_bound
from .errors import DestinationError, UsageError
from .format import MAX_SEGMENTS
from .options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_SIZE, PackOptions
from .output import SCHEMA_VERSION
from .patterns import Excluder
from .planner import (
    CATALOG_ENTRY_OVERHEAD,
    JSON_PLAIN,
    PATH_ESCAPE_FACTOR,
    RECORD_BOUND,
    DriveBudget,
    DriveSpace,
    catalog_bound,
    catalog_entry_bound,
    default_reserve,
)
from .recordfile import FLUSH_EVERY
from .sample import SAMPLE_MAX, Sample, StreamSampler
from .scan import FILE_TYPE_BITS, Excluded, ScanTotals, Unreadable, check_source, restore_record_excludes, walk_stats
from .units import counted, format_size

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
    """Drives filled in order as pack's ShipmentWriter fills them, with estimated chunk sizes.

    It is fed batches of records and chunks, as pack writes them: the records of the entries between two chunks
    (directories, symlinks, the ends of the files of the chunk before) are one batch, checked for room at once.
    """

    def __init__(self, budget: DriveBudget, segment_size: int, drive_size: int) -> None:
        self.budget = budget
        self.segment_size = segment_size
        self.drive_size = drive_size
        self.drives: list[DriveFill] = []
        self.space: DriveSpace | None = None
        self.manifest = _Manifest()
        self.raw_bytes = 0
        #: The records (bound, lines) of the pieces of files the last chunk holds, until their ends are written:
        #: a drive finished in between writes a piece record for each.
        self.pieces_bound = 0
        self.pieces_lines = 0
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
                    f"drive size too small: a drive of {format_size(self.drive_size)} cannot take even one chunk "
                    "with its records: use larger drives or a smaller --chunk-size"
                )
            self._finish()

    def _note_room(self, space: DriveSpace) -> None:
        self.record_room = self.budget.capacity - space.data_bytes - self.budget.overhead(space.segments, 0)

    def _records_fit(self, extra: int) -> bool:
        """``space.fits(manifest.size_bound(...))`` as :meth:`_room` asks it, from :attr:`record_room`: the
        drive's overhead is linear in its manifest bound."""
        if self.space is None:
            return False
        pending = self.manifest.unflushed + extra + self.pieces_bound + 2 * RECORD_BOUND
        return self.manifest.base + pending + pending // 1024 <= self.record_room

    def records(self, lines: int, bound: int) -> None:
        """A batch of records taking ``lines`` bytes, at most ``bound``; it ends the open pieces."""
        if not self._records_fit(bound):
            self._room(0, bound)
        self.manifest.add(lines)
        self.pieces_bound = self.pieces_lines = 0

    def chunk(self, stored: int, raw_size: int, pieces_bound: int, pieces_lines: int) -> None:
        """A chunk of ``stored`` bytes whose files' records take at most ``pieces_bound`` bytes (``pieces_lines``
        as the piece records of a drive finished before their ends)."""
        self._room(stored, RECORD_BOUND + pieces_bound)
        self.manifest.add(CHUNK_LINE)
        self.raw_bytes += raw_size
        self.pieces_bound, self.pieces_lines = pieces_bound, pieces_lines

    def _finish(self) -> None:
        assert self.space is not None
        if self.pieces_lines:
            self.manifest.add(self.pieces_lines)
        self.pieces_bound = self.pieces_lines = 0
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


# --- the walk -----------------------------------------------------------------------------------------------

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


class _EventSpool:
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
class _Walked:
    """What the walk found: pack's scan totals, the counts of pack's summary, and the stream's length."""

    totals: ScanTotals = field(default_factory=ScanTotals)
    files: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    #: Every file's size end to end, hard links included: the stream the sample's strata cut.
    stream_bytes: int = 0


class _Walk:
    """One pass over the source: the totals pack's scan gives, the sample, and the events of the fill.

    The chunks are pack's (chunking.py): small files grouped in walk order until the next would not fit, each
    large file cut into chunks of its own; the records are pack's, a file's end after its chunk. The loop keeps
    the grouping inline, as :class:`~sneakernet.chunking.Chunker` does it (a test holds them to the same
    chunks): it runs for every file of the tree, and a call per file is a measurable part of a plan.
    """

    def __init__(self, root: bytes, sampler: StreamSampler, events: _EventSpool, chunk_size: int) -> None:
        self.root = root
        self.sampler = sampler
        self.events = events
        self.chunk_size = chunk_size
        self.walked = _Walked()
        self.linked: set[tuple[int, int]] = set()
        # root reads every file whatever its mode: no access() call per file then (as scan does).
        self.check_access = os.geteuid() != 0
        #: Records since the last chunk (lines, bound); the open group (start, size, record bound, piece lines)
        #: and its files' ends, which follow its chunk.
        self.lines = self.bound = 0
        self.group_start = self.group_size = self.group_bound = self.group_pieces = 0
        self.ends_lines = self.ends_bound = 0

    def run(self, excluder: Excluder | None) -> _Walked:
        walked, sampler, chunk_size = self.walked, self.sampler, self.chunk_size
        # The counts of every file are kept in locals and stored at the end: this loop runs for every file.
        position = files = data_bytes = catalog_bytes = unique_files = unique_bytes = 0
        for item in walk_stats(self.root, excluder):
            if not isinstance(item, tuple):
                self._aside(item)
                continue
            path, st = item
            kind = st.st_mode & FILE_TYPE_BITS
            length = len(path)
            if kind != S_IFREG:
                self._other(path, kind)
                continue
            bound = RECORD_BOUND + PATH_ESCAPE_FACTOR * length  # record_bound(length)
            if self.check_access and not os.access(os.path.join(self.root, path), os.R_OK):
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
            if size >= chunk_size:  # chunking.is_large
                self._large(position, size, length)
            else:
                if self.group_size + size > chunk_size:
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


def place(events: _EventSpool, sample: Sample, fills: tuple[_Fill, _Fill], chunk_size: int) -> int:
    """Place the walk's chunks and records on both fills: the first with the sample's estimate of each chunk,
    the second as if nothing compressed. Returns the estimated stored bytes."""
    estimated, worst = fills
    stored_bytes = 0
    for kind, a, b, c, d in events:
        if kind == EVENT_RECORDS:
            estimated.records(a, b)
            worst.records(a, b)
            continue
        # A large file's chunks are its own, chunk_size bytes each (chunking.py); a group is one chunk.
        step = chunk_size if kind == EVENT_LARGE else b
        for offset in range(0, b, step):
            raw_size = min(step, b - offset)
            estimate, stored_only = sample.estimate(a + offset, raw_size)
            bound = stored_size_bound(raw_size)
            stored = bound if stored_only else min(math.ceil(estimate), bound)
            stored_bytes += stored
            estimated.chunk(stored, raw_size, c, d)
            worst.chunk(bound, raw_size, c, d)
    estimated.close()
    worst.close()
    return stored_bytes


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
            f"drive size too small: a drive can take {format_size(max(capacity, 0))} after the reserve, the format "
            f"needs at least {format_size(capacity - per_drive + chunk_bound)} for one chunk, its manifest and the "
            "catalog: use larger drives"
        )
    worst_case = chunk_bound * (totals.unique_bytes // chunk_size + 1) + totals.catalog_entry_bytes
    drives = 0
    for _ in range(2):
        drives = 2 * (worst_case // max(per_drive, 1) + 1) + 4
        per_drive = DriveBudget(capacity, catalog_bound(totals.catalog_entry_bytes, drives)).usable(one_chunk_records)
    size = catalog_bound(totals.catalog_entry_bytes, drives)
    if per_drive < chunk_bound:
        raise DestinationError(
            f"drive size too small: a drive of {format_size(max(capacity, 0))} after the reserve cannot hold one "
            f"chunk beside the catalog of {format_size(size)}: use larger drives"
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
            "schema_version": SCHEMA_VERSION,
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
            "filesystem_room": filesystem_room(self.drive_size),
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


#: What pack spends on each file besides its bytes (open, fstat, close, its records in the manifest and the
#: catalog, the hand-offs between its threads): about 25 microseconds. Measured: 100,000 small files packed at
#: 37,000 files a second, their bytes included (bench/many_files.py); 16 us a file on the Python standard library's
#: tree once its bytes are counted at the sample's rate.
PER_FILE_SECONDS = 25e-6


#: What ``df -B1`` calls Available on a freshly formatted drive, as a fraction of its label, by filesystem, at
#: labels of 100 GB, 1 TB and 8 TB. Measured with bench/drive_space.sh (sparse images, each filesystem's mkfs
#: defaults: e2fsprogs 1.47.0, exfatprogs 1.2.0, xfsprogs 6.1.0, ntfs-3g 2022.10.3 with mkfs.ntfs -f; Linux 6.18).
#: ext4 keeps 5% of its blocks for root unless formatted with ``-m 0``.
FILESYSTEM_ROOM: dict[str, tuple[float, float, float]] = {
    "ext4": (0.92812, 0.93313, 0.94197),
    "ext4 -m 0": (0.97812, 0.98313, 0.99197),
    "exFAT": (0.99995, 0.99997, 0.99997),
    "NTFS": (0.99929, 0.99990, 0.99996),
    "XFS": (0.99202, 0.99251, 0.99276),
}
_ROOM_AT = (1e11, 1e12, 8e12)


def filesystem_room(label: int) -> dict[str, int]:
    """Bytes a drive labelled ``label`` bytes leaves for files, by filesystem: :data:`FILESYSTEM_ROOM`'s fractions,
    interpolated between the measured labels on a log scale and held at the ends."""
    at = min(max(math.log(label), math.log(_ROOM_AT[0])), math.log(_ROOM_AT[-1])) if label > 0 else math.log(1e11)
    logs = [math.log(size) for size in _ROOM_AT]
    room = {}
    for name, fractions in FILESYSTEM_ROOM.items():
        i = 0 if at <= logs[1] else 1
        share = (at - logs[i]) / (logs[i + 1] - logs[i])
        room[name] = int(label * (fractions[i] + share * (fractions[i + 1] - fractions[i])))
    return room


def pack_seconds_estimate(sample: Sample, data_bytes: int, files: int, threads: int) -> float:
    """Seconds pack needs for its CPU work, from the sample's timings: the encoder runs on ``threads`` threads
    (all cores for 0), and every byte is hashed once more as part of its whole file (large files on the reading
    thread, small ones on the encoding pool), no faster than the cores allow; plus :data:`PER_FILE_SECONDS` a
    file. Reading the source and writing the drives are not counted."""
    cores = os.cpu_count() or 1
    workers = min(threads or cores, cores)
    seconds = files * PER_FILE_SECONDS
    encode_cost, hash_cost = sample.encode_cost, sample.hash_cost
    if encode_cost > 0:
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
    check_source(source)
    root = os.fsencode(source)
    sampler = StreamSampler(root, chunk_size, level, max_bytes=sample_bytes if sample_bytes is not None else SAMPLE_MAX)
    events = _EventSpool()
    try:
        # What pack leaves out of a restored tree, plan leaves out too (scan.restore_record_excludes).
        excludes = options.excludes + restore_record_excludes(source)
        walked = _Walk(root, sampler, events, chunk_size).run(Excluder(excludes) if excludes else None)
        sample = sampler.finish(walked.stream_bytes, threads)
        totals = walked.totals
        catalog_size = catalog_reservation(totals, capacity, chunk_size, segment_size)
        estimated = _Fill(DriveBudget(capacity, catalog_size), segment_size, drive_size)
        worst = _Fill(DriveBudget(capacity, catalog_size), segment_size, drive_size)
        stored_bytes = place(events, sample, (estimated, worst), chunk_size)
    finally:
        events.close()
    accepted = None
    if drives is not None:
        # pack --drive refuses, before writing, drives that together cannot hold the data uncompressed.
        accepted = drives * DriveBudget(capacity, catalog_size).usable(0) >= totals.unique_bytes
    if override is None:
        pack_seconds = pack_seconds_estimate(sample, walked.raw_bytes, walked.files, threads)
    else:
        pack_seconds = walked.raw_bytes / override.bytes_per_second
    result = Plan(
        source=os.fsdecode(source),
        drive_size=drive_size,
        reserve=kept,
        capacity=capacity,
        chunk_size=chunk_size,
        segment_size=segment_size,
        level=level,
        files=walked.files,
        dirs=totals.dirs,
        symlinks=totals.symlinks,
        hardlinks=walked.hardlinks,
        data_bytes=walked.raw_bytes,
        excluded_entries=totals.excluded_entries,
        excluded_bytes=totals.excluded_bytes,
        specials=len(totals.specials),
        unreadable=len(totals.unreadable),
        catalog_bound=catalog_size,
        stored_bytes=stored_bytes,
        drives=estimated.drives,
        drives_if_nothing_compresses=len(worst.drives),
        drives_given=drives,
        drives_given_accepted=accepted,
        sample_bytes=sample.bytes_read,
        sample_pieces=sample.pieces,
        sample_files=sample.files,
        pack_seconds=pack_seconds,
        pack_rate=walked.raw_bytes / pack_seconds if pack_seconds > 0 else 0.0,
        pack_rate_measured=override is None,
        threads=min(threads or os.cpu_count() or 1, os.cpu_count() or 1),
        links=[LinkTime(link, walked.raw_bytes / link.bytes_per_second) for link in parsed_links],
    )
    result.notes.extend(_notes(result, sample))
    result.seconds = time.monotonic() - started
    return result


def _notes(result: Plan, sample: Sample) -> Iterator[str]:
    if result.unreadable:
        unreadable = counted(result.unreadable, "entry", "entries")
        yield f"{unreadable} cannot be read: pack refuses them unless --skip-unreadable"
    if result.specials:
        specials = counted(result.specials, "special file", "special files")
        yield f"{specials} (FIFO, socket, device) will be skipped, as pack does"
    if sample.unreadable:
        yield (
            f"{counted(sample.unreadable, 'file', 'files')} could not be read for the sample; "
            "the data around them was estimated alike"
        )
    if result.drives_given_accepted is False and result.drives_given is not None:
        refusal = (
            f"pack --drive refuses {counted(result.drives_given, 'drive', 'drives')} of "
            f"{format_size(result.drive_size)} up front: it wants room for all the data uncompressed "
            "(pack --out has no such check)"
        )
        if result.drives_suffice:
            # Rounded up, so that the ratio given accepts what this estimate says fits.
            ratio = math.ceil(result.ratio * 100) / 100
            refusal += (
                f"; with --assume-ratio {ratio:.2f} (this estimate) it accepts them, and should they run out it stops "
                "with exit code 4 and --resume with one more --drive goes on"
            )
        yield refusal


__all__ = ["DEFAULT_LINKS", "DriveFill", "Link", "LinkTime", "Plan", "format_duration", "parse_rate", "plan"]
