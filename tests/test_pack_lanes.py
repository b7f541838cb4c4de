"""pack onto several drives at once (lanes, format version 2, docs/format.md 19.3-19.6): every drive read back
alone by hand from the spec (drive.json, manifest, segments, B3SUMS), files followed through ``next_drive``, the
catalog checked record by record and its fingerprint recomputed; failures that stop one lane only."""

from __future__ import annotations

import importlib.util
import itertools
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
import pytest

from conftest import invoke_cli as cli
from conftest import make_edge_tree, source_entries, write_file
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.chunks.compress import decode_chunk
from sneakernet.errors import DestinationError, LaneStopped, OutOfSpace, UsageError
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    CatalogBodyHasher,
    CatalogCheck,
    CatalogEntry,
    CatalogHeader,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    SymlinkRecord,
    catalog_record_from_v2,
    manifest_record_from_v2,
)
from sneakernet.format.checksums import parse_checksums
from sneakernet.format.container import read_records
from sneakernet.io.store import LocalStore
from sneakernet.packer.lane import DriveNumbers
from sneakernet.packer.summary import PackSummary
from test_json import validate
from test_restore import assert_same_tree

SMALL = PackOptions(chunk_size=256 * 1024, segment_size=600 * 1024, reserve=0)
V2 = (1, 2)
FIXTURES = Path(__file__).parent / "fixtures"
#: The golden fixture of a pack onto two lanes (tests/fixtures/make_format_v2_lanes.py), pinned when it was made.
LANES_FIXTURE = FIXTURES / "format-v2-lanes" / "shipment"
LANES_FINGERPRINT = "91098588c1b82a8ad9816f913b72937f5326aa216f350dc71ed462fab4e5eaa8"


@dataclass
class Drive:
    """One drive read alone, by hand: its label, its manifest's records, its chunks' raw bytes by id."""

    path: Path
    label: DriveLabel
    header: ManifestHeader
    records: list[object]
    chunks: dict[int, bytes] = field(default_factory=dict)


def read_drive(path: Path, finished_shipment: bool = True) -> Drive:
    """Read a version 2 data drive as a stranger with format.md would: every hash checked (the catalog's in B3SUMS
    when the shipment was finished)."""
    label = DriveLabel.from_bytes((path / DRIVE_LABEL_NAME).read_bytes(), versions=V2)
    manifest = (path / MANIFEST_NAME).read_bytes()
    assert blake3.blake3(manifest).hexdigest() == label.manifest_blake3
    sums = parse_checksums((path / CHECKSUMS_NAME).read_bytes())
    assert sums.problem is None
    assert {name for name, _ in sums.entries} >= {MANIFEST_NAME, DRIVE_LABEL_NAME}
    assert (CATALOG_NAME in {name for name, _ in sums.entries}) == finished_shipment
    for name, digest in sums.entries:
        assert blake3.blake3((path / name).read_bytes()).hexdigest() == digest, (path, name)
    with open(path / MANIFEST_NAME, "rb") as handle:
        raw = list(read_records(handle, "manifest"))
    assert raw[0] is not None
    header = ManifestHeader.from_json(raw[0], versions=V2)
    records = [manifest_record_from_v2(r) for r in raw[1:] if r is not None]
    assert isinstance(records[-1], EndRecord) and records[-1].records == len(raw)
    drive = Drive(path, label, header, records[:-1])
    ids = []
    for record in drive.records:
        if isinstance(record, ChunkRecord):
            ids.append(record.id)
            with open(path / record.segment, "rb") as segment:
                segment.seek(record.offset)
                stored = segment.read(record.stored_size)
            assert blake3.blake3(stored).hexdigest() == record.stored_blake3
            data = decode_chunk(stored, record.raw_size)
            assert blake3.blake3(data).hexdigest() == record.raw_blake3
            drive.chunks[record.id] = data
    assert ids == list(range(len(ids))), "chunk ids count from 0 on every drive"
    return drive


def piece_bytes(drive: Drive, piece: FileRecord) -> bytes:
    out, chunk, skip, left = [], piece.chunk, piece.chunk_offset, piece.length
    while left:
        data = drive.chunks[chunk][skip : skip + left]  # a piece's chunks are on its own drive
        out.append(data)
        left -= len(data)
        chunk, skip = chunk + 1, 0
    return b"".join(out)


@dataclass
class Shipment:
    drives: dict[int, Drive]
    files: dict[bytes, bytes]
    kinds: dict[bytes, str]
    links: dict[bytes, bytes]
    entries: list[CatalogEntry]
    header: CatalogHeader


def read_shipment(paths: list[Path]) -> Shipment:
    """Every drive alone, then the shipment: files followed from their first piece through ``next_drive``."""
    drives = {d.label.drive: d for d in map(read_drive, paths)}
    assert sorted(drives) == list(range(1, len(drives) + 1))
    for number, drive in drives.items():
        assert drive.label.version == drive.header.version == 2
        assert (drive.header.drive, drive.header.lane, drive.header.lane_seq) == (
            number, drive.label.lane, drive.label.lane_seq,
        )  # fmt: skip
    lanes: dict[int, list[int]] = {}
    for number in sorted(drives):
        lanes.setdefault(drives[number].label.lane or 0, []).append(number)
    assert sorted(lanes) == list(range(1, len(lanes) + 1))
    for lane, numbers in lanes.items():
        assert numbers[0] == lane, "a lane's first drive has the lane's number"
        assert [drives[n].label.lane_seq for n in numbers] == list(range(1, len(numbers) + 1))
    successor = {a: b for numbers in lanes.values() for a, b in itertools.pairwise(numbers)}
    files: dict[bytes, bytes] = {}
    kinds: dict[bytes, str] = {}
    links: dict[bytes, bytes] = {}
    first_pieces: dict[bytes, tuple[int, FileRecord]] = {}
    pieces_by_drive: dict[tuple[int, bytes], FileRecord] = {}
    for number, drive in drives.items():
        for record in drive.records:
            if isinstance(record, FileRecord):
                key = (number, record.path)
                assert key not in pieces_by_drive
                pieces_by_drive[key] = record
                if record.final:
                    assert record.next_drive is None
                else:
                    assert record.next_drive == successor.get(number), "next_drive is the lane's next drive"
                if record.offset == 0:
                    assert record.path not in first_pieces, record.path
                    first_pieces[record.path] = (number, record)
            elif isinstance(record, DirRecord | SymlinkRecord):
                assert record.path not in kinds
                kinds[record.path] = "dir" if isinstance(record, DirRecord) else "symlink"
            elif isinstance(record, HardlinkRecord):
                links[record.path] = record.target
    for path, (number, piece) in first_pieces.items():
        data = []
        while True:
            assert piece.offset == sum(map(len, data))
            data.append(piece_bytes(drives[number], piece))
            if piece.final:
                break
            assert piece.next_drive is not None
            number = piece.next_drive
            piece = pieces_by_drive.pop((number, path))
        whole = b"".join(data)
        assert piece.size == len(whole) and piece.blake3 == blake3.blake3(whole).hexdigest()
        files[path] = whole
        kinds[path] = "file"
    assert all(r.offset == 0 for r in pieces_by_drive.values()), "every piece is on a chain"
    header, entries = read_catalogs(drives)
    return Shipment(drives, files, kinds, links, entries, header)


def read_catalogs(drives: dict[int, Drive]) -> tuple[CatalogHeader, list[CatalogEntry]]:
    """The catalog, byte-identical on every drive: its records in order (format.lanes.CatalogCheck), its
    fingerprint the BLAKE3 of its body (19.6)."""
    copies = {(d.path / CATALOG_NAME).read_bytes() for d in drives.values()}
    assert len(copies) == 1
    path = next(iter(drives.values())).path / CATALOG_NAME
    check = CatalogCheck()
    hasher = CatalogBodyHasher()
    entries: list[CatalogEntry] = []
    with open(path, "rb") as handle:
        raw = list(read_records(handle, "catalog"))
    assert raw[0] is not None
    header = CatalogHeader.from_json(raw[0], versions=V2)
    problems = []
    for record in raw[1:]:
        assert record is not None
        hasher.update(_line(record))
        parsed = catalog_record_from_v2(record)
        problems += check.add(parsed)
        if isinstance(parsed, CatalogEntry):
            entries.append(parsed)
    problems += check.finish()
    assert problems == []
    assert hasher.hexdigest() == header.fingerprint
    assert check.summary is not None and check.summary.drives == len(drives)
    for drive in drives.values():
        finals = [
            r.path for r in drive.records
            if isinstance(r, DirRecord | SymlinkRecord | HardlinkRecord) or (isinstance(r, FileRecord) and r.final)
        ]  # fmt: skip
        assert [e.path for e in entries if e.drive == drive.label.drive] == finals
    return header, entries


def _line(record: dict[str, object]) -> bytes:
    from sneakernet.format.container import encode_record

    return encode_record(record)


def test_two_lanes_write_every_byte_once_each_drive_alone(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src", big_size=2_500_000)
    rng = random.Random(3)
    for i in range(120):
        write_file(src / "zz" / f"small{i:03d}.bin", rng.randbytes(rng.randint(0, 9000)))
    write_file(src / "aa" / "first-name.txt", b"one inode, two names in two lanes\n")
    os.link(src / "aa" / "first-name.txt", src / "zz" / "hardlink-across-lanes")
    summary = pack(src, out=str(tmp_path / "out"), drive_size=1_200_000, options=SMALL, at_once=2)
    assert summary.lanes == 2
    paths = sorted((tmp_path / "out").iterdir())
    assert len(paths) == len(summary.drives) >= 4
    shipment = read_shipment(paths)
    assert {d.label.lane for d in shipment.drives.values()} == {1, 2}
    expected = source_entries(src)
    hardlinked = {p for p in expected if p in shipment.links}
    assert set(shipment.kinds) | hardlinked == set(expected)
    for path, entry in expected.items():
        if path in shipment.links:
            assert expected[shipment.links[path]].data == entry.data
        elif entry.kind == "file":
            assert shipment.files[path] == entry.data, path
        else:
            assert shipment.kinds[path] == entry.kind, path
    # The hard link's target lies in lane 1, the link in lane 2 (its first name in walk order is the target).
    lane_of = {e.path: shipment.drives[e.drive].label.lane for e in shipment.entries}
    assert shipment.links[b"zz/hardlink-across-lanes"] == b"aa/first-name.txt"
    assert (lane_of[b"aa/first-name.txt"], lane_of[b"zz/hardlink-across-lanes"]) == (1, 2)
    # A file spans drives: its entry says how many, its chain says which.
    big = next(e for e in shipment.entries if e.path == b"arrays/big.npy")
    assert big.pieces is not None and big.pieces >= 2 and big.first_drive != big.drive
    assert summary.fingerprint == shipment.header.fingerprint
    assert summary.files == sum(1 for kind in shipment.kinds.values() if kind == "file")


def test_given_drives_are_numbered_in_the_order_given(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(5)
    for i in range(12):
        write_file(src / f"f{i:02d}.bin", rng.randbytes(300_000))
    mounts = [tmp_path / f"mnt{i}" for i in range(7)]
    for mount in mounts:
        mount.mkdir()
    summary = pack(src, drives=[str(m) for m in mounts], drive_size=1_800_000, options=SMALL, at_once=2)
    used = [m for m in mounts if (m / DRIVE_LABEL_NAME).exists()]
    assert used == mounts[: len(used)] and len(used) >= 4, "the drives used are the first ones given"
    shipment = read_shipment(used)
    for number, drive in shipment.drives.items():
        assert drive.path == mounts[number - 1], "drive n is on the n-th drive given"
    assert [d["drive"] for d in summary.drives] == sorted(shipment.drives)
    assert {d.label.lane for d in shipment.drives.values()} == {1, 2}
    assert sorted(shipment.files) == sorted(os.fsencode(p.name) for p in src.iterdir())


def test_a_walk_too_small_for_two_lanes_stays_version_1(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "only.bin", b"x" * 1000)
    summary = pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=2_000_000, options=SMALL, at_once=2)
    assert summary.lanes == 1
    label = DriveLabel.from_bytes((tmp_path / "out" / "drive-0001" / DRIVE_LABEL_NAME).read_bytes())
    assert label.version == 1


def test_lanes_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a", b"a")
    (tmp_path / "mnt").mkdir()
    with pytest.raises(UsageError, match="at least 1"):
        pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=10**6, at_once=0)
    with pytest.raises(UsageError, match="--swap"):
        pack(tmp_path / "src", drives=[str(tmp_path / "mnt")], at_once=2, next_drive=lambda n, p: None)
    assert not (tmp_path / "out").exists()


def _take_numbers(counter: object, out: object) -> None:
    numbers = DriveNumbers(counter)
    for _ in range(200):
        out.put(numbers.take())  # type: ignore[attr-defined]


def test_many_lanes_keep_fewer_chunks_in_flight_each() -> None:
    from sneakernet.packer.coordinator import FULL_PIPELINE_LANES, lane_in_flight

    assert lane_in_flight(FULL_PIPELINE_LANES, 1) is None  # a pack alone's pipeline
    assert lane_in_flight(FULL_PIPELINE_LANES + 1, 1) == 2
    assert lane_in_flight(10, 2) == 3


def test_drive_numbers_taken_by_several_processes_are_unique() -> None:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 3)
    out = context.Queue()
    workers = [context.Process(target=_take_numbers, args=(counter, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    taken = [out.get(timeout=60) for _ in range(600)]
    for worker in workers:
        worker.join()
    assert sorted(taken) == list(range(4, 604))


def test_lanes_that_leave_a_drive_number_unused_stop_in_one_line() -> None:
    # A resumed lane that no longer needs a number it was given (the interrupted pack's drives begun but not kept
    # are given out again first) left 1, 3: merge_lanes raised an AssertionError, a traceback from the command line.
    from sneakernet.packer.coordinator import merge_lanes
    from sneakernet.packer.lane import LaneDrive, LaneResult

    shipment = FIXTURES / "format-v2-lanes" / "shipment"

    def finished(number: int) -> LaneDrive:
        label = json.loads((shipment / f"drive-{number:04d}" / DRIVE_LABEL_NAME).read_text())
        return LaneDrive(label, str(shipment / f"drive-{number:04d}"), [], None, (0, 0))

    with pytest.raises(LaneStopped, match=r"left drive number 2 unused.*no catalog was written"):
        merge_lanes([LaneResult(1, [finished(1)]), LaneResult(2, [finished(3)])])
    whole = merge_lanes([LaneResult(1, [finished(1), finished(3)]), LaneResult(2, [finished(2)])])
    assert [label.drive for label in whole.labels] == [1, 2, 3]


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return (
        os.geteuid() == 0
        and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path]).returncode == 0
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root)")
def test_a_drive_filling_early_stops_only_its_lane(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(9)
    for i in range(8):
        write_file(src / f"f{i}.bin", rng.randbytes(400_000))
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    assert _mount_tmpfs(small, "1500k")  # lane 2's half of the data (1.6 MB) does not fit on it
    try:
        with pytest.raises(OutOfSpace) as caught:
            pack(src, drives=[str(big), str(small)], options=SMALL, at_once=2, assume_ratio=0.2)
        assert "lane 2 needs another drive" in str(caught.value) and "lanes that finished: 1" in str(caught.value)
        # Both drives are finished, whole and checkable alone: lane 1's with all its entries, lane 2's full; no
        # catalog anywhere (the shipment is not complete).
        lane_one, lane_two = read_drive(big, finished_shipment=False), read_drive(small, finished_shipment=False)
        assert (lane_one.label.lane, lane_two.label.lane) == (1, 2)
        assert not (big / CATALOG_NAME).exists() and not (small / CATALOG_NAME).exists()
        finals = {r.path for r in lane_one.records if isinstance(r, FileRecord) and r.final}
        assert finals == {b"f0.bin", b"f1.bin", b"f2.bin", b"f3.bin"}
    finally:
        subprocess.run(["umount", small], check=False)


def load_lanes_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_format_v2_lanes", FIXTURES / "make_format_v2_lanes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_format_v2_lanes", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_golden_lanes_fixture_reads_as_its_source() -> None:
    """The committed shipment of two lanes, read by hand from docs/format.md 19: lane 1's large file chained over
    drives 1, 3 and 4 (numbers given as drives opened), lane 2 starting inside lane 1's directory and holding a
    hard link to a file of lane 1."""
    gen = load_lanes_generator()
    shipment = read_shipment(sorted(LANES_FIXTURE.iterdir()))
    assert shipment.header.fingerprint == LANES_FINGERPRINT
    lanes = {n: (d.label.lane, d.label.lane_seq) for n, d in shipment.drives.items()}
    assert lanes == {1: (1, 1), 2: (2, 1), 3: (1, 2), 4: (1, 3)}
    for entry in gen.source_entries():
        if entry.kind == "file":
            assert shipment.files[entry.path] == entry.data, entry.path
        elif entry.kind == "hardlink":
            assert shipment.links[entry.path] == entry.target
        else:
            assert shipment.kinds[entry.path] == entry.kind, entry.path
    assert len(shipment.kinds) + len(shipment.links) == len(gen.source_entries())
    by_path = {e.path: e for e in shipment.entries}
    big = by_path[b"a/big.bin"]
    assert (big.first_drive, big.drive, big.pieces) == (1, 4, 3)
    assert by_path[b"a"].drive == 1 and by_path[b"a/in-lane-2.txt"].drive == 2
    assert by_path[b"b/same-as-aaa.txt"].drive == 2 and by_path[b"a/aaa.txt"].drive == 1


def test_golden_lanes_fixture_verifies_and_restores(tmp_path: Path) -> None:
    """sneakernet's own commands on the committed two-lane shipment: every drive verifies, and restored drive by
    drive (lane 2's first, so the hard link's target comes later) it gives the generator's tree."""
    gen = load_lanes_generator()
    drives = sorted(LANES_FIXTURE.iterdir())
    code, out, err = cli("verify", *drives)
    assert code == 0, (out, err)
    dest = tmp_path / "dest"
    for drive in [drives[1], drives[3], drives[0], drives[2]]:
        code, out, err = cli("restore", drive, "--into", dest)
        assert code in (0, 3), (drive, out, err)
    assert code == 0, (out, err)
    for entry in gen.source_entries():
        path = os.path.join(os.fsencode(dest), entry.path)
        if entry.kind == "file":
            assert Path(os.fsdecode(path)).read_bytes() == entry.data, entry.path
        elif entry.kind == "hardlink":
            assert os.stat(path).st_ino == os.stat(os.path.join(os.fsencode(dest), entry.target)).st_ino
        elif entry.kind == "symlink":
            assert os.readlink(path) == entry.target
        else:
            assert os.path.isdir(path)


class Recorded:
    """A progress that notes what the lanes' processes report through the coordinator."""

    def __init__(self) -> None:
        self.total = self.done = 0
        self.drives: list[str] = []
        self.closed = False

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, done_bytes: int) -> None:
        self.done += done_bytes

    def drive(self, label: str) -> None:
        self.drives.append(label)

    def close(self) -> None:
        self.closed = True


def _pack_reported(tmp_path: Path, progress: Recorded, seed: int) -> PackSummary:
    """Six files of 500 KB packed at once onto drives of 1.4 MB (several drives a lane), told to ``progress``."""
    rng = random.Random(seed)
    for i in range(6):
        write_file(tmp_path / "src" / f"f{i}.bin", rng.randbytes(500_000))
    return pack(
        tmp_path / "src", out=str(tmp_path / "out"), drive_size=1_400_000, options=SMALL, at_once=2,
        progress=progress,
    )  # fmt: skip


def test_the_lanes_progress_reaches_the_coordinator(tmp_path: Path) -> None:
    progress = Recorded()
    summary = _pack_reported(tmp_path, progress, 4)
    assert progress.total == progress.done == 3_000_000 and progress.closed
    assert sorted(progress.drives) == sorted(d["label"] for d in summary.drives)
    assert {"drive-0001", "drive-0002"} <= set(progress.drives)


class DrivesRecorded(Recorded):
    """A progress that shows drives one by one (:class:`sneakernet.progress.DrivesProgress`): each drive's bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.per_drive: dict[str, int] = {}
        self.open: set[str] = set()

    def open_drive(self, label: str, total_bytes: int) -> Any:
        assert label not in self.per_drive, f"{label} opened twice"
        assert total_bytes >= 0
        self.per_drive[label] = 0
        self.open.add(label)
        recorded = self

        class Drive:
            def advance(self, done_bytes: int) -> None:
                recorded.per_drive[label] += done_bytes
                recorded.done += done_bytes

            def close(self) -> None:
                recorded.open.discard(label)

        return Drive()


def test_each_drive_written_at_once_has_its_own_progress(tmp_path: Path) -> None:
    progress = DrivesRecorded()
    summary = _pack_reported(tmp_path, progress, 5)
    assert progress.total == progress.done == 3_000_000 and not progress.open
    # Every drive had its line; bytes are reported as they are read, ahead of the writing, so a drive's line may
    # count a little of the next drive's data, but the lines of a lane's drives sum to the lane's data.
    assert sorted(progress.per_drive) == sorted(d["label"] for d in summary.drives)
    for lane in (1, 2):
        drives = [d for d in summary.drives if d["lane"] == lane]
        assert sum(progress.per_drive[d["label"]] for d in drives) == sum(d["raw_bytes"] for d in drives)
    for drive in summary.drives:
        assert drive["seconds"] > 0
        assert abs(drive["stored_bytes"] / drive["bytes_per_second"] - drive["seconds"]) <= 0.001  # seconds rounded


LIBRARY_SCRIPT = """
import sys
import threading
import time

from sneakernet import PackOptions, pack
from sneakernet.packer.summary import PackSummary
from sneakernet.packer.coordinator import lane_context

if __name__ == "__main__":  # lanes started from a fork server import this module again (docs/pack.md)
    if sys.argv[3] == "thread":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    print(lane_context().get_start_method())
    summary = pack(sys.argv[1], out=sys.argv[2], drive_size=3_000_000, options=PackOptions(chunk_size=64 * 1024,
                   reserve=0), at_once=2)
    print(summary.lanes)
"""


@pytest.mark.parametrize("threads", ["none", "thread"])
def test_a_script_packs_at_once_whether_lanes_fork_or_come_from_a_fork_server(tmp_path: Path, threads: str) -> None:
    """A single-threaded caller's lanes are forked from it; a caller running another thread gets them from a fork
    server, which imports the caller's script again (under its guard): both pack the same tree, restored
    identical."""
    rng = random.Random(13)
    for i in range(12):
        write_file(tmp_path / "src" / f"f{i:02d}.bin", rng.randbytes(200_000))
    script = tmp_path / "packs.py"
    script.write_text(LIBRARY_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "src"), str(tmp_path / "out"), threads],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    method, lanes = done.stdout.split()
    assert method == ("fork" if threads == "none" else "forkserver") and lanes == "2"
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *sorted((tmp_path / "out").iterdir()), "--into", dest)
    assert code == 0, (out, err)
    assert_same_tree(tmp_path / "src", dest)


def test_packed_at_once_verifies_and_restores_identically_in_any_order(tmp_path: Path) -> None:
    """The command line end to end: pack --at-once 2 onto given drives, verify each drive alone and all together,
    restore them one by one in reverse order into one destination: the source's tree, hard links and all."""
    src = make_edge_tree(tmp_path / "src", big_size=2_000_000)
    write_file(src / "aa" / "first-name.txt", b"linked from the other lane\n")
    os.link(src / "aa" / "first-name.txt", src / "zz-link")
    mounts = [tmp_path / f"mnt{i}" for i in range(1, 7)]
    for mount in mounts:
        mount.mkdir()
    drive_args = [arg for m in mounts for arg in ("--drive", str(m))]
    code, out, err = cli("pack", src, *drive_args, "--drive-size", "2MB", "--chunk-size", "256KiB",
                         "--reserve", "0", "--at-once", "2", "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    validate(summary, "pack-summary.schema.json")
    assert summary["lanes"] == 2 and {d["lane"] for d in summary["drives"]} == {1, 2}
    assert all(d["seconds"] > 0 and d["bytes_per_second"] > 0 for d in summary["drives"])
    used = [Path(d["path"]) for d in summary["drives"]]
    assert used == mounts[: len(used)]
    for drive in used:
        code, out, err = cli("verify", drive)
        assert code == 0, (drive, out, err)
    code, out, err = cli("verify", *used, "--fingerprint", summary["short_fingerprint"])
    assert code == 0, (out, err)
    dest = tmp_path / "dest"
    for drive in reversed(used):
        code, out, err = cli("restore", drive, "--into", dest)
        assert code in (0, 3), (drive, out, err)  # 3: drives still missing, until the last
    assert code == 0
    assert_same_tree(src, dest)


KILLED_PACK = """
import sys
import time
from sneakernet import PackOptions, pack
from sneakernet.packer.summary import PackSummary
pack(sys.argv[1], out=sys.argv[2], drive_size=3_000_000, options=PackOptions(chunk_size=64 * 1024, reserve=0),
     at_once=2)
"""


def _sizes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_a_pack_killed_with_sigkill_leaves_no_lane_writing(tmp_path: Path) -> None:
    """SIGKILL of the coordinating process ends its lanes too (they die with it), mid-drive: what they were
    writing is left unfinished (no drive.json on it), and nothing changes on the drives after the kill."""
    rng = random.Random(11)
    for i in range(60):
        write_file(tmp_path / "src" / f"f{i:02d}.bin", rng.randbytes(400_000))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", KILLED_PACK, str(tmp_path / "src"), str(out)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("drive-*/segments/*"))) < 2:
        time.sleep(0.05)
    process.kill()
    process.wait()
    time.sleep(1.0)  # a lane still running would write on
    before = _sizes(out)
    time.sleep(1.5)
    assert _sizes(out) == before, "a lane went on writing after the pack was killed"
    drives = sorted(out.iterdir())
    assert drives and not all((d / DRIVE_LABEL_NAME).exists() for d in drives)
    assert not any((d / CATALOG_NAME).exists() for d in drives)


@dataclass(frozen=True)
class FailingDrive:
    """Opens every drive as a local directory but ``path``, whose ``fail_write``-th write raises EIO (a store
    a lane's process can unpickle: this module's class, by name)."""

    path: str
    fail_write: int

    def __call__(self, path: str) -> LocalStore:
        return FaultyStore(path, fail_write=self.fail_write) if path == self.path else LocalStore(path)


def test_an_io_error_on_one_drive_stops_only_its_lane(tmp_path: Path) -> None:
    rng = random.Random(12)
    for i in range(8):
        write_file(tmp_path / "src" / f"f{i}.bin", rng.randbytes(300_000))
    mounts = [tmp_path / f"mnt{i}" for i in range(1, 4)]
    for mount in mounts:
        mount.mkdir()
    failing = FailingDrive(str(mounts[1]), fail_write=3)  # drive 2: lane 2's first drive
    with pytest.raises(DestinationError) as caught:
        pack(tmp_path / "src", drives=[str(m) for m in mounts], drive_size=3_000_000, options=SMALL, at_once=2,
             open_store=failing)  # fmt: skip
    message = str(caught.value)
    assert "drive-0002" in message and "lanes stopped: 2; lanes that finished: 1" in message
    lane_one = read_drive(mounts[0], finished_shipment=False)
    assert lane_one.label.lane == 1
    assert {r.path for r in lane_one.records if isinstance(r, FileRecord) and r.final} == {
        f"f{i}.bin".encode() for i in range(4)
    }
    assert not (mounts[1] / DRIVE_LABEL_NAME).exists(), "the failed drive is left unfinished"
    assert not any((m / CATALOG_NAME).exists() for m in mounts)
