#!/usr/bin/env python3
"""pack --encrypt-to beside the same pack without encryption (issue 16's target: at most 1.10x the time), side by side.

Generates bench/compare.py's ML-like mix (text, JSONL, images, float and int arrays; cached between runs), then
alternates, round after round, ``sneakernet pack SRC --out OUT --drive-size SIZE -q`` without and with
``--encrypt-to RECIPIENT`` (a fresh age recipient), each a fresh output, and times each run's wall clock
(interpreter start-up included, as a user sees it) and CPU time. Prints every run, the medians and their ratios.
Everything goes under ``--dir`` (default /dev/shm, tmpfs, so that the disk is not what is measured); the machine's
other load lands on both sides alike since they alternate (A B, B A, ...). Needs the ``crypt`` extra.

    .venv/bin/python bench/pack_crypto.py                        # 1 GB of the mix onto drives of 400 MB, 7 rounds
    .venv/bin/python bench/pack_crypto.py --size 300MB --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from compare import ensure_dataset, parse_size  # noqa: E402

from sneakernet.crypto.keys import ShipmentIdentity  # noqa: E402


def timed_pack(source: Path, out: str, drive_size: str, recipient: str | None) -> tuple[float, float]:
    """The run's wall clock and CPU seconds (user + system of the pack process and its threads, from wait4)."""
    command = [sys.executable, "-m", "sneakernet", "pack", str(source), "--out", out, "--drive-size", drive_size, "-q"]
    command += ["--encrypt-to", recipient] if recipient else []
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pack failed: {' '.join(command)}")
    assert os.path.isdir(os.path.join(out, "drive-0001", "keys")) == bool(recipient)
    shutil.rmtree(out)
    return seconds, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/dev/shm", help="where the tree and the drives go (default: /dev/shm)")
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="the mix's size (default 1GB)")
    parser.add_argument("--drive-size", default="400MB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cache = Path(args.dir) / "sneakernet-bench-mix"
    source, manifest = ensure_dataset(cache, args.size, parse_size(args.drive_size), args.seed)
    recipient = ShipmentIdentity.generate().recipient
    with tempfile.TemporaryDirectory(prefix="sneakernet-pack-crypto-", dir=args.dir) as work:
        out = os.path.join(work, "out")
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        timed_pack(source, out, args.drive_size, None)  # warm-up: page cache, bytecode
        for round_number in range(1, args.rounds + 1):
            for encrypted in (False, True) if round_number % 2 else (True, False):
                seconds, cpu = timed_pack(source, out, args.drive_size, recipient if encrypted else None)
                runs[encrypted].append((seconds, cpu))
                what = "encrypted" if encrypted else "clear    "
                print(f"round {round_number}  {what}  {seconds:6.2f} s wall  {cpu:6.2f} s CPU", flush=True)
        medians = {side: [statistics.median(run[index] for run in runs[side]) for index in (0, 1)] for side in runs}
        (clear_wall, clear_cpu), (sealed_wall, sealed_cpu) = medians[False], medians[True]
        print(
            f"{manifest['bytes'] / 1e6:.0f} MB of the mix ({manifest['files']} files) onto drives of "
            f"{args.drive_size}, medians of {args.rounds} rounds: pack {clear_wall:.2f} s wall, {clear_cpu:.2f} s "
            f"CPU; pack --encrypt-to {sealed_wall:.2f} s wall, {sealed_cpu:.2f} s CPU: "
            f"{sealed_wall / clear_wall:.3f}x wall, {sealed_cpu / clear_cpu:.3f}x CPU"
        )


if __name__ == "__main__":
    main()
