"""restore DRIVE... reads all the drives given at once into the one destination (restorer/at_once.py): identical
trees whatever the order, files spanning drives written at once, one journal writer (restorer/desk.py), a damaged
or failing drive that stops alone, a throttled drive that holds nobody back, a kill then a resume, and a second
restore that waits for the first."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import as_restored, drive_dirs, inode_groups, source_entries, write_file
from conftest import invoke_cli as cli
from sneakernet import PackOptions, pack
from sneakernet.drive import DriveReader
from sneakernet.io.store import LocalStore
from sneakernet.restorer import DriveOutcome, restore, status
from sneakernet.restorer.desk import JournalDesk, Stopped
from sneakernet.restorer.journal import JOURNAL_DIR

OPTIONS = PackOptions(chunk_size=128 * 1024, reserve=0)
DRIVE = 2_000_000


def make_tree(root: Path) -> Path:
    """Small files, files spanning two and three drives, a hard link whose target lies drives before it, a
    symlink and an empty directory: about 5 MB, on five or more drives."""
    rng = random.Random(11)
    write_file(root / "a-target.txt", b"the target of a hard link on a later drive\n")
    for i in range(40):
        write_file(root / "small" / f"s{i:02d}.bin", rng.randbytes(rng.randrange(0, 60_000)))
    write_file(root / "m-span2.bin", rng.randbytes(1_500_000))
    write_file(root / "n-span3.bin", rng.randbytes(2_600_000))
    for i in range(10):
        write_file(root / "tail" / f"t{i}.txt", f"tail {i}\n".encode())
    os.link(root / "a-target.txt", root / "z-link")
    os.symlink("tail/t1.txt", root / "z-symlink")
    (root / "z-empty").mkdir()
    return root


@pytest.fixture(scope="module")
def ship(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    base = tmp_path_factory.mktemp("at-once")
    src = make_tree(base / "src")
    pack(str(src), out=str(base / "out"), drive_size=DRIVE, options=OPTIONS)
    drives = drive_dirs(base / "out")
    assert len(drives) >= 5
    return src, drives


def assert_identical(src: Path, dest: Path) -> None:
    """Same entries, bytes, modes, mtimes, symlinks and hard links (DEST's own .sneakernet aside)."""
    got = {path: entry for path, entry in source_entries(dest).items() if not path.startswith(JOURNAL_DIR.encode())}
    assert got == as_restored(source_entries(src))
    assert inode_groups(dest) == inode_groups(src)


class Reads:
    """When each drive's chunk reads began and ended (monotonic seconds), from the readers' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[float]] = {}

    def note(self, path: str, start: float, end: float) -> None:
        with self.lock:
            span = self.spans.setdefault(path, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)

    def overlapping(self) -> int:
        """How many pairs of drives were read at the same time."""
        spans = list(self.spans.values())
        return sum(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])


class SlowStore(LocalStore):
    """A drive's directory (io/store.py's seam) whose chunk reads take ``delay`` seconds more (a throttled drive)
    and fail with EIO once ``fail_after`` of them were made (a drive pulled out), noting in ``reads`` when each
    drive's reads began and ended."""

    def __init__(self, path: str, reads: Reads, delay: float = 0.0, fail_after: int | None = None) -> None:
        super().__init__(path)
        self.drive, self.reads, self.delay, self.fail_after = path, reads, delay, fail_after
        self.count = 0
        self.count_lock = threading.Lock()

    def read_range(self, name: str, offset: int, size: int) -> bytes:
        start = time.monotonic()
        with self.count_lock:
            self.count += 1
            failing = self.fail_after is not None and self.count > self.fail_after
        if failing:
            raise OSError(errno.EIO, os.strerror(errno.EIO), os.path.join(self.drive, name))
        if self.delay:
            time.sleep(self.delay)
        try:
            return super().read_range(name, offset, size)
        finally:
            self.reads.note(self.drive, start, time.monotonic())


def readers(reads: Reads, **per_drive: dict[str, Any]) -> Callable[[str], DriveReader]:
    """``open_reader`` for restore: each drive read through a SlowStore, ``per_drive[label]`` its settings."""
    return lambda path: DriveReader(path, SlowStore(path, reads, **per_drive.get(Path(path).name, {})))


@pytest.mark.parametrize("order", ["given", "reversed", "shuffled"])
def test_drives_restored_at_once_are_identical_to_the_source(
    ship: tuple[Path, list[Path]], tmp_path: Path, order: str
) -> None:
    """Every drive in one run, read at the same time (their reads overlap), files spanning two and three drives
    assembled by drives written at once, a hard link across drives: the tree is the source's."""
    src, drives = ship
    given = {"given": drives, "reversed": drives[::-1], "shuffled": random.Random(4).sample(drives, len(drives))}
    reads = Reads()
    slow = {drive.name: {"delay": 0.01} for drive in drives}  # a little: every drive takes a while
    report = restore(
        [str(d) for d in given[order]], str(tmp_path / "dest"), open_reader=readers(reads, **slow), at_once=len(drives)
    )
    assert report.status.finished and report.clean
    assert [d.path for d in report.drives] == [str(d) for d in given[order]]
    assert reads.overlapping() >= 1, reads.spans
    assert_identical(src, tmp_path / "dest")
    for drive in report.drives:
        assert drive.seconds > 0 and drive.bytes_per_second > 0 and drive.written > 0
    assert report.bytes_per_second > 0


def test_drives_on_one_device_go_one_after_another_by_default(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Drives staged on one device (one disk's directories) are read one after another unless --at-once says
    otherwise, as verify does: their reads never overlap; the tree is the same."""
    src, drives = ship
    reads = Reads()
    slow = {drive.name: {"delay": 0.01} for drive in drives}
    report = restore([str(d) for d in drives], str(tmp_path / "dest"), open_reader=readers(reads, **slow))
    assert report.status.finished and len(reads.spans) == len(drives)
    assert reads.overlapping() == 0, reads.spans
    assert_identical(src, tmp_path / "dest")


def test_json_gives_each_drives_bytes_seconds_and_rate(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    src, drives = ship
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest", "--json", "--at-once", str(len(drives)))
    assert code == 0, err
    report = json.loads(out)
    assert [d["path"] for d in report["drives"]] == [str(d) for d in drives]
    for drive in report["drives"]:
        assert drive["written"] > 0 and drive["seconds"] > 0
        # seconds are rounded to the millisecond, the rate taken from the unrounded time: on a fast drive of a few
        # milliseconds the rounding alone moves the rate by percents, so the bound is the rounding's own.
        written, seconds = drive["written"], drive["seconds"]
        fastest, slowest = written / max(seconds - 0.0005, 1e-6), written / (seconds + 0.0005)
        assert slowest - 1 <= drive["bytes_per_second"] <= fastest + 1
    assert report["seconds"] > 0 and report["bytes_per_second"] > 0
    assert_identical(src, tmp_path / "dest")


def flip_segment_byte(drive: Path) -> None:
    segment = sorted((drive / "segments").iterdir())[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))


def test_a_damaged_drive_among_others_fails_alone(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """One drive damaged, the others fine, all at once: the damaged drive's files are named and kept from their
    final names, every other drive goes in; its good copy later finishes the shipment identical."""
    src, drives = ship
    copy = tmp_path / "copy"
    shutil.copytree(drives[1], copy)
    flip_segment_byte(copy)
    given = [drives[0], copy, *drives[2:]]
    dest = tmp_path / "dest"
    report = restore([str(d) for d in given], str(dest), at_once=len(given))
    statuses = [str(d.status) for d in report.drives]
    assert statuses == ["restored", "damaged", *["restored"] * (len(drives) - 2)], statuses
    assert report.drives[1].failed and not report.status.finished
    assert [w.drive for w in report.status.waiting] == [2] and report.status.waiting[0].state == "partial"
    expected = source_entries(src)
    for path, entry in source_entries(dest).items():
        if entry.kind == "file" and not path.startswith(JOURNAL_DIR.encode()):
            assert entry.data == expected[path].data, path  # no wrong byte under a final name
    again = restore([str(drives[1])], str(dest))
    assert again.status.finished
    assert_identical(src, dest)


def test_a_drive_that_fails_half_way_stops_alone(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """An I/O error on one drive half way (pulled out): that drive stops, its outcome says so in one line (the
    report is not clean: exit 1), the others finish; the drive again later finishes the shipment identical."""
    src, drives = ship
    failing = drives[2].name
    dest = tmp_path / "dest"
    opener = readers(Reads(), **{failing: {"fail_after": 3}})
    report = restore([str(d) for d in drives], str(dest), open_reader=opener, at_once=len(drives))
    outcome = report.drives[2]
    assert str(outcome.status) == "unreadable" and not report.clean
    assert "Input/output error" in outcome.message and "\n" not in outcome.message
    assert all(str(d.status) == "restored" for i, d in enumerate(report.drives) if i != 2)
    assert [w.drive for w in status(str(dest)).waiting] == [3]
    again = restore([str(drives[2])], str(dest))
    assert again.status.finished
    assert_identical(src, dest)


def test_a_throttled_drive_does_not_hold_back_the_others(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """One drive (with files spanning to both its neighbours) much slower than the rest: every other drive is done
    before it, while it is still being read; the tree is whole once it is in."""
    src, drives = ship
    slow = drives[1].name
    reads = Reads()
    told: list[DriveOutcome] = []
    slow_reads = {slow: {"delay": 0.25}}
    dest = tmp_path / "dest"
    report = restore(
        [str(d) for d in drives], str(dest), open_reader=readers(reads, **slow_reads), on_drive=told.append,
        at_once=len(drives),
    )  # fmt: skip
    assert report.status.finished
    assert [d.label for d in told][-1] == slow
    slowest = next(d for d in report.drives if d.label == slow)
    assert all(d.seconds < slowest.seconds for d in report.drives if d.label != slow)
    slow_span = reads.spans[str(drives[1])]
    assert all(span[1] < slow_span[1] for path, span in reads.spans.items() if path != str(drives[1]))
    assert_identical(src, dest)


#: Restores DEST from DRIVES at once in a child that SIGKILLs itself at its Nth pwrite (into the parts).
KILL_AT_PWRITE = r"""
import os, signal, sys
from sneakernet.restorer import restore
at, dest, *drives = sys.argv[1:]
real, calls = os.pwrite, [0]
def pwrite(*args):
    calls[0] += 1
    if calls[0] == int(at):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)
os.pwrite = pwrite
restore(drives, dest, at_once=len(drives))
"""


@pytest.mark.parametrize("at", [2, 9, 25, 60])
def test_killed_while_drives_are_written_at_once_then_resumed(
    ship: tuple[Path, list[Path]], tmp_path: Path, at: int
) -> None:
    """SIGKILL at the Nth write into the parts, several drives being written: the same restore again finishes
    identical, no wrong byte ever under a final name."""
    src, drives = ship
    dest = tmp_path / "dest"
    child = subprocess.run([sys.executable, "-c", KILL_AT_PWRITE, str(at), str(dest), *map(str, drives)])
    assert child.returncode == -signal.SIGKILL
    expected = source_entries(src)
    for path, entry in source_entries(dest).items():
        if entry.kind == "file" and not path.startswith(JOURNAL_DIR.encode()):
            assert entry.data == expected[path].data, path
    report = restore([str(d) for d in drives], str(dest))
    assert report.status.finished
    assert_identical(src, dest)


def test_a_second_restore_waits_for_the_first_then_restores(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """While a restore holds DEST, another one says so in one line and waits; once the first lets go, it runs."""
    src, drives = ship
    dest = tmp_path / "dest"
    dest.mkdir()
    holder = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running restore holds
    args = [
        sys.executable,
        "-m",
        "sneakernet",
        "restore",
        *map(str, drives),
        "--into",
        str(dest),
        "-q",
        "--at-once",
        "4",
    ]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as second:
        assert second.stderr is not None
        try:
            line = second.stderr.readline()
            assert "another restore is writing into" in line and "waiting" in line
            time.sleep(0.3)
            assert second.poll() is None and os.listdir(dest) == []  # it waits, writing nothing
        finally:
            os.close(holder)
        _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert_identical(src, dest)


class Recorder:
    """A journal stand-in: each call notes the thread it ran on."""

    def __init__(self) -> None:
        self.dest = "/nowhere"
        self.calls: list[tuple[str, Any, int]] = []

    def add_piece(self, value: Any) -> None:
        self.calls.append(("add_piece", value, threading.get_ident()))
        if value == "bad":
            raise ValueError("refused")

    def pieces(self, value: Any) -> Any:
        self.calls.append(("pieces", value, threading.get_ident()))
        return value


def test_the_journal_desk_runs_every_call_on_its_own_thread_in_order() -> None:
    """Drives' threads hand their calls over: each runs on the desk's thread, a drive's calls in its order; a call
    not waited for that failed is raised by that drive's next call that waits; once stopped, calls fail."""
    recorder = Recorder()
    stop = threading.Event()
    desk = JournalDesk(recorder, stop)  # type: ignore[arg-type]
    raised: list[BaseException] = []

    def drive(name: str) -> list[Any]:
        client = desk.client()
        answers = []
        for i in range(50):
            client.add_piece(f"{name}{i}")
            answers.append(client.pieces(f"{name}{i}"))
        client.add_piece("bad")
        try:
            client.pieces("after")
        except ValueError as exc:
            raised.append(exc)
        return answers

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        works = [pool.submit(drive, name) for name in ("a", "b")]
        desk.serve(works, lambda work: None)
    assert [w.result() for w in works] == [[f"{n}{i}" for i in range(50)] for n in ("a", "b")]
    assert {ident for _, _, ident in recorder.calls} == {threading.get_ident()}
    for name in ("a", "b"):
        mine = [
            value
            for call, value, _ in recorder.calls
            if call == "add_piece" and value != "bad" and str(value).startswith(name)
        ]
        assert mine == [f"{name}{i}" for i in range(50)]
    assert len(raised) == 2
    desk.stop()
    with ThreadPoolExecutor(1) as pool:
        work = pool.submit(lambda: desk.client().pieces("x"))
        desk.serve([work], lambda work: None)
    with pytest.raises(Stopped):
        work.result()


class DrivesShown:
    """A progress that shows each drive (sneakernet.progress.DrivesProgress): what each drive was told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.drives: dict[str, list[int]] = {}  # label -> [its total, bytes told, closed]

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, done_bytes: int) -> None:
        with self.lock:
            self.done += done_bytes

    def close(self) -> None:
        pass

    def open_drive(self, label: str, total_bytes: int) -> Any:
        shown = self
        self.drives[label] = [total_bytes, 0, 0]

        class Drive:
            def advance(self, done_bytes: int) -> None:
                with shown.lock:
                    shown.drives[label][1] += done_bytes
                    shown.done += done_bytes

            def close(self) -> None:
                shown.drives[label][2] += 1

        return Drive()


def test_progress_has_a_line_per_drive_restored_at_once(ship: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Each drive written at once opens its own progress line, told its own bytes (all it wrote), closed once."""
    _, drives = ship
    shown = DrivesShown()
    report = restore([str(d) for d in drives], str(tmp_path / "dest"), progress=shown, at_once=len(drives))
    assert sorted(shown.drives) == sorted(d.label for d in report.drives if d.label)
    for outcome in report.drives:
        total, told, closed = shown.drives[str(outcome.label)]
        assert told == outcome.written and closed == 1 and total >= outcome.written
    assert shown.done == sum(d.written for d in report.drives)
