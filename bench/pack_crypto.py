#!/usr/bin/env python3
"""pack --encrypt-to beside the same pack without encryption (issue 16's target: at most 1.10x the time), side by side.

Generates bench/compare.py's ML-like mix (text, JSONL, images, float and int arrays; cached between runs), then
alternates, round after round, ``sneakernet pack SRC --out OUT --drive-size SIZE -q`` without and with
``--encrypt-to RECIPIENT --cipher NAME`` (a fresh age recipient; each ``--cipher`` given, by default pack's default,
AES-256-GCM), each a fresh output, and times each run's wall clock (interpreter start-up included, as a user sees
it) and CPU time. Prints every run, the medians and their ratios to the clear pack's. Everything goes under
``--dir`` (default /dev/shm, tmpfs, so that the disk is not what is measured); the machine's other load lands on
every side alike since they alternate (A B C, C B A, ...). Needs the ``crypt`` extra.

    .venv/bin/python bench/pack_crypto.py                        # 1 GB of the mix onto drives of 400 MB, 7 rounds
    .venv/bin/python bench/pack_crypto.py --size 300MB --rounds 5
    .venv/bin/python bench/pack_crypto.py --cipher aes-256-gcm --cipher chacha20-poly1305   # both, side by side
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
from sneakernet.format import CIPHERS, DEFAULT_CIPHER  # noqa: E402


def timed_pack(
    source: Path, out: str, drive_size: str, recipient: str | None, cipher: str | None
) -> tuple[float, float]:
    """The run's wall clock and CPU seconds (user + system of the pack process and its threads, from wait4)."""
    command = [sys.executable, "-m", "sneakernet", "pack", str(source), "--out", out, "--drive-size", drive_size, "-q"]
    command += ["--encrypt-to", recipient, "--cipher", cipher] if recipient and cipher else []
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
    parser.add_argument(
        "--cipher", action="append", choices=CIPHERS, help=f"an encrypted side (repeat; default {DEFAULT_CIPHER})"
    )
    args = parser.parse_args()
    sides: list[str | None] = [None, *(args.cipher or [DEFAULT_CIPHER])]
    cache = Path(args.dir) / "sneakernet-bench-mix"
    source, manifest = ensure_dataset(cache, args.size, parse_size(args.drive_size), args.seed)
    recipient = ShipmentIdentity.generate().recipient
    with tempfile.TemporaryDirectory(prefix="sneakernet-pack-crypto-", dir=args.dir) as work:
        out = os.path.join(work, "out")
        runs: dict[str | None, list[tuple[float, float]]] = {side: [] for side in sides}
        timed_pack(source, out, args.drive_size, None, None)  # warm-up: page cache, bytecode
        for round_number in range(1, args.rounds + 1):
            for side in sides if round_number % 2 else sides[::-1]:
                seconds, cpu = timed_pack(source, out, args.drive_size, recipient if side else None, side)
                runs[side].append((seconds, cpu))
                print(
                    f"round {round_number}  {side or 'clear':17}  {seconds:6.2f} s wall  {cpu:6.2f} s CPU", flush=True
                )
        medians = {side: [statistics.median(run[index] for run in runs[side]) for index in (0, 1)] for side in runs}
        clear_wall, clear_cpu = medians[None]
        print(
            f"{manifest['bytes'] / 1e6:.0f} MB of the mix ({manifest['files']} files) onto drives of "
            f"{args.drive_size}, medians of {args.rounds} rounds: pack {clear_wall:.2f} s wall, {clear_cpu:.2f} s CPU"
        )
        for side in sides[1:]:
            sealed_wall, sealed_cpu = medians[side]
            print(
                f"pack --encrypt-to --cipher {side}: {sealed_wall:.2f} s wall, {sealed_cpu:.2f} s CPU: "
                f"{sealed_wall / clear_wall:.3f}x wall, {sealed_cpu / clear_cpu:.3f}x CPU"
            )


if __name__ == "__main__":
    main()
