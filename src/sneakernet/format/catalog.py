"""The catalog's records after its header: one per drive, one per shipment path (docs/format.md section 9)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import FormatError
from .fields import check, hex_digest, natural, typed
from .names import CATALOG_KINDS
from .paths import decode_path, encode_path, path_json
from .records import EndRecord


@dataclass(frozen=True)
class CatalogDrive:
    """One drive as the catalog knows it: its manifest's hash pins everything on it."""

    drive: int
    label: str
    manifest_size: int
    manifest_blake3: str
    stored_bytes: int
    TYPE: ClassVar[str] = "drive"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

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


@dataclass(frozen=True)
class CatalogEntry:
    """One shipment path: its kind, size, and the drives ``first_drive`` ... ``last_drive`` that carry it."""

    path: bytes
    kind: str
    size: int
    first_drive: int
    last_drive: int
    TYPE: ClassVar[str] = "entry"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        out.update(kind=self.kind, size=self.size, first_drive=self.first_drive, last_drive=self.last_drive)
        return out

    def to_line(self) -> bytes:
        """The record's catalog line, byte for byte what ``encode_record(self.to_json())`` gives, faster."""
        return (
            f'{{"type":"entry",{path_json("path", self.path)},"kind":"{self.kind}","size":{self.size},'
            f'"first_drive":{self.first_drive},"last_drive":{self.last_drive}}}\n'
        ).encode("ascii")

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


_CATALOG_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in (CatalogDrive, CatalogEntry, EndRecord)}


def catalog_record_from_json(raw: dict[str, Any]) -> CatalogDrive | CatalogEntry | EndRecord:
    kind = raw.get("type")
    if kind == CatalogEntry.TYPE:  # the usual record (one per path), without a look-up
        return CatalogEntry.from_json(raw)
    if not isinstance(kind, str) or kind not in _CATALOG_TYPES:
        raise FormatError(f"unknown catalog record type {kind!r}")
    result: CatalogDrive | CatalogEntry | EndRecord = _CATALOG_TYPES[kind].from_json(raw)
    return result
