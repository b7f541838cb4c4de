"""Issue 15's acceptance runs for the parity readers, timed.

1. Lost drives: a real tree (Python's standard library, /usr/share/doc and a file larger than a drive) packed onto 6
   or more data drives with `pack --parity 2`; for random pairs of lost drives (two data, a data and a parity, two
   parity), `restore` of the rest must give the source tree and `rebuild` each lost drive with every file, B3SUMS
   included, identical to the original's.
2. A hostile parity drive: parity-0001's blocks replaced by random bytes with every hash over them rewritten to match
   (tests/craft.py's forge_parity, with the sneakernet library), given to `restore` with a data drive and parity-0002
   missing: no file restored differs from the source, the files it cannot give are named.
3. Flips: the tree plus --flip-extra random bytes packed with `pack --parity 1` onto drives of --flip-drive-size
   (several GB: 1,000 flips over a few hundred MB would put dozens in every stripe of every drive, more than any
   repair with one parity drive can tell apart), then --flips single-bit flips at bytes drawn uniformly over every
   segment byte of every drive (data and parity: several drives' flips share stripes); `repair` of each data drive,
   then of the parity drive; each then verifies intact and is byte-identical, and the restore is identical. It
   counts the stripes whose flips are on two or more drives, and the true overlaps (two drives flipped at the same
   stream offset), which no repair with one parity drive can mend.

    .venv/bin/python bench/rebuild.py                       # the documented run
    .venv/bin/python bench/rebuild.py --pairs 1 --flip-extra 500000000 --flips 200 # quicker

It runs the installed `sneakernet` executable and prints one JSON object (also written to --out): each step's
seconds and MB/s of the lost drive's stored bytes, medians over the pairs, and the checks' results.
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
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))
from compare import find_sneakernet

from craft import forge_parity  # the tests' hostile parity drive: sneakernet's own records, hashes rewritten


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


#: The parity block of `pack --parity` (docs/format.md 19.7.2): a stripe is this many bytes of each drive.
BLOCK = 4 << 20


def segment_files(drive: Path) -> list[tuple[Path, int]]:
    return [(p, p.stat().st_size) for p in sorted((drive / "segments").iterdir())]


def random_flips(drives: list[Path], count: int, rng: random.Random) -> dict[str, int]:
    """Flip one random bit of each of ``count`` bytes drawn uniformly over every segment byte of ``drives``; how
    many stripes got flips, how many of those on two or more drives, and the true overlaps (two drives flipped at
    the same stream offset: one parity row cannot tell which is wrong there)."""
    places = []
    total = 0
    for index, drive in enumerate(drives):
        stream = 0
        for path, size in segment_files(drive):
            places.append((total, index, stream, path))
            total += size
            stream += size
    flipped: dict[int, set[int]] = {}
    for at in sorted(rng.sample(range(total), count)):
        base, index, stream, path = next(p for p in reversed(places) if p[0] <= at)
        with open(path, "r+b") as handle:
            handle.seek(at - base)
            byte = handle.read(1)[0]
            handle.seek(at - base)
            handle.write(bytes([byte ^ (1 << rng.randrange(8))]))
        flipped.setdefault(stream + at - base, set()).add(index)
    stripes: dict[int, set[int]] = {}
    for offset, on in flipped.items():
        stripes.setdefault(offset // BLOCK, set()).update(on)
    return {
        "flipped_stripes": len(stripes),
        "stripes_with_flips_on_several_drives": sum(len(on) > 1 for on in stripes.values()),
        "true_overlaps": sum(len(on) > 1 for on in flipped.values()),
    }


def lost_pairs(run: Runner, work: Path, ship: Path, source: dict[str, str], pairs: int, rng: random.Random) -> dict:
    data = sorted(ship.glob("drive-*"))
    parity = sorted(ship.glob("parity-*"))
    originals = {d.name: drive_files(d) for d in [*data, *parity]}
    restore_times, rebuild_rates, found = [], [], []
    for kind in [("data", "data"), ("data", "parity"), ("parity", "parity")]:
        for _ in range(pairs):
            pool = {"data": list(data), "parity": list(parity)}
            lost = [pool[kind[0]].pop(rng.randrange(len(pool[kind[0]])))]
            lost.append(pool[kind[1]].pop(rng.randrange(len(pool[kind[1]]))))
            trial = work / "trial"
            shutil.rmtree(trial, ignore_errors=True)
            shutil.copytree(ship, trial / "ship")
            kept = [trial / "ship" / d.name for d in [*data, *parity] if d not in lost]
            for drive in lost:
                shutil.rmtree(trial / "ship" / drive.name)
            names = [d.name for d in lost]
            seconds, _ = run("restore", *kept, "--into", trial / "dest")
            restore_times.append(seconds)
            same = tree_digest(trial / "dest") == source
            rebuilt: dict[str, object] = {}
            if all(d in parity for d in lost):
                # No parity drive left to take the header from (created, tool, sizes): `rebuild` refuses, and
                # `sneakernet parity` writes new ones; their blocks and covered copies are the same bytes.
                seconds, _ = run("parity", *kept, "--out", trial / "new", "--parity", str(len(parity)))
                for drive in lost:
                    new = drive_files(trial / "new" / drive.name)
                    blocks = [n for n in new if n.startswith(("segments/", "covered/"))]
                    rebuilt[drive.name] = {
                        "by": "sneakernet parity (rebuild needs a surviving parity drive of the group)",
                        "seconds": round(seconds, 2),
                        "blocks_and_copies_identical": bool(blocks)
                        and all(new[n] == originals[drive.name].get(n) for n in blocks),
                    }
                lost = []
            # The data drive first: a lost parity drive is computed again from every data drive.
            for drive in sorted(lost, key=lambda d: d.name.startswith("parity")):
                target = trial / f"new-{drive.name}"
                seconds, _ = run("rebuild", *kept, "--lost", drive.name, "--onto", target)
                rebuild_rates.append(stored(target) / seconds / 1e6)
                rebuilt[drive.name] = {
                    "seconds": round(seconds, 2),
                    "identical": drive_files(target) == originals[drive.name],
                    "b3sums_identical": (target / "B3SUMS").read_bytes() == (drive / "B3SUMS").read_bytes(),
                }
                kept.append(target)
            found.append({"lost": names, "restore_identical": same, "rebuilt": rebuilt})
            shutil.rmtree(trial)
    return {
        "pairs": found,
        "restore_with_two_lost_seconds_median": round(statistics.median(restore_times), 2),
        "rebuild_MBps_median": round(statistics.median(rebuild_rates), 1),
    }


def hostile(run: Runner, work: Path, ship: Path, source: dict[str, str], rng: random.Random) -> dict:
    trial = work / "hostile"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(ship, trial / "ship")
    data = sorted((trial / "ship").glob("drive-*"))
    victim = data[rng.randrange(len(data))]
    shutil.rmtree(victim)
    shutil.rmtree(trial / "ship" / "parity-0002")
    forge_parity(trial / "ship" / "parity-0001", rng)
    kept = [d for d in data if d != victim] + [trial / "ship" / "parity-0001"]
    _, out = run("restore", *kept, "--into", trial / "dest", ok=(0, 1))
    restored = tree_digest(trial / "dest")
    wrong = [path for path, digest in restored.items() if digest != "dir" and source.get(path) != digest]
    named = sum("not restored" in line for line in out.splitlines())
    shutil.rmtree(trial)
    return {"lost": victim.name, "wrong_files_restored": len(wrong), "files_named_not_restored": named}


def flips(run: Runner, work: Path, args: argparse.Namespace, rng: random.Random) -> dict:
    src = work / "src-flips"
    shutil.copytree(work / "src", src, copy_function=os.link)
    with open(src / "extra.bin", "wb") as handle:
        for done in range(0, args.flip_extra, 1 << 26):
            handle.write(rng.randbytes(min(1 << 26, args.flip_extra - done)))
    source = tree_digest(src)
    ship = work / "flips"
    pack_s, _ = run("pack", src, "--out", ship, "--drive-size", args.flip_drive_size, "--parity", "1")
    data = sorted(ship.glob("drive-*"))
    parity = sorted(ship.glob("parity-*"))
    originals = {d.name: drive_files(d) for d in [*data, *parity]}
    counts = random_flips([*data, *parity], args.flips, rng)
    drives = [*data, *parity]
    # Drive by drive, data drives first (a parity drive is mended from intact data drives); a drive whose chunks
    # could not all be mended is repaired again in the next round, once the drives around it are.
    rounds: list[list[dict[str, object]]] = []
    repair_times: list[float] = []
    pending = list(drives)
    while pending and len(rounds) < args.rounds:
        done = []
        for drive in pending:
            others = [d for d in drives if d != drive]
            seconds, out = run("repair", drive, *others, "--json", ok=(0, 1))
            repair_times.append(seconds)
            result = json.loads(out)
            _, checked = run("verify", drive, "--json", ok=(0, 1))  # a parity drive alone: the shipment "lost"
            entry: dict[str, object] = {"drive": drive.name, "seconds": round(seconds, 2)}
            if "error" in result:
                entry["error"] = result["error"]["message"]
            else:
                entry |= {k: result[k] for k in ("chunks_rebuilt", "chunks_mended", "segments_written")}
                entry["chunks_lost"] = len(result["chunks_lost"])
            entry["verifies_intact"] = json.loads(checked)["drives"][0]["status"] == "intact"
            entry["identical"] = drive_files(drive) == originals[drive.name]
            done.append(entry)
        rounds.append(done)
        pending = [d for d, entry in zip(pending, done, strict=True) if not entry["verifies_intact"]]
    _, out = run("restore", *data, "--into", work / "flips-dest", ok=(0, 1))
    return {
        "flips_source_bytes": sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink()),
        "flips_data_drives": len(data),
        "flips_pack_seconds": round(pack_s, 2),
        "flips": args.flips,
        **counts,
        "repair_rounds": rounds,
        "drives_left_damaged": [d.name for d in pending],
        "every_drive_identical": all(drive_files(d) == originals[d.name] for d in drives),
        "repair_seconds_median": round(statistics.median(repair_times), 2),
        "restore_after_repair_identical": tree_digest(work / "flips-dest") == source,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/sneakernet-bench-rebuild")
    parser.add_argument("--drive-size", default="20MB")
    parser.add_argument("--big", type=int, default=45_000_000, help="bytes of the file larger than a drive")
    parser.add_argument(
        "--pairs", type=int, default=2, help="random pairs of each kind (data+data, data+parity, parity+parity)"
    )
    parser.add_argument("--flips", type=int, default=1000)
    parser.add_argument("--flip-extra", type=int, default=4_000_000_000, help="random bytes added for the flips")
    parser.add_argument("--flip-drive-size", default="600MB")
    parser.add_argument("--rounds", type=int, default=3, help="most rounds of repair over the drives left damaged")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pairs", "hostile", "flips"])
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
    pack_s, _ = run("pack", work / "src", "--out", ship, "--drive-size", args.drive_size, "--parity", "2")
    result: dict[str, object] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "source_bytes": src_bytes,
        "data_drives": len(list(ship.glob("drive-*"))),
        "pack_with_parity_2_seconds": round(pack_s, 2),
        "load_before": os.getloadavg(),
    }
    if "pairs" not in args.skip:
        result |= lost_pairs(run, work, ship, source, args.pairs, rng)
    if "hostile" not in args.skip:
        result["hostile_parity"] = hostile(run, work, ship, source, rng)
    if "flips" not in args.skip:
        result |= flips(run, work, args, rng)
    result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
