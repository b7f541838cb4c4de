"""The records of an encrypted shipment (docs/format.md 19.8.3): what its public manifest holds in place of the
version 2 chunk records (:class:`PublicChunk`; its ``sealed`` records are records.py's :class:`SealedRecord`), what
its sealed index holds (:class:`IndexHeader`, :class:`SegmentKeyRecord`, :class:`SealedChunk` and the entry
records), and the one record a reader with the key rebuilds from a public and a sealed chunk record
(:func:`merge_chunk`).

Plain data and (de)serialisation only, as the rest of format/; the age files themselves are drive/sealed.py's and
the cipher crypto/'s. No ``repr`` or message here holds a segment key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import FormatError
from .fields import check, hex_digest, natural, typed
from .names import MAX_CHUNK_SIZE, MAX_STORED_SIZE, METHODS, SEGMENT_NAME
from .records import ChunkRecord, EndRecord, SealedRecord, SegmentRecord

INDEX_FORMAT = "sneakernet-index"
SEALED_CATALOG_FORMAT = "sneakernet-sealed-catalog"
#: The version of the sealed files: encrypted shipments are format version 2 (19.8).
SEALED_VERSION = 2
#: The tag each sealed chunk's stored bytes end with (crypto/aead.py's TAG_SIZE, pinned by 19.8.2).
TAG_SIZE = 16

_KEY_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PublicChunk:
    """A chunk as the public manifest shows it: where its stored bytes are and their BLAKE3 (of the ciphertext
    and tag); no raw size, no method, no hash of plaintext."""

    id: int
    segment: str
    offset: int
    stored_size: int
    stored_blake3: str
    TYPE: ClassVar[str] = "chunk"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PublicChunk:
        problems: list[str] = []
        record = cls(
            id=natural(raw, "id", problems),
            segment=typed(raw, "segment", str, problems),
            offset=natural(raw, "offset", problems),
            stored_size=natural(raw, "stored_size", problems),
            stored_blake3=hex_digest(raw, "stored_blake3", problems),
        )
        if record.segment is not None and not SEGMENT_NAME.fullmatch(record.segment):
            problems.append(f"segment name {record.segment!r} is not of the form segments/sNNNNNN.seg")
        if record.stored_size > MAX_STORED_SIZE:
            problems.append(f"stored_size above the limit of {MAX_STORED_SIZE}")
        if record.stored_size <= TAG_SIZE:
            problems.append(f"stored_size {record.stored_size} cannot hold a frame and its {TAG_SIZE}-byte tag")
        for name in set(raw) - {"type", "id", "segment", "offset", "stored_size", "stored_blake3"}:
            if name in ("raw_size", "method", "raw_blake3"):
                problems.append(f"{name!r} in a public chunk record (it belongs in the sealed index)")
        check("public chunk", problems)
        return record


@dataclass(frozen=True)
class SealedChunk:
    """A chunk as the sealed index describes it: its raw size, method and the BLAKE3 of its raw bytes."""

    id: int
    raw_size: int
    method: str
    raw_blake3: str
    TYPE: ClassVar[str] = "chunk"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, **vars(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SealedChunk:
        problems: list[str] = []
        record = cls(
            id=natural(raw, "id", problems),
            raw_size=natural(raw, "raw_size", problems),
            method=typed(raw, "method", str, problems),
            raw_blake3=hex_digest(raw, "raw_blake3", problems),
        )
        if record.method not in METHODS:
            problems.append(f"method {record.method!r} is not one of {', '.join(METHODS)}")
        if record.raw_size > MAX_CHUNK_SIZE:
            problems.append(f"raw_size above the limit of {MAX_CHUNK_SIZE}")
        if record.raw_size == 0:
            problems.append("raw_size is 0: a chunk holds at least one byte")
        check("sealed chunk", problems)
        return record


@dataclass(frozen=True)
class SegmentKeyRecord:
    """The key of one segment file, in the sealed index only. Its ``repr`` hides the key."""

    segment: str
    key: str = field(repr=False)
    TYPE: ClassVar[str] = "segment_key"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "segment": self.segment, "key": self.key}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SegmentKeyRecord:
        problems: list[str] = []
        segment = typed(raw, "segment", str, problems)
        key = raw.get("key")
        if segment is not None and not SEGMENT_NAME.fullmatch(segment):
            problems.append(f"segment name {segment!r} is not of the form segments/sNNNNNN.seg")
        # The key is never echoed back: a message names what is wrong with it, not its value.
        if not isinstance(key, str) or not _KEY_HEX.fullmatch(key):
            problems.append("'key' missing or not 64 lowercase hex digits")
        check("segment_key", problems)
        return cls(segment, key)  # type: ignore[arg-type]  # checked just above


@dataclass(frozen=True)
class IndexHeader:
    """First line of a drive's sealed index: which shipment and drive it describes."""

    shipment: str
    drive: int
    version: int = SEALED_VERSION
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "format": INDEX_FORMAT,
            "version": self.version,
            "shipment": self.shipment,
            "drive": self.drive,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IndexHeader:
        if raw.get("type") != cls.TYPE or raw.get("format") != INDEX_FORMAT:
            raise FormatError("the sealed index does not start with its header record")
        if type(raw.get("version")) is not int or raw["version"] != SEALED_VERSION:
            raise FormatError(f"the sealed index is not of format version {SEALED_VERSION}")
        problems: list[str] = []
        header = cls(typed(raw, "shipment", str, problems), natural(raw, "drive", problems))
        check("index header", problems)
        return header


@dataclass(frozen=True)
class SealedCatalogHeader:
    """First line of ``catalog.age``: the shipment whose full summary and entries it holds (docs/format.md 19.8.3)."""

    shipment: str
    version: int = SEALED_VERSION
    TYPE: ClassVar[str] = "header"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "format": SEALED_CATALOG_FORMAT, "version": self.version, "shipment": self.shipment}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SealedCatalogHeader:
        if raw.get("type") != cls.TYPE or raw.get("format") != SEALED_CATALOG_FORMAT:
            raise FormatError("the sealed catalog does not start with its header record")
        if type(raw.get("version")) is not int or raw["version"] != SEALED_VERSION:
            raise FormatError(f"the sealed catalog is not of format version {SEALED_VERSION}")
        problems: list[str] = []
        header = cls(typed(raw, "shipment", str, problems))
        check("sealed catalog header", problems)
        return header


@dataclass(frozen=True)
class OpenableChunk(ChunkRecord):
    """A chunk record of an encrypted drive rebuilt from its public and sealed records, with what opening it
    needs beyond them: ``index``, its place among its segment's chunks (the nonce, 19.8.2), and the number of
    its segment. Everything that reads a clear drive's chunk records reads these the same way."""

    index: int = 0
    segment_number: int = 0


def segment_number(name: str) -> int:
    """The number of segment ``segments/sNNNNNN.seg`` (a name its record's parser already checked)."""
    return int(name[len("segments/s") : -len(".seg")])


def merge_chunk(public: PublicChunk, sealed: SealedChunk, index: int) -> OpenableChunk:
    """The whole chunk record of ``public`` and ``sealed`` (one chunk: their ids agree, else FormatError), the
    ``index``-th chunk of its segment."""
    if public.id != sealed.id:
        raise FormatError(
            f"the sealed index describes chunk {sealed.id} where the public manifest has chunk {public.id}"
        )
    return OpenableChunk(
        id=public.id,
        segment=public.segment,
        offset=public.offset,
        stored_size=public.stored_size,
        raw_size=sealed.raw_size,
        method=sealed.method,
        stored_blake3=public.stored_blake3,
        raw_blake3=sealed.raw_blake3,
        index=index,
        segment_number=segment_number(public.segment),
    )


def split_chunk(record: ChunkRecord) -> tuple[PublicChunk, SealedChunk]:
    """A whole chunk record as the public manifest and the sealed index hold it."""
    return (
        PublicChunk(record.id, record.segment, record.offset, record.stored_size, record.stored_blake3),
        SealedChunk(record.id, record.raw_size, record.method, record.raw_blake3),
    )


PublicRecord = PublicChunk | SegmentRecord | SealedRecord | EndRecord


def public_record_from_json(raw: dict[str, Any]) -> PublicRecord:
    """A record of an encrypted drive's public manifest after its header: chunks, segments, sealed files, the end.
    Any other record (an entry above all: it would show a path) is refused."""
    kind = raw.get("type")
    if kind == PublicChunk.TYPE:
        return PublicChunk.from_json(raw)
    if kind == SegmentRecord.TYPE:
        return SegmentRecord.from_json(raw)
    if kind == SealedRecord.TYPE:
        return SealedRecord.from_json(raw)
    if kind == EndRecord.TYPE:
        return EndRecord.from_json(raw)
    raise FormatError(f"record type {str(kind)[:40]!r} has no place in an encrypted drive's public manifest")


def index_record_from_json(raw: dict[str, Any], entry: Callable[[dict[str, Any]], Any]) -> Any:
    """A record of a sealed index after its header: a segment key, a sealed chunk, the end, or an entry record
    read by ``entry`` (the manifest record parser of the shipment's version); a segment record is refused (the
    public manifest holds those)."""
    kind = raw.get("type")
    if kind == SegmentKeyRecord.TYPE:
        return SegmentKeyRecord.from_json(raw)
    if kind == SealedChunk.TYPE:
        return SealedChunk.from_json(raw)
    if kind == EndRecord.TYPE:
        return EndRecord.from_json(raw)
    if kind == SegmentRecord.TYPE:
        raise FormatError("a segment record has no place in a sealed index")
    return entry(raw)
