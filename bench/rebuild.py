"""Issue 15's acceptance runs for the parity readers, timed: a real tree (Python's standard library, /usr/share/doc
and a file larger than a drive) packed onto 6 or more data drives, given 2 parity drives with `sneakernet parity`;
for random pairs of lost drives (two data, a data and a parity, two parity), `restore` of the rest must give the
source tree and `rebuild` each lost data drive with every file, B3SUMS included, identical to the original's. Then 1
parity drive and random single-byte flips over every drive: `repair` mends each data drive, each then verifies
intact, and the restore is identical (each stripe's flips on one drive, as sparse flips over large drives are).
Standard library only; it runs the installed `sneakernet` executable.

    .venv/bin/python bench/rebuild.py                       # the documented run
    .venv/bin/python bench/rebuild.py --pairs 2 --flips 200 # quicker

It prints one JSON object (also written to --out): each step's seconds and MB/s of the lost drive's stored bytes,
medians over the pairs, and the checks' results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import find_sneakernet


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (a restore's journal aside): files by content hash and mode, symlinks by target."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == ".sneakernet")]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                found[rel] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {path.stat().st_mode & 0o777:o}"
            else:
                found[rel] = "dir"
    return found


def drive_files(drive: Path) -> dict[str, str]:
    return {
        str(p.relative_to(drive)): hashlib.sha256(p.read_bytes()).hexdigest() for p in drive.rglob("*") if p.is_file()
    }


def make_tree(root: Path, big: int, seed: int) -> int:
    """The stdlib, /usr/share/doc and a random file of ``big`` bytes under ``root``; its size in bytes."""
    shutil.copytree(sysconfig.get_paths()["stdlib"], root / "stdlib", symlinks=True, ignore_dangling_symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "site-packages"))  # fmt: skip
    shutil.copytree("/usr/share/doc", root / "doc", symlinks=True, ignore_dangling_symlinks=True)
    (root / "big.bin").write_bytes(random.Random(seed).randbytes(big))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class Runner:
    def __init__(self, sneakernet: str) -> None:
        self.sneakernet = sneakernet

    def __call__(self, *args: str | Path, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
        command = [self.sneakernet, "-q", *map(str, args)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode not in ok:
            raise SystemExit(f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return seconds, done.stdout


def stored(drive: Path) -> int:
    return int(json.loads((drive / "drive.json").read_bytes())["stored_bytes"])


#: The parity block of `sneakernet parity` (docs/format.md 19.7.2): a stripe is this many bytes of each drive.
BLOCK = 4 << 20


def sparse_flips(drives: list[Path], count: int, rng: random.Random) -> int:
    """Flip ``count`` random bits over ``drives`` (data and parity), each stripe's flips on one drive only (drawn at
    random among the drives that reach it): what 1,000 flips over 8 TB drives almost surely are, with one parity
    drive to mend them. The number of stripes damaged."""
    streams = {d: [(p, p.stat().st_size) for p in sorted((d / "segments").iterdir())] for d in drives}
    length = {d: sum(size for _, size in s) for d, s in streams.items()}
    stripes = -(-max(length.values()) // BLOCK)
    owner = {}
    for stripe in range(stripes):
        reaching = [d for d in drives if length[d] > stripe * BLOCK]
        owner[stripe] = rng.choice(reaching)
    for _ in range(count):
        stripe = rng.randrange(stripes)
        drive = owner[stripe]
        at = rng.randrange(stripe * BLOCK, min(length[drive], (stripe + 1) * BLOCK))
        for path, size in streams[drive]:
            if at < size:
                with open(path, "r+b") as handle:
                    handle.seek(at)
                    byte = handle.read(1)
                    handle.seek(at)
                    handle.write(bytes([byte[0] ^ (1 << rng.randrange(8))]))
                break
            at -= size
    return stripes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/sneakernet-bench-rebuild")
    parser.add_argument("--drive-size", default="30MB")
    parser.add_argument("--big", type=int, default=45_000_000, help="bytes of the file larger than a drive")
    parser.add_argument(
        "--pairs", type=int, default=2, help="random pairs of each kind (data+data, data+parity, parity+parity)"
    )
    parser.add_argument("--flips", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    run = Runner(find_sneakernet())
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rng = random.Random(args.seed)
    src_bytes = make_tree(work / "src", args.big, args.seed)
    source = tree_digest(work / "src")
    ship = work / "ship"
    pack_s, _ = run("pack", work / "src", "--out", ship, "--drive-size", args.drive_size)
    data = sorted(ship.glob("drive-*"))
    parity_s, _ = run("parity", *data, "--out", ship, "--parity", "2")
    parity = sorted(ship.glob("parity-*"))
    result: dict[str, object] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "source_bytes": src_bytes,
        "data_drives": len(data),
        "pack_seconds": round(pack_s, 2),
        "parity_seconds": round(parity_s, 2),
        "load_before": os.getloadavg(),
    }
    originals = {d.name: drive_files(d) for d in data}
    restore_times, rebuild_rates, pairs = [], [], []
    kinds = [("data", "data"), ("data", "parity"), ("parity", "parity")]
    for kind in kinds:
        for _ in range(args.pairs):
            pool = {"data": list(data), "parity": list(parity)}
            lost = [pool[kind[0]].pop(rng.randrange(len(pool[kind[0]])))]
            lost.append(pool[kind[1]].pop(rng.randrange(len(pool[kind[1]]))))
            trial = work / "trial"
            shutil.rmtree(trial, ignore_errors=True)
            shutil.copytree(ship, trial / "ship")
            kept = [trial / "ship" / d.name for d in [*data, *parity] if d not in lost]
            for drive in lost:
                shutil.rmtree(trial / "ship" / drive.name)
            seconds, _ = run("restore", *kept, "--into", trial / "dest")
            restore_times.append(seconds)
            same = tree_digest(trial / "dest") == source
            rebuilt = {}
            for drive in lost:
                if drive in data:
                    target = trial / f"new-{drive.name}"
                    seconds, _ = run("rebuild", *kept, "--lost", drive.name, "--onto", target)
                    rebuild_rates.append(stored(target) / seconds / 1e6)
                    rebuilt[drive.name] = {
                        "seconds": round(seconds, 2),
                        "identical": drive_files(target) == originals[drive.name],
                        "b3sums_identical": (target / "B3SUMS").read_bytes() == (drive / "B3SUMS").read_bytes(),
                    }
            pairs.append({"lost": [d.name for d in lost], "restore_identical": same, "rebuilt": rebuilt})
            shutil.rmtree(trial)
    result |= {
        "pairs": pairs,
        "restore_with_two_lost_seconds_median": round(statistics.median(restore_times), 2),
        "rebuild_MBps_median": round(statistics.median(rebuild_rates), 1) if rebuild_rates else None,
    }
    # One parity drive and random flips over every drive (data and parity), then repair drive by drive.
    flips = work / "flips"
    shutil.copytree(ship, flips / "ship", ignore=shutil.ignore_patterns("parity-*"))
    fdata = sorted((flips / "ship").glob("drive-*"))
    run("parity", *fdata, "--out", flips / "ship", "--parity", "1")
    fparity = sorted((flips / "ship").glob("parity-*"))
    stripes = sparse_flips([*fdata, *fparity], args.flips, rng)
    repaired, repair_times = [], []
    for drive in fdata:
        others = [d for d in [*fdata, *fparity] if d != drive]
        seconds, _ = run("repair", drive, *others, ok=(0, 1))
        repair_times.append(seconds)
        code = subprocess.run([run.sneakernet, "-q", "verify", str(drive)], capture_output=True, check=False).returncode
        repaired.append(
            {
                "drive": drive.name,
                "verifies_intact": code == 0,
                "identical": drive_files(drive) == originals[drive.name],
            }
        )
    run("restore", *fdata, "--into", flips / "dest")
    result |= {
        "flips": args.flips,
        "flipped_stripes": stripes,
        "repaired": repaired,
        "repair_seconds_median": round(statistics.median(repair_times), 2),
        "restore_after_repair_identical": tree_digest(flips / "dest") == source,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
