#!/usr/bin/env python3
"""Time ``sneakernet plan`` against ``sneakernet pack`` on real trees (issue 7: plan under 10% of pack).

    python bench/plan_vs_pack.py /usr/share /usr/lib/x86_64-linux-gnu --drive-size 150MB

For each tree: read it once to warm the page cache, then run plan and pack alternately (plan, pack, plan, pack ...)
with ``sync`` before each run, and report the median seconds of each, their ratio, and the drives plan said
against the drives pack used (the acceptance: within one). Pack writes into --workdir and its output is removed
after each run. Standard library only; helpers are shared with compare.py.
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
import time
from pathlib import Path
from typing import Any

from compare import (
    DEFAULT_WORKDIR,
    REPO,
    BenchError,
    Command,
    find_sneakernet,
    machine_summary,
    note,
    parse_size,
    repo_state,
    run_checked,
    timed_sync,
    warm_cache,
)

#: The acceptance of issue 7.
PLAN_SHARE_TARGET = 0.10


def tree_ratio(sneakernet: str, tree: Path, drive_size: str, workdir: Path, repeats: int) -> dict[str, Any]:
    """Plan and pack ``tree`` alternately ``repeats`` times; medians, their ratio and the two drive counts."""
    out, logs = workdir / "plan-vs-pack-out", workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    plan = Command([sneakernet, "plan", str(tree), "--drive-size", drive_size, "--json"])
    pack = Command([sneakernet, "pack", str(tree), "--out", str(out), "--drive-size", drive_size, "--quiet"])
    note(f"{tree}: warm cache: read once in {warm_cache(tree):.1f} s")
    seconds: dict[str, list[float]] = {"plan": [], "pack": []}
    planned = packed = 0
    for repeat in range(repeats):
        for step, command in (("plan", plan), ("pack", pack)):
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            log = logs / f"plan-vs-pack-{tree.name}-{step}-{repeat}"
            taken, _ = run_checked(command, log)
            timed_sync()
            seconds[step].append(taken)
            if step == "plan":
                planned = json.loads(log.with_suffix(".out").read_text())["drives_needed"]
            else:
                packed = len([d for d in out.iterdir() if d.name.startswith("drive-")])
            note(f"  {step} #{repeat + 1}  {taken:7.2f} s")
    shutil.rmtree(out, ignore_errors=True)
    plan_median, pack_median = (statistics.median(seconds[step]) for step in ("plan", "pack"))
    return {
        "tree": str(tree),
        "plan_seconds": [round(s, 3) for s in seconds["plan"]],
        "pack_seconds": [round(s, 3) for s in seconds["pack"]],
        "plan_median": round(plan_median, 3),
        "pack_median": round(pack_median, 3),
        "plan_share": round(plan_median / pack_median, 4),
        "drives_planned": planned,
        "drives_packed": packed,
        "met": plan_median / pack_median < PLAN_SHARE_TARGET and abs(planned - packed) <= 1,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'tree':40} {'plan s':>7} {'pack s':>7} {'plan/pack':>9} {'drives plan/pack':>17}", "-" * 84]
    for row in rows:
        drives = f"{row['drives_planned']}/{row['drives_packed']}"
        lines.append(
            f"{row['tree'][-40:]:40} {row['plan_median']:7.2f} {row['pack_median']:7.2f} {row['plan_share']:8.1%}"
            f" {drives:>17}  {'met' if row['met'] else 'NOT MET'}"
        )
    lines.append(f"target (issue 7): plan under {PLAN_SHARE_TARGET:.0%} of pack's time, drive count within one")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees to plan and pack")
    parser.add_argument("--drive-size", default="150MB", help="drive size for both (default 150MB)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/DATE-plan-vs-pack.json)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        parse_size(args.drive_size)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    for tree in args.trees:
        if not tree.is_dir():
            parser.error(f"{tree} is not a directory")
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    args.out = args.out or REPO / "bench" / "results" / f"{stamp}-plan-vs-pack.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sneakernet = find_sneakernet()
        result: dict[str, Any] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        result |= {"command": shlex.join([sys.executable, *sys.argv]), "load_before": os.getloadavg()}
        result["repo"] = repo_state()
        rows = [tree_ratio(sneakernet, t.resolve(), args.drive_size, args.workdir, args.repeats) for t in args.trees]
        result |= {"load_after": os.getloadavg(), "machine": machine_summary(sneakernet, args.workdir)}
        result["trees"] = rows
    except BenchError as exc:
        note(f"bench failed: {exc}")
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    note(f"results: {args.out}")
    return 0 if all(row["met"] for row in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
