"""pack --parity 1 beside the same pack without parity (issue 15's target: at most 1.35x the time), side by side.

Makes a tree of incompressible files (8 x 50 MB by default), then alternates, round after round, ``sneakernet pack
SRC --out OUT --drive-size SIZE -q`` without and with ``--parity M`` (and, with ``--at-once N``, both sides with
lanes), each a fresh output, and times each run's wall clock (interpreter start-up included, as a user sees it).
Prints every run, the medians and their ratio. Everything goes under ``--dir`` (default: /dev/shm, tmpfs, so the
drives are not what is measured); the machine's other load lands on both sides alike since they alternate.

    python bench/pack_parity.py                       # 400 MB onto 4 drives of 110 MB, --parity 1, 5 rounds
    python bench/pack_parity.py --at-once 4 --rounds 7
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    drives = sorted(name for name in os.listdir(out) if name.startswith(("drive-", "parity-")))
    assert sum(name.startswith("parity-") for name in drives) == parity, drives
    shutil.rmtree(out)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/dev/shm", help="where the tree and the drives go (default: /dev/shm)")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-size", type=int, default=50_000_000)
    parser.add_argument("--drive-size", default="110MB", help="drive size (default 110MB: 4 data drives)")
    parser.add_argument("--parity", type=int, default=1)
    parser.add_argument("--at-once", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sneakernet-pack-parity-", dir=args.dir)
    try:
        source = os.path.join(work, "src")
        make_tree(source, args.files, args.file_size)
        out = os.path.join(work, "out")
        plain: list[tuple[float, float]] = []
        with_parity: list[tuple[float, float]] = []
        timed_pack(source, out, args.drive_size, 0, args.at_once)  # warm-up: page cache, bytecode
        for round_number in range(1, args.rounds + 1):
            order = [0, args.parity] if round_number % 2 else [args.parity, 0]
            for parity in order:
                seconds, cpu = timed_pack(source, out, args.drive_size, parity, args.at_once)
                (with_parity if parity else plain).append((seconds, cpu))
                print(f"round {round_number}  parity {parity}  {seconds:6.2f} s wall  {cpu:6.2f} s CPU", flush=True)
        total = args.files * args.file_size / 1e6
        for what, index in (("wall", 0), ("CPU", 1)):
            a = statistics.median(run[index] for run in plain)
            b = statistics.median(run[index] for run in with_parity)
            print(
                f"{total:.0f} MB, --drive-size {args.drive_size}, --at-once {args.at_once}, {what}: median pack "
                f"{a:.2f} s, pack --parity {args.parity} {b:.2f} s: {b / a:.2f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
