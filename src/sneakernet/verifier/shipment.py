"""What is checked across the drives verified together, once each drive is read: the pieces of files spanning
drives fit together, and the drives are of one shipment. The pieces are kept set-wise in a temporary SQLite
file shared by the drives of a run (:class:`PieceLog`), so memory stays bounded."""

from __future__ import annotations

import sqlite3
import threading

from ..format import DriveLabel, FileRecord, show_path
from .report import DriveReport, Kind, Status


def temporary_database(any_thread: bool = False) -> sqlite3.Connection:
    """A set-wise check's database (duplicate paths, the catalog against the manifest, the pieces of files
    spanning drives): SQLite's own temporary file, removed when closed; nothing in it needs to survive a crash, so
    it is written without a journal or syncs. Used from the thread that made it, unless ``any_thread`` (then the
    caller serializes every use)."""
    db = sqlite3.connect("", check_same_thread=not any_thread)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db


#: The pieces of files spanning drives seen on the drives verified together (see :func:`check_pieces`).
PIECES_TABLE = (
    "CREATE TABLE IF NOT EXISTS spans (shipment TEXT, path BLOB, drive INTEGER, offset INTEGER, length INTEGER, "
    "size INTEGER, PRIMARY KEY (shipment, path, drive))"
)


class PieceLog:
    """The pieces of files spanning drives, noted by the drive checks of a run from their threads (one lock
    around the one connection: the pieces are few, two a drive in a sound shipment), checked once every drive is
    read (:meth:`check`)."""

    def __init__(self) -> None:
        self.db = temporary_database(any_thread=True)
        self.lock = threading.Lock()
        self.db.execute(PIECES_TABLE)

    def note(self, label: DriveLabel, record: FileRecord) -> None:
        with self.lock:
            note_piece(self.db, label, record)

    def check(self, reports: list[DriveReport]) -> None:
        with self.lock:
            check_pieces(self.db, reports)

    def close(self) -> None:
        with self.lock:
            self.db.close()


def note_piece(db: sqlite3.Connection, label: DriveLabel, record: FileRecord) -> None:
    """A piece of a file spanning drives, for :func:`check_pieces` once every drive is read."""
    db.execute(
        "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?)",
        (
            label.shipment,
            record.path,
            label.drive,
            record.offset,
            record.length,
            record.size if record.final else None,
        ),
    )


def check_pieces(db: sqlite3.Connection, reports: list[DriveReport]) -> None:
    """The pieces of a file on the drives given abut in drive order, never overlap and never run past its size:
    what restore needs to assemble it (a piece claiming offset 2^40 would be refused there). Each problem goes to
    the report of the drive whose piece does not fit."""
    db.execute(PIECES_TABLE)
    rows = db.execute(
        "SELECT b.shipment, b.path, b.drive, 'starts at byte ' || b.offset, 'its piece on drive ' || a.drive || "
        "' ends at byte ' || (a.offset + a.length) FROM spans AS a JOIN spans AS b ON a.shipment = b.shipment "
        "AND a.path = b.path AND a.drive < b.drive "
        "WHERE (b.drive = a.drive + 1 AND a.offset + a.length != b.offset) OR a.offset + a.length > b.offset "
        "UNION ALL SELECT a.shipment, a.path, a.drive, 'ends at byte ' || (a.offset + a.length), 'its size is ' || "
        "f.size FROM spans AS a JOIN spans AS f ON a.shipment = f.shipment AND a.path = f.path "
        "WHERE f.size IS NOT NULL AND a.offset + a.length > f.size LIMIT 100"
    ).fetchall()
    for shipment, path, drive, what, other in rows:
        shown = show_path(bytes(path))
        for report in reports:
            if report.shipment == shipment and report.drive == drive:
                message = f"{shown}: its piece on this drive {what}, but {other}: restore cannot assemble it"
                report.add(Kind.MANIFEST, message, [shown])
                break


def check_same_shipment(reports: list[DriveReport]) -> None:
    """Drives verified together must be of one shipment; the odd ones out are named."""
    shipments = [r.shipment for r in reports if r.shipment]
    if len(set(shipments)) < 2:
        return
    # The shipment most drives belong to; on a tie, the one of the first drive given (never set order).
    majority = max(dict.fromkeys(shipments), key=shipments.count)
    for report in reports:
        if report.shipment and report.shipment != majority:
            report.add(
                Kind.OTHER_SHIPMENT,
                f"this drive is from shipment {report.shipment}, the other drives from {majority}: "
                "a drive of another shipment is mixed in",
                status=Status.WRONG_SHIPMENT,
            )
