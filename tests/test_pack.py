"""End-to-end tests of pack: a generated tree with every edge case, read back byte for byte."""

from __future__ import annotations

import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import blake3
import pytest

from conftest import disk_usage, drive_dirs, make_edge_tree, source_entries, unpack, write_file
from conftest import invoke_cli as cli
from fakesource import FaultySource
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.chunks.compress import stored_size_bound
from sneakernet.drive import DriveReader
from sneakernet.errors import DestinationError, FormatError, OutOfSpace, SourceError, UsageError
from sneakernet.format import (
    CATALOG_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    ChunkRecord,
    FileRecord,
    HardlinkRecord,
    fingerprint,
)
from sneakernet.format.container import read_records
from sneakernet.io.source import Source
from sneakernet.space.budget import DriveBudget, catalog_bound, catalog_entry_bound

DRIVE = 1_500_000
SMALL = PackOptions(chunk_size=256 * 1024, reserve=0)


def pack_tree(src: Path | Source, out: Path, drive_size: int = DRIVE, options: PackOptions = SMALL):
    return pack(src, out=str(out), drive_size=drive_size, options=options)


def test_round_trip_every_edge_case(edge_tree: Path, tmp_path: Path) -> None:
    summary = pack_tree(edge_tree, tmp_path / "out")
    drives = drive_dirs(tmp_path / "out")
    assert [d.name for d in drives] == [f"drive-{i:04d}" for i in range(1, len(drives) + 1)]
    assert len(drives) >= 3 and len(summary.drives) == len(drives)
    got = unpack(drives)
    expected = source_entries(edge_tree)
    assert set(got.entries) == set(expected)
    for path, entry in expected.items():
        assert got.entries[path].kind == entry.kind, path
        assert got.entries[path].data == entry.data, path
        if entry.kind != "symlink":
            assert got.entries[path].mode == entry.mode, path
        if entry.kind == "file":
            assert got.entries[path].mtime_ns == entry.mtime_ns, path
    # Walk order is by name bytes: the first name met is stored, the later one links to it.
    assert got.hardlinks == {b"text/doc001.jsonl": b"hardlink-to-doc001"}
    assert summary.hardlinks == 1 and summary.symlinks == 4
    assert summary.files == sum(1 for e in expected.values() if e.kind == "file") - 1
    assert not got.changed and not got.skipped and summary.changed_count == 0


def test_big_file_spans_drives_and_no_drive_exceeds_its_size(edge_tree: Path, tmp_path: Path) -> None:
    pack_tree(edge_tree, tmp_path / "out")
    drives = drive_dirs(tmp_path / "out")
    holders = [n for n, paths in unpack(drives).drive_paths.items() if b"arrays/big.npy" in paths]
    assert len(holders) >= 2 and holders == list(range(holders[0], holders[-1] + 1))
    for drive in drives:
        assert disk_usage(drive) <= DRIVE, drive.name


def test_groups_small_files_into_few_chunks(tmp_path: Path) -> None:
    for i in range(2000):
        write_file(tmp_path / "src" / f"d{i % 10}" / f"f{i:05d}.txt", f"record {i}\n".encode() * 20)
    summary = pack_tree(tmp_path / "src", tmp_path / "out", drive_size=10**9, options=PackOptions(reserve=0))
    assert summary.files == 2000
    # 2000 files of about 220 bytes fit in one 4 MiB chunk.
    assert summary.chunks == 1
    assert summary.stored_bytes < summary.raw_bytes / 5


def test_incompressible_data_is_stored_and_counted(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "noise.bin", os.urandom(1_000_000))
    write_file(tmp_path / "src" / "text.txt", b"compressible " * 50_000)
    summary = pack_tree(tmp_path / "src", tmp_path / "out", drive_size=10**9)
    methods = {}
    for record in DriveReader(str(tmp_path / "out" / "drive-0001")).records():
        if isinstance(record, ChunkRecord):
            methods[record.id] = record.method
    assert set(methods.values()) == {"zstd", "store"}
    assert summary.stored_raw_bytes == 1_000_000


def test_deterministic_chunks_and_drive_assignment(edge_tree: Path, tmp_path: Path) -> None:
    def layout(out: Path) -> list[list[object]]:
        result = []
        for drive in drive_dirs(out):
            records = [r for r in DriveReader(str(drive)).records() if isinstance(r, ChunkRecord | FileRecord)]
            result.append(records)
        return result

    pack_tree(edge_tree, tmp_path / "a")
    pack_tree(edge_tree, tmp_path / "b")
    assert layout(tmp_path / "a") == layout(tmp_path / "b")


def test_fingerprint_and_catalog_on_every_drive(edge_tree: Path, tmp_path: Path) -> None:
    summary = pack_tree(edge_tree, tmp_path / "out")
    drives = drive_dirs(tmp_path / "out")
    labels = [DriveReader(str(d)).label for d in drives]
    assert summary.fingerprint == fingerprint(label.manifest_blake3 for label in labels)
    assert len(summary.short_fingerprint) == 24
    catalogs = {(d / CATALOG_NAME).read_bytes() for d in drives}
    assert len(catalogs) == 1
    with open(drives[0] / CATALOG_NAME, "rb") as handle:
        records = list(read_records(handle, "catalog"))
    assert records[0]["fingerprint"] == summary.fingerprint and records[0]["drives"] == len(drives)
    big = next(r for r in records if r.get("path") == "arrays/big.npy")
    assert big["first_drive"] < big["last_drive"]
    assert records[-1] == {"type": "end", "records": len(records)}


@pytest.mark.skipif(shutil.which("b3sum") is None, reason="b3sum is not installed (apt-get install b3sum)")
def test_b3sum_check_passes_on_every_drive(edge_tree: Path, tmp_path: Path) -> None:
    pack_tree(edge_tree, tmp_path / "out")
    for drive in drive_dirs(tmp_path / "out"):
        result = subprocess.run(["b3sum", "--check", "B3SUMS"], cwd=drive, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        checked = {line.split(":")[0] for line in result.stdout.splitlines()}
        assert {MANIFEST_NAME, DRIVE_LABEL_NAME, CATALOG_NAME, "segments/s000001.seg"} <= checked


def test_segments_roll_at_segment_size(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "noise.bin", os.urandom(700_000))
    options = PackOptions(chunk_size=64 * 1024, segment_size=200_000, reserve=0)
    pack_tree(tmp_path / "src", tmp_path / "out", drive_size=10**8, options=options)
    segments = sorted((tmp_path / "out" / "drive-0001" / "segments").iterdir())
    assert len(segments) == 4
    assert all(s.stat().st_size <= 200_000 for s in segments)
    assert (
        unpack(drive_dirs(tmp_path / "out")).entries[b"noise.bin"].data == (tmp_path / "src" / "noise.bin").read_bytes()
    )


def test_excludes(edge_tree: Path, tmp_path: Path) -> None:
    options = PackOptions(chunk_size=256 * 1024, reserve=0, excludes=("*.png", "text/doc00?.jsonl", "empty-dir/"))
    summary = pack_tree(edge_tree, tmp_path / "out", options=options)
    paths = set(unpack(drive_dirs(tmp_path / "out")).entries)
    assert b"images/noise.png" not in paths and b"text/doc001.jsonl" not in paths and b"text/doc010.jsonl" in paths
    assert b"empty-dir" not in paths and b"empty-dir/nested-empty" not in paths
    assert summary.excluded_entries == 1 + 10 + 1
    assert summary.excluded_bytes >= 200_000


def test_special_files_are_skipped_with_their_name(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a.txt", b"a")
    os.mkfifo(tmp_path / "src" / "pipe")
    summary = pack_tree(tmp_path / "src", tmp_path / "out")
    assert [s["path"] for s in summary.skipped] == ["pipe"]
    got = unpack(drive_dirs(tmp_path / "out"))
    assert set(got.skipped) == {b"pipe"} and b"a.txt" in got.entries


@pytest.fixture
def unreadable_tree(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root reads every file; unreadable files cannot be made")
    write_file(tmp_path / "src" / "ok.txt", b"fine")
    write_file(tmp_path / "src" / "secret.txt", b"no", mode=0o000)
    return tmp_path / "src"


def test_unreadable_files_fail_before_writing(unreadable_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"secret\.txt.*--skip-unreadable"):
        pack_tree(unreadable_tree, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_skip_unreadable_records_them(unreadable_tree: Path, tmp_path: Path) -> None:
    options = PackOptions(chunk_size=256 * 1024, reserve=0, skip_unreadable=True)
    summary = pack_tree(unreadable_tree, tmp_path / "out", options=options)
    assert summary.skipped_count == 1
    assert b"secret.txt" in unpack(drive_dirs(tmp_path / "out")).skipped


def test_unreadable_file_found_while_reading_is_refused(tmp_path: Path) -> None:
    """The same refusal when a file becomes unreadable after the scan (works as root too)."""
    write_file(tmp_path / "src" / "a.txt", b"a")
    source = FaultySource(tmp_path / "src", refuse=PermissionError(13, "Permission denied"))
    with pytest.raises(SourceError, match=r"cannot read a\.txt"):
        pack_tree(source, tmp_path / "out")
    assert not (tmp_path / "out" / "drive-0001" / DRIVE_LABEL_NAME).exists()


def test_file_that_changes_while_read_is_reported_and_consistent(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "growing.log", b"x" * 1000)
    write_file(tmp_path / "src" / "stable.txt", b"stable")

    def append(path: bytes, data: bytes) -> None:
        with open(tmp_path / "src" / "growing.log", "ab") as handle:
            handle.write(b"y" * 10)

    summary = pack_tree(FaultySource(tmp_path / "src", after_read=append), tmp_path / "out")
    # stable.txt is read after growing.log and did not change itself.
    assert summary.changed_count == 1 and summary.changed == ["growing.log"]
    got = unpack(drive_dirs(tmp_path / "out"))  # every stored hash matches the stored bytes
    assert got.changed == {b"growing.log"}
    assert got.entries[b"growing.log"].data == b"x" * 1000


def test_file_that_shrinks_while_read(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "big.bin", os.urandom(1_000_000))
    calls = []

    def truncate_after_first(path: bytes, size: int) -> None:
        calls.append(size)
        if len(calls) == 2:
            os.truncate(tmp_path / "src" / "big.bin", 300_000)

    summary = pack_tree(FaultySource(tmp_path / "src", before_read=truncate_after_first), tmp_path / "out", 10**8)
    assert summary.changed == ["big.bin"]
    got = unpack(drive_dirs(tmp_path / "out"))
    assert len(got.entries[b"big.bin"].data) == 300_000


def test_empty_source_gives_one_finished_drive(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    summary = pack_tree(tmp_path / "src", tmp_path / "out")
    assert [d["label"] for d in summary.drives] == ["drive-0001"]
    assert unpack(drive_dirs(tmp_path / "out")).entries == {}


def test_pack_onto_mounted_drives(edge_tree: Path, tmp_path: Path) -> None:
    mounts = [tmp_path / f"usb{i}" for i in range(6)]
    for mount in mounts:
        mount.mkdir()
        (mount / "lost+found").mkdir()
    summary = pack(edge_tree, drives=[str(m) for m in mounts], drive_size=DRIVE, options=SMALL)
    used = [Path(d["path"]) for d in summary.drives]
    assert used == mounts[: len(used)] and len(used) >= 3
    assert unpack(used).entries[b"arrays/big.npy"].data == (edge_tree / "arrays" / "big.npy").read_bytes()


# --- refusals before anything is written ---------------------------------------------------------------------


def test_refuses_missing_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        pack_tree(tmp_path / "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_file_as_source(tmp_path: Path) -> None:
    write_file(tmp_path / "f", b"x")
    with pytest.raises(SourceError, match="not a directory"):
        pack_tree(tmp_path / "f", tmp_path / "out")


def test_refuses_drive_too_small(edge_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="drive size too small"):
        pack_tree(edge_tree, tmp_path / "out", drive_size=500_000)
    assert not (tmp_path / "out").exists()


def test_refuses_output_that_holds_a_shipment(edge_tree: Path, tmp_path: Path) -> None:
    pack_tree(edge_tree, tmp_path / "out")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    with pytest.raises(DestinationError, match="already holds a shipment"):
        pack_tree(edge_tree, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before


def test_refuses_drives_that_cannot_hold_the_data(edge_tree: Path, tmp_path: Path) -> None:
    mounts = [tmp_path / "usb1", tmp_path / "usb2"]
    for mount in mounts:
        mount.mkdir()
    with pytest.raises(DestinationError, match="add drives"):
        pack(edge_tree, drives=[str(m) for m in mounts], drive_size=DRIVE, options=SMALL)
    assert all(list(m.iterdir()) == [] for m in mounts)


def test_refuses_drive_that_holds_a_shipment(tmp_path: Path) -> None:
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / DRIVE_LABEL_NAME).write_text("{}")
    (tmp_path / "src").mkdir()
    with pytest.raises(DestinationError, match=r"holds an interrupted pack .*--resume"):
        pack(tmp_path / "src", drives=[str(tmp_path / "usb")])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (PackOptions(chunk_size=1000), "chunk size"),
        (PackOptions(chunk_size=2**27), "chunk size"),
        (PackOptions(segment_size=1000), "segment size"),
        (PackOptions(level=0), "level"),
        (PackOptions(reserve=-1), "reserve"),
    ],
)
def test_refuses_bad_options(tmp_path: Path, options: PackOptions, message: str) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(UsageError, match=message):
        pack_tree(tmp_path / "src", tmp_path / "out", options=options)


def test_out_of_drives_midway_is_a_clear_error(tmp_path: Path) -> None:
    """The up-front check trusts sizes (here an --assume-ratio that random data does not meet); data that still does
    not fit is refused when it happens."""
    write_file(tmp_path / "src" / "a.bin", os.urandom(1_200_000))
    (tmp_path / "usb").mkdir()
    with pytest.raises(OutOfSpace, match="drives given are full"):
        pack(tmp_path / "src", drives=[str(tmp_path / "usb")], drive_size=DRIVE, options=SMALL, assume_ratio=0.1)
    # The drive that was filled is finished and checkable; the rest of the data waits for more drives.
    assert DriveReader(str(tmp_path / "usb")).label.drive == 1


def test_enospc_leaves_the_drive_unfinished(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a.bin", os.urandom(600_000))
    stores: list[FaultyStore] = []

    def full_disk(path: str) -> FaultyStore:
        # The drive fills up once 300,000 bytes of segments were written to it.
        stores.append(FaultyStore(path, full_after=300_000, only=lambda name: name.endswith(".seg")))
        return stores[-1]

    with pytest.raises(OutOfSpace, match=r"drive-0001 .* is full"):
        pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=10**8, options=SMALL, open_store=full_disk)
    assert stores and stores[0].written <= 300_000
    drive = tmp_path / "out" / "drive-0001"
    assert not (drive / DRIVE_LABEL_NAME).exists()
    with pytest.raises(Exception, match="unfinished"):
        DriveReader(str(drive))


def test_bigger_tree_several_drives(tmp_path: Path) -> None:
    """A larger mixed tree over many drives with default chunking: every byte back, no drive over size."""
    src = make_edge_tree(tmp_path / "src", big_size=9_000_000, seed=11)
    summary = pack(src, out=str(tmp_path / "out"), drive_size=4_000_000, options=PackOptions(chunk_size=512 * 1024))
    drives = drive_dirs(tmp_path / "out")
    assert len(drives) == len(summary.drives) >= 3
    got = unpack(drives)
    for path, entry in source_entries(src).items():
        assert got.entries[path].data == entry.data
    assert all(disk_usage(d) <= 4_000_000 for d in drives)


# --- regressions: record order of hard links, the size check --------------------------------------------------


def drive_records(out: Path) -> list[object]:
    records: list[object] = []
    for drive in sorted(out.iterdir()):
        records += list(DriveReader(str(drive)).records())
    return records


def test_hardlink_to_a_large_file_follows_its_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-big").write_bytes(random.Random(1).randbytes(100_000))
    os.link(src / "a-big", src / "b-link")
    pack(src, out=str(tmp_path / "out"), drive_size=10**7, options=PackOptions(chunk_size=64 * 1024, reserve=0))
    records = drive_records(tmp_path / "out")
    target = next(i for i, r in enumerate(records) if isinstance(r, FileRecord) and r.final)
    link = next(i for i, r in enumerate(records) if isinstance(r, HardlinkRecord))
    assert records[link] == HardlinkRecord(b"b-link", b"a-big")
    assert target < link


def test_hardlink_to_a_small_file_follows_its_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-small.txt").write_bytes(b"small file content\n")
    os.link(src / "a-small.txt", src / "b-link")
    pack(src, out=str(tmp_path / "out"), drive_size=10**7, options=PackOptions(chunk_size=64 * 1024, reserve=0))
    records = drive_records(tmp_path / "out")
    target = next(i for i, r in enumerate(records) if isinstance(r, FileRecord) and r.path == b"a-small.txt")
    link = next(i for i, r in enumerate(records) if isinstance(r, HardlinkRecord))
    assert target < link


def test_drive_that_holds_a_chunk_is_not_refused(tmp_path: Path) -> None:
    chunk_size = 256 * 1024
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(random.Random(2).randbytes(200_000))
    # Room for everything the planner counts: one full chunk, 64 KiB of manifest and a generous catalog.
    catalog = catalog_bound(catalog_entry_bound(b"data.bin"), 4)
    drive_size = DriveBudget(0, catalog).overhead(1, 64 * 1024) + stored_size_bound(chunk_size)
    assert drive_size < 1_200_000
    pack(src, out=str(tmp_path / "out"), drive_size=drive_size, options=PackOptions(chunk_size=chunk_size, reserve=0))
    assert [d.name for d in (tmp_path / "out").iterdir()] == ["drive-0001"]


# --- interruptions: a killed pack leaves drives that are recognisably unfinished ---------------------------------

KILL_AFTER_CHUNKS = """
import os, signal, sys
import sneakernet.drive.writer as drive_writer
from sneakernet import PackOptions, pack

real = drive_writer.DriveWriter.add_chunk
count = 0

def add_chunk_then_die(self, chunk, new_segment):
    global count
    record = real(self, chunk, new_segment)
    count += 1
    if count == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    return record

drive_writer.DriveWriter.add_chunk = add_chunk_then_die
pack(sys.argv[1], out=sys.argv[2], drive_size=1_500_000, options=PackOptions(chunk_size=256 * 1024, reserve=0))
"""


@pytest.mark.parametrize("chunks", [1, 3, 6])
def test_sigkill_leaves_the_open_drive_unfinished(edge_tree: Path, tmp_path: Path, chunks: int) -> None:
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", KILL_AFTER_CHUNKS, str(edge_tree), str(out), str(chunks)])
    assert result.returncode == -9
    drives = drive_dirs(out)
    finished = [d for d in drives if (d / DRIVE_LABEL_NAME).exists()]
    unfinished = [d for d in drives if not (d / DRIVE_LABEL_NAME).exists()]
    assert len(unfinished) == 1 and drives[-1] == unfinished[0]
    assert list(unfinished[0].glob("*.partial")) or list(unfinished[0].glob("segments/*.partial"))
    with pytest.raises(FormatError, match="unfinished drive"):
        DriveReader(str(unfinished[0]))
    for drive in finished:  # drives finished before the kill stay whole and readable
        assert list(DriveReader(str(drive)).records())
        assert not (drive / CATALOG_NAME).exists()  # the shipment itself never finished


def test_interrupt_leaves_partial_files_and_no_label(edge_tree: Path, tmp_path: Path) -> None:
    def interrupted(path: str) -> FaultyStore:
        # Ctrl-C as the second chunk is written to a segment.
        return FaultyStore(path, fail_write=2, fault=KeyboardInterrupt(), only=lambda name: name.endswith(".seg"))

    with pytest.raises(KeyboardInterrupt):
        pack(edge_tree, out=str(tmp_path / "out"), drive_size=DRIVE, options=SMALL, open_store=interrupted)
    drive = tmp_path / "out" / "drive-0001"
    assert not (drive / DRIVE_LABEL_NAME).exists() and not (drive / MANIFEST_NAME).exists()
    assert (drive / (MANIFEST_NAME + ".partial")).exists()


def test_refuses_a_drive_that_holds_other_files(tmp_path: Path) -> None:
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / "holiday.jpg").write_bytes(b"mine")
    (tmp_path / "src").mkdir()
    with pytest.raises(DestinationError, match=r"is not empty \(it holds holiday\.jpg\)"):
        pack(tmp_path / "src", drives=[str(tmp_path / "usb")])
    assert sorted(p.name for p in (tmp_path / "usb").iterdir()) == ["holiday.jpg"]


def test_a_fresh_filesystem_root_counts_as_empty(tmp_path: Path) -> None:
    """lost+found (ext4) and the like are the filesystem's; verify does not call them strays either."""
    from sneakernet import verify

    usb = tmp_path / "usb"
    (usb / "lost+found").mkdir(parents=True)
    (usb / "System Volume Information").mkdir()
    write_file(tmp_path / "src" / "a.txt", b"a")
    summary = pack(tmp_path / "src", drives=[str(usb)], options=SMALL)
    report = verify([str(usb)], expected_fingerprint=summary.fingerprint)
    assert report.ok and report.drives[0].unexpected == []


PEAK_CHILD = """
import sys
from sneakernet import PackOptions, pack
pack(sys.argv[1], out=sys.argv[2], drive_size=10**9, options=PackOptions(reserve=0))
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def test_memory_stays_flat_with_many_files(tmp_path: Path) -> None:
    """Peak RSS of pack does not grow with the number of files (loosely: 20,000 files stay near 2,000's)."""

    def peak(count: int) -> int:
        src = tmp_path / f"src{count}"
        for i in range(count):
            if i % 1000 == 0:
                (src / f"d{i // 1000:03d}").mkdir(parents=True)
            (src / f"d{i // 1000:03d}" / f"f{i:06d}").write_bytes(b"x" * (1000 + i % 3000))
        out = subprocess.run(
            [sys.executable, "-c", PEAK_CHILD, str(src), str(tmp_path / f"out{count}")], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip())

    small, large = peak(2_000), peak(20_000)
    assert large < 200 * 1024  # KiB
    assert large - small < 30 * 1024, (small, large)  # 18,000 more files cost less than 30 MiB


def test_chunks_of_small_files_are_encoded_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of small files comes with a record for each of its files: the chunks in flight are counted, not the
    items, or the pool would encode one chunk at a time. Two encodes must be running at once: each waits (up to
    10 s) for the other at a barrier."""
    for number in range(400):
        write_file(tmp_path / "src" / f"f{number:03d}.txt", random.Random(number).randbytes(2000))
    pack_module = importlib.import_module("sneakernet.packer.pipeline")
    real, barrier = pack_module.encode, threading.Barrier(2, timeout=10)

    def side_by_side(chunk: Any, codec: Any) -> Any:
        if chunk.id < 2:
            barrier.wait()  # BrokenBarrierError (and a failed pack) if the other never starts
        return real(chunk, codec)

    monkeypatch.setattr(pack_module, "encode", side_by_side)
    options = PackOptions(chunk_size=64 * 1024, threads=2)
    summary = pack(tmp_path / "src", out=tmp_path / "out", drive_size=10**8, options=options)
    assert summary.files == 400 and summary.chunks >= 10


def test_small_files_hashed_with_their_chunk_have_their_own_blake3(tmp_path: Path) -> None:
    files = {f"d/f{n:02d}": random.Random(n).randbytes(n * 100) for n in range(30)}
    for name, data in files.items():
        write_file(tmp_path / "src" / name, data)
    pack(tmp_path / "src", out=tmp_path / "out", drive_size=10**8, options=PackOptions(chunk_size=64 * 1024))
    finals = {
        record.path: record.blake3
        for record in drive_records(tmp_path / "out")
        if isinstance(record, FileRecord) and record.final
    }
    assert finals == {name.encode(): blake3.blake3(data).hexdigest() for name, data in files.items()}


def test_hard_links_count_once_against_the_room_of_the_drives(tmp_path: Path) -> None:
    """Four more names of one 600 kB file add no data: drives with room for it once (not five times) are taken,
    and the progress counts its bytes once."""
    src = tmp_path / "src"
    src.mkdir()
    data = random.Random(5).randbytes(600_000)
    (src / "a").write_bytes(data)
    for number in range(4):
        os.link(src / "a", src / f"link{number}")
    drive = tmp_path / "drive"
    drive.mkdir()
    started: list[int] = []

    class Counting:
        def start(self, total: int) -> None:
            started.append(total)

        def advance(self, done: int) -> None:
            pass

        def close(self) -> None:
            pass

    summary = pack(
        src, drives=[str(drive)], drive_size=1_500_000, options=PackOptions(chunk_size=256 * 1024, reserve=0),
        progress=Counting(),
    )  # fmt: skip
    assert summary.files == 1 and summary.hardlinks == 4
    assert started == [600_000]
    unpacked = unpack([drive])
    assert unpacked.entries[b"link3"].data == data and unpacked.hardlinks[b"link3"] == b"a"


# --- the name restore keeps for itself ------------------------------------------------------------------------------


def test_source_holding_the_reserved_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """issue 18's repro: a part planted under the predictable name of notes.txt's once restored EVIL as notes.txt.
    pack refuses such a source in one line naming --exclude, which then packs it without that directory."""
    src = tmp_path / "src"
    write_file(src / "notes.txt", b"the real notes\n")
    write_file(src / ".sneakernet" / "parts" / f"{blake3.blake3(b'notes.txt').hexdigest()[:40]}.part", b"EVIL\n")
    write_file(src / ".SneakerNet" / "notes.md", b"honest notes\n")
    args = ("--out", tmp_path / "out", "--drive-size", "100MB")
    code, _, err = cli("pack", src, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "holds .SneakerNet at its top" in err and "--exclude /.SneakerNet" in err
    assert not (tmp_path / "out").exists()
    code, _, err = cli("pack", src, *args, "--exclude", "/.sneakernet", "--exclude", "/.SneakerNet")
    assert code == 0, err
    code, _, err = cli("restore", tmp_path / "out" / "drive-0001", "--into", tmp_path / "dest")
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "dest")) == [".sneakernet", "notes.txt"]  # the finished record
    assert (tmp_path / "dest" / "notes.txt").read_bytes() == b"the real notes\n"


@pytest.mark.parametrize(
    ("keep", "said"),
    [(["--keep-journal"], "the journal a restore kept there (restore --keep-journal)"),
     ([], "with a finished restore's record and other files")],
)  # fmt: skip
def test_source_holding_a_kept_journal_is_refused_naming_it(tmp_path: Path, keep: list[str], said: str) -> None:
    """A destination restored with --keep-journal, packed onward (it crashed restore with sqlite3 errors); or
    without, where the finished record stays, beside a file of the user's."""
    write_file(tmp_path / "src" / "a.txt", b"a\n")
    assert cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "100MB")[0] == 0
    dest = tmp_path / "dest"
    assert cli("restore", tmp_path / "out" / "drive-0001", "--into", dest, *keep)[0] == 0
    if not keep:
        write_file(dest / ".sneakernet" / "notes.md", b"mine\n")
    code, _, err = cli("pack", dest, "--out", tmp_path / "onward", "--drive-size", "100MB")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert said in err and "--exclude /.sneakernet" in err
    assert not (tmp_path / "onward").exists()
    code, _, err = cli("pack", dest, "--out", tmp_path / "onward", "--drive-size", "100MB", "--exclude", "/.sneakernet")
    assert code == 0, err


def test_a_restored_tree_packs_onward_leaving_out_its_finished_record(tmp_path: Path) -> None:
    """Every restored destination keeps .sneakernet/finished.json: packing it onward (a real case) was refused
    until --exclude /.sneakernet was given. That record alone is left out, and said; plan counts the same."""
    make_edge_tree(tmp_path / "src")
    assert cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "100MB")[0] == 0
    dest = tmp_path / "dest"
    assert cli("restore", *drive_dirs(tmp_path / "out"), "--into", dest, "--keep-setuid")[0] == 0
    assert os.listdir(dest / ".sneakernet") == ["finished.json"]
    code, out, err = cli("pack", dest, "--out", tmp_path / "onward", "--drive-size", "100MB")
    assert code == 0, err
    assert "left out .sneakernet: the record of the restore that made this tree" in out
    code, plan_out, err = cli("plan", dest, "--drive-size", "100MB", "--json")
    assert code == 0, err
    code, pack_out, err = cli("pack", dest, "--out", tmp_path / "again", "--drive-size", "100MB", "--json")
    assert code == 0, err
    packed, planned = json.loads(pack_out), json.loads(plan_out)
    assert packed["restore_record_left_out"] is True
    assert (planned["files"], planned["dirs"]) == (packed["files"], packed["dirs"])
    assert cli("restore", *drive_dirs(tmp_path / "onward"), "--into", tmp_path / "second", "--keep-setuid")[0] == 0
    second = {p: e for p, e in source_entries(tmp_path / "second").items() if not p.startswith(b".sneakernet")}
    assert second == source_entries(tmp_path / "src")
