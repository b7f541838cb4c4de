"""The restore journal: DEST/.sneakernet/journal.sqlite3, what makes restore idempotent and resumable.

SQLite from the standard library keeps the state on disk, so memory stays flat for a 10-million-file shipment.
Every commit is durable (``synchronous=FULL``); restore commits a batch only after the files it records are on
disk (see drive.py), so a state the journal calls done is never lost by a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..format import FINISHED_NAME as FINISHED_NAME  # where restore and its tests look for it
from ..format import JOURNAL_NAME as JOURNAL_NAME
from ..format import RESERVED_NAME
from ..io.atomic import install
from ..io.tree import PARTS_NAME
from ..validate import CatalogIndex
from .states import DriveState, EntryState

JOURNAL_DIR = RESERVED_NAME
PARTS_DIR = PARTS_NAME
CATALOG_COPY = "catalog.jsonl.zst"
#: Bumped when the tables change; a journal of another version is refused, never misread.
JOURNAL_VERSION = 1


#: Paths looked up, or rows inserted or updated, by one statement: well under SQLite's limit of variables (999
#: before 3.32), and few enough that a statement stays short.
ROWS_PER_STATEMENT = 500
_ENTRY_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: Entries :meth:`Journal.prefetch` keeps looked up: a few windows of each of several drives restored at once.
KNOWN_ENTRIES = 16 * ROWS_PER_STATEMENT
#: Rows of an insert statement: 12 variables each, at most 999 a statement.
_INSERT_ROWS = 999 // 12

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE drives (drive INTEGER PRIMARY KEY, label TEXT NOT NULL, manifest_blake3 TEXT NOT NULL,
                     state TEXT NOT NULL, failed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entries (path BLOB PRIMARY KEY, kind TEXT NOT NULL, drive INTEGER NOT NULL, state TEXT NOT NULL,
                      size INTEGER, blake3 TEXT, mode INTEGER, mtime_ns INTEGER, uid INTEGER, gid INTEGER,
                      target BLOB, final_drive INTEGER);
CREATE TABLE pieces (path BLOB NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, drive INTEGER NOT NULL,
                     PRIMARY KEY (path, offset));
CREATE TABLE names (parent BLOB NOT NULL, folded TEXT NOT NULL, path BLOB NOT NULL, PRIMARY KEY (parent, folded));
CREATE INDEX entries_state ON entries (state, kind);
CREATE INDEX entries_target ON entries (target) WHERE target IS NOT NULL;
"""
#: Under --include, a file the patterns leave out whose content a wanted hard link needs: it is restored under
#: ``link`` (the first such link met). ``first_drive``..``last_drive`` and ``size``: the target's, from the
#: catalog (NULL until looked up); ``fresh``: not yet compared with the drives already restored. Made when first
#: needed, so that a journal of an earlier sneakernet (without the table) still opens.
ALIASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (target BLOB PRIMARY KEY, link BLOB NOT NULL, first_drive INTEGER,
                                    last_drive INTEGER, size INTEGER, fresh INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS aliases_link ON aliases (link);
"""


#: Each file being assembled in the parts directory under a random name (parts.py): a file spanning drives
#: keeps its part across runs, and a batch being installed is found again after a kill. ``dev``/``ino``: the part's
#: identity when it was made, so that a part replaced meanwhile is never taken for it (NULL: not recorded).
#: Made when first needed, so that a journal of an earlier sneakernet (without the table) still opens.
PARTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (path BLOB PRIMARY KEY, name BLOB NOT NULL, dev INTEGER, ino INTEGER)
"""


@dataclass(frozen=True)
class AbsentRow:
    """A wanted catalog entry and its journal entry's state and target (None: no journal entry)."""

    path: bytes
    kind: str
    size: int
    first_drive: int
    last_drive: int
    state: str | None
    target: bytes | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> AbsentRow:
        path, kind, size, first, last, state, target = row
        return cls(bytes(path), kind, size, first, last, state, None if target is None else bytes(target))


@dataclass(frozen=True)
class Entry:
    path: bytes
    kind: str
    drive: int
    state: str
    size: int | None
    blake3: str | None
    mode: int | None
    mtime_ns: int | None
    uid: int | None
    gid: int | None
    target: bytes | None
    final_drive: int | None


class Journal:
    """One restore's state. Open with :meth:`open` or :meth:`create`; :meth:`commit` makes changes durable."""

    def __init__(self, dest: str, connection: sqlite3.Connection) -> None:
        self.dest = dest
        self._connection = connection
        #: Entries added and not yet inserted, inserted many to a statement (see :data:`ROWS_PER_STATEMENT`).
        self._pending: list[tuple[Any, ...]] = []
        #: Entries looked up ahead by :meth:`prefetch` (None: no entry), kept up to date by every change.
        self._known: dict[bytes, Entry | None] = {}

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, every added entry inserted: what any statement on it must see. Change the entries
        table through this class's methods only: they keep what :meth:`prefetch` looked up true."""
        if self._pending:
            self._insert_pending()
        return self._connection

    @staticmethod
    def directory(dest: str) -> str:
        return os.path.join(dest, JOURNAL_DIR)

    @classmethod
    def exists(cls, dest: str) -> bool:
        return os.path.exists(os.path.join(cls.directory(dest), JOURNAL_NAME))

    @classmethod
    def open(cls, dest: str) -> Journal:
        path = os.path.join(cls.directory(dest), JOURNAL_NAME)
        _refuse_symlink(path)
        connection = sqlite3.connect(path, isolation_level="DEFERRED")
        journal = cls(dest, _configure(connection))
        version = journal.get("journal_version")
        if version != str(JOURNAL_VERSION):
            connection.close()
            raise ValueError(f"journal version {version}, this sneakernet reads version {JOURNAL_VERSION}")
        return journal

    @classmethod
    def create(cls, dest: str, meta: dict[str, Any]) -> Journal:
        directory = cls.directory(dest)
        os.makedirs(os.path.join(directory, PARTS_DIR), exist_ok=True)
        path = os.path.join(directory, JOURNAL_NAME)
        # Built under a temporary name and renamed: a crash never leaves a half-made journal.
        partial = path + ".partial"
        for stale in (partial, partial + "-journal"):
            # Left by a killed run (or a symlink put there: removed, never followed by SQLite).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        connection = _configure(sqlite3.connect(partial, isolation_level="DEFERRED"))
        connection.executescript(_SCHEMA)
        journal = cls(dest, connection)
        journal.set("journal_version", str(JOURNAL_VERSION))
        for key, value in meta.items():
            journal.set(key, json.dumps(value))
        journal.commit()
        connection.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial + "-journal")
        install(partial, path)  # durable: the copies made before it (the catalog's) are what it says exists
        return cls.open(dest)

    def close(self) -> None:
        self._pending = []  # not committed: a journal closed without commit() keeps none of it
        self._known = {}
        self._connection.close()

    def commit(self) -> None:
        self.db.commit()

    # -- meta --

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def get_json(self, key: str) -> Any:
        value = self.get(key)
        return None if value is None else json.loads(value)

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- drives --

    def drive_state(self, drive: int) -> str | None:
        row = self.db.execute("SELECT state FROM drives WHERE drive = ?", (drive,)).fetchone()
        return row[0] if row else None

    def set_drive(self, drive: int, label: str, manifest_blake3: str, state: DriveState, failed: int = 0) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO drives (drive, label, manifest_blake3, state, failed) VALUES (?, ?, ?, ?, ?)",
            (drive, label, manifest_blake3, state, failed),
        )

    def drives(self) -> dict[int, tuple[str, str, int]]:
        """drive -> (label, state, files that failed on it)"""
        rows = self.db.execute("SELECT drive, label, state, failed FROM drives")
        return {drive: (label, state, failed) for drive, label, state, failed in rows}

    def manifest_of_catalog(self, drive: int) -> str | None:
        """The manifest BLAKE3 the catalog names for ``drive``."""
        manifests: list[str] = self.get_json("manifests") or []
        return manifests[drive - 1] if 1 <= drive <= len(manifests) else None

    # -- entries --

    def prefetch(self, paths: Sequence[bytes]) -> dict[bytes, Entry | None]:
        """Look the entries of ``paths`` up together: :meth:`entry` then answers for them without a statement.

        Each statement lets go of the interpreter lock, and while restore's writer threads are busy, getting it
        back costs several times the statement (measured: 3 us a lookup alone, 18 us beside two threads writing
        files). One statement for hundreds of paths, and the inserts gathered the same way, take that off every
        file. Adds to what earlier calls looked up (drives restored at once each look their window up), all of
        it forgotten once :data:`KNOWN_ENTRIES` would be passed. Returns what it found (None: no entry).
        """
        if len(self._known) + len(paths) > KNOWN_ENTRIES:
            self._known = {}
        found: dict[bytes, Entry | None] = dict.fromkeys(paths)
        db = self.db
        for start in range(0, len(paths), ROWS_PER_STATEMENT):
            part = paths[start : start + ROWS_PER_STATEMENT]
            query = f"SELECT * FROM entries WHERE path IN ({', '.join('?' * len(part))})"
            for row in db.execute(query, part):
                found[bytes(row[0])] = Entry(*row)
        self._known.update(found)
        return found

    def entry(self, path: bytes) -> Entry | None:
        if path in self._known:
            return self._known[path]
        row = self.db.execute("SELECT * FROM entries WHERE path = ?", (path,)).fetchone()
        return Entry(*row) if row else None

    def add_entry(self, entry: Entry) -> None:
        """Add an entry (inserted with the next statement on the journal, or once enough have gathered)."""
        self._pending.append(tuple(entry.__dict__.values()))
        if entry.path in self._known:
            self._known[entry.path] = entry
        if len(self._pending) >= ROWS_PER_STATEMENT:
            self._insert_pending()

    def claim_entry(self, entry: Entry) -> Entry:
        """The entry of ``entry.path``: the one there, else ``entry``, added (in one call: drives restored at once
        may both add the entry of a file spanning them)."""
        existing = self.entry(entry.path)
        if existing is not None:
            return existing
        self.add_entry(entry)
        return entry

    def _insert_pending(self) -> None:
        rows, self._pending = self._pending, []
        for start in range(0, len(rows), _INSERT_ROWS):
            part = rows[start : start + _INSERT_ROWS]
            values = ", ".join([_ENTRY_VALUES] * len(part))
            self._connection.execute(f"INSERT INTO entries VALUES {values}", [v for row in part for v in row])

    def set_final(self, path: bytes, drive: int, size: int, digest: str, meta: tuple[int, int, int, int]) -> None:
        self._known.pop(path, None)
        self.db.execute(
            "UPDATE entries SET size = ?, blake3 = ?, mode = ?, mtime_ns = ?, uid = ?, gid = ?, final_drive = ? "
            "WHERE path = ?",
            (size, digest, *meta, drive, path),
        )

    def set_state(self, path: bytes, state: EntryState) -> None:
        self._known.pop(path, None)
        self.db.execute("UPDATE entries SET state = ? WHERE path = ?", (state, path))

    def set_states(self, paths: list[bytes], state: EntryState) -> None:
        """One statement for many paths (see :meth:`prefetch`)."""
        for path in paths:
            self._known.pop(path, None)
        db = self.db
        for start in range(0, len(paths), ROWS_PER_STATEMENT):
            part = paths[start : start + ROWS_PER_STATEMENT]
            db.execute(f"UPDATE entries SET state = ? WHERE path IN ({', '.join('?' * len(part))})", (state, *part))

    # -- parts --

    def part(self, path: bytes) -> tuple[bytes, int | None, int | None] | None:
        """The part of ``path`` (name, device, inode), or None."""
        self.db.execute(PARTS_SCHEMA)
        row = self.db.execute("SELECT name, dev, ino FROM parts WHERE path = ?", (path,)).fetchone()
        return (bytes(row[0]), row[1], row[2]) if row else None

    def set_parts(self, rows: Sequence[tuple[bytes, bytes, int | None, int | None]]) -> None:
        """Record ``(path, part name, device, inode)`` rows, many to a statement."""
        self.db.execute(PARTS_SCHEMA)
        self.db.executemany("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?)", rows)

    def drop_parts(self, paths: Sequence[bytes]) -> None:
        db = self.db
        db.execute(PARTS_SCHEMA)
        for start in range(0, len(paths), ROWS_PER_STATEMENT):
            part = paths[start : start + ROWS_PER_STATEMENT]
            db.execute(f"DELETE FROM parts WHERE path IN ({', '.join('?' * len(part))})", part)

    def part_names(self) -> frozenset[bytes]:
        """Every part name recorded (as many as files spanning drives in progress, and one batch)."""
        self.db.execute(PARTS_SCHEMA)
        return frozenset(bytes(row[0]) for row in self.db.execute("SELECT name FROM parts"))

    # -- aliases: under --include, the content of a file left out that a wanted hard link needs --

    def make_aliases(self) -> None:
        """Create the aliases table (see :data:`ALIASES_SCHEMA`) if this journal has none yet."""
        for statement in ALIASES_SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)

    def has_aliases(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'aliases'"
        return self.db.execute(query).fetchone() is not None

    def add_alias(self, target: bytes, link: bytes) -> None:
        """``target``'s content is restored under ``link``, unless an earlier link already took it."""
        self.db.execute("INSERT OR IGNORE INTO aliases (target, link) VALUES (?, ?)", (target, link))

    def alias_of(self, target: bytes) -> bytes | None:
        """The link ``target``'s content is restored under, None when it has none."""
        row = self.db.execute("SELECT link FROM aliases WHERE target = ?", (target,)).fetchone()
        return bytes(row[0]) if row else None

    def place_aliases(self, drive: int) -> None:
        """The aliases ``drive``'s hard links just made: which drives carry their content, from the catalog's index
        (built before any drive is restored), and every other drive already restored without that content reopened
        (:attr:`DriveState.REOPENED`): it must be restored again. A link may name a target on an earlier drive, so
        without this the content was never written and the link silently absent."""
        db = self.db
        if db.execute("SELECT 1 FROM aliases WHERE fresh = 1 LIMIT 1").fetchone() is None:
            return
        db.execute(
            "UPDATE aliases SET (first_drive, last_drive, size) = (SELECT first_drive, last_drive, size FROM "
            f"{CatalogIndex.TABLE} AS c WHERE c.path = aliases.target) WHERE first_drive IS NULL AND fresh = 1"
        )
        db.execute(
            "UPDATE drives SET state = ? WHERE state = ? AND drive != ? AND EXISTS (SELECT 1 FROM aliases WHERE "
            "fresh = 1 AND first_drive <= drives.drive AND drives.drive <= last_drive)",
            (DriveState.REOPENED, DriveState.DONE, drive),
        )
        db.execute("UPDATE aliases SET fresh = 0 WHERE fresh = 1")

    def alias_contents(self, paths: list[bytes]) -> dict[bytes, tuple[int, int, int | None]]:
        """``link -> (first drive, last drive, size)`` of the content each of ``paths`` that is an alias's link
        gets, once placed (see :meth:`place_aliases`)."""
        query = "SELECT link, first_drive, last_drive, size FROM aliases WHERE first_drive IS NOT NULL AND link IN "
        rows = self._rows(query + "({})", paths)
        return {link: (first, last, size) for link, (first, last, size) in rows.items()}

    def has_pending_links(self) -> bool:
        query = "SELECT 1 FROM entries WHERE kind = 'hardlink' AND state = ? LIMIT 1"
        return self.db.execute(query, (EntryState.PENDING,)).fetchone() is not None

    def links_waiting_for(self, target: bytes) -> list[bytes]:
        """The hard links pending on ``target`` (its content not installed when they were met)."""
        query = "SELECT path FROM entries WHERE kind = 'hardlink' AND state = ? AND target = ?"
        return [bytes(path) for (path,) in self.db.execute(query, (EntryState.PENDING, target)).fetchall()]

    def add_piece(self, path: bytes, offset: int, length: int, drive: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO pieces VALUES (?, ?, ?, ?)", (path, offset, length, drive))

    def pieces(self, path: bytes) -> list[tuple[int, int, int]]:
        """``(offset, length, drive)`` of every piece of ``path`` recorded, by offset."""
        rows = self.db.execute("SELECT offset, length, drive FROM pieces WHERE path = ? ORDER BY offset", (path,))
        return [(int(o), int(n), int(d)) for o, n, d in rows.fetchall()]

    def piece_bytes(self, path: bytes) -> int:
        row = self.db.execute("SELECT COALESCE(SUM(length), 0) FROM pieces WHERE path = ?", (path,)).fetchone()
        return int(row[0])

    def drop_pieces(self, path: bytes) -> None:
        self.db.execute("DELETE FROM pieces WHERE path = ?", (path,))

    def entries(self, kind: str, state: EntryState | None = None) -> Iterator[Entry]:
        query = "SELECT * FROM entries WHERE kind = ?" + (" AND state = ?" if state else "")
        for row in self.db.execute(query, (kind, state) if state else (kind,)):
            yield Entry(*row)

    def count(self, state: EntryState | None = None, kind: str | None = None) -> int:
        clauses: list[str] = []
        args: list[str] = []
        if state:
            clauses.append("state = ?")
            args.append(state)
        if kind:
            clauses.append("kind = ?")
            args.append(kind)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return int(self.db.execute("SELECT COUNT(*) FROM entries" + where, args).fetchone()[0])

    def failed_paths(self, limit: int) -> list[bytes]:
        query = "SELECT path FROM entries WHERE state = ? ORDER BY path LIMIT ?"
        return [row[0] for row in self.db.execute(query, (EntryState.FAILED, limit))]

    def directories_deepest_first(self) -> list[tuple[bytes, int, int, int, int]]:
        """``(path, mode, mtime_ns, uid, gid)`` of every directory entry, deepest first (then by path)."""
        rows = self.db.execute(
            "SELECT path, mode, mtime_ns, uid, gid FROM entries WHERE kind = 'dir' ORDER BY length(path) DESC, path"
        )
        return [(bytes(path), mode, mtime_ns, uid, gid) for path, mode, mtime_ns, uid, gid in rows.fetchall()]

    def states(self, paths: list[bytes]) -> dict[bytes, tuple[str, bytes | None]]:
        """``path -> (state, hard link target)`` of those of ``paths`` the journal has an entry for."""
        rows = self._rows("SELECT path, state, target FROM entries WHERE path IN ({})", paths)
        return {path: (state, None if target is None else bytes(target)) for path, (state, target) in rows.items()}

    def _rows(self, query: str, paths: list[bytes]) -> dict[bytes, tuple[Any, ...]]:
        """``query`` (with ``{}`` for the placeholders) run for ``paths``: first column -> the others."""
        out: dict[bytes, tuple[Any, ...]] = {}
        for start in range(0, len(paths), ROWS_PER_STATEMENT):
            part = paths[start : start + ROWS_PER_STATEMENT]
            for row in self.db.execute(query.format(", ".join("?" * len(part))), part):
                out[bytes(row[0])] = tuple(row[1:])
        return out

    # -- the catalog's index (validate.CatalogIndex, in this journal's database) --

    def catalog_index(self) -> CatalogIndex:
        """The catalog's entries as indexed in this journal (built once when the restore begins)."""
        return CatalogIndex(self.db)

    def rollback(self) -> None:
        """Forget what was done since the last commit (a catalog index found lying half way through)."""
        self._pending = []
        self._known = {}
        self.db.rollback()

    def absent(self, wants: Callable[[bytes], bool] | None) -> Iterator[list[AbsentRow]]:
        """The catalog's entries (those ``wants``, or all) the journal does not call done, a window at a time
        (memory bounded by the window): set-wise, one join of the catalog's index with the entries. Only for a
        journal whose catalog index is built (see :meth:`CatalogIndex.built`)."""
        db = self.db
        where = "e.state IS NULL OR e.state != ?"
        if wants is not None:
            db.create_function("sneakernet_wants", 1, lambda path: wants(bytes(path)), deterministic=True)
            where = f"({where}) AND sneakernet_wants(c.path)"
        cursor = db.execute(
            "SELECT c.path, c.kind, c.size, c.first_drive, c.last_drive, e.state, e.target "
            f"FROM {CatalogIndex.TABLE} AS c LEFT JOIN entries AS e ON e.path = c.path WHERE {where}",
            (EntryState.DONE,),
        )
        while rows := cursor.fetchmany(ROWS_PER_STATEMENT):
            yield [AbsentRow.of(row) for row in rows]

    # -- names that collide on case-insensitive or normalising filesystems --

    def claim_name(self, parent: bytes, folded: str, path: bytes) -> bytes | None:
        """Record ``path`` under its folded name; return the other path already holding it, if any."""
        row = self.db.execute("SELECT path FROM names WHERE parent = ? AND folded = ?", (parent, folded)).fetchone()
        if row and row[0] != path:
            return bytes(row[0])
        if not row:
            self.db.execute("INSERT INTO names VALUES (?, ?, ?)", (parent, folded, path))
        return None


def _refuse_symlink(path: str) -> None:
    """SQLite opens its files by name, following symlinks: the journal must be a regular file of DEST's own (a
    symlink there would make restore write its state, and SQLite its rollback file, wherever it points)."""
    for name in (path, path + "-journal"):
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{name} is not a regular file (a symlink?): remove it")


def _configure(connection: sqlite3.Connection) -> sqlite3.Connection:
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA journal_mode = TRUNCATE")
    return connection
