"""pack --at-once N --resume (packer/lane_resume.py, docs/format.md 19.10): a pack of several lanes killed with
SIGKILL while several drives are being written resumes with the same command, keeps its finished drives and every
complete segment of its unfinished ones (the very files: inode and mtime unchanged), writes only what follows, and
gives a shipment that verifies and restores identical to the source, with the same segments, lane by lane, as an
uninterrupted pack; a failed drive stops its lane alone, and --resume completes it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest

from conftest import invoke_cli as cli
from conftest import write_file
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.drive.unfinished import UnfinishedManifest
from sneakernet.errors import LaneStopped, OutOfSpace
from sneakernet.format import CATALOG_NAME, DRIVE_LABEL_NAME, DriveLabel
from sneakernet.io.store import LocalStore
from test_json import validate
from test_restore import assert_same_tree

TESTS = Path(__file__).parent
CHUNK, SEGMENT, DRIVE = 64 * 1024, 512 * 1024, 2_500_000
OPTIONS = PackOptions(chunk_size=CHUNK, segment_size=SEGMENT, reserve=0)

#: Packs argv[1] into argv[2] onto drives of DRIVE bytes, argv[3] lanes at once, every segment write slowed by
#: argv[4] seconds (tests/fakestore.py's SlowDrives), so that the test can kill it mid-way.
SLOW_PACK = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakestore import SlowDrives
from sneakernet import PackOptions, pack
if __name__ == "__main__":
    pack(sys.argv[1], out=sys.argv[2], drive_size={DRIVE},
         options=PackOptions(chunk_size={CHUNK}, segment_size={SEGMENT}, reserve=0), at_once=int(sys.argv[3]),
         open_store=SlowDrives(float(sys.argv[4])))
"""


def make_source(root: Path, seed: int, files: int = 36) -> Path:
    """Incompressible files of 50-400 KB, a few small ones and a large one spanning drives: every kind of cut."""
    rng = random.Random(seed)
    for i in range(files):
        write_file(root / f"d{i % 4}" / f"f{i:02d}.bin", rng.randbytes(rng.randrange(50_000, 400_000)))
    for i in range(20):
        write_file(root / "small" / f"s{i:02d}.txt", rng.randbytes(rng.randrange(1, 3000)))
    write_file(root / "d2" / "large.bin", rng.randbytes(1_800_000))
    return root


def segments_of(drive: Path) -> dict[str, tuple[int, int]]:
    """The final segment files of a drive: (inode, mtime_ns) by name."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (drive / "segments").glob("*.seg")}


def unfinished_with_segments(out: Path) -> dict[Path, int]:
    return {
        d: len(list((d / "segments").glob("*.seg")))
        for d in out.glob("drive-*")
        if not (d / DRIVE_LABEL_NAME).exists() and list((d / "segments").glob("*.seg"))
    }


def has_segment_record(drive: Path) -> bool:
    return drive.exists() and UnfinishedManifest.open(LocalStore(drive)) is not None


def kill_while_writing(
    src: Path,
    out: Path,
    lanes: int,
    segments: int,
    delay: float = 0.02,
    on_one: int = 1,
    also: str = "*",
    recorded: str | None = None,
) -> None:
    """Start the slowed pack and SIGKILL it once at least two drives are unfinished with ``segments`` complete
    segment files among them, ``on_one`` of them on one drive (and a file matching ``also`` is in ``out``, and the
    unfinished manifest of drive ``recorded`` holds a whole segment record: a segment file is renamed into place
    before its record is made durable, so a kill between the two leaves a drive that resume may clear)."""
    process = subprocess.Popen([sys.executable, "-c", SLOW_PACK, str(src), str(out), str(lanes), str(delay)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            found = unfinished_with_segments(out) if out.exists() else {}
            ready = len(found) >= 2 and sum(found.values()) >= segments and max(found.values()) >= on_one
            if ready and any(out.glob(also)) and (recorded is None or has_segment_record(out / recorded)):
                break
            time.sleep(0.01)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -9, "the pack ended before it could be killed: slow it down"


def lane_segments(out: Path) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """Each finished drive's segments (name, BLAKE3) by (lane, lane_seq): the drives' contents but their numbers."""
    found = {}
    for drive in out.glob("drive-*"):
        label = DriveLabel.from_bytes((drive / DRIVE_LABEL_NAME).read_bytes(), versions=(1, 2))
        names = sorted((drive / "segments").glob("*.seg"))
        found[(label.lane or 1, label.lane_seq or 1)] = [
            (p.name, blake3.blake3(p.read_bytes()).hexdigest()) for p in names
        ]
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_a_pack_killed_while_several_drives_are_written_resumes_keeping_complete_segments(
    tmp_path: Path, seed: int
) -> None:
    src = make_source(tmp_path / "src", seed)
    out = tmp_path / "out"
    rng = random.Random(seed)
    kill_while_writing(src, out, 3, rng.randrange(2, 7))
    before = {d: segments_of(d) for d in unfinished_with_segments(out)}
    assert len(before) >= 2
    finished_before = {d for d in out.glob("drive-*") if (d / DRIVE_LABEL_NAME).exists()}
    finished_times = {d: (d / DRIVE_LABEL_NAME).stat().st_mtime_ns for d in finished_before}

    args = ["--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "512KiB", "--reserve", "0"]
    code, stdout, err = cli("pack", src, "--out", out, *args, "--at-once", "3", "--resume", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    validate(summary, "pack-summary.schema.json")
    # Every complete segment of the unfinished drives is the same file as before: kept, not written again.
    unchanged = sum(
        1 for drive, segments in before.items() for name, stamp in segments.items()
        if segments_of(drive).get(name) == stamp
    )  # fmt: skip
    assert summary["kept_segments"] == unchanged > 0
    assert summary["continued_drives"] >= 1
    assert summary["resumed_drives"] == len(finished_before)
    assert all((d / DRIVE_LABEL_NAME).stat().st_mtime_ns == finished_times[d] for d in finished_before)
    kept_size = sum(
        (d / "segments" / n).stat().st_size for d, s in before.items() for n in s if segments_of(d).get(n) == s[n]
    )
    assert summary["kept_unfinished_bytes"] == kept_size
    assert summary["kept_bytes"] >= kept_size

    drives = sorted(out.glob("drive-*"))
    assert [d.name for d in drives] == [f"drive-{n:04d}" for n in range(1, len(drives) + 1)]
    code, stdout, err = cli("verify", *drives, "--fingerprint", summary["short_fingerprint"])
    assert code == 0, (stdout, err)
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")
    # An uninterrupted pack of the same tree writes the same segments on each drive of each lane.
    whole = pack(src, out=str(tmp_path / "whole"), drive_size=DRIVE, options=OPTIONS, at_once=3)
    assert whole.lanes == summary["lanes"] == 3
    assert lane_segments(out) == lane_segments(tmp_path / "whole")


def test_a_resume_keeps_only_segments_that_match_their_hash(tmp_path: Path) -> None:
    """A kept segment changed since (one byte) and everything after it are written again; the one before is kept."""
    src = make_source(tmp_path / "src", 3)
    out = tmp_path / "out"
    kill_while_writing(src, out, 2, 3, on_one=2)
    drive, count = max(unfinished_with_segments(out).items(), key=lambda item: item[1])
    assert count >= 2
    before = segments_of(drive)
    damaged = drive / "segments" / "s000002.seg"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    summary = pack(src, out=str(out), drive_size=DRIVE, options=OPTIONS, at_once=2, resume=True)
    after = segments_of(drive)
    assert after["s000001.seg"] == before["s000001.seg"]
    assert after["s000002.seg"] != before["s000002.seg"]
    assert summary.rewritten_bytes >= len(data)
    code, stdout, err = cli("verify", *sorted(out.glob("drive-*")))
    assert code == 0, (stdout, err)
    code, _, err = cli("restore", *sorted(out.glob("drive-*")), "--into", tmp_path / "dest")
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")


def make_mounts(tmp_path: Path) -> tuple[list[Path], list[str]]:
    mounts = [tmp_path / f"mnt{i}" for i in range(1, 9)]
    for mount in mounts:
        mount.mkdir()
    return mounts, [str(m) for m in mounts]


def resume_keeps(src: Path, drives: list[str], stopped: Path, before: dict[str, tuple[int, int]], dest: Path) -> None:
    """The same pack with --resume continues drive ``stopped`` keeping its complete segments (``before``) as they are;
    the shipment verifies and restores identical to ``src``."""
    summary = pack(src, drives=drives, drive_size=DRIVE, options=OPTIONS, at_once=2, resume=True)
    assert summary.continued_drives == 1 and summary.kept_segments == len(before)
    assert all(segments_of(stopped)[name] == stamp for name, stamp in before.items())
    used = [d["path"] for d in summary.drives]
    code, stdout, err = cli("verify", *used)
    assert code == 0, (stdout, err)
    code, _, err = cli("restore", *used, "--into", dest)
    assert code == 0, err
    assert_same_tree(src, dest)


def test_a_failed_drive_stops_its_lane_and_resume_completes_it(tmp_path: Path) -> None:
    """An I/O error on one drive (a fake store) stops only its lane, exit 1, the others finish; --resume keeps the
    failed drive's complete segments and finishes it."""
    from test_pack_lanes import FailingDrive

    src = make_source(tmp_path / "src", 4, files=24)
    mounts, drives = make_mounts(tmp_path)
    failing = FailingDrive(str(mounts[1]), fail_write=12)  # drive 2, lane 2's first: after a few segments
    with pytest.raises(LaneStopped) as caught:
        pack(src, drives=drives, drive_size=DRIVE, options=OPTIONS, at_once=2, open_store=failing)
    assert caught.value.exit_code == 1 and "lanes stopped: 2; lanes that finished: 1" in str(caught.value)
    assert not (mounts[1] / DRIVE_LABEL_NAME).exists()
    before = segments_of(mounts[1])
    assert before, "the failed drive has complete segments"
    resume_keeps(src, drives, mounts[1], before, tmp_path / "dest")


@dataclass(frozen=True)
class FillingDrive:
    """Opens every drive as a local directory but ``path``, which is full once ``room`` bytes were written to it
    (ENOSPC; a store a lane's process can unpickle: this module's class, by name)."""

    path: str
    room: int

    def __call__(self, path: str) -> LocalStore:
        return FaultyStore(path, full_after=self.room) if path == self.path else LocalStore(path)


def test_a_drive_full_stops_its_lane_exit_4_and_resume_completes_it(tmp_path: Path) -> None:
    """A drive that fills up early (ENOSPC from its store) stops only its lane with exit code 4; the same pack with
    --resume, once the drive has room, keeps its complete segments and completes it."""
    src = make_source(tmp_path / "src", 6, files=24)
    mounts, drives = make_mounts(tmp_path)
    full = FillingDrive(str(mounts[0]), room=1_200_000)  # drive 1, lane 1's first: full after two segments
    with pytest.raises(OutOfSpace) as caught:
        pack(src, drives=drives, drive_size=DRIVE, options=OPTIONS, at_once=2, open_store=full)
    assert caught.value.exit_code == 4 and "lanes stopped: 1; lanes that finished: 2" in str(caught.value)
    before = segments_of(mounts[0])
    assert len(before) >= 1 and not (mounts[0] / DRIVE_LABEL_NAME).exists()
    resume_keeps(src, drives, mounts[0], before, tmp_path / "dest")


def test_a_pack_stopped_while_writing_the_catalog_is_completed(tmp_path: Path) -> None:
    """Every drive finished, the catalog not everywhere (a kill in the last step): --resume keeps every drive,
    writes nothing again but the catalog and B3SUMS, and the shipment verifies with the same fingerprint."""
    src = make_source(tmp_path / "src", 7, files=16)
    out = tmp_path / "out"
    first = pack(src, out=str(out), drive_size=DRIVE, options=OPTIONS, at_once=2)
    drives = sorted(out.glob("drive-*"))
    for drive in drives[1:]:
        (drive / CATALOG_NAME).unlink()
    segments = {d: segments_of(d) for d in drives}
    summary = pack(src, out=str(out), drive_size=DRIVE, options=OPTIONS, at_once=2, resume=True)
    assert summary.resumed_drives == len(drives) and summary.rewritten_bytes == 0
    assert summary.fingerprint == first.fingerprint
    assert {d: segments_of(d) for d in drives} == segments
    code, stdout, err = cli("verify", *drives, "--fingerprint", first.short_fingerprint)
    assert code == 0, (stdout, err)


def test_a_resume_with_another_at_once_is_refused(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", 5)
    out = tmp_path / "out"
    kill_while_writing(src, out, 3, 2, also="drive-0003/segments/*.seg", recorded="drive-0003")
    code, _, err = cli("pack", src, "--out", out, "--drive-size", str(DRIVE), "--chunk-size", "64KiB",
                       "--segment-size", "512KiB", "--reserve", "0", "--at-once", "2", "--resume")  # fmt: skip
    assert code == 2
    assert "of lane 3, which --at-once 2 does not cut so: give the same --at-once as the interrupted pack" in err
    assert not any((d / CATALOG_NAME).exists() for d in out.glob("drive-*"))


def test_the_summary_says_what_a_resume_kept_and_wrote_again(capsys: pytest.CaptureFixture[str]) -> None:
    from sneakernet.cli.render import print_pack_summary
    from sneakernet.packer import PackSummary

    summary = PackSummary(
        shipment="0" * 32, fingerprint="1" * 64, drives=[], resumed_drives=2, continued_drives=1, kept_segments=3,
        kept_bytes=5_000_000, kept_unfinished_bytes=1_500_000, rewritten_bytes=250_000,
    )  # fmt: skip
    print_pack_summary(summary, quiet=False)
    assert (
        "  resumed: 2 finished drives kept, 3 complete segments kept on 1 unfinished drive (5 MB kept, 250 KB written "
        "again)\n"
    ) in capsys.readouterr().out


def test_a_resume_whose_kept_records_end_on_a_group_of_small_files(tmp_path: Path) -> None:
    # Files of a quarter chunk each fill groups exactly: a group closes as the next file joins the next group, so the
    # kept records of an unfinished drive end with a group's last file while the next file is already in the
    # chunker's open group, read dry. The resume raised StopIteration there (its end was not waiting yet).
    rng = random.Random(7)
    src = tmp_path / "src"
    for i in range(240):
        write_file(src / f"g{i // 60}" / f"q{i:03d}.bin", rng.randbytes(CHUNK // 4))
    out = tmp_path / "out"
    kill_while_writing(src, out, 2, 2)
    args = ["--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "512KiB", "--reserve", "0"]
    code, stdout, err = cli("pack", src, "--out", out, *args, "--at-once", "2", "--resume", "--json")
    assert code == 0, err
    assert json.loads(stdout)["kept_segments"] >= 1
    drives = sorted(out.glob("drive-*"))
    assert cli("verify", *drives)[0] == 0
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")


#: SLOW_PACK, printing the error a library caller gets (its class and exit code) instead of a traceback.
SLOW_PACK_CAUGHT = SLOW_PACK.replace(
    "    pack(sys.argv[1]", "    from sneakernet.errors import SneakernetError\n    try:\n     pack(sys.argv[1]"
).replace(
    "open_store=SlowDrives(float(sys.argv[4])))\n",
    "open_store=SlowDrives(float(sys.argv[4])))\n    except SneakernetError as exc:\n"
    "        print(type(exc).__name__, int(exc.exit_code), exc)\n",
)


def child_pids(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_lane_process_killed_is_one_error_then_resume_completes(tmp_path: Path) -> None:
    # A lane's process killed (OOM killer, a stray kill) broke the pool: the caller got BrokenProcessPool with a
    # traceback. Now a LaneStopped (exit 1) that names --resume, and the resume completes.
    src = make_source(tmp_path / "src", 3)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_PACK_CAUGHT, str(src), str(out), "2", "0.02"], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not unfinished_with_segments(out):
        time.sleep(0.01)
    lanes = child_pids(process.pid)
    assert lanes and process.poll() is None, "the pack ended before a lane could be killed"
    os.kill(lanes[0], signal.SIGKILL)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0, stdout
    kind, code, message = stdout.strip().splitlines()[-1].split(" ", 2)
    assert (kind, code) == ("LaneStopped", "1") and "--resume" in message
    args = ["--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "512KiB", "--reserve", "0"]
    code_, _, err = cli("pack", src, "--out", out, *args, "--at-once", "2", "--resume")
    assert code_ == 0, err
    drives = sorted(out.glob("drive-*"))
    assert cli("verify", *drives)[0] == 0
    assert cli("restore", *drives, "--into", tmp_path / "dest")[0] == 0
    assert_same_tree(src, tmp_path / "dest")


#: The command line (cli.app.main, with its SIGTERM handler) packing argv[1:] onto drives whose segment writes are
#: slowed by 0.02 s (SlowDrives as pack's default store), so that a test can signal a lane's process mid-way.
SLOW_CLI = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakestore import SlowDrives
import sneakernet.packer
sneakernet.packer.LocalStore = SlowDrives(0.02)
from sneakernet.cli.app import main
if __name__ == "__main__":
    main(sys.argv[1:])
"""


def lane_pids(pid: int) -> list[int]:
    """The lanes' processes of the pack ``pid``: its children but multiprocessing's resource tracker."""
    return [
        child for child in child_pids(pid) if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def test_a_lane_process_terminated_is_one_line_on_stderr(tmp_path: Path) -> None:
    # A forked lane inherited the command line's SIGTERM handler: a lane ended with SIGTERM (by the pool when
    # another lane was lost, or a stray kill) printed multiprocessing's traceback of it on stderr, and the pack
    # said "terminated" with exit 143. Now the lane just ends, and the pack says so in one line, exit 1.
    src = make_source(tmp_path / "src", 4)
    out = tmp_path / "out"
    args = ["--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "512KiB", "--reserve", "0"]
    argv = ["pack", str(src), "--out", str(out), *args, "--at-once", "2", "-q"]
    process = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *argv], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not unfinished_with_segments(out):
        time.sleep(0.01)
    lanes = lane_pids(process.pid)
    assert len(lanes) == 2 and process.poll() is None, "the pack ended before a lane could be terminated"
    os.kill(lanes[0], signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--resume" in lines[0], stderr
    code, _, err = cli("pack", src, "--out", out, *args, "--at-once", "2", "--resume")
    assert code == 0, err
    assert cli("verify", *sorted(out.glob("drive-*")))[0] == 0


#: SLOW_PACK_CAUGHT resuming (argv[4]: seconds each segment write is slowed by).
SLOW_RESUME_CAUGHT = SLOW_PACK_CAUGHT.replace("at_once=int(sys.argv[3]),", "at_once=int(sys.argv[3]), resume=True,")


def test_a_source_changed_on_resume_stops_every_lane(tmp_path: Path) -> None:
    # On resume, the lane that found the source changed stopped alone while the others wrote on, to the end of
    # their drives, for a shipment that can never be finished. Now every lane stops at once (lane.LaneHalt).
    src = make_source(tmp_path / "src", 5)
    out = tmp_path / "out"
    kill_while_writing(src, out, 2, 2)
    labels = sorted(out.glob(f"drive-*/{DRIVE_LABEL_NAME}"))
    first = src / "d0" / "f00.bin"  # lane 1's first file: on its first drive, kept
    first.write_bytes(random.Random(0).randbytes(first.stat().st_size))
    resumed = subprocess.run(
        [sys.executable, "-c", SLOW_RESUME_CAUGHT, str(src), str(out), "2", "0.05"],
        stdout=subprocess.PIPE, text=True, timeout=120, check=True,
    )  # fmt: skip
    kind, code, message = resumed.stdout.strip().splitlines()[-1].split(" ", 2)
    assert (kind, code) == ("LaneStopped", "1"), resumed.stdout
    assert "changed since the interrupted pack" in message and "lanes that finished: none" in message, message
    assert sorted(out.glob(f"drive-*/{DRIVE_LABEL_NAME}")) == labels  # lane 2 finished no drive more
