"""A parity drive's manifest records (docs/format.md 19.7.4, 19.7.5): its header and its ``covers``, ``pblock`` and
``segment`` records, and the names of its ``covered/`` copies (its drive.json is headers.DriveLabel, version 2, role
``parity``). Plain data: parsers that
collect every problem, then refuse at once, and the serializer beside each.

A parity drive is format version 2 whatever the data drives it covers are (19.7.7: it may cover a version 1
shipment). The code it names is names.PARITY_CODE (the field and matrix of 19.7.3); its limits are 19.9's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import FormatError, UnsupportedVersion
from ..parity.layout import check_block_size
from ..parity.matrix import MAX_COLUMNS, MAX_ROWS
from .fields import check, hex_digest, natural, typed
from .names import COVERED_DIR as COVERED_DIR  # re-exported: its home is names.py, so drive/files.py needs no parity
from .names import (
    MANIFEST_FORMAT,
    PARITY_CODE,
    PARITY_VERSION,
    ROLE_PARITY,
    SEGMENT_NAME,
    drive_label,
)
from .records import EndRecord


def covered_label_name(label: str) -> str:
    """Where a parity drive keeps the copy of data drive ``label``'s drive.json: ``covered/drive-0001.json``."""
    return f"{COVERED_DIR}/{label}.json"


def covered_manifest_name(label: str) -> str:
    """Where a parity drive keeps the copy of data drive ``label``'s manifest."""
    return f"{COVERED_DIR}/{label}.manifest.jsonl.zst"


def covered_index_name(label: str) -> str:
    """Where a parity drive keeps the copy of an encrypted data drive ``label``'s sealed index (19.7.4, 19.8.3):
    ``covered/drive-0001.index.age``, pinned by the ``sealed`` record of the manifest copy beside it."""
    return f"{COVERED_DIR}/{label}.index.age"


def _version_first(raw: dict[str, Any], expected_format: str, what: str) -> None:
    """``format`` then ``version`` before any other field (section 2): a parity drive is version 2."""
    if raw.get("format") != expected_format:
        raise FormatError(f"{what} is not a sneakernet {expected_format.split('-')[1]} (format {raw.get('format')!r})")
    version = raw.get("version")
    if type(version) is not int or version != PARITY_VERSION:
        raise UnsupportedVersion(
            f"{what} has format version {version!r}: parity drives are version {PARITY_VERSION}; "
            "it is damaged or not sneakernet's"
        )
    if raw.get("role") != ROLE_PARITY:
        raise FormatError(f"{what} is not a parity drive's (role {raw.get('role')!r})")


def _block_size_problems(block_size: int) -> list[str]:
    try:
        check_block_size(block_size)
    except ValueError as exc:
        return [str(exc)]
    return []


@dataclass(frozen=True)
class ParityHeader:
    """First line of a parity drive's manifest (19.7.5): its shipment and number, its group and row, the group's
    shape, the block size, the stripe count and the segment size."""

    shipment: str
    drive: int
    created: str
    tool: str
    group: int
    row: int
    data_drives: int
    parity_drives: int
    block_size: int
    stripes: int
    segment_size: int
    code: str = PARITY_CODE
    version: int = PARITY_VERSION
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        fields = dict(vars(self))
        del fields["version"]
        return {
            "type": self.TYPE,
            "format": MANIFEST_FORMAT,
            "version": self.version,
            "shipment": fields.pop("shipment"),
            "role": ROLE_PARITY,
            **fields,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ParityHeader:
        if raw.get("type") != cls.TYPE:
            raise FormatError("the manifest does not start with its header record")
        _version_first(raw, MANIFEST_FORMAT, "the parity manifest")
        problems: list[str] = []
        header = cls(
            shipment=typed(raw, "shipment", str, problems),
            drive=natural(raw, "drive", problems),
            created=typed(raw, "created", str, problems),
            tool=typed(raw, "tool", str, problems),
            group=natural(raw, "group", problems),
            row=natural(raw, "row", problems),
            data_drives=natural(raw, "data_drives", problems),
            parity_drives=natural(raw, "parity_drives", problems),
            block_size=natural(raw, "block_size", problems),
            stripes=natural(raw, "stripes", problems),
            segment_size=natural(raw, "segment_size", problems),
            code=typed(raw, "code", str, problems),
        )
        if not problems:
            problems += header.problems()
        check("parity manifest header", problems)
        return header

    def problems(self) -> list[str]:
        """What 19.9 refuses in this header."""
        found: list[str] = []
        if self.code != PARITY_CODE:
            found.append(f"code {self.code!r} is not {PARITY_CODE!r}")
        if not 1 <= self.data_drives <= MAX_COLUMNS:
            found.append(f"data_drives {self.data_drives} is outside 1 ... {MAX_COLUMNS}")
        if not 1 <= self.parity_drives <= MAX_ROWS:
            found.append(f"parity_drives {self.parity_drives} is outside 1 ... {MAX_ROWS}")
        if self.row >= self.parity_drives:
            found.append(f"row {self.row} is not below parity_drives {self.parity_drives}")
        if self.drive < 1 or self.group < 1:
            found.append("drive and group are numbered from 1")
        found += _block_size_problems(self.block_size)
        if not found and (self.segment_size < self.block_size or self.segment_size % self.block_size):
            found.append(f"segment_size {self.segment_size} is not a positive multiple of block_size")
        return found


@dataclass(frozen=True)
class CoversRecord:
    """One data drive a parity drive covers: its column, and what pins it (its drive.json, its manifest, its
    stored stream's length)."""

    column: int
    drive: int
    label: str
    drive_json_size: int
    drive_json_blake3: str
    manifest_size: int
    manifest_blake3: str
    stored_bytes: int
    TYPE: ClassVar[str] = "covers"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CoversRecord:
        problems: list[str] = []
        record = cls(
            column=natural(raw, "column", problems),
            drive=natural(raw, "drive", problems),
            label=typed(raw, "label", str, problems),
            drive_json_size=natural(raw, "drive_json_size", problems),
            drive_json_blake3=hex_digest(raw, "drive_json_blake3", problems),
            manifest_size=natural(raw, "manifest_size", problems),
            manifest_blake3=hex_digest(raw, "manifest_blake3", problems),
            stored_bytes=natural(raw, "stored_bytes", problems),
        )
        # The label becomes a file name under covered/: only a data drive's own label is let through.
        if record.label is not None and record.label != drive_label(record.drive):
            problems.append(f"label {record.label!r} is not data drive {record.drive}'s")
        check("covers", problems)
        return record


@dataclass(frozen=True)
class PBlockRecord:
    """The BLAKE3 of one parity block as stored: stripe ``stripe`` of this drive's row."""

    stripe: int
    blake3: str
    TYPE: ClassVar[str] = "pblock"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    def to_line(self) -> bytes:
        """The record as its container line: one per 4 MiB of parity, so made without json.dumps."""
        return b'{"type":"pblock","stripe":%d,"blake3":"%s"}\n' % (self.stripe, self.blake3.encode("ascii"))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PBlockRecord:
        problems: list[str] = []
        record = cls(stripe=natural(raw, "stripe", problems), blake3=hex_digest(raw, "blake3", problems))
        check("pblock", problems)
        return record


@dataclass(frozen=True)
class ParitySegmentRecord:
    """One parity segment file, after its blocks' ``pblock`` records: its name, size, BLAKE3 and block count."""

    name: str
    size: int
    blake3: str
    blocks: int
    TYPE: ClassVar[str] = "segment"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ParitySegmentRecord:
        problems: list[str] = []
        record = cls(
            name=typed(raw, "name", str, problems),
            size=natural(raw, "size", problems),
            blake3=hex_digest(raw, "blake3", problems),
            blocks=natural(raw, "blocks", problems),
        )
        if record.name is not None and not SEGMENT_NAME.fullmatch(record.name):
            problems.append(f"segment name {record.name!r} is not of the form segments/sNNNNNN.seg")
        check("segment", problems)
        return record


ParityRecord = ParityHeader | CoversRecord | PBlockRecord | ParitySegmentRecord | EndRecord
_BODY: dict[str, Any] = {
    CoversRecord.TYPE: CoversRecord.from_json,
    PBlockRecord.TYPE: PBlockRecord.from_json,
    ParitySegmentRecord.TYPE: ParitySegmentRecord.from_json,
    EndRecord.TYPE: EndRecord.from_json,
}


def parity_record_from_json(raw: dict[str, Any]) -> CoversRecord | PBlockRecord | ParitySegmentRecord | EndRecord:
    """A record after a parity manifest's header; a type a parity manifest does not have is refused."""
    parse = _BODY.get(raw.get("type"))  # type: ignore[arg-type]
    if parse is None:
        raise FormatError(f"a parity manifest has no {raw.get('type')!r} records")
    record: CoversRecord | PBlockRecord | ParitySegmentRecord | EndRecord = parse(raw)
    return record
