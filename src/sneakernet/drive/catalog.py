"""The shipment's catalog, written to every drive once all of them are finished, and the final B3SUMS that
covers it (docs/format.md, "Write order", step 5).

The catalog is written whole as ``catalog.jsonl.zst.partial`` on the first drive at hand, renamed, then copied
atomically to the others; each drive's B3SUMS is then replaced by one that names the catalog too. A crash before
the end leaves every drive finished and checkable, and ``pack --resume`` writes the catalog again.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

from ..errors import DestinationError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    PARTIAL_SUFFIX,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    DirRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    HardlinkRecord,
    SymlinkRecord,
)
from ..format.checksums import checksum_lines
from ..format.container import RecordWriter
from ..io.atomic import copy_atomic, install, write_atomic, write_error


def catalog_entry(record: object, drive: int, first_drive: dict[bytes, int]) -> CatalogEntry | None:
    """The catalog's entry for a manifest ``record`` written on ``drive`` (None: the record has none).
    ``first_drive`` remembers the first drive of each file whose pieces span drives until its final record."""
    if isinstance(record, FileRecord):
        if not record.final:
            first_drive.setdefault(record.path, drive)
            return None
        assert record.size is not None
        return CatalogEntry(record.path, "file", record.size, first_drive.pop(record.path, drive), drive)
    if isinstance(record, DirRecord):
        return CatalogEntry(record.path, "dir", 0, drive, drive)
    if isinstance(record, SymlinkRecord):
        return CatalogEntry(record.path, "symlink", len(record.target), drive, drive)
    if isinstance(record, HardlinkRecord):
        return CatalogEntry(record.path, "hardlink", 0, drive, drive)
    return None


def write_catalog(
    paths: list[str], labels: list[DriveLabel], header: CatalogHeader, bound: int, lines: BinaryIO
) -> str:
    """Write the catalog (``header``, the drives of ``labels``, then the spooled entry ``lines``) to every drive
    of ``paths``; return its BLAKE3."""
    first = os.path.join(paths[0], CATALOG_NAME)
    # A pack killed while it wrote the catalog leaves this .partial behind (its drives all finished): the resumed
    # pack writes the catalog again from the start, and RecordWriter, like every writer of a drive, refuses to
    # open a file that exists.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(first + PARTIAL_SUFFIX)
    writer = RecordWriter(first + PARTIAL_SUFFIX)
    writer.write(header.to_json())
    for label in labels:
        drive = CatalogDrive(label.drive, label.label, label.manifest_size, label.manifest_blake3, label.stored_bytes)
        writer.write(drive.to_json())
    lines.seek(0)
    for line in lines:
        writer.write_line(line)
    writer.write(EndRecord(writer.records + 1).to_json())
    size, digest = writer.close()
    if size > bound:
        raise AssertionError(f"catalog of {size} bytes exceeds the {bound} bytes reserved for it")
    install(first + PARTIAL_SUFFIX, first)
    for path in paths[1:]:
        target = os.path.join(path, CATALOG_NAME)
        try:
            with open(first, "rb") as original:
                copy_atomic(original, target)
        except OSError as exc:
            exc.filename = target  # the message names the drive whose copy failed, not the source
            raise
    return digest


def finish_shipment(
    paths: list[str],
    labels: list[DriveLabel],
    checksums: list[list[tuple[str, str]]],
    header: CatalogHeader,
    bound: int,
    lines: BinaryIO,
    swapped: bool = False,
) -> None:
    """Write the catalog to every drive still at hand (only the last when drives were swapped at one mount point),
    then replace its B3SUMS (``checksums``: each drive's entries) by one that covers the catalog too."""
    present = list(zip(paths, checksums, strict=True))
    if swapped:
        present = present[-1:]
    try:
        catalog_digest = write_catalog([path for path, _ in present], labels, header, bound, lines)
        for path, sums in present:
            write_atomic(os.path.join(path, CHECKSUMS_NAME), checksum_lines([*sums, (CATALOG_NAME, catalog_digest)]))
    except OSError as exc:
        where = exc.filename or (present[0][0] if present else "the drives")
        raise write_error(
            exc,
            f"no room left to write the catalog at {where} ({exc.strerror}): every drive is finished and "
            "checkable; free some space and run the same pack with --resume to add the catalog",
            f"cannot write the catalog at {where}: {exc.strerror}",
        ) from exc


def copy_catalog(drive: str, target: str) -> None:
    """The sender's copy of the catalog of ``drive`` at ``target`` (written whole, then renamed)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        with open(os.path.join(drive, CATALOG_NAME), "rb") as original:
            copy_atomic(original, target)
    except OSError as exc:
        raise DestinationError(f"cannot keep a copy of the catalog at {target}: {exc.strerror}") from exc
