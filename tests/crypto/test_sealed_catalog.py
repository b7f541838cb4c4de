"""catalog.age (docs/format.md 19.8.3, drive/sealed_catalog.py): the full summary and every entry, sealed, the
same bytes on every drive, read back only with the shipment identity and only as its public record pins it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.drive.sealed_catalog import read_sealed_catalog, write_sealed_catalog
from sneakernet.errors import AuthenticationFailed, FormatError, IntegrityError
from sneakernet.format import SEALED_CATALOG_NAME, CatalogEntry, CatalogSummary
from sneakernet.io.store import LocalStore

SHIPMENT = "0123456789abcdef0123456789abcdef"
ENTRIES = [CatalogEntry(b"secret/file-%d" % n, "file", n * 10, 1 + n % 3, 1 + n % 3, 1) for n in range(5000)]
SUMMARY = CatalogSummary(drives=3, lanes=3, files=5000, raw_bytes=123, stored_bytes=456)


def written(tmp_path: Path, identity: ShipmentIdentity):
    drives = [tmp_path / f"drive-{n:04d}" for n in (1, 2, 3)]
    for drive in drives:
        drive.mkdir()
    pinned = write_sealed_catalog(
        [LocalStore(d) for d in drives], identity, SHIPMENT, SUMMARY, (e.to_line() for e in ENTRIES)
    )
    return drives, pinned


def test_the_sealed_catalog_is_on_every_drive_and_reads_back(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    drives, pinned = written(tmp_path, identity)
    copies = {(d / SEALED_CATALOG_NAME).read_bytes() for d in drives}
    assert len(copies) == 1 and pinned.size == len(next(iter(copies)))
    assert b"secret/" not in next(iter(copies))
    records = list(read_sealed_catalog(LocalStore(drives[1]), identity, pinned, SHIPMENT))
    assert records == [SUMMARY, *[dataclasses.replace(e) for e in ENTRIES]]


def test_a_sealed_catalog_not_as_pinned_or_not_this_shipments_is_refused(tmp_path: Path) -> None:
    identity = ShipmentIdentity.generate()
    drives, pinned = written(tmp_path, identity)
    path = LocalStore(drives[0])
    with pytest.raises(IntegrityError, match="does not match the BLAKE3"):
        list(read_sealed_catalog(path, identity, dataclasses.replace(pinned, blake3="0" * 64), SHIPMENT))
    with pytest.raises(FormatError, match="another shipment"):
        list(read_sealed_catalog(path, identity, pinned, "f" * 32))
    with pytest.raises(AuthenticationFailed):
        list(read_sealed_catalog(path, ShipmentIdentity.generate(), pinned, SHIPMENT))
    data = bytearray((drives[0] / SEALED_CATALOG_NAME).read_bytes())
    data[len(data) // 2] ^= 4
    (drives[0] / SEALED_CATALOG_NAME).write_bytes(bytes(data))
    with pytest.raises(FormatError):
        list(read_sealed_catalog(path, identity, pinned, SHIPMENT))
