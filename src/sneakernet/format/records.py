"""The records of a manifest after its header: chunks, segments, entries (file, dir, symlink, hardlink, skipped)
and the end record, each a frozen dataclass with its serializer beside its parser (docs/format.md section 6)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import FormatError
from .fields import bounded, check, hex_digest, natural, typed
from .names import HEX64, MAX_CHUNK_SIZE, MAX_DRIVES, MAX_STORED_SIZE, METHODS, SEALED_NAMES, SEGMENT_NAME
from .paths import decode_path, encode_path, path_json


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk: where its stored bytes are, how they were stored, and both hashes.

    In version 1 ``id`` counts chunks across the whole shipment from 0, so a file's data continues from chunk
    ``id`` into ``id + 1`` even when that chunk is on the next drive. In version 2 ids count from 0 on every drive
    (docs/format.md 19.4): a chunk is named by (drive, id), and a file goes on through its piece's ``next_drive``.
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
            id=natural(raw, "id", problems),
            segment=typed(raw, "segment", str, problems),
            offset=natural(raw, "offset", problems),
            stored_size=natural(raw, "stored_size", problems),
            raw_size=natural(raw, "raw_size", problems),
            method=typed(raw, "method", str, problems),
            stored_blake3=hex_digest(raw, "stored_blake3", problems),
            raw_blake3=hex_digest(raw, "raw_blake3", problems),
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
        check("chunk", problems)
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
            name=typed(raw, "name", str, problems),
            size=natural(raw, "size", problems),
            blake3=hex_digest(raw, "blake3", problems),
            chunks=natural(raw, "chunks", problems),
        )
        if record.name is not None and not SEGMENT_NAME.fullmatch(record.name):
            problems.append(f"segment name {record.name!r} is not of the form segments/sNNNNNN.seg")
        check("segment", problems)
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
        mode = natural(raw, "mode", problems)
        if mode > 0o7777:
            problems.append("'mode' has bits beyond 0o7777")
        mtime = typed(raw, "mtime_ns", int, problems)
        return cls(mode, mtime or 0, natural(raw, "uid", problems), natural(raw, "gid", problems))


@dataclass(frozen=True)
class FileRecord:
    """A regular file, or a piece of one, carried by this drive.

    The piece's ``length`` bytes start at raw offset ``chunk_offset`` of chunk ``chunk`` and continue through
    the following chunks; they are bytes ``offset`` ... ``offset + length`` of the file. Only the last piece
    of a file (``final``) carries its size, whole-file BLAKE3 and metadata; pieces on earlier drives were
    written before the end of the file had been read. An empty file has ``length`` 0 and ``chunk`` -1.

    Version 2 (docs/format.md 19.4): every non-final piece names the data drive of the file's next piece,
    ``next_drive`` (the same lane, ``lane_seq`` one higher); final pieces, and every piece of version 1, have None.
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
    next_drive: int | None = None
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
        elif self.next_drive is not None:
            out["next_drive"] = self.next_drive
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
        elif self.next_drive is not None:
            line += f',"next_drive":{self.next_drive}'
        return (line + "}\n").encode("ascii")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileRecord:
        path, offset, length, chunk, chunk_offset = (
            raw.get("path"), raw.get("offset"), raw.get("length"), raw.get("chunk"), raw.get("chunk_offset")
        )  # fmt: skip
        size, digest = raw.get("size"), raw.get("blake3")
        # The usual record, a file's final piece (a manifest has one per file), checked in one expression, as
        # every check below would find it: anything else is checked field by field below, which names what is wrong.
        if (
            raw.get("final") is True and type(path) is str and "path_b64" not in raw and type(offset) is int
            and type(length) is int and type(chunk) is int and type(chunk_offset) is int and type(size) is int
            and type(digest) is str and offset >= 0 and length >= 0 and chunk_offset >= 0 and size == offset + length
            and (chunk >= 0 if length else chunk == -1 and chunk_offset == 0) and HEX64.fullmatch(digest)
        ):  # fmt: skip
            problems: list[str] = []
            meta = Metadata.from_json(raw, problems)
            if not problems:
                with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: refused below, with its reason
                    path_bytes = path.encode("utf-8")
                    return cls(path_bytes, offset, length, chunk, chunk_offset, True, size, digest, meta,
                               raw.get("changed") is True)  # fmt: skip
        problems = []
        final = typed(raw, "final", bool, problems)
        record = cls(
            path=decode_path("path", raw),
            offset=natural(raw, "offset", problems),
            length=natural(raw, "length", problems),
            chunk=typed(raw, "chunk", int, problems),
            chunk_offset=natural(raw, "chunk_offset", problems),
            final=bool(final),
            size=natural(raw, "size", problems) if final else None,
            blake3=hex_digest(raw, "blake3", problems) if final else None,
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
        check("file", problems)
        return record

    @classmethod
    def from_v2(cls, raw: dict[str, Any]) -> FileRecord:
        """A version 2 file record: as version 1's, with ``next_drive`` on every non-final piece and on no other
        (docs/format.md 19.4); where it leads is the reader's to check, against the catalog's lanes."""
        record = cls.from_json(raw)
        if record.final:
            if "next_drive" in raw:
                raise FormatError("bad file record: a final piece has no 'next_drive'")
            return record
        problems: list[str] = []
        next_drive = bounded(raw, "next_drive", 1, MAX_DRIVES, problems)
        check("file", problems)
        return replace(record, next_drive=next_drive)


@dataclass(frozen=True)
class SealedRecord:
    """Version 2, encrypted shipments (docs/format.md 19.8.3): a sealed or key file on the drive (``index.age``,
    ``keys/recipients.age``, ``keys/passphrase.age``; in the catalog, ``catalog.age``), pinned by size and BLAKE3."""

    name: str
    size: int
    blake3: str
    TYPE: ClassVar[str] = "sealed"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SealedRecord:
        problems: list[str] = []
        record = cls(
            name=typed(raw, "name", str, problems),
            size=natural(raw, "size", problems),
            blake3=hex_digest(raw, "blake3", problems),
        )
        if record.name is not None and record.name not in SEALED_NAMES:
            problems.append(f"name {record.name!r} is not one of {', '.join(SEALED_NAMES)}")
        check("sealed", problems)
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
        check("dir", problems)
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
        check("symlink", problems)
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
        record = cls(decode_path("path", raw), typed(raw, "reason", str, problems))
        check("skipped", problems)
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
        record = cls(natural(raw, "records", problems))
        check("end", problems)
        return record


EntryRecord = FileRecord | DirRecord | SymlinkRecord | HardlinkRecord | SkippedRecord
#: A manifest's records after its header (``sealed`` ones in version 2 only).
BodyRecord = ChunkRecord | SegmentRecord | EntryRecord | SealedRecord | EndRecord

_MANIFEST_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (ChunkRecord, SegmentRecord, FileRecord, DirRecord, SymlinkRecord, HardlinkRecord, SkippedRecord)
}


def manifest_record_from_json(raw: dict[str, Any]) -> BodyRecord:
    """The record a manifest line holds (not the header, which :class:`ManifestHeader` reads)."""
    kind = raw.get("type")
    if kind == EndRecord.TYPE:
        return EndRecord.from_json(raw)
    cls = _MANIFEST_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FormatError(f"unknown manifest record type {kind!r}")
    result: BodyRecord = cls.from_json(raw)
    return result


_MANIFEST_TYPES_V2: dict[str, Any] = {**_MANIFEST_TYPES, SealedRecord.TYPE: SealedRecord}


def manifest_record_from_v2(raw: dict[str, Any]) -> BodyRecord:
    """A version 2 data drive's manifest record (docs/format.md 19.4, 19.8.3): version 1's, file records with
    ``next_drive``, and ``sealed`` records."""
    kind = raw.get("type")
    if kind == FileRecord.TYPE:  # the usual record, without a look-up
        return FileRecord.from_v2(raw)
    if kind == EndRecord.TYPE:
        return EndRecord.from_json(raw)
    cls = _MANIFEST_TYPES_V2.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FormatError(f"unknown manifest record type {kind!r}")
    result: BodyRecord = cls.from_json(raw)
    return result
