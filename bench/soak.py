#!/usr/bin/env python3
"""A longer fault-injection soak than the test suite's: bit rot, truncation and loss of drive files, and restore
killed at random moments, for as long as asked, with counts.

    python bench/soak.py --minutes 5

Runs, round after round until the time is up:

* **flips**: one byte of a file of a drive XORed with a random non-zero mask, for every kind of file (segments,
  manifest, drive.json, B3SUMS, catalog), on two shipments (3 drives of 64 KiB chunks in small segments; 6 drives
  of 256 KiB chunks);
* **truncations** to a random shorter length, and **deletions**, of the same files;
* each damaged drive verified alone (``sneakernet.verify``) and the shipment restored with it (damaged drive first,
  then the good ones), every regular file and symlink under a final name compared with the source;
* **kills**: restore of the 6-drive shipment in a child process SIGKILLed at the Nth call of one of the functions
  it uses (N uniform over a whole run), or after a random delay, up to three times in a row, then resumed; the
  final tree compared with the source (bytes, modes, mtimes in ns, owners, symlinks, hard links).

A trial is **silent** when verify called the damaged drive intact, when a wrong byte reached a final name, or when
restore reported a finished, clean shipment that differs from the source. The counts (tried, detected, named,
silent; kills, resumed identical) are printed and written as JSON (default ``bench/results/soak-DATE.json``). Exit
code 1 if anything was silent or failed.

It uses the library and the helpers of tests/test_faults.py, so it runs with the test tools installed (``make
test`` makes such a venv; ``.venv/bin/python bench/soak.py``). As root, restores go to a tmpfs (fsync costs
nothing there, so more trials fit in the time); ``--no-tmpfs`` keeps everything in ``--workdir``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

import test_faults as tf  # noqa: E402
from sneakernet import PackOptions  # noqa: E402

FAULTS = ("flip", "truncate", "delete")
#: Trials per batch before the loop looks at the clock and moves on to the next kind.
BATCH = {"flip": 20, "truncate": 8, "delete": 1}


@dataclasses.dataclass
class Soak:
    work: Path
    rng: random.Random
    deadline: float
    faults: dict[str, Counter[str]] = dataclasses.field(default_factory=lambda: defaultdict(Counter))
    kills: Counter[str] = dataclasses.field(default_factory=Counter)
    kill_points: Counter[str] = dataclasses.field(default_factory=Counter)
    restore_outcomes: dict[str, Counter[str]] = dataclasses.field(default_factory=lambda: defaultdict(Counter))
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    examples: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=lambda: defaultdict(list))

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    def fail(self, what: str, detail: Any) -> None:
        self.failures.append({"what": what, "detail": detail})
        print(f"FAILURE {what}: {str(detail)[:400]}", file=sys.stderr, flush=True)


def fault_batch(soak: Soak, ship: tf.Shipment, name: str, fault: str, kind: str) -> None:
    for _ in range(BATCH[fault]):
        drive = soak.rng.choice(ship.drives)
        file = soak.rng.choice(tf.drive_files(drive, kind))
        try:
            result = tf.fault_trial(ship, drive, file, kind, fault, soak.rng, soak.work)
        except Exception:
            soak.fail(f"{fault} {kind} on {name}", traceback.format_exc())
            continue
        key = f"{fault} {kind}"
        counts = soak.faults[key]
        counts["tried"] += 1
        counts["detected"] += result.detected
        counts["named"] += result.named
        counts["misnamed_known_bug"] += result.misnamed_known
        counts["silent"] += result.silent
        counts["wrong_bytes"] += bool(result.wrong)
        counts["silent_loss"] += result.silent_loss
        soak.restore_outcomes[key][result.restore] += 1
        if result.silent or not (result.named or result.misnamed_known):
            soak.fail(f"{key} on {name}", dataclasses.asdict(result))
        if result.misnamed_known and len(soak.examples["misnamed_known_bug"]) < 5:
            soak.examples["misnamed_known_bug"].append(dataclasses.asdict(result))


def kill_round(soak: Soak, ship: tf.Shipment, plan: tf.KillPlan) -> None:
    dest = soak.work / "kill"
    shutil.rmtree(dest, ignore_errors=True)
    try:
        if soak.rng.random() < 0.5:
            for kill in range(soak.rng.choice((1, 1, 2, 3))):
                name = soak.rng.choice(sorted(plan.counts))
                at = soak.rng.randint(1, plan.counts[name])
                run = tf.kill_child("calls", f"{name}:{at}", dest, ship.drives)
                soak.kills["runs"] += 1
                soak.kills["killed"] += run.killed
                soak.kill_points[name] += run.killed
                wrong = tf.wrong_under_final_names(dest, ship.src_state)
                soak.kills["wrong_bytes"] += bool(wrong)
                if wrong:
                    soak.fail(f"kill at {name}:{at} (kill {kill + 1})", wrong[:5])
                if tf.restore_state(dest) not in ("empty", "in progress"):
                    break  # this run finished the shipment (killed or not afterwards)
        else:
            killed, runs = tf.kill_at_random_moments(ship, dest, plan.seconds, soak.rng, soak.rng.choice((1, 2, 3)))
            soak.kills["runs"] += runs
            soak.kills["killed"] += killed
            soak.kill_points["after a random delay"] += killed
        state = tf.restore_state(dest)
        soak.kills[f"state after the kills: {state}"] += 1
        tf.resume_and_check(ship, dest)
        soak.kills["resumed_identical"] += 1
    except Exception:
        soak.kills["resume_failed"] += 1
        soak.fail("kill and resume", traceback.format_exc())
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    soak.kills["rounds"] += 1


def totals(soak: Soak, prefix: str = "") -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, counts in soak.faults.items():
        if key.startswith(prefix):
            out.update(counts)
    return dict(out)


def report(soak: Soak, args: argparse.Namespace, started: float, setup: dict[str, Any]) -> dict[str, Any]:
    return {
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "minutes_asked": args.minutes,
        "seconds": round(time.monotonic() - started, 1),
        "seed": args.seed,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "repository": repo_state(),
        "setup": setup,
        "faults": {"all": totals(soak), **{f: totals(soak, f) for f in FAULTS}, "by_kind": soak.faults},
        "restore_outcomes": soak.restore_outcomes,
        "kills": {**soak.kills, "by_point": soak.kill_points},
        "examples": soak.examples,
        "failures": soak.failures,
    }


def repo_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "src"))}


def print_summary(result: dict[str, Any]) -> None:
    print(f"\nsoak: {result['seconds']} s, seed {result['seed']}, commit {result['repository']['commit'][:12]}")
    print(f"{'fault':<22}{'tried':>8}{'detected':>10}{'named':>8}{'silent':>8}{'wrong':>7}")
    for key in sorted(result["faults"]["by_kind"]):
        c = result["faults"]["by_kind"][key]
        print(f"{key:<22}{c['tried']:>8}{c['detected']:>10}{c['named']:>8}{c['silent']:>8}{c['wrong_bytes']:>7}")
    for fault in ("all", *FAULTS):
        c = result["faults"][fault]
        if c:
            print(f"{'= ' + fault:<22}{c['tried']:>8}{c['detected']:>10}{c['named']:>8}{c['silent']:>8}"
                  f"{c['wrong_bytes']:>7}")  # fmt: skip
    known = result["faults"]["all"].get("misnamed_known_bug", 0)
    if known:
        print(f"  ({known} drive.json flips detected but named as the manifest or another shipment: known bug)")
    k = result["kills"]
    print(f"kills: {k.get('rounds', 0)} rounds, {k.get('runs', 0)} child runs, {k.get('killed', 0)} killed mid-run, "
          f"{k.get('resumed_identical', 0)} resumed identical, {k.get('wrong_bytes', 0)} with a wrong byte, "
          f"{k.get('resume_failed', 0)} failed")  # fmt: skip
    print(f"failures: {len(result['failures'])}")


@contextlib.contextmanager
def scratch_dir(base: Path, use_tmpfs: bool) -> Any:
    path = base / "scratch"
    path.mkdir()
    mounted = False
    if use_tmpfs:
        try:
            tf.mount_tmpfs(path, "512m")
            mounted = True
        except tf.MountFailed as exc:
            print(f"note: {exc}; restores go to {path}", file=sys.stderr)
    try:
        yield path
    finally:
        if mounted:
            tf.unmount(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON report (default bench/results/soak-DATE.json)")
    parser.add_argument("--workdir", type=Path, default=None, help="where shipments go (default: a temporary dir)")
    parser.add_argument("--no-tmpfs", action="store_true", help="do not mount a tmpfs for the restores")
    parser.add_argument("--kill-share", type=float, default=0.3, help="share of the time spent on kills (0.3)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    args.seed = seed
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="sneakernet-soak-", dir=args.workdir))
    try:
        print(f"soak: {args.minutes} minutes, seed {seed}, in {base}", flush=True)
        fault_ship = tf.make_fault_shipment(base / "fault")
        (base / "kill").mkdir()
        kill_ship = tf.pack_shipment(
            tf.make_kill_tree(base / "kill" / "src"), base / "kill" / "out", 1_500_000,
            PackOptions(chunk_size=256 * 1024, reserve=0),
        )  # fmt: skip
        ships = {"3 drives, 64 KiB chunks": fault_ship, f"{len(kill_ship.drives)} drives, 256 KiB chunks": kill_ship}
        with scratch_dir(base, not args.no_tmpfs) as work:
            plan = tf.plan_kills(kill_ship, work / "plan")
            setup = {
                "shipments": {name: len(ship.drives) for name, ship in ships.items()},
                "kill_plan": {"calls": plan.counts, "seconds": round(plan.seconds, 3)},
                "scratch_on_tmpfs": not args.no_tmpfs and os.path.ismount(work),
            }
            soak = Soak(work, random.Random(seed), started + 60 * args.minutes)
            kill_seconds = 0.0
            last_print = time.monotonic()
            while soak.time_left():
                elapsed = time.monotonic() - started
                if kill_seconds < args.kill_share * elapsed:
                    t = time.monotonic()
                    kill_round(soak, kill_ship, plan)
                    kill_seconds += time.monotonic() - t
                    continue
                name = soak.rng.choice(sorted(ships))
                for fault in FAULTS:
                    for kind in tf.FILE_KINDS:
                        if soak.time_left():
                            fault_batch(soak, ships[name], name, fault, kind)
                if time.monotonic() - last_print > 30:
                    last_print = time.monotonic()
                    t = totals(soak)
                    print(f"  {int(time.monotonic() - started)} s: {t.get('tried', 0)} faults tried, "
                          f"{t.get('silent', 0)} silent; {soak.kills['rounds']} kill rounds", flush=True)  # fmt: skip
        result = report(soak, args, started, setup)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    out = args.out or REPO / "bench" / "results" / f"soak-{datetime.datetime.now():%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_summary(result)
    print(f"written to {out}")
    silent = result["faults"]["all"].get("silent", 0) + result["kills"].get("wrong_bytes", 0)
    return 1 if silent or result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
