"""The shipment's catalog, written to every drive once all of them are finished, and the final B3SUMS that
covers it (docs/format.md, "Write order", step 5).

The catalog is written whole as ``catalog.jsonl.zst.partial`` on the first drive at hand, renamed, then copied
atomically to the others; each drive's B3SUMS is then replaced by one that names the catalog too. A crash before
the end leaves every drive finished and checkable, and ``pack --resume`` writes the catalog again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ..errors import DestinationError, SneakernetError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    SEALED_CATALOG_NAME,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogParity,
    DirRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    HardlinkRecord,
    SymlinkRecord,
)
from ..format.checksums import checksum_lines
from ..format.container import RecordWriter, encode_record
from ..io.atomic import COPY_BLOCK, copy_atomic, write_error
from ..io.store import DriveStore


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


def catalog_body(
    header: CatalogHeader, labels: list[DriveLabel], lines: BinaryIO, parity: Sequence[CatalogParity] = ()
) -> Iterator[bytes]:
    """The catalog's lines after its header, the end record included: version 2's summary (docs/format.md 19.5),
    a drive record per label, version 2's ``parity`` records, the spooled entry ``lines`` (read from their start),
    the end record. Version 2's fingerprint is the hash of these lines but the parity records
    (:func:`~sneakernet.format.body_fingerprint`), so the writer reads them twice: once to hash them, once to write
    them after the header that holds the hash."""
    records = 1  # the header
    if header.version >= 2:
        records += 1
        yield encode_record(header.summary().to_json())
    for label in labels:
        drive = CatalogDrive(
            label.drive, label.label, label.manifest_size, label.manifest_blake3, label.stored_bytes,
            lane=label.lane, lane_seq=label.lane_seq,
        )  # fmt: skip
        records += 1
        yield encode_record(drive.to_json())
    for record in parity:
        records += 1
        yield encode_record(record.to_json())
    lines.seek(0)
    for line in lines:
        records += 1
        yield line
    yield encode_record(EndRecord(records + 1).to_json())


def write_catalog(
    stores: list[DriveStore], labels: list[DriveLabel], header: CatalogHeader, bound: int, lines: BinaryIO
) -> str:
    """Write the catalog (``header``, the drives of ``labels``, then the spooled entry ``lines``) to every drive
    of ``stores``; return its BLAKE3. An OSError names (``filename``) the drive whose write failed."""
    first = stores[0]
    try:
        # A pack killed while it wrote the catalog leaves its .partial behind (its drives all finished): the
        # resumed pack writes the catalog again from the start, over it.
        target = first.create(CATALOG_NAME)
        try:
            writer = RecordWriter(target)
            writer.write(header.to_json())
            for line in catalog_body(header, labels, lines):
                writer.write_line(line)
            size, digest = writer.close()
            if size > bound:
                raise AssertionError(f"catalog of {size} bytes exceeds the {bound} bytes reserved for it")
            target.commit()
        except BaseException:
            target.abort()
            raise
    except OSError as exc:
        exc.filename = exc.filename or first.path
        raise
    for store in stores[1:]:
        copy_between(first, store, CATALOG_NAME)
    return digest


def copy_between(source: DriveStore, target: DriveStore, name: str) -> None:
    """Copy file ``name`` of drive ``source`` to drive ``target``, atomically; an OSError names (``filename``) the
    drive whose read or write failed."""
    try:
        original = source.open(name)
    except OSError as exc:
        exc.filename = source.path
        raise
    with original:
        try:
            target.write_atomic(name, _blocks(original, source.path))
        except OSError as exc:
            exc.filename = exc.filename if exc.filename == source.path else target.path
            raise


def _blocks(handle: BinaryIO, where: str) -> Iterator[bytes]:
    """``handle``'s bytes a block at a time; a read error names ``where``."""
    while True:
        try:
            data = handle.read(COPY_BLOCK)
        except OSError as exc:
            exc.filename = where
            raise
        if not data:
            return
        yield data


def finish_shipment(
    stores: list[DriveStore],
    labels: list[DriveLabel],
    checksums: list[list[tuple[str, str]]],
    header: CatalogHeader,
    bound: int,
    lines: BinaryIO,
    swapped: bool = False,
) -> None:
    """Write the catalog to every drive still at hand (only the last when drives were swapped at one mount point),
    then replace its B3SUMS (``checksums``: each drive's entries) by one that covers the catalog too."""
    present = list(zip(stores, checksums, strict=True))
    if swapped:
        present = present[-1:]
    try:
        catalog_digest = write_catalog([store for store, _ in present], labels, header, bound, lines)
        for store, sums in present:
            _write_checksums(store, sums, catalog_digest)
    except OSError as exc:
        raise _catalog_error(exc, present[0][0].path if present else "the drives") from exc


def install_catalog(
    source: DriveStore, stores: list[DriveStore], checksums: list[list[tuple[str, str]]], digest: str
) -> None:
    """Copy the catalog already written on ``source`` (BLAKE3 ``digest``) to every drive of ``stores``, each then
    given a B3SUMS (``checksums``: its entries) that covers the catalog too: a cluster pack's hosts each put on
    their own drives the catalog the client wrote (packer/cluster.py)."""
    try:
        for store, sums in zip(stores, checksums, strict=True):
            copy_between(source, store, CATALOG_NAME)
            _write_checksums(store, sums, digest)
    except OSError as exc:
        raise _catalog_error(exc, stores[0].path if stores else "the drives") from exc


def _write_checksums(store: DriveStore, sums: list[tuple[str, str]], catalog_digest: str) -> None:
    """The drive's final B3SUMS: its entries ``sums`` and the catalog; an OSError names the drive."""
    try:
        store.write_atomic(CHECKSUMS_NAME, (checksum_lines([*sums, (CATALOG_NAME, catalog_digest)]),))
    except OSError as exc:
        exc.filename = store.path
        raise


def _catalog_error(exc: OSError, where: str) -> SneakernetError:
    """A failed write of the catalog or B3SUMS as the error the user reads (``where``: the drive, unless the error
    names one)."""
    where = exc.filename or where
    return write_error(
        exc,
        f"no room left to write the catalog at {where} ({exc.strerror}): every drive is finished and "
        "checkable; free some space and run the same pack with --resume to add the catalog",
        f"cannot write the catalog at {where}: {exc.strerror}",
    )


def copy_catalog(drive: DriveStore, target: str) -> None:
    """The sender's copy of the catalog of ``drive`` at ``target``, a local path off the drives (written whole,
    then renamed)."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        with drive.open(CATALOG_NAME) as original:
            copy_atomic(original, target)
        if drive.stat(SEALED_CATALOG_NAME) is not None:
            # An encrypted shipment's entries: its sealed catalog, beside the copy as X.catalog.age (still sealed).
            with drive.open(SEALED_CATALOG_NAME) as original:
                copy_atomic(original, target.removesuffix(".jsonl.zst") + ".age")
    except OSError as exc:
        raise DestinationError(f"cannot keep a copy of the catalog at {target}: {exc.strerror}") from exc
