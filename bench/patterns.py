#!/usr/bin/env python3
"""Time pack's exclude matcher, which runs on every path of a walk, and a walk of a tree with excludes.

    python bench/patterns.py --count 100000

* **matcher**: ``Excluder.excludes`` over --count synthetic paths (3 to 6 levels deep, a tenth of them matched
  by some pattern) with ten patterns of the usual kinds (``*.ext``, ``name/``, ``/anchored/``, ``**``, ``!``),
  the median of --repeats runs, in paths per second;
* **walk** (unless ``--no-walk``): ``scan.walk`` with and without those patterns over a tree of --count empty
  files (made once under --workdir), median of --repeats runs each, alternately.

Standard library and sneakernet only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from sneakernet.io.source import walk  # noqa: E402
from sneakernet.patterns import Excluder  # noqa: E402

PATTERNS = [
    "*.tmp",
    "*.log",
    "!keep.log",
    "__pycache__/",
    ".git/",
    "/build/",
    "node_modules",
    "**/cache/**",
    "data/raw/*.bin",
    "*~",
]
NAMES = ["file", "doc", "img", "model", "part"]
EXTS = [".dat", ".jsonl", ".png", ".npy", ".txt", ".tmp", ".log", ".bin"]


def synthetic_paths(count: int, seed: int = 0) -> list[tuple[bytes, bool]]:
    rng = random.Random(seed)
    dirs = ["data", "raw", "cache", "run", "src", "__pycache__", "out", "build"]
    paths = []
    for i in range(count):
        depth = rng.randint(2, 5)
        parts = [f"{rng.choice(dirs)}{rng.randint(0, 20) if rng.random() < 0.8 else ''}" for _ in range(depth)]
        is_dir = rng.random() < 0.1
        leaf = f"{rng.choice(NAMES)}{i:07d}{'' if is_dir else rng.choice(EXTS)}"
        paths.append(("/".join([*parts, leaf]).encode(), is_dir))
    return paths


def time_matcher(count: int, repeats: int) -> tuple[float, int]:
    paths = synthetic_paths(count)
    excluder = Excluder(PATTERNS)
    times, hits = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        hits = sum(excluder.excludes(path, is_dir) for path, is_dir in paths)
        times.append(time.perf_counter() - started)
    return count / statistics.median(times), hits


def make_tree(root: Path, count: int) -> None:
    marker = root / f".made-{count}"
    if marker.exists():
        return
    for i in range(count):
        directory = root / f"d{i // 1000:04d}" / ("cache" if i % 7 == 0 else "x")
        if i % 1000 == 0 or i % 7 in (0, 1):
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:07d}{EXTS[i % len(EXTS)]}").touch()
    marker.touch()


def time_walk(root: Path, repeats: int) -> tuple[float, float]:
    plain, excluded = [], []
    for _ in range(repeats):
        for patterns, times in (((), plain), (PATTERNS, excluded)):
            started = time.perf_counter()
            for _item in walk(root, Excluder(patterns) if patterns else None):
                pass
            times.append(time.perf_counter() - started)
    return statistics.median(plain), statistics.median(excluded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="paths (default 100,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sneakernet-bench-patterns"))
    parser.add_argument("--no-walk", action="store_true", help="time the matcher only")
    args = parser.parse_args()
    rate, hits = time_matcher(args.count, args.repeats)
    print(f"matcher: {rate:,.0f} paths/s ({hits:,} of {args.count:,} excluded)")
    if not args.no_walk:
        root = args.workdir / f"tree-{args.count}"
        root.mkdir(parents=True, exist_ok=True)
        make_tree(root, args.count)
        plain, excluded = time_walk(root, args.repeats)
        print(f"walk: {plain:.2f} s without excludes, {excluded:.2f} s with {len(PATTERNS)} patterns")


if __name__ == "__main__":
    main()
