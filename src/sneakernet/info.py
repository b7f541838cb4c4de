"""Looking at a drive without changing anything: ``sneakernet.info()`` and ``sneakernet.ls()``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .drive import DriveReader
from .errors import NotADrive, UsageError
from .format import CATALOG_NAME, CatalogDrive, CatalogEntry, CatalogHeader, LaneTable, short_fingerprint, show_path
from .output import versioned

if TYPE_CHECKING:
    from .drive.keys import Unlock


@dataclass
class DriveInfo:
    """A drive's label and, when it carries the catalog, the shipment's totals and fingerprint."""

    path: str
    shipment: str
    drive: int
    label: str
    created: str
    tool: str
    segments: int
    stored_bytes: int
    raw_bytes: int
    drives: int | None = None
    fingerprint: str | None = None
    files: int | None = None
    shipment_raw_bytes: int | None = None
    shipment_stored_bytes: int | None = None
    #: Format version 2 (docs/format.md 19.3): the format version, the drive's lane and its place in it (None in 1),
    #: and the shipment's number of lanes, from the catalog.
    version: int = 1
    lane: int | None = None
    lane_seq: int | None = None
    lanes: int | None = None
    #: Whether the shipment is encrypted (docs/format.md 19.8); without its key, the totals are unknown (None).
    encrypted: bool = False

    def to_json(self) -> dict[str, Any]:
        out = versioned(self.__dict__)
        out["short_fingerprint"] = short_fingerprint(self.fingerprint) if self.fingerprint else None
        return out


def info(drive: str, key: Unlock | None = None) -> DriveInfo:
    """What ``drive`` is: read from drive.json and the catalog's header (nothing else is read). An encrypted
    drive says what it shows without its key (docs/format.md 19.8.5); with ``key``, the shipment's totals too."""
    reader = _one_drive(drive, key, public=key is None)
    label = reader.label
    result = DriveInfo(
        drive, label.shipment, label.drive, label.label, label.created, label.tool, label.segments,
        label.stored_bytes, label.raw_bytes, version=label.version, lane=label.lane, lane_seq=label.lane_seq,
        encrypted=label.encrypted,
    )  # fmt: skip
    header = catalog_header(reader)
    if header is not None:
        result.drives, result.fingerprint, result.files = header.drives, header.fingerprint, header.files
        result.shipment_raw_bytes, result.shipment_stored_bytes = header.raw_bytes, header.stored_bytes
        result.lanes = header.lanes
    if label.encrypted and reader.identity is None:
        result.files = result.shipment_raw_bytes = result.shipment_stored_bytes = None
    return result


def _one_drive(drive: str, key: Unlock | None = None, public: bool = False) -> DriveReader:
    """The drive ``drive``; for pack's --out directory, which holds drives, the advice is to give one of them (info and
    ls take one drive, not the ``drive-*`` that verify and restore take)."""
    try:
        return DriveReader(drive, key=key, public=public)
    except NotADrive as exc:
        if not exc.drives:
            raise
        shown = ", ".join(exc.drives[:3]) + (", ..." if len(exc.drives) > 3 else "")
        raise NotADrive(
            f"{drive} is not a drive but holds drives ({shown}): give one of them, e.g. "
            f"{os.path.join(drive, exc.drives[0])}"
        ) from None


def catalog_header(reader: DriveReader) -> CatalogHeader | None:
    if reader.stat(CATALOG_NAME) is None:
        return None
    records = reader.catalog().records(only=())
    try:
        first = next(records, None)
    finally:
        getattr(records, "close", lambda: None)()  # a generator: an encrypted one's sealed catalog let go
    return first if isinstance(first, CatalogHeader) else None


@dataclass(frozen=True)
class ListedEntry:
    path: str
    kind: str
    size: int
    first_drive: int
    last_drive: int
    #: The drives holding the path's pieces, in order: first_drive ... last_drive in version 1; in version 2 the
    #: drives of one lane (docs/format.md 19.4), which need not be every number between.
    drives: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return versioned({**self.__dict__, "drives": list(self.drives)})


def ls(drive: str, key: Unlock | None = None) -> Iterator[ListedEntry]:
    """Every path of the shipment, from the catalog ``drive`` carries, with its size and the drives holding it
    (an encrypted shipment's with its ``key``: its sealed catalog)."""
    reader = _one_drive(drive, key)
    if reader.stat(CATALOG_NAME) is None:
        raise UsageError(
            f"{drive} carries no catalog: either the pack that wrote it has not finished (the catalog goes on the "
            "drives at the very end: run the same pack with --resume), or it is one of the first drives of a --swap "
            "pack, where only the last drive carries it: ls that one"
        )
    lanes = LaneTable()  # the drive records come before the entries
    for record in reader.catalog().records():
        if isinstance(record, CatalogDrive):
            lanes.add(record.drive, record.lane or 1, record.lane_seq or record.drive)
        elif isinstance(record, CatalogEntry):
            drives = lanes.chain(record.first_drive, record.pieces) if record.pieces else None
            yield ListedEntry(
                show_path(record.path), record.kind, record.size, record.first_drive, record.last_drive,
                tuple(drives or range(record.first_drive, record.last_drive + 1)),
            )  # fmt: skip
