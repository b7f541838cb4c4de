"""Format version 2 read end to end: the golden two-lane fixture (tests/fixtures/format-v2, written by
make_format_v2.py) read record by record, verified and restored in any drive order; a one-lane version 2 pack
(``PackOptions(format_version=2)``) restored identical to its source; and drives that lie in version 2's ways
(a next_drive off the lane, chunk ids not from 0, a catalog whose entries or lanes were changed, with or without
the fingerprint made to match) refused, without a byte restored from them."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
import pytest

from conftest import as_restored, inode_groups, invoke_cli, make_edge_tree, source_entries
from craft import RecordFileWriter
from sneakernet import PackOptions, pack
from sneakernet.drive import CatalogReader, DriveReader
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogSummary,
    ChunkRecord,
    DirRecord,
    FileRecord,
    HardlinkRecord,
    SymlinkRecord,
    body_fingerprint,
)
from sneakernet.format.container import encode_record, read_records

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "format-v2" / "shipment"
DRIVES = [FIXTURE / f"drive-000{n}" for n in (1, 2, 3)]


def records_of(drive: Path) -> list[Any]:
    return list(DriveReader(str(drive)).records())


# --- the golden fixture, record by record ----------------------------------------------------------------------


def test_golden_labels_name_lanes_and_places() -> None:
    labels = [DriveReader(str(d)).label for d in DRIVES]
    assert [(lb.version, lb.role, lb.drive, lb.lane, lb.lane_seq, lb.encrypted) for lb in labels] == [
        (2, "data", 1, 1, 1, False),
        (2, "data", 2, 2, 1, False),
        (2, "data", 3, 1, 2, False),
    ]


def test_golden_manifests_count_chunks_per_drive_and_chain_pieces() -> None:
    by_drive = {n: records_of(d) for n, d in enumerate(DRIVES, 1)}
    chunk_ids = {n: [r.id for r in recs if isinstance(r, ChunkRecord)] for n, recs in by_drive.items()}
    assert chunk_ids == {1: [0], 2: [0], 3: [0, 1]}
    pieces = [
        (n, r.path, r.offset, r.final, r.next_drive)
        for n, rs in by_drive.items()
        for r in rs
        if isinstance(r, FileRecord)
    ]
    assert pieces == [
        (1, b"a/big", 0, False, 3),  # lane 1 goes on on drive 3, not on drive 2 (lane 2)
        (2, b"a/y", 0, True, None),
        (3, b"a/big", 65536, True, None),
        (3, b"a/x", 0, True, None),
    ]
    assert [type(r) for r in by_drive[2][1:-2] if not isinstance(r, ChunkRecord | FileRecord)] == [
        DirRecord, HardlinkRecord, SymlinkRecord,
    ]  # fmt: skip


def test_golden_catalog() -> None:
    records = list(CatalogReader(str(DRIVES[0] / CATALOG_NAME)).records())
    header = records[0]
    assert isinstance(header, CatalogHeader) and header.version == 2 and header.lanes == 2 and header.drives == 3
    assert records[1] == CatalogSummary(drives=3, lanes=2, files=3, raw_bytes=66567, stored_bytes=header.stored_bytes)
    drives = [r for r in records if isinstance(r, CatalogDrive)]
    assert [(d.drive, d.lane, d.lane_seq) for d in drives] == [(1, 1, 1), (2, 2, 1), (3, 1, 2)]
    entries = [(e.path, e.kind, e.drive, e.first_drive, e.pieces) for e in records if isinstance(e, CatalogEntry)]
    assert entries == [
        (b"a", "dir", 1, 1, 1),
        (b"a/y", "file", 2, 2, 1),
        (b"b", "dir", 2, 2, 1),
        (b"b/link", "hardlink", 2, 2, 1),
        (b"b/sym", "symlink", 2, 2, 1),
        (b"a/big", "file", 3, 1, 2),
        (b"a/x", "file", 3, 3, 1),
    ]
    # Byte-identical on every drive (19.5), and its fingerprint is its body's (19.6).
    copies = {(d / CATALOG_NAME).read_bytes() for d in DRIVES}
    assert len(copies) == 1
    with open(DRIVES[0] / CATALOG_NAME, "rb") as handle:
        lines = [encode_record(r) for r in read_records(handle, "catalog") if r is not None][1:]
    assert body_fingerprint(lines) == header.fingerprint


def test_golden_checksums_match_the_files() -> None:
    for drive in DRIVES:
        for line in (drive / CHECKSUMS_NAME).read_text().splitlines():
            digest, name = line.split("  ", 1)
            assert blake3.blake3((drive / name).read_bytes()).hexdigest() == digest, (drive, name)


def test_golden_fixture_verifies() -> None:
    code, out, _ = invoke_cli("verify", "--json", *DRIVES)
    assert code == 0, out
    report = json.loads(out)
    assert [d["status"] for d in report["drives"]] == ["intact"] * 3


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 2, 0), (2, 0, 1)], ids=str)
def test_golden_fixture_restores_in_any_drive_order(tmp_path: Path, order: tuple[int, ...]) -> None:
    dest = tmp_path / "dest"
    code, out, err = invoke_cli("restore", *[DRIVES[i] for i in order], "--into", dest)
    assert code == 0, out + err
    assert (dest / "a" / "big").read_bytes() == random_big()
    assert (dest / "a" / "y").read_bytes() == b"y starts lane 2\n"
    assert (dest / "b" / "link").read_bytes() == b"x is in lane 1\n"
    assert os.readlink(dest / "b" / "sym") == "../a/y"
    assert inode_groups(dest) == {frozenset({b"a/x", b"b/link"})}
    # The directory lane 2 started in gets its own record's mode and mtime, whichever lane came first.
    assert (dest / "a").stat().st_mode & 0o7777 == 0o755
    assert (dest / "a").stat().st_mtime_ns == 1_700_000_000_123_456_789


def random_big() -> bytes:
    """a/big as make_format_v2.py makes it."""
    return random.Random(2).randbytes(65536 + 1000)


# --- one lane, packed ------------------------------------------------------------------------------------------


def test_a_version_2_pack_of_one_lane_restores_identical(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src", big_size=1_500_000)
    out = tmp_path / "out"
    options = PackOptions(chunk_size=64 * 1024, reserve=0, format_version=2)
    summary = pack(src, out=str(out), drive_size=1_200_000, options=options)
    drives = sorted(out.iterdir())
    assert len(drives) >= 2
    labels = [DriveReader(str(d)).label for d in drives]
    assert {(lb.version, lb.lane) for lb in labels} == {(2, 1)}
    assert [lb.lane_seq for lb in labels] == list(range(1, len(drives) + 1))
    for drive in drives:
        first = next(r for r in DriveReader(str(drive)).records() if isinstance(r, ChunkRecord))
        assert first.id == 0  # every drive counts its chunks from 0
    header = next(iter(CatalogReader(str(drives[0] / CATALOG_NAME)).records()))
    assert isinstance(header, CatalogHeader) and header.version == 2 and header.fingerprint == summary.fingerprint
    code, out_text, _ = invoke_cli("verify", *drives)
    assert code == 0, out_text
    dest = tmp_path / "dest"
    code, out_text, err = invoke_cli("restore", *reversed(drives), "--into", dest)
    assert code == 0, out_text + err
    restored = source_entries(dest)
    restored.pop(b".sneakernet", None)
    restored = {p: e for p, e in restored.items() if not p.startswith(b".sneakernet/")}
    assert restored == as_restored(source_entries(src))


def test_the_command_line_still_writes_version_1(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data")
    code, _, err = invoke_cli("pack", src, "--out", tmp_path / "out", "--drive-size", "10MB", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "drive-0001" / DRIVE_LABEL_NAME).read_text())["version"] == 1


# --- drives that lie ---------------------------------------------------------------------------------------------


def copy_fixture(tmp_path: Path) -> list[Path]:
    shutil.copytree(FIXTURE, tmp_path / "ship")
    return [tmp_path / "ship" / d.name for d in DRIVES]


def raw_records(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as handle:
        return [r for r in read_records(handle, str(path)) if r is not None]


def write_records(path: Path, records: list[dict[str, Any]]) -> tuple[int, str]:
    path.unlink()
    writer = RecordFileWriter(path)
    for record in records:
        writer.write(record)
    return writer.close()


def forge(drives: list[Path], number: int, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite drive ``number``'s manifest records through ``change``, then everything that pins it as a writer
    would (drive.json, every catalog copy's drive record, the fingerprint, B3SUMS): only the change lies."""
    drive = drives[number - 1]
    size, digest = write_records(drive / MANIFEST_NAME, [change(r) for r in raw_records(drive / MANIFEST_NAME)])
    label = json.loads((drive / DRIVE_LABEL_NAME).read_text())
    label.update(manifest_size=size, manifest_blake3=digest)
    (drive / DRIVE_LABEL_NAME).write_text(json.dumps(label, indent=2) + "\n")
    forge_catalog(drives, lambda r: {**r, "manifest_size": size, "manifest_blake3": digest}
                  if r["type"] == "drive" and r["drive"] == number else r)  # fmt: skip


def forge_catalog(
    drives: list[Path], change: Callable[[dict[str, Any]], dict[str, Any]], refinger: bool = True
) -> None:
    records = [change(r) for r in raw_records(drives[0] / CATALOG_NAME)]
    if refinger:
        records[0]["fingerprint"] = body_fingerprint(encode_record(r) for r in records[1:])
    for drive in drives:
        write_records(drive / CATALOG_NAME, records)
        (drive / CHECKSUMS_NAME).unlink()  # B3SUMS pins nothing (section 8); verify notes it missing


def test_a_next_drive_off_the_lane_is_refused(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    # Drive 1's piece of a/big claims to go on on drive 2, which is lane 2's.
    forge(drives, 1, lambda r: {**r, "next_drive": 2} if r.get("next_drive") == 3 else r)
    code, out, _ = invoke_cli("verify", drives[0])
    assert code == 1
    assert "a piece on drive 1 continues on drive 2, but drive 1 is followed in its lane by drive 3" in out
    dest = tmp_path / "dest"
    code, out, err = invoke_cli("restore", drives[0], "--into", dest)
    assert code != 0
    assert "continues on drive 2" in out + err
    assert not (dest / "a" / "big").exists()


def test_chunk_ids_must_start_from_0_on_every_drive(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)

    def renumber(record: dict[str, Any]) -> dict[str, Any]:
        if record["type"] == "chunk":
            return {**record, "id": record["id"] + 5}
        if record["type"] == "file" and record["chunk"] >= 0:
            return {**record, "chunk": record["chunk"] + 5}
        return record

    forge(drives, 3, renumber)
    code, out, _ = invoke_cli("verify", drives[2])
    assert code == 1
    assert "the first chunk is chunk 5: in format version 2 every drive's is 0" in out


def test_an_entry_changed_without_the_fingerprint_is_refused(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    forge_catalog(drives, lambda r: {**r, "path": "a/z"} if r.get("path") == "a/y" else r, refinger=False)
    code, out, _ = invoke_cli("verify", drives[1])
    assert code == 1
    assert "does not give the fingerprint in its header" in out
    dest = tmp_path / "dest"
    code, out, err = invoke_cli("restore", drives[1], "--into", dest)
    assert code == 2
    assert "does not give the fingerprint in its header" in err
    assert not (dest / "a").exists()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: {**r, "pieces": 3} if r.get("path") == "a/big" else r, "3 pieces from drive 1"),
        (lambda r: {**r, "lane": 2, "lane_seq": 2} if r["type"] == "drive" and r["drive"] == 3 else r, "a/big"),
        (lambda r: {**r, "lanes": 3} if r["type"] == "summary" else r, "lane 3 has no drive"),
        (lambda r: {**r, "files": 4} if r["type"] == "summary" else r, "the summary's files is 4"),
    ],
    ids=["pieces", "lane", "lanes", "files"],
)
def test_a_catalog_lying_about_lanes_is_refused_even_with_its_fingerprint(
    tmp_path: Path, change: Callable[[dict[str, Any]], dict[str, Any]], problem: str
) -> None:
    drives = copy_fixture(tmp_path)
    forge_catalog(drives, change)
    code, out, _ = invoke_cli("verify", drives[0])
    assert code == 1 and problem in out, out
    dest = tmp_path / "dest"
    code, out, err = invoke_cli("restore", *drives, "--into", dest)
    assert code == 2 and problem in err, out + err
    assert not (dest / "a").exists()


def test_drives_of_two_versions_are_not_one_shipment(tmp_path: Path) -> None:
    v1 = Path(__file__).resolve().parents[1] / "fixtures" / "format-v1" / "shipment" / "drive-0001"
    dest = tmp_path / "dest"
    code, out, err = invoke_cli("restore", v1, DRIVES[1], "--into", dest)
    assert code != 0
    assert "drive-0002" in out + err and not (dest / "a").exists()


def test_a_header_that_disagrees_with_drive_json_is_refused(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    forge(drives, 2, lambda r: {**r, "lane_seq": 2} if r["type"] == "header" else r)
    code, out, _ = invoke_cli("verify", drives[1])
    assert code == 1
    assert "the manifest's lane_seq is 2, drive.json's 1" in out


def test_status_counts_what_waits_on_the_drives_of_its_lane_only(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    invoke_cli("restore", DRIVES[2], "--into", dest)  # one drive of three: the restore is not complete
    _, out, _ = invoke_cli("status", "--json", dest)
    waiting = {w["drive"]: (w["files"], w["bytes"]) for w in json.loads(out)["waiting"]}
    # a/big (pieces on drives 1 and 3, lane 1) waits on drive 1 only: drive 2 is lane 2's, between the two numbers.
    assert waiting == {1: (2, 66536), 2: (4, 16)}


def test_a_damaged_manifest_hurts_the_paths_of_its_lane_only(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    manifest = drives[1] / MANIFEST_NAME
    data = bytearray(manifest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    manifest.write_bytes(bytes(data))
    code, out, _ = invoke_cli("verify", "--json", drives[1])
    assert code == 1
    (problem,) = [p for p in json.loads(out)["drives"][0]["problems"] if p["kind"] == "manifest"]
    # a/big spans drive numbers 1 to 3 but lies in lane 1: drive 2 (lane 2) carries none of it.
    assert problem["paths"] == ["a/y", "b", "b/link", "b/sym"]


def test_an_encrypted_drive_is_refused_in_one_line(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    label = json.loads((drives[0] / DRIVE_LABEL_NAME).read_text())
    label["encrypted"] = True
    del label["raw_bytes"]
    (drives[0] / DRIVE_LABEL_NAME).write_text(json.dumps(label, indent=2) + "\n")
    code, _, err = invoke_cli("ls", drives[0])
    assert code == 2
    assert err.endswith(
        "is a drive of an encrypted shipment: give its key with --identity FILE or --passphrase-file FILE\n"
    )
    assert err.count("\n") == 1


def test_a_parity_drive_given_as_a_data_drive_is_refused_in_one_line(tmp_path: Path) -> None:
    drives = copy_fixture(tmp_path)
    label = json.loads((drives[0] / DRIVE_LABEL_NAME).read_text())
    for name in ("lane", "lane_seq", "raw_bytes"):
        del label[name]
    label.update(role="parity", label="parity-0001", group=1, row=0)
    (drives[0] / DRIVE_LABEL_NAME).write_text(json.dumps(label, indent=2) + "\n")
    # verify checks a parity drive with the parity checks (19.7.5); restore and ls read data drives only.
    for command in (["restore", drives[0], "--into", tmp_path / "dest"], ["ls", drives[0]]):
        code, _, err = invoke_cli(*command)
        assert code == 2
        assert err.endswith("is a parity drive (parity-0001), not a data drive: give the shipment's data drives\n")
    assert not (tmp_path / "dest").exists()


def test_parity_records_in_the_catalog_leave_its_fingerprint(tmp_path: Path) -> None:
    from sneakernet.drive.catalog import catalog_body
    from sneakernet.format import CatalogParity

    records = list(CatalogReader(str(DRIVES[0] / CATALOG_NAME)).records())
    header = records[0]
    assert isinstance(header, CatalogHeader)
    labels = [DriveReader(str(d)).label for d in DRIVES]
    spool = tmp_path / "entries"
    spool.write_bytes(b"".join(r.to_line() for r in records if isinstance(r, CatalogEntry)))
    parity = [CatalogParity(1, "parity-0001", 1, 0, 100, "ab" * 32, 4 << 20)]
    with open(spool, "rb") as lines:
        plain = list(catalog_body(header, labels, lines))
        with_parity = list(catalog_body(header, labels, lines, parity))
    assert body_fingerprint(plain) == body_fingerprint(with_parity) == header.fingerprint
    assert len(with_parity) == len(plain) + 1 and with_parity[3 + 1].startswith(b'{"type":"parity"')
    # And a reader takes the catalog with them (19.5: catalogs differing only in parity records are one).
    catalog = tmp_path / CATALOG_NAME
    writer = RecordFileWriter(catalog)
    writer.write(header.to_json())
    for line in with_parity:
        writer.write_line(line)
    writer.close()
    read = list(CatalogReader(str(catalog)).records())
    assert [r for r in read if isinstance(r, CatalogParity)] == parity


def test_ls_names_the_drives_of_a_lane_not_the_numbers_between() -> None:
    code, out, _ = invoke_cli("ls", DRIVES[1])
    assert code == 0
    assert "file               66536 drive 1,3       a/big" in out.splitlines()
    code, out, _ = invoke_cli("ls", "--json", DRIVES[1])
    listed = {e["path"]: e["drives"] for e in map(json.loads, out.splitlines())}
    assert listed == {"a": [1], "a/y": [2], "b": [2], "b/link": [2], "b/sym": [2], "a/big": [1, 3], "a/x": [3]}


def test_info_tells_the_lane_and_place_of_a_drive() -> None:
    code, out, _ = invoke_cli("info", DRIVES[2])
    assert code == 0
    assert "  format version 2: lane 1 of 2, drive 2 of the lane" in out.splitlines()
    code, out, _ = invoke_cli("info", "--json", DRIVES[2])
    found = json.loads(out)
    assert (found["version"], found["lane"], found["lane_seq"], found["lanes"], found["drives"]) == (2, 1, 2, 2, 3)
    v1 = Path(__file__).resolve().parents[1] / "fixtures" / "format-v1" / "shipment" / "drive-0001"
    code, out, _ = invoke_cli("info", "--json", v1)
    found = json.loads(out)
    assert (found["version"], found["lane"], found["lane_seq"], found["lanes"]) == (1, None, None, None)
