"""verify of several drives at once (issue 14): drives checked on threads of their own, each result handed over as
soon as its drive is done, the same results as each drive verified alone, one drive's failure stopping only that
drive, and what of the shipment was given (drive/driveset.py)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import invoke_cli as run
from craft import flip_byte, small_files, spanning_file, write_shipment
from sneakernet.cli.exits import verify_code
from sneakernet.drive import drive_queues
from sneakernet.errors import ExitCode, UsageError
from sneakernet.format import segment_name
from sneakernet.verifier import DriveReport, StateDir, Status, VerifyReport, VerifyState, verify

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "verify-report.schema.json").read_text())


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep verify's progress files of CLI runs in the test's directory, never in ~/.cache."""
    path = tmp_path / "state"
    monkeypatch.setenv("SNEAKERNET_STATE_DIR", str(path))
    return path


def four_drives(out: Path) -> list[Path]:
    """Four drives of one shipment, each with a few files of its own (one segment each), 40-90 kB."""
    return write_shipment(
        out,
        [
            small_files([(f"d{number}/f{i}.bin", os.urandom(10_000 + 1000 * number)) for i in range(4 + number)])
            for number in range(1, 5)
        ],
    )


def untimed(report: dict[str, Any]) -> dict[str, Any]:
    """A drive's --json without its time and rate, which differ between two runs."""
    return {k: v for k, v in report.items() if k not in ("seconds", "bytes_per_second")}


class Drives:
    """A progress that shows drives (sneakernet.progress.DrivesProgress), recording what each drive's thread
    tells it; ``hold`` a drive's reads until :attr:`release` is set, or ``fail`` them with an I/O error (as a read
    of a drive pulled out would)."""

    def __init__(self, hold: str | None = None, fail: str | None = None) -> None:
        self.hold, self.fail = hold, fail
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.opened: list[str] = []
        self.done: dict[str, int] = {}
        self.threads: dict[str, str] = {}
        self.started = 0

    def start(self, total_bytes: int) -> None:
        self.started = total_bytes

    def advance(self, done_bytes: int) -> None:
        raise AssertionError("verify tells each drive's bytes through its drive's progress")

    def close(self) -> None:
        pass

    def open_drive(self, label: str, total_bytes: int) -> HeldDrive:
        with self.lock:
            self.opened.append(label)
            self.threads[label] = threading.current_thread().name
        return HeldDrive(self, label)


class HeldDrive:
    def __init__(self, drives: Drives, label: str) -> None:
        self.drives, self.label = drives, label

    def advance(self, done_bytes: int) -> None:
        if self.label == self.drives.fail:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        if self.label == self.drives.hold:
            assert self.drives.release.wait(20), "the held drive waited for the others, which never came"
        with self.drives.lock:
            self.drives.done[self.label] = self.drives.done.get(self.label, 0) + done_bytes

    def close(self) -> None:
        pass


def test_drives_at_once_report_what_each_drive_alone_reports(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")
    flip_byte(drives[1] / segment_name(1), 5000)
    (drives[2] / "stray.txt").write_bytes(b"stray\n")
    alone = [verify([str(d)]) for d in drives]
    progress = Drives()
    together = verify([str(d) for d in drives], at_once=4, progress=progress)
    assert [untimed(r.to_json()) for r in together.drives] == [untimed(a.drives[0].to_json()) for a in alone]
    assert [r.status for r in together.drives] == ["intact", "damaged", "unexpected_files", "intact"]
    assert together.to_json()["resend"] == alone[1].to_json()["resend"] and together.to_json()["resend"]["paths"]
    # Each drive on a thread of its own, its bytes told through its own line.
    assert sorted(progress.opened) == [f"drive-000{n}" for n in range(1, 5)]
    assert len(set(progress.threads.values())) == 4
    assert progress.done == {r.label: r.bytes_checked for r in together.drives if r.label}
    assert progress.started == sum(progress.done.values())
    jsonschema.validate(together.to_json(), SCHEMA)


def test_each_result_is_handed_over_as_soon_as_its_drive_is_done(tmp_path: Path) -> None:
    """drive-0001 does not read on until drive-0002's report is handed over: at once, drive-0002 comes first (one
    after the other, the held drive would wait in vain and fail the run); the report keeps the order given."""
    drives = four_drives(tmp_path / "ship")[:2]
    progress = Drives(hold="drive-0001")
    handed: list[str | None] = []

    def on_drive(report: DriveReport) -> None:
        handed.append(report.label)
        handed.append(threading.current_thread().name)
        if report.label == "drive-0002":
            progress.release.set()

    report = verify([str(d) for d in drives], at_once=2, progress=progress, on_drive=on_drive)
    assert handed == ["drive-0002", "MainThread", "drive-0001", "MainThread"]  # on the caller's thread
    assert [r.label for r in report.drives] == ["drive-0001", "drive-0002"] and report.ok


def test_a_drive_failing_midway_stops_only_that_drive(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")
    report = verify([str(d) for d in drives], at_once=4, progress=Drives(fail="drive-0003"))
    assert [r.status for r in report.drives] == ["intact", "intact", "unreadable", "intact"]
    failed = report.drives[2]
    assert [p.kind for p in failed.problems] == ["unreadable"]
    assert os.strerror(errno.EIO) in failed.problems[0].message
    assert all(r.bytes_checked == _stored(r) for r in report.drives if r.ok)
    assert verify_code(report) == ExitCode.PROBLEMS
    jsonschema.validate(report.to_json(), SCHEMA)


def _stored(report: DriveReport) -> int:
    segments = os.path.join(report.path, "segments")
    return sum(os.path.getsize(os.path.join(segments, name)) for name in os.listdir(segments))


class StopsAt(StateDir):
    """verify's progress, with Ctrl-C pressed as it is saved for drive ``number`` (in that drive's thread)."""

    def __init__(self, path: Path, number: int) -> None:
        super().__init__(str(path))
        self.number = number

    def save(self, state: VerifyState) -> None:
        if state.key.split("-")[1] == f"{self.number:04d}":
            raise KeyboardInterrupt
        super().save(state)


def test_ctrl_c_in_one_drive_thread_stops_the_run(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")
    with pytest.raises(KeyboardInterrupt):
        verify([str(d) for d in drives], at_once=4, state_dir=StopsAt(tmp_path / "state", 2))
    # The next run resumes the drives whose segment was saved, and finishes.
    report = verify([str(d) for d in drives], at_once=4, state_dir=StateDir(str(tmp_path / "state")))
    assert report.ok


def test_a_file_spanning_drives_checked_at_once_must_fit_its_pieces(tmp_path: Path) -> None:
    drives = write_shipment(tmp_path / "ship", spanning_file([(0, b"x" * 100), (150, b"y" * 50)], 200, b"z" * 200))
    report = verify([str(d) for d in drives], at_once=2)
    assert report.drives[1].status == Status.DAMAGED.value
    assert any("restore cannot assemble it" in p.message for p in report.drives[1].problems)


def test_the_drives_of_the_shipment_given_missing_and_twice(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")
    copy = tmp_path / "copy-of-2"
    shutil.copytree(drives[1], copy)
    given = [drives[0], drives[1], copy, drives[3]]
    code, out, _ = run("verify", "--at-once", "4", *given)
    assert code == 0, out
    assert f"drive-0002 was given 2 times ({drives[1]}, {copy}): each was checked" in out
    assert "not given: drive-0003 (1 of the shipment's 4 drives): verify it too when it arrives" in out
    report = verify([str(d) for d in given], at_once=4)
    shipment = report.to_json()["shipment"]
    assert shipment["listed"] == [f"drive-000{n}" for n in range(1, 5)]
    assert shipment["given"] == ["drive-0001", "drive-0002", "drive-0004"]
    assert shipment["missing"] == ["drive-0003"]
    assert shipment["duplicated"] == {"drive-0002": [str(drives[1]), str(copy)]}
    assert [r.status for r in report.drives] == ["intact"] * 4


def test_json_of_drives_at_once_is_in_the_order_given_with_times(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")[::-1]
    code, out, _ = run("verify", "--json", "--at-once", "4", *drives)
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert code == 0 and [d["path"] for d in report["drives"]] == [str(d) for d in drives]
    assert all(d["seconds"] > 0 and d["bytes_per_second"] > 0 for d in report["drives"])
    assert report["seconds"] > 0 and report["bytes_per_second"] > 0
    assert report["shipment"]["missing"] == []


def test_bad_at_once_is_refused(tmp_path: Path) -> None:
    drives = four_drives(tmp_path / "ship")[:1]
    code, out, err = run("verify", "--at-once", "0", *drives)
    assert code == 2 and out == "" and "Traceback" not in err
    with pytest.raises(UsageError):
        verify([str(drives[0])], at_once=0)


# --- which drives go at once ---------------------------------------------------------------------------------


def given(*keys: tuple[str, int] | None) -> list[Any]:
    from sneakernet.drive import DriveKey, GivenDrive

    return [
        GivenDrive(f"/d{i}") if key is None else GivenDrive(f"/d{i}", key[0], DriveKey("data", key[1]))
        for i, key in enumerate(keys)
    ]


def test_drives_of_one_device_take_turns_and_others_go_at_once() -> None:
    drives = given(("s", 1), ("s", 2), ("s", 3), None)
    assert drive_queues(drives, [10, 11, 10, 12], None) == [[0, 2], [1], [3]]
    assert drive_queues(drives, [10, 10, 10, 10], None) == [[0, 1, 2, 3]]
    assert drive_queues(drives, [None, None, None, None], None) == [[0], [1], [2], [3]]


def test_copies_of_one_drive_take_turns_whatever_their_devices() -> None:
    drives = given(("s", 1), ("s", 2), ("s", 1), ("t", 1))
    assert drive_queues(drives, [10, 11, 12, 13], None) == [[0, 2], [1], [3]]
    assert drive_queues(drives, [10, 11, 12, 13], 8) == [[0, 2], [1], [3]]


def test_at_once_deals_the_drives_to_that_many_queues() -> None:
    drives = given(*[("s", n) for n in range(1, 6)])
    assert drive_queues(drives, [1] * 5, 2) == [[0, 2, 4], [1, 3]]
    assert drive_queues(drives, [1] * 5, 1) == [[0, 1, 2, 3, 4]]


def test_verify_report_without_drive_set_still_renders() -> None:
    assert VerifyReport([]).to_json()["shipment"] is None
