"""plan --at-once N --drive-speed RATE: how long pack, verify and restore take with N drives at once
(planner/durations.py), in the plan's JSON (validated against docs/plan.schema.json) and its text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import invoke_cli as run
from conftest import write_file
from sneakernet.errors import UsageError
from sneakernet.planner import plan
from sneakernet.planner.durations import lanes_drives, step_times
from test_json import run_json

MB = 10**6


def test_drives_at_once_divide_the_time_of_every_step() -> None:
    times = step_times(400 * MB, 10, 40 * MB, entries=1000, at_once=4, drive_speed=40 * MB, pack_cpu_seconds=1.0)
    assert times.lanes == 4
    assert times.drives == 12  # each lane's 100 MB on drives of 40 MB: 3 drives a lane
    assert (times.pack_seconds, times.verify_seconds, times.restore_seconds) == (2.5, 2.5, 2.5)
    assert times.one_at_a_time == (10.0, 10.0, 10.0)
    assert times.pack_limited_by == "drives"


def test_pack_goes_no_faster_than_its_cpu_work() -> None:
    times = step_times(400 * MB, 10, 40 * MB, entries=1000, at_once=4, drive_speed=40 * MB, pack_cpu_seconds=6.0)
    assert times.pack_seconds == 6.0 and times.pack_limited_by == "cpu"
    assert times.verify_seconds == 2.5  # verify and restore do not wait on pack's CPU


def test_a_walk_of_few_entries_gets_few_lanes() -> None:
    times = step_times(400 * MB, 10, 40 * MB, entries=2, at_once=4, drive_speed=40 * MB, pack_cpu_seconds=0.0)
    assert times.lanes == 2 and times.verify_seconds == 5.0


def test_lanes_need_at_least_the_drives_of_one_lane() -> None:
    assert lanes_drives(400 * MB, 40 * MB, 10, 1) == 10
    assert lanes_drives(400 * MB, 40 * MB, 10, 3) == 12  # 133 MB a lane: 4 drives each
    assert lanes_drives(10 * MB, 40 * MB, 1, 4) == 4  # every lane has a drive of its own
    assert lanes_drives(0, 40 * MB, 1, 2) == 2


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    rng = random.Random(2)
    for i in range(20):
        write_file(tmp_path / "src" / f"f{i:02d}.bin", rng.randbytes(200_000))
    return tmp_path / "src"


def test_plan_states_each_step_at_once_in_its_json(tree: Path) -> None:
    code, data = run_json("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB", "--drive-speed", "40MB/s",
                          "--at-once", "2")  # fmt: skip
    assert code == 0
    at_once = data["at_once"]
    assert at_once["at_once"] == 2 and at_once["lanes"] == 2
    assert at_once["drive_speed_bytes_per_second"] == 40 * MB
    assert at_once["verify_seconds"] == pytest.approx(data["stored_bytes"] / (2 * 40 * MB), abs=0.06)
    assert at_once["one_at_a_time"]["verify_seconds"] == pytest.approx(data["stored_bytes"] / (40 * MB), abs=0.06)
    _, without = run_json("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB")
    assert without["at_once"] is None


def test_plan_says_each_step_at_once_in_its_text(tree: Path) -> None:
    code, out, _ = run("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB", "--drive-speed", "1MB/s",
                       "--at-once", "2")  # fmt: skip
    assert code == 0
    assert "with 2 drives at once at 1 MB/s each: pack " in out
    assert "one drive at a time: pack " in out


def test_at_once_needs_a_drive_speed(tree: Path) -> None:
    code, _, err = run("plan", tree, "--drive-size", "2MB", "--at-once", "2")
    assert code == 2
    assert err.strip() == (
        "sneakernet: error: --at-once goes with --drive-speed RATE, how fast one drive writes (e.g. 250MB/s)"
    )
    with pytest.raises(UsageError, match="at least 1"):
        plan(tree, drive_size=2 * MB, at_once=0, drive_speed="1MB/s")
    with pytest.raises(UsageError, match="cannot read rate"):
        plan(tree, drive_size=2 * MB, drive_speed="fast")


def test_plan_parity_says_the_parity_drives_pack_writes(tree: Path, tmp_path: Path) -> None:
    code, data = run_json("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB", "--segment-size", "4MiB",
                          "--parity", "2")  # fmt: skip
    assert code == 0
    parity = data["parity"]
    assert parity["parity"] == parity["survives_lost_drives"] == 2
    assert parity["data_drives"] == data["drives_needed"] and parity["groups"] == 1
    assert parity["drives_total"] == data["drives_needed"] + 2
    # A parity drive holds whole 4 MiB blocks: over drives of 2 MB it needs more room than a data drive has.
    assert parity["parity_drive_stored_bytes"] == 4 << 20
    assert parity["parity_drive_used_bytes"] > parity["parity_drive_stored_bytes"]
    assert parity["parity_drive_fits"] is False
    assert parity["accumulate_bytes"] == 2 * max(drive["stored_bytes"] for drive in data["drives"])
    code, out, _ = run("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB", "--segment-size", "4MiB",
                       "--parity", "2")  # fmt: skip
    total = data["drives_needed"] + 2
    assert f"any 2 of the {total} drives can be lost or unreadable" in out
    assert "does NOT fit" in out
    code, summary = run_json("pack", tree, "--out", tmp_path / "out", "--drive-size", "2MB", "--chunk-size", "64KiB",
                             "--segment-size", "4MiB", "--parity", "2", "-q")  # fmt: skip
    assert code == 0
    assert len(summary["drives"]) == data["drives_needed"]
    assert [d["stored_bytes"] for d in summary["parity_drives"]] == [parity["parity_drive_stored_bytes"]] * 2
    _, without = run_json("plan", tree, "--drive-size", "2MB", "--chunk-size", "64KiB")
    assert without["parity"] is None
