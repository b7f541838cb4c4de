"""The three records that state a file's format and version (drive.json, the manifest's header, the catalog's
header) and the one place a reader dispatches on that version (:data:`READERS`, docs/format.md sections 2 and 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import FormatError, UnsupportedVersion
from .catalog import CatalogDrive, CatalogEntry, catalog_record_from_json
from .fields import check, hex_digest, natural, typed
from .names import CATALOG_FORMAT, DRIVE_LABEL_FORMAT, DRIVE_LABEL_NAME, FORMAT_VERSION, MANIFEST_FORMAT, MAX_CHUNK_SIZE
from .records import BodyRecord, EndRecord, manifest_record_from_json


@dataclass(frozen=True)
class ManifestHeader:
    """First line of a manifest: which shipment and drive, and the parameters it was packed with."""

    shipment: str
    drive: int
    created: str
    chunk_size: int
    segment_size: int
    tool: str
    version: int = FORMAT_VERSION
    #: The zstd level pack used: a resumed pack must use the same one to give the same chunks (optional).
    level: int | None = None
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        out = {"type": self.TYPE, "format": MANIFEST_FORMAT, **vars(self)}
        if self.level is None:
            del out["level"]
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ManifestHeader:
        if raw.get("type") != cls.TYPE:
            raise FormatError("the manifest does not start with its header record")
        return version_reader(raw, MANIFEST_FORMAT, "manifest").manifest_header(raw)

    @classmethod
    def from_v1(cls, raw: dict[str, Any]) -> ManifestHeader:
        """A version 1 manifest header (its ``format`` and ``version`` already checked)."""
        problems: list[str] = []
        header = cls(
            shipment=typed(raw, "shipment", str, problems),
            drive=natural(raw, "drive", problems),
            created=typed(raw, "created", str, problems),
            chunk_size=natural(raw, "chunk_size", problems),
            segment_size=natural(raw, "segment_size", problems),
            tool=typed(raw, "tool", str, problems),
            level=typed(raw, "level", int, problems) if "level" in raw else None,
        )
        if header.chunk_size > MAX_CHUNK_SIZE:
            problems.append(f"chunk_size above the limit of {MAX_CHUNK_SIZE}")
        check("manifest header", problems)
        return header


@dataclass(frozen=True)
class DriveLabel:
    """drive.json: written last, so its presence means the drive was finished.

    It names the shipment and the drive and pins the manifest by size and BLAKE3.
    """

    shipment: str
    drive: int
    label: str
    created: str
    tool: str
    manifest_size: int
    manifest_blake3: str
    segments: int
    stored_bytes: int
    raw_bytes: int
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"format": DRIVE_LABEL_FORMAT, **vars(self)}

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DriveLabel:
        return version_reader(raw, DRIVE_LABEL_FORMAT, DRIVE_LABEL_NAME).label(raw)

    @classmethod
    def from_v1(cls, raw: dict[str, Any]) -> DriveLabel:
        """A version 1 drive.json (its ``format`` and ``version`` already checked)."""
        problems: list[str] = []
        label = cls(
            shipment=typed(raw, "shipment", str, problems),
            drive=natural(raw, "drive", problems),
            label=typed(raw, "label", str, problems),
            created=typed(raw, "created", str, problems),
            tool=typed(raw, "tool", str, problems),
            manifest_size=natural(raw, "manifest_size", problems),
            manifest_blake3=hex_digest(raw, "manifest_blake3", problems),
            segments=natural(raw, "segments", problems),
            stored_bytes=natural(raw, "stored_bytes", problems),
            raw_bytes=natural(raw, "raw_bytes", problems),
        )
        check(DRIVE_LABEL_NAME, problems)
        return label

    @classmethod
    def from_bytes(cls, data: bytes) -> DriveLabel:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise FormatError(f"{DRIVE_LABEL_NAME} is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise FormatError(f"{DRIVE_LABEL_NAME} is not a JSON object")
        return cls.from_json(raw)


@dataclass(frozen=True)
class CatalogHeader:
    """First line of the catalog: the shipment, its drive count, totals and fingerprint."""

    shipment: str
    drives: int
    fingerprint: str
    created: str
    tool: str
    files: int
    raw_bytes: int
    stored_bytes: int
    version: int = FORMAT_VERSION
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "format": CATALOG_FORMAT, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogHeader:
        if raw.get("type") != cls.TYPE:
            raise FormatError("the catalog does not start with its header record")
        return version_reader(raw, CATALOG_FORMAT, "catalog").catalog_header(raw)

    @classmethod
    def from_v1(cls, raw: dict[str, Any]) -> CatalogHeader:
        """A version 1 catalog header (its ``format`` and ``version`` already checked)."""
        problems: list[str] = []
        header = cls(
            shipment=typed(raw, "shipment", str, problems),
            drives=natural(raw, "drives", problems),
            fingerprint=hex_digest(raw, "fingerprint", problems),
            created=typed(raw, "created", str, problems),
            tool=typed(raw, "tool", str, problems),
            files=natural(raw, "files", problems),
            raw_bytes=natural(raw, "raw_bytes", problems),
            stored_bytes=natural(raw, "stored_bytes", problems),
        )
        check("catalog header", problems)
        return header


ManifestRecord = ManifestHeader | BodyRecord
CatalogRecord = CatalogHeader | CatalogDrive | CatalogEntry | EndRecord


@dataclass(frozen=True)
class VersionReader:
    """The parsers of one format version's files: drive.json, the manifest's header and records, the catalog's."""

    version: int
    label: Callable[[dict[str, Any]], DriveLabel]
    manifest_header: Callable[[dict[str, Any]], ManifestHeader]
    manifest_record: Callable[[dict[str, Any]], ManifestRecord]
    catalog_header: Callable[[dict[str, Any]], CatalogHeader]
    catalog_record: Callable[[dict[str, Any]], CatalogRecord]


#: Every format version this release reads, with its parsers: the one place a reader dispatches on
#: ``"version"`` (docs/format.md section 2). Version 1 stays here for good (the golden fixture in tests/fixtures is
#: read by every release); a release that reads version 2 adds its entry beside it.
READERS: dict[int, VersionReader] = {
    1: VersionReader(
        version=1,
        label=DriveLabel.from_v1,
        manifest_header=ManifestHeader.from_v1,
        manifest_record=manifest_record_from_json,
        catalog_header=CatalogHeader.from_v1,
        catalog_record=catalog_record_from_json,
    )
}
#: Versions above this are not taken for a newer release's (a damaged or hostile number is called so).
MAX_FORMAT_VERSION = 2**16


def version_reader(raw: dict[str, Any], expected_format: str, what: str) -> VersionReader:
    """The parsers for the version ``raw`` (drive.json or a header) states, checked before any other field: a
    ``format`` other than ``expected_format`` is a FormatError, a version this release does not read is refused
    with UnsupportedVersion (exit 2) in one line saying what to do."""
    if raw.get("format") != expected_format:
        raise FormatError(f"{what} is not a sneakernet {expected_format.split('-')[1]} (format {raw.get('format')!r})")
    version = raw.get("version")
    # ``type(...) is int``: JSON true, 1.0 and "1" are not the integer 1.
    reader = READERS.get(version) if type(version) is int else None
    if reader is not None:
        return reader
    newest = max(READERS)
    if type(version) is int and newest < version <= MAX_FORMAT_VERSION:
        raise UnsupportedVersion(
            f"this {expected_format.split('-')[1]} is format version {version}, written by a newer sneakernet; "
            f"this one reads version {newest}: upgrade"
        )
    shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:40] + "..."
    raise UnsupportedVersion(
        f"{what} has format version {shown}, which no sneakernet writes (this one reads version {newest}): "
        "it is damaged or not sneakernet's"
    )
