"""pack --parity 1 beside the same pack without parity (issue 15's target: at most 1.35x the time), side by side.

Makes a tree of incompressible files (8 x 50 MB by default), then alternates, round after round, ``sneakernet pack
SRC --out OUT --drive-size SIZE -q`` without and with ``--parity M`` (and, with ``--at-once N``, both sides with
lanes), each a fresh output, and times each run's wall clock (interpreter start-up included, as a user sees it).
Prints every run, the medians and their ratio. Everything goes under ``--dir`` (default: /dev/shm, tmpfs, so the
drives are not what is measured); the machine's other load lands on both sides alike since they alternate.

    python bench/pack_parity.py                       # 400 MB onto 4 drives of 110 MB, --parity 1, 5 rounds
    python bench/pack_parity.py --at-once 4 --rounds 7
    python bench/pack_parity.py --rate 40MB/s --at-once 4 --rounds 5   # onto throttled drives (root, FUSE)

With ``--rate`` the drives are what a user's are, the limit: 4 data drives and one parity drive, each a FUSE mount
of bench/throttle_fs.py throttled to RATE (bench/drives.py's ``Drives``: their backings, the tree and the parity
work directory in a tmpfs of the run, so that only the throttle limits a drive). Both sides pack onto the same 4 data
drives written at once (``--drive D1 ... --drive D4 --at-once 4``); the parity side adds ``--parity 1
--parity-drive D5 --parity-dir WORK`` (the 5th drive is mounted, idle, on the other side too). The drives are
emptied through their backings between runs (not timed). ``--at-once`` defaults to the data drives' number there.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def make_tree(root: str, files: int, size: int) -> None:
    os.makedirs(root)
    for index in range(files):
        with open(os.path.join(root, f"f{index}.bin"), "wb") as handle:
            handle.write(os.urandom(size))


def timed_pack(source: str, out: str, drive_size: str, parity: int, at_once: int) -> tuple[float, float]:
    """The run's wall clock seconds and CPU seconds (user + system of it and its lanes: less at the mercy of the
    machine's other load than the wall clock)."""
    command = [sys.executable, "-m", "sneakernet", "pack", source, "--out", out, "--drive-size", drive_size, "-q"]
    command += ["--at-once", str(at_once)] if at_once > 1 else []
    command += ["--parity", str(parity)] if parity else []
    seconds, cpu = timed(command)
    drives = sorted(name for name in os.listdir(out) if name.startswith(("drive-", "parity-")))
    assert sum(name.startswith("parity-") for name in drives) == parity, drives
    shutil.rmtree(out)
    return seconds, cpu


def timed(command: list[str]) -> tuple[float, float]:
    """``command``'s wall clock and CPU seconds (user + system of it and of the processes it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


class ThrottledRuns:
    """Both sides onto throttled FUSE drives (``--rate``): data drives 1 ... N and parity drives N + 1 ..., all
    mounted for every run; the tree and the parity work directory in the drives' tmpfs."""

    def __init__(self, args: argparse.Namespace, data_drives: int) -> None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import drives  # bench/drives.py: the throttled mounts

        self.args, self.data_drives = args, data_drives
        total = args.files * args.file_size
        # The backings (the data once, its parity, the tree's copy and the parity rows) and room to spare.
        ram = 2 * total + 2 * args.parity * (total // data_drives) + (256 << 20)
        capacity = drives.parse_size(args.drive_size)
        self.mounts = drives.Drives(Path(args.workdir), data_drives + args.parity, args.rate, capacity, ram)

    def __enter__(self) -> ThrottledRuns:
        self.mounts.__enter__()
        if self.mounts.ram is None or not os.path.ismount(self.mounts.ram):
            self.mounts.__exit__()
            raise SystemExit("pack_parity.py --rate: no tmpfs for the drives' backings (run as root)")
        self.source = str(self.mounts.ram / "src")
        shutil.rmtree(self.source, ignore_errors=True)
        make_tree(self.source, self.args.files, self.args.file_size)
        self.work = str(self.mounts.ram / "parity-work")
        return self

    def __exit__(self, *exc: object) -> None:
        self.mounts.__exit__()

    def pack(self, parity: int, at_once: int) -> tuple[float, float]:
        self.mounts.empty()
        data = [str(m) for m in self.mounts.mounts[: self.data_drives]]
        command = [sys.executable, "-m", "sneakernet", "pack", self.source, "-q", "--at-once", str(at_once)]
        command += [arg for mount in data for arg in ("--drive", mount)]
        if parity:
            command += ["--parity", str(parity), "--parity-dir", self.work]
            command += [
                arg
                for mount in self.mounts.mounts[self.data_drives :][:parity]
                for arg in ("--parity-drive", str(mount))
            ]
        seconds, cpu = timed(command)
        used = [m for m in self.mounts.mounts if (m / "drive.json").exists()]
        assert len(used) == len(data) + parity, used
        return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/dev/shm", help="where the tree and the drives go (default: /dev/shm)")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-size", type=int, default=50_000_000)
    parser.add_argument("--drive-size", default="110MB", help="drive size (default 110MB: 4 data drives)")
    parser.add_argument("--parity", type=int, default=1)
    parser.add_argument("--at-once", type=int, default=None, help="lanes (default: 1; with --rate, the data drives)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", default=None, help="drives throttled to RATE (FUSE mounts, root): e.g. 40MB/s")
    parser.add_argument("--data-drives", type=int, default=4, help="with --rate: the data drives mounted")
    parser.add_argument("--workdir", default="/tmp/sneakernet-pack-parity", help="with --rate: the mounts' place")
    args = parser.parse_args()
    if args.rate:
        at_once = args.at_once or args.data_drives
        with ThrottledRuns(args, args.data_drives) as runs:
            compare(args, lambda parity: runs.pack(parity, at_once), f"onto drives of {args.rate}, --at-once {at_once}")
        return
    at_once = args.at_once or 1
    work = tempfile.mkdtemp(prefix="sneakernet-pack-parity-", dir=args.dir)
    try:
        source = os.path.join(work, "src")
        make_tree(source, args.files, args.file_size)
        out = os.path.join(work, "out")
        compare(
            args,
            lambda parity: timed_pack(source, out, args.drive_size, parity, at_once),
            f"--drive-size {args.drive_size}, --at-once {at_once}",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, pack: Callable[[int], tuple[float, float]], what: str) -> None:
    """A warm-up run, then rounds of both sides, their order alternated; every run, the medians and their ratios."""
    plain: list[tuple[float, float]] = []
    with_parity: list[tuple[float, float]] = []
    pack(0)  # warm-up: page cache, bytecode
    for round_number in range(1, args.rounds + 1):
        order = [0, args.parity] if round_number % 2 else [args.parity, 0]
        for parity in order:
            seconds, cpu = pack(parity)
            (with_parity if parity else plain).append((seconds, cpu))
            print(f"round {round_number}  parity {parity}  {seconds:6.2f} s wall  {cpu:6.2f} s CPU", flush=True)
    total = args.files * args.file_size / 1e6
    for kind, index in (("wall", 0), ("CPU", 1)):
        a = statistics.median(run[index] for run in plain)
        b = statistics.median(run[index] for run in with_parity)
        print(
            f"{total:.0f} MB, {what}, {kind}: median pack {a:.2f} s, "
            f"pack --parity {args.parity} {b:.2f} s: {b / a:.2f}x"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
