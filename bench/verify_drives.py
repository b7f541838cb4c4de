#!/usr/bin/env python3
"""Time ``sneakernet verify`` of N drives at once against the same drives one after another and one drive alone.

    python bench/verify_drives.py --drives 4 --drive-bytes 100MB

Packs (once, cached by its parameters) about N x --drive-bytes of incompressible data onto N drives, puts the drives
where they are to be read (``--dirs DIR...``: one directory per drive, e.g. the mount points of throttled FUSE drives or
of real disks; by default N directories of the work directory, a tmpfs when run as root), then times each way
alternately (A B C A B C ...), ``--repeats`` times, and reports medians:

* **read**: ``cat DRIVE1/segments/* > /dev/null``, what one drive gives a plain reader;
* **one**: ``sneakernet verify --restart DRIVE1``, one drive alone;
* **in turn**: ``sneakernet verify --restart --at-once 1 DRIVE...``, the N drives one after another (what verify
  did before it checked drives at once);
* **at once**: ``sneakernet verify --restart --at-once N DRIVE...``.

Each as stored bytes per second, and the two N-drive ways as a multiple of one drive's rate measured in the same run
(issue 14's acceptance: at least 3x with 4 drives throttled to 40 MB/s); peak RSS from ``os.wait4``. With ``--throttle
40MB/s`` each drive is served by its own throttle_fs.py process (a read-only FUSE view throttled to that rate, beside
this script; it needs libfuse3 and mfusepy, in the Python given by ``--fuse-python``), as a USB drive of that speed
would serve it, mounted afresh before each run (an empty page cache). With ``--drop-caches`` (root), the page cache is
dropped before each run, so that drives on disks are read from them. ``--mode deep`` times ``--deep`` (zstd decoding and
whole-file hashes) instead of the default check.

Standard library only (the --throttle servers need mfusepy); helpers are shared with compare.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compare import (
    MB,
    REPO,
    BenchError,
    Command,
    find_sneakernet,
    machine_summary,
    note,
    parse_size,
    run_checked,
    show_size,
    try_mount,
    unmount,
)

GENERATOR_VERSION = 1
FILE_BYTES = 8 * 2**20
DEFAULT_WORKDIR = Path("/tmp/sneakernet-bench-verify")


def write_source(root: Path, total: int, seed: int) -> None:
    """``total`` bytes of incompressible data in files of FILE_BYTES (the last one shorter)."""
    root.mkdir(parents=True)
    left, number = total, 0
    while left > 0:
        size = min(FILE_BYTES, left)
        (root / f"f{number:05d}.bin").write_bytes(os.urandom(size) if seed < 0 else _seeded(seed, number, size))
        left -= size
        number += 1


def _seeded(seed: int, number: int, size: int) -> bytes:
    import random

    return random.Random(f"{seed}:{number}").randbytes(size)


def ensure_packed(sneakernet: str, workdir: Path, drives: int, drive_bytes: int, seed: int) -> Path:
    """The packed drives (``staging/drive-0001`` ...), made once for these parameters."""
    key = {"version": GENERATOR_VERSION, "drives": drives, "drive_bytes": drive_bytes, "seed": seed}
    staging = workdir / "staging"
    stamp = workdir / "staging.json"
    if stamp.exists() and json.loads(stamp.read_text()) == key:
        return staging
    shutil.rmtree(workdir / "source", ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    # Drives a little larger than their share, so that pack fills exactly ``drives`` of them (incompressible data
    # is stored as it is, plus the manifest and the catalog).
    write_source(workdir / "source", drives * drive_bytes, seed)
    size = drive_bytes + drive_bytes // 50 + 2 * MB
    log = workdir / "pack"
    run_checked(
        Command([sneakernet, "pack", str(workdir / "source"), "--out", str(staging), "--drive-size", str(size), "-q"]),
        log,
    )
    made = sorted(p for p in staging.iterdir() if p.name.startswith("drive-"))
    if len(made) != drives:
        raise BenchError(f"pack made {len(made)} drives, not {drives}: adjust --drive-bytes")
    shutil.rmtree(workdir / "source")
    stamp.write_text(json.dumps(key))
    return staging


def place_drives(staging: Path, dirs: list[Path]) -> list[Path]:
    """Copy each staged drive into its directory (once: a drive already there with the same drive.json stays)."""
    placed = []
    for index, target in enumerate(dirs):
        source = staging / f"drive-{index + 1:04d}"
        drive = target / source.name
        label = source / "drive.json"
        if not (drive / "drive.json").exists() or (drive / "drive.json").read_bytes() != label.read_bytes():
            shutil.rmtree(drive, ignore_errors=True)
            shutil.copytree(source, drive)
        placed.append(drive)
    return placed


def stored_bytes(drive: Path) -> int:
    return int(json.loads((drive / "drive.json").read_text())["stored_bytes"])


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def mount_throttled(drives: list[Path], mounts: Path, rate: str, python: str) -> tuple[list[Path], list[Any]]:
    """Serve each drive's directory through its own throttled FUSE view; the drives as mounted, and the servers."""
    script = Path(__file__).resolve().parent / "throttle_fs.py"
    served, servers = [], []
    for drive in drives:
        mountpoint = mounts / drive.parent.name
        mountpoint.mkdir(parents=True, exist_ok=True)
        command = [python, str(script), str(drive.parent), str(mountpoint), "--rate", rate, "--read-only"]
        servers.append(subprocess.Popen(command))
        served.append(mountpoint / drive.name)
    deadline = time.monotonic() + 30
    while not all(os.path.ismount(d.parent) for d in served):
        if time.monotonic() > deadline or any(s.poll() is not None for s in servers):
            unmount_throttled(served, servers)
            raise BenchError("the throttled FUSE drives did not mount (libfuse3 and mfusepy installed? root?)")
        time.sleep(0.1)
    return served, servers


def unmount_throttled(served: list[Path], servers: list[Any]) -> None:
    for drive in served:
        subprocess.run(["fusermount3", "-u", str(drive.parent)], capture_output=True)
    for server in servers:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drives", type=int, default=4)
    parser.add_argument("--drive-bytes", type=parse_size, default=parse_size("100MB"))
    parser.add_argument("--dirs", type=Path, nargs="*", help="one directory per drive (default: in the workdir)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=["full", "deep"], default="full")
    parser.add_argument("--threads", type=int, default=0, help="verify --threads (0: one per core)")
    parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before each run (root)")
    parser.add_argument("--throttle", metavar="RATE", help="serve each drive through a FUSE view of that rate")
    parser.add_argument("--fuse-python", default=sys.executable, help="the Python with mfusepy, for --throttle")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/DATE-verify-drives.json)")
    args = parser.parse_args()
    if args.drives < 1 or (args.dirs and len(args.dirs) != args.drives):
        parser.error("give --drives N of at least 1, and as many --dirs as drives")
    sneakernet = find_sneakernet()
    args.workdir.mkdir(parents=True, exist_ok=True)
    mounted, why = False, "--dirs given"
    if not args.dirs:
        # The drives in RAM: what is measured is verify's work, not a disk's.
        (args.workdir / "drives").mkdir(exist_ok=True)
        why = try_mount(args.workdir / "drives", int(args.drives * args.drive_bytes * 1.1) + 64 * MB, 0)
        mounted = not why
    staging = ensure_packed(sneakernet, args.workdir, args.drives, args.drive_bytes, args.seed)
    dirs = args.dirs or [args.workdir / "drives" / f"d{n}" for n in range(1, args.drives + 1)]
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
    drives = place_drives(staging, dirs)
    served: list[Path] = []
    servers: list[Any] = []
    if args.throttle:
        # Mounted afresh before each run (below): what a run read stays in the page cache until then.
        served, servers = mount_throttled(drives, args.workdir / "mnt", args.throttle, args.fuse_python)
        placed, drives = drives, served
    state = args.workdir / "state"
    base = [sneakernet, "verify", "--restart", "-q", "--threads", str(args.threads)]
    if args.mode == "deep":
        base.append("--deep")
    segments = sorted(str(p) for p in (drives[0] / "segments").iterdir())
    ways = {
        "read": (["bash", "-c", 'cat "$@" > /dev/null', "cat", *segments], sum(os.path.getsize(p) for p in segments)),
        "one": ([*base, str(drives[0])], stored_bytes(drives[0])),
        "in_turn": ([*base, "--at-once", "1", *map(str, drives)], sum(map(stored_bytes, drives))),
        "at_once": ([*base, "--at-once", str(args.drives), *map(str, drives)], sum(map(stored_bytes, drives))),
    }
    runs: dict[str, list[tuple[float, int]]] = {way: [] for way in ways}
    try:
        for repeat in range(args.repeats):
            for way, (argv, _) in ways.items():
                if args.drop_caches:
                    drop_caches()
                if args.throttle:
                    unmount_throttled(served, servers)
                    served, servers = mount_throttled(placed, args.workdir / "mnt", args.throttle, args.fuse_python)
                log = args.workdir / f"{way}-{repeat}"
                seconds, rss = run_checked(Command(argv, env={"SNEAKERNET_STATE_DIR": str(state)}), log)
                runs[way].append((seconds, rss))
                note(f"{way} #{repeat + 1}: {seconds:.2f} s, {show_size(ways[way][1] / seconds)}/s, {rss // 1024} MiB")
    finally:
        if served:
            unmount_throttled(served, servers)
        if mounted:
            unmount(args.workdir / "drives")
    results: dict[str, Any] = {}
    for way, (argv, size) in ways.items():
        seconds = statistics.median(s for s, _ in runs[way])
        results[way] = {
            "command": " ".join(argv),
            "bytes": size,
            "median_seconds": round(seconds, 3),
            "rate_mb_s": round(size / seconds / MB, 1),
            "max_rss_mib": round(max(r for _, r in runs[way]) / 1024, 1),
            "seconds": [round(s, 3) for s, _ in runs[way]],
        }
    one, drive = results["one"]["rate_mb_s"], results["read"]["rate_mb_s"]
    for way in ("in_turn", "at_once"):
        results[way]["x_one_drive"] = round(results[way]["rate_mb_s"] / one, 2)
    for way in ("one", "in_turn", "at_once"):
        results[way]["x_drive_read"] = round(results[way]["rate_mb_s"] / drive, 2)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_summary(sneakernet, args.workdir),
        "drives": args.drives,
        "drive_bytes": args.drive_bytes,
        "where": [str(d) for d in dirs] if args.dirs else f"{args.workdir / 'drives'} ({'tmpfs' if mounted else why})",
        "mode": args.mode,
        "threads": args.threads,
        "drop_caches": args.drop_caches,
        "throttle": args.throttle,
        "results": results,
    }
    out = args.out or REPO / "bench" / "results" / f"{report['date'][:10]}-verify-drives.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    through = f", each throttled to {args.throttle}" if args.throttle else ""
    print(f"{args.drives} drives of {show_size(args.drive_bytes)}{through}, {args.mode}, medians of {args.repeats}:")
    for way, result in results.items():
        times = f", {result['x_one_drive']}x one drive's verify" if "x_one_drive" in result else ""
        times += f", {result['x_drive_read']}x the drive's read" if "x_drive_read" in result else ""
        print(
            f"  {way:8} {result['median_seconds']:8.2f} s  {result['rate_mb_s']:8.1f} MB/s{times}, "
            f"peak RSS {result['max_rss_mib']} MiB"
        )
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
