"""An encrypted shipment's sealed catalog, ``catalog.age`` (docs/format.md 19.8.3): the full summary and every
entry, sealed to the shipment identity, byte-identical on every drive; the public catalog pins it by a ``sealed``
record, and the fingerprint, over the public catalog's body, pins it through that record.

Written once on the first drive at hand (as ``catalog.age.partial``, fsynced, renamed), then copied atomically to
the others, before the public catalog that pins it (19.10); a crash in between leaves finished drives whose catalog
``pack --resume`` writes again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, BinaryIO

from ..crypto.keys import ShipmentIdentity
from ..errors import FormatError, IntegrityError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    SEALED_CATALOG_NAME,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogSummary,
    DriveLabel,
    EndRecord,
    SealedRecord,
    checksum_lines,
)
from ..format.container import RecordWriter, encode_record
from ..format.fingerprint import body_fingerprint
from ..format.sealed import SealedCatalogHeader
from ..io.atomic import write_error
from ..io.store import DriveStore
from .catalog import copy_between
from .sealed import SealedReader, SealedWriter


def finish_sealed_shipment(
    stores: list[DriveStore],
    labels: list[DriveLabel],
    checksums: list[list[tuple[str, str]]],
    header: CatalogHeader,
    identity: ShipmentIdentity,
    entries: BinaryIO,
    swapped: bool = False,
) -> CatalogHeader:
    """An encrypted shipment's catalogs on every drive at hand (only the last when drives were swapped at one
    mount point), then each drive's B3SUMS with both: ``catalog.age`` first (``header``'s full summary, the
    spooled entry lines ``entries``), then the public catalog (its header, a summary of counts only, the drive
    records, the ``sealed`` record of ``catalog.age``, the end record), whose body the fingerprint hashes
    (docs/format.md 19.6). Returns ``header`` with that fingerprint."""
    present = list(zip(stores, checksums, strict=True))
    if swapped:
        present = present[-1:]
    at_hand = [store for store, _ in present]
    try:
        entries.seek(0)
        sealed = write_sealed_catalog(at_hand, identity, header.shipment, header.summary(), entries)
        body = [encode_record(header.summary(encrypted=True).to_json())]
        for label in labels:
            drive = CatalogDrive(
                label.drive, label.label, label.manifest_size, label.manifest_blake3, label.stored_bytes,
                label.lane, label.lane_seq,
            )  # fmt: skip
            body.append(encode_record(drive.to_json()))
        body.append(encode_record(sealed.to_json()))
        body.append(encode_record(EndRecord(len(body) + 2).to_json()))
        header = replace(header, fingerprint=body_fingerprint(body))
        digest = _write_public_catalog(at_hand, header, body)
        for store, sums in present:
            lines = checksum_lines([*sums, (SEALED_CATALOG_NAME, sealed.blake3), (CATALOG_NAME, digest)])
            try:
                store.write_atomic(CHECKSUMS_NAME, (lines,))
            except OSError as exc:
                exc.filename = store.path
                raise
    except OSError as exc:
        where = exc.filename or (at_hand[0].path if at_hand else "the drives")
        raise write_error(
            exc,
            f"no room left to write the catalog at {where} ({exc.strerror}): every drive is finished and "
            "checkable; free some space and run the same pack with --resume to add the catalog",
            f"cannot write the catalog at {where}: {exc.strerror}",
        ) from exc
    return header


def _write_public_catalog(stores: list[DriveStore], header: CatalogHeader, body: list[bytes]) -> str:
    """The public catalog (``header`` and the ``body`` lines) on the first drive of ``stores`` (as a .partial,
    fsynced, renamed), copied to the others; its BLAKE3."""
    target = stores[0].create(CATALOG_NAME)
    try:
        writer = RecordWriter(target)
        writer.write(header.to_json())
        for line in body:
            writer.write_line(line)
        _, digest = writer.close()
        target.commit()
    except BaseException:
        target.abort()
        raise
    for store in stores[1:]:
        copy_between(stores[0], store, CATALOG_NAME)
    return digest


def write_sealed_catalog(
    stores: list[DriveStore],
    identity: ShipmentIdentity,
    shipment: str,
    summary: CatalogSummary,
    entries: Iterable[bytes],
) -> SealedRecord:
    """``catalog.age`` on every drive of ``stores``: its header, ``summary`` (with the totals), the entry lines
    ``entries`` (as the catalog's, each ending in ``\\n``) and the end record. Returns its ``sealed`` record. A
    .partial left by a killed pack is written over."""
    writer = SealedWriter(stores[0], SEALED_CATALOG_NAME, identity)
    try:
        writer.write(SealedCatalogHeader(shipment).to_json())
        writer.write(summary.to_json())
        for line in entries:
            writer.write_line(line)
        writer.write(EndRecord(writer.records + 1).to_json())
        record = writer.close()
    except BaseException:
        writer.abort()
        raise
    for store in stores[1:]:
        copy_between(stores[0], store, SEALED_CATALOG_NAME)
    return record


def read_sealed_catalog(
    store: DriveStore, identity: ShipmentIdentity, pinned: SealedRecord, shipment: str
) -> Iterator[CatalogSummary | CatalogEntry]:
    """The full summary, then every entry, of the sealed catalog of the drive ``store``, opened with ``identity``;
    once read to its end, its size and BLAKE3 must be ``pinned``'s (the public catalog's ``sealed`` record) and its
    header must name ``shipment``. FormatError (or IntegrityError, AuthenticationFailed) otherwise."""
    sealed = SealedCatalog(store, SEALED_CATALOG_NAME, identity, shipment)
    yield sealed.summary()
    yield from sealed.entries()
    sealed.check(pinned)


class SealedCatalog:
    """One pass over a sealed catalog (``name`` in ``store``, opened with ``identity``): :meth:`summary` first, then
    :meth:`entries`, then :meth:`check` against the public catalog's ``sealed`` record, which a reader of the public
    catalog meets only after its drive records (so the summary's totals are known before the drive records are
    yielded, and the file is read once)."""

    def __init__(self, store: DriveStore, name: str, identity: ShipmentIdentity, shipment: str) -> None:
        self.what = f"the sealed catalog of {store.path}"
        self.shipment = shipment
        self._reader = SealedReader(store, name, identity, self.what)
        self._records = self._reader.records()
        self._count = 1
        self._ended = False

    def summary(self) -> CatalogSummary:
        """The full summary (with the totals), after checking the header names the shipment."""
        first: dict[str, Any] | None = next(self._records, {})
        header = SealedCatalogHeader.from_json(first or {})
        if header.shipment != self.shipment:
            raise FormatError(f"{self.what} belongs to another shipment")
        raw = next(self._records, None) or {}
        self._count += 1
        if raw.get("type") != CatalogSummary.TYPE:
            raise FormatError(f"{self.what} has no summary after its header")
        summary = CatalogSummary.from_json(raw)
        if summary.files is None:
            raise FormatError(f"{self.what} has a summary without its totals")
        return summary

    def entries(self) -> Iterator[CatalogEntry]:
        """Every entry, through the end record (its count checked)."""
        for raw in self._records:
            self._count += 1
            assert raw is not None  # read without a filter
            if self._ended:
                raise FormatError(f"{self.what} has records after its end record")
            kind = raw.get("type")
            if kind == CatalogEntry.TYPE:
                yield CatalogEntry.from_v2(raw)
            elif kind == EndRecord.TYPE:
                if EndRecord.from_json(raw).records != self._count:
                    raise FormatError(f"{self.what} has {self._count} records, its end record says otherwise")
                self._ended = True
            else:
                raise FormatError(
                    f"{self.what} line {self._count}: a {str(kind)[:40]!r} record has no place in a sealed catalog"
                )
        if not self._ended:
            raise FormatError(f"{self.what} is cut short: it has no end record")

    def check(self, pinned: SealedRecord) -> None:
        """The file read whole is the one ``pinned`` names (size and BLAKE3)."""
        if not self._ended:
            for _ in self.entries():
                pass
        if (self._reader.size, self._reader.blake3) != (pinned.size, pinned.blake3):
            raise IntegrityError(f"{self.what} does not match the BLAKE3 its public catalog gives")

    def close(self) -> None:
        """Stop reading (the age stream's thread let go) when the pass ends early."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()


def unsealed_records(
    reader: Any, header: CatalogHeader, public: Iterator[Any], wanted: tuple[str, ...] | None
) -> Iterator[Any]:
    """An encrypted shipment's public catalog read with its identity (docs/format.md 19.8.3), for ``reader`` (a
    :class:`~sneakernet.drive.CatalogReader`, not imported: it imports this module) whose ``public`` records follow
    ``header``: the sealed catalog's full summary in place of the public one, its entries in place of the
    ``sealed`` record that pins it (checked against it once read whole), as a clear catalog gives them; of
    ``wanted`` types only, when given (the end record always)."""
    store, name = reader.sealed_file
    sealed = SealedCatalog(store, name, reader.identity, header.shipment)
    try:
        summary = sealed.summary()
        yield header.with_summary(summary)
        yield summary
        for record in public:
            if isinstance(record, SealedRecord):
                reader.sealed = record
                if record.name != SEALED_CATALOG_NAME:
                    raise FormatError(f"the catalog {reader.path} pins {record.name!r}, not {SEALED_CATALOG_NAME}")
                for entry in sealed.entries():
                    if wanted is None or CatalogEntry.TYPE in wanted:
                        yield entry
                sealed.check(record)
            elif wanted is None or record.TYPE in wanted or isinstance(record, EndRecord):
                yield record
    finally:
        sealed.close()
