"""Scanning a source once before packing it: totals for planning and progress, the problems found, and a spool of
the entries (:class:`ScanSpool`, a temporary file) so that pack can read them twice without holding them.

The walk itself is the source's (io/source.py).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .errors import SourceError
from .format import is_reserved, show_path
from .io.remote import open_source
from .io.source import KIND_DIR, KIND_FILE, KIND_SPECIAL, Excluded, Source, SourceEntry, Unreadable
from .patterns import Excluder, exclude_lines
from .space.budget import catalog_entry_bound

#: Entries per pickle in the scan spool: about 100 KB each.
SPOOL_BATCH = 1024


def read_exclude_file(path: str) -> list[str]:
    """The patterns of an exclude file (``--exclude-from``), read as git reads a ``.gitignore``
    (:func:`patterns.exclude_lines`)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SourceError(f"cannot read exclude file {path}: {exc.strerror}") from exc
    return exclude_lines(data)


@dataclass
class ScanTotals:
    """What the first pass learned: counts for planning and progress, and the problems found."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    data_bytes: int = 0
    #: Bytes of files that are further hard links of an inode already counted: no data of their own to pack.
    linked_bytes: int = 0
    excluded_entries: int = 0
    excluded_bytes: int = 0
    #: Bound of the catalog's entry lines, which every drive must make room for.
    catalog_entry_bytes: int = 0
    specials: list[bytes] = field(default_factory=list)
    unreadable: list[bytes] = field(default_factory=list)
    #: Top-level entries with the name restore reserves (:func:`~sneakernet.format.is_reserved`): pack refuses them.
    reserved: list[bytes] = field(default_factory=list)

    def add(self, entry: SourceEntry) -> None:
        if entry.kind == KIND_FILE:
            self.files += 1
            self.data_bytes += entry.size
        elif entry.kind == KIND_DIR:
            self.dirs += 1
        else:
            self.symlinks += 1
        self.catalog_entry_bytes += catalog_entry_bound(entry.path)

    @property
    def unique_bytes(self) -> int:
        """The bytes pack reads and stores: every file's, a hard-linked inode's once."""
        return self.data_bytes - self.linked_bytes

    @property
    def entries(self) -> int:
        return self.files + self.dirs + self.symlinks


class ScanSpool:
    """The scanned entries (and the unreadable ones) in a temporary file, in walk order, for pack to read back.

    Entries are pickled as plain tuples in batches of :data:`SPOOL_BATCH`: a named tuple pickles by a reference to
    its class, five times slower to write and read back, and one pickle per entry costs a frame each. Each batch is
    a pickle of its own, so no Unpickler's memo outlives a batch and memory stays bounded by one batch.
    """

    def __init__(self, path: str | None = None) -> None:
        #: At ``path`` when given (a pack's lanes read it back from their own processes), else anonymous.
        self.path = path
        self._file: BinaryIO = (
            open(path, "x+b") if path else tempfile.TemporaryFile(prefix="sneakernet-scan-")  # noqa: SIM115
        )
        self._batch: list[tuple[Any, ...]] = []

    def add(self, entry: SourceEntry | Unreadable) -> None:
        # An Unreadable is the only two-field tuple in the spool.
        self._batch.append(tuple(entry) if isinstance(entry, SourceEntry) else (entry.path, entry.reason))
        if len(self._batch) >= SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def entries(self) -> Iterator[SourceEntry | Unreadable]:
        self._flush()
        self._file.flush()
        self._file.seek(0)
        return _spooled(self._file)

    def sync(self) -> None:
        """Every entry added so far in the file, for another process to read (:func:`read_spool`)."""
        self._flush()
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _spooled(file: BinaryIO) -> Iterator[SourceEntry | Unreadable]:
    make = SourceEntry._make
    while True:
        try:
            batch = pickle.load(file)
        except EOFError:
            return
        for fields in batch:
            yield make(fields) if len(fields) != 2 else Unreadable(*fields)


def read_spool(path: str) -> Iterator[SourceEntry | Unreadable]:
    """The entries of the spool a scan wrote at ``path`` (``scan(..., spool_path=path)``), in walk order."""
    with open(path, "rb") as file:
        yield from _spooled(file)


def scan(
    root: str | os.PathLike[str] | Source, excludes: Sequence[str] = (), spool_path: str | None = None
) -> tuple[ScanTotals, ScanSpool]:
    """Walk ``root`` (a directory, or a source) once: totals, problems (special files, unreadable entries) and a
    spool of the entries (at ``spool_path`` when given, a new file).

    Raises :class:`SourceError` when ``root`` is missing or not a directory.
    """
    source = open_source(root)
    entries = source.walk(Excluder(excludes) if excludes else None)  # raises before any spool is made
    totals = ScanTotals()
    spool = ScanSpool(spool_path)
    linked: set[tuple[int, int]] = set()
    for item in entries:
        if isinstance(item, Excluded):
            totals.excluded_entries += 1
            totals.excluded_bytes += item.entry.size
            continue
        if b"/" not in item.path and is_reserved(item.path):
            totals.reserved.append(item.path)
        if isinstance(item, Unreadable):
            totals.unreadable.append(item.path)
            spool.add(item)
        elif item.kind == KIND_SPECIAL:
            totals.specials.append(item.path)
            spool.add(item)
        elif item.kind == KIND_FILE and not source.readable(item.path):
            totals.unreadable.append(item.path)
            spool.add(Unreadable(item.path, "permission denied"))
        else:
            totals.add(item)
            spool.add(item)
            if item.nlink > 1 and item.kind == KIND_FILE:
                if (item.dev, item.ino) in linked:
                    totals.linked_bytes += item.size
                else:
                    linked.add((item.dev, item.ino))
    return totals, spool


def describe(paths: Sequence[bytes], limit: int = 5) -> str:
    """Up to ``limit`` paths for a one-line message, with a count of the rest."""
    shown = ", ".join(show_path(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
