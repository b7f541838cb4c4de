#!/usr/bin/env python3
"""Drives as the limit: N drives simulated by FUSE mounts throttled to a rate, and sneakernet's pack, verify and
restore onto (from) all of them at once, as multiples of one drive's rate measured in the same run.

    python bench/drives.py run --drives 4 --rate 40MB/s --size 400MB --baseline   # the issue's acceptance run
    python bench/throttle_fs.py BACKING MOUNTPOINT --rate 40MB/s                   # one throttled drive, by hand

Each drive is a process of bench/throttle_fs.py (the one FUSE harness of bench/: a passthrough whose reads and
writes share one token bucket, as a disk does one thing at a time; libfuse3 from Debian's ``fuse3``, ``mfusepy``
from the ``bench`` extra; root). As root, the drives' backing directories and a copy of the dataset are in a tmpfs
of this run (``WORKDIR/ram``): only the throttle limits a drive, and the source is read from memory (the drives
are what is measured, not the machine's one disk, which every simulated drive would otherwise share).

``run`` does, in each of ``--repeats`` repeats (medians reported):

1. **one drive's rate**: ``--probe`` bytes (by default a drive's share of the dataset, what each drive takes in
   the at-once run) written to drive 1 with an fsync, then read back with the page cache dropped (``sync; echo 3
   > /proc/sys/vm/drop_caches``, root);
2. **pack**: with ``--baseline``, ``sneakernet pack DATA --drive D1`` (one drive alone); then ``sneakernet pack
   DATA --drive D1 ... --drive DN --at-once N``, the dataset being ``--size`` bytes of incompressible files;
3. **verify**: ``sneakernet verify D1 ... DN`` after dropping the page cache;
4. **restore**: ``sneakernet restore D1 ... DN --into T`` into a tmpfs, after dropping the page cache.

Each step's aggregate rate is the dataset's bytes over the step's wall time, reported with its multiple of the one
drive's write (pack) or read (verify, restore) rate; and its peak memory, sampled every 50 ms over the command's
whole process tree (with lanes, the pack's lane processes): the largest sum of their RSS (pages shared by forked
processes counted in each), the largest single process, and the largest sum of their PSS (each shared page divided
among its sharers: the memory the step takes). Results go to ``--out`` (JSON) and
stdout. Nothing of this runs in the test suite.
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
import threading
import time
from pathlib import Path
from typing import Any

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
DEFAULT_WORKDIR = "/tmp/sneakernet-drives"


def parse_size(text: str) -> int:
    upper = text.strip().upper().removesuffix("/S")
    for unit in sorted(UNITS, key=len, reverse=True):
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * UNITS[unit])
    return int(upper)


class Drives:
    """N throttled drives under ``workdir``: each a throttle_fs.py process serving ``backing-N`` at ``drive-N``,
    unmounted at the end. As root the backing directories (and a copy of the dataset, ``--data-in-ram``) are in a
    tmpfs of their own, so that only the throttle limits a drive: backings on the machine's disk would make the
    simulated drives share its flushes (pack fsyncs every segment), which separate drives do not."""

    def __init__(self, workdir: Path, count: int, rate: str, drive_size: int | None, ram_bytes: int = 0) -> None:
        self.ram = workdir / "ram" if ram_bytes else None
        self.ram_bytes = ram_bytes
        base = self.ram or workdir
        self.backings = [base / f"backing-{n}" for n in range(1, count + 1)]
        self.mounts = [workdir / f"drive-{n}" for n in range(1, count + 1)]
        self.rate, self.drive_size = rate, drive_size
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Drives:
        for mountpoint in self.mounts:
            if os.path.ismount(mountpoint):
                subprocess.run(["fusermount3", "-u", mountpoint], check=False)
        if self.ram is not None:
            if os.path.ismount(self.ram):
                subprocess.run(["umount", str(self.ram)], check=False)
            self.ram.mkdir(parents=True, exist_ok=True)
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.ram_bytes}", "tmpfs", str(self.ram)])
            if mounted.returncode != 0:
                print("drives.py: no tmpfs for the backings (not root?): they are on disk", file=sys.stderr)
        script = Path(__file__).resolve().with_name("throttle_fs.py")
        for backing, mountpoint in zip(self.backings, self.mounts, strict=True):
            shutil.rmtree(backing, ignore_errors=True)
            backing.mkdir(parents=True)
            mountpoint.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, str(script), str(backing), str(mountpoint), "--rate", self.rate]
            if self.drive_size:
                command += ["--drive-size", str(self.drive_size)]
            self.processes.append(subprocess.Popen(command))
        deadline = time.monotonic() + 30
        while not all(os.path.ismount(m) for m in self.mounts):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.__exit__()
                raise SystemExit("the FUSE mounts did not come up (fuse3 and mfusepy installed? /dev/fuse? root?)")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        for mountpoint in self.mounts:
            subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, stderr=subprocess.DEVNULL)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.ram is not None and os.path.ismount(self.ram):
            subprocess.run(["umount", str(self.ram)], check=False)

    def empty(self) -> None:
        """Every drive emptied through its backing directory (not throttled: not part of any step)."""
        for backing in self.backings:
            for entry in backing.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        raise SystemExit(f"cannot drop the page cache ({exc.strerror}): run as root") from exc


def timed(command: list[str]) -> tuple[float, int, int, int]:
    """Seconds of ``command``, and the peaks of its process tree's memory: the largest sum of RSS, the largest
    process's RSS, the largest sum of PSS (shared pages divided among the processes sharing them; 0 unless root)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peaks = [0, 0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            pids = process_tree(process.pid)
            sizes = [rss(pid) for pid in pids]
            peaks[0], peaks[1] = max(peaks[0], sum(sizes)), max([peaks[1], *sizes])
            peaks[2] = max(peaks[2], sum(pss(pid) for pid in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        said = output.decode(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {said}")
    return seconds, peaks[0], peaks[1], peaks[2]


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from /proc)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    parents[int(name)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sorted(tree)


def rss(pid: int) -> int:
    """``pid``'s resident set in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[21]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def pss(pid: int) -> int:
    """``pid``'s proportional set in bytes (its pages, each shared one divided by its sharers; 0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def probe(drive: Path, size: int) -> tuple[float, float]:
    """One drive's write rate (``size`` bytes with an fsync) and cold read rate, in bytes per second."""
    block = os.urandom(1 << 20)
    path = drive / "probe.bin"
    started = time.monotonic()
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            left -= handle.write(block[:left])
        handle.flush()
        os.fsync(handle.fileno())
    write_rate = size / (time.monotonic() - started)
    drop_caches()
    started = time.monotonic()
    read = 0
    with open(path, "rb") as handle:
        while data := handle.read(1 << 20):
            read += len(data)
    read_rate = read / (time.monotonic() - started)
    path.unlink()
    return write_rate, read_rate


def make_dataset(root: Path, size: int, file_size: int) -> int:
    """``size`` bytes of incompressible files of ``file_size`` (made once, kept: the cache of later runs)."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{size} {file_size}":
        return size
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    left, number = size, 0
    while left > 0:
        count = min(file_size, left)
        (root / f"part-{number:05d}.bin").write_bytes(os.urandom(count))
        left, number = left - count, number + 1
    marker.write_text(f"{size} {file_size}")
    return size


def sneakernet() -> str:
    here = Path(sys.executable).with_name("sneakernet")
    return str(here) if here.exists() else shutil.which("sneakernet") or "sneakernet"


def run(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    size = make_dataset(data, parse_size(args.size), parse_size(args.file_size))
    results = measure(args, workdir, data, size)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


def source_copy(data: Path, drives: Drives) -> Path:
    """The dataset to pack: a copy in the drives' tmpfs (read from memory), else the cache on disk, read once now so
    that pack reads it warm; ``.complete``, the cache's marker, is not part of it."""
    if drives.ram is not None and os.path.ismount(drives.ram):
        copy = drives.ram / "data"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns(".complete"))
        return copy
    (data / ".complete").unlink()
    for path in data.iterdir():
        path.read_bytes()
    return data


def measure(args: argparse.Namespace, workdir: Path, data: Path, size: int) -> dict[str, Any]:
    tool = sneakernet()
    subprocess.run([tool, "--version"], check=True, stdout=subprocess.DEVNULL)
    restore_into = workdir / "restore"
    times: dict[str, list[tuple[float, int, int, int]]] = {}
    rates: list[tuple[float, float]] = []
    steps = args.steps.split(",")
    drive_size = parse_size(args.drive_size) if args.drive_size else None
    # One drive is measured on what each drive takes at once: its share of the dataset (the same burst, the same
    # length of sustained writing).
    probe_bytes = parse_size(args.probe) if args.probe else -(-size // args.drives)
    # The drives' backings (the dataset once, spread over them), the dataset's copy, a probe, and room to spare.
    ram = 2 * size + probe_bytes + (256 << 20) if os.geteuid() == 0 else 0
    with Drives(workdir, args.drives, args.rate, drive_size, ram) as drives:
        source = str(source_copy(data, drives))
        mounts = [str(m) for m in drives.mounts]
        try:
            for _ in range(args.repeats):
                drives.empty()
                rates.append(probe(drives.mounts[0], probe_bytes))
                if args.baseline and "pack" in steps:
                    times.setdefault("pack_one_drive", []).append(timed([tool, "pack", source, "--drive", mounts[0]]))
                    drives.empty()
                drive_args = [arg for m in mounts for arg in ("--drive", m)]
                times.setdefault("pack", []).append(
                    timed([tool, "pack", source, *drive_args, "--at-once", str(len(mounts))])
                )
                used = [m for m in mounts if os.path.exists(os.path.join(m, "drive.json"))]
                if "verify" in steps:
                    drop_caches()
                    times.setdefault("verify", []).append(timed([tool, "verify", *used]))
                if "restore" in steps:
                    _fresh_tmpfs(restore_into, size)
                    drop_caches()
                    times.setdefault("restore", []).append(
                        timed([tool, "restore", *used, "--into", str(restore_into / "into")])
                    )
                    subprocess.run(["umount", str(restore_into)], check=False)
        finally:
            if source == str(data):
                (data / ".complete").write_text(f"{size} {parse_size(args.file_size)}")
    write_rate = statistics.median(r[0] for r in rates)
    read_rate = statistics.median(r[1] for r in rates)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "drives": args.drives,
        "rate_limit": args.rate,
        "dataset_bytes": size,
        "file_size": parse_size(args.file_size),
        "repeats": args.repeats,
        "backings_in_ram": ram > 0,
        "one_drive_write_mb_s": [round(r[0] / 1e6, 1) for r in rates],
        "one_drive_read_mb_s": [round(r[1] / 1e6, 1) for r in rates],
        "load_average": os.getloadavg(),
        "steps": {},
    }
    for step, runs in times.items():
        seconds = [run[0] for run in runs]
        median = statistics.median(seconds)
        rate = size / median
        base = write_rate if step.startswith("pack") else read_rate
        report["steps"][step] = {
            "seconds": [round(s, 2) for s in seconds],
            "median_seconds": round(median, 2),
            "mb_s": round(rate / 1e6, 1),
            "x_one_drive": round(rate / base, 2),
            "peak_rss_tree_mb": round(max(run[1] for run in runs) / 1e6),
            "peak_rss_process_mb": round(max(run[2] for run in runs) / 1e6),
            "peak_pss_tree_mb": round(max(run[3] for run in runs) / 1e6),
        }
    return report


def _fresh_tmpfs(path: Path, size: int) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size * 2 + (64 << 20)}", "tmpfs", str(path)], check=True)
    # restore wants DEST itself new or empty: restore into a directory inside the tmpfs.
    path.joinpath("into").mkdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    many = sub.add_parser("run", help="pack, verify and restore onto N throttled drives at once")
    many.add_argument("--drives", type=int, default=4)
    many.add_argument("--rate", default="40MB/s")
    many.add_argument("--size", default="400MB")
    many.add_argument("--file-size", default="10MB")
    many.add_argument("--drive-size", default=None, help="cap each drive's reported size")
    many.add_argument("--probe", default=None, help="bytes written and read to measure one drive (a drive's share)")
    many.add_argument("--repeats", type=int, default=3)
    many.add_argument("--steps", default="pack,verify,restore")
    many.add_argument("--baseline", action="store_true", help="also pack onto one drive alone")
    many.add_argument("--workdir", default=DEFAULT_WORKDIR)
    many.add_argument("--out", default=None)
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
