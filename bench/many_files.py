#!/usr/bin/env python3
"""Time sneakernet pack and restore on a tree of many small files against tar.

    python bench/many_files.py --count 1000000

Generates (once, cached by the manifest of its parameters) a deterministic tree of --count files of 1-4 KB, 1,000
per directory, reads it once to warm the page cache, then times each step's two sides alternately (A B A B ...)
with ``sync`` between runs, and reports median files per second and peak RSS:

* **pack**: ``sneakernet pack`` onto one drive against ``tar -cf - | zstd -3 -T0 > /dev/null``, with the targets of
  issue 5 (at least tar's file rate; under 200 MB for a million files);
* **restore** (unless ``--no-restore``): ``sneakernet restore`` of that drive against ``zstd -d -c | tar -xf -`` of
  the tree's archive (made once, untimed), into a tmpfs when run as root (ext4 creates files slowly soon after
  many were deleted), else into fresh directories that are not deleted during the run.

Standard library only; helpers are shared with compare.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from compare import (
    DEFAULT_WORKDIR,
    MB,
    REPO,
    RSS_TARGET_MB,
    BenchError,
    Command,
    Measured,
    ensure_generated,
    find_sneakernet,
    fs_type,
    machine_summary,
    note,
    q,
    repo_state,
    repo_warning,
    run_checked,
    shell,
    show_size,
    timed_sync,
    try_mount,
    unmount,
    vocabulary,
    warm_cache,
    words,
)

GENERATOR_VERSION = 1
FILES_PER_DIR = 1000
POOL_SIZE = 8 * 2**20


def file_content(rng: random.Random, pool: bytes, number: int) -> bytes:
    """1-4 KB: a line naming the file, then words from a random place in the pool."""
    size = rng.randint(1024, 4096)
    start = rng.randrange(len(pool) - size)
    return (f"file {number}\n".encode() + pool[start : start + size])[:size]


def write_tree(root: Path, count: int, seed: int) -> int:
    """Write ``count`` files under ``root``; return their bytes."""
    rng = random.Random(f"many:{seed}")
    pool = words(random.Random(f"pool:{seed}"), vocabulary(seed), POOL_SIZE)
    total = 0
    for number in range(count):
        folder = root / f"d{number // FILES_PER_DIR:05d}"
        if number % FILES_PER_DIR == 0:
            folder.mkdir(parents=True)
        with open(folder / f"f{number:07d}.txt", "wb") as handle:
            total += handle.write(file_content(rng, pool, number))
        if (number + 1) % 100_000 == 0:
            note(f"  generated {number + 1} files")
    return total


def ensure_tree(workdir: Path, count: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The tree and its manifest, generated unless a tree of the same parameters is cached."""
    params = {"generator": GENERATOR_VERSION, "count": count, "seed": seed}
    return ensure_generated(
        workdir / f"many-{count}-s{seed}",
        "tree",
        params,
        lambda root: {"files": count, "bytes": write_tree(root, count, seed)},
    )


def sides(sneakernet: str, tree: Path, out: Path, drive_size: int, at_once: int = 1) -> dict[str, Command]:
    """The commands timed: sneakernet pack (onto one drive), tar | zstd -3 -T0 into /dev/null, and with
    ``at_once`` above 1 sneakernet pack onto that many drives at once (``out`` + ``-at-once``; issue 14)."""
    pack = [sneakernet, "pack", str(tree), "--out", str(out), "--drive-size", str(drive_size), "--quiet"]
    tar = f"tar -cf - -C {q(tree.parent)} {q(tree.name)} | zstd -3 -T0 -q > /dev/null"
    commands = {"sneakernet": Command(pack), "tar": shell(tar)}
    if at_once > 1:
        lanes = [sneakernet, "pack", str(tree), "--out", f"{out}-at-once", "--drive-size", str(drive_size)]
        commands["sneakernet-at-once"] = Command([*lanes, "--at-once", str(at_once), "--quiet"])
    return commands


def time_both(
    step: str, commands: dict[str, Command], clean: dict[str, Path], logs: Path, repeats: int
) -> list[Measured]:
    """Alternate the two sides ``repeats`` times, with ``sync`` before and after each run; a side's output (in
    ``clean``) is removed before it runs, and the last one kept."""
    runs = []
    for repeat in range(repeats):
        for tool, command in commands.items():
            if tool in clean:
                shutil.rmtree(clean[tool], ignore_errors=True)
            os.sync()
            seconds, rss = run_checked(command, logs / f"many-{step}-{tool}-{repeat}")
            after = timed_sync()
            runs.append(Measured(step, tool, repeat, seconds, after, rss, command.shown()))
            note(f"{step:7} {tool:11} #{repeat + 1}  {seconds:8.2f} s  {rss / 1024:7.0f} MB RSS  sync {after:.2f} s")
    return runs


def restore_sides(sneakernet: str, out: Path, archive: Path, target: Path) -> dict[str, Command]:
    """sneakernet restore of the packed drive, and zstd -d | tar -x of the tree's archive, into ``target``."""
    restore = [sneakernet, "restore", *map(str, sorted(out.glob("drive-*"))), "--into", str(target / "sn"), "-q"]
    tar = f"mkdir -p {q(target / 'tar')} && zstd -d -c -q {q(archive)} | tar -xf - -C {q(target / 'tar')}"
    return {"sneakernet": Command(restore), "tar": shell(tar)}


def time_restore(
    sneakernet: str, tree: Path, out: Path, workdir: Path, logs: Path, repeats: int, tree_bytes: int
) -> tuple[list[Measured], str]:
    """Restore timings, and where the restores went. ``out`` holds the last pack's drive."""
    archive = workdir / f"{tree.parent.name}.tar.zst"
    if not archive.exists():
        note(f"making {archive.name} for tar's side (untimed)")
        run_checked(shell(f"tar -cf - -C {q(tree)} . | zstd -3 -T0 -q -o {q(archive)}"), logs / "many-archive")
    root = workdir / "restore"
    root.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(root):
        unmount(root)
    reason = try_mount(root, 3 * tree_bytes + 512 * 2**20, tree_bytes)
    if not reason:
        try:
            outputs = {"sneakernet": root / "sn", "tar": root / "tar"}
            runs = time_both("restore", restore_sides(sneakernet, out, archive, root), outputs, logs, repeats)
        finally:
            unmount(root)
        return runs, "a tmpfs"
    fresh = root / time.strftime("fresh-%Y%m%d-%H%M%S")
    runs = []
    for repeat in range(repeats):
        runs += time_both("restore", restore_sides(sneakernet, out, archive, fresh / str(repeat)), {}, logs, 1)
        for run in runs[-2:]:
            run.repeat = repeat
    return runs, f"fresh directories on {fs_type(root)} ({reason}), not deleted during the run"


def summary(runs: list[Measured], files: int, size: int) -> list[dict[str, Any]]:
    """Median seconds, files/s, MB/s and peak RSS per step and tool."""
    rows = []
    for step, tool in dict.fromkeys((r.step, r.tool) for r in runs):
        mine = [r for r in runs if (r.step, r.tool) == (step, tool)]
        median = statistics.median(r.seconds for r in mine)
        rows.append(
            {
                "step": step,
                "tool": tool,
                "median_seconds": round(median, 3),
                "files_per_second": round(files / median),
                "mb_per_second": round(size / MB / median, 1),
                "peak_rss_mb": round(max(r.max_rss_kib for r in mine) / 1024, 1),
            }
        )
    return rows


def targets(rows: list[dict[str, Any]], files: int) -> list[dict[str, Any]]:
    ours, tar = (next(r for r in rows if (r["step"], r["tool"]) == ("pack", tool)) for tool in ("sneakernet", "tar"))
    ratio = ours["files_per_second"] / tar["files_per_second"]
    lanes = next((r for r in rows if (r["step"], r["tool"]) == ("pack", "sneakernet-at-once")), None)
    at_once = []
    if lanes is not None:
        gain = lanes["files_per_second"] / ours["files_per_second"]
        rss = lanes["peak_rss_mb"]
        at_once = [
            {"target": "pack --at-once files/s >= 1.6x onto one drive (issue 14)", "value": f"{gain:.2f}x",
             "met": gain >= 1.6},
            {"target": f"peak RSS of pack --at-once < {RSS_TARGET_MB:.0f} MB", "value": f"{rss:.0f} MB",
             "met": rss < RSS_TARGET_MB},
        ]  # fmt: skip
    return [
        *at_once,
        {"target": "sneakernet pack files/s >= tar | zstd -3 -T0", "value": f"{ratio:.2f}x", "met": ratio >= 1.0},
        {
            "target": f"peak RSS of sneakernet pack < {RSS_TARGET_MB:.0f} MB (for 1,000,000 files; here {files:,})",
            "value": f"{ours['peak_rss_mb']:.0f} MB",
            "met": ours["peak_rss_mb"] < RSS_TARGET_MB,
        },
    ]


def table(rows: list[dict[str, Any]], goals: list[dict[str, Any]]) -> str:
    labels = {
        ("pack", "sneakernet"): "sneakernet pack",
        ("pack", "tar"): "tar -cf - | zstd -3 -T0 > /dev/null",
        ("pack", "sneakernet-at-once"): "sneakernet pack --at-once N",
        ("restore", "sneakernet"): "sneakernet restore",
        ("restore", "tar"): "zstd -d -c | tar -xf -",
    }
    lines = [f"{'tool':38} {'median s':>9} {'files/s':>9} {'MB/s':>7} {'peak RSS MB':>12} {'sn/this':>8}", "-" * 88]
    for r in rows:
        ours = next(o for o in rows if (o["step"], o["tool"]) == (r["step"], "sneakernet"))
        ratio = "" if r["tool"] == "sneakernet" else f"{r['median_seconds'] / ours['median_seconds']:.2f}x"
        lines.append(
            f"{labels[r['step'], r['tool']]:38} {r['median_seconds']:9.2f} {r['files_per_second']:9}"
            f" {r['mb_per_second']:7.0f} {r['peak_rss_mb']:12.0f} {ratio:>8}"
        )
    lines += ["sn/this: sneakernet's files/s over this tool's (>1: sneakernet faster)", "", "targets (issue 5):"]
    lines += [f"  {g['target']:72} {g['value']:>7}  {'met' if g['met'] else 'NOT MET'}" for g in goals]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="files in the tree (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/DATE-many-COUNT.json)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--seed", type=int, default=0, help="tree seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep sneakernet's last output")
    parser.add_argument("--no-restore", action="store_true", help="time pack only")
    parser.add_argument("--at-once", type=int, default=1, help="also pack onto N drives at once (default: not)")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.count < 1 or args.repeats < 1:
        parser.error("--count and --repeats must be at least 1")
    if args.workdir == REPO or REPO in args.workdir.parents:
        parser.error(f"--workdir must be outside the repository ({REPO})")
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    args.out = args.out or REPO / "bench" / "results" / f"{stamp}-many-{args.count}.json"
    return args


def prepare(workdir: Path, count: int, seed: int) -> tuple[str, Path, dict[str, Any], Path]:
    """The sneakernet to time, the tree (generated unless cached, then read once), its manifest, the logs' folder
    (bench/cluster.py shares it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sneakernet = find_sneakernet()
    tree, manifest = ensure_tree(workdir, count, seed)
    note(f"warm cache: read the tree once in {warm_cache(tree):.1f} s; nothing is dropped from the page cache")
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return sneakernet, tree, manifest, logs


def run(args: argparse.Namespace) -> dict[str, Any]:
    sneakernet, tree, manifest, logs = prepare(args.workdir, args.count, args.seed)
    out = args.workdir / "many-sneakernet-out"
    commands = sides(sneakernet, tree, out, max(2 * manifest["bytes"], 10**9), args.at_once)
    result: dict[str, Any] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    result |= {"command": shlex.join([sys.executable, *sys.argv]), "load_before": os.getloadavg()}
    result["repo_before"] = repo_state()
    clean = {"sneakernet": out, "sneakernet-at-once": Path(f"{out}-at-once")}
    runs = time_both("pack", commands, clean, logs, args.repeats)
    if not args.no_restore:
        restored, where = time_restore(sneakernet, tree, out, args.workdir, logs, args.repeats, manifest["bytes"])
        runs += restored
        result["restore_target"] = where
    result["repo_after"] = repo_state()
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(f"{out}-at-once", ignore_errors=True)
    rows = summary(runs, manifest["files"], manifest["bytes"])
    result |= {"load_after": os.getloadavg(), "machine": machine_summary(sneakernet, args.workdir)}
    result |= {"tree": manifest | {"path": str(tree)}, "cache": "warm: the tree was read once before timing"}
    result |= {"runs": [vars(m) for m in runs], "summary": rows, "targets": targets(rows, manifest["files"])}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except BenchError as exc:
        note(f"bench: {exc}")
        return 1
    tree = result["tree"]
    print(f"\ntree: {tree['files']:,} files of 1-4 KB, {show_size(tree['bytes'])}; {result['cache']}")
    print(f"repeats: {args.repeats}, medians, sides alternated, sync between runs")
    if "restore_target" in result:
        print(f"restores into {result['restore_target']}")
    print(f"commit: {result['repo_before']['commit']}, modified in src/: {result['repo_before']['modified_src']}")
    print(repo_warning(result["repo_before"], result["repo_after"]), end="")
    print(f"load average before / after: {result['load_before']} / {result['load_after']}\n")
    print(table(result["summary"], result["targets"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
