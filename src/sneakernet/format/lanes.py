"""Version 2's shipment-wide rules over records (docs/format.md 19.3-19.5, 19.9), pure: where the data drives lie
in their lanes (:class:`LaneTable`: which drive follows which, a file's chain of drives), and the order and
agreement of a version 2 catalog's records (:class:`CatalogCheck`, fed one record at a time).

Both hold one small record per data drive (at most ``MAX_DRIVES``), never one per entry: a catalog's entries are
checked as they stream by. They return problems as strings (what is wrong, naming the record); the reader decides
what a problem costs (verify reports it, restore refuses the catalog).
"""

from __future__ import annotations

from collections.abc import Iterable

from .catalog import CatalogDrive, CatalogEntry, CatalogParity, CatalogSummary
from .names import SEALED_CATALOG_NAME
from .paths import show_path
from .records import EndRecord, SealedRecord

CatalogBodyRecord = CatalogSummary | CatalogDrive | CatalogParity | CatalogEntry | SealedRecord | EndRecord


class LaneTable:
    """The data drives of a version 2 shipment by lane: (lane, lane_seq) of each drive number, and back.

    Built from the catalog's ``drive`` records (or any drive records, e.g. drive.json's) with :meth:`add`, then
    :meth:`finish` checks that the lanes are 1 ... L, each with ``lane_seq`` 1 ... n without gaps (19.9).
    """

    def __init__(self) -> None:
        self._position: dict[int, tuple[int, int]] = {}
        self._drive: dict[tuple[int, int], int] = {}

    @classmethod
    def of(cls, drives: Iterable[CatalogDrive]) -> LaneTable:
        """A table of ``drives`` (problems ignored: for drives already checked, e.g. a checked catalog's)."""
        table = cls()
        for drive in drives:
            table.add(drive.drive, drive.lane or 1, drive.lane_seq or 1)
        return table

    def add(self, drive: int, lane: int, lane_seq: int) -> list[str]:
        """Record data drive ``drive`` at (``lane``, ``lane_seq``); problems if either is taken already."""
        if drive in self._position:
            return [f"drive {drive} is listed twice"]
        taken = self._drive.get((lane, lane_seq))
        if taken is not None:
            return [f"drives {taken} and {drive} are both drive {lane_seq} of lane {lane}"]
        self._position[drive] = (lane, lane_seq)
        self._drive[(lane, lane_seq)] = drive
        return []

    def finish(self, lanes: int) -> list[str]:
        """Problems unless the drives fill lanes 1 ... ``lanes``, each from ``lane_seq`` 1 without gaps."""
        length: dict[int, int] = {}
        for lane, _ in self._drive:
            length[lane] = length.get(lane, 0) + 1
        problems = [
            f"drive {d} is in lane {p[0]}, beyond the {lanes} lanes" for d, p in self._position.items() if p[0] > lanes
        ]
        problems += [f"lane {lane} has no drive" for lane in range(1, lanes + 1) if lane not in length]
        for lane, count in sorted(length.items()):
            gaps = [seq for seq in range(1, count + 1) if (lane, seq) not in self._drive]
            if gaps:
                problems.append(f"lane {lane} has {count} drives but no drive {gaps[0]} (lane_seq 1 ... n, no gaps)")
        return problems[:10]

    def position(self, drive: int) -> tuple[int, int] | None:
        """(lane, lane_seq) of data drive ``drive``, or None if there is no such drive."""
        return self._position.get(drive)

    def successor(self, drive: int) -> int | None:
        """The drive after ``drive`` in its lane (where a piece continuing from it must be), or None."""
        position = self._position.get(drive)
        return None if position is None else self._drive.get((position[0], position[1] + 1))

    def next_drive_problem(self, drive: int, next_drive: int) -> str | None:
        """Why a non-final piece on ``drive`` may not name ``next_drive`` (19.4: the next drive of its lane)."""
        expected = self.successor(drive)
        if next_drive == expected:
            return None
        where = "is the last of its lane" if expected is None else f"is followed in its lane by drive {expected}"
        return f"a piece on drive {drive} continues on drive {next_drive}, but drive {drive} {where}"

    def chain(self, first_drive: int, pieces: int) -> list[int] | None:
        """The drives of a file of ``pieces`` pieces from ``first_drive``, in order, or None if its lane ends
        before (at most ``pieces`` steps are taken: a hostile count costs nothing beyond the lane)."""
        drives = [first_drive]
        while len(drives) < pieces:
            following = self.successor(drives[-1])
            if following is None:
                return None
            drives.append(following)
        return drives if first_drive in self._position else None

    def entry_problems(self, entry: CatalogEntry) -> list[str]:
        """An entry's drives against the lanes (19.5): both data drives of the shipment, in one lane, ``lane_seq``
        of ``drive`` minus that of ``first_drive`` equal to ``pieces`` - 1."""
        first, last = self._position.get(entry.first_drive), self._position.get(entry.drive)
        shown = show_path(entry.path)
        if first is None or last is None:
            missing = entry.first_drive if first is None else entry.drive
            return [f"entry {shown!r} names drive {missing}, which the catalog does not list"]
        pieces = entry.pieces or 1
        if first[0] != last[0] or last[1] - first[1] != pieces - 1:
            return [
                f"entry {shown!r}: {pieces} pieces from drive {entry.first_drive} (lane {first[0]}, drive {first[1]} "
                f"of it) cannot end on drive {entry.drive} (lane {last[0]}, drive {last[1]} of it)"
            ]
        return []


class CatalogCheck:
    """The order and agreement of a version 2 catalog's records after its header (docs/format.md 19.5): one
    ``summary``; the ``drive`` records 1 ... K in order, K the summary's, their lanes 1 ... L (:class:`LaneTable`);
    ``parity`` records 1 ... P in order; then the entries (``drive`` never decreasing, each in one lane as its
    pieces say) or one ``sealed`` record naming catalog.age; the totals of the summary those of the records.

    Feed it every record with :meth:`add`, then call :meth:`finish`; each returns the problems found. Whether a path
    is listed twice needs an index of every path (the reader's journal or a set on disk), so it is not checked here.
    """

    def __init__(self) -> None:
        self.summary: CatalogSummary | None = None
        self.lanes = LaneTable()
        self.drives = 0
        self.parities = 0
        self.sealed: SealedRecord | None = None
        self._stage = 0  # 0 summary, 1 drives, 2 parity, 3 entries or sealed, 4 after the end record
        self._last_entry_drive = 0
        self._stored_bytes = 0
        self._files = 0
        self._raw_bytes = 0
        self._entries = 0

    def add(self, record: CatalogBodyRecord) -> list[str]:
        """Problems of ``record`` in its place (the empty list when it is where and what it should be)."""
        if self._stage == 4:
            return ["records after the end record"]
        if isinstance(record, CatalogSummary):
            if self._stage != 0:
                return ["a second summary record"]
            self.summary, self._stage = record, 1
            return []
        if self.summary is None:
            return [f"a {record.TYPE} record before the summary, which comes second"]
        if isinstance(record, CatalogEntry):
            return self._entry(record)
        if isinstance(record, CatalogDrive):
            return self._data_drive(record)
        if isinstance(record, CatalogParity):
            return self._parity(record)
        if isinstance(record, SealedRecord):
            return self._sealed(record)
        return self._end()

    def finish(self) -> list[str]:
        """Problems of the catalog as a whole, once every record was added."""
        if self.summary is None:
            return ["the catalog has no summary record"]
        if self._stage != 4:
            return ["the catalog has no end record"]
        return []

    def _leave_drives(self) -> list[str]:
        """Moving past the drive records: all K of them seen, the lanes whole."""
        assert self.summary is not None
        self._stage = 2
        problems = []
        if self.drives != self.summary.drives:
            problems.append(f"{self.drives} drive records for the summary's {self.summary.drives} drives")
        return problems + self.lanes.finish(self.summary.lanes)

    def _data_drive(self, record: CatalogDrive) -> list[str]:
        assert self.summary is not None
        if self._stage != 1:
            return [f"drive record {record.drive} after the parity records or entries"]
        if record.drive != self.drives + 1:
            return [f"drive record {record.drive} where drive {self.drives + 1} comes (drive number order)"]
        if record.drive > self.summary.drives:
            return [f"drive record {record.drive} beyond the summary's {self.summary.drives} drives"]
        self.drives += 1
        self._stored_bytes += record.stored_bytes
        return self.lanes.add(record.drive, record.lane or 1, record.lane_seq or 1)

    def _parity(self, record: CatalogParity) -> list[str]:
        problems = self._leave_drives() if self._stage == 1 else []
        if self._stage != 2:
            return [f"parity record {record.drive} after the entries"]
        if record.drive != self.parities + 1:
            return [*problems, f"parity record {record.drive} where parity drive {self.parities + 1} comes"]
        self.parities += 1
        return problems

    def _sealed(self, record: SealedRecord) -> list[str]:
        problems = self._leave_drives() if self._stage == 1 else []
        if self.sealed is not None or self._entries:
            return [*problems, "a sealed record beside entries or another sealed record"]
        if record.name != SEALED_CATALOG_NAME:
            return [*problems, f"a catalog's sealed record names {SEALED_CATALOG_NAME}, not {record.name!r}"]
        self._stage, self.sealed = 3, record
        return problems

    def _entry(self, record: CatalogEntry) -> list[str]:
        problems = self._leave_drives() if self._stage == 1 else []
        self._stage = 3
        if self.sealed is not None:
            return [*problems, "entries beside the sealed catalog that holds them"]
        self._entries += 1
        if record.drive < self._last_entry_drive:
            shown = show_path(record.path)
            problems.append(f"entry {shown!r} of drive {record.drive} comes after drive {self._last_entry_drive}'s")
        self._last_entry_drive = max(self._last_entry_drive, record.drive)
        if record.kind == "file":
            self._files += 1
            self._raw_bytes += record.size
        return problems + self.lanes.entry_problems(record)

    def _end(self) -> list[str]:
        problems = self._leave_drives() if self._stage == 1 else []
        self._stage = 4
        summary = self.summary
        assert summary is not None
        if summary.files is not None and self.sealed is None:
            totals = (self._files, self._raw_bytes, self._stored_bytes)
            stated = (summary.files, summary.raw_bytes, summary.stored_bytes)
            for name, found, said in zip(("files", "raw_bytes", "stored_bytes"), totals, stated, strict=True):
                if found != said:
                    problems.append(f"the summary's {name} is {said}, the records give {found}")
        if summary.files is None and self.sealed is None:
            problems.append("a summary without totals in a catalog that is not sealed")
        if summary.files is not None and self.sealed is not None:
            problems.append("a sealed catalog's summary states its totals, which are sealed")
        return problems
