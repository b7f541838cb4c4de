"""pack --resume: an interrupted pack continues into the same output and gives the shipment an uninterrupted run
would have written (same chunks, files and drive assignment); only proven bytes of finished drives are kept."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import drive_dirs, invoke_cli, make_edge_tree, source_entries, unpack, write_file
from sneakernet import PackOptions, pack, verify
from sneakernet.drive import DriveReader
from sneakernet.errors import DestinationError, SourceError, UsageError
from sneakernet.format import CATALOG_NAME, DRIVE_LABEL_NAME, ChunkRecord, FileRecord, ManifestHeader
from sneakernet.format.container import read_records

DRIVE = 1_500_000
CHUNK = 256 * 1024

#: Packs argv[1] into argv[2] through stores (tests/fakestore.py) that SIGKILL the process after the argv[4]-th
#: chunk written to a segment (argv[3] "add_chunk") or the argv[4]-th drive finished (argv[3] "finish": its
#: drive.json made durable).
KILL_AFTER = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fakestore import FaultyStore
from sneakernet import PackOptions, pack

where, count = sys.argv[3], int(sys.argv[4])
calls = 0

def die_after(event, name):
    global calls
    if (where, event) == ("add_chunk", "write") and name.endswith(".seg") or (
        (where, event, name) == ("finish", "commit", "drive.json")
    ):
        calls += 1
        if calls == count:
            os.kill(os.getpid(), signal.SIGKILL)

pack(sys.argv[1], out=sys.argv[2], drive_size=1_500_000, options=PackOptions(chunk_size=256 * 1024, reserve=0),
     open_store=lambda path: FaultyStore(path, after=die_after))
"""


#: Packs argv[1] into argv[2] and SIGKILLs itself after the argv[3]-th step of the finish step (the catalog on each
#: drive, then each B3SUMS): from the catalog's start, every create, write, fsync and commit (rename, fsync of its
#: directory) of a file on a drive counts as one (the stores of tests/fakestore.py count them).
KILL_IN_FINISH = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
kill_at, calls, finishing = int(sys.argv[3]), 0, False

def die_at(event, name):
    global calls, finishing
    finishing = finishing or (event, name) == ("create", "catalog.jsonl.zst")
    if finishing:
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

pack(sys.argv[1], out=sys.argv[2], drive_size=1_500_000, options=PackOptions(chunk_size=256 * 1024, reserve=0),
     open_store=lambda path: FaultyStore(path, after=die_at))
"""


def options() -> PackOptions:
    return PackOptions(chunk_size=CHUNK, reserve=0)


def kill_pack(src: Path, out: Path, where: str, count: int) -> None:
    result = subprocess.run([sys.executable, "-c", KILL_AFTER, str(src), str(out), where, str(count)])
    assert result.returncode == -9


def layout(out: Path) -> list[list[object]]:
    """Every record of every drive but the header (which names the shipment and its time)."""
    return [[r for r in DriveReader(str(d)).records() if not isinstance(r, ManifestHeader)] for d in drive_dirs(out)]


def catalog_entries(out: Path) -> list[dict[str, object]]:
    with open(drive_dirs(out)[0] / CATALOG_NAME, "rb") as handle:
        return [r for r in read_records(handle, "catalog") if r and r["type"] == "entry"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_edge_tree(tmp_path_factory.mktemp("resume") / "src", big_size=4_000_000)


@pytest.fixture(scope="module")
def reference(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "out"
    pack(tree, out=str(out), drive_size=DRIVE, options=options())
    return out


@pytest.mark.parametrize(
    ("where", "count"),
    [("add_chunk", 1), ("add_chunk", 3), ("add_chunk", 7), ("add_chunk", 11), ("finish", 1), ("finish", 4)],
)
def test_resume_after_sigkill_gives_the_uninterrupted_shipment(
    tree: Path, reference: Path, tmp_path: Path, where: str, count: int
) -> None:
    out = tmp_path / "out"
    kill_pack(tree, out, where, count)
    with pytest.raises(DestinationError, match=r"interrupted pack .*--resume"):
        pack(tree, out=str(out), drive_size=DRIVE, options=options())
    summary = pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert layout(out) == layout(reference)
    assert catalog_entries(out) == catalog_entries(reference)
    assert [d.name for d in drive_dirs(out)] == [d.name for d in drive_dirs(reference)]
    report = verify([str(d) for d in drive_dirs(out)], expected_fingerprint=summary.fingerprint)
    assert report.ok
    got = unpack(drive_dirs(out))
    for path, entry in source_entries(tree).items():
        assert got.entries[path].data == entry.data, path
    assert summary.files == len([e for e in source_entries(tree).values() if e.kind == "file"]) - 1  # a hard link


def test_resume_keeps_the_complete_segments_of_the_unfinished_drive(tree: Path, tmp_path: Path) -> None:
    """The drive being written when the pack was killed keeps its complete segments, the very files (inode and
    mtime), and the shipment is still the uninterrupted one."""
    small_segments = KILL_AFTER.replace("reserve=0)", "reserve=0, segment_size=512 * 1024)")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", small_segments, str(tree), str(out), "add_chunk", "10"])
    assert result.returncode == -9
    unfinished = [d for d in drive_dirs(out) if not (d / DRIVE_LABEL_NAME).exists()]
    assert len(unfinished) == 1
    segments = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (unfinished[0] / "segments").glob("*.seg")}
    assert segments, "the unfinished drive has complete segments"
    opts = PackOptions(chunk_size=CHUNK, reserve=0, segment_size=512 * 1024)
    summary = pack(tree, out=str(out), drive_size=DRIVE, options=opts, resume=True)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (unfinished[0] / "segments").glob("*.seg")}
    same = [name for name, stamp in segments.items() if after.get(name) == stamp]
    assert summary.kept_segments == len(same) > 0 and summary.continued_drives == 1
    assert summary.kept_unfinished_bytes == sum((unfinished[0] / "segments" / name).stat().st_size for name in same)
    whole = tmp_path / "whole"
    pack(tree, out=str(whole), drive_size=DRIVE, options=opts)
    assert layout(out) == layout(whole)


def test_resume_keeps_the_shipment_id_of_finished_drives(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kill_pack(tree, out, "add_chunk", 7)
    first = DriveReader(str(out / "drive-0001")).label
    summary = pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert summary.shipment == first.shipment
    assert all(DriveReader(str(d)).label.shipment == first.shipment for d in drive_dirs(out))


def test_resume_of_a_pack_killed_before_any_drive_finished(tree: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kill_pack(tree, out, "add_chunk", 1)
    assert not (out / "drive-0001" / DRIVE_LABEL_NAME).exists()
    pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert layout(out) == layout(reference)


def test_resume_refuses_a_changed_source(tree: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_edge_tree(src, big_size=4_000_000)
    out = tmp_path / "out"
    kill_pack(src, out, "add_chunk", 11)
    finished = [d for d in drive_dirs(out) if (d / DRIVE_LABEL_NAME).exists()]
    assert finished
    # The start of a file whose first chunks are on finished drives is now different. (A change in its part
    # not yet packed is simply packed as it is now.)
    big = src / "arrays" / "big.npy"
    write_file(big, b"!" + big.read_bytes()[1:], mtime_ns=1)
    before = {d.name: sorted(p.name for p in d.iterdir()) for d in finished}
    with pytest.raises(SourceError, match="changed since the interrupted pack"):
        pack(src, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert {d.name: sorted(p.name for p in d.iterdir()) for d in finished} == before


def test_resume_refuses_other_options(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kill_pack(tree, out, "add_chunk", 7)
    with pytest.raises(UsageError, match="give the same options"):
        pack(tree, out=str(out), drive_size=DRIVE, options=PackOptions(chunk_size=128 * 1024, reserve=0), resume=True)
    with pytest.raises(UsageError, match="give the same options"):
        pack(
            tree, out=str(out), drive_size=DRIVE, options=PackOptions(chunk_size=CHUNK, reserve=0, level=5), resume=True
        )


def test_resume_refuses_a_damaged_finished_drive(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kill_pack(tree, out, "add_chunk", 11)
    segment = out / "drive-0001" / "segments" / "s000001.seg"
    data = bytearray(segment.read_bytes())
    data[100] ^= 1
    segment.write_bytes(bytes(data))
    with pytest.raises(DestinationError, match=r"drive-0001 does not check out .*BLAKE3"):
        pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)


def test_resume_when_only_the_catalog_was_missing(tree: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pack(tree, out=str(out), drive_size=DRIVE, options=options())
    for drive in drive_dirs(out):
        (drive / CATALOG_NAME).unlink()
    pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert layout(out) == layout(reference)
    assert catalog_entries(out) == catalog_entries(reference)
    assert verify([str(d) for d in drive_dirs(out)]).ok


def test_resume_onto_mounted_drives(tree: Path, tmp_path: Path) -> None:
    mounts = [tmp_path / f"usb{i}" for i in range(8)]
    for mount in mounts:
        mount.mkdir()
    script = KILL_AFTER.replace(
        "pack(sys.argv[1], out=sys.argv[2],", "pack(sys.argv[1], drives=sys.argv[2].split(','),"
    )
    args = [sys.executable, "-c", script, str(tree), ",".join(map(str, mounts)), "add_chunk", "7"]
    assert subprocess.run(args).returncode == -9
    summary = pack(tree, drives=[str(m) for m in mounts], drive_size=DRIVE, options=options(), resume=True)
    used = [Path(d["path"]) for d in summary.drives]
    assert verify([str(d) for d in used], expected_fingerprint=summary.fingerprint).ok
    assert unpack(used).entries[b"arrays/big.npy"].data == (tree / "arrays" / "big.npy").read_bytes()
    assert all(not any(m.iterdir()) for m in mounts[len(used) :])


def test_resume_is_what_pack_does_when_nothing_was_there(tree: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)
    assert layout(out) == layout(reference)


def test_chunk_records_are_checked_when_replayed(tree: Path, tmp_path: Path) -> None:
    """The replay compares every chunk and final file record; a finished drive from another tree is refused."""
    other = make_edge_tree(tmp_path / "other", big_size=4_000_000, seed=99)
    out = tmp_path / "out"
    kill_pack(other, out, "add_chunk", 11)
    assert any(isinstance(r, ChunkRecord | FileRecord) for r in DriveReader(str(out / "drive-0001")).records())
    with pytest.raises(SourceError, match=r"source changed|changed since the interrupted pack"):
        pack(tree, out=str(out), drive_size=DRIVE, options=options(), resume=True)


def test_cli_resume_flag(tree: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sneakernet.cli import main

    out = tmp_path / "out"
    kill_pack(tree, out, "add_chunk", 7)
    args = [
        "pack",
        str(tree),
        "--out",
        str(out),
        "--drive-size",
        str(DRIVE),
        "--chunk-size",
        "256KiB",
        "--reserve",
        "0",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--resume" in result.stderr
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.stderr
    assert "fingerprint:" in result.stdout
    assert os.path.exists(out / "drive-0001" / CATALOG_NAME)


def test_resume_after_a_kill_at_every_write_of_the_finish_step(tmp_path: Path) -> None:
    """A pack killed anywhere while it writes the catalogs and the B3SUMS that cover them leaves finished drives
    and .partial files: --resume always completes it (a kill while the catalog was written used to leave a
    catalog .partial that refused every retry: 'File exists')."""
    src = tmp_path / "src"
    write_file(src / "big.bin", random.Random(3).randbytes(700_000))
    write_file(src / "dir" / "small.txt", b"small\n")
    args = ("--drive-size", str(DRIVE), "--chunk-size", "256KiB", "--reserve", "0", "--resume")
    kill_at = 0
    while True:
        kill_at += 1
        out = tmp_path / f"out{kill_at}"
        killed = subprocess.run([sys.executable, "-c", KILL_IN_FINISH, str(src), str(out), str(kill_at)])
        if killed.returncode == 0:
            break  # past the last write: the pack finished
        assert killed.returncode == -9
        assert len(drive_dirs(out)) == 2 and all((d / DRIVE_LABEL_NAME).exists() for d in drive_dirs(out))
        code, _, err = invoke_cli("pack", src, "--out", out, *args)
        assert code == 0, f"killed after write {kill_at} of the finish step: {err}"
        assert verify([str(d) for d in drive_dirs(out)]).ok, kill_at
        assert not [p for d in drive_dirs(out) for p in d.iterdir() if p.name.endswith(".partial")], kill_at
        assert unpack(drive_dirs(out)).entries[b"big.bin"].data == (src / "big.bin").read_bytes()
    assert kill_at > 10  # catalog, copy, B3SUMS on each drive: the kills covered them all
