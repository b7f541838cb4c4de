#!/usr/bin/env python3
"""restore from N throttled drives: all at once (one ``restore D1 ... DN``) against one after another (one
``restore Dk`` per drive, as before drives were read at once), as multiples of one drive's read rate measured in
the same run.

    python bench/restore_drives.py --drives 4 --rate 40MB/s --size 400MB        # issue 14's restore figure

The drives are bench/drives.py's FUSE mounts (bench/throttle_fs.py processes, their backings in a tmpfs) throttled
to ``--rate`` (fuse3 and the bench extra's mfusepy; root).
The dataset (``--size`` bytes of incompressible files of ``--file-size``) is packed once with ``pack --out`` into
``--workdir``, N drives of about ``--size / N`` each (not throttled, not timed), and each drive is copied onto its
mount; so this measures restore alone, whatever pack can do. Each repeat drops the page cache before each timed
restore and restores into a fresh directory of a tmpfs (/dev/shm). Reported per repeat: wall seconds of both,
the at-once run's peak RSS (``/usr/bin/time``) and its own rate from ``--json`` (``bytes_per_second``: the data
written over restore's writing, interpreter start, checks and finish aside); medians as multiples of one drive's
read rate. Nothing of this runs in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drives import Drives, drop_caches, make_dataset, parse_size, probe, sneakernet

INTO = Path("/dev/shm/sneakernet-restore-drives")


def packed_drives(tool: str, data: Path, staging: Path, count: int, size: int) -> list[Path]:
    """The dataset packed onto ``count`` drives under ``staging`` (once; kept for later runs)."""
    marker = staging / ".complete"
    if not marker.exists():
        shutil.rmtree(staging, ignore_errors=True)
        # A little over a drive's share: the last drive takes the rest, none is left empty.
        share = size // count + 4 * 10**6
        subprocess.run([tool, "pack", str(data), "--out", str(staging), "--drive-size", str(share), "-q"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        marker.write_text("")
    drives = sorted(p for p in staging.iterdir() if p.name.startswith("drive-"))
    if len(drives) != count:
        raise SystemExit(f"packed {len(drives)} drives, not {count}: remove {staging} and choose another --size")
    return drives


def timed_restore(tool: str, drives: list[Path], rss_file: Path | None = None) -> tuple[float, dict[str, Any]]:
    """Seconds of one restore of ``drives`` into a fresh INTO (page cache dropped first), and its --json."""
    shutil.rmtree(INTO, ignore_errors=True)
    drop_caches()
    command = [tool, "restore", *map(str, drives), "--into", str(INTO), "-q", "--json"]
    if rss_file is not None:
        command = ["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *command]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return seconds, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drives", type=int, default=4)
    parser.add_argument("--rate", default="40MB/s")
    parser.add_argument("--size", default="400MB")
    parser.add_argument("--file-size", default="8MB")
    parser.add_argument("--probe", default="64MB", help="bytes written and read to measure one drive")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/sneakernet-restore-drives")
    args = parser.parse_args()
    tool = sneakernet()
    subprocess.run([tool, "--version"], check=True, stdout=subprocess.DEVNULL)
    work = Path(args.workdir)
    size = make_dataset(work / "data", parse_size(args.size), parse_size(args.file_size))
    staged = packed_drives(tool, work / "data", work / f"staging-{args.drives}", args.drives, size)
    at_once: list[float] = []
    one_by_one: list[float] = []
    rss: list[int] = []
    own: list[int] = []
    reads: list[float] = []
    ram = 2 * size + parse_size(args.probe) + (256 << 20) if os.geteuid() == 0 else 0  # the backings in a tmpfs
    with Drives(work, args.drives, args.rate, None, ram) as mounted:
        mounted.empty()
        drives = []
        for source, mount in zip(staged, mounted.mounts, strict=True):
            shutil.copytree(source, mount / source.name)
            drives.append(mount / source.name)
        for _ in range(args.repeats):
            reads.append(probe(mounted.mounts[0], parse_size(args.probe))[1])
            seconds, report = timed_restore(tool, drives, work / "rss")
            at_once.append(seconds)
            rss.append(int((work / "rss").read_text().split()[-1]) // 1024)
            own.append(report["bytes_per_second"])
            one_by_one.append(sum(timed_restore(tool, [drive])[0] for drive in drives))
        shutil.rmtree(INTO, ignore_errors=True)
    read_rate = statistics.median(reads)
    results = {
        "drives": args.drives,
        "rate_limit": args.rate,
        "dataset_bytes": size,
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
        "one_drive_read_mb_s": round(read_rate / 1e6, 1),
        "at_once_seconds": [round(s, 2) for s in at_once],
        "at_once_peak_rss_mb": rss,
        "at_once_own_mb_s": [round(b / 1e6, 1) for b in own],
        "one_by_one_seconds": [round(s, 2) for s in one_by_one],
        "at_once_x_one_drive": round(size / statistics.median(at_once) / read_rate, 2),
        "at_once_own_x_one_drive": round(statistics.median(own) / read_rate, 2),
        "one_by_one_x_one_drive": round(size / statistics.median(one_by_one) / read_rate, 2),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
