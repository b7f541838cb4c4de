"""format/: every record's JSON, the refusals of bad records and other versions, the fingerprint, and the
golden format-v1 fixture (a real shipment written by sneakernet 0.1) read back record by record."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import invoke_cli as cli
from conftest import write_file
from craft import RecordFileWriter
from sneakernet import PackOptions, pack
from sneakernet.chunks.compress import store_frame
from sneakernet.drive import DriveReader
from sneakernet.errors import ExitCode, FormatError, IntegrityError, UnsupportedVersion
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    MAX_CHUNK_SIZE,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    Metadata,
    SegmentRecord,
    SkippedRecord,
    SymlinkRecord,
    catalog_record_from_json,
    drive_label,
    fingerprint,
    manifest_record_from_json,
    segment_name,
    short_fingerprint,
    show_path,
)
from sneakernet.format.checksums import checksum_lines, parse_checksums
from sneakernet.format.container import encode_record, read_records

H1 = "0123456789abcdef" * 4
H2 = "fedcba9876543210" * 4
META = Metadata(mode=0o4755, mtime_ns=1_700_000_000_123_456_789, uid=1000, gid=100)


def via_line(record: Any) -> dict[str, Any]:
    """``record`` as its manifest line and back to a dict, as a reader sees it."""
    line = encode_record(record.to_json())
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1, "a record must be one line"
    assert line.isascii()
    raw = json.loads(line)
    assert isinstance(raw, dict)
    return raw


# --- names ----------------------------------------------------------------------------------------------------


def test_names() -> None:
    assert drive_label(1) == "drive-0001"
    assert drive_label(123) == "drive-0123"
    assert drive_label(12345) == "drive-12345"
    assert segment_name(1) == "segments/s000001.seg"
    assert segment_name(999999) == "segments/s999999.seg"
    assert show_path(b"a\nb") == "a\\nb"
    assert show_path(b"caf\xe9") == "caf\\xe9"
    assert show_path("é".encode()) == "é"


# --- round trips ----------------------------------------------------------------------------------------------

MANIFEST_RECORDS = [
    ChunkRecord(7, "segments/s000002.seg", 123, 456, 789, "zstd", H1, H2),
    ChunkRecord(0, "segments/s000001.seg", 0, 13, 1, "store", H2, H1),
    ChunkRecord(1, "segments/s000001.seg", 1, 10, MAX_CHUNK_SIZE, "store", H2, H1),
    SegmentRecord("segments/s000001.seg", 2**30, H1, 256),
    FileRecord(b"dir/file.bin", 0, 100, 3, 17, True, 100, H1, META),
    FileRecord(b"dir/file.bin", 0, 100, 3, 17, True, 100, H1, META, changed=True),
    FileRecord(b"big", 4096, 8192, 12, 0, False),
    FileRecord(b"big", 12288, 10, 14, 0, True, 12298, H2, Metadata(0o644, -5, 0, 0)),
    FileRecord(b"empty", 0, 0, -1, 0, True, 0, H1, Metadata(0o600, 0, 0, 0)),
    FileRecord(b"caf\xe9/\xff\xfe.bin", 0, 1, 0, 0, True, 1, H1, META),
    FileRecord(b"line\nbreak\r\x00\x01", 0, 1, 0, 0, True, 1, H1, META),
    FileRecord("日本語/ファイル 😀.txt".encode(), 0, 1, 0, 0, True, 1, H1, META),
    DirRecord(b"dir", Metadata(0o7777, 1, 2**32 - 1, 2**32 - 1)),
    DirRecord(b"\xff\xfe", META),
    SymlinkRecord(b"link", b"../target", Metadata(0o777, 5, 0, 0)),
    SymlinkRecord(b"link\xff", b"target-\xfe\xff", META),
    SymlinkRecord(b"nl\nlink", b"t\narget", META),
    HardlinkRecord(b"second", b"first"),
    HardlinkRecord(b"second\xff", b"first\xfe"),
    SkippedRecord(b"fifo", "special file (FIFO, socket or device)"),
    SkippedRecord(b"\x80", "unreadable: Permission denied"),
    EndRecord(17),
]


@pytest.mark.parametrize("record", MANIFEST_RECORDS, ids=lambda r: type(r).__name__)
def test_manifest_record_round_trip(record: Any) -> None:
    raw = via_line(record)
    assert raw["type"] == record.TYPE
    assert type(record).from_json(raw) == record
    assert manifest_record_from_json(raw) == record


def test_manifest_header_round_trip() -> None:
    header = ManifestHeader("ab" * 16, 3, "2024-01-02T03:04:05Z", 4 * 2**20, 2**30, "sneakernet 0.1.0")
    raw = via_line(header)
    assert raw["type"] == "header"
    assert raw["format"] == "sneakernet-manifest"
    assert raw["version"] == FORMAT_VERSION == 1
    assert ManifestHeader.from_json(raw) == header


@pytest.mark.parametrize(
    "record",
    [
        CatalogDrive(2, "drive-0002", 5555, H1, 10**12),
        CatalogEntry(b"a/b", "file", 2**63, 1, 4),
        CatalogEntry(b"\xff\n", "symlink", 3, 2, 2),
        CatalogEntry(b"", "dir", 0, 1, 1),
        EndRecord(123456),
    ],
    ids=lambda r: type(r).__name__,
)
def test_catalog_record_round_trip(record: Any) -> None:
    raw = via_line(record)
    assert catalog_record_from_json(raw) == record


def test_catalog_header_round_trip() -> None:
    header = CatalogHeader("cd" * 16, 12, H2, "2024-01-02T03:04:05Z", "sneakernet 0.1.0", 10**7, 10**13, 9 * 10**12)
    raw = via_line(header)
    assert raw["type"] == "header"
    assert raw["format"] == "sneakernet-catalog"
    assert raw["version"] == 1
    assert CatalogHeader.from_json(raw) == header


def test_drive_label_round_trip() -> None:
    label = DriveLabel(
        "ef" * 16, 2, "drive-0002", "2024-01-02T03:04:05Z", "sneakernet 0.1.0", 999, H1, 3, 10**9, 2 * 10**9
    )
    data = label.to_bytes()
    assert data.endswith(b"}\n")
    raw = json.loads(data)
    assert raw["format"] == "sneakernet-drive"
    assert raw["version"] == 1
    assert DriveLabel.from_json(raw) == label
    assert DriveLabel.from_bytes(data) == label


def test_utf8_path_is_written_as_path() -> None:
    raw = FileRecord("é/ü\nx".encode(), 0, 0, -1, 0, True, 0, H1, META).to_json()
    assert raw["path"] == "é/ü\nx"
    assert "path_b64" not in raw


def test_non_utf8_path_is_written_as_path_b64() -> None:
    raw = FileRecord(b"caf\xe9", 0, 0, -1, 0, True, 0, H1, META).to_json()
    assert "path" not in raw
    assert raw["path_b64"] == "Y2Fm6Q=="
    assert base64.b64decode(raw["path_b64"]) == b"caf\xe9"


def test_non_utf8_symlink_target_is_written_as_target_b64() -> None:
    raw = SymlinkRecord(b"link", b"\xff\xfe", META).to_json()
    assert raw["path"] == "link"
    assert raw["target_b64"] == "//4="
    assert "target" not in raw


def test_file_record_fields() -> None:
    final = FileRecord(b"f", 10, 5, 3, 7, True, 15, H1, META, changed=True).to_json()
    assert final == {
        "type": "file", "path": "f", "offset": 10, "length": 5, "chunk": 3, "chunk_offset": 7, "final": True,
        "size": 15, "blake3": H1, "mode": 0o4755, "mtime_ns": 1_700_000_000_123_456_789, "uid": 1000, "gid": 100,
        "changed": True,
    }  # fmt: skip
    piece = FileRecord(b"f", 0, 10, 1, 0, False).to_json()
    assert piece == {
        "type": "file",
        "path": "f",
        "offset": 0,
        "length": 10,
        "chunk": 1,
        "chunk_offset": 0,
        "final": False,
    }
    unchanged = FileRecord(b"f", 0, 1, 0, 0, True, 1, H1, META).to_json()
    assert "changed" not in unchanged


@settings(max_examples=300, deadline=None)
@given(
    offset=st.integers(0, 2**40),
    length=st.integers(0, 2**30),
    chunk=st.integers(0, 2**31),
    chunk_offset=st.integers(0, 2**30),
    changed=st.booleans(),
    mode=st.integers(0, 0o7777),
)
def test_a_final_piece_parses_to_the_record_written(
    offset: int, length: int, chunk: int, chunk_offset: int, changed: bool, mode: int
) -> None:
    """A final piece is parsed by one expression (the usual record): each field lands where it was written."""
    chunk, chunk_offset = (chunk, chunk_offset) if length else (-1, 0)
    meta = Metadata(mode, 1_700_000_000_123_456_789, 1000, 100)
    record = FileRecord(b"d/f", offset, length, chunk, chunk_offset, True, offset + length, H1, meta, changed)
    assert FileRecord.from_json(via_line(record)) == record
    assert manifest_record_from_json(record.to_json()) == record


@settings(max_examples=200, deadline=None)
@given(path=st.binary(max_size=300), target=st.binary(max_size=300))
def test_any_bytes_path_round_trips(path: bytes, target: bytes) -> None:
    for record in (
        FileRecord(path, 0, 1, 0, 0, True, 1, H1, META),
        SymlinkRecord(path, target, META),
        HardlinkRecord(path, target),
        DirRecord(path, META),
        SkippedRecord(path, "x"),
        CatalogEntry(path, "file", 1, 1, 1),
    ):
        raw = via_line(record)
        assert ("path" in raw) != ("path_b64" in raw)
        assert type(record).from_json(raw) == record


# --- refusals -------------------------------------------------------------------------------------------------

CHUNK = ChunkRecord(4, "segments/s000001.seg", 10, 20, 30, "zstd", H1, H2).to_json()
SEGMENT = SegmentRecord("segments/s000001.seg", 100, H1, 2).to_json()
FINAL = FileRecord(b"f", 10, 5, 3, 0, True, 15, H1, META).to_json()
PIECE = FileRecord(b"f", 0, 10, 1, 0, False).to_json()
DIR = DirRecord(b"d", META).to_json()
SYMLINK = SymlinkRecord(b"l", b"t", META).to_json()
SKIPPED = SkippedRecord(b"s", "why").to_json()
END = EndRecord(3).to_json()
HEADER = ManifestHeader("ab" * 16, 1, "2024-01-02T03:04:05Z", 2**20, 2**30, "sneakernet 0.1.0").to_json()
LABEL = DriveLabel("ab" * 16, 1, "drive-0001", "2024-01-02T03:04:05Z", "t", 9, H1, 1, 2, 3).to_json()
CAT_HEADER = CatalogHeader("ab" * 16, 1, H1, "2024-01-02T03:04:05Z", "t", 1, 2, 3).to_json()
CAT_DRIVE = CatalogDrive(1, "drive-0001", 9, H1, 2).to_json()
CAT_ENTRY = CatalogEntry(b"p", "file", 1, 1, 1).to_json()

PARSERS: dict[str, Any] = {
    "header": ManifestHeader.from_json,
    "label": DriveLabel.from_json,
    "catalog-header": CatalogHeader.from_json,
}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with ``changes`` applied; a value of ``...`` deletes the key."""
    out = dict(base)
    for key, value in changes.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return out


BAD_RECORDS = [
    # (record, the problem the message must name)
    (changed(CHUNK, segment=...), "'segment' missing or not str"),
    (changed(CHUNK, segment=5), "'segment' missing or not str"),
    (changed(CHUNK, id="4"), "'id' missing or not int"),
    (changed(CHUNK, id=True), "'id' missing or not int"),
    (changed(CHUNK, id=4.0), "'id' missing or not int"),
    (changed(CHUNK, id=None), "'id' missing or not int"),
    (changed(CHUNK, offset=-1), "'offset' is negative"),
    (changed(CHUNK, stored_size=-20), "'stored_size' is negative"),
    (changed(CHUNK, stored_blake3=H1.upper()), "'stored_blake3' is not 64 lowercase hex digits"),
    (changed(CHUNK, stored_blake3=H1[:63]), "'stored_blake3' is not 64 lowercase hex digits"),
    (changed(CHUNK, raw_blake3=H1 + "0"), "'raw_blake3' is not 64 lowercase hex digits"),
    (changed(CHUNK, raw_blake3="g" * 64), "'raw_blake3' is not 64 lowercase hex digits"),
    (changed(CHUNK, raw_blake3=...), "'raw_blake3' missing or not str"),
    (changed(CHUNK, method="lz4"), "method 'lz4' is not one of zstd, store"),
    (changed(CHUNK, method="ZSTD"), "method 'ZSTD' is not one of zstd, store"),
    (changed(CHUNK, raw_size=MAX_CHUNK_SIZE + 1), f"raw_size above the limit of {MAX_CHUNK_SIZE}"),
    (
        changed(CHUNK, segment="segments/s1.seg"),
        "segment name 'segments/s1.seg' is not of the form segments/sNNNNNN.seg",
    ),
    (changed(CHUNK, segment="../s000001.seg"), "segment name '../s000001.seg' is not of the form segments/sNNNNNN.seg"),
    (changed(SEGMENT, name="/etc/passwd"), "segment name '/etc/passwd' is not of the form segments/sNNNNNN.seg"),
    (changed(SEGMENT, size=1.5), "'size' missing or not int"),
    (changed(SEGMENT, blake3=...), "'blake3' missing or not str"),
    (changed(SEGMENT, chunks=-1), "'chunks' is negative"),
    (changed(FINAL, size=16), "a final piece must end at the file's size"),
    (changed(FINAL, size=14), "a final piece must end at the file's size"),
    (changed(FINAL, mode=0o10000), "'mode' has bits beyond 0o7777"),
    (changed(FINAL, mode=0o170644), "'mode' has bits beyond 0o7777"),
    (changed(FINAL, mode=-1), "'mode' is negative"),
    (changed(FINAL, mtime_ns="0"), "'mtime_ns' missing or not int"),
    (changed(FINAL, uid=-1), "'uid' is negative"),
    (changed(FINAL, gid=...), "'gid' missing or not int"),
    (changed(FINAL, blake3="0" * 64 + "0"), "'blake3' is not 64 lowercase hex digits"),
    (changed(FINAL, final="true"), "'final' missing or not bool"),
    (changed(FINAL, final=1), "'final' missing or not bool"),
    (changed(FINAL, chunk=-1), "'chunk' must be -1 exactly when 'length' is 0"),
    (changed(FINAL, chunk="3"), "'chunk' missing or not int"),
    (changed(FINAL, length=-5, size=5), "'length' is negative"),
    (changed(FINAL, path=...), "record has no 'path'"),
    (changed(FINAL, path=7), "field 'path' is not a string"),
    (changed(FINAL, path=..., path_b64="not base64!"), "field path_b64 is not valid base64"),
    (changed(FINAL, path=..., path_b64="Y2Fm6Q="), "field path_b64 is not valid base64"),
    (changed(FINAL, path=..., path_b64=5), "field path_b64 is not valid base64"),
    # What a final piece's one-expression check (FileRecord.from_json's usual record) must leave to the checks below it.
    (changed(FINAL, chunk_offset=-1), "'chunk_offset' is negative"),
    (changed(FINAL, offset=-1, size=4), "'offset' is negative"),
    (changed(FINAL, size="15"), "'size' missing or not int"),
    (changed(FINAL, size=True), "'size' missing or not int"),
    (changed(FINAL, blake3=None), "'blake3' missing or not str"),
    (changed(FINAL, chunk=-2), "'chunk' out of range"),
    (changed(FINAL, chunk=True), "'chunk' missing or not int"),
    (changed(FINAL, length=0, size=10, chunk=3), "'chunk' must be -1 exactly when 'length' is 0"),
    (changed(FINAL, mode=...), "'mode' missing or not int"),
    (changed(FINAL, path="f\udce9"), "field 'path' holds a lone surrogate"),
    (changed(PIECE, final=...), "'final' missing or not bool"),
    (changed(PIECE, chunk=-1), "'chunk' must be -1 exactly when 'length' is 0"),
    (changed(PIECE, length=0, chunk=-2), "'chunk' out of range"),
    (changed(PIECE, length=0, chunk=3), "'chunk' must be -1 exactly when 'length' is 0"),
    (changed(FINAL, length=0, offset=15, chunk=-1, chunk_offset=4), "a piece without bytes must have 'chunk_offset' 0"),
    (changed(FINAL, path_b64="Y2Fm6Q=="), "record has both 'path' and path_b64"),
    (changed(CHUNK, raw_size=0), "raw_size is 0: a chunk holds at least one byte"),
    (changed(DIR, mode=0o20000), "'mode' has bits beyond 0o7777"),
    (changed(DIR, mtime_ns=...), "'mtime_ns' missing or not int"),
    (changed(SYMLINK, target=...), "record has no 'target'"),
    (changed(SYMLINK, uid="0"), "'uid' missing or not int"),
    (changed(SKIPPED, reason=...), "'reason' missing or not str"),
    (changed(END, records=-1), "'records' is negative"),
    (changed(END, records="3"), "'records' missing or not int"),
    (changed(HEADER, chunk_size=MAX_CHUNK_SIZE + 1), f"chunk_size above the limit of {MAX_CHUNK_SIZE}"),
    (changed(HEADER, drive=-1), "'drive' is negative"),
    (changed(HEADER, shipment=...), "'shipment' missing or not str"),
    (changed(LABEL, manifest_blake3="x"), "'manifest_blake3' is not 64 lowercase hex digits"),
    (changed(LABEL, manifest_size=-1), "'manifest_size' is negative"),
    (changed(LABEL, segments=...), "'segments' missing or not int"),
    (changed(CAT_HEADER, fingerprint=H1[:-1]), "'fingerprint' is not 64 lowercase hex digits"),
    (changed(CAT_HEADER, drives="2"), "'drives' missing or not int"),
    (changed(CAT_DRIVE, manifest_blake3=...), "'manifest_blake3' missing or not str"),
    (changed(CAT_DRIVE, stored_bytes=-3), "'stored_bytes' is negative"),
    (changed(CAT_ENTRY, size=-1), "'size' is negative"),
    (changed(CAT_ENTRY, kind=None), "'kind' missing or not str"),
    (changed(CAT_ENTRY, path=...), "record has no 'path'"),
]


def parse_any(raw: dict[str, Any]) -> Any:
    if raw.get("format") == "sneakernet-manifest":
        return ManifestHeader.from_json(raw)
    if raw.get("format") == "sneakernet-drive":
        return DriveLabel.from_json(raw)
    if raw.get("format") == "sneakernet-catalog":
        return CatalogHeader.from_json(raw)
    if raw["type"] in ("drive", "entry"):
        return catalog_record_from_json(raw)
    return manifest_record_from_json(raw)


@pytest.mark.parametrize(("raw", "problem"), BAD_RECORDS, ids=lambda x: x if isinstance(x, str) else "")
def test_bad_record_is_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)) as info:
        parse_any(raw)
    assert type(info.value) is FormatError
    assert info.value.exit_code == ExitCode.PROBLEMS == 1


def test_all_problems_are_reported_together() -> None:
    raw = changed(CHUNK, id=-1, offset="x", method="lz4")
    with pytest.raises(FormatError) as info:
        ChunkRecord.from_json(raw)
    assert str(info.value) == (
        "bad chunk record: 'id' is negative; 'offset' missing or not int; method 'lz4' is not one of zstd, store"
    )


def test_limits_are_inclusive() -> None:
    assert ChunkRecord.from_json(changed(CHUNK, raw_size=MAX_CHUNK_SIZE)).raw_size == MAX_CHUNK_SIZE
    assert ManifestHeader.from_json(changed(HEADER, chunk_size=MAX_CHUNK_SIZE)).chunk_size == MAX_CHUNK_SIZE
    meta = FileRecord.from_json(changed(FINAL, mode=0o7777)).meta
    assert meta is not None and meta.mode == 0o7777
    assert FileRecord.from_json(changed(PIECE, length=0, chunk=-1)).chunk == -1


def test_unknown_fields_are_ignored() -> None:
    assert ChunkRecord.from_json(changed(CHUNK, future_field=[1, 2])) == ChunkRecord.from_json(CHUNK)


def test_changed_only_when_true() -> None:
    assert FileRecord.from_json(changed(FINAL, changed=True)).changed is True
    assert FileRecord.from_json(changed(FINAL, changed=1)).changed is False
    assert FileRecord.from_json(FINAL).changed is False


@pytest.mark.parametrize("kind", ["header", "nonsense", "", None, 5, "CHUNK"])
def test_manifest_record_of_unknown_type(kind: Any) -> None:
    raw = changed(CHUNK, type=kind)
    with pytest.raises(FormatError, match=re.escape(f"unknown manifest record type {kind!r}")):
        manifest_record_from_json(raw)


def test_manifest_record_without_type() -> None:
    with pytest.raises(FormatError, match="unknown manifest record type None"):
        manifest_record_from_json(changed(CHUNK, type=...))


@pytest.mark.parametrize("kind", ["header", "chunk", "file", None, 3])
def test_catalog_record_of_unknown_type(kind: Any) -> None:
    with pytest.raises(FormatError, match=re.escape(f"unknown catalog record type {kind!r}")):
        catalog_record_from_json(changed(CAT_ENTRY, type=kind))


@pytest.mark.parametrize("parse", [manifest_record_from_json, catalog_record_from_json])
@pytest.mark.parametrize("kind", [["chunk"], {"a": 1}])
def test_record_with_unhashable_type_is_a_format_error(parse: Any, kind: Any) -> None:
    with pytest.raises(FormatError):
        parse(changed(CHUNK, type=kind))


# --- versions -------------------------------------------------------------------------------------------------

VERSIONED = [
    ("manifest", HEADER, ManifestHeader.from_json),
    ("drive.json", LABEL, DriveLabel.from_json),
    ("catalog", CAT_HEADER, CatalogHeader.from_json),
]


@pytest.mark.parametrize(("what", "raw", "parse"), VERSIONED, ids=[v[0] for v in VERSIONED])
@pytest.mark.parametrize("version", [3, 4, 2**16])
def test_a_newer_version_says_to_upgrade(what: str, raw: dict[str, Any], parse: Any, version: int) -> None:
    with pytest.raises(UnsupportedVersion) as info:
        parse(changed(raw, version=version))
    assert info.value.exit_code == ExitCode.USAGE == 2
    kind = raw["format"].split("-")[1]
    assert str(info.value) == (
        f"this {kind} is format version {version}, written by a newer sneakernet; this one reads version 2: upgrade"
    )


@pytest.mark.parametrize(("what", "raw", "parse"), VERSIONED, ids=[v[0] for v in VERSIONED])
@pytest.mark.parametrize("version", [0, -1, 2**16 + 1, "1", None, True, 1.0, "9" * 100])
def test_a_version_no_sneakernet_writes_is_damage(what: str, raw: dict[str, Any], parse: Any, version: Any) -> None:
    # Not a newer release's: upgrading would not help, and the message says so (the value cut short).
    with pytest.raises(UnsupportedVersion) as info:
        parse(changed(raw, version=version))
    assert info.value.exit_code == 2
    shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:40] + "..."
    assert str(info.value) == (
        f"{what} has format version {shown}, which no sneakernet writes (this one reads version 2): "
        "it is damaged or not sneakernet's"
    )


@pytest.mark.parametrize(("what", "raw", "parse"), VERSIONED, ids=[v[0] for v in VERSIONED])
def test_version_is_checked_before_the_fields(what: str, raw: dict[str, Any], parse: Any) -> None:
    # A version 3 record may have other fields: the version is what the reader must report.
    with pytest.raises(UnsupportedVersion):
        parse({"type": "header", "format": raw["format"], "version": 3})


@pytest.mark.parametrize(("what", "raw", "parse"), VERSIONED, ids=[v[0] for v in VERSIONED])
@pytest.mark.parametrize("fmt", ["sneakernet-other", "", None, 1, "SNEAKERNET-DRIVE"])
def test_wrong_format_is_a_format_error(what: str, raw: dict[str, Any], parse: Any, fmt: Any) -> None:
    with pytest.raises(FormatError) as info:
        parse(changed(raw, format=fmt))
    assert not isinstance(info.value, UnsupportedVersion)
    assert info.value.exit_code == 1
    assert f"(format {fmt!r})" in str(info.value)


@pytest.mark.parametrize(("what", "raw", "parse"), VERSIONED, ids=[v[0] for v in VERSIONED])
def test_formats_are_not_interchangeable(what: str, raw: dict[str, Any], parse: Any) -> None:
    for _, other, _ in VERSIONED:
        if other["format"] != raw["format"]:
            with pytest.raises(FormatError, match=re.escape(f"(format {other['format']!r})")):
                parse(changed(raw, format=other["format"]))


@pytest.mark.parametrize(
    ("parse", "raw", "field"),
    [
        (ChunkRecord.from_json, CHUNK, "raw_blake3"),
        (SegmentRecord.from_json, SEGMENT, "blake3"),
        (DriveLabel.from_json, LABEL, "manifest_blake3"),
        (CatalogHeader.from_json, CAT_HEADER, "fingerprint"),
    ],
)
def test_digest_with_trailing_newline_is_refused(parse: Any, raw: dict[str, Any], field: str) -> None:
    with pytest.raises(FormatError, match=re.escape(f"{field!r} is not 64 lowercase hex digits")):
        parse(changed(raw, **{field: H1 + "\n"}))


@pytest.mark.parametrize(
    ("parse", "raw", "field"), [(ChunkRecord.from_json, CHUNK, "segment"), (SegmentRecord.from_json, SEGMENT, "name")]
)
def test_segment_name_with_trailing_newline_is_refused(parse: Any, raw: dict[str, Any], field: str) -> None:
    with pytest.raises(FormatError, match=re.escape("is not of the form segments/sNNNNNN.seg")):
        parse(changed(raw, **{field: "segments/s000001.seg\n"}))


@pytest.mark.parametrize("version", [True, 1.0])
def test_version_must_be_the_integer_1(version: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        CatalogHeader.from_json(changed(CAT_HEADER, version=version))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "drive.json is not valid JSON"),
        (b"not json", "drive.json is not valid JSON"),
        (b"\xff\xfe\xfd", "drive.json is not valid JSON"),
        (b'{"format": "sneakernet-drive"', "drive.json is not valid JSON"),
        (b"\x00" * 100, "drive.json is not valid JSON"),
        (b"[1, 2]", "drive.json is not a JSON object"),
        (b'"sneakernet-drive"', "drive.json is not a JSON object"),
        (b"null", "drive.json is not a JSON object"),
        (b"{}", "drive.json is not a sneakernet drive (format None)"),
        (b'{"format": "sneakernet-drive"}', "drive.json has format version None, which no sneakernet writes"),
        (b'{"format": "sneakernet-drive", "version": 1}', "bad drive.json record: 'shipment' missing or not str"),
        (b"1" * 5000, "drive.json is not valid JSON"),
    ],
)
def test_drive_label_from_garbage(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        DriveLabel.from_bytes(data)


def test_drive_label_from_deeply_nested_json() -> None:
    with pytest.raises(FormatError):
        DriveLabel.from_bytes(b"[" * 100_000)


# --- the fingerprint ------------------------------------------------------------------------------------------


def test_fingerprint_is_blake3_of_hex_lines() -> None:
    hashes = [blake3.blake3(bytes([i])).hexdigest() for i in range(3)]
    expected = blake3.blake3("".join(h + "\n" for h in hashes).encode()).hexdigest()
    assert fingerprint(hashes) == expected
    assert fingerprint(iter(hashes)) == expected
    assert fingerprint(hashes[:2]) != expected
    assert fingerprint(list(reversed(hashes))) != expected
    assert fingerprint([]) == blake3.blake3(b"").hexdigest()
    assert fingerprint(["h1", "h2"]) == "44349549b4b5e5e6cdab5a73c5a386f93e7ec111667d014169e2e9ffd52ea40f"


@pytest.mark.skipif(shutil.which("b3sum") is None, reason="the b3sum binary is not on PATH")
def test_fingerprint_matches_b3sum() -> None:
    result = subprocess.run(
        ["sh", "-c", "printf 'h1\\nh2\\n' | b3sum --no-names"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == fingerprint(["h1", "h2"])
    hashes = [H1, H2, H1]
    result = subprocess.run(
        ["b3sum", "--no-names"], input="".join(h + "\n" for h in hashes), capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == fingerprint(hashes)


def test_short_fingerprint() -> None:
    full = "3f9a12bc77d0e1459abcdef0123456789abcdef0123456789abcdef012345678"
    assert short_fingerprint(full) == "3f9a-12bc-77d0-e145-9abc"
    short = short_fingerprint(fingerprint([H1, H2]))
    assert re.fullmatch(r"[0-9a-f]{4}(-[0-9a-f]{4}){4}", short)
    assert short.replace("-", "") == fingerprint([H1, H2])[:20]


# --- the golden format-v1 fixture -----------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
SHIPMENT = FIXTURES / "format-v1" / "shipment"
#: Pinned when the fixture was made: any change to a manifest changes it.
GOLDEN_SHIPMENT = "62ce17189f9d4c91af177d89910ec992"
GOLDEN_FINGERPRINT = "c4ed25969f5cca5c2793f9254200b604c479598a912bc11758896009c9b5e105"
GOLDEN_CREATED = "2026-11-29T01:49:19Z"
SEGMENT_1 = "segments/s000001.seg"


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_format_v1", FIXTURES / "make_format_v1.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_format_v1", module)
    spec.loader.exec_module(module)
    return module


gen = load_generator()
SOURCE = {entry.path: entry for entry in gen.source_entries()}
CHUNK_SIZE = 64 * 1024
#: The small files in walk order, grouped into the last chunk.
SMALL = [b"caf\xe9.txt", b"docs/notes.md", b"docs/readme-first.txt", b"line\nbreak.txt", b"script.sh"]


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def expected_raw_chunks() -> list[bytes]:
    big = SOURCE[b"big.bin"].data
    pieces = [big[i : i + CHUNK_SIZE] for i in range(0, len(big), CHUNK_SIZE)]
    return [*pieces, b"".join(SOURCE[p].data for p in SMALL)]


def meta_of(path: bytes, record_meta: Metadata | None) -> Metadata:
    """The metadata the generator gave ``path``; uid and gid are whoever made the fixture."""
    assert record_meta is not None
    entry = SOURCE[path]
    mode = 0o777 if entry.kind == "symlink" else entry.mode
    return Metadata(mode, gen.MTIME_NS, record_meta.uid, record_meta.gid)


def final_file(path: bytes, offset: int, length: int, chunk: int, chunk_offset: int, meta: Metadata | None) -> Any:
    data = SOURCE[path].data
    return FileRecord(path, offset, length, chunk, chunk_offset, True, len(data), b3(data), meta_of(path, meta))


def chunk_record(chunk_id: int, offset: int, method: str, stored: bytes) -> ChunkRecord:
    raw = expected_raw_chunks()[chunk_id]
    return ChunkRecord(chunk_id, SEGMENT_1, offset, len(stored), len(raw), method, b3(stored), b3(raw))


def drives() -> list[str]:
    return sorted(str(p) for p in SHIPMENT.iterdir())


def test_generator_is_deterministic() -> None:
    assert SOURCE[b"big.bin"].data == gen.big_content()
    assert len(SOURCE[b"big.bin"].data) == 300 * 1024
    assert b3(SOURCE[b"big.bin"].data) == "f59e94b8eb13e9a6de66452d25f4107d823844d3ce2d46a1780b4f0d81697ae9"
    assert gen.CHUNK_SIZE == CHUNK_SIZE


def test_fixture_is_committable() -> None:
    names = sorted(str(p.relative_to(SHIPMENT)) for p in SHIPMENT.rglob("*"))
    expected = []
    for drive in ("drive-0001", "drive-0002", "drive-0003"):
        expected += [drive] + [f"{drive}/{n}" for n in ("B3SUMS", "catalog.jsonl.zst", "drive.json")]
        expected += [f"{drive}/{n}" for n in ("manifest.jsonl.zst", "segments", "segments/s000001.seg")]
    assert names == sorted(expected)
    # git drops empty directories; no file is left half-written.
    assert [d for d, subdirs, files in os.walk(SHIPMENT) if not subdirs and not files] == []
    assert sum(p.stat().st_size for p in SHIPMENT.rglob("*") if p.is_file()) < 1_500_000


def read_drive(index: int) -> tuple[DriveReader, list[Any]]:
    reader = DriveReader(drives()[index - 1])
    return reader, list(reader.records())


def test_golden_labels() -> None:
    for index in (1, 2, 3):
        reader, _ = read_drive(index)
        label = reader.label
        manifest = Path(reader.file(MANIFEST_NAME)).read_bytes()
        segment = Path(reader.file(SEGMENT_1)).read_bytes()
        raw_sizes = {1: 2 * CHUNK_SIZE, 2: 2 * CHUNK_SIZE, 3: sum(len(c) for c in expected_raw_chunks()[4:])}
        assert label == DriveLabel(
            shipment=GOLDEN_SHIPMENT,
            drive=index,
            label=f"drive-000{index}",
            created=GOLDEN_CREATED,
            tool="sneakernet 0.1.0",
            manifest_size=len(manifest),
            manifest_blake3=b3(manifest),
            segments=1,
            stored_bytes=len(segment),
            raw_bytes=raw_sizes[index],
        )
        # drive.json is exactly what the writer makes of the label.
        assert Path(reader.file(DRIVE_LABEL_NAME)).read_bytes() == label.to_bytes()


def test_golden_manifests() -> None:
    raw = expected_raw_chunks()
    assert [len(c) for c in raw] == [65536, 65536, 65536, 65536, 45056, 11701]
    stored = [store_frame(c) for c in raw[:5]]
    header = {
        "shipment": GOLDEN_SHIPMENT, "created": GOLDEN_CREATED, "chunk_size": CHUNK_SIZE, "segment_size": 2**30,
        "tool": "sneakernet 0.1.0",
    }  # fmt: skip

    reader, records = read_drive(1)
    segment = Path(reader.file(SEGMENT_1)).read_bytes()
    assert segment == stored[0] + stored[1]
    assert records == [
        ManifestHeader(drive=1, **header),
        chunk_record(0, 0, "store", stored[0]),
        chunk_record(1, len(stored[0]), "store", stored[1]),
        FileRecord(b"big.bin", 0, 2 * CHUNK_SIZE, 0, 0, False),
        SegmentRecord(SEGMENT_1, len(segment), b3(segment), 2),
        EndRecord(6),
    ]

    reader, records = read_drive(2)
    segment = Path(reader.file(SEGMENT_1)).read_bytes()
    assert segment == stored[2] + stored[3]
    assert records == [
        ManifestHeader(drive=2, **header),
        chunk_record(2, 0, "store", stored[2]),
        chunk_record(3, len(stored[2]), "store", stored[3]),
        FileRecord(b"big.bin", 2 * CHUNK_SIZE, 2 * CHUNK_SIZE, 2, 0, False),
        SegmentRecord(SEGMENT_1, len(segment), b3(segment), 2),
        EndRecord(6),
    ]

    reader, records = read_drive(3)
    segment = Path(reader.file(SEGMENT_1)).read_bytes()
    assert segment.startswith(stored[4])
    compressed = segment[len(stored[4]) :]
    assert len(compressed) == 384
    assert records[8] == chunk_record(5, len(stored[4]), "zstd", compressed)
    offsets = [0, 24, 58, 11658, 11680]
    assert records == [
        ManifestHeader(drive=3, **header),
        chunk_record(4, 0, "store", stored[4]),
        final_file(b"big.bin", 4 * CHUNK_SIZE, len(raw[4]), 4, 0, records[2].meta),
        SymlinkRecord(b"dangling", b"no-such-target-\xff", meta_of(b"dangling", records[3].meta)),
        DirRecord(b"docs", meta_of(b"docs", records[4].meta)),
        final_file(b"empty.txt", 0, 0, -1, 0, records[5].meta),
        DirRecord(b"emptydir", meta_of(b"emptydir", records[6].meta)),
        SymlinkRecord(b"link", b"docs/readme-first.txt", meta_of(b"link", records[7].meta)),
        chunk_record(5, len(stored[4]), "zstd", compressed),
        *[
            final_file(path, 0, len(SOURCE[path].data), 5, offset, records[9 + i].meta)
            for i, (path, offset) in enumerate(zip(SMALL[:3], offsets[:3], strict=True))
        ],
        # A hard link follows the final record of the file it names, here a small file of the group chunk.
        HardlinkRecord(b"docs/readme.txt", b"docs/readme-first.txt"),
        *[
            final_file(path, 0, len(SOURCE[path].data), 5, offset, records[13 + i].meta)
            for i, (path, offset) in enumerate(zip(SMALL[3:], offsets[3:], strict=True))
        ],
        SegmentRecord(SEGMENT_1, len(segment), b3(segment), 2),
        EndRecord(17),
    ]
    # The metadata is recorded as the generator set it.
    assert records[2].meta.mode == 0o644
    assert records[4].meta.mode == 0o755
    assert records[6].meta.mode == 0o700
    assert records[9].meta.mode == 0o600
    assert records[14].meta.mode == 0o755
    assert records[2].meta.mtime_ns == 1_700_000_000_123_456_789


def test_golden_chunks_decode_to_the_source_files() -> None:
    chunks: dict[int, bytes] = {}
    pieces: dict[bytes, list[FileRecord]] = {}
    for index in (1, 2, 3):
        reader, records = read_drive(index)
        for record in records:
            if isinstance(record, ChunkRecord):
                chunks[record.id] = reader.read_chunk(record)
            elif isinstance(record, FileRecord):
                pieces.setdefault(record.path, []).append(record)
    assert [chunks[i] for i in range(6)] == expected_raw_chunks()
    files = {}
    for path, file_pieces in pieces.items():
        assert [p.final for p in file_pieces] == [False] * (len(file_pieces) - 1) + [True]
        data = b""
        for piece in file_pieces:
            assert piece.offset == len(data)
            chunk, at, left = piece.chunk, piece.chunk_offset, piece.length
            while left:
                part = chunks[chunk][at : at + left]
                data += part
                left -= len(part)
                chunk, at = chunk + 1, 0
        assert b3(data) == file_pieces[-1].blake3
        files[path] = data
    assert files == {path: e.data for path, e in SOURCE.items() if e.kind == "file"}
    assert len(pieces[b"big.bin"]) == 3


def test_golden_catalog() -> None:
    catalogs = {Path(d, CATALOG_NAME).read_bytes() for d in drives()}
    assert len(catalogs) == 1, "every drive carries the same catalog"
    with open(Path(drives()[0], CATALOG_NAME), "rb") as handle:
        raw = list(read_records(handle, "the catalog"))
    header = CatalogHeader.from_json(raw[0])
    labels = [DriveReader(d).label for d in drives()]
    file_bytes = sum(len(e.data) for e in SOURCE.values() if e.kind == "file")
    assert header == CatalogHeader(
        shipment=GOLDEN_SHIPMENT,
        drives=3,
        fingerprint=GOLDEN_FINGERPRINT,
        created=GOLDEN_CREATED,
        tool="sneakernet 0.1.0",
        files=7,
        raw_bytes=file_bytes,
        stored_bytes=sum(label.stored_bytes for label in labels),
    )
    assert file_bytes == 318901
    assert fingerprint(label.manifest_blake3 for label in labels) == GOLDEN_FINGERPRINT
    assert short_fingerprint(GOLDEN_FINGERPRINT) == "c4ed-2596-9f5c-ca5c-2793"
    records = [catalog_record_from_json(r) for r in raw[1:]]
    size = {path: len(e.data if e.kind == "file" else e.target) for path, e in SOURCE.items()}

    def entry(path: bytes, kind: str, first: int = 3) -> CatalogEntry:
        return CatalogEntry(path, kind, size[path] if kind in ("file", "symlink") else 0, first, 3)

    assert records == [
        *[CatalogDrive(lb.drive, lb.label, lb.manifest_size, lb.manifest_blake3, lb.stored_bytes) for lb in labels],
        entry(b"big.bin", "file", first=1),
        entry(b"dangling", "symlink"),
        entry(b"docs", "dir"),
        entry(b"empty.txt", "file"),
        entry(b"emptydir", "dir"),
        entry(b"link", "symlink"),
        *[entry(path, "file") for path in SMALL[:3]],
        entry(b"docs/readme.txt", "hardlink"),
        *[entry(path, "file") for path in SMALL[3:]],
        EndRecord(17),
    ]
    assert raw[10] == {
        "type": "entry", "path_b64": "Y2Fm6S50eHQ=", "kind": "file", "size": 24, "first_drive": 3, "last_drive": 3,
    }  # fmt: skip
    assert raw[14]["path"] == "line\nbreak.txt"


def test_golden_checksums() -> None:
    for drive in drives():
        lines = Path(drive, CHECKSUMS_NAME).read_text("ascii").splitlines()
        entries = [line.split("  ", 1) for line in lines]
        assert [name for _, name in entries] == [SEGMENT_1, MANIFEST_NAME, DRIVE_LABEL_NAME, CATALOG_NAME]
        for digest, name in entries:
            assert digest == b3(Path(drive, name).read_bytes()), f"{drive}/{name}"


@pytest.mark.skipif(shutil.which("b3sum") is None, reason="the b3sum binary is not on PATH")
def test_golden_checksums_pass_b3sum_check() -> None:
    for drive in drives():
        result = subprocess.run(["b3sum", "--check", CHECKSUMS_NAME], cwd=drive, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count(": OK") == 4


# --- a drive of a newer format version, through the command line ---------------------------------------------

UPGRADE = "this drive is format version 3, written by a newer sneakernet; this one reads version 2: upgrade"


def newer_drive(tmp_path: Path) -> Path:
    """A copy of the golden fixture's last drive as a version 3 writer could leave it: drive.json says version 3
    and nothing else on the drive follows version 1 (a v1 reader must not look past drive.json)."""
    drive = tmp_path / "drive-0003"
    shutil.copytree(drives()[2], drive)
    label = json.loads((drive / DRIVE_LABEL_NAME).read_text("ascii"))
    (drive / DRIVE_LABEL_NAME).write_text(json.dumps({**label, "version": 3, "role": "parity"}, indent=2) + "\n")
    (drive / MANIFEST_NAME).write_bytes(b"not a version 1 manifest")
    shutil.rmtree(drive / "segments")
    return drive


@pytest.mark.parametrize(
    "command",
    [["verify"], ["verify", "--json"], ["info"], ["ls"], ["restore", "--into", "DEST"]],
    ids=lambda c: " ".join(c),
)
def test_a_newer_drive_is_refused_in_one_line_by_every_reader(tmp_path: Path, command: list[str]) -> None:
    drive = newer_drive(tmp_path)
    dest = tmp_path / "dest"
    code, out, err = cli(command[0], drive, *[dest if a == "DEST" else a for a in command[1:]])
    assert code == ExitCode.USAGE == 2
    if command == ["verify", "--json"]:
        assert UPGRADE in json.loads(out)["drives"][0]["problems"][0]["message"]
    elif command == ["verify"]:
        assert f"  {UPGRADE}" in out.splitlines()
    else:
        assert err == f"sneakernet: error: {UPGRADE}\n" and out == ""
    assert "Traceback" not in out + err
    assert not dest.exists()  # restore wrote nothing, not even its journal


def test_status_of_a_newer_drive_says_it_is_a_drive(tmp_path: Path) -> None:
    code, _, err = cli("status", newer_drive(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "is a drive, not the destination of a restore" in err


def test_a_newer_catalog_is_not_called_damaged(tmp_path: Path) -> None:
    """The sender's catalog of a newer release, given with --catalog: restore says to upgrade, not that the
    catalog is damaged and another drive's copy would do (every copy is of that version)."""
    catalog = tmp_path / CATALOG_NAME
    with open(Path(drives()[2], CATALOG_NAME), "rb") as handle:
        records = [r for r in read_records(handle, "catalog") if r is not None]
    writer = RecordFileWriter(catalog)
    for record in [{**records[0], "version": 3}, *records[1:]]:
        writer.write(record)
    writer.close()
    dest = tmp_path / "dest"
    code, _, err = cli("restore", drives()[0], "--into", dest, "--catalog", catalog)
    assert code == 2
    assert err == "sneakernet: error: " + UPGRADE.replace("drive", "catalog", 1) + "\n"
    assert not (dest / ".sneakernet").exists()


def test_catalog_entry_kind_is_one_of_four() -> None:
    raw = CatalogEntry(b"a", "file", 1, 1, 1).to_json()
    raw["kind"] = "socket"
    with pytest.raises(FormatError, match="kind 'socket' is not one of file, dir, symlink, hardlink"):
        CatalogEntry.from_json(raw)


def test_lines_after_the_end_record_are_refused(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    shutil.copytree(drives()[0], drive)
    with open(drive / MANIFEST_NAME, "rb") as handle:
        records = [r for r in read_records(handle, "m") if r is not None]
    writer = RecordFileWriter(drive / "m2")
    for record in [*records, {"type": "dir", "path": "late", "mode": 0, "mtime_ns": 0, "uid": 0, "gid": 0}]:
        writer.write(record)
    writer.close()
    os.replace(drive / "m2", drive / MANIFEST_NAME)
    with pytest.raises(FormatError, match="lines after its end record"):
        list(DriveReader(str(drive)).records())


@given(
    path=st.binary(min_size=1, max_size=40),
    final=st.booleans(),
    changed=st.booleans(),
    numbers=st.lists(st.integers(min_value=0, max_value=2**63), min_size=6, max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_fast_lines_are_exactly_the_json_lines(path: bytes, final: bool, changed: bool, numbers: list[int]) -> None:
    """FileRecord.to_line and CatalogEntry.to_line (pack's fast paths) write what encode_record writes."""
    offset, length, chunk_offset, size, mtime, uid = numbers
    meta = Metadata(0o644, mtime, uid, 7) if final else None
    record = FileRecord(
        path, offset, length, 3, chunk_offset, final, size if final else None, H1 if final else None, meta,
        changed and final,
    )  # fmt: skip
    assert record.to_line() == encode_record(record.to_json())
    entry = CatalogEntry(path, "file", size, 1, 2)
    assert entry.to_line() == encode_record(entry.to_json())


# --- section 16.3: recovering by hand, run as written ---------------------------------------------------------


def _fenced_after(text: str, marker: str, language: str) -> str:
    """The first ``language`` block after ``marker`` in ``text``."""
    rest = text.split(marker, 1)[1]
    found = re.search(rf"^( *)```{language}\n(.*?)^ *```$", rest, flags=re.MULTILINE | re.DOTALL)
    assert found, f"no {language} block after {marker!r}"
    return textwrap.dedent(found.group(2))  # a block inside a list item is indented


def _listing(root: Path) -> list[str]:
    """Every entry below ``root``: path, mode (with setuid and setgid), owner, mtime, link count."""
    done = subprocess.run(
        ["find", ".", "-mindepth", "1", "-printf", r"%p %m %U:%G %T@ %n\n"], cwd=root, capture_output=True, text=True
    )
    return sorted(done.stdout.splitlines())


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd binary is not on PATH")
@pytest.mark.skipif(os.geteuid() != 0, reason="the example's owners need root to set")
def test_recovering_by_hand_as_section_16_3_says(tmp_path: Path) -> None:
    """Section 16.3's example tree, packed, then restored with the section's own commands: the same tree, setuid
    bit, owners, mtimes and hard link included (it once set the mode before the owner, which drops setuid)."""
    text = (Path(__file__).parent.parent / "docs" / "format.md").read_text(encoding="utf-8")
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"hello\n")
    (src / "tool.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chown(src / "tool.sh", 1234, 2345)
    os.chmod(src / "tool.sh", 0o4755)
    os.link(src / "sub" / "a.txt", src / "sub" / "deep" / "again.txt")
    os.symlink("../tool.sh", src / "sub" / "link")
    os.lchown(src / "sub" / "link", 1234, 2345)
    os.utime(src / "sub" / "link", ns=(1704164645123456789,) * 2, follow_symlinks=False)
    os.utime(src / "sub" / "a.txt", ns=(1796294346466802683,) * 2)
    os.utime(src / "tool.sh", ns=(1796294346469892818,) * 2)
    os.chmod(src / "sub", 0o2750)
    for directory in (src / "sub" / "deep", src / "sub"):
        os.utime(directory, ns=(1683356889500000000,) * 2)
    code, _, err = cli("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB", "--chunk-size", "256KiB")
    assert code == 0, err
    drive = tmp_path / "out" / "drive-0001"
    manifest = [
        line for line in subprocess.run(["zstd", "-dc", "manifest.jsonl.zst"], cwd=drive, capture_output=True,
                                        text=True, check=True).stdout.splitlines()
        if '"type":"header"' not in line and '"type":"end"' not in line
    ]  # fmt: skip
    shown = _fenced_after(text, "### 16.3", "console").splitlines()[1:]
    assert manifest == shown, "section 16.3's manifest is not what pack writes for its example"
    dest = tmp_path / "dest"
    script = _fenced_after(text, "### 16.3", "sh").replace("dest=/tmp/dest", f"dest={dest}")
    script = script.replace("/tmp/chunk0.raw", str(tmp_path / "chunk0.raw"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=drive, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _listing(dest) == _listing(src)
    assert any(line.startswith("./tool.sh 4755 1234:2345 ") for line in _listing(dest))
    chunk = tmp_path / "chunk0.zst"  # section 16.4's zstd -lv of the example's chunk
    chunk.write_bytes((drive / "segments" / "s000001.seg").read_bytes()[:36])
    listed = _fenced_after(text, "**A chunk's declared content size**", "console").splitlines()
    assert listed[0] == "$ zstd -lv /tmp/chunk0.zst 2>/dev/null | grep -E 'Frames|Decompressed'"
    stored = subprocess.run(
        listed[0][2:].replace("/tmp/chunk0.zst", str(chunk)), shell=True, capture_output=True, text=True
    )
    assert stored.stdout.splitlines() == listed[1:] == ["# Zstandard Frames: 1", "Decompressed Size: 24 B (24 B)"]


def test_checksums_render_and_parse_round_trip() -> None:
    entries = [("segments/s000001.seg", "a" * 64), (MANIFEST_NAME, "b" * 64), (DRIVE_LABEL_NAME, "c" * 64)]
    sums = parse_checksums(checksum_lines(entries))
    assert sums.entries == entries and sums.problem is None and sums.digests()[MANIFEST_NAME] == "b" * 64


def test_checksums_parse_names_the_damaged_line_and_a_cut_end() -> None:
    good = checksum_lines([("a", "0" * 64)])
    damaged = parse_checksums(good + b"xyz  b\n" + good)
    assert damaged.problem == "B3SUMS line 2 is damaged" and damaged.entries == [("a", "0" * 64)]
    cut = parse_checksums(good + ("1" * 64 + "  b").encode("ascii"))
    assert cut.cut_short and cut.entries == [("a", "0" * 64)] and cut.problem == "B3SUMS is cut short"
    assert parse_checksums(b"").problem == "B3SUMS is cut short"
    assert parse_checksums("\u00e9".encode() + b"  a\n").damaged_line == 1
    assert parse_checksums(("A" * 64 + "  a\n").encode("ascii")).damaged_line == 1  # lowercase hex only


def test_damaged_bytes_are_an_integrity_error_a_format_error_still(tmp_path: Path) -> None:
    """A chunk whose stored bytes no longer match their BLAKE3 is damage (IntegrityError), which callers refuse as
    they refuse a malformed file (a FormatError, exit code 1)."""
    write_file(tmp_path / "src" / "a.bin", bytes(range(256)) * 64)
    pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=10**8, options=PackOptions(reserve=0))
    reader = DriveReader(str(tmp_path / "out" / "drive-0001"))
    chunk = next(r for r in reader.records() if isinstance(r, ChunkRecord))
    segment = Path(reader.file(chunk.segment))
    data = bytearray(segment.read_bytes())
    data[chunk.offset + chunk.stored_size // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="is damaged") as info:
        reader.read_chunk(chunk)
    assert isinstance(info.value, FormatError) and info.value.exit_code == ExitCode.PROBLEMS
