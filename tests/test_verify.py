"""End-to-end tests of verify: packed shipments, damaged on purpose, checked through the library and the CLI.

Every expectation about which paths a damaged chunk hurts is computed here, independently, from the manifest's
chunk and file records (never through verify's own mapping), and every --json report is validated against
docs/verify-report.schema.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import jsonschema
import pytest

from conftest import drive_dirs, make_edge_tree, write_file
from conftest import invoke_cli as run
from craft import Chunk, RecordFileWriter, file_rec, small_files, write_shipment
from fakestore import FaultyStore
from sneakernet import PackOptions, PackSummary, pack
from sneakernet.chunks.compress import store_frame
from sneakernet.drive import CatalogReader, DriveReader
from sneakernet.errors import UsageError
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    CatalogEntry,
    ChunkRecord,
    DriveLabel,
    FileRecord,
    HardlinkRecord,
    SegmentRecord,
    show_path,
)
from sneakernet.format.container import read_records
from sneakernet.verifier import (
    DriveReport,
    Mode,
    StateDir,
    StateStore,
    Status,
    VerifyReport,
    VerifyState,
    normalise_fingerprint,
    verify,
)

#: The module of verify's data pass: what tests patch to watch or stop its reads.
verifier = importlib.import_module("sneakernet.verifier")

DRIVE = 1_500_000
SMALL = PackOptions(chunk_size=256 * 1024, reserve=0)
#: Two 64 KiB chunks per segment: one 100 kB file per segment, several segments per drive.
SEGMENTED = PackOptions(chunk_size=64 * 1024, segment_size=140_000, reserve=0)
SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "verify-report.schema.json").read_text())


# --- shipments, packed once per session and copied per test ---------------------------------------------------


@dataclasses.dataclass
class Packed:
    out: Path
    summary: PackSummary

    def copy(self, to: Path) -> list[Path]:
        shutil.copytree(self.out, to)
        return drive_dirs(to)


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packed]:
    """``a`` and ``b``: the edge tree packed twice (two shipments of the same data); ``seg``: ten 100 kB files on
    one drive, one file per segment."""
    base = tmp_path_factory.mktemp("shipments")
    tree = make_edge_tree(base / "src")
    rng = random.Random(11)
    for i in range(10):
        write_file(base / "seg-src" / f"f{i}.bin", rng.randbytes(100_000))
    shipments = {}
    for name, source, size, options in [
        ("a", tree, DRIVE, SMALL),
        ("b", tree, DRIVE, SMALL),
        ("seg", base / "seg-src", 10**8, SEGMENTED),
    ]:
        summary = pack(str(source), out=str(base / name), drive_size=size, options=options)
        shipments[name] = Packed(base / name, summary)
    return shipments


@pytest.fixture
def ship(packed: dict[str, Packed], tmp_path: Path) -> list[Path]:
    """A fresh copy of shipment ``a``: six drives, store chunks of arrays/big.npy, and one zstd group chunk."""
    drives = packed["a"].copy(tmp_path / "a")
    assert len(drives) >= 3
    return drives


@pytest.fixture
def seg_drive(packed: dict[str, Packed], tmp_path: Path) -> Path:
    """A fresh copy of the one drive of shipment ``seg``: ten segments of two chunks each."""
    drives = packed["seg"].copy(tmp_path / "seg")
    assert len(drives) == 1 and DriveReader(str(drives[0])).label.segments == 10
    return drives[0]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep verify's progress files of CLI runs in the test's directory, never in ~/.cache."""
    path = tmp_path / "state"
    monkeypatch.setenv("SNEAKERNET_STATE_DIR", str(path))
    return path


# --- helpers ----------------------------------------------------------------------------------------------------


def run_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = run("verify", "--json", *args)
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert "Traceback" not in err
    return code, report


def check(*drives: Path, state_dir: Path | StateStore | None = None, **options: Any) -> VerifyReport:
    store = str(state_dir) if isinstance(state_dir, Path) else state_dir
    report = verify([str(d) for d in drives], state_dir=store, **options)
    jsonschema.validate(json.loads(json.dumps(report.to_json())), SCHEMA)
    return report


def check_one(drive: Path, **options: Any) -> DriveReport:
    return check(drive, **options).drives[0]


def kinds(report: DriveReport) -> list[str]:
    return [p.kind for p in report.problems]


def messages(report: DriveReport, kind: str) -> list[str]:
    return [p.message for p in report.problems if p.kind == kind]


def records(drive: Path) -> list[object]:
    return list(DriveReader(str(drive)).records())


def chunks(drive: Path) -> list[ChunkRecord]:
    return [r for r in records(drive) if isinstance(r, ChunkRecord)]


def label(drive: Path) -> DriveLabel:
    return DriveLabel.from_bytes((drive / DRIVE_LABEL_NAME).read_bytes())


def stored_total(drive: Path) -> int:
    return sum(c.stored_size for c in chunks(drive))


def hurt_by(drive: Path, chunk_ids: set[int]) -> list[str]:
    """Independently of verify: every path with a byte in one of ``chunk_ids`` (and the hard links to it)."""
    raw_sizes: dict[int, int] = {}
    hurt: set[bytes] = set()
    links: list[HardlinkRecord] = []
    for record in records(drive):
        if isinstance(record, ChunkRecord):
            raw_sizes[record.id] = record.raw_size
        elif isinstance(record, FileRecord) and record.length > 0:
            chunk, skip, remaining = record.chunk, record.chunk_offset, record.length
            while remaining > 0:
                if chunk in chunk_ids:
                    hurt.add(record.path)
                remaining -= min(raw_sizes[chunk] - skip, remaining)
                chunk, skip = chunk + 1, 0
        elif isinstance(record, HardlinkRecord):
            links.append(record)
    hurt.update(link.path for link in links if link.target in hurt)
    return sorted(show_path(p) for p in hurt)


def catalog_paths_on(drive: Path) -> list[str]:
    """Independently of verify: the catalog's paths whose first_drive <= drive <= last_drive."""
    number = label(drive).drive
    catalog = CatalogReader(str(drive / CATALOG_NAME))
    return sorted(
        show_path(r.path)
        for r in catalog.records()
        if isinstance(r, CatalogEntry) and r.first_drive <= number <= r.last_drive
    )


def find_chunk(drives: list[Path], method: str) -> tuple[Path, ChunkRecord]:
    """The first chunk stored with ``method``; for zstd, a group chunk of more than five paths."""
    for drive in drives:
        for chunk in chunks(drive):
            if chunk.method == method and (method == "store" or len(hurt_by(drive, {chunk.id})) > 5):
                return drive, chunk
    raise AssertionError(f"no {method} chunk in the shipment")


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def flip_inside(drive: Path, chunk: ChunkRecord) -> None:
    flip(drive / chunk.segment, chunk.offset + chunk.stored_size // 2)


def replace_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def other_hex(char: str) -> str:
    return "1" if char != "1" else "2"


def rewrite_manifest(drive: Path, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Write the manifest again with ``edit`` applied to each raw record, then make drive.json and B3SUMS match
    it: a drive consistent in itself, whose manifest is not the one the catalog names."""
    manifest = drive / MANIFEST_NAME
    with open(manifest, "rb") as handle:
        raw = [edit(dict(r)) for r in read_records(handle, "manifest")]
    fresh = drive.parent / (drive.name + "-manifest.tmp")
    writer = RecordFileWriter(fresh)
    for record in raw:
        writer.write(record)
    size, digest = writer.close()
    os.replace(fresh, manifest)
    new_label = dataclasses.replace(label(drive), manifest_size=size, manifest_blake3=digest).to_bytes()
    (drive / DRIVE_LABEL_NAME).write_bytes(new_label)
    new_digests = {MANIFEST_NAME: digest, DRIVE_LABEL_NAME: blake3.blake3(new_label).hexdigest()}
    lines = []
    for line in (drive / CHECKSUMS_NAME).read_text().splitlines():
        old, name = line.split("  ", 1)
        lines.append(f"{new_digests.get(name, old)}  {name}\n")
    (drive / CHECKSUMS_NAME).write_text("".join(lines))


def snapshot(drive: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and directory under ``drive`` with its bytes and mtime."""
    out = {".": (b"", os.stat(drive).st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(drive):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            data = full.read_bytes() if full.is_file() else b""
            out[str(full.relative_to(drive))] = (data, full.stat().st_mtime_ns)
    return out


class ReadSpy:
    """Records every chunk verify reads from a segment (name, stored size)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[tuple[str, int]] = []
        # verify reads stored bytes either way: copied (to decode them) or hashed in place.
        for name in ("read_stored", "stored_matches"):
            real = getattr(DriveReader, name)

            def spying(reader: DriveReader, chunk: ChunkRecord, _real: Any = real) -> Any:
                self.reads.append((chunk.segment, chunk.stored_size))
                return _real(reader, chunk)

            monkeypatch.setattr(DriveReader, name, spying)
        whole = DriveReader.segment_blake3

        # ... or hashed whole, a segment at a time (ahead, on another thread, in the order verify uses them).
        def spying_whole(reader: DriveReader, name: str, threads: int, advance: Any, *slice_size: int) -> str | None:
            self.reads.append((name, os.path.getsize(reader.file(name))))
            return whole(reader, name, threads, advance, *slice_size)

        monkeypatch.setattr(DriveReader, "segment_blake3", spying_whole)

    @property
    def segments(self) -> set[str]:
        return {segment for segment, _ in self.reads}

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.reads)


def ctrl_c_store(fail_read: Callable[[str], bool]) -> Callable[[str], FaultyStore]:
    """Drive stores (tests/fakestore.py) in which reading a file that ``fail_read`` names is a Ctrl-C."""
    return lambda path: FaultyStore(path, fail_read=fail_read, fault=KeyboardInterrupt())


class InterruptedStore(StateDir):
    """verify's progress kept in ``path``, with Ctrl-C pressed as verify saves it for the ``saves + 1``-th time:
    verify saves after each segment it finishes (hashed whole and intact, or each of its chunks checked)."""

    def __init__(self, path: Path, saves: int) -> None:
        super().__init__(str(path))
        self.saves, self.saved = saves, 0

    def save(self, state: VerifyState) -> None:
        if self.saved == self.saves:
            raise KeyboardInterrupt
        self.saved += 1
        super().save(state)


@contextlib.contextmanager
def interrupted_after(state: Path, saves: int) -> Iterator[InterruptedStore]:
    """A store for verify's progress in ``state`` that interrupts the run after ``saves`` saves (the segments
    finished before them are done, the next is under way)."""
    store = InterruptedStore(state, saves)
    with pytest.raises(KeyboardInterrupt):
        yield store
    assert store.saved == saves


# --- 1. an untouched shipment -------------------------------------------------------------------------------


def test_untouched_shipment_is_intact(ship: list[Path], packed: dict[str, Packed]) -> None:
    report = check(*ship)
    assert report.ok
    for drive, got in zip(ship, report.drives, strict=True):
        assert got.status == Status.INTACT.value and got.problems == [] and got.damaged_chunks == []
        assert got.bytes_checked == stored_total(drive) == label(drive).stored_bytes
        assert got.chunks_checked == len(chunks(drive))
        assert got.label == drive.name and got.drive == label(drive).drive and got.drives == len(ship)
        assert got.fingerprint == packed["a"].summary.fingerprint and got.shipment == packed["a"].summary.shipment
        assert got.missing == got.unexpected == [] and got.hurt_paths() == [] and not got.resumed

    code, out, err = run("verify", *ship)
    assert code == 0, out + err
    assert f"{len(ship)} of {len(ship)} drives intact" in out and "hurt" not in out

    code, got_json = run_json(*ship)
    assert code == 0 and got_json["ok"] is True
    assert got_json["resend"] == {"chunks": [], "paths": []}
    assert sum(d["bytes_checked"] for d in got_json["drives"]) == sum(stored_total(d) for d in ship)
    assert [d["status"] for d in got_json["drives"]] == ["intact"] * len(ship)


# --- 2. a flipped byte in a chunk -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["store", "zstd"])
def test_flipped_byte_damages_exactly_one_chunk(ship: list[Path], method: str) -> None:
    drive, chunk = find_chunk(ship, method)
    expected = hurt_by(drive, {chunk.id})
    if method == "zstd":  # the group chunk of small files, with the hard link to one of them
        assert len(expected) > 5 and "text/doc001.jsonl" in expected and "hardlink-to-doc001" in expected
    else:
        assert expected == ["arrays/big.npy"]
    flip_inside(drive, chunk)

    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and got.problems == []
    assert [(c.id, c.segment, c.offset, c.stored_size) for c in got.damaged_chunks] == [
        (chunk.id, chunk.segment, chunk.offset, chunk.stored_size)
    ]
    assert "BLAKE3" in got.damaged_chunks[0].reason
    assert sorted(got.damaged_chunks[0].paths) == expected
    assert len(got.damaged_chunks[0].paths) == len(expected)
    assert got.hurt_paths() == expected
    assert got.bytes_checked == stored_total(drive)  # the rest of the drive was still read

    code, report = run_json(*ship)
    assert code == 1 and report["ok"] is False
    assert report["resend"] == {"chunks": [chunk.id], "paths": expected}
    statuses = {Path(d["path"]).name: d["status"] for d in report["drives"]}
    assert statuses == {d.name: "damaged" if d == drive else "intact" for d in ship}

    code, out, _ = run("verify", drive)
    assert code == 1
    assert f"damaged chunk {chunk.id} in {chunk.segment} from byte {chunk.offset}" in out
    assert f"0 of 1 drive intact; {len(expected)} file{'s' if len(expected) != 1 else ''} hurt" in out


# --- 3./4./5./6. damaged manifest, catalog, B3SUMS and drive.json ---------------------------------------------


def test_damaged_manifest_hurts_every_path_of_the_drive(ship: list[Path]) -> None:
    drive = ship[-1]  # the drive with the small files, links and directories
    expected = catalog_paths_on(drive)
    assert len(expected) > 40 and "text/doc001.jsonl" in expected and "arrays/big.npy" in expected
    flip(drive / MANIFEST_NAME, (drive / MANIFEST_NAME).stat().st_size // 2)

    got = check_one(drive)
    assert got.status == Status.DAMAGED.value
    assert kinds(got) == ["manifest"]
    message = messages(got, "manifest")[0]
    assert f"{MANIFEST_NAME} is damaged" in message and "new copy of the drive" in message
    assert sorted(got.problems[0].paths) == expected and len(got.problems[0].paths) == len(expected)
    assert got.hurt_paths() == expected
    code, report = run_json(drive)
    assert code == 1 and report["resend"] == {"chunks": [], "paths": expected}


def test_damaged_manifest_of_a_drive_with_part_of_a_file(ship: list[Path]) -> None:
    drive = ship[1]
    flip(drive / MANIFEST_NAME, 40)
    got = check_one(drive)
    assert kinds(got) == ["manifest"]
    assert got.hurt_paths() == catalog_paths_on(drive)
    assert "arrays/big.npy" in got.hurt_paths()


def test_damaged_catalog_is_reported_and_the_data_still_checked(ship: list[Path]) -> None:
    drive = ship[-1]
    flip(drive / CATALOG_NAME, (drive / CATALOG_NAME).stat().st_size // 2)
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value
    assert "catalog" in kinds(got) and "manifest" not in kinds(got)
    assert any(f"{CATALOG_NAME} is damaged" in m for m in messages(got, "catalog"))
    assert got.bytes_checked == stored_total(drive) and got.chunks_checked == len(chunks(drive))
    assert got.damaged_chunks == [] and got.hurt_paths() == []
    assert run("verify", drive)[0] == 1


def test_damaged_catalog_b3sums_line_disagrees(ship: list[Path]) -> None:
    drive = ship[-1]
    flip(drive / CATALOG_NAME, (drive / CATALOG_NAME).stat().st_size // 2)
    got = check_one(drive)
    assert not any("not part of this drive" in m for m in messages(got, "checksums"))
    assert messages(got, "checksums") == [f"{CHECKSUMS_NAME} disagrees with the drive about {CATALOG_NAME}"]


def test_b3sums_hex_digit_flipped(ship: list[Path]) -> None:
    drive = ship[0]
    sums = drive / CHECKSUMS_NAME
    first = sums.read_text().splitlines()[0]
    digest, name = first.split("  ")
    replace_text(sums, first, other_hex(digest[0]) + digest[1:] + "  " + name)
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and kinds(got) == ["checksums"]
    assert messages(got, "checksums") == [f"{CHECKSUMS_NAME} disagrees with the drive about {name}"]
    assert got.bytes_checked == stored_total(drive) and got.damaged_chunks == [] and got.hurt_paths() == []
    assert run("verify", drive)[0] == 1


def test_b3sums_name_character_flipped(ship: list[Path]) -> None:
    drive = ship[0]
    replace_text(drive / CHECKSUMS_NAME, f"  {MANIFEST_NAME}\n", "  manifest.jsonk.zst\n")
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and set(kinds(got)) == {"checksums"}
    found = messages(got, "checksums")
    assert f"{CHECKSUMS_NAME} has no line for {MANIFEST_NAME}" in found
    assert any("manifest.jsonk.zst" in m and "not part of this drive" in m for m in found)
    assert got.hurt_paths() == [] and got.bytes_checked == stored_total(drive)


def test_label_that_is_not_json(ship: list[Path]) -> None:
    drive = ship[0]
    flip(drive / DRIVE_LABEL_NAME, (drive / DRIVE_LABEL_NAME).read_bytes().index(b'"'))
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and kinds(got) == ["label"]
    assert f"{DRIVE_LABEL_NAME} is damaged" in got.problems[0].message and "not valid JSON" in got.problems[0].message
    code, report = run_json(drive)
    assert code == 1 and report["drives"][0]["status"] == "damaged"


def test_label_with_wrong_manifest_hash_is_a_label_problem(ship: list[Path]) -> None:
    drive = ship[-1]
    digest = label(drive).manifest_blake3
    total, count = stored_total(drive), len(chunks(drive))
    replace_text(drive / DRIVE_LABEL_NAME, digest, digest[:10] + other_hex(digest[10]) + digest[11:])
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value
    assert "label" in kinds(got) and "manifest" not in kinds(got)
    assert set(kinds(got)) <= {"label", "checksums"}  # B3SUMS hashes drive.json too
    assert got.bytes_checked == total and got.chunks_checked == count
    assert got.damaged_chunks == [] and got.hurt_paths() == []


def test_label_with_wrong_manifest_hash_cli_is_not_a_traceback(ship: list[Path]) -> None:
    drive = ship[-1]
    digest = label(drive).manifest_blake3
    replace_text(drive / DRIVE_LABEL_NAME, digest, digest[:10] + other_hex(digest[10]) + digest[11:])
    code, _, err = run("verify", drive)
    assert code == 1 and "Traceback" not in err


def test_label_with_wrong_stored_bytes(ship: list[Path]) -> None:
    drive = ship[0]
    stored = label(drive).stored_bytes
    text = f'"stored_bytes": {stored},'
    replace_text(drive / DRIVE_LABEL_NAME, text, f'"stored_bytes": {other_hex(str(stored)[0])}{str(stored)[1:]},')
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value
    assert set(kinds(got)) == {"label", "checksums"}
    assert any(f"{DRIVE_LABEL_NAME} says" in m and str(stored) in m for m in messages(got, "label"))
    assert messages(got, "checksums") == [f"{CHECKSUMS_NAME} disagrees with the drive about {DRIVE_LABEL_NAME}"]
    assert got.bytes_checked == stored and got.damaged_chunks == [] and got.hurt_paths() == []


# --- 7./8. segments cut, missing or too long; stray files -----------------------------------------------------


def test_truncated_segment(ship: list[Path]) -> None:
    drive = ship[-1]
    on_drive = chunks(drive)
    segment = on_drive[0].segment
    cut = on_drive[1].offset + 100  # inside the second chunk
    os.truncate(drive / segment, cut)
    past_cut = {c.id for c in on_drive if c.segment == segment and c.offset + c.stored_size > cut}
    assert len(past_cut) >= 2 and on_drive[0].id not in past_cut

    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and kinds(got) == ["truncated_segment"]
    assert segment in got.problems[0].message and f"{cut} of" in got.problems[0].message
    assert {c.id for c in got.damaged_chunks} == past_cut
    for damaged in got.damaged_chunks:
        assert sorted(damaged.paths) == hurt_by(drive, {damaged.id})
    assert got.hurt_paths() == hurt_by(drive, past_cut)
    code, report = run_json(drive)
    assert code == 1 and report["resend"] == {"chunks": sorted(past_cut), "paths": hurt_by(drive, past_cut)}


def test_missing_segment(seg_drive: Path) -> None:
    on_drive = chunks(seg_drive)
    segment = "segments/s000004.seg"
    lost = {c.id for c in on_drive if c.segment == segment}
    assert len(lost) == 2
    os.remove(seg_drive / segment)

    got = check_one(seg_drive)
    assert got.status == Status.DAMAGED.value and kinds(got) == ["missing_segment"]
    assert got.missing == [segment] and segment in got.problems[0].message
    assert {c.id for c in got.damaged_chunks} == lost
    assert got.hurt_paths() == hurt_by(seg_drive, lost) == ["f3.bin"]
    code, report = run_json(seg_drive)
    assert code == 1 and report["drives"][0]["missing"] == [segment]
    assert report["resend"] == {"chunks": sorted(lost), "paths": ["f3.bin"]}


def test_oversized_segment(ship: list[Path]) -> None:
    drive = ship[0]
    segment = chunks(drive)[0].segment
    with open(drive / segment, "ab") as handle:
        handle.write(b"\0")
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and set(kinds(got)) == {"oversized_segment"}
    assert segment in got.problems[0].message and "1 bytes too many" in got.problems[0].message
    assert got.damaged_chunks == [] and got.hurt_paths() == []
    assert run("verify", drive)[0] == 1


def test_stray_files(ship: list[Path]) -> None:
    drive = ship[0]
    write_file(drive / "notes.txt", b"hello\n")
    write_file(drive / "segments" / "s000099.seg", b"stray\n")
    got = check_one(drive)
    # Every byte intact: a warning of its own, not damage (it was "DAMAGED", exit 1).
    assert got.status == Status.UNEXPECTED_FILES.value and got.ok
    assert kinds(got) == ["unexpected_file", "unexpected_file"]
    assert got.unexpected == ["notes.txt", "segments/s000099.seg"]
    assert all("not part of this drive" in m for m in messages(got, "unexpected_file"))
    assert got.hurt_paths() == [] and got.bytes_checked == stored_total(drive)
    code, report = run_json(drive)
    assert code == 0 and report["ok"] and report["drives"][0]["status"] == "unexpected_files"
    assert report["drives"][0]["unexpected"] == ["notes.txt", "segments/s000099.seg"]
    code, out, _ = run("verify", drive)
    assert code == 0 and ": intact, with 2 unexpected files: " in out.splitlines()[0]
    assert "  warning: notes.txt is not part of this drive" in out.splitlines()
    assert "1 of 1 drive intact (1 with files that are not part of it: nothing of the shipment is hurt" in out
    assert "warning: notes.txt" in run("verify", "-q", drive)[1]


def test_a_partial_file_pack_left_is_still_a_problem(ship: list[Path]) -> None:
    write_file(ship[0] / "catalog.jsonl.zst.partial", b"half a catalog")
    got = check_one(ship[0])
    assert got.status == Status.DAMAGED.value and "run it again with --resume" in messages(got, "unexpected_file")[0]


def test_stray_file_beside_damage_is_damage(ship: list[Path]) -> None:
    drive = ship[0]
    write_file(drive / "notes.txt", b"hello\n")
    flip_inside(drive, chunks(drive)[0])
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and got.damaged_chunks and "unexpected_file" in kinds(got)
    assert run("verify", drive)[0] == 1


def test_stray_file_beside_a_chunk_of_two_frames_is_damage(tmp_path: Path) -> None:
    """A chunk whose segment hashes as packed but which holds a second frame is damage, a stray file beside it or
    not: the frame check left such a drive 'unexpected_files' (ok, exit 0) when a stray file came first."""
    two = Chunk(b"one", stored=store_frame(b"one") + store_frame(b"two"))
    (drive,) = write_shipment(tmp_path / "ship", [[two, file_rec("two", b"one", two)]])
    write_file(drive / "notes.txt", b"hello\n")
    got = check_one(drive)
    assert got.status == Status.DAMAGED.value and not got.ok and "unexpected_file" in kinds(got)
    assert [c.reason.split(" (")[0] for c in got.damaged_chunks] == ["chunk frame is followed by other bytes"]
    assert run("verify", drive)[0] == 1


def test_damage_outranks_a_mistyped_path(ship: list[Path], tmp_path: Path) -> None:
    # A damaged drive and a path that is not a drive exited 2: "bad arguments" hid the damage from scripts.
    flip_inside(ship[0], chunks(ship[0])[0])
    code, report = run_json(ship[0], tmp_path / "missing")
    assert code == 1 and [d["status"] for d in report["drives"]] == ["damaged", "not_a_drive"]
    assert run("verify", tmp_path / "missing", ship[0])[0] == 1


# --- 9. drives of two shipments -------------------------------------------------------------------------------


def test_drive_of_another_shipment_among_the_majority(packed: dict[str, Packed], tmp_path: Path) -> None:
    a, b = packed["a"].copy(tmp_path / "a"), packed["b"].copy(tmp_path / "b")
    report = check(a[0], b[1], a[2])
    assert [d.status for d in report.drives] == ["intact", "wrong_shipment", "intact"]
    odd = report.drives[1]
    assert kinds(odd) == ["other_shipment"]
    assert packed["b"].summary.shipment in odd.problems[0].message
    assert packed["a"].summary.shipment in odd.problems[0].message
    code, got = run_json(a[0], b[1], a[2])
    assert code == 1 and [d["status"] for d in got["drives"]] == ["intact", "wrong_shipment", "intact"]


def test_two_drives_of_two_shipments(packed: dict[str, Packed], tmp_path: Path) -> None:
    a, b = packed["a"].copy(tmp_path / "a"), packed["b"].copy(tmp_path / "b")
    report = check(a[0], b[1])
    assert sorted(d.status for d in report.drives) == ["intact", "wrong_shipment"]
    odd = next(d for d in report.drives if not d.ok)
    assert kinds(odd) == ["other_shipment"] and "another shipment" in odd.problems[0].message
    assert run("verify", a[0], b[1])[0] == 1


TIE = """
import json, sys
from sneakernet.verifier import DriveReport
from sneakernet.verifier.shipment import check_same_shipment
reports = [DriveReport("A", "full", shipment="a" * 32), DriveReport("B", "full", shipment="b" * 32)]
check_same_shipment(reports)
print(json.dumps([r.status for r in reports]))
"""


def test_tie_between_two_shipments_is_decided_the_same_way_every_run() -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TIE], stdout=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": str(seed)}
        )
        for seed in range(8)
    ]
    verdicts = {tuple(json.loads(p.communicate()[0])) for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(verdicts) == 1, verdicts


# --- 10. unfinished drives and paths that are not drives ------------------------------------------------------


def test_drive_without_label_is_unfinished(ship: list[Path]) -> None:
    drive = ship[0]
    os.remove(drive / DRIVE_LABEL_NAME)
    got = check_one(drive)
    assert got.status == Status.UNFINISHED.value and kinds(got) == ["unfinished"]
    assert "unfinished" in got.problems[0].message and "\n" not in got.problems[0].message
    code, out, err = run("verify", drive)
    assert code == 1 and "Traceback" not in err
    assert "UNFINISHED" in out and sum("is an unfinished drive" in line for line in out.splitlines()) == 1
    assert run_json(drive)[0] == 1


@pytest.fixture
def killed_pack(tmp_path: Path) -> list[Path]:
    """A pack interrupted while writing its third drive: two finished drives (no catalog), one unfinished."""
    opened: list[str] = []

    def third_drive_interrupted(path: str) -> FaultyStore:
        # Ctrl-C as the third drive's first chunk is written to its segment (the drive store's seam).
        if path not in opened:
            opened.append(path)
        third = opened.index(path) == 2
        return FaultyStore(path, fail_write=1 if third else None, fault=KeyboardInterrupt(), only=is_segment)

    tree = make_edge_tree(tmp_path / "src")
    with pytest.raises(KeyboardInterrupt):
        pack(
            str(tree), out=str(tmp_path / "killed"), drive_size=DRIVE, options=SMALL, open_store=third_drive_interrupted
        )
    drives = drive_dirs(tmp_path / "killed")
    assert [(d / DRIVE_LABEL_NAME).exists() for d in drives] == [True, True, False]
    return drives


def is_segment(name: str) -> bool:
    return name.endswith(".seg")


def test_partial_files_of_a_killed_pack(killed_pack: list[Path]) -> None:
    drive = killed_pack[-1]
    partials = sorted(str(p.relative_to(drive)) for p in drive.rglob("*.partial"))
    assert partials
    got = check_one(drive)
    assert got.status == Status.UNFINISHED.value and kinds(got) == ["unfinished"]
    assert set(partials) <= set(got.unexpected)
    code, out, _ = run("verify", drive)
    assert code == 1 and "unfinished" in out


def test_finished_drive_of_an_unfinished_shipment(killed_pack: list[Path]) -> None:
    drive = killed_pack[0]
    got = check_one(drive)
    assert got.ok and got.problems == [] and got.bytes_checked == stored_total(drive)
    assert any("no catalog" in note for note in got.notes)
    assert run("verify", drive)[0] == 0


@pytest.mark.parametrize("what", ["empty dir", "regular file", "missing", "pack's --out directory"])
def test_not_a_drive(tmp_path: Path, what: str) -> None:
    path = tmp_path / "thing"
    if what == "empty dir":
        path.mkdir()
    elif what == "regular file":
        write_file(path, b"not a drive\n")
    elif what == "pack's --out directory":
        for number in (1, 2):
            (path / f"drive-{number:04d}").mkdir(parents=True)
    got = check_one(path)
    assert got.status == Status.NOT_A_DRIVE.value and kinds(got) == ["not_a_drive"]
    expected = {
        "empty dir": "not a sneakernet drive",
        "regular file": "is not a directory",
        "missing": "does not exist",
        "pack's --out directory": f"holds drives (drive-0001, drive-0002): give them, e.g. {path}/drive-*",
    }[what]
    assert expected in got.problems[0].message
    code, out, err = run("verify", path)
    assert code == 2 and "NOT A DRIVE" in out and "Traceback" not in err
    assert run_json(path)[0] == 2


def test_not_a_drive_beside_an_intact_drive_exits_2(ship: list[Path], tmp_path: Path) -> None:
    code, report = run_json(ship[0], tmp_path / "missing")
    assert code == 2 and [d["status"] for d in report["drives"]] == ["intact", "not_a_drive"]


# --- 11. --fingerprint ------------------------------------------------------------------------------------------


def test_fingerprint_accepted_in_every_spelling(ship: list[Path], packed: dict[str, Packed]) -> None:
    summary = packed["a"].summary
    assert "-" in summary.short_fingerprint
    for spelling in [summary.fingerprint, summary.short_fingerprint, summary.fingerprint.upper()]:
        code, out, err = run("verify", "--fingerprint", spelling, *ship)
        assert code == 0, (spelling, out, err)
    assert normalise_fingerprint(summary.short_fingerprint.upper()) == summary.fingerprint[:20]
    assert normalise_fingerprint(summary.fingerprint.upper()) == summary.fingerprint


def test_fingerprint_that_matches_says_so(ship: list[Path], packed: dict[str, Packed]) -> None:
    summary = packed["a"].summary
    code, out, _ = run("verify", "--fingerprint", summary.short_fingerprint, ship[0])
    assert code == 0
    assert (
        f"  fingerprint matched: the drive belongs to shipment {summary.short_fingerprint}, the one given"
    ) in out.splitlines()
    code, report = run_json("--fingerprint", summary.short_fingerprint, ship[0])
    assert report["drives"][0]["fingerprint_matched"] is True
    assert "fingerprint matched" not in run("verify", ship[0])[1]
    assert run_json(ship[0])[1]["drives"][0]["fingerprint_matched"] is None


def test_fingerprint_one_digit_off_looks_mistyped(ship: list[Path], packed: dict[str, Packed]) -> None:
    right = packed["a"].summary.fingerprint[:20]
    typo = right[:6] + ("0" if right[6] != "0" else "1") + right[7:]
    code, out, _ = run("verify", "--fingerprint", typo, ship[0])
    assert code == 1 and "WRONG SHIPMENT" in out
    assert f"in only 1 of 20 digits (digit 7: {typo[6]} given, {right[6]} on the drive): it looks mistyped" in out
    assert "another shipment" not in out
    other = packed["b"].summary.short_fingerprint
    assert "digits differ): it is a drive of another shipment" in run("verify", "--fingerprint", other, ship[0])[1]


def test_fingerprint_of_another_shipment(ship: list[Path], packed: dict[str, Packed]) -> None:
    other = packed["b"].summary
    got = check_one(ship[0], expected_fingerprint=other.short_fingerprint)
    assert got.status == Status.WRONG_SHIPMENT.value and kinds(got) == ["fingerprint"]
    assert "another shipment" in got.problems[0].message
    assert packed["a"].summary.short_fingerprint in got.problems[0].message
    code, out, _ = run("verify", "--fingerprint", other.fingerprint, ship[0])
    assert code == 1 and "another shipment" in out and "WRONG SHIPMENT" in out


@pytest.mark.parametrize("bad", ["3f9a-12bc", "zzzz-zzzz-zzzz-zzzz-zzzz", "3f9a-12bc-77d0-e145-9abg", "0" * 65])
def test_unreadable_fingerprint_is_refused(ship: list[Path], bad: str) -> None:
    code, out, err = run("verify", "--fingerprint", bad, ship[0])
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and "cannot read fingerprint" in err
    with pytest.raises(UsageError):
        verify([str(ship[0])], expected_fingerprint=bad)


def test_fingerprint_on_a_drive_without_catalog_is_unconfirmed(killed_pack: list[Path]) -> None:
    drive = killed_pack[0]
    got = check_one(drive, expected_fingerprint="0123-4567-89ab-cdef-0123")
    assert got.status == Status.UNCONFIRMED.value and kinds(got) == ["fingerprint"]
    assert "no catalog" in got.problems[0].message
    code, out, _ = run("verify", "--fingerprint", "0123-4567-89ab-cdef-0123", drive)
    assert code == 1 and "UNCONFIRMED" in out
    assert "give the shipment's catalog with --catalog FILE" in out


# --- 12. modes ---------------------------------------------------------------------------------------------------


def test_quick_reads_no_data(ship: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ReadSpy(monkeypatch)
    report = check(*ship, mode=Mode.QUICK)
    assert report.ok and spy.reads == []
    assert all(d.bytes_checked == 0 and d.chunks_checked == 0 and d.mode == "quick" for d in report.drives)
    code, out, _ = run("verify", "--quick", *ship)
    assert code == 0 and "--quick" in out


def test_quick_catches_missing_and_truncated_segments_and_a_damaged_manifest(ship: list[Path]) -> None:
    os.remove(ship[0] / chunks(ship[0])[0].segment)
    os.truncate(ship[1] / chunks(ship[1])[0].segment, 1000)
    flip(ship[2] / MANIFEST_NAME, 100)
    report = check(*ship[:3], mode=Mode.QUICK)
    assert [kinds(d) for d in report.drives] == [["missing_segment"], ["truncated_segment"], ["manifest"]]
    assert all(d.status == "damaged" and d.bytes_checked == 0 for d in report.drives)
    assert report.drives[2].hurt_paths() == catalog_paths_on(ship[2])
    assert run("verify", "--quick", *ship[:3])[0] == 1


def test_quick_does_not_see_a_flipped_data_byte(ship: list[Path]) -> None:
    drive, chunk = find_chunk(ship, "store")
    flip_inside(drive, chunk)
    assert check_one(drive, mode=Mode.QUICK).ok  # by design: --quick reads no data
    assert not check_one(drive).ok


def test_sample_checks_about_half_the_segments_repeatably(seg_drive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = {r.name: r.size for r in records(seg_drive) if isinstance(r, SegmentRecord)}
    spy = ReadSpy(monkeypatch)
    first = check_one(seg_drive, sample_percent=50, seed=3)
    chosen = spy.segments
    assert first.ok and first.sample_percent == 50
    assert 4 <= len(chosen) <= 6 and chosen < set(sizes)
    assert first.bytes_checked == sum(sizes[s] for s in chosen) == spy.bytes
    spy.reads.clear()
    again = check_one(seg_drive, sample_percent=50, seed=3)
    assert spy.segments == chosen and again.bytes_checked == first.bytes_checked
    others = set()
    for seed in range(4, 9):
        spy.reads.clear()
        check_one(seg_drive, sample_percent=50, seed=seed)
        others.add(frozenset(spy.segments))
    assert len(others) > 1  # the seed does choose

    # What the sample reads it checks; what it leaves out it cannot see.
    skipped = sorted(set(sizes) - chosen)[0]
    flip(seg_drive / skipped, 10)
    assert check_one(seg_drive, sample_percent=50, seed=3).ok
    picked = sorted(chosen)[0]
    flip(seg_drive / picked, 10)
    got = check_one(seg_drive, sample_percent=50, seed=3)
    assert got.status == "damaged" and [c.segment for c in got.damaged_chunks] == [picked]

    code, report = run_json("--sample", "50", "--seed", "3", seg_drive)
    assert code == 1 and report["drives"][0]["sample_percent"] == 50
    code, out, _ = run("verify", "--sample", "50", "--seed", "3", seg_drive)
    assert code == 1 and "50% sample of segments" in out


def test_sample_with_quick_is_refused(seg_drive: Path) -> None:
    code, out, err = run("verify", "--sample", "50", "--quick", seg_drive)
    assert code == 2 and out == "" and "--sample and --quick do not go together" in err
    with pytest.raises(UsageError):
        verify([str(seg_drive)], mode=Mode.QUICK, sample_percent=50)


def test_deep_hashes_whole_files(ship: list[Path]) -> None:
    report = check(*ship, mode=Mode.DEEP)
    assert report.ok
    for drive, got in zip(ship, report.drives, strict=True):
        whole = sum(
            1 for r in records(drive) if isinstance(r, FileRecord) and r.final and r.offset == 0 and r.length > 0
        )
        assert got.files_checked == whole, drive.name
        assert got.bytes_checked == stored_total(drive)
    assert report.drives[-1].files_checked > 40
    code, out, _ = run("verify", "--deep", ship[-1])
    assert code == 0 and f"{report.drives[-1].files_checked} whole files hashed" in out


def test_deep_sees_decompressed_bytes_that_do_not_match(ship: list[Path]) -> None:
    drive, chunk = find_chunk(ship, "zstd")
    forged = "0" * 64

    def edit(raw: dict[str, Any]) -> dict[str, Any]:
        if raw.get("type") == "chunk" and raw["id"] == chunk.id:
            raw["raw_blake3"] = forged
        return raw

    rewrite_manifest(drive, edit)
    assert next(c for c in chunks(drive) if c.id == chunk.id).raw_blake3 == forged

    full = check_one(drive)
    assert full.status == "damaged" and kinds(full) == ["catalog"]  # only the catalog knows the true manifest
    assert "not the one the catalog names" in full.problems[0].message
    assert full.damaged_chunks == [] and full.bytes_checked == stored_total(drive)

    deep = check_one(drive, mode=Mode.DEEP)
    assert "catalog" in kinds(deep)
    assert [c.id for c in deep.damaged_chunks] == [chunk.id]
    assert "decompressed bytes do not match" in deep.damaged_chunks[0].reason
    assert sorted(deep.damaged_chunks[0].paths) == hurt_by(drive, {chunk.id})
    code, report = run_json("--deep", drive)
    assert code == 1 and report["resend"]["chunks"] == [chunk.id]


def test_deep_sees_a_wrong_whole_file_hash(seg_drive: Path) -> None:
    def edit(raw: dict[str, Any]) -> dict[str, Any]:
        if raw.get("type") == "file" and raw.get("path") == "f2.bin":
            raw["blake3"] = "0" * 64
        return raw

    rewrite_manifest(seg_drive, edit)
    got = check_one(seg_drive, mode=Mode.DEEP)
    assert "file_hash" in kinds(got) and got.damaged_chunks == []
    assert [p.paths for p in got.problems if p.kind == "file_hash"] == [["f2.bin"]]
    assert got.files_checked == 10
    assert "file_hash" not in kinds(check_one(seg_drive))  # the default mode decodes nothing


def test_quick_and_deep_together_are_refused(ship: list[Path]) -> None:
    code, out, err = run("verify", "--quick", "--deep", ship[0])
    assert code == 2 and out == "" and "--quick and --deep do not go together" in err


# --- 13. resume, restart, and never writing on the drive ----------------------------------------------------


def test_resume_after_an_interruption(seg_drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "resume-state"
    segment_1 = [c for c in chunks(seg_drive) if c.segment == "segments/s000001.seg"]
    assert len(segment_1) == 2
    with interrupted_after(state, 1) as store:  # segment 1 hashed whole, segment 2 under way
        check(seg_drive, state_dir=store)
    assert len(list(state.iterdir())) == 1

    spy = ReadSpy(monkeypatch)
    got = check_one(seg_drive, state_dir=state)
    assert got.ok and got.resumed
    assert got.bytes_checked == stored_total(seg_drive) and got.chunks_checked == len(chunks(seg_drive))
    assert spy.bytes == stored_total(seg_drive) - sum(c.stored_size for c in segment_1)
    assert "segments/s000001.seg" not in spy.segments
    assert list(state.iterdir()) == []  # a complete run removes its state

    spy.reads.clear()
    again = check_one(seg_drive, state_dir=state)
    assert not again.resumed and spy.bytes == stored_total(seg_drive)


def _two_damaged_segments(seg_drive: Path) -> tuple[ChunkRecord, ChunkRecord]:
    """Damage the first chunk of segments 1 and 3; verify checks those two chunk by chunk after hashing the ten
    segments whole, so an interruption after 9 saves (the 8 intact segments, then segment 1 checked chunk by chunk)
    has saved the damage of segment 1 and not yet that of segment 3."""
    first = chunks(seg_drive)[0]
    third = next(c for c in chunks(seg_drive) if c.segment == "segments/s000003.seg")
    flip_inside(seg_drive, first)
    flip_inside(seg_drive, third)
    return first, third


def test_damage_found_before_an_interruption_is_still_listed(
    seg_drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "resume-state"
    first, third = _two_damaged_segments(seg_drive)
    with interrupted_after(state, 9) as store:  # 8 intact segments and segment 1, not segment 3
        check(seg_drive, state_dir=store)
    spy = ReadSpy(monkeypatch)
    got = check_one(seg_drive, state_dir=state)
    assert got.resumed and spy.segments == {third.segment}  # the damage of segment 1 comes from the saved state
    assert [c.id for c in got.damaged_chunks] == [first.id, third.id]
    assert got.damaged_chunks[0].paths == hurt_by(seg_drive, {first.id}) == ["f0.bin"]
    assert got.hurt_paths() == sorted(hurt_by(seg_drive, {first.id, third.id}))
    assert got.bytes_checked == stored_total(seg_drive)


def test_damage_found_before_an_interruption_keeps_the_drive_damaged(
    seg_drive: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = chunks(seg_drive)[0]
    flip_inside(seg_drive, first)
    with interrupted_after(state_dir, 9) as store:  # the 9 intact segments, the damaged one's chunks not yet
        check(seg_drive, state_dir=store)
    code, report = run_json(seg_drive)
    assert report["drives"][0]["resumed"] is True
    assert report["resend"] == {"chunks": [first.id], "paths": ["f0.bin"]}
    assert report["drives"][0]["status"] == "damaged" and report["ok"] is False
    assert code == 1


def test_restart_starts_over(seg_drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "resume-state"
    with interrupted_after(state, 5) as store:
        check(seg_drive, state_dir=store)
    spy = ReadSpy(monkeypatch)
    got = check_one(seg_drive, state_dir=state, restart=True)
    assert got.ok and not got.resumed
    assert spy.bytes == got.bytes_checked == stored_total(seg_drive)
    assert list(state.iterdir()) == []


def test_resume_and_restart_through_the_cli(seg_drive: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_run(*args: str) -> None:
        # Ctrl-C as the n-th segment read starts, through the drive store's seam (verifier.LocalStore). Segments
        # are hashed ahead on other threads and progress is saved after a segment's frames are walked, so which
        # read comes after the first save depends on the threads: n goes up from 4 until a run is interrupted
        # with its progress saved (a run that finishes leaves no progress, and fails the test).
        for nth in range(4, 41):
            calls: list[int] = []

            def nth_segment(name: str, nth: int = nth, calls: list[int] = calls) -> bool:
                calls.extend([1] if name.endswith(".seg") else [])
                return len(calls) == nth

            with monkeypatch.context() as patch:
                patch.setattr(verifier, "LocalStore", ctrl_c_store(fail_read=nth_segment))
                code, _, err = run("verify", *args, seg_drive)
            assert code == 130 and "interrupted" in err
            if state_dir.is_dir() and list(state_dir.iterdir()):
                break  # (the directory is made at the first save)
        assert len(list(state_dir.iterdir())) == 1

    interrupted_run()
    code, report = run_json(seg_drive)
    assert code == 0 and report["drives"][0]["resumed"] is True
    assert report["drives"][0]["bytes_checked"] == stored_total(seg_drive)
    assert list(state_dir.iterdir()) == []

    interrupted_run("-q")
    code, out, _ = run("verify", seg_drive)
    assert code == 0 and "resumed" in out

    interrupted_run()
    code, report = run_json("--restart", seg_drive)
    assert code == 0 and report["drives"][0]["resumed"] is False
    assert list(state_dir.iterdir()) == []


def test_interrupted_verify_does_not_speak_of_partial_files(seg_drive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(verifier, "LocalStore", ctrl_c_store(fail_read=lambda name: name.endswith(".seg")))
        code, _, err = run("verify", seg_drive)
    assert code == 130
    assert ".partial" not in err and "left unfinished" not in err


def test_deep_resume_keeps_whole_file_problems(
    seg_drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(raw: dict[str, Any]) -> dict[str, Any]:
        if raw.get("type") == "file" and raw.get("path") == "f0.bin":
            raw["blake3"] = "0" * 64
        return raw

    rewrite_manifest(seg_drive, edit)
    state = tmp_path / "resume-state"
    with interrupted_after(state, 2) as store:  # 2 segments checked chunk by chunk, the third under way
        check(seg_drive, mode=Mode.DEEP, state_dir=store)
    got = check_one(seg_drive, mode=Mode.DEEP, state_dir=state)
    assert got.resumed
    assert [p.paths for p in got.problems if p.kind == "file_hash"] == [["f0.bin"]]
    assert got.files_checked == 10


@pytest.mark.parametrize("damage", ["none", "flip", "truncate", "stray"])
@pytest.mark.parametrize("mode", [Mode.FULL, Mode.DEEP, Mode.QUICK])
def test_verify_never_writes_on_the_drive(ship: list[Path], tmp_path: Path, damage: str, mode: Mode) -> None:
    drive = ship[-1]
    first = chunks(drive)[0]
    if damage == "flip":
        flip_inside(drive, first)
    elif damage == "truncate":
        os.truncate(drive / first.segment, 10)
    elif damage == "stray":
        write_file(drive / "segments" / "leftover.seg.partial", b"x")
    before = snapshot(drive)
    check_one(drive, mode=mode, state_dir=tmp_path / "state-lib")
    run("verify", "--json", "--deep" if mode == Mode.DEEP else "--quick" if mode == Mode.QUICK else "-q", drive)
    assert snapshot(drive) == before


# --- 14. exit codes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "args", "code"),
    [
        ("intact", [], 0),
        ("intact", ["--quick"], 0),
        ("intact", ["--deep", "--threads", "1"], 0),
        ("intact", ["-q"], 0),
        ("flip", [], 1),
        ("flip", ["--json"], 1),
        ("unfinished", [], 1),
        ("intact", ["--fingerprint", "0123-4567-89ab-cdef-0123"], 1),
        ("not a drive", [], 2),
        ("intact", ["--quick", "--deep"], 2),
        ("intact", ["--sample", "50", "--quick"], 2),
        ("intact", ["--sample", "0"], 2),
        ("intact", ["--sample", "101"], 2),
        ("intact", ["--fingerprint", "abc"], 2),
        ("intact", ["--threads", "-1"], 2),
    ],
)
def test_exit_codes(ship: list[Path], tmp_path: Path, setup: str, args: list[str], code: int) -> None:
    drive = ship[0]
    if setup == "flip":
        flip_inside(drive, chunks(drive)[0])
    elif setup == "unfinished":
        os.remove(drive / DRIVE_LABEL_NAME)
    elif setup == "not a drive":
        drive = tmp_path / "nothing-here"
    got, out, err = run("verify", *args, drive)
    assert got == code, out + err
    assert "Traceback" not in err


def test_no_drive_given_is_a_usage_error() -> None:
    assert run("verify")[0] == 2
    with pytest.raises(UsageError):
        verify([])


def test_quiet_prints_only_problems(ship: list[Path]) -> None:
    drive, chunk = find_chunk(ship, "store")
    flip_inside(drive, chunk)
    code, out, _ = run("verify", "-q", *ship)
    assert code == 1
    assert drive.name in out and not any(d.name in out for d in ship if d != drive)
    assert f"{len(ship) - 1} of {len(ship)} drives intact" in out


def test_a_drive_of_an_unknown_format_version_is_exit_2(ship: list[Path]) -> None:
    drive = ship[0]
    replace_text(drive / DRIVE_LABEL_NAME, '"version": 1', '"version": 3')
    code, out, _ = run("verify", drive)
    assert code == 2
    assert "this drive is format version 3, written by a newer sneakernet; this one reads version 2: upgrade" in out


def test_an_intact_drive_is_read_once_a_segment_at_a_time(seg_drive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ReadSpy(monkeypatch)
    got = check_one(seg_drive)
    assert got.ok and got.chunks_checked == len(chunks(seg_drive))
    segments = sorted({c.segment for c in chunks(seg_drive)})
    assert spy.reads == [(name, os.path.getsize(seg_drive / name)) for name in segments]


def test_only_a_damaged_segment_is_read_again_chunk_by_chunk(seg_drive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunk = next(c for c in chunks(seg_drive) if c.segment == "segments/s000004.seg")
    flip_inside(seg_drive, chunk)
    spy = ReadSpy(monkeypatch)
    got = check_one(seg_drive)
    assert [c.id for c in got.damaged_chunks] == [chunk.id]
    again = [(segment, size) for segment, size in spy.reads[10:]]
    assert len(spy.reads) == 12 and {segment for segment, _ in again} == {chunk.segment}
    assert got.bytes_checked == stored_total(seg_drive)


@pytest.mark.parametrize("path", [".sneakernet/parts/x.part", ".SneakerNet", ".sneakernet"])
def test_a_path_in_the_reserved_name_is_a_problem(tmp_path: Path, path: str) -> None:
    """What restore refuses, verify reports: a path at or under .sneakernet (restore's own directory in DEST)."""
    (drive,) = write_shipment(tmp_path / "ship", [small_files([(path, b"EVIL\n"), ("notes.txt", b"real\n")])])
    code, out, err = run("verify", drive)
    assert code == 1 and "Traceback" not in err
    assert f"'{path}' lies in .sneakernet, the name restore keeps for its own files" in out
