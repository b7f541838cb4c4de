#!/usr/bin/env python3
"""Count the CPU instructions of sneakernet's verify, pack and restore (valgrind's callgrind), for two source trees.

    python bench/instructions.py --src /path/to/old/checkout --src .

Wall-clock time on a shared machine is too noisy to see a change of a few percent; the instructions a command
executes are not (callgrind counts them whatever else runs: two runs of one command agree within about 0.5%). For
each source tree given (``--src DIR``: a checkout whose ``src/`` is put on PYTHONPATH; the first is the
reference), this script:

1. generates (once, cached in the work directory) the ML-like mix of bench/compare.py (``--size``, onto 3 drives)
   and a tree of many small files of bench/many_files.py (``--count``);
2. packs each once with the first tree's code (the drives every tree then verifies and restores);
3. counts, under ``valgrind --tool=callgrind --trace-children=yes``, the instructions of ``sneakernet --help``
   (start-up with every command loaded), ``verify``, ``pack`` and ``restore`` of each dataset, with that tree's code,
   and prints them with each tree's ratio to the first.

Each tree's bytecode is compiled first (``compileall``): with ``PYTHONDONTWRITEBYTECODE`` set, every run would
otherwise count the compilation of every module it imports. Standard library only, besides valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import DEFAULT_WORKDIR, ensure_dataset, parse_size
from many_files import ensure_tree

STEPS = ("help", "verify", "pack", "restore")


def instructions(src: Path, args: list[str], work: Path, tag: str) -> int:
    """The instructions ``python -m sneakernet ARGS`` executes with ``src``'s code, its child processes included."""
    out = Path(tempfile.mkdtemp(prefix=f"callgrind-{tag}-", dir=work))
    env = {
        **os.environ,
        "PYTHONPATH": str(src / "src"),
        "SNEAKERNET_STATE_DIR": str(out / "state"),
    }
    command = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        f"--callgrind-out-file={out}/cg.%p",
    ]
    done = subprocess.run(
        [*command, sys.executable, "-m", "sneakernet", *args],
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} with {src} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    total = 0
    for path in out.glob("cg.*"):
        found = re.search(rb"^summary: (\d+)", path.read_bytes(), re.MULTILINE)
        total += int(found.group(1)) if found else 0
    shutil.rmtree(out)
    return total


def drives(out: Path) -> list[str]:
    return sorted(str(path) for path in out.glob("drive-*"))


def pack(src: Path, data: Path, out: Path, drive_size: int) -> None:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    argv = [
        sys.executable,
        "-m",
        "sneakernet",
        "-q",
        "pack",
        str(data),
        "--out",
        str(out),
    ]
    subprocess.run(
        [*argv, "--drive-size", str(drive_size)],
        env=env,
        check=True,
        capture_output=True,
    )


def step_args(
    step: str, data: Path, packed: Path, scratch: Path, drive_size: int
) -> list[str]:
    shutil.rmtree(scratch, ignore_errors=True)
    if step == "help":
        return ["--help"]
    if step == "verify":
        return ["-q", "verify", *drives(packed)]
    if step == "pack":
        return [
            "-q",
            "pack",
            str(data),
            "--out",
            str(scratch),
            "--drive-size",
            str(drive_size),
        ]
    return ["-q", "restore", *drives(packed), "--into", str(scratch)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src",
        type=Path,
        action="append",
        required=True,
        help="a checkout (repeat; first: reference)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("200MB"),
        help="ML mix size (default 200MB)",
    )
    parser.add_argument(
        "--count", type=int, default=20_000, help="small files (default 20,000)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"default {DEFAULT_WORKDIR}",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    work: Path = args.workdir / "instructions"
    work.mkdir(parents=True, exist_ok=True)
    trees = [src.resolve() for src in args.src]
    for src in trees:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(src / "src")],
            check=True,
            capture_output=True,
        )
    ml_drive = args.size // 3 + 1
    ml, _ = ensure_dataset(args.workdir, args.size, ml_drive, 0)
    many, _ = ensure_tree(args.workdir, args.count, 0)
    datasets = {"ML mix": (ml, ml_drive), f"{args.count} small files": (many, 10**12)}
    rows = []
    for name, (data, drive_size) in datasets.items():
        packed = work / f"packed-{data.parent.name}"
        pack(trees[0], data, packed, drive_size)
        for step in STEPS if name == "ML mix" else STEPS[1:]:
            counts = [
                instructions(
                    src,
                    step_args(step, data, packed, work / "scratch", drive_size),
                    work,
                    step,
                )
                for src in trees
            ]
            rows.append((f"{step} ({name})" if step != "help" else step, counts))
            shown = "  ".join(
                f"{count / 1e9:7.3f} G ({count / counts[0]:.3f})" for count in counts
            )
            print(f"{rows[-1][0]:28} {shown}", flush=True)
    shutil.rmtree(work / "scratch", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
