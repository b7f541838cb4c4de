#!/usr/bin/env python3
"""Kill a pack onto several drives at once with SIGKILL, resume it, and count what the resume kept and wrote again.

    python bench/resume_at_once.py --size-mb 300 --at-once 4

Generates (once, cached by its parameters) a deterministic tree of mostly incompressible files (random bytes: a few
large files spanning drives, many of 0.1-8 MB, a few hundred small ones), packs it with ``sneakernet pack --out
--at-once N`` onto drives cut so that each lane fills about ``--drives-per-lane`` drives (1: N drives), and kills
the pack with SIGKILL once ``--kill-at`` of the tree's bytes are in complete segment files, while the lanes' drives
are being written. It then lists every complete segment file of the drives left unfinished (inode, mtime), runs the
same command with ``--resume --json``, and reports:

* the drives found finished and unfinished at the kill;
* from the summary: segments and bytes kept (finished drives, and complete segments of unfinished drives), bytes
  written again (segment bytes after the last complete segment of each unfinished drive);
* the segment files of the unfinished drives that are the same files after the resume (inode and mtime unchanged):
  the summary's count of kept segments must equal it;
* ``sneakernet verify`` of all drives (exit code) and, unless ``--no-restore``, a restore compared file by file with
  the source.

Standard library only (sneakernet runs as ``python -m sneakernet`` from this checkout's src).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000


def make_tree(root: Path, size: int, seed: int) -> None:
    """A deterministic tree of about ``size`` bytes of random data, made once (a marker file records it)."""
    marker = root.parent / (root.name + ".made")
    if marker.exists() and marker.read_text() == f"{size} {seed}":
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    left, index = size, 0
    for large in range(3):  # a few files larger than a segment, spanning drives
        data_size = min(left, size // 10)
        _write(root / "large" / f"l{large}.bin", rng, data_size)
        left -= data_size
    while left > 0:
        data_size = min(left, rng.choice((rng.randrange(100_000, 8 * MB), rng.randrange(1, 20_000))))
        _write(root / f"d{index % 16:02d}" / f"f{index:05d}.bin", rng, data_size)
        left -= data_size
        index += 1
    marker.write_text(f"{size} {seed}")


def _write(path: Path, rng: random.Random, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        while size > 0:
            block = min(size, 1 << 20)
            out.write(rng.randbytes(block))
            size -= block


def segment_files(drive: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for path in (drive / "segments").glob("*.seg"):
        info = path.stat()
        found[path.name] = (info.st_ino, info.st_mtime_ns, info.st_size)
    return found


def sneakernet(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "sneakernet", *args], env=env, text=True, **kwargs)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of the bytes in segments at the kill")
    parser.add_argument("--segment-size", default="16MiB")
    parser.add_argument("--drives-per-lane", type=float, default=1.0, help="drives each lane fills (drive size)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/sneakernet-bench-resume"))
    parser.add_argument("--no-restore", action="store_true")
    args = parser.parse_args()
    size = args.size_mb * MB
    src, out, dest = args.dir / "src", args.dir / "out", args.dir / "dest"
    make_tree(src, size, args.seed)
    for path in (out, dest):
        shutil.rmtree(path, ignore_errors=True)
    # Room for the lane's share with 20% to spare: its data, and the catalog and manifests beside it.
    drive_size = str(int(size / args.at_once / args.drives_per_lane * 1.2))
    command = ["pack", str(src), "--out", str(out), "--drive-size", drive_size, "--segment-size", args.segment_size,
               "--at-once", str(args.at_once), "-q"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "sneakernet", *command], env=env)
    while process.poll() is None:
        written = sum(p.stat().st_size for p in out.glob("drive-*/segments/*.seg")) if out.exists() else 0
        if written >= args.kill_at * size:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    killed_after = time.monotonic() - started
    if process.returncode != -signal.SIGKILL:
        print(f"the pack ended (exit {process.returncode}) before the kill: raise --size-mb or lower --kill-at")
        return 1
    drives = sorted(out.glob("drive-*"))
    unfinished = [d for d in drives if not (d / "drive.json").exists()]
    before = {d: segment_files(d) for d in unfinished}
    print(f"killed after {killed_after:.1f} s: {len(drives) - len(unfinished)} drives finished, {len(unfinished)} "
          f"unfinished holding {sum(len(s) for s in before.values())} segment files "
          f"({sum(v[2] for s in before.values() for v in s.values()) / MB:.1f} MB)")  # fmt: skip
    started = time.monotonic()
    resumed = sneakernet(*command[:-1], "--resume", "--json", stdout=subprocess.PIPE)
    seconds = time.monotonic() - started
    if resumed.returncode != 0:
        print(f"resume failed: exit {resumed.returncode}")
        return 1
    summary = json.loads(resumed.stdout)
    same = [
        (name, stamp[2]) for drive, segments in before.items() for name, stamp in segments.items()
        if segment_files(drive).get(name) == stamp
    ]  # fmt: skip
    kept, continued = summary["kept_segments"], summary["continued_drives"]
    print(
        f"resumed in {seconds:.1f} s: {summary['resumed_drives']} finished drives kept, {kept} complete segments "
        f"kept on {continued} unfinished drives"
    )
    print(f"  kept {summary['kept_bytes'] / MB:.1f} MB ({summary['kept_unfinished_bytes'] / MB:.1f} MB of it on "
          f"unfinished drives), written again {summary['rewritten_bytes'] / MB:.1f} MB, of "
          f"{summary['stored_bytes'] / MB:.1f} MB stored on {len(summary['drives'])} drives")  # fmt: skip
    print(
        f"  segment files of the unfinished drives unchanged (inode, mtime): {len(same)} "
        f"({sum(s for _, s in same) / MB:.1f} MB); the summary's kept_segments: {summary['kept_segments']}"
    )
    verified = sneakernet("verify", *[d["path"] for d in summary["drives"]], stdout=subprocess.DEVNULL)
    print(f"  verify of every drive: exit {verified.returncode}")
    if not args.no_restore:
        drives_given = [d["path"] for d in summary["drives"]]
        restored = sneakernet("restore", *drives_given, "--into", str(dest), stdout=subprocess.DEVNULL)
        differ = _differ(src, dest)
        print(f"  restore: exit {restored.returncode}, files differing from the source: {differ}")
        shutil.rmtree(dest, ignore_errors=True)
    ok = verified.returncode == 0 and len(same) == summary["kept_segments"]
    return 0 if ok else 1


def _differ(left: Path, right: Path) -> int:
    count = 0
    for path in left.rglob("*"):
        if path.is_file():
            other = right / path.relative_to(left)
            count += not other.is_file() or not filecmp.cmp(path, other, shallow=False)
    return count


if __name__ == "__main__":
    sys.exit(main())
