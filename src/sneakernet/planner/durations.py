"""How long pack, verify and restore take with N drives written (read) at once at a given drive speed: plan's
``--at-once N --drive-speed RATE`` (issue [drives]). Pure arithmetic over the plan's estimates, no I/O.

A drive does one thing at a time at its speed, so a step on N drives at once moves N times one drive's bytes a
second, as long as every drive has its share of the work: pack cuts the walk into N lanes of similar size
(docs/format.md 19.3), each filling its own drives one after another, so the step takes about the stored bytes
over N drives' speed. Pack also needs its CPU work (the sample's estimate), which lanes share: it takes the
longer of the two. Verify reads every stored byte once (hashing is far faster than a drive); restore reads them
once too: the destination's own speed is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepTimes:
    """The estimated seconds of each step with ``at_once`` drives at once, and one drive at a time for
    comparison; ``drives`` is the estimated drive count with that many lanes (each lane's last drive is its own)."""

    at_once: int
    lanes: int
    drive_speed: float
    drives: int
    pack_seconds: float
    pack_limited_by: str
    verify_seconds: float
    restore_seconds: float
    one_at_a_time: tuple[float, float, float]

    def to_json(self) -> dict[str, Any]:
        pack, verify, restore = self.one_at_a_time
        return {
            "at_once": self.at_once,
            "lanes": self.lanes,
            "drive_speed_bytes_per_second": round(self.drive_speed),
            "drives_needed": self.drives,
            "pack_seconds": round(self.pack_seconds, 1),
            "pack_limited_by": self.pack_limited_by,
            "verify_seconds": round(self.verify_seconds, 1),
            "restore_seconds": round(self.restore_seconds, 1),
            "one_at_a_time": {
                "pack_seconds": round(pack, 1),
                "verify_seconds": round(verify, 1),
                "restore_seconds": round(restore, 1),
            },
        }


def lanes_drives(stored_bytes: int, full_drive_bytes: int, drives_one_lane: int, lanes: int) -> int:
    """Drives needed when ``lanes`` lanes each fill their own: each lane holds its share of ``stored_bytes``, on
    drives holding ``full_drive_bytes`` each (a full drive's chunk bytes in the one-lane plan); never fewer than
    the one-lane plan, nor than one drive a lane."""
    if lanes <= 1 or full_drive_bytes <= 0:
        return max(drives_one_lane, 1)
    per_lane = math.ceil(stored_bytes / lanes / full_drive_bytes) if stored_bytes else 1
    return max(drives_one_lane, lanes * max(per_lane, 1))


def step_times(
    stored_bytes: int, drives_one_lane: int, full_drive_bytes: int, entries: int, at_once: int, drive_speed: float,
    pack_cpu_seconds: float,
) -> StepTimes:  # fmt: skip
    """Each step's seconds with ``at_once`` drives at ``drive_speed`` bytes a second (see the module's docstring);
    a walk of fewer ``entries`` than ``at_once`` gets one lane an entry, as pack cuts it."""
    lanes = max(1, min(at_once, entries))
    drives = lanes_drives(stored_bytes, full_drive_bytes, drives_one_lane, lanes)
    busy = min(lanes, drives)
    moving = stored_bytes / (busy * drive_speed)
    alone = stored_bytes / drive_speed
    return StepTimes(
        at_once=at_once,
        lanes=lanes,
        drive_speed=drive_speed,
        drives=drives,
        pack_seconds=max(moving, pack_cpu_seconds),
        pack_limited_by="drives" if moving >= pack_cpu_seconds else "cpu",
        verify_seconds=moving,
        restore_seconds=moving,
        one_at_a_time=(max(alone, pack_cpu_seconds), alone, alone),
    )
