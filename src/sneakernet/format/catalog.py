"""The catalog's records after its header: one per drive, one per shipment path (docs/format.md section 9); in
version 2 also the summary, the parity drives' records and the sealed catalog's (section 19.5)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import FormatError
from .fields import bounded, check, hex_digest, natural, typed
from .names import CATALOG_KINDS, MAX_DRIVES, SEALED_CATALOG_NAME, drive_label, parity_label
from .paths import decode_path, encode_path, path_json
from .records import EndRecord, SealedRecord

#: The highest parity row (docs/format.md 19.9: at most 6 parity drives per group, rows 0 ... 5).
MAX_PARITY_ROW = 5


@dataclass(frozen=True)
class CatalogSummary:
    """Version 2, the catalog's second record (docs/format.md 19.5): the counts and totals, which the fingerprint
    covers. An encrypted shipment's public catalog has only ``drives`` and ``lanes`` (the totals are sealed)."""

    drives: int
    lanes: int
    files: int | None = None
    raw_bytes: int | None = None
    stored_bytes: int | None = None
    TYPE: ClassVar[str] = "summary"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "drives": self.drives, "lanes": self.lanes}
        if self.files is not None:
            out.update(files=self.files, raw_bytes=self.raw_bytes, stored_bytes=self.stored_bytes)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogSummary:
        problems: list[str] = []
        totals = [name for name in ("files", "raw_bytes", "stored_bytes") if name in raw]
        if totals and len(totals) != 3:
            problems.append("'files', 'raw_bytes' and 'stored_bytes' go together (all three, or none when sealed)")
        record = cls(
            drives=bounded(raw, "drives", 1, MAX_DRIVES, problems),
            lanes=bounded(raw, "lanes", 1, MAX_DRIVES, problems),
            files=natural(raw, "files", problems) if totals else None,
            raw_bytes=natural(raw, "raw_bytes", problems) if totals else None,
            stored_bytes=natural(raw, "stored_bytes", problems) if totals else None,
        )
        if record.lanes > record.drives:
            problems.append(f"{record.lanes} lanes for {record.drives} drives: every lane has a drive")
        check("catalog summary", problems)
        return record


@dataclass(frozen=True)
class CatalogDrive:
    """One drive as the catalog knows it: its manifest's hash pins everything on it.

    Version 2 (docs/format.md 19.5) adds the drive's ``lane`` and ``lane_seq``; version 1's have None.
    """

    drive: int
    label: str
    manifest_size: int
    manifest_blake3: str
    stored_bytes: int
    lane: int | None = None
    lane_seq: int | None = None
    TYPE: ClassVar[str] = "drive"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "drive": self.drive, "label": self.label}
        if self.lane is not None:
            out.update(lane=self.lane, lane_seq=self.lane_seq)
        out.update(manifest_size=self.manifest_size, manifest_blake3=self.manifest_blake3)
        out["stored_bytes"] = self.stored_bytes
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogDrive:
        problems: list[str] = []
        record = cls(
            drive=natural(raw, "drive", problems),
            label=typed(raw, "label", str, problems),
            manifest_size=natural(raw, "manifest_size", problems),
            manifest_blake3=hex_digest(raw, "manifest_blake3", problems),
            stored_bytes=natural(raw, "stored_bytes", problems),
        )
        check("catalog drive", problems)
        return record

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> CatalogDrive:
        """A version 2 data drive record: version 1's fields within their bounds, its label its number's, and
        its lane and place in the lane (docs/format.md 19.5)."""
        problems: list[str] = []
        record = cls(
            **_drive_fields(raw, problems),
            lane=bounded(raw, "lane", 1, MAX_DRIVES, problems),
            lane_seq=bounded(raw, "lane_seq", 1, MAX_DRIVES, problems),
        )
        if record.label is not None and record.label != drive_label(record.drive):
            problems.append(f"label {record.label!r} is not {drive_label(record.drive)!r}")
        check("catalog drive", problems)
        return record


def _drive_fields(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """What version 2's ``drive`` and ``parity`` records share: the drive's number, label and pinned manifest."""
    return {
        "drive": bounded(raw, "drive", 1, MAX_DRIVES, problems),
        "label": typed(raw, "label", str, problems),
        "manifest_size": natural(raw, "manifest_size", problems),
        "manifest_blake3": hex_digest(raw, "manifest_blake3", problems),
        "stored_bytes": natural(raw, "stored_bytes", problems),
    }


@dataclass(frozen=True)
class CatalogParity:
    """Version 2: one parity drive known when the catalog was written (docs/format.md 19.5, 19.7.5); the
    fingerprint leaves these records out, so parity added later changes no data drive."""

    drive: int
    label: str
    group: int
    row: int
    manifest_size: int
    manifest_blake3: str
    stored_bytes: int
    TYPE: ClassVar[str] = "parity"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogParity:
        problems: list[str] = []
        record = cls(
            **_drive_fields(raw, problems),
            group=bounded(raw, "group", 1, MAX_DRIVES, problems),
            row=bounded(raw, "row", 0, MAX_PARITY_ROW, problems),
        )
        if record.label is not None and record.label != parity_label(record.drive):
            problems.append(f"label {record.label!r} is not {parity_label(record.drive)!r}")
        check("catalog parity", problems)
        return record


@dataclass(frozen=True)
class CatalogEntry:
    """One shipment path: its kind, size, and the drives that carry it.

    Version 1: the drives ``first_drive`` ... ``last_drive``, a range (``pieces`` None). Version 2 (docs/format.md
    19.5): ``last_drive`` is the record's ``drive`` (the one holding the final record; :attr:`drive`), and a file's
    ``pieces`` lie on ``first_drive`` and the drives its ``next_drive`` chain leads to, in one lane, not a range.
    """

    path: bytes
    kind: str
    size: int
    first_drive: int
    last_drive: int
    pieces: int | None = None
    TYPE: ClassVar[str] = "entry"

    @property
    def drive(self) -> int:
        """The drive holding the entry's final record (version 2's ``drive``, version 1's ``last_drive``)."""
        return self.last_drive

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        out.update(kind=self.kind, size=self.size)
        if self.pieces is None:
            out.update(first_drive=self.first_drive, last_drive=self.last_drive)
        else:
            out.update(drive=self.last_drive, first_drive=self.first_drive, pieces=self.pieces)
        return out

    def to_line(self) -> bytes:
        """The record's catalog line, byte for byte what ``encode_record(self.to_json())`` gives, faster."""
        start = f'{{"type":"entry",{path_json("path", self.path)},"kind":"{self.kind}","size":{self.size},'
        if self.pieces is None:
            return f'{start}"first_drive":{self.first_drive},"last_drive":{self.last_drive}}}\n'.encode("ascii")
        return (f'{start}"drive":{self.last_drive},"first_drive":{self.first_drive},"pieces":{self.pieces}}}\n').encode(
            "ascii"
        )

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogEntry:
        path, kind, size, first, last = (
            raw.get("path"), raw.get("kind"), raw.get("size"), raw.get("first_drive"), raw.get("last_drive")
        )  # fmt: skip
        # The usual entry (a catalog has one per path of the shipment), checked in one expression.
        if (
            type(path) is str and "path_b64" not in raw and kind in CATALOG_KINDS and type(size) is int
            and type(first) is int and type(last) is int and size >= 0 and first >= 0 and last >= 0
        ):  # fmt: skip
            with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: refused below, with its reason
                return cls(path.encode("utf-8"), kind, size, first, last)
        problems: list[str] = []
        record = cls(
            path=decode_path("path", raw),
            kind=typed(raw, "kind", str, problems),
            size=natural(raw, "size", problems),
            first_drive=natural(raw, "first_drive", problems),
            last_drive=natural(raw, "last_drive", problems),
        )
        if record.kind not in CATALOG_KINDS:
            problems.append(f"kind {record.kind!r} is not one of {', '.join(CATALOG_KINDS)}")
        check("catalog entry", problems)
        return record

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> CatalogEntry:
        """A version 2 entry (docs/format.md 19.5): ``drive``, ``first_drive`` and ``pieces`` within their bounds;
        anything but a file one piece on its one drive, a file on one drive exactly when in one piece. Where the
        drives lie (one lane, ``lane_seq`` steps) is checked against the drive records (format.lanes)."""
        problems: list[str] = []
        path = decode_path("path", raw)
        kind = typed(raw, "kind", str, problems)
        if kind is not None and kind not in CATALOG_KINDS:
            problems.append(f"kind {kind!r} is not one of {', '.join(CATALOG_KINDS)}")
        record = cls(
            path=path,
            kind=kind,
            size=natural(raw, "size", problems),
            first_drive=bounded(raw, "first_drive", 1, MAX_DRIVES, problems),
            last_drive=bounded(raw, "drive", 1, MAX_DRIVES, problems),
            pieces=bounded(raw, "pieces", 1, MAX_DRIVES, problems),
        )
        if "last_drive" in raw:
            problems.append("'last_drive' is version 1's: a version 2 entry has 'drive', 'first_drive', 'pieces'")
        if kind != "file" and (record.pieces != 1 or record.first_drive != record.last_drive):
            problems.append(f"a {kind} is one piece on one drive, not {record.pieces} from drive {record.first_drive}")
        if kind == "file" and (record.pieces == 1) != (record.first_drive == record.last_drive):
            problems.append(f"a file of {record.pieces} pieces from drive {record.first_drive} to {record.last_drive}")
        check("catalog entry", problems)
        return record


_CATALOG_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in (CatalogDrive, CatalogEntry, EndRecord)}


def catalog_record_from_json(raw: dict[str, Any]) -> CatalogDrive | CatalogEntry | EndRecord:
    kind = raw.get("type")
    if kind == CatalogEntry.TYPE:  # the usual record (one per path), without a look-up
        return CatalogEntry.from_json(raw)
    if not isinstance(kind, str) or kind not in _CATALOG_TYPES:
        raise FormatError(f"unknown catalog record type {kind!r}")
    result: CatalogDrive | CatalogEntry | EndRecord = _CATALOG_TYPES[kind].from_json(raw)
    return result


_CATALOG_TYPES_V2: dict[str, Any] = {
    CatalogSummary.TYPE: CatalogSummary.from_json,
    CatalogDrive.TYPE: CatalogDrive.from_v2,
    CatalogParity.TYPE: CatalogParity.from_json,
    SealedRecord.TYPE: SealedRecord.from_json,
    EndRecord.TYPE: EndRecord.from_json,
}


def catalog_record_from_v2(
    raw: dict[str, Any],
) -> CatalogSummary | CatalogDrive | CatalogParity | CatalogEntry | SealedRecord | EndRecord:
    """A version 2 catalog record after the header (docs/format.md 19.5): one record alone; their order and the
    lanes they describe are :class:`~sneakernet.format.lanes.CatalogCheck`'s."""
    kind = raw.get("type")
    if kind == CatalogEntry.TYPE:  # the usual record (one per path), without a look-up
        return CatalogEntry.from_v2(raw)
    parse = _CATALOG_TYPES_V2.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise FormatError(f"unknown catalog record type {kind!r}")
    record = parse(raw)
    if isinstance(record, SealedRecord) and record.name != SEALED_CATALOG_NAME:
        raise FormatError(f"bad sealed record: a catalog seals {SEALED_CATALOG_NAME}, not {record.name!r}")
    result: CatalogSummary | CatalogDrive | CatalogParity | CatalogEntry | SealedRecord | EndRecord = record
    return result
