"""The on-disk format, version 1: names on a drive, the records of manifests and catalogs, and their JSON.

docs/format.md is the specification; this module is its executable form and must change with it. It owns
plain data and (de)serialisation only: no walking the source, no policy on when to write or fsync (that is
drive/), no reading of segments.

Every record is one JSON object on one line of a zstd-compressed JSON Lines file. Paths are bytes: a path
that is valid UTF-8 is written as ``"path"``, any other as ``"path_b64"`` (standard base64), so non-UTF-8
names and names with newlines survive.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import blake3

from .errors import FormatError, UnsupportedVersion

#: The format version this release writes (it reads those of :data:`READERS`, at the end of this module).
FORMAT_VERSION = 1

DRIVE_LABEL_NAME = "drive.json"
MANIFEST_NAME = "manifest.jsonl.zst"
CATALOG_NAME = "catalog.jsonl.zst"
CHECKSUMS_NAME = "B3SUMS"
SEGMENTS_DIR = "segments"
#: Suffix of a file still being written; a drive holding one is unfinished.
PARTIAL_SUFFIX = ".partial"
#: The top-level name restore works in, DEST/.sneakernet (its journal, parts and catalog copy): no shipment path
#: may be it or lie under it (section 12.2), compared as a case-insensitive, normalising filesystem would.
RESERVED_NAME = ".sneakernet"
#: What stays in DEST/.sneakernet once a restore is finished and its journal removed (see restorer.finished).
FINISHED_NAME = "finished.json"
#: Restore's journal in DEST/.sneakernet while a restore is in progress (see restorer.journal).
JOURNAL_NAME = "journal.sqlite3"

DRIVE_LABEL_FORMAT = "sneakernet-drive"
MANIFEST_FORMAT = "sneakernet-manifest"
CATALOG_FORMAT = "sneakernet-catalog"

#: Readers refuse chunks whose declared raw size exceeds this: it bounds the memory a hostile drive can make a
#: reader allocate, and is far above any useful chunk size.
MAX_CHUNK_SIZE = 64 * 2**20
#: Readers refuse chunks whose stored size exceeds this (a raw chunk of the largest size as a stored frame, with
#: room to spare): it bounds the bytes a reader reads for one chunk.
MAX_STORED_SIZE = MAX_CHUNK_SIZE + MAX_CHUNK_SIZE // 128 + 1024
#: The short fingerprint read over the phone: 20 hex digits (80 bits) in groups of four.
SHORT_FINGERPRINT_DIGITS = 20

METHOD_ZSTD = "zstd"
METHOD_STORE = "store"
METHODS = (METHOD_ZSTD, METHOD_STORE)
CATALOG_KINDS = ("file", "dir", "symlink", "hardlink")

HEX64 = re.compile(r"[0-9a-f]{64}")
SEGMENT_NAME = re.compile(r"segments/s[0-9]{6}\.seg")
#: Segment names have six digits, so a drive holds at most this many segments.
MAX_SEGMENTS = 999_999


def drive_label(index: int) -> str:
    """The directory name and label of drive ``index`` (1-based): ``drive-0001``."""
    return f"drive-{index:04d}"


#: The names :func:`drive_label` gives.
DRIVE_NAME = re.compile(r"drive-[0-9]{4,}")


def segment_name(number: int) -> str:
    """The path of segment ``number`` (1-based) relative to its drive: ``segments/s000001.seg``."""
    return f"{SEGMENTS_DIR}/s{number:06d}.seg"


def encode_path(key: str, path: bytes, out: dict[str, Any]) -> None:
    """Store ``path`` under ``key`` when it is UTF-8, else under ``key + '_b64'``."""
    try:
        out[key] = path.decode("utf-8")
    except UnicodeDecodeError:
        out[key + "_b64"] = base64.b64encode(path).decode("ascii")


def decode_path(key: str, raw: dict[str, Any]) -> bytes:
    value = raw.get(key)
    if type(value) is str and key + "_b64" not in raw:  # the usual case first: a UTF-8 path
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass  # refused below, with its reason
    if key in raw and key + "_b64" in raw:
        raise FormatError(f"record has both {key!r} and {key}_b64")
    if key in raw:
        value = raw[key]
        if not isinstance(value, str):
            raise FormatError(f"field {key!r} is not a string")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # A lone surrogate would give a second spelling of a path that path_b64 spells: refuse it.
            raise FormatError(f"field {key!r} holds a lone surrogate; non-UTF-8 paths go in {key}_b64") from exc
    if key + "_b64" in raw:
        try:
            return base64.b64decode(raw[key + "_b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"field {key}_b64 is not valid base64") from exc
    raise FormatError(f"record has no {key!r}")


#: Printable ASCII without the two characters JSON escapes: such a path is its own JSON string.
_PLAIN = re.compile(rb"[\x20-\x21\x23-\x5b\x5d-\x7e]*")


def path_json(key: str, path: bytes) -> str:
    """``"key":"path"`` (or ``"key_b64":"..."``) exactly as ``json.dumps`` of :func:`encode_path` writes it, fast
    for the usual plain path (pack writes one or two per file)."""
    if _PLAIN.fullmatch(path):
        return f'"{key}":"{path.decode("ascii")}"'
    out: dict[str, Any] = {}
    encode_path(key, path, out)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=True)[1:-1]


def show_path(path: bytes) -> str:
    """A path for messages: UTF-8 where possible, backslash escapes for the rest, newlines visible."""
    return path.decode("utf-8", "backslashreplace").replace("\n", "\\n")


def fold_name(name: bytes) -> str:
    """How a case-insensitive, normalising filesystem sees a name."""
    return unicodedata.normalize("NFC", name.decode("utf-8", "surrogateescape")).casefold()


def is_reserved(path: bytes) -> bool:
    """Whether a shipment path is, or lies under, :data:`RESERVED_NAME` (in any case or normalisation: on a
    destination that folds names, ``.SneakerNet/parts`` is restore's own parts directory)."""
    first = path.split(b"/", 1)[0]
    return first.startswith(b".") and fold_name(first) == RESERVED_NAME


def _field(raw: dict[str, Any], name: str, kind: type, problems: list[str]) -> Any:
    value = raw.get(name)
    # ``type(...) is``: exact types, so JSON true is never taken for an integer (and it is the fast path).
    if type(value) is not kind:
        problems.append(f"{name!r} missing or not {kind.__name__}")
        return None
    return value


def _natural(raw: dict[str, Any], name: str, problems: list[str]) -> int:
    value = raw.get(name)
    if type(value) is int and value >= 0:
        return value
    value = _field(raw, name, int, problems)
    if value is not None:
        problems.append(f"{name!r} is negative")
    return 0


def _hex(raw: dict[str, Any], name: str, problems: list[str]) -> str:
    value = _field(raw, name, str, problems)
    if value is not None and not HEX64.fullmatch(value):
        problems.append(f"{name!r} is not 64 lowercase hex digits")
    return value or ""


def _check(record_type: str, problems: list[str]) -> None:
    if problems:
        raise FormatError(f"bad {record_type} record: " + "; ".join(problems))


# --- manifest records ---------------------------------------------------------------------------------------


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
            shipment=_field(raw, "shipment", str, problems),
            drive=_natural(raw, "drive", problems),
            created=_field(raw, "created", str, problems),
            chunk_size=_natural(raw, "chunk_size", problems),
            segment_size=_natural(raw, "segment_size", problems),
            tool=_field(raw, "tool", str, problems),
            level=_field(raw, "level", int, problems) if "level" in raw else None,
        )
        if header.chunk_size > MAX_CHUNK_SIZE:
            problems.append(f"chunk_size above the limit of {MAX_CHUNK_SIZE}")
        _check("manifest header", problems)
        return header


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk: where its stored bytes are, how they were stored, and both hashes.

    ``id`` counts chunks across the whole shipment from 0, so a file's data continues from chunk ``id`` into
    ``id + 1`` even when that chunk is on the next drive.
    """

    id: int
    segment: str
    offset: int
    stored_size: int
    raw_size: int
    method: str
    stored_blake3: str
    raw_blake3: str
    TYPE: ClassVar[str] = "chunk"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ChunkRecord:
        problems: list[str] = []
        record = cls(
            id=_natural(raw, "id", problems),
            segment=_field(raw, "segment", str, problems),
            offset=_natural(raw, "offset", problems),
            stored_size=_natural(raw, "stored_size", problems),
            raw_size=_natural(raw, "raw_size", problems),
            method=_field(raw, "method", str, problems),
            stored_blake3=_hex(raw, "stored_blake3", problems),
            raw_blake3=_hex(raw, "raw_blake3", problems),
        )
        if record.segment is not None and not SEGMENT_NAME.fullmatch(record.segment):
            problems.append(f"segment name {record.segment!r} is not of the form segments/sNNNNNN.seg")
        if record.method not in METHODS:
            problems.append(f"method {record.method!r} is not one of {', '.join(METHODS)}")
        if record.raw_size > MAX_CHUNK_SIZE:
            problems.append(f"raw_size above the limit of {MAX_CHUNK_SIZE}")
        if record.raw_size == 0:
            problems.append("raw_size is 0: a chunk holds at least one byte")
        if record.stored_size > MAX_STORED_SIZE:
            problems.append(f"stored_size above the limit of {MAX_STORED_SIZE}")
        _check("chunk", problems)
        return record


@dataclass(frozen=True)
class SegmentRecord:
    """One segment file, written after its last chunk: its name, size and BLAKE3."""

    name: str
    size: int
    blake3: str
    chunks: int
    TYPE: ClassVar[str] = "segment"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SegmentRecord:
        problems: list[str] = []
        record = cls(
            name=_field(raw, "name", str, problems),
            size=_natural(raw, "size", problems),
            blake3=_hex(raw, "blake3", problems),
            chunks=_natural(raw, "chunks", problems),
        )
        if record.name is not None and not SEGMENT_NAME.fullmatch(record.name):
            problems.append(f"segment name {record.name!r} is not of the form segments/sNNNNNN.seg")
        _check("segment", problems)
        return record


@dataclass(frozen=True)
class Metadata:
    """What restore puts back besides the bytes: permission bits (with setuid/setgid/sticky), mtime, owner."""

    mode: int
    mtime_ns: int
    uid: int
    gid: int

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, raw: dict[str, Any], problems: list[str]) -> Metadata:
        mode, mtime, uid, gid = raw.get("mode"), raw.get("mtime_ns"), raw.get("uid"), raw.get("gid")
        # The usual record, checked in one expression (a manifest has a million of them); anything else is
        # checked field by field below, which names what is wrong.
        if (
            type(mode) is int and type(mtime) is int and type(uid) is int and type(gid) is int
            and 0 <= mode <= 0o7777 and uid >= 0 and gid >= 0
        ):  # fmt: skip
            return cls(mode, mtime, uid, gid)
        mode = _natural(raw, "mode", problems)
        if mode > 0o7777:
            problems.append("'mode' has bits beyond 0o7777")
        mtime = _field(raw, "mtime_ns", int, problems)
        return cls(mode, mtime or 0, _natural(raw, "uid", problems), _natural(raw, "gid", problems))


@dataclass(frozen=True)
class FileRecord:
    """A regular file, or a piece of one, carried by this drive.

    The piece's ``length`` bytes start at raw offset ``chunk_offset`` of chunk ``chunk`` and continue through
    the following chunks; they are bytes ``offset`` ... ``offset + length`` of the file. Only the last piece
    of a file (``final``) carries its size, whole-file BLAKE3 and metadata; pieces on earlier drives were
    written before the end of the file had been read. An empty file has ``length`` 0 and ``chunk`` -1.
    """

    path: bytes
    offset: int
    length: int
    chunk: int
    chunk_offset: int
    final: bool
    size: int | None = None
    blake3: str | None = None
    meta: Metadata | None = None
    #: The file's size or mtime differed before and after it was read: the stored bytes are what was read.
    changed: bool = False
    TYPE: ClassVar[str] = "file"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        out.update(
            offset=self.offset,
            length=self.length,
            chunk=self.chunk,
            chunk_offset=self.chunk_offset,
            final=self.final,
        )
        if self.final:
            assert self.meta is not None
            out.update(size=self.size, blake3=self.blake3, **self.meta.to_json())
            if self.changed:
                out["changed"] = True
        return out

    def to_line(self) -> bytes:
        """The record's manifest line, byte for byte what ``encode_record(self.to_json())`` gives, faster."""
        line = (
            f'{{"type":"file",{path_json("path", self.path)},"offset":{self.offset},"length":{self.length},'
            f'"chunk":{self.chunk},"chunk_offset":{self.chunk_offset},"final":{"true" if self.final else "false"}'
        )
        if self.final:
            meta = self.meta
            assert meta is not None
            line += (
                f',"size":{self.size},"blake3":"{self.blake3}","mode":{meta.mode},"mtime_ns":{meta.mtime_ns},'
                f'"uid":{meta.uid},"gid":{meta.gid}'
            )
            if self.changed:
                line += ',"changed":true'
        return (line + "}\n").encode("ascii")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileRecord:
        problems: list[str] = []
        final = _field(raw, "final", bool, problems)
        record = cls(
            path=decode_path("path", raw),
            offset=_natural(raw, "offset", problems),
            length=_natural(raw, "length", problems),
            chunk=_field(raw, "chunk", int, problems),
            chunk_offset=_natural(raw, "chunk_offset", problems),
            final=bool(final),
            size=_natural(raw, "size", problems) if final else None,
            blake3=_hex(raw, "blake3", problems) if final else None,
            meta=Metadata.from_json(raw, problems) if final else None,
            changed=raw.get("changed") is True,
        )
        if record.final and record.size != record.offset + record.length:
            problems.append("a final piece must end at the file's size")
        if record.chunk is not None and (record.chunk == -1) != (record.length == 0):
            problems.append("'chunk' must be -1 exactly when 'length' is 0")
        if record.chunk is not None and record.chunk < -1:
            problems.append("'chunk' out of range")
        if record.chunk == -1 and record.chunk_offset != 0:
            problems.append("a piece without bytes must have 'chunk_offset' 0")
        _check("file", problems)
        return record


@dataclass(frozen=True)
class DirRecord:
    """A directory, empty or not; written before anything inside it."""

    path: bytes
    meta: Metadata
    TYPE: ClassVar[str] = "dir"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        out.update(self.meta.to_json())
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DirRecord:
        problems: list[str] = []
        record = cls(decode_path("path", raw), Metadata.from_json(raw, problems))
        _check("dir", problems)
        return record


@dataclass(frozen=True)
class SymlinkRecord:
    """A symbolic link, stored as its target verbatim and never followed."""

    path: bytes
    target: bytes
    meta: Metadata
    TYPE: ClassVar[str] = "symlink"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        encode_path("target", self.target, out)
        out.update(self.meta.to_json())
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SymlinkRecord:
        problems: list[str] = []
        record = cls(decode_path("path", raw), decode_path("target", raw), Metadata.from_json(raw, problems))
        _check("symlink", problems)
        return record


@dataclass(frozen=True)
class HardlinkRecord:
    """A further name of a regular file stored earlier in the shipment under ``target``."""

    path: bytes
    target: bytes
    TYPE: ClassVar[str] = "hardlink"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        encode_path("target", self.target, out)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HardlinkRecord:
        return cls(decode_path("path", raw), decode_path("target", raw))


@dataclass(frozen=True)
class SkippedRecord:
    """A source entry that was not packed, and why (a FIFO, socket, device, or an unreadable file)."""

    path: bytes
    reason: str
    TYPE: ClassVar[str] = "skipped"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        encode_path("path", self.path, out)
        out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SkippedRecord:
        problems: list[str] = []
        record = cls(decode_path("path", raw), _field(raw, "reason", str, problems))
        _check("skipped", problems)
        return record


@dataclass(frozen=True)
class EndRecord:
    """Last line of a manifest or catalog: counts that let a reader tell a complete file from a cut one."""

    records: int
    TYPE: ClassVar[str] = "end"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "records": self.records}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EndRecord:
        problems: list[str] = []
        record = cls(_natural(raw, "records", problems))
        _check("end", problems)
        return record


EntryRecord = FileRecord | DirRecord | SymlinkRecord | HardlinkRecord | SkippedRecord
ManifestRecord = ManifestHeader | ChunkRecord | SegmentRecord | EntryRecord | EndRecord

_MANIFEST_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (ChunkRecord, SegmentRecord, FileRecord, DirRecord, SymlinkRecord, HardlinkRecord, SkippedRecord)
}


def manifest_record_from_json(raw: dict[str, Any]) -> ManifestRecord:
    """The record a manifest line holds (not the header, which :class:`ManifestHeader` reads)."""
    kind = raw.get("type")
    if kind == EndRecord.TYPE:
        return EndRecord.from_json(raw)
    cls = _MANIFEST_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FormatError(f"unknown manifest record type {kind!r}")
    result: ManifestRecord = cls.from_json(raw)
    return result


# --- the drive label ----------------------------------------------------------------------------------------


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
            shipment=_field(raw, "shipment", str, problems),
            drive=_natural(raw, "drive", problems),
            label=_field(raw, "label", str, problems),
            created=_field(raw, "created", str, problems),
            tool=_field(raw, "tool", str, problems),
            manifest_size=_natural(raw, "manifest_size", problems),
            manifest_blake3=_hex(raw, "manifest_blake3", problems),
            segments=_natural(raw, "segments", problems),
            stored_bytes=_natural(raw, "stored_bytes", problems),
            raw_bytes=_natural(raw, "raw_bytes", problems),
        )
        _check(DRIVE_LABEL_NAME, problems)
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


# --- the catalog --------------------------------------------------------------------------------------------


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
            shipment=_field(raw, "shipment", str, problems),
            drives=_natural(raw, "drives", problems),
            fingerprint=_hex(raw, "fingerprint", problems),
            created=_field(raw, "created", str, problems),
            tool=_field(raw, "tool", str, problems),
            files=_natural(raw, "files", problems),
            raw_bytes=_natural(raw, "raw_bytes", problems),
            stored_bytes=_natural(raw, "stored_bytes", problems),
        )
        _check("catalog header", problems)
        return header


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
            drive=_natural(raw, "drive", problems),
            label=_field(raw, "label", str, problems),
            manifest_size=_natural(raw, "manifest_size", problems),
            manifest_blake3=_hex(raw, "manifest_blake3", problems),
            stored_bytes=_natural(raw, "stored_bytes", problems),
        )
        _check("catalog drive", problems)
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
            kind=_field(raw, "kind", str, problems),
            size=_natural(raw, "size", problems),
            first_drive=_natural(raw, "first_drive", problems),
            last_drive=_natural(raw, "last_drive", problems),
        )
        if record.kind not in CATALOG_KINDS:
            problems.append(f"kind {record.kind!r} is not one of {', '.join(CATALOG_KINDS)}")
        _check("catalog entry", problems)
        return record


CatalogRecord = CatalogHeader | CatalogDrive | CatalogEntry | EndRecord


_CATALOG_TYPES: dict[str, Any] = {cls.TYPE: cls for cls in (CatalogDrive, CatalogEntry, EndRecord)}


def catalog_record_from_json(raw: dict[str, Any]) -> CatalogRecord:
    kind = raw.get("type")
    if kind == CatalogEntry.TYPE:  # the usual record (one per path), without a look-up
        return CatalogEntry.from_json(raw)
    if not isinstance(kind, str) or kind not in _CATALOG_TYPES:
        raise FormatError(f"unknown catalog record type {kind!r}")
    result: CatalogRecord = _CATALOG_TYPES[kind].from_json(raw)
    return result


# --- the fingerprint ----------------------------------------------------------------------------------------


def fingerprint(manifest_hashes: Iterable[str]) -> str:
    """BLAKE3 over the manifests' BLAKE3 hex digests, one per line in drive order.

    By hand: ``for d in drive-*; do b3sum --no-names $d/manifest.jsonl.zst; done | b3sum --no-names``.
    """
    hasher = blake3.blake3()
    for digest in manifest_hashes:
        hasher.update(digest.encode("ascii") + b"\n")
    return hasher.hexdigest()


def catalog_is_consistent(header: CatalogHeader, drives: list[CatalogDrive]) -> bool:
    """Whether a catalog lists drives 1..N and its drives' manifest hashes give its fingerprint."""
    # Counted first: a header claiming 10^12 drives must not make a list of them.
    numbered = len(drives) == header.drives and all(d.drive == n for n, d in enumerate(drives, 1))
    return numbered and fingerprint(d.manifest_blake3 for d in drives) == header.fingerprint


def short_fingerprint(full: str) -> str:
    """The first 80 bits in groups of four hex digits: ``3f9a-12bc-77d0-e145-9abc``."""
    digits = full[:SHORT_FINGERPRINT_DIGITS]
    return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))


# --- versions -----------------------------------------------------------------------------------------------


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
