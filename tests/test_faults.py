"""Fault injection: bit rot, truncation and loss of every file of a drive, SIGKILL of restore at random moments,
disk full while packing and while restoring (on real, small tmpfs mounts), and a property-based round trip over
random trees, drive sizes, chunk sizes and drive orders.

What every test here holds sneakernet to (docs/reliability.md):

* damage to any file of a drive is reported by ``verify`` (never an intact verdict), and named;
* ``restore`` never leaves a wrong byte under a final name, whatever the damage or the moment of a kill, and
  never reports success for a tree that differs from the source;
* a full disk stops pack or restore with exit code 4 and a message naming the drive or destination, leaves the
  drive detectably unfinished (pack) or the journal intact (restore), and changes nothing in the source.

The helpers at the top (trees, comparisons, one fault trial, the kill child) are also used by bench/soak.py, which
runs the same loops longer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sneakernet.packer as packer
from conftest import drive_dirs, fill_up, inode_groups, make_edge_tree, restored_mode, write_file
from conftest import invoke_cli as cli
from conftest import nonblank_lines as lines
from fakestore import FaultyStore
from sneakernet import PackOptions, pack, restore, verify
from sneakernet.chunks.compress import stored_size_bound
from sneakernet.drive import CatalogReader
from sneakernet.errors import FormatError, OutOfSpace, SneakernetError
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    SEGMENTS_DIR,
)
from sneakernet.io.tree import SafeTree
from sneakernet.restorer.journal import FINISHED_NAME, JOURNAL_DIR, JOURNAL_NAME
from sneakernet.verifier import DriveReport, Status

#: The shipment every bit-rot trial damages: three drives of two or three small segments each.
FAULT_OPTIONS = PackOptions(chunk_size=64 * 1024, segment_size=140_000, reserve=0)
FAULT_DRIVE = 1_400_000
#: Seeded samples per file kind: flips and truncations (the soak runs many more).
FLIPS_PER_KIND = 40
TRUNCATIONS_PER_KIND = 20
#: The files of a drive, by kind.
FILE_KINDS = ("segment", "manifest", "label", "checksums", "catalog")
FIXED_NAMES = {
    "manifest": MANIFEST_NAME,
    "label": DRIVE_LABEL_NAME,
    "checksums": CHECKSUMS_NAME,
    "catalog": CATALOG_NAME,
}


# --- trees and how they compare ------------------------------------------------------------------------------------


def make_fault_tree(root: Path, seed: int = 5) -> Path:
    """About 0.9 MB: small text files grouped into chunks, files spanning drives, odd names, a symlink, a hard
    link, empty files and directories."""
    rng = random.Random(seed)
    for i in range(30):
        words = " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(rng.randint(1, 300)))
        write_file(root / "small" / f"f{i:02d}.txt", (words + "\n").encode())
    write_file(root / "mid.bin", rng.randbytes(200_000))
    write_file(root / "big.bin", rng.randbytes(500_000))
    write_file(root / "empty", b"")
    write_file(root / "ro.txt", b"read only\n", mode=0o444)
    write_file(root / "new\nline", b"a newline in the name\n")
    write_file(root / os.fsdecode(b"bad-\xff"), b"not utf-8\n")
    write_file(root / "caf\u00e9" / "x", b"composed\n")
    (root / "emptydir" / "inner").mkdir(parents=True)
    os.symlink("mid.bin", root / "link")
    os.link(root / "small" / "f01.txt", root / "hard")
    return root


def tree_state(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Every entry below ``root`` (the journal directory aside): kind, content (BLAKE3 of a file, a symlink's
    target), permission bits, mtime in ns, owner. A symlink's own permission bits are not compared."""
    out: dict[bytes, tuple[Any, ...]] = {}
    top = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top and JOURNAL_DIR.encode() in dirnames:
            dirnames.remove(JOURNAL_DIR.encode())
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                entry: tuple[Any, ...] = ("symlink", os.readlink(full), 0)
            elif stat.S_ISDIR(info.st_mode):
                entry = ("dir", None, stat.S_IMODE(info.st_mode))
            else:
                with open(full, "rb") as handle:
                    entry = ("file", blake3.blake3(handle.read()).hexdigest(), stat.S_IMODE(info.st_mode))
            out[os.path.relpath(full, top)] = (*entry, info.st_mtime_ns, info.st_uid, info.st_gid)
    return out


def tree_differences(src: Path, dest: Path, src_state: dict[bytes, tuple[Any, ...]] | None = None) -> list[str]:
    """How ``dest`` differs from ``src`` (empty when identical: entries, bytes, modes, mtimes, owners, links)."""
    want = _as_restored(src_state if src_state is not None else tree_state(src))
    got = tree_state(dest)
    problems = [f"missing {p!r}" for p in sorted(set(want) - set(got))]
    problems += [f"extra {p!r}" for p in sorted(set(got) - set(want))]
    problems += [f"{p!r}: {got[p]} != {want[p]}" for p in sorted(set(want) & set(got)) if got[p] != want[p]]
    if not problems and inode_groups(dest) != inode_groups(src):
        problems.append(f"hard links differ: {inode_groups(dest)} != {inode_groups(src)}")
    return problems


def assert_identical(src: Path, dest: Path) -> None:
    problems = tree_differences(src, dest)
    assert not problems, problems[:10]


def _as_restored(state: dict[bytes, tuple[Any, ...]]) -> dict[bytes, tuple[Any, ...]]:
    """A tree_state as restore installs it by default (files lose their setuid/setgid bits)."""
    return {
        path: (kind, content, restored_mode(kind, mode), *rest) for path, (kind, content, mode, *rest) in state.items()
    }


def wrong_under_final_names(dest: Path, src_state: dict[bytes, tuple[Any, ...]]) -> list[str]:
    """Regular files and symlinks under their final names in ``dest`` that are not exactly the source's (bytes,
    mode and mtime of a file; a symlink's target). Absent entries are not wrong; directories may still wait for
    their metadata."""
    wrong = []
    if not dest.exists():
        return wrong
    restored = _as_restored(src_state)
    for path, entry in tree_state(dest).items():
        if entry[0] == "dir":
            continue
        want = restored.get(path)
        if want is None or want[0] != entry[0]:
            wrong.append(f"{path!r} is not in the source as a {entry[0]}")
        elif entry[0] == "symlink" and entry[1] != want[1]:
            wrong.append(f"symlink {path!r} -> {entry[1]!r}, not {want[1]!r}")
        elif entry[0] == "file" and entry[1:4] != want[1:4]:
            wrong.append(f"file {path!r} holds other bytes or metadata than the source")
    return wrong


# --- tmpfs mounts (tests run as root) ------------------------------------------------------------------------------


class MountFailed(Exception):
    pass


def mount_tmpfs(path: Path, size: str) -> Path:
    """Mount a tmpfs of ``size`` (e.g. ``3m``) on ``path``; :class:`MountFailed` when that is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        raise MountFailed(f"cannot mount a tmpfs on {path} (needs root): {done.stderr.decode().strip()}")
    return path


def resize_tmpfs(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``small_tmpfs("3m")``: a fresh tmpfs of that size, unmounted after the test; the test is skipped when
    mounting is not allowed."""
    mounts: list[Path] = []

    def make(size: str) -> Path:
        path = tmp_path / f"tmpfs{len(mounts)}"
        try:
            mount_tmpfs(path, size)
        except MountFailed as exc:
            pytest.skip(str(exc))
        mounts.append(path)
        return path

    try:
        yield make
    finally:
        for path in mounts:
            unmount(path)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where restores of the many-trial loops go: a tmpfs when it can be mounted (SQLite's and restore's fsyncs
    cost nothing there), else a plain temporary directory."""
    path = tmp_path_factory.mktemp("scratch")
    try:
        mount_tmpfs(path, "256m")
    except MountFailed:
        yield path
        return
    try:
        yield path
    finally:
        unmount(path)


# --- shipments ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Shipment:
    src: Path
    out: Path
    fingerprint: str
    src_state: dict[bytes, tuple[Any, ...]]

    @property
    def drives(self) -> list[Path]:
        return drive_dirs(self.out)


def pack_shipment(src: Path, out: Path, drive_size: int, options: PackOptions) -> Shipment:
    summary = pack(str(src), out=str(out), drive_size=drive_size, options=options)
    return Shipment(src, out, summary.fingerprint, tree_state(src))


def make_fault_shipment(base: Path) -> Shipment:
    ship = pack_shipment(make_fault_tree(base / "fault-src"), base / "fault-out", FAULT_DRIVE, FAULT_OPTIONS)
    assert len(ship.drives) == 3
    assert all(len(os.listdir(d / SEGMENTS_DIR)) >= 1 for d in ship.drives)
    assert max(len(os.listdir(d / SEGMENTS_DIR)) for d in ship.drives) >= 3
    return ship


def make_kill_tree(root: Path) -> Path:
    """The edge tree (a file larger than a drive, links, odd names) and 300 small files in 10 directories."""
    make_edge_tree(root)
    rng = random.Random(9)
    for i in range(300):
        write_file(root / "many" / f"d{i % 10}" / f"f{i:03d}", rng.randbytes(rng.randint(0, 3000)))
    return root


@pytest.fixture(scope="module")
def fault_ship(tmp_path_factory: pytest.TempPathFactory) -> Shipment:
    return make_fault_shipment(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def kill_ship(tmp_path_factory: pytest.TempPathFactory) -> Shipment:
    base = tmp_path_factory.mktemp("kills")
    ship = pack_shipment(
        make_kill_tree(base / "src"), base / "out", 1_500_000, PackOptions(chunk_size=256 * 1024, reserve=0)
    )
    assert len(ship.drives) >= 5
    return ship


# --- 1. bit rot, truncation, loss ---------------------------------------------------------------------------------


def drive_files(drive: Path, kind: str) -> list[str]:
    """The files of ``kind`` on ``drive``, relative to it."""
    if kind == "segment":
        return sorted(f"{SEGMENTS_DIR}/{name}" for name in os.listdir(drive / SEGMENTS_DIR))
    return [FIXED_NAMES[kind]]


#: The problem kinds that name each kind of damage (any one of them; a B3SUMS problem only when its message names
#: the damaged file); a segment flip must be named by the damaged chunk that holds the flipped byte.
NAMED_BY: dict[tuple[str, str], set[str]] = {
    ("flip", "manifest"): {"manifest"},
    ("flip", "label"): {"label", "checksums"},
    ("flip", "checksums"): {"checksums"},
    ("flip", "catalog"): {"catalog", "checksums"},
    ("truncate", "segment"): {"truncated_segment"},
    ("truncate", "manifest"): {"manifest"},
    # Cut by its final newline only, drive.json still parses the same; B3SUMS names it.
    ("truncate", "label"): {"label", "checksums"},
    ("truncate", "checksums"): {"checksums"},
    # Cut within its last 4 bytes (the zstd checksum) the catalog still reads whole; only B3SUMS names it (see
    # test_catalog_cut_in_its_checksum_is_refused, xfail).
    ("truncate", "catalog"): {"catalog", "checksums"},
    ("delete", "segment"): {"missing_segment"},
    ("delete", "manifest"): {"manifest"},
    ("delete", "label"): {"unfinished"},
    ("delete", "checksums"): {"checksums"},
    ("delete", "catalog"): {"checksums"},
}


@dataclasses.dataclass
class FaultOutcome:
    """One damaged file: what verify said, what restore did, and what ended up in the destination."""

    fault: str
    kind: str
    file: str
    where: int
    detected: bool
    named: bool
    problems: list[str]
    restore: str
    wrong: list[str]
    silent_loss: bool
    #: Named wrongly, in the known way of test_drive_json_damage_is_blamed_on_drive_json (xfail): a flip in
    #: drive.json's "drive" or "shipment" value reported as a damaged manifest or another shipment.
    misnamed_known: bool = False

    @property
    def silent(self) -> bool:
        """Damage that went unnoticed: an intact verdict, a wrong byte under a final name, or a restore that
        reported success with a tree that differs from the source."""
        return not self.detected or bool(self.wrong) or self.silent_loss


def apply_fault(path: Path, fault: str, rng: random.Random) -> int:
    """Damage ``path``: flip one byte (XOR a random non-zero mask), truncate it to a random shorter length, or
    delete it. Returns the position flipped or the length kept (-1 for a deletion)."""
    size = path.stat().st_size
    if fault == "flip":
        where = rng.randrange(size)
        with open(path, "r+b") as handle:
            handle.seek(where)
            byte = handle.read(1)[0]
            handle.seek(where)
            handle.write(bytes([byte ^ rng.randrange(1, 256)]))
        return where
    if fault == "truncate":
        where = rng.randrange(size)
        os.truncate(path, where)
        return where
    assert fault == "delete"
    path.unlink()
    return -1


def problem_kinds(report: DriveReport) -> list[str]:
    return [p.kind for p in report.problems] + ["damaged_chunk"] * len(report.damaged_chunks)


def _named(report: DriveReport, fault: str, kind: str, name: str, where: int) -> bool:
    if (fault, kind) == ("flip", "segment"):
        return any(
            c.segment == name and c.offset <= where < c.offset + c.stored_size and c.paths
            for c in report.damaged_chunks
        )
    # A B3SUMS problem names the damaged file only when its message does (or when B3SUMS is the damaged file).
    return any(
        p.kind in NAMED_BY[fault, kind] and (p.kind != "checksums" or kind == "checksums" or name in p.message)
        for p in report.problems
    )


#: drive.json values whose damage verify blames on the manifest (bug, see test_drive_json_damage_is_blamed_...).
MISATTRIBUTED_LABEL_FIELDS = ("drive", "shipment")


def label_field_at(data: bytes, where: int) -> str | None:
    """The key of the pretty-printed drive.json line holding byte ``where``, if that byte is in its value."""
    start = data.rfind(b"\n", 0, where) + 1
    line = data[start : data.find(b"\n", where) if b"\n" in data[where:] else len(data)]
    key, sep, _ = line.partition(b": ")
    if not sep or where - start < len(key) + len(sep):
        return None
    return key.strip().strip(b'"').decode("ascii", "replace")


def restore_damaged(damaged: Path, drives: Sequence[Path], dest: Path) -> tuple[str, bool]:
    """Restore the damaged drive first (its catalog starts the journal), with every other drive; if the run
    refuses as a whole, restore the good drives alone. Returns (what happened, whether restore called it a
    clean, finished shipment)."""
    others = [str(d) for d in drives if d != damaged]
    try:
        report = restore([str(damaged), *others], str(dest))
    except SneakernetError as exc:
        with contextlib.suppress(SneakernetError):
            restore(others, str(dest))
        return f"raised {type(exc).__name__}", False
    statuses = sorted({d.status for d in report.drives})
    clean = report.clean and report.status.finished
    return ("clean" if clean else "+".join(statuses) + ("" if report.status.finished else ", unfinished")), clean


def fault_trial(
    ship: Shipment, drive: Path, name: str, kind: str, fault: str, rng: random.Random, work: Path
) -> FaultOutcome:
    """Damage one file of ``drive``, verify the drive alone, restore the shipment, then undo the damage."""
    path = drive / name
    original = path.read_bytes()
    dest = work / "dest"
    try:
        where = apply_fault(path, fault, rng)
        report = verify([str(drive)]).drives[0]
        outcome, clean = restore_damaged(drive, ship.drives, dest)
        wrong = wrong_under_final_names(dest, ship.src_state)
        silent_loss = clean and bool(tree_differences(ship.src, dest, ship.src_state))
    finally:
        path.write_bytes(original)
        shutil.rmtree(dest, ignore_errors=True)
    named = _named(report, fault, kind, name, where)
    known = (
        not named
        and (fault, kind) == ("flip", "label")
        and label_field_at(original, where) in MISATTRIBUTED_LABEL_FIELDS
        and bool({"manifest", "other_shipment"} & set(problem_kinds(report)))
    )
    return FaultOutcome(
        fault, kind, f"{drive.name}/{name}", where, not report.ok, named, problem_kinds(report), outcome, wrong,
        silent_loss, known,
    )  # fmt: skip


def fault_trials(ship: Shipment, fault: str, kind: str, count: int, seed: Any, work: Path) -> list[FaultOutcome]:
    rng = random.Random(f"{fault}-{kind}-{seed}")
    results = []
    for _ in range(count):
        drive = rng.choice(ship.drives)
        name = rng.choice(drive_files(drive, kind))
        results.append(fault_trial(ship, drive, name, kind, fault, rng, work))
    return results


def tally(results: Sequence[FaultOutcome]) -> dict[str, int]:
    return {
        "tried": len(results),
        "detected": sum(r.detected for r in results),
        "named": sum(r.named for r in results),
        "misnamed_known_bug": sum(r.misnamed_known for r in results),
        "silent": sum(r.silent for r in results),
        "wrong_bytes": sum(bool(r.wrong) for r in results),
        "silent_loss": sum(r.silent_loss for r in results),
    }


def _check_trials(ship: Shipment, results: list[FaultOutcome]) -> None:
    counts = tally(results)
    print(f"{results[0].fault} {results[0].kind}: {counts}; restore: {dict(Counter(r.restore for r in results))}")
    assert counts["silent"] == 0, [r for r in results if r.silent][:5]
    assert counts["named"] + counts["misnamed_known_bug"] == counts["tried"], [
        r for r in results if not r.named and not r.misnamed_known
    ][:5]
    # Each trial undid its damage: the shipment is intact again for the next test.
    assert verify([str(d) for d in ship.drives]).ok


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_flipped_byte_is_detected_and_never_restored(fault_ship: Shipment, scratch: Path, kind: str) -> None:
    results = fault_trials(fault_ship, "flip", kind, FLIPS_PER_KIND, 0, scratch)
    _check_trials(fault_ship, results)


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_truncation_is_detected_and_never_restored(fault_ship: Shipment, scratch: Path, kind: str) -> None:
    results = fault_trials(fault_ship, "truncate", kind, TRUNCATIONS_PER_KIND, 0, scratch)
    _check_trials(fault_ship, results)


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_lost_file_is_detected_and_never_restored(fault_ship: Shipment, scratch: Path, kind: str) -> None:
    rng = random.Random(1)
    results = [
        fault_trial(fault_ship, drive, name, kind, "delete", rng, scratch)
        for drive in fault_ship.drives
        for name in drive_files(drive, kind)
    ]
    _check_trials(fault_ship, results)


@pytest.mark.parametrize("cut", [1, 4])
def test_catalog_cut_in_its_checksum_is_refused(fault_ship: Shipment, tmp_path: Path, cut: int) -> None:
    path = tmp_path / CATALOG_NAME
    path.write_bytes((fault_ship.drives[0] / CATALOG_NAME).read_bytes()[:-cut])
    try:
        for _ in CatalogReader(str(path)).records():
            pass
    except FormatError:
        return
    raise AssertionError(f"a catalog without the last {cut} bytes of its zstd frame was read as whole")


@pytest.mark.parametrize("field", MISATTRIBUTED_LABEL_FIELDS)
def test_drive_json_damage_is_blamed_on_drive_json(fault_ship: Shipment, tmp_path: Path, field: str) -> None:
    drive = shutil.copytree(fault_ship.drives[1], tmp_path / "drive-0002")
    label = drive / DRIVE_LABEL_NAME
    data = label.read_bytes()
    # One byte of the value changes to another that parses: drive 2 says 3, the shipment id's first digit changes.
    key = f'"{field}": '.encode() + (b"" if field == "drive" else b'"')
    at = data.index(key) + len(key)
    label.write_bytes(data[:at] + (b"3" if data[at : at + 1] != b"3" else b"4") + data[at + 1 :])
    report = verify([str(drive)]).drives[0]
    kinds = problem_kinds(report)
    assert report.status == Status.DAMAGED.value, report.problems
    assert "label" in kinds or "checksums" in kinds, report.problems
    assert "manifest" not in kinds and "other_shipment" not in kinds, report.problems


# --- 2. restore killed at random moments, then resumed -------------------------------------------------------------

#: A child that restores DRIVES into DEST: ``count`` reports how often each hooked function was called in a whole
#: run, ``calls NAME:N`` SIGKILLs itself at the Nth call of NAME, ``calls NAME@BASE`` right after the first call of
#: NAME whose first argument is a path named BASE, ``timer`` says "ready" once imported (the parent kills it after a
#: random delay).
KILL_CHILD = r"""
import importlib, json, os, signal, sys
restore = importlib.import_module("sneakernet.restorer")
drive = importlib.import_module("sneakernet.restorer.drive_restorer")
catalog = importlib.import_module("sneakernet.restorer.catalog")
journal = importlib.import_module("sneakernet.restorer.journal")
tree = importlib.import_module("sneakernet.io.tree")
mode, arg, dest, *drives = sys.argv[1:]
HOOKS = {
    "pwrite": (os, "pwrite"), "rename": (os, "rename"), "replace": (os, "replace"),
    "sync": (tree.SafeTree, "sync"),
    "link": (os, "link"), "symlink": (os, "symlink"), "utime": (os, "utime"), "ftruncate": (os, "ftruncate"),
    "mkdir": (os, "mkdir"), "unlink": (os, "unlink"), "copy": (catalog, "copy_atomic"),
    "commit": (journal.Journal, "commit"), "install": (tree.SafeTree, "install"),
    "set_metadata": (tree.SafeTree, "set_metadata"),
}
counts = dict.fromkeys(HOOKS, 0)
kill_at = kill_after = None
if mode == "calls" and "@" in arg:
    kill_after = tuple(arg.split("@", 1))
elif mode == "calls":
    name, n = arg.split(":")
    kill_at = (name, int(n))

def hook(name, real):
    def wrapper(*args, **kwargs):
        counts[name] += 1
        if kill_at == (name, counts[name]):
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if kill_after and kill_after[0] == name and args and os.path.basename(os.fsdecode(args[0])) == kill_after[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

if mode in ("count", "calls"):
    for name, (owner, attr) in HOOKS.items():
        setattr(owner, attr, hook(name, getattr(owner, attr)))
print("ready", flush=True)
restore.restore(drives, dest)
if mode == "count":
    print(json.dumps(counts), flush=True)
"""


@dataclasses.dataclass
class ChildRun:
    code: int
    last_line: str
    #: Seconds from "ready" to the child's end.
    seconds: float

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


def kill_child(mode: str, arg: str, dest: Path, drives: Sequence[Path], delay: float | None = None) -> ChildRun:
    """Run the child; with ``delay``, SIGKILL it that many seconds after it is ready."""
    args = [sys.executable, "-c", KILL_CHILD, mode, arg, str(dest), *map(str, drives)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        ready = child.stdout.readline()
        started = time.monotonic()
        assert ready == b"ready\n", child.stderr.read().decode()
        if delay is not None:
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        out, err = child.communicate(timeout=120)
        seconds = time.monotonic() - started
    assert child.returncode in (0, -signal.SIGKILL), err.decode()
    return ChildRun(child.returncode, (out.decode().strip().splitlines() or [""])[-1], seconds)


@dataclasses.dataclass
class KillPlan:
    """How often each hooked function is called in a whole restore of the shipment, and how long it takes."""

    counts: dict[str, int]
    seconds: float


def plan_kills(ship: Shipment, dest: Path) -> KillPlan:
    """Count the calls of a whole run, and time one without hooks."""
    counted = kill_child("count", "", dest, ship.drives)
    shutil.rmtree(dest)
    timed = kill_child("timer", "", dest, ship.drives)
    shutil.rmtree(dest)
    assert counted.code == timed.code == 0
    return KillPlan({name: n for name, n in json.loads(counted.last_line).items() if n}, timed.seconds)


def kill_at_random_moments(
    ship: Shipment, dest: Path, seconds: float, rng: random.Random, kills: int = 3
) -> tuple[int, int]:
    """Kill restore runs of the whole shipment after random delays until ``kills`` runs were killed before they
    finished the shipment (a run that finishes ends the loop; before the first kill it starts over in an empty
    destination). After every run, no final name holds a wrong byte. Returns (runs killed, runs started).

    ``seconds`` is how long one run took when timed; a run that finishes before its kill (the machine was faster
    this time) narrows the window of delays, so that a fast machine does not fail the test."""
    done = 0
    window = seconds
    for runs in range(1, 4 * kills + 5):
        run = kill_child("timer", "", dest, ship.drives, delay=rng.uniform(0, window))
        assert wrong_under_final_names(dest, ship.src_state) == []
        if run.killed and restore_state(dest) in ("empty", "in progress"):
            done += 1
            if done == kills:
                return done, runs
        elif done:
            return done, runs
        else:
            shutil.rmtree(dest)
            window *= 0.6
    raise AssertionError(f"only {done} of {kills} runs could be killed before they finished")


@pytest.fixture(scope="module")
def kill_plan(kill_ship: Shipment, scratch: Path) -> KillPlan:
    plan = plan_kills(kill_ship, scratch / "plan")
    assert {"pwrite", "rename", "sync", "commit", "install", "link", "symlink"} <= set(plan.counts)
    return plan


def restore_state(dest: Path) -> str:
    """Where a restore into ``dest`` stands, from what is on disk: ``empty`` (nothing, or only a journal directory
    being set up), ``in progress`` (a journal), ``finished`` (the finished record and no journal: the last run
    finished the shipment, whether or not it was killed before it could exit), or ``cleanup killed`` (entries and
    a journal directory holding neither: no run leaves that now that the finished record is written before the
    journal goes)."""
    journal = dest / JOURNAL_DIR
    names = set(os.listdir(dest)) if dest.is_dir() else set()
    if (journal / JOURNAL_NAME).exists():
        return "in progress"
    if (journal / FINISHED_NAME).exists():
        return "finished"
    if not names - {JOURNAL_DIR}:
        return "empty"
    return "cleanup killed" if journal.is_dir() else "finished"


def resume_and_check(ship: Shipment, dest: Path) -> None:
    """The final run after the kills: clean, finished, journal removed, the tree identical to the source. A run
    that finished the shipment needs no further run (running again into a finished destination is a no-op)."""
    state = restore_state(dest)
    if state in ("empty", "in progress"):
        report = restore([str(d) for d in ship.drives], str(dest))
        assert {d.status for d in report.drives} <= {"restored", "already"}, report.drives
        assert report.status.finished
        state = restore_state(dest)
    assert state == "finished"
    assert_identical(ship.src, dest)
    # However the last run ended, the drives once more are a no-op.
    assert {d.status for d in restore([str(d) for d in ship.drives], str(dest)).drives} == {"already"}


@pytest.mark.parametrize("seed", range(12))
def test_restore_killed_at_a_random_call_resumes_identical(
    kill_ship: Shipment, kill_plan: KillPlan, scratch: Path, seed: int
) -> None:
    """SIGKILL at the Nth call of a function restore uses (N uniform over a whole run), then, half the time,
    again during the resumed run; the final run gives the identical tree."""
    rng = random.Random(f"calls-{seed}")
    dest = scratch / f"calls-{seed}"
    for kill in range(1 + seed % 2):
        name = rng.choice(sorted(kill_plan.counts))
        at = rng.randint(1, kill_plan.counts[name])
        run = kill_child("calls", f"{name}:{at}", dest, kill_ship.drives)
        assert kill > 0 or run.killed, f"{name}:{at} did not kill the first run"
        assert wrong_under_final_names(dest, kill_ship.src_state) == [], f"killed at {name}:{at}"
        if restore_state(dest) not in ("empty", "in progress"):
            break  # this run finished the shipment (killed or not afterwards)
    resume_and_check(kill_ship, dest)
    shutil.rmtree(dest)


@pytest.mark.parametrize("seed", range(6))
def test_restore_killed_after_a_random_delay_resumes_identical(
    kill_ship: Shipment, kill_plan: KillPlan, scratch: Path, seed: int
) -> None:
    """SIGKILL after a random delay, three times in a row (each kill hits the run that resumes the last one)."""
    dest = scratch / f"delay-{seed}"
    kill_at_random_moments(kill_ship, dest, kill_plan.seconds, random.Random(f"delay-{seed}"))
    resume_and_check(kill_ship, dest)
    shutil.rmtree(dest)


@pytest.mark.parametrize("seed", range(3))
def test_restore_drive_by_drive_killed_at_random_moments(fault_ship: Shipment, scratch: Path, seed: int) -> None:
    """One drive per run, in a random order; each run is killed after a random delay, then run again."""
    rng = random.Random(f"drives-{seed}")
    dest = scratch / f"drives-{seed}"
    drives = fault_ship.drives
    rng.shuffle(drives)
    # How long each drive's run takes in this order, measured in a probe destination.
    took = [kill_child("timer", "", dest / "probe", [drive]).seconds for drive in drives]
    shutil.rmtree(dest / "probe")
    kills = 0
    for drive, seconds in zip(drives, took, strict=True):
        run = kill_child("timer", "", dest, [drive], delay=rng.uniform(0, 0.8 * seconds))
        assert wrong_under_final_names(dest, fault_ship.src_state) == []
        kills += run.killed
        if restore_state(dest) in ("empty", "in progress"):
            report = restore([str(drive)], str(dest))
            assert [d.status for d in report.drives] in (["restored"], ["already"]), report.drives
    assert kills, "no run was killed: the delays were all too long"
    assert restore_state(dest) == "finished"
    assert_identical(fault_ship.src, dest)
    shutil.rmtree(dest)


def test_restore_killed_while_removing_its_journal_finishes_on_the_next_run(
    fault_ship: Shipment, scratch: Path
) -> None:
    dest = scratch / "cleanup"
    # restore removes its journal file last: killed while it removes the rest, it leaves a journal saying finished.
    run = kill_child("calls", "unlink@catalog.jsonl.zst", dest, fault_ship.drives)
    assert run.killed and restore_state(dest) == "in progress"
    assert_identical(fault_ship.src, dest)  # the data is all there
    try:
        report = restore([str(d) for d in fault_ship.drives], str(dest))
        assert report.status.finished and os.listdir(dest / JOURNAL_DIR) == [FINISHED_NAME]
    finally:
        shutil.rmtree(dest)


# --- 3. disk full while packing -----------------------------------------------------------------------------------


def make_big_source(root: Path) -> Path:
    """About 5 MB that does not compress, bigger than the 3 MiB tmpfs drives below, and 20 small files."""
    rng = random.Random(3)
    for i in range(5):
        write_file(root / f"part{i}.bin", rng.randbytes(1_000_000))
    for i in range(20):
        write_file(root / "notes" / f"n{i:02d}.txt", f"note {i}\n".encode() * 50)
    os.symlink("part0.bin", root / "link")
    return root


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_big_source(tmp_path_factory.mktemp("big") / "src")


def assert_unfinished(drive: Path) -> None:
    """No drive.json, and verify says unfinished (not intact, not merely damaged)."""
    assert not (drive / DRIVE_LABEL_NAME).exists()
    report = verify([str(drive)]).drives[0]
    assert report.status == Status.UNFINISHED.value, report.problems


def assert_one_line_error(err: str, *words: str) -> None:
    assert "Traceback" not in err and len(lines(err)) == 1, err
    for word in words:
        assert word in err, (word, err)


def test_pack_onto_a_mounted_drive_smaller_than_the_data_is_refused_before_writing(
    big_source: Path, small_tmpfs: Callable[[str], Path]
) -> None:
    """--drive measures the drive's free space: a 3 MiB drive for 5 MB is refused up front (exit 2), whatever
    --drive-size says, and nothing is written."""
    drive = small_tmpfs("3m")
    before = tree_state(big_source)
    code, _, err = cli("pack", big_source, "--drive", drive, "--drive-size", "50MB", "--chunk-size", "64KiB")
    assert code == 2
    assert_one_line_error(err, "add drives")
    assert os.listdir(drive) == []
    assert tree_state(big_source) == before


def test_pack_onto_a_drive_that_holds_less_than_it_reports(
    big_source: Path, small_tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A fake-capacity drive (or one another program fills meanwhile): it says 50 MB free and holds 3 MiB. Pack
    stops with exit 4 naming the drive; the drive is unfinished, restore refuses it, the source is untouched."""
    drive = small_tmpfs("3m")
    real = shutil.disk_usage

    def lying(path: Any) -> Any:
        usage = real(path)
        return usage._replace(total=50_000_000, free=50_000_000) if Path(path) == drive else usage

    monkeypatch.setattr(shutil, "disk_usage", lying)
    before = tree_state(big_source)
    code, _, err = cli("pack", big_source, "--drive", drive, "--drive-size", "50MB", "--chunk-size", "64KiB")
    monkeypatch.undo()
    assert code == 4
    assert_one_line_error(err, "drive-0001", str(drive), "full", "unfinished", "run the same pack with --resume")
    assert_unfinished(drive)
    code, out, err = cli("restore", drive, "--into", tmp_path / "dest")
    assert code != 0 and "unfinished" in out + err and "Traceback" not in err
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    assert tree_state(big_source) == before


def test_pack_out_onto_a_small_tmpfs(big_source: Path, small_tmpfs: Callable[[str], Path]) -> None:
    """--out takes --drive-size as given: 50 MB drives on a 3 MiB filesystem fill at once."""
    out = small_tmpfs("3m") / "out"
    before = tree_state(big_source)
    code, _, err = cli("pack", big_source, "--out", out, "--drive-size", "50MB", "--chunk-size", "64KiB")
    assert code == 4
    assert_one_line_error(err, "drive-0001", str(out / "drive-0001"), "full")
    assert [d.name for d in drive_dirs(out)] == ["drive-0001"]
    assert_unfinished(out / "drive-0001")
    assert tree_state(big_source) == before


def test_pack_out_fills_on_a_later_drive_then_packs_whole_with_room(
    big_source: Path, small_tmpfs: Callable[[str], Path], tmp_path: Path
) -> None:
    """1.4 MB drives on a 3 MiB filesystem: the first drives finish, a later one fills. Nothing looks like a
    finished shipment (no catalog anywhere, the last drive unfinished), verify and restore say so; with room, a new
    pack of the same source restores identical."""
    mount = small_tmpfs("3m")
    out = mount / "out"
    before = tree_state(big_source)
    args = ("--drive-size", "1.4MB", "--chunk-size", "64KiB", "--reserve", "0")
    code, _, err = cli("pack", big_source, "--out", out, *args)
    drives = drive_dirs(out)
    assert code == 4 and len(drives) >= 2
    assert_one_line_error(err, drives[-1].name, "full")
    assert all((d / DRIVE_LABEL_NAME).exists() for d in drives[:-1])
    assert not any((d / CATALOG_NAME).exists() for d in drives)
    assert_unfinished(drives[-1])
    assert verify([str(d) for d in drives]).ok is False
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code != 0 and "Traceback" not in err
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    assert tree_state(big_source) == before
    # With room, the same source packs whole (into a new output: this pack knows nothing of the failed one).
    shutil.rmtree(out)
    resize_tmpfs(mount, "64m")
    code, _, err = cli("pack", big_source, "--out", mount / "again", *args)
    assert code == 0, err
    assert verify([str(d) for d in drive_dirs(mount / "again")]).ok
    assert restore([str(d) for d in drive_dirs(mount / "again")], str(tmp_path / "dest2")).status.finished
    assert_identical(big_source, tmp_path / "dest2")


@pytest.fixture
def catalog_enospc(
    small_tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], tuple[int, str, list[Path]]]:
    """Pack the fault tree onto 1.4 MB drives in a tmpfs that another program fills just before the catalog is
    written: drive 1's catalog fits, the copy to drive 2 does not."""

    def run() -> tuple[int, str, list[Path]]:
        mount = small_tmpfs("16m")
        src = make_fault_tree(mount / "src")

        def fill_before_the_catalog(name: str) -> None:
            if name == CATALOG_NAME and not (mount / "filler").exists():
                fill_up(mount)

        # pack opens each drive through packer.LocalStore, the drive store's seam (io/store.py).
        monkeypatch.setattr(packer, "LocalStore", lambda path: FaultyStore(path, before_create=fill_before_the_catalog))
        args = ("--drive-size", "1.4MB", "--chunk-size", "64KiB", "--reserve", "0", "--segment-size", "140000")
        code, _, err = cli("pack", src, "--out", mount / "out", *args)
        monkeypatch.undo()
        (mount / "filler").unlink()
        return code, err, drive_dirs(mount / "out")

    return run


def test_pack_disk_full_while_the_catalog_is_written_loses_nothing(
    catalog_enospc: Callable[[], tuple[int, str, list[Path]]], tmp_path: Path
) -> None:
    code, err, drives = catalog_enospc()
    assert code == 4 and "Traceback" not in err and len(lines(err)) == 1
    # Every drive was finished before; drive 1 holds the whole catalog, drive 2 only a .partial.
    assert all((d / DRIVE_LABEL_NAME).exists() for d in drives)
    assert (drives[0] / CATALOG_NAME).exists() and not (drives[1] / CATALOG_NAME).exists()
    report = verify([str(d) for d in drives])
    assert not report.ok and not report.drives[0].ok and not report.drives[1].ok
    restored = restore([str(d) for d in drives], str(tmp_path / "dest"))
    assert restored.status.finished
    assert_identical(drives[0].parent.parent / "src", tmp_path / "dest")


def test_pack_disk_full_while_the_catalog_is_written_names_the_drive(
    catalog_enospc: Callable[[], tuple[int, str, list[Path]]],
) -> None:
    code, err, drives = catalog_enospc()
    assert code == 4
    assert drives[1].name in err and str(drives[1]) in err


# --- 4. disk full while restoring ---------------------------------------------------------------------------------


def restore_until_done(ship: Shipment, dest: Path, mount: Path, runs: Sequence[Sequence[Path]], size_mb: int) -> int:
    """Run ``restore RUN --into dest`` for each run of drives, growing the filesystem by 1 MiB after each disk-full
    exit; after every exit no final name holds a wrong byte and (mid-shipment) the journal still reads. Returns how
    many runs ended with a full disk."""
    full = 0
    for drives in runs:
        while True:
            # Past the up-front check of free space: these runs are to fill the disk half way.
            code, out, err = cli("restore", *drives, "--into", dest, "--no-space-check")
            assert wrong_under_final_names(dest, ship.src_state) == []
            if code == 0:
                break
            assert code == 4, out + err
            assert_one_line_error(err, str(dest), "is full", "run the same restore again")
            full += 1
            state, _, status_err = cli("status", dest, "--json")
            assert state == 3, status_err
            size_mb += 1
            assert size_mb < 64, "restore never finished"
            resize_tmpfs(mount, f"{size_mb}m")
    return full


@pytest.mark.parametrize("path", ["pooled", "large"])
def test_restore_disk_full_again_and_again_until_it_fits(
    kill_ship: Shipment, small_tmpfs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """All drives at once onto a 1 MiB tmpfs, grown by 1 MiB after each disk-full exit: every run stops cleanly
    with exit 4, the journal keeps what is done, and the last run gives the identical tree. ``large``: every file
    takes the large-file path (its writes on the writer pool, its hash on the lane)."""
    if path == "large":
        monkeypatch.setattr(importlib.import_module("sneakernet.restorer.drive_restorer"), "POOLED_FILE_LIMIT", 1)
    mount = small_tmpfs("1m")
    dest = mount / "dest"
    full = restore_until_done(kill_ship, dest, mount, [kill_ship.drives], 1)
    assert full >= 2
    assert os.listdir(dest / JOURNAL_DIR) == [FINISHED_NAME]
    assert_identical(kill_ship.src, dest)


def test_restore_drive_by_drive_on_a_filling_disk(kill_ship: Shipment, small_tmpfs: Callable[[str], Path]) -> None:
    """One drive per run, last drive first, on a disk that fills again and again."""
    mount = small_tmpfs("1m")
    dest = mount / "dest"
    full = restore_until_done(kill_ship, dest, mount, [[d] for d in reversed(kill_ship.drives)], 1)
    assert full >= 2
    assert_identical(kill_ship.src, dest)


@pytest.mark.parametrize("size", ["4k", "64k"])
def test_restore_disk_full_while_the_journal_is_set_up(
    fault_ship: Shipment, small_tmpfs: Callable[[str], Path], size: str
) -> None:
    mount = small_tmpfs(size)
    with pytest.raises(OutOfSpace):
        restore([str(d) for d in fault_ship.drives], str(mount / "dest"))


@pytest.mark.parametrize("size", ["4k", "64k"])
def test_restore_after_a_disk_full_journal_set_up_finishes_with_room(
    fault_ship: Shipment, small_tmpfs: Callable[[str], Path], size: str
) -> None:
    """Whatever the first run left (a catalog copy, a half-made journal), the same command finishes once there is
    room."""
    mount = small_tmpfs(size)
    dest = mount / "dest"
    with contextlib.suppress(OutOfSpace, sqlite3.OperationalError, OSError):
        restore([str(d) for d in fault_ship.drives], str(dest))
    assert wrong_under_final_names(dest, fault_ship.src_state) == []
    resize_tmpfs(mount, "16m")
    code, out, err = cli("restore", *fault_ship.drives, "--into", dest)
    assert code == 0, out + err
    assert_identical(fault_ship.src, dest)


# --- 5. property: random trees, drive sizes, chunk sizes and drive orders round-trip ------------------------------

#: Name pieces: ASCII, both cases, composed non-ASCII, a newline, a space, a dot, a byte that is not UTF-8.
NAME_PARTS = [b"a", b"B", b"\xc3\xa9", b"\xe2\x82\xac", b"\n", b" ", b".", b"\xff"]
NAMES = (
    st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4).map(b"".join).filter(lambda n: n not in (b".", b".."))
)
FILE_MODES = [0o644, 0o600, 0o755, 0o444, 0o000, 0o4755, 0o2750, 0o1644]
DIR_MODES = [0o755, 0o700, 0o555, 0o1777, 0o2775]
MTIMES = st.one_of(st.integers(0, 4_000_000_000 * 10**9), st.integers(-2_000_000_000 * 10**9, 0))
SIZES = st.one_of(st.just(0), st.integers(1, 3000), st.integers(3000, 300_000), st.integers(150_000, 300_000))


@dataclasses.dataclass
class Node:
    kind: str
    path: bytes
    mode: int = 0
    mtime_ns: int = 0
    size: int = 0
    seed: int = 0
    style: str = "random"
    target: bytes = b""


@st.composite
def trees(draw: st.DrawFn) -> list[Node]:
    """Up to 14 entries in up to a few directories: files (empty, small, up to 300 KB, and at most one larger
    than any drive below), directories (some empty), relative symlinks (some dangling), hard links."""
    nodes: list[Node] = []
    dirs: list[bytes] = [b""]
    files: list[bytes] = []
    taken: set[bytes] = set()
    big = False
    for _ in range(draw(st.integers(1, 14))):
        parent = draw(st.sampled_from(dirs))
        path = parent + b"/" + draw(NAMES) if parent else draw(NAMES)
        if path in taken:
            continue
        taken.add(path)
        kind = draw(st.sampled_from(["file", "file", "file", "dir", "dir", "symlink", "hardlink"]))
        mtime = draw(MTIMES)
        if kind == "hardlink" and not files:
            kind = "file"
        if kind == "dir":
            dirs.append(path)
            nodes.append(Node("dir", path, draw(st.sampled_from(DIR_MODES)), mtime))
        elif kind == "file":
            size = draw(SIZES)
            if not big and draw(st.integers(0, 2)) == 0:
                size, big = draw(st.integers(1_500_000, 2_600_000)), True
            style = draw(st.sampled_from(["random", "text", "zeros"]))
            nodes.append(
                Node("file", path, draw(st.sampled_from(FILE_MODES)), mtime, size, draw(st.integers(0, 9)), style)
            )
            files.append(path)
        elif kind == "symlink":
            target = draw(st.sampled_from([b"a", b"../B", b"\xc3\xa9/x", b"does/not/exist", b".", b"..", b"a\nb"]))
            nodes.append(Node("symlink", path, 0, mtime, target=target))
        else:
            nodes.append(Node("hardlink", path, target=draw(st.sampled_from(files))))
    return nodes


def file_bytes(node: Node) -> bytes:
    rng = random.Random(node.seed)
    if node.style == "zeros":
        return bytes(node.size)
    if node.style == "text":
        words = b" ".join(rng.choice([b"alpha", b"beta", b"gamma", b"\n"]) for _ in range(node.size // 4 + 1))
        return words[: node.size]
    return rng.randbytes(node.size)


def build_tree(root: Path, nodes: list[Node]) -> None:
    """Make the tree; directory modes and mtimes last, deepest first."""
    top = os.fsencode(root)
    os.mkdir(top)
    for node in nodes:
        full = os.path.join(top, node.path)
        if node.kind == "dir":
            os.mkdir(full)
        elif node.kind == "file":
            with open(full, "wb") as handle:
                handle.write(file_bytes(node))
            os.chmod(full, node.mode)
            os.utime(full, ns=(node.mtime_ns, node.mtime_ns))
        elif node.kind == "symlink":
            os.symlink(node.target, full)
            os.utime(full, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)
        else:
            os.link(os.path.join(top, node.target), full)
    for node in sorted((n for n in nodes if n.kind == "dir"), key=lambda n: -n.path.count(b"/")):
        full = os.path.join(top, node.path)
        os.chmod(full, node.mode)
        os.utime(full, ns=(node.mtime_ns, node.mtime_ns))


def min_drive_size(chunk_size: int) -> int:
    """Comfortably above the smallest drive pack accepts for trees of this size with this chunk size."""
    return 1_200_000 + 2 * (chunk_size - 64 * 1024)


#: Examples per run of the property test; SNEAKERNET_PROPERTY_EXAMPLES=500 for a longer search.
PROPERTY_EXAMPLES = int(os.environ.get("SNEAKERNET_PROPERTY_EXAMPLES", "15"))


@settings(
    max_examples=PROPERTY_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(nodes=trees(), chunk_kib=st.integers(64, 256), extra=st.integers(0, 800_000), small_segments=st.booleans(),
       data=st.data())  # fmt: skip
def test_random_trees_round_trip_in_any_drive_order(
    scratch: Path, nodes: list[Node], chunk_kib: int, extra: int, small_segments: bool, data: st.DataObject
) -> None:
    chunk = chunk_kib * 1024
    options = PackOptions(
        chunk_size=chunk, reserve=0, segment_size=2 * stored_size_bound(chunk) if small_segments else 2**30
    )
    work = scratch / "property"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        src = work / "src"
        build_tree(src, nodes)
        summary = pack(str(src), out=str(work / "out"), drive_size=min_drive_size(chunk) + extra, options=options)
        drives = drive_dirs(work / "out")
        event(f"{min(len(drives), 4)}{'+' if len(drives) >= 4 else ''} drives")
        order = data.draw(st.permutations(drives), label="drive order")
        # Split the order into runs of one or more drives each.
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=len(order)), label="runs"))
        runs = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if a < b]
        dest = work / "dest"
        for number, run in enumerate(runs, start=1):
            report = restore([str(d) for d in run], str(dest))
            assert {d.status for d in report.drives} == {"restored"}, report.drives
            assert report.status.finished == (number == len(runs))
        assert report.status.fingerprint == summary.fingerprint
        assert os.listdir(dest / JOURNAL_DIR) == [FINISHED_NAME]
        assert_identical(src, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- 6. write order: what is reported done is durable ------------------------------------------------------------
#
# A power cut cannot be simulated here; the order of the system calls can be checked. A rename is durable only once
# its directory is fsynced (or the filesystem synced): until then, a power loss can undo it even though a later
# rename (of drive.json, or of a journal commit) survived.


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def record_fsyncs_and_renames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """From now until ``monkeypatch.undo()``: each fsync ("fsync", the path synced) and each os.replace
    ("rename", the new name), in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", _fd_path(fd)))
        real_fsync(fd)

    def replace(a: Any, b: Any, **kwargs: Any) -> None:
        real_replace(a, b, **kwargs)
        events.append(("rename", os.fspath(b)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_pack_makes_its_renames_durable_before_drive_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_fault_tree(tmp_path / "src")
    events = record_fsyncs_and_renames(monkeypatch)
    pack(str(src), out=str(tmp_path / "out"), drive_size=FAULT_DRIVE, options=FAULT_OPTIONS)
    monkeypatch.undo()
    for drive in drive_dirs(tmp_path / "out"):
        label = events.index(("rename", str(drive / DRIVE_LABEL_NAME)))
        before = events[:label]
        for directory, names in ((drive / SEGMENTS_DIR, "segment"), (drive, MANIFEST_NAME)):
            renamed = [
                i for i, (what, path) in enumerate(before) if what == "rename" and Path(path).parent == directory
            ]
            assert renamed, (drive, names)
            synced = [i for i, event in enumerate(before) if event == ("fsync", str(directory))]
            assert synced and synced[-1] > renamed[-1], f"{directory} not fsynced between its renames and drive.json"


def test_pack_makes_the_senders_catalog_copy_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--catalog-dir's copy (with --swap, the only one besides the last drive's) was renamed unsynced."""
    src = make_fault_tree(tmp_path / "src")
    events = record_fsyncs_and_renames(monkeypatch)
    summary = pack(
        str(src), out=str(tmp_path / "out"), drive_size=FAULT_DRIVE, options=FAULT_OPTIONS,
        catalog_dir=str(tmp_path / "sender"),
    )  # fmt: skip
    monkeypatch.undo()
    assert summary.catalog_copy is not None
    copy = summary.catalog_copy
    assert ("fsync", copy + ".partial") in events
    assert events[events.index(("rename", copy)) + 1] == ("fsync", str(tmp_path / "sender"))


def test_restore_makes_its_renames_durable_before_the_journal_says_done(
    fault_ship: Shipment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal_module = importlib.import_module("sneakernet.restorer.journal")
    events: list[tuple[str, int]] = []
    real_rename, real_commit = os.rename, journal_module.Journal.commit

    class Syncing(SafeTree):
        def sync(self, fd: int) -> None:
            events.append(("sync", 0))
            super().sync(fd)

    def rename(*args: Any, **kwargs: Any) -> None:
        real_rename(*args, **kwargs)
        events.append(("rename", 0))

    def commit(self: Any) -> None:
        real_commit(self)
        done = self.db.execute("SELECT COUNT(*) FROM entries WHERE kind = 'file' AND state = 'done'").fetchone()[0]
        events.append(("commit", int(done)))

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(journal_module.Journal, "commit", commit)
    restore([str(d) for d in fault_ship.drives], str(tmp_path / "dest"), open_destination=Syncing)
    monkeypatch.undo()
    done_before, last_rename, last_sync = 0, -1, -1
    for index, (what, value) in enumerate(events):
        if what == "rename":
            last_rename = index
        elif what == "sync":
            last_sync = index
        elif value > done_before:
            assert last_sync > last_rename, f"files recorded done (event {index}) before their renames were synced"
            done_before = value
    assert done_before > 0


# A power loss between restore's first two writes: the catalog copy into DEST/.sneakernet, then the journal (its
# commit durable). Before the copy was fsynced, the journal could survive beside a copy that never reached the disk,
# and every later restore and status of that DEST failed on it.
COPY_LOSSES = {
    "emptied": lambda copy: copy.write_bytes(b""),  # its size made durable, its data not
    "cut": lambda copy: copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2]),
    "missing": lambda copy: copy.unlink(),  # its rename not durable
}


@pytest.mark.parametrize("loss", sorted(COPY_LOSSES))
def test_restore_after_a_power_loss_between_the_catalog_copy_and_the_journal_finishes_identical(
    fault_ship: Shipment, tmp_path: Path, loss: str
) -> None:
    dest = tmp_path / "dest"
    # Killed right after the journal is renamed into place: both writes made, the copy's bytes maybe not on disk.
    run = kill_child("calls", f"replace@{JOURNAL_NAME}.partial", dest, fault_ship.drives)
    assert run.killed and restore_state(dest) == "in progress"
    copy = dest / JOURNAL_DIR / CATALOG_NAME
    COPY_LOSSES[loss](copy)
    code, out, err = cli("status", dest)
    assert code == 2, (out, err)
    assert_one_line_error(err, str(copy), "restore")
    code, out, err = cli("restore", *fault_ship.drives, "--into", dest)
    assert code == 0, err
    assert "copied it again" in out + err
    assert_identical(fault_ship.src, dest)
    assert os.listdir(dest / JOURNAL_DIR) == [FINISHED_NAME]


def test_restore_with_a_lost_catalog_copy_takes_the_catalog_given(fault_ship: Shipment, tmp_path: Path) -> None:
    """Drives that carry no catalog (with --swap only the last does): the copy comes from --catalog, and a
    catalog of another shipment is refused."""
    dest, first = tmp_path / "dest", fault_ship.drives[0]
    assert cli("restore", first, "--into", dest)[0] == 0
    copy = dest / JOURNAL_DIR / CATALOG_NAME
    saved = tmp_path / "catalog.jsonl.zst"
    shutil.copyfile(first / CATALOG_NAME, saved)
    copy.write_bytes(b"")
    bare = tmp_path / "bare"
    shutil.copytree(fault_ship.drives[1], bare)
    (bare / CATALOG_NAME).unlink()
    (bare / CHECKSUMS_NAME).unlink()
    code, _, err = cli("restore", bare, "--into", dest)
    assert code == 2
    assert_one_line_error(err, str(copy), "--catalog")
    code, _, err = cli("restore", bare, *fault_ship.drives[2:], "--into", dest, "--catalog", saved)
    assert code == 0, err
    assert_identical(fault_ship.src, dest)


def test_restore_makes_its_catalog_copy_durable_before_its_journal(
    fault_ship: Shipment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = record_fsyncs_and_renames(monkeypatch)
    dest = tmp_path / "dest"
    restore([str(fault_ship.drives[0])], str(dest), keep_journal=True)
    monkeypatch.undo()
    journal, copy = str(dest / JOURNAL_DIR / JOURNAL_NAME), str(dest / JOURNAL_DIR / CATALOG_NAME)
    before = events[: events.index(("rename", journal))]
    assert ("fsync", copy + ".partial") in before, "the catalog copy's bytes were not fsynced before the journal"
    renamed = before.index(("rename", copy))
    assert ("fsync", str(dest / JOURNAL_DIR)) in before[renamed:], "the copy's rename was not made durable"
    # The journal's own rename too: lost, it would leave DEST's installed files with no restore that knows them.
    after = events[events.index(("rename", journal)) :]
    assert after[1:2] == [("fsync", str(dest / JOURNAL_DIR))], "the journal's rename was not made durable"
