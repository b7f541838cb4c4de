"""One validation of a drive's records, shared by verify and restore: records in, problems out.

docs/format.md section 11 (Limits) states every bound checked here; this module is its executable form for what
a reader enforces beyond parsing (format/ parses a record and checks its own fields' types). It is pure: it
reads nothing and writes nothing. :class:`ManifestCheck` takes a manifest's records in order and keeps O(1) state
(the segment being filled); :class:`CatalogIndex` does what needs the whole shipment (duplicate paths, the catalog
against each drive's manifest) set-wise in an SQLite database it is handed (restore's journal, or a temporary one
of verify's), so memory stays flat whatever a drive or a catalog claims.

Each check returns problems as short sentences; verify reports each one, restore refuses the drive (or the
catalog) on the first. Nothing hostile reaches SQLite, the kernel or an allocation before it is checked here:
SQLite takes signed 64-bit integers, ``fchown`` 32-bit ids, ``utime`` 64-bit nanoseconds.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import FormatError
from .format import (
    MAX_DRIVES,
    MAX_SEGMENTS,
    RESERVED_NAME,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EntryRecord,
    FileRecord,
    HardlinkRecord,
    LaneTable,
    ManifestHeader,
    ManifestRecord,
    Metadata,
    SegmentRecord,
    SkippedRecord,
    SymlinkRecord,
    is_reserved,
    segment_name,
    show_path,
)
from .format.sealed import PublicChunk

#: The largest file size, piece offset or length a reader accepts: 1 EiB (2^60), more than a million drives of
#: any size today hold, and far below what overflows a signed 64-bit file offset (off_t, SQLite's INTEGER).
MAX_FILE_SIZE = 2**60
#: Counts and totals (chunk ids, byte totals, record counts): what SQLite and off_t hold, signed 64-bit.
MAX_COUNT = 2**63 - 1
#: mtime_ns is signed 64-bit nanoseconds (years 1677 to 2262), what utimensat and SQLite take.
MTIME_RANGE = (-(2**63), 2**63 - 1)
#: uid and gid are 32-bit; 2^32 - 1 is (uid_t) -1, which chown reads as "leave unchanged", so it is refused too.
MAX_OWNER_ID = 2**32 - 2
#: Problems one drive's validation lists before it only counts them (a hostile manifest may hold millions).
LISTED_PROBLEMS = 100


class UnsafePath(FormatError):
    """A shipment path that would escape the destination or go through a symlink."""


def check_path(path: bytes) -> list[bytes]:
    """The components of a shipment path, or :class:`UnsafePath` if it is not a plain relative path."""
    plain = path[:1] not in (b"", b"/", b".") and path[-1:] != b"/"
    if plain and b"/." not in path and b"//" not in path and b"\0" not in path:
        # The usual path (no component that starts with a dot, none empty), checked fast: it runs on every entry.
        return path.split(b"/")
    if not path:
        raise UnsafePath("an empty path")
    if b"\0" in path:
        raise UnsafePath(f"{show_path(path)!r} holds a NUL byte")
    if path.startswith(b"/"):
        raise UnsafePath(f"{show_path(path)!r} is absolute")
    parts = path.split(b"/")
    for part in parts:
        if part in (b"", b".", b".."):
            raise UnsafePath(f"{show_path(path)!r} has a {part.decode() or 'empty'!r} component")
    if is_reserved(path):
        # A shipment path there could overwrite a part or the journal of this very restore.
        raise UnsafePath(f"{show_path(path)!r} lies in {RESERVED_NAME}, the name restore keeps for its own files")
    return parts


def _over(name: str, value: int | None, limit: int, low: int = 0) -> list[str]:
    if value is None or low <= value <= limit:
        return []
    return [f"{name!r} is {value}, outside {low} ... {limit}"]


def label_problems(label: DriveLabel) -> list[str]:
    """drive.json's numbers within their bounds."""
    return [
        *_over("drive", label.drive, MAX_DRIVES, 1),
        *_over("segments", label.segments, MAX_SEGMENTS),
        *_over("manifest_size", label.manifest_size, MAX_COUNT),
        *_over("stored_bytes", label.stored_bytes, MAX_COUNT),
        *_over("raw_bytes", label.raw_bytes, MAX_COUNT),
    ]


def manifest_header_problems(header: ManifestHeader) -> list[str]:
    return [
        *_over("drive", header.drive, MAX_DRIVES, 1),
        *_over("chunk_size", header.chunk_size, MAX_COUNT, 1),
        *_over("segment_size", header.segment_size, MAX_FILE_SIZE, 1),
    ]


def catalog_header_problems(header: CatalogHeader) -> list[str]:
    return [
        *_over("drives", header.drives, MAX_DRIVES, 1),
        *_over("files", header.files, MAX_COUNT),
        *_over("raw_bytes", header.raw_bytes, MAX_COUNT),
        *_over("stored_bytes", header.stored_bytes, MAX_COUNT),
    ]


def catalog_drive_problems(record: CatalogDrive) -> list[str]:
    return [
        *_over("drive", record.drive, MAX_DRIVES, 1),
        *_over("manifest_size", record.manifest_size, MAX_COUNT),
        *_over("stored_bytes", record.stored_bytes, MAX_COUNT),
    ]


def catalog_entry_problems(entry: CatalogEntry, drives: int) -> list[str]:
    """An entry's drives within the shipment's ``drives``, in order, its size as its kind allows. (Its path is
    checked where it matters, on the drive that carries it: a drive's entries must be the catalog's for it.)"""
    first, last = entry.first_drive, entry.last_drive
    usual = entry.kind == "file" or (first == last and (entry.size == 0 or entry.kind == "symlink"))
    if usual and 1 <= first <= last <= drives and entry.size <= MAX_FILE_SIZE:
        return []
    problems = [*_over("first_drive", first, drives, 1), *_over("last_drive", last, drives, 1)]
    if first > last:
        problems.append(f"first_drive {first} is after last_drive {last}")
    if entry.kind != "file" and first != last:
        problems.append(f"a {entry.kind} is on one drive, not on drives {first} to {last}")
    if entry.kind in ("dir", "hardlink") and entry.size != 0:
        problems.append(f"a {entry.kind} has size 0, not {entry.size}")
    problems += _over("size", entry.size, MAX_FILE_SIZE)
    return [f"catalog entry {show_path(entry.path)!r}: {'; '.join(problems)}"]


def _metadata_problems(meta: Metadata) -> list[str]:
    return [
        *_over("mtime_ns", meta.mtime_ns, MTIME_RANGE[1], MTIME_RANGE[0]),
        *_over("uid", meta.uid, MAX_OWNER_ID),
        *_over("gid", meta.gid, MAX_OWNER_ID),
    ]


def entry_problems(record: EntryRecord) -> list[str]:
    """One entry record alone: its path (and a link's target) safe, every number within its bound."""
    if type(record) is FileRecord and record.final:
        # The usual record (a manifest has a million), checked in one expression; anything else field by field.
        meta = record.meta
        assert meta is not None and record.size is not None
        if (
            record.size <= MAX_FILE_SIZE and record.chunk <= MAX_COUNT and record.chunk_offset <= MAX_FILE_SIZE
            and MTIME_RANGE[0] <= meta.mtime_ns <= MTIME_RANGE[1] and meta.uid <= MAX_OWNER_ID
            and meta.gid <= MAX_OWNER_ID
        ):  # fmt: skip
            try:
                check_path(record.path)
            except UnsafePath as exc:
                return [str(exc)]
            return []
    problems: list[str] = []
    if not (isinstance(record, SkippedRecord) and record.path == b"."):
        try:
            check_path(record.path)
        except UnsafePath as exc:
            return [str(exc)]
    if isinstance(record, FileRecord):
        problems += _over("offset", record.offset, MAX_FILE_SIZE)
        problems += _over("length", record.length, MAX_FILE_SIZE)
        problems += _over("chunk", record.chunk, MAX_COUNT, -1)
        problems += _over("chunk_offset", record.chunk_offset, MAX_FILE_SIZE)
        problems += _over("size", record.size, MAX_FILE_SIZE)
    if isinstance(record, HardlinkRecord):
        try:
            check_path(record.target)
        except UnsafePath as exc:
            return [f"hard link {show_path(record.path)!r} names {exc}"]
    if isinstance(record, SymlinkRecord) and (not record.target or b"\0" in record.target):
        # symlink(2) takes neither: an empty target is ENOENT, a NUL ends the C string early.
        what = "an empty target" if not record.target else "a target holding a NUL byte"
        problems.append(f"it has {what}")
    meta = getattr(record, "meta", None)
    if meta is not None:
        problems += _metadata_problems(meta)
    if problems:
        return [f"{record.TYPE} {show_path(record.path)!r}: {'; '.join(problems)}"]
    return []


class ManifestCheck:
    """Checks one manifest's records in order, with O(1) state: each record within its bounds, and the chunk
    records against their segments (docs/format.md 4.1 and 6.2 rule 3): segments filled in order from
    ``s000001``, each chunk starting where the one before it in its segment ended (so inside the segment, and no two
    overlapping), the ``segment`` record after its chunks with their count and total size, no segment beyond the
    header's ``segment_size``. A segment whose hash matches then holds exactly the chunks the records describe.

    In version 2 (docs/format.md 19.4) every non-final piece must continue on the next drive of this drive's lane:
    ``lanes``, the shipment's data drives by lane (from its catalog), says which that is; without them (a drive
    checked without its catalog) the field's presence alone is checked, by the parser.

    :meth:`check` returns the problems of one record; :meth:`finish` those only the end can tell.
    """

    def __init__(self, lanes: LaneTable | None = None) -> None:
        self.lanes = lanes
        self.header: ManifestHeader | None = None
        #: The number of the segment being filled (0: none yet), and its chunks and bytes so far.
        self.segment = 0
        self.segment_open = False
        self.chunks = 0
        self.filled = 0

    def check(self, record: ManifestRecord) -> list[str]:
        if isinstance(record, ManifestHeader):
            self.header = record
            return manifest_header_problems(record)
        if isinstance(record, ChunkRecord | PublicChunk):  # an encrypted drive read without its key: public ones
            return self._chunk(record)
        if isinstance(record, SegmentRecord):
            return self._segment(record)
        if isinstance(record, FileRecord | DirRecord | SymlinkRecord | HardlinkRecord | SkippedRecord):
            problems = entry_problems(record)
            if type(record) is FileRecord and record.next_drive is not None and self.lanes and self.header:
                problem = self.lanes.next_drive_problem(self.header.drive, record.next_drive)
                problems += [f"file {show_path(record.path)!r}: {problem}"] if problem else []
            return problems
        return []

    def _chunk(self, chunk: ChunkRecord | PublicChunk) -> list[str]:
        problems = _over("id", chunk.id, MAX_COUNT)
        if not self.segment_open:
            self.segment, self.segment_open, self.chunks, self.filled = self.segment + 1, True, 0, 0
        expected = segment_name(self.segment) if self.segment <= MAX_SEGMENTS else None
        if chunk.segment != expected:
            problems.append(f"it is in {chunk.segment}, but the segment being filled is {expected}")
        elif chunk.offset != self.filled:
            where = (
                "overlaps the chunk before it" if chunk.offset < self.filled else "leaves a gap after the chunk before"
            )
            problems.append(
                f"it starts at byte {chunk.offset} of {chunk.segment}: it {where} (which ends at {self.filled})"
            )
        self.chunks += 1
        self.filled = max(self.filled, chunk.offset) + chunk.stored_size
        limit = self.header.segment_size if self.header is not None else MAX_FILE_SIZE
        if self.filled > limit:
            problems.append(f"it ends at byte {self.filled} of {chunk.segment}, past the segment_size {limit}")
        return [f"chunk {chunk.id}: {'; '.join(problems)}"] if problems else []

    def _segment(self, record: SegmentRecord) -> list[str]:
        problems: list[str] = []
        expected = segment_name(self.segment) if self.segment_open else "no segment (none holds chunks yet)"
        if record.name != expected:
            problems.append(f"the segment being filled is {expected}")
        elif record.size != self.filled or record.chunks != self.chunks:
            problems.append(
                f"it says {record.chunks} chunks and {record.size} bytes; its chunk records are {self.chunks} "
                f"chunks and end at byte {self.filled}"
            )
        self.segment_open = False
        return [f"segment record {record.name}: {'; '.join(problems)}"] if problems else []

    def finish(self) -> list[str]:
        if self.segment_open:
            return [f"{segment_name(self.segment)} holds chunks but has no segment record"]
        return []


# --- the whole shipment, set-wise ---------------------------------------------------------------------------------

#: Rows inserted per statement batch: keeps Python-side lists short.
_BATCH = 10_000
#: A manifest entry's role for its file: the final piece of a file wholly on the drive, the final piece of one
#: that started on an earlier drive, a piece that continues on the next drive; other entries are "entry".
WHOLE, TAIL, PIECE, ENTRY = "whole", "tail", "piece", "entry"


#: What a drive's manifest says of one path, as the catalog must say it too: path, kind, size (None for a piece
#: that continues on the next drive), role, and a hard link's target. A tuple: one is made for every entry.
Seen = tuple[bytes, str, int | None, str, bytes | None]


def seen_of(record: EntryRecord) -> Seen | None:
    """The row a manifest entry record gives the cross-check (None for skipped entries, which the catalog omits)."""
    if isinstance(record, FileRecord):
        if not record.final:
            return (record.path, "file", None, PIECE, None)
        return (record.path, "file", record.size, WHOLE if record.offset == 0 else TAIL, None)
    if isinstance(record, SymlinkRecord):
        return (record.path, "symlink", len(record.target), ENTRY, None)
    if isinstance(record, HardlinkRecord):
        return (record.path, "hardlink", 0, ENTRY, record.target)
    if isinstance(record, DirRecord):
        return (record.path, "dir", 0, ENTRY, None)
    return None


class CatalogIndex:
    """The catalog's entries in a table of ``db`` (path as primary key), to check what needs the whole shipment:
    no path listed twice (in the catalog, or on one drive), and each drive's manifest against the catalog's slice
    for it (the entries whose last_drive is that drive): the same paths, kinds, sizes and drives.

    ``db`` is restore's journal (the table persists, built once per restore) or a temporary database of verify's.
    """

    TABLE = "catalog_entries"

    def __init__(self, db: sqlite3.Connection, table: str = TABLE) -> None:
        self.db = db
        self.table = table

    def built(self) -> bool:
        """Whether :meth:`build` ran to its end on this database (a run killed meanwhile leaves it unfinished)."""
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {self.table, f"{self.table}_counts"} - tables:
            return False
        return self.db.execute(f"SELECT 1 FROM {self.table}_counts WHERE drive = 0").fetchone() is not None

    def build(self, entries: Iterable[CatalogEntry]) -> list[str]:
        """Fill the table from ``entries`` (the catalog's, in order, each within its bounds: the catalog reader
        checks :func:`catalog_entry_problems`); the problems of a catalog that lies: a path listed twice, entries
        not in drive order (section 9). At most one is returned."""
        db, table = self.db, self.table
        db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"DROP TABLE IF EXISTS {table}_counts")
        db.execute(
            f"CREATE TABLE {table} (path BLOB PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL, "
            "first_drive INTEGER NOT NULL, last_drive INTEGER NOT NULL)"
        )
        last = 1
        batch: list[tuple[Any, ...]] = []
        for entry in entries:
            if entry.last_drive < last:
                shown = show_path(entry.path)
                return [f"the catalog lies: its entry {shown!r} of drive {entry.last_drive} comes after drive {last}'s"]
            last = entry.last_drive
            batch.append((entry.path, entry.kind, entry.size, entry.first_drive, entry.last_drive))
            if len(batch) >= _BATCH:
                if problem := self._insert(batch):
                    return [problem]
                batch = []
        if problem := self._insert(batch):
            return [problem]
        # Entries per drive: what each drive's manifest must have as many final records as (one row per drive
        # that has entries, so bounded by the drive records, not by what a header claims).
        db.execute(f"CREATE TABLE {table}_counts (drive INTEGER PRIMARY KEY, entries INTEGER NOT NULL)")
        db.execute(f"INSERT INTO {table}_counts SELECT last_drive, COUNT(*) FROM {table} GROUP BY last_drive")
        db.execute(f"INSERT OR IGNORE INTO {table}_counts VALUES (0, 0)")  # marks the table complete
        return []

    def _insert(self, batch: list[tuple[Any, ...]]) -> str | None:
        path = _insert_once(self.db, self.table, batch)
        return None if path is None else f"the catalog lies: it lists {show_path(path)!r} twice (a path has one entry)"

    def load_seen(self, seen: Iterable[Seen]) -> Iterator[str]:
        """Put one drive's manifest entries (``seen``, in manifest order) in a temporary table, for
        :meth:`compare`; the problems among them: a path twice on the drive (then ``seen`` is read to its end but
        no longer loaded), a path inside one that is not a directory."""
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS drive_seen (path BLOB PRIMARY KEY, kind TEXT NOT NULL, "
                   "size INTEGER, role TEXT NOT NULL, target BLOB)")  # fmt: skip
        db.execute("DELETE FROM drive_seen")
        rows = iter(seen)
        while batch := list(itertools.islice(rows, _BATCH)):
            path = _insert_once(db, "drive_seen", batch)
            if path is not None:
                yield f"it lists {show_path(path)!r} twice"
                for _ in rows:  # the caller's other checks still see every record
                    pass
                return
        row = db.execute(
            "SELECT inner.path, outer.path, outer.kind FROM drive_seen AS outer JOIN drive_seen AS inner "
            "ON inner.path > CAST(outer.path || x'2f' AS BLOB) AND inner.path < CAST(outer.path || x'30' AS BLOB) "
            "WHERE outer.kind != 'dir' LIMIT 1"
        ).fetchone()
        if row:
            yield f"{show_path(bytes(row[0]))!r} lies inside {show_path(bytes(row[1]))!r}, a {row[2]}"

    def compare(self, drive: int, lane: Iterable[int] | None = None) -> Iterator[str]:
        """The entries :meth:`load_seen` loaded, of drive ``drive``, against the catalog's (built by :meth:`build`):
        every path the drive finishes is listed for this drive with its kind and size, a piece continuing on
        the next drive lies within its file's drives, and the catalog lists no more entries for this drive.

        ``lane`` (version 2, docs/format.md 19.5): the drives of this drive's lane; a file with a piece here must
        lie in that lane (its drives are then a chain of the lane, the catalog reader having checked that each
        entry's drives are one lane's)."""
        db, table = self.db, self.table
        db.execute("CREATE TEMP TABLE IF NOT EXISTS lane_drives (drive INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM lane_drives")
        if lane is not None:
            db.executemany("INSERT OR IGNORE INTO lane_drives VALUES (?)", ((d,) for d in lane))
        bad = db.execute(
            f"SELECT s.path, s.kind, s.size, s.role, c.kind, c.size, c.first_drive, c.last_drive FROM drive_seen AS s "
            f"LEFT JOIN {table} AS c ON c.path = s.path WHERE c.path IS NULL OR c.kind != s.kind "
            "OR (s.role != 'piece' AND (c.size != s.size OR c.last_drive != ?)) "
            "OR (s.role IN ('whole', 'entry') AND c.first_drive != ?) "
            "OR (s.role = 'tail' AND c.first_drive >= ?) "
            "OR (s.role = 'piece' AND NOT (c.first_drive <= ? AND ? < c.last_drive)) "
            "OR (? AND s.role IN ('piece', 'tail') AND c.first_drive NOT IN (SELECT drive FROM lane_drives)) LIMIT 1",
            (drive, drive, drive, drive, drive, lane is not None),
        ).fetchone()
        if bad is not None:
            yield _mismatch(drive, *bad)
            return
        finals = db.execute("SELECT COUNT(*) FROM drive_seen WHERE role != 'piece'").fetchone()[0]
        row = db.execute(f"SELECT entries FROM {table}_counts WHERE drive = ?", (drive,)).fetchone()
        listed = row[0] if row else 0
        if finals != listed:
            missing = db.execute(
                f"SELECT path FROM {table} WHERE last_drive = ? AND path NOT IN (SELECT path FROM drive_seen) LIMIT 1",
                (drive,),
            ).fetchone()
            what = f", e.g. {show_path(bytes(missing[0]))!r}" if missing else ""
            yield (
                f"the catalog does not match this drive's manifest: it lists {listed} entries finished on drive "
                f"{drive}, the manifest has {finals}{what}"
            )

    def link_problems(self, drive: int, ordered: bool = True) -> Iterator[str]:
        """Hard links of the entries :meth:`load_seen` loaded whose target the catalog does not list as a regular
        file finished on this drive or an earlier one (docs/format.md 6.2 rule 8). Restore refuses such a link as
        an entry when it meets it (it cannot tell before the target's drive is in); verify says so up front.
        Not ``ordered`` (version 2, 19.4: the target may be in another lane), the target may finish on any drive."""
        row = self.db.execute(
            f"SELECT s.path, s.target, c.kind, c.last_drive FROM drive_seen AS s LEFT JOIN {self.table} AS c "
            "ON c.path = s.target WHERE s.kind = 'hardlink' AND (c.path IS NULL OR c.kind != 'file' "
            "OR (? AND c.last_drive > ?)) LIMIT 1",
            (ordered, drive),
        ).fetchone()
        if row is None:
            return
        path, target, kind, last = show_path(bytes(row[0])), show_path(bytes(row[1])), row[2], row[3]
        if kind is None:
            yield f"hard link {path!r} names {target!r}, which is not in the shipment"
        elif kind != "file":
            yield f"hard link {path!r} names {target!r}, a {kind}, not a regular file"
        else:
            yield f"hard link {path!r} names {target!r}, which is finished on drive {last}, after this one"


def _mismatch(
    drive: int, path: bytes, kind: str, size: int | None, role: str,
    c_kind: str | None, c_size: int | None, first: int | None, last: int | None,
) -> str:  # fmt: skip
    shown = show_path(bytes(path))
    start = "the catalog does not match this drive's manifest: "
    if c_kind is None:
        return start + f"{shown!r} is on this drive, the catalog does not list it"
    if c_kind != kind:
        return start + f"{shown!r} is a {kind} here, a {c_kind} in the catalog"
    if role == PIECE:
        return start + f"a piece of {shown!r} is on drive {drive}, the catalog puts it on drives {first} to {last}"
    if last != drive:
        return start + f"{shown!r} is finished on drive {drive}, the catalog names drive {last} for it"
    if c_size != size:
        return start + f"{shown!r} has size {size} here, {c_size} in the catalog"
    return start + f"{shown!r} starts on drive {first} in the catalog, which does not fit this drive's piece"


def _insert_once(db: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> bytes | None:
    """Insert ``rows`` (path first) into ``table``, whose primary key is the path; the first path that was there
    already or is in ``rows`` twice, if any (then some rows may be left out: the caller stops)."""
    if not rows:
        return None
    last = db.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
    before = db.total_changes
    marks = ", ".join("?" * len(rows[0]))
    db.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", rows)
    if db.total_changes - before == len(rows):
        return None
    # Rare (a broken or hostile drive or catalog): find the path, in this batch twice or inserted before it.
    batch: set[bytes] = set()
    for path, *_ in rows:
        earlier = db.execute(f"SELECT rowid FROM {table} WHERE path = ?", (path,)).fetchone()[0] <= last
        if path in batch or earlier:
            return bytes(path)
        batch.add(path)
    raise AssertionError("an insert was ignored, but no path repeats")
