"""The three records that state a file's format and version (drive.json, the manifest's header, the catalog's
header) and the one place a reader dispatches on that version (:data:`READERS`, docs/format.md sections 2 and 7).

One dataclass per record serves both versions: version 2's fields (docs/format.md 19.3, 19.5) have defaults that
mean "version 1", and ``to_json`` writes the fields and key order of the record's ``version``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import FormatError, UnsupportedVersion
from .catalog import (
    MAX_PARITY_ROW,
    CatalogDrive,
    CatalogEntry,
    CatalogParity,
    CatalogSummary,
    catalog_record_from_json,
    catalog_record_from_v2,
)
from .fields import bounded, check, hex_digest, json_object, natural, typed
from .names import (
    CATALOG_FORMAT,
    CIPHERS,
    DRIVE_LABEL_FORMAT,
    DRIVE_LABEL_NAME,
    FORMAT_VERSION,
    MANIFEST_FORMAT,
    MAX_CHUNK_SIZE,
    MAX_DRIVES,
    ROLE_DATA,
    ROLE_PARITY,
    ROLES,
    role_label,
)
from .records import BodyRecord, EndRecord, SealedRecord, manifest_record_from_json, manifest_record_from_v2


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
    #: Version 2 (docs/format.md 19.3): a data drive's manifest (parity drives' headers are 19.7.5's), its lane
    #: and its place in the lane; ``cipher`` is set exactly when the shipment is encrypted (19.8).
    role: str = ROLE_DATA
    lane: int | None = None
    lane_seq: int | None = None
    cipher: str | None = None
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "format": MANIFEST_FORMAT}
        if self.version == 1:
            out.update(
                shipment=self.shipment, drive=self.drive, created=self.created, chunk_size=self.chunk_size,
                segment_size=self.segment_size, tool=self.tool, version=self.version,
            )  # fmt: skip
        else:
            out.update(
                version=self.version, shipment=self.shipment, role=self.role, drive=self.drive, lane=self.lane,
                lane_seq=self.lane_seq, created=self.created, tool=self.tool, chunk_size=self.chunk_size,
                segment_size=self.segment_size,
            )  # fmt: skip
        if self.level is not None:
            out["level"] = self.level
        if self.cipher is not None:
            out["cipher"] = self.cipher
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any], versions: Collection[int] | None = None) -> ManifestHeader:
        """The header a manifest's first line holds, parsed by its version's reader (``versions``: which versions
        to accept, by default those this release reads end to end, :data:`READ_VERSIONS`)."""
        if raw.get("type") != cls.TYPE:
            raise FormatError("the manifest does not start with its header record")
        return version_reader(raw, MANIFEST_FORMAT, "manifest", versions).manifest_header(raw)

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

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> ManifestHeader:
        """A version 2 data drive's manifest header (docs/format.md 19.3), ``format`` and ``version`` checked."""
        problems: list[str] = []
        role = typed(raw, "role", str, problems)
        if role == ROLE_PARITY:
            raise FormatError("this is a parity drive's manifest (docs/format.md 19.7.5), not a data drive's")
        if role is not None and role != ROLE_DATA:
            problems.append(f"role {role!r} is not one of {', '.join(ROLES)}")
        cipher = raw.get("cipher")
        if "cipher" in raw and cipher not in CIPHERS:
            shown = repr(cipher)[:40]
            problems.append(f"cipher {shown} is not one of format version 2's ({', '.join(CIPHERS)})")
        header = cls(
            shipment=typed(raw, "shipment", str, problems),
            drive=bounded(raw, "drive", 1, MAX_DRIVES, problems),
            created=typed(raw, "created", str, problems),
            chunk_size=natural(raw, "chunk_size", problems),
            segment_size=natural(raw, "segment_size", problems),
            tool=typed(raw, "tool", str, problems),
            version=2,
            level=typed(raw, "level", int, problems) if "level" in raw else None,
            role=ROLE_DATA,
            lane=bounded(raw, "lane", 1, MAX_DRIVES, problems),
            lane_seq=bounded(raw, "lane_seq", 1, MAX_DRIVES, problems),
            cipher=cipher if cipher in CIPHERS else None,
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
    #: Version 2 (docs/format.md 19.3) leaves it out, and it reads as 0, on parity and encrypted drives.
    raw_bytes: int
    version: int = FORMAT_VERSION
    #: Version 2: ``data`` or ``parity``; ``drive`` numbers the drives of that role, ``label`` names it so.
    role: str = ROLE_DATA
    #: Version 2 data drives: the lane and the place in it (1, 2, ...).
    lane: int | None = None
    lane_seq: int | None = None
    #: Version 2: whether the shipment is encrypted (19.8), the same on every drive.
    encrypted: bool = False
    #: Version 2 parity drives: the parity group and the row in it (19.7.1, 19.7.5).
    group: int | None = None
    row: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.version == 1:
            return {
                "format": DRIVE_LABEL_FORMAT, "shipment": self.shipment, "drive": self.drive, "label": self.label,
                "created": self.created, "tool": self.tool, "manifest_size": self.manifest_size,
                "manifest_blake3": self.manifest_blake3, "segments": self.segments,
                "stored_bytes": self.stored_bytes, "raw_bytes": self.raw_bytes, "version": self.version,
            }  # fmt: skip
        out: dict[str, Any] = {
            "format": DRIVE_LABEL_FORMAT, "version": self.version, "shipment": self.shipment, "role": self.role,
            "drive": self.drive, "label": self.label,
        }  # fmt: skip
        if self.role == ROLE_PARITY:
            out.update(group=self.group, row=self.row)
        else:
            out.update(lane=self.lane, lane_seq=self.lane_seq)
        out.update(
            created=self.created, tool=self.tool, encrypted=self.encrypted, manifest_size=self.manifest_size,
            manifest_blake3=self.manifest_blake3, segments=self.segments, stored_bytes=self.stored_bytes,
        )  # fmt: skip
        if self.has_raw_bytes:
            out["raw_bytes"] = self.raw_bytes
        return out

    @property
    def has_raw_bytes(self) -> bool:
        """Whether drive.json states ``raw_bytes``: always in version 1, only on clear data drives in 2."""
        return self.version == 1 or (self.role == ROLE_DATA and not self.encrypted)

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, raw: dict[str, Any], versions: Collection[int] | None = None) -> DriveLabel:
        """drive.json parsed by its version's reader (``versions`` as for :meth:`ManifestHeader.from_json`)."""
        return version_reader(raw, DRIVE_LABEL_FORMAT, DRIVE_LABEL_NAME, versions).label(raw)

    @classmethod
    def from_v1(cls, raw: dict[str, Any]) -> DriveLabel:
        """A version 1 drive.json (its ``format`` and ``version`` already checked)."""
        problems: list[str] = []
        label = cls(
            **_label_fields(raw, problems),
            drive=natural(raw, "drive", problems),
            raw_bytes=natural(raw, "raw_bytes", problems),
        )
        check(DRIVE_LABEL_NAME, problems)
        return label

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> DriveLabel:
        """A version 2 drive.json (docs/format.md 19.3), its ``format`` and ``version`` already checked: a role
        of the two, its number and label agreeing, lane fields on data drives, group and row on parity ones."""
        problems: list[str] = []
        role = typed(raw, "role", str, problems)
        if role is not None and role not in ROLES:
            problems.append(f"role {role!r} is not one of {', '.join(ROLES)}")
            role = None
        parity = role == ROLE_PARITY
        encrypted = typed(raw, "encrypted", bool, problems)
        label = cls(
            **_label_fields(raw, problems),
            drive=bounded(raw, "drive", 1, MAX_DRIVES, problems),
            raw_bytes=natural(raw, "raw_bytes", problems) if role == ROLE_DATA and encrypted is False else 0,
            version=2,
            role=role or ROLE_DATA,
            lane=None if parity else bounded(raw, "lane", 1, MAX_DRIVES, problems),
            lane_seq=None if parity else bounded(raw, "lane_seq", 1, MAX_DRIVES, problems),
            encrypted=bool(encrypted),
            group=bounded(raw, "group", 1, MAX_DRIVES, problems) if parity else None,
            row=bounded(raw, "row", 0, MAX_PARITY_ROW, problems) if parity else None,
        )
        if role is not None and label.label is not None and label.label != role_label(role, label.drive):
            problems.append(f"label {label.label!r} is not {role_label(role, label.drive)!r}, its {role} drive's")
        check(DRIVE_LABEL_NAME, problems)
        return label

    @classmethod
    def from_bytes(cls, data: bytes, versions: Collection[int] | None = None) -> DriveLabel:
        return cls.from_json(json_object(data, DRIVE_LABEL_NAME), versions)


def _label_fields(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The fields of drive.json that both versions have alike (``drive`` and ``raw_bytes`` differ)."""
    return {
        "shipment": typed(raw, "shipment", str, problems),
        "label": typed(raw, "label", str, problems),
        "created": typed(raw, "created", str, problems),
        "tool": typed(raw, "tool", str, problems),
        "manifest_size": natural(raw, "manifest_size", problems),
        "manifest_blake3": hex_digest(raw, "manifest_blake3", problems),
        "segments": natural(raw, "segments", problems),
        "stored_bytes": natural(raw, "stored_bytes", problems),
    }


@dataclass(frozen=True)
class CatalogHeader:
    """First line of the catalog: the shipment, its drive count, totals and fingerprint.

    In version 2 the header holds only the shipment, fingerprint, created and tool (docs/format.md 19.5); the
    counts and totals are the ``summary`` record's, the catalog's second line. A version 2 header as parsed has
    them 0 (``summarised`` False) until :meth:`with_summary` puts that record's in.
    """

    shipment: str
    drives: int
    fingerprint: str
    created: str
    tool: str
    files: int
    raw_bytes: int
    stored_bytes: int
    version: int = FORMAT_VERSION
    #: Version 2: the number of lanes (from the summary record).
    lanes: int | None = None
    #: Version 2: whether the summary record's counts are in (always true in version 1).
    summarised: bool = True
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "format": CATALOG_FORMAT}
        if self.version == 1:
            out.update(
                shipment=self.shipment, drives=self.drives, fingerprint=self.fingerprint, created=self.created,
                tool=self.tool, files=self.files, raw_bytes=self.raw_bytes, stored_bytes=self.stored_bytes,
                version=self.version,
            )  # fmt: skip
        else:
            out.update(
                version=self.version, shipment=self.shipment, fingerprint=self.fingerprint, created=self.created,
                tool=self.tool,
            )  # fmt: skip
        return out

    def summary(self, encrypted: bool = False) -> CatalogSummary:
        """Version 2's summary record of this header's counts (only ``drives`` and ``lanes`` when encrypted)."""
        totals = (None, None, None) if encrypted else (self.files, self.raw_bytes, self.stored_bytes)
        return CatalogSummary(self.drives, self.lanes or 1, *totals)

    def with_summary(self, summary: CatalogSummary) -> CatalogHeader:
        """This version 2 header with the counts of the catalog's summary record (totals 0 when sealed)."""
        return replace(
            self, drives=summary.drives, lanes=summary.lanes, files=summary.files or 0,
            raw_bytes=summary.raw_bytes or 0, stored_bytes=summary.stored_bytes or 0, summarised=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: dict[str, Any], versions: Collection[int] | None = None) -> CatalogHeader:
        """The catalog's header by its version's reader (``versions`` as for :meth:`ManifestHeader.from_json`)."""
        if raw.get("type") != cls.TYPE:
            raise FormatError("the catalog does not start with its header record")
        return version_reader(raw, CATALOG_FORMAT, "catalog", versions).catalog_header(raw)

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

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> CatalogHeader:
        """A version 2 catalog header (docs/format.md 19.5): shipment, fingerprint, created, tool, and nothing
        the fingerprint must cover (a count here would not be pinned), so its counts wait for the summary."""
        problems: list[str] = []
        stray = sorted({"drives", "lanes", "files", "raw_bytes", "stored_bytes"} & raw.keys())
        if stray:
            problems.append(f"{', '.join(stray)} belong in the summary record, which the fingerprint covers")
        header = cls(
            shipment=typed(raw, "shipment", str, problems),
            drives=0,
            fingerprint=hex_digest(raw, "fingerprint", problems),
            created=typed(raw, "created", str, problems),
            tool=typed(raw, "tool", str, problems),
            files=0,
            raw_bytes=0,
            stored_bytes=0,
            version=2,
            summarised=False,
        )
        check("catalog header", problems)
        return header


ManifestRecord = ManifestHeader | BodyRecord
CatalogRecord = CatalogHeader | CatalogSummary | CatalogDrive | CatalogParity | CatalogEntry | SealedRecord | EndRecord


def header_label_problems(label: DriveLabel, header: ManifestHeader) -> list[str]:
    """How a manifest's header differs from its drive's drive.json where they must agree (docs/format.md 19.3:
    shipment, role, drive, lane, lane_seq, version; and encrypted exactly when the header names a cipher)."""
    pairs = [  # (field, drive.json's value, the header's)
        ("version", label.version, header.version), ("shipment", label.shipment, header.shipment),
        ("role", label.role, header.role), ("drive", label.drive, header.drive),
        ("lane", label.lane, header.lane), ("lane_seq", label.lane_seq, header.lane_seq),
        ("encrypted", label.encrypted, header.cipher is not None),
    ]  # fmt: skip
    return [
        f"the manifest's {name} is {ours!r}, drive.json's {label_value!r}"
        for name, label_value, ours in pairs
        if ours != label_value
    ]


@dataclass(frozen=True)
class VersionReader:
    """The parsers of one format version's files: drive.json, the manifest's header and records, the catalog's."""

    version: int
    label: Callable[[dict[str, Any]], DriveLabel]
    manifest_header: Callable[[dict[str, Any]], ManifestHeader]
    manifest_record: Callable[[dict[str, Any]], ManifestRecord]
    catalog_header: Callable[[dict[str, Any]], CatalogHeader]
    catalog_record: Callable[[dict[str, Any]], CatalogRecord]


#: Every format version this release has parsers for: the one place a reader dispatches on ``"version"``
#: (docs/format.md section 2). Version 1 stays here for good (the golden fixture in tests/fixtures is read by every
#: release). Version 2's records (docs/format.md 19) are parsed here; which versions a drive, manifest or catalog is
#: accepted in is :data:`READ_VERSIONS`.
READERS: dict[int, VersionReader] = {
    1: VersionReader(
        version=1,
        label=DriveLabel.from_v1,
        manifest_header=ManifestHeader.from_v1,
        manifest_record=manifest_record_from_json,
        catalog_header=CatalogHeader.from_v1,
        catalog_record=catalog_record_from_json,
    ),
    2: VersionReader(
        version=2,
        label=DriveLabel.from_v2,
        manifest_header=ManifestHeader.from_v2,
        manifest_record=manifest_record_from_v2,
        catalog_header=CatalogHeader.from_v2,
        catalog_record=catalog_record_from_v2,
    ),
}
#: The versions this release reads end to end (verify, restore, info): the ``from_json`` parsers accept these unless
#: told otherwise, and refuse the others of :data:`READERS` as a newer release's ("upgrade"), so that a version 2
#: drive is never read by code that does not follow it yet. Code that reads only records (a writer reading back
#: its own version 2 drive, tests) passes ``versions=READERS``.
READ_VERSIONS: frozenset[int] = frozenset({1, 2})
#: Versions above this are not taken for a newer release's (a damaged or hostile number is called so).
MAX_FORMAT_VERSION = 2**16


def version_reader(
    raw: dict[str, Any], expected_format: str, what: str, versions: Collection[int] | None = None
) -> VersionReader:
    """The parsers for the version ``raw`` (drive.json or a header) states, checked before any other field: a
    ``format`` other than ``expected_format`` is a FormatError, a version not in ``versions`` (by default
    :data:`READ_VERSIONS`) is refused with UnsupportedVersion (exit 2) in one line saying what to do."""
    if raw.get("format") != expected_format:
        raise FormatError(f"{what} is not a sneakernet {expected_format.split('-')[1]} (format {raw.get('format')!r})")
    accepted = READ_VERSIONS if versions is None else versions
    version = raw.get("version")
    # ``type(...) is int``: JSON true, 1.0 and "1" are not the integer 1.
    reader = READERS.get(version) if type(version) is int and version in accepted else None
    if reader is not None:
        return reader
    newest = max(v for v in READERS if v in accepted)
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
