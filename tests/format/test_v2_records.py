"""format/ version 2 (docs/format.md section 19): drive.json, the manifest header, file pieces with next_drive, the
catalog's records, each written as the spec's examples and read back; the refusals of 19.2-19.5 and 19.9 (hostile
and malformed records); version 2 still refused by the readers that do not follow it yet."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.errors import FormatError, UnsupportedVersion
from sneakernet.format import (
    CIPHER_AES_GCM,
    CIPHER_CHACHA,
    MAX_DRIVES,
    READ_VERSIONS,
    READERS,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogParity,
    CatalogSummary,
    DriveLabel,
    EndRecord,
    FileRecord,
    ManifestHeader,
    Metadata,
    SealedRecord,
    header_label_problems,
    manifest_record_from_json,
    parity_label,
    role_label,
)
from sneakernet.format.container import encode_record

DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"
H1 = "0123456789abcdef" * 4
H2 = "fedcba9876543210" * 4
DOC_HASH = "4eb42dbeca308232f95badc8458180e3f9674aea47567d3247d45da444ea7701"
META = Metadata(mode=0o644, mtime_ns=1_700_000_000_000_000_000, uid=1000, gid=100)
ALL = frozenset(READERS)


def doc_block(after: str) -> str:
    """The first fenced block of docs/format.md after the line holding ``after``."""
    text = DOC.read_text()
    start = text.index(after)
    block = re.search(r"```\w*\n(.*?)```", text[start:], re.S)
    assert block is not None
    return block.group(1)


def line_of(record: Any) -> dict[str, Any]:
    raw = json.loads(encode_record(record.to_json()))
    assert isinstance(raw, dict)
    return raw


def data_label(**changes: Any) -> DriveLabel:
    label = DriveLabel(
        shipment="23601d4db6d84f21953992d105c27e0c", drive=3, label="drive-0003", created="2026-11-29T02:33:10Z",
        tool="sneakernet 0.3.0", manifest_size=930, manifest_blake3=DOC_HASH, segments=1, stored_bytes=75907,
        raw_bytes=79710, version=2, lane=2, lane_seq=2,
    )  # fmt: skip
    return replace(label, **changes)


def parity_drive_label(**changes: Any) -> DriveLabel:
    base = data_label(role="parity", drive=1, label="parity-0001", lane=None, lane_seq=None, group=1, row=0)
    return replace(base, raw_bytes=0, **changes)


def v2_header(**changes: Any) -> ManifestHeader:
    header = ManifestHeader(
        shipment="23601d4db6d84f21953992d105c27e0c", drive=3, created="2026-11-29T02:33:10Z", chunk_size=262144,
        segment_size=1 << 30, tool="sneakernet 0.3.0", version=2, level=3, lane=2, lane_seq=2,
    )  # fmt: skip
    return replace(header, **changes)


def parse_label(raw: dict[str, Any]) -> DriveLabel:
    return DriveLabel.from_json(raw, ALL)


def changed(raw: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**raw, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# --- drive.json -----------------------------------------------------------------------------------------------


def test_data_drive_json_is_the_spec_example_byte_for_byte() -> None:
    example = doc_block("`drive.json` of a data drive (version 2):")
    assert data_label().to_bytes().decode() == example
    assert parse_label(json.loads(example)) == data_label()


def test_parity_drive_json_round_trips_without_lane_or_raw_bytes() -> None:
    label = parity_drive_label()
    raw = label.to_json()
    assert list(raw)[:8] == ["format", "version", "shipment", "role", "drive", "label", "group", "row"]
    assert "lane" not in raw and "lane_seq" not in raw and "raw_bytes" not in raw
    assert DriveLabel.from_bytes(label.to_bytes(), ALL) == label


def test_encrypted_data_drive_json_has_no_raw_bytes() -> None:
    label = data_label(encrypted=True, raw_bytes=0)
    assert "raw_bytes" not in label.to_json()
    assert parse_label(label.to_json()) == label
    # A clear data drive must state it.
    with pytest.raises(FormatError, match="'raw_bytes' missing"):
        parse_label(changed(data_label().to_json(), raw_bytes=...))


def test_version_1_drive_json_is_unchanged() -> None:
    v1 = replace(data_label(), version=1, lane=None, lane_seq=None)
    assert list(v1.to_json()) == [
        "format", "shipment", "drive", "label", "created", "tool", "manifest_size", "manifest_blake3", "segments",
        "stored_bytes", "raw_bytes", "version",
    ]  # fmt: skip


BAD_LABELS = [
    ({"role": "mirror"}, "role 'mirror' is not one of data, parity"),
    ({"role": ...}, "'role' missing"),
    ({"label": "drive-0004"}, "label 'drive-0004' is not 'drive-0003'"),
    ({"label": "parity-0003"}, "label 'parity-0003' is not 'drive-0003'"),
    ({"lane": ...}, "'lane' missing"),
    ({"lane": 0}, "'lane' is 0, outside 1 ... 100000"),
    ({"lane_seq": MAX_DRIVES + 1}, "'lane_seq' is 100001, outside 1 ... 100000"),
    ({"lane": True}, "'lane' missing or not int"),
    ({"drive": 0}, "'drive' is 0, outside 1"),
    ({"drive": 10**12}, "'drive' is 1000000000000, outside 1 ... 100000"),
    ({"encrypted": "no"}, "'encrypted' missing or not bool"),
    ({"encrypted": ...}, "'encrypted' missing or not bool"),
]


@pytest.mark.parametrize(("changes", "problem"), BAD_LABELS)
def test_bad_drive_json_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)):
        parse_label(changed(data_label().to_json(), **changes))


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"group": 0}, "'group' is 0"),
        ({"row": 6}, "'row' is 6, outside 0 ... 5"),
        ({"row": ...}, "'row' missing"),
        ({"label": "drive-0001"}, "label 'drive-0001' is not 'parity-0001'"),
    ],
)
def test_bad_parity_drive_json_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)):
        parse_label(changed(parity_drive_label().to_json(), **changes))


def test_labels_per_role() -> None:
    assert parity_label(1) == role_label("parity", 1) == "parity-0001"
    assert role_label("data", 12) == "drive-0012"
    assert parity_label(123456) == "parity-123456"


# --- which readers take version 2 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parse",
    [
        lambda versions: DriveLabel.from_json(data_label().to_json(), versions),
        lambda versions: ManifestHeader.from_json(v2_header().to_json(), versions),
        lambda versions: CatalogHeader.from_json(
            CatalogHeader("s", 0, H1, "c", "t", 0, 0, 0, version=2).to_json(), versions
        ),
    ],
)
def test_version_2_is_read_by_default_and_refused_where_a_reader_asks_for_1(parse: Any) -> None:
    assert {1, 2} == READ_VERSIONS
    assert parse(None).version == 2
    with pytest.raises(UnsupportedVersion, match=r"format version 2, written by a newer sneakernet.*reads version 1"):
        parse({1})


# --- manifest header and records ------------------------------------------------------------------------------


def test_manifest_header_round_trips_with_lane_and_cipher() -> None:
    for header in (v2_header(), v2_header(cipher=CIPHER_CHACHA, level=None), v2_header(cipher=CIPHER_AES_GCM)):
        raw = line_of(header)
        assert list(raw)[:8] == ["type", "format", "version", "shipment", "role", "drive", "lane", "lane_seq"]
        assert ManifestHeader.from_json(raw, ALL) == header


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cipher": "aes-128-gcm"}, "cipher 'aes-128-gcm' is not one of format version 2's (aes-256-gcm, chacha20"),
        ({"cipher": "AES-256-GCM"}, "cipher 'AES-256-GCM' is not one of"),
        ({"cipher": None}, "cipher None is not"),
        ({"cipher": ["aes-256-gcm"]}, "cipher ['aes-256-gcm'] is not"),
        ({"role": "mirror"}, "role 'mirror' is not one of"),
        ({"lane": ...}, "'lane' missing"),
        ({"lane_seq": -1}, "'lane_seq' is -1, outside 1"),
        ({"drive": 100_001}, "'drive' is 100001"),
    ],
)
def test_bad_manifest_header_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)):
        ManifestHeader.from_json(changed(line_of(v2_header()), **changes), ALL)


def test_a_parity_header_is_not_a_data_header() -> None:
    raw = changed(line_of(v2_header()), role="parity")
    with pytest.raises(FormatError, match="parity drive's manifest"):
        ManifestHeader.from_json(raw, ALL)


def test_header_must_agree_with_drive_json() -> None:
    assert header_label_problems(data_label(), v2_header()) == []
    problems = header_label_problems(data_label(), v2_header(lane=1, lane_seq=5, drive=4, cipher=CIPHER_AES_GCM))
    assert problems == [
        "the manifest's drive is 4, drive.json's 3",
        "the manifest's lane is 1, drive.json's 2",
        "the manifest's lane_seq is 5, drive.json's 2",
        "the manifest's encrypted is True, drive.json's False",
    ]
    v1_label = replace(data_label(), version=1, lane=None, lane_seq=None)
    assert header_label_problems(v1_label, v2_header())[0] == "the manifest's version is 2, drive.json's 1"


def piece(**changes: Any) -> FileRecord:
    record = FileRecord(b"big.bin", 0, 524288, 0, 0, final=False, next_drive=4)
    return replace(record, **changes)


def test_non_final_piece_is_the_spec_example() -> None:
    example = doc_block("Every non-final piece carries one more field:").splitlines()[-1] + "\n"
    assert piece().to_line().decode() == example
    assert encode_record(piece().to_json()).decode() == example
    assert READERS[2].manifest_record(json.loads(example)) == piece()


def test_version_1_reads_a_piece_without_next_drive() -> None:
    # Version 1 never wrote the field; its parser takes no notice of it (section 5: unknown fields are ignored).
    record = manifest_record_from_json(json.loads(piece().to_line()))
    assert isinstance(record, FileRecord) and record.next_drive is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (changed(line_of(piece()), next_drive=...), "'next_drive' missing"),
        (changed(line_of(piece()), next_drive=0), "'next_drive' is 0, outside 1"),
        (changed(line_of(piece()), next_drive=MAX_DRIVES + 1), "outside 1 ... 100000"),
        (changed(line_of(piece()), next_drive="4"), "'next_drive' missing or not int"),
        (
            changed(line_of(piece(final=True, size=524288, blake3=H1, meta=META, next_drive=None)), next_drive=4),
            "a final piece has no 'next_drive'",
        ),
    ],
)
def test_bad_next_drive_is_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)):
        READERS[2].manifest_record(raw)


@settings(deadline=None)  # a loaded machine makes the first examples slow, not wrong
@given(
    length=st.integers(0, 2**60), chunk=st.integers(-1, 2**40), next_drive=st.integers(1, MAX_DRIVES),
    path=st.binary(min_size=1, max_size=40),
)  # fmt: skip
def test_fast_piece_line_is_the_json_line(length: int, chunk: int, next_drive: int, path: bytes) -> None:
    record = FileRecord(path, 7, length, chunk, 0, final=False, next_drive=next_drive)
    assert record.to_line() == encode_record(record.to_json())


def test_sealed_record_round_trips_and_names_only_sealed_files() -> None:
    record = SealedRecord("index.age", 1234, H1)
    assert READERS[2].manifest_record(line_of(record)) == record
    with pytest.raises(FormatError, match=r"name 'secret\.txt' is not one of"):
        READERS[2].manifest_record(changed(line_of(record), name="secret.txt"))
    with pytest.raises(FormatError, match="unknown manifest record type 'sealed'"):
        manifest_record_from_json(line_of(record))


# --- catalog records -------------------------------------------------------------------------------------------


def test_catalog_header_has_only_what_the_fingerprint_does_not_cover() -> None:
    header = CatalogHeader("23601d4db6d84f21953992d105c27e0c", 0, H1, "c", "t", 0, 0, 0, version=2, summarised=False)
    raw = line_of(header)
    assert list(raw) == ["type", "format", "version", "shipment", "fingerprint", "created", "tool"]
    parsed = CatalogHeader.from_json(raw, ALL)
    assert parsed == header and not parsed.summarised
    summary = CatalogSummary(drives=4, lanes=2, files=10, raw_bytes=100, stored_bytes=90)
    whole = parsed.with_summary(summary)
    assert (whole.drives, whole.lanes, whole.files, whole.raw_bytes, whole.stored_bytes) == (4, 2, 10, 100, 90)
    assert whole.summarised and whole.summary() == summary
    with pytest.raises(FormatError, match="drives, files belong in the summary record"):
        CatalogHeader.from_json({**raw, "drives": 4, "files": 1}, ALL)


def test_catalog_records_round_trip() -> None:
    records = [
        CatalogSummary(drives=4, lanes=2, files=3, raw_bytes=10, stored_bytes=20),
        CatalogSummary(drives=4, lanes=2),
        CatalogDrive(3, "drive-0003", 930, H1, 75907, lane=2, lane_seq=2),
        CatalogParity(1, "parity-0001", 1, 0, 500, H2, 4 << 20),
        CatalogEntry(b"big.bin", "file", 600000, 1, 3, pieces=2),
        CatalogEntry(b"sub", "dir", 0, 2, 2, pieces=1),
        SealedRecord("catalog.age", 99, H2),
        EndRecord(9),
    ]
    for record in records:
        assert READERS[2].catalog_record(line_of(record)) == record
    assert list(line_of(records[2])) == [
        "type", "drive", "label", "lane", "lane_seq", "manifest_size", "manifest_blake3", "stored_bytes",
    ]  # fmt: skip
    assert list(line_of(records[4])) == ["type", "path", "kind", "size", "drive", "first_drive", "pieces"]
    assert records[4].drive == 3


@settings(deadline=None)
@given(
    path=st.binary(min_size=1, max_size=40), size=st.integers(0, 2**60), drive=st.integers(1, MAX_DRIVES),
    first=st.integers(1, MAX_DRIVES), pieces=st.integers(1, MAX_DRIVES),
)  # fmt: skip
def test_fast_entry_line_is_the_json_line(path: bytes, size: int, drive: int, first: int, pieces: int) -> None:
    entry = CatalogEntry(path, "file", size, first, drive, pieces=pieces)
    assert entry.to_line() == encode_record(entry.to_json())
    v1 = CatalogEntry(path, "file", size, first, drive)
    assert v1.to_line() == encode_record(v1.to_json())


ENTRY = line_of(CatalogEntry(b"big.bin", "file", 600000, 1, 3, pieces=2))
DIR = line_of(CatalogEntry(b"sub", "dir", 0, 2, 2, pieces=1))
SUMMARY = line_of(CatalogSummary(drives=4, lanes=2, files=1, raw_bytes=1, stored_bytes=1))
DRIVE = line_of(CatalogDrive(3, "drive-0003", 930, H1, 75907, lane=2, lane_seq=2))
PARITY = line_of(CatalogParity(1, "parity-0001", 1, 0, 500, H2, 4 << 20))

BAD_CATALOG_RECORDS = [
    (changed(ENTRY, pieces=0), "'pieces' is 0, outside 1"),
    (changed(ENTRY, pieces=MAX_DRIVES + 1), "'pieces' is 100001"),
    (changed(ENTRY, pieces=...), "'pieces' missing"),
    (changed(ENTRY, drive=...), "'drive' missing"),
    (changed(ENTRY, last_drive=3), "'last_drive' is version 1's"),
    (changed(ENTRY, pieces=1), "a file of 1 pieces from drive 1 to 3"),
    (changed(ENTRY, first_drive=3), "a file of 2 pieces from drive 3 to 3"),
    (changed(DIR, pieces=2), "a dir is one piece on one drive"),
    (changed(DIR, first_drive=1), "a dir is one piece on one drive"),
    (changed(ENTRY, kind="socket"), "kind 'socket' is not one of"),
    (changed(SUMMARY, lanes=5), "5 lanes for 4 drives"),
    (changed(SUMMARY, drives=0, lanes=1), "'drives' is 0"),
    (changed(SUMMARY, files=...), "'files', 'raw_bytes' and 'stored_bytes' go together"),
    (changed(SUMMARY, drives=10**12), "'drives' is 1000000000000, outside 1 ... 100000"),
    (changed(DRIVE, lane=...), "'lane' missing"),
    (changed(DRIVE, label="drive-3"), "label 'drive-3' is not 'drive-0003'"),
    (changed(PARITY, label="drive-0001"), "label 'drive-0001' is not 'parity-0001'"),
    (changed(PARITY, row=-1), "'row' is -1"),
    (line_of(SealedRecord("index.age", 1, H1)), "a catalog seals catalog.age, not 'index.age'"),
    ({"type": "header"}, "unknown catalog record type 'header'"),
    ({"type": ["entry"]}, "unknown catalog record type ['entry']"),
]


@pytest.mark.parametrize(("raw", "problem"), BAD_CATALOG_RECORDS)
def test_bad_catalog_record_is_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(FormatError, match=re.escape(problem)):
        READERS[2].catalog_record(raw)
