#!/usr/bin/env python3
"""Time sneakernet pack as Dask tasks (``--scheduler local:N``, issue 20) against a single-process pack onto one
drive, on many_files.py's tree of many small files.

    python bench/cluster.py --count 200000 --workers 2

Generates (once, cached) many_files.py's deterministic tree of --count files of 1-4 KB, reads it once to warm the
page cache, then times the two sides alternately (A B A B ...) with ``sync`` between runs and reports the median
files per second of each and their ratio (issue 20's target: at least 1.5x with local:2 on a 2-core machine):

* **one drive**: ``sneakernet pack TREE --out OUT --drive-size SIZE`` (one process, its encoding threads);
* **cluster**: the same with ``--scheduler local:N``: a LocalCluster of N worker processes started by pack, one
  lane each, onto N drives under OUT (the cluster's start-up is inside the time);
* **at-once**: ``--at-once N`` without Dask (a process per lane, issue 14), to tell Dask's cost from the lanes'.

Peak RSS is the largest single process of each run (the client or one worker). Standard library only (and the
sneakernet under test, with its dask extra).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from compare import MB, BenchError, Command, machine_summary, note
from many_files import prepare, time_both

DEFAULT_WORKDIR = Path("/tmp/sneakernet-bench-cluster")
TARGET = 1.5


def sides(sneakernet: str, tree: Path, out: Path, drive_size: int, workers: int) -> dict[str, Command]:
    """The two commands timed: one process onto one drive, and a local cluster of ``workers`` processes."""
    base = [sneakernet, "pack", str(tree), "--drive-size", str(drive_size), "--quiet"]
    return {
        "one-drive": Command([*base, "--out", f"{out}-one-drive"]),
        "cluster": Command([*base, "--out", f"{out}-cluster", "--scheduler", f"local:{workers}",
                            "--catalog-dir", f"{out}-catalogs"]),
        "at-once": Command([*base, "--out", f"{out}-at-once", "--at-once", str(workers)]),
    }  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    sneakernet, tree, manifest, logs = prepare(args.workdir, args.count, args.seed)
    out = args.workdir / "out"
    commands = sides(sneakernet, tree, out, max(2 * manifest["bytes"], 10**9), args.workers)
    clean = {tool: Path(f"{out}-{tool}") for tool in ("one-drive", "cluster", "at-once")}
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    runs = time_both("pack", commands, clean, logs, args.repeats)
    for path in [*clean.values(), Path(f"{out}-catalogs")]:
        shutil.rmtree(path, ignore_errors=True)
    medians = {
        tool: statistics.median(m.seconds for m in runs if m.tool == tool) for tool in commands
    }  # fmt: skip
    rss = {tool: max(m.max_rss_kib for m in runs if m.tool == tool) / 1024 for tool in commands}
    rates = {tool: manifest["files"] / seconds for tool, seconds in medians.items()}
    ratio = rates["cluster"] / rates["one-drive"]
    at_once = rates["at-once"] / rates["one-drive"]
    return {
        "date": started,
        "command": shlex.join([sys.executable, *sys.argv]),
        "load": os.getloadavg(),
        "machine": machine_summary(sneakernet, args.workdir),
        "tree": manifest | {"path": str(tree)},
        "runs": [vars(m) for m in runs],
        "median_seconds": medians,
        "files_per_second": rates,
        "peak_rss_mb": rss,
        "ratio": ratio,
        "at_once_ratio": at_once,
        "target": f"--scheduler local:{args.workers} files/s >= {TARGET}x one drive (issue 20)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="files in the tree (default 200,000)")
    parser.add_argument("--workers", type=int, default=2, help="local cluster's worker processes (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--seed", type=int, default=0, help="tree seed (default 0)")
    parser.add_argument("--out", type=Path, help="JSON results (default: none)")
    args = parser.parse_args(argv)
    try:
        show(run(args), args.out)
    except BenchError as exc:
        note(f"bench: {exc}")
        return 1
    return 0


def show(result: dict[str, Any], out: Path | None) -> None:
    """The figures on stdout, and the whole result as JSON in ``out``."""
    tree = result["tree"]
    print(f"\ntree: {tree['files']:,} files, {tree['bytes'] / MB:.0f} MB; load {result['load']}")
    for tool, rate in result["files_per_second"].items():
        seconds = result["median_seconds"][tool]
        print(f"  {tool:10} {seconds:7.2f} s  {rate:9.0f} files/s  peak RSS {result['peak_rss_mb'][tool]:.0f} MB")
    met = "met" if result["ratio"] >= TARGET else "NOT met"
    print(f"  ratio {result['ratio']:.2f}x ({result['target']}: {met}); --at-once: {result['at_once_ratio']:.2f}x")
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
