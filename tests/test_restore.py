"""End-to-end tests of restore, status, ls and info: packed shipments restored in every order, killed and resumed,
damaged, crafted to be hostile (tests/craft.py), restored in part, onto a full disk and onto a simulated
case-insensitive filesystem; every result compared byte for byte, mode, mtime (ns), owner and inode with the source.

Some tests are regressions of bugs these tests found; their names and comments say which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import fnmatch
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
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import (
    MTIME_NS,
    as_restored,
    drive_dirs,
    fill_up,
    inode_groups,
    make_chain,
    make_edge_tree,
    remove_chain,
    restored_entry,
    source_entries,
    write_file,
)
from conftest import invoke_cli as cli
from conftest import nonblank_lines as lines
from craft import (
    Chunk,
    b3,
    dir_rec,
    drop_catalog,
    file_rec,
    flip_byte,
    hardlink_rec,
    rle_frame,
    small_files,
    spanning_file,
    symlink_rec,
    tree_of,
    write_shipment,
    zstd_frame,
)
from sneakernet import PackOptions, PackSummary, pack
from sneakernet.drive import DriveReader
from sneakernet.errors import FormatError, SneakernetError, UsageError
from sneakernet.format import CATALOG_NAME, ChunkRecord, FileRecord, decode_path, show_path
from sneakernet.format.container import read_records
from sneakernet.io.source import SourceEntry, walk
from sneakernet.io.tree import LocalParts, SafeTree
from sneakernet.restorer import RestoreReport, ShipmentStatus, restore, status
from sneakernet.restorer.journal import FINISHED_NAME, JOURNAL_DIR
from sneakernet.units import format_size
from sneakernet.validate import UnsafePath

# The module, not the function of the same name (the package may export ``restore``).
drive_module = importlib.import_module("sneakernet.restorer.drive_restorer")

DRIVE = 1_500_000
SMALL = PackOptions(chunk_size=256 * 1024, reserve=0)


# --- shipments, packed once per module ----------------------------------------------------------------------------


@dataclasses.dataclass
class Packed:
    src: Path
    out: Path
    summary: PackSummary

    @property
    def drives(self) -> list[Path]:
        return drive_dirs(self.out)

    @property
    def fingerprint(self) -> str:
        return self.summary.fingerprint

    def copy(self, to: Path) -> list[Path]:
        shutil.copytree(self.out, to)
        return drive_dirs(to)


def make_twins_tree(root: Path) -> Path:
    """NFC and NFD twins, a symlink to a directory, 0-byte and read-only files, a file larger than a drive, owners,
    and directories with unusual modes (read-only, sticky) and fixed mtimes."""
    rng = random.Random(3)
    write_file(root / "caf\u00e9", b"composed\n")
    write_file(root / "cafe\u0301", b"decomposed\n")
    write_file(root / "zero", b"")
    write_file(root / "ro.txt", b"read only\n", mode=0o400)
    write_file(root / "big.bin", rng.randbytes(2_000_000))
    write_file(root / "dir" / "inner.txt", b"inner\n", mode=0o600)
    write_file(root / "locked" / "inside.txt", b"inside\n")
    write_file(root / "owned.txt", b"owned\n")
    os.chown(root / "owned.txt", 1234, 5678)
    os.symlink("dir", root / "to-dir")
    os.chown(root / "to-dir", 1234, 5678, follow_symlinks=False)
    os.utime(root / "to-dir", ns=(1_400_000_000_000_000_007,) * 2, follow_symlinks=False)
    (root / "sticky").mkdir()
    os.chmod(root / "sticky", 0o1777)
    os.chmod(root / "locked", 0o555)
    os.chmod(root / "dir", 0o750)
    os.chown(root / "dir", 4321, 8765)
    for i, name in enumerate(["dir", "locked", "sticky"]):
        os.utime(root / name, ns=(1_500_000_000_000_000_001 + i,) * 2)
    return root


def make_links_tree(root: Path) -> Path:
    """A hard link on drive 3 whose target is stored on drive 1 (a large file between them)."""
    write_file(root / "a-target.txt", b"target bytes\n")
    write_file(root / "m-big.bin", random.Random(1).randbytes(1_600_000))
    os.link(root / "a-target.txt", root / "z-link")
    return root


def make_case_tree(root: Path) -> Path:
    """Names that a case-insensitive, normalising filesystem merges."""
    write_file(root / "README", b"upper\n")
    write_file(root / "readme", b"lower\n")
    write_file(root / "caf\u00e9", b"composed\n")
    write_file(root / "cafe\u0301", b"decomposed\n")
    write_file(root / "Dir" / "x", b"x\n")
    write_file(root / "dir" / "y", b"y\n")
    return root


@pytest.fixture(scope="module")
def shipments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packed]:
    """``edge`` and ``edge2`` (the edge tree packed twice: two shipments), ``twins``, ``links`` and ``case`` on
    1.5 MB drives; ``one``: the edge tree on one large drive."""
    base = tmp_path_factory.mktemp("restore-shipments")
    edge = make_edge_tree(base / "edge-src")
    trees = {
        "edge": (edge, DRIVE),
        "edge2": (edge, DRIVE),
        "twins": (make_twins_tree(base / "twins-src"), DRIVE),
        "links": (make_links_tree(base / "links-src"), DRIVE),
        "case": (make_case_tree(base / "case-src"), DRIVE),
        "one": (edge, 10**9),
    }
    out = {}
    for name, (src, size) in trees.items():
        summary = pack(str(src), out=str(base / name), drive_size=size, options=SMALL)
        out[name] = Packed(src, base / name, summary)
    assert len(out["edge"].drives) == 6 and len(out["twins"].drives) >= 3 and len(out["links"].drives) == 3
    assert len(out["one"].drives) == 1
    return out


# --- helpers ------------------------------------------------------------------------------------------------------


def rel(root: Path, path: bytes) -> bytes:
    return os.path.join(os.fsencode(root), path)


def assert_same_tree(src: Path, dest: Path) -> None:
    """Same entries, bytes, modes, mtimes (ns), symlink targets, owners, directory metadata and hard links (a kept
    journal directory aside)."""
    expected, got = as_restored(source_entries(src)), outside_journal(source_entries(dest))
    assert sorted(got) == sorted(expected)
    for path, entry in expected.items():
        assert got[path] == entry, path
        want, have = os.lstat(rel(src, path)), os.lstat(rel(dest, path))
        assert (have.st_uid, have.st_gid) == (want.st_uid, want.st_gid), path
    assert inode_groups(dest) == inode_groups(src)


def assert_final_names_exact(src: Path, dest: Path) -> None:
    """Every regular file under a final name in ``dest`` holds exactly the source's bytes, mode and mtime."""
    expected = source_entries(src)
    top = os.fsencode(dest)
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top and JOURNAL_DIR.encode() in dirnames:
            dirnames.remove(JOURNAL_DIR.encode())
        for name in filenames:
            full = os.path.join(dirpath, name)
            path = os.path.relpath(full, top)
            if not stat.S_ISREG(os.lstat(full).st_mode):
                continue
            assert path in expected and expected[path].kind == "file", path
            with open(full, "rb") as handle:
                assert handle.read() == expected[path].data, path
            st = os.lstat(full)
            want = restored_entry(expected[path])
            assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (want.mode, want.mtime_ns), path


def snapshot(root: Path) -> dict[bytes, tuple[Any, ...]]:
    """Inode, mode, mtime, links and content of everything under ``root`` (the journal directory's own mtime
    aside: each run probes the destination's name folding there)."""
    out: dict[bytes, tuple[Any, ...]] = {}
    top = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                content: Any = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                content = blake3.blake3(Path(os.fsdecode(full)).read_bytes()).hexdigest()
            else:
                content = None
            mtime = None if name == JOURNAL_DIR.encode() else st.st_mtime_ns
            out[os.path.relpath(full, top)] = (st.st_ino, st.st_mode, mtime, st.st_nlink, st.st_uid, content)
    return out


def outside_journal(snap: dict[bytes, Any]) -> dict[bytes, Any]:
    return {
        k: v for k, v in snap.items() if k != JOURNAL_DIR.encode() and not k.startswith(JOURNAL_DIR.encode() + b"/")
    }


def catalog_entries(drive: Path) -> list[dict[str, Any]]:
    """The catalog's entry records, read with the plain record reader (not restore's)."""
    with open(drive / CATALOG_NAME, "rb") as handle:
        return [r for r in read_records(handle, "catalog") if r and r["type"] == "entry"]


def expected_waiting(drive: Path, done: set[int], wants: Callable[[bytes], bool] = lambda p: True) -> dict[int, Any]:
    """Independently of status: drive -> (entries, bytes of files) of the catalog still waiting on it."""
    waiting: dict[int, list[int]] = {}
    for entry in catalog_entries(drive):
        if not wants(decode_path("path", entry)):
            continue
        for number in range(entry["first_drive"], entry["last_drive"] + 1):
            if number not in done:
                counts = waiting.setdefault(number, [0, 0])
                counts[0] += 1
                counts[1] += entry["size"] if entry["kind"] == "file" else 0
    return {number: tuple(counts) for number, counts in waiting.items()}


def waiting_of(state: ShipmentStatus) -> dict[int, Any]:
    return {w.drive: (w.files, w.bytes) for w in state.waiting}


def hurt_files(drive: Path, chunk_id: int) -> list[bytes]:
    """Independently of restore: the files with a byte in chunk ``chunk_id`` of ``drive``."""
    sizes: dict[int, int] = {}
    hurt = []
    for record in DriveReader(str(drive)).records():
        if isinstance(record, ChunkRecord):
            sizes[record.id] = record.raw_size
        elif isinstance(record, FileRecord) and record.length:
            chunk, skip, remaining = record.chunk, record.chunk_offset, record.length
            while remaining > 0:
                if chunk == chunk_id:
                    hurt.append(record.path)
                remaining -= min(sizes[chunk] - skip, remaining)
                chunk, skip = chunk + 1, 0
    return sorted(set(hurt))


def chunks_of(drive: Path) -> list[ChunkRecord]:
    return [r for r in DriveReader(str(drive)).records() if isinstance(r, ChunkRecord)]


def damage(drive: Path, chunk: ChunkRecord) -> None:
    flip_byte(drive / chunk.segment, chunk.offset + chunk.stored_size // 2)


def failed_paths(report: RestoreReport) -> list[str]:
    """The paths an outcome lists as not restored ("<path> <reason>")."""
    return sorted(f.split(" ")[0] for d in report.drives for f in d.failed)


def journal_dir(dest: Path) -> Path:
    return dest / JOURNAL_DIR


def only_finished_record(dest: Path) -> bool:
    """The journal is gone; what stays of DEST/.sneakernet is the finished record."""
    return os.listdir(journal_dir(dest)) == [FINISHED_NAME]


# --- 1. round trips -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tree", ["edge", "twins", "links"])
def test_all_drives_at_once(shipments: dict[str, Packed], tmp_path: Path, tree: str) -> None:
    ship = shipments[tree]
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *ship.drives, "--into", dest)
    assert code == 0, out + err
    last = lines(out)[-1]
    assert ship.fingerprint in last and "every file matched" in last
    assert only_finished_record(dest)
    assert_same_tree(ship.src, dest)
    code, out, _ = cli("status", dest)
    assert code == 0 and ship.fingerprint in out and "complete" in out


def _orders(count: int) -> dict[str, list[int]]:
    orders = {"forward": list(range(count)), "reverse": list(range(count))[::-1]}
    for seed in (1, 2):
        order = list(range(count))
        random.Random(seed).shuffle(order)
        orders[f"shuffled{seed}"] = order
    return orders


@pytest.mark.parametrize("order_name", ["forward", "reverse", "shuffled1", "shuffled2"])
@pytest.mark.parametrize("tree", ["edge", "twins"])
def test_one_drive_per_run(shipments: dict[str, Packed], tmp_path: Path, tree: str, order_name: str) -> None:
    ship = shipments[tree]
    drives = ship.drives
    order = _orders(len(drives))[order_name]
    dest = tmp_path / "dest"
    done: set[int] = set()
    for step, index in enumerate(order):
        code, out, err = cli("restore", drives[index], "--into", dest)
        assert code == 0, out + err
        done.add(index + 1)
        if step == len(order) - 1:
            break
        state = status(str(dest))
        assert state.restored == sorted(done)
        assert [w.drive for w in state.waiting] == sorted(set(range(1, len(drives) + 1)) - done)
        assert waiting_of(state) == expected_waiting(drives[0], done)
        assert all(w.state == "missing" for w in state.waiting)
        assert not state.complete and not state.finished and state.failed_count == 0
        assert state.fingerprint == ship.fingerprint and state.drives == len(drives)
        code, out, _ = cli("status", dest, "--json")
        assert code == 3
        assert json.loads(out)["restored"] == sorted(done)
    last = lines(out)[-1]
    assert ship.fingerprint in last and "every file matched" in last
    assert only_finished_record(dest)
    assert_same_tree(ship.src, dest)


def test_keep_journal_then_status_is_complete(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    code, out, _ = cli("restore", *ship.drives, "--into", dest, "--keep-journal")
    assert code == 0 and "every file matched" in lines(out)[-1]
    assert (journal_dir(dest) / "journal.sqlite3").exists()
    code, out, _ = cli("status", dest)
    assert code == 0 and ship.fingerprint in out and "every file matched" in out
    code, out, _ = cli("status", dest, "--json")
    state = json.loads(out)
    assert code == 0 and state["complete"] and state["finished"] and state["waiting"] == []
    assert state["restored"] == list(range(1, 7)) and state["fingerprint"] == ship.fingerprint
    # The finished record is written with the journal kept too: status gives its date.
    assert state["finished_at"] == json.loads((journal_dir(dest) / FINISHED_NAME).read_text())["finished"]
    assert_same_tree(ship.src, dest)
    assert sorted(os.listdir(dest)) == sorted([*os.listdir(ship.src), JOURNAL_DIR])


@pytest.mark.parametrize(
    "order",
    [
        "forward",
        pytest.param(
            "reverse",
        ),
    ],
)
def test_hard_link_to_a_file_on_an_earlier_drive(shipments: dict[str, Packed], tmp_path: Path, order: str) -> None:
    ship = shipments["links"]
    drives = ship.drives if order == "forward" else ship.drives[::-1]
    dest = tmp_path / "dest"
    for drive in drives:
        report = restore([str(drive)], str(dest))
        assert report.clean
    assert report.status.finished and report.status.failed == []
    assert_same_tree(ship.src, dest)


def test_a_700_level_deep_tree_packs_and_restores_identical(fast_tmp: Path) -> None:
    """Issue 18: 700 nested directories packed normally crashed restore at install with a RecursionError (the
    safe tree reached each directory by recursing over its parents)."""
    src = fast_tmp / "src"
    src.mkdir()
    make_chain(src, 700, files_every=100)
    levels = [src.joinpath(*["d"] * depth) for depth in range(701)]
    write_file(levels[-1] / "f.txt", b"at the bottom\n", mode=0o600)
    for depth, level in enumerate(reversed(levels[1:])):  # deepest first: a directory's mtime after its contents
        os.chmod(level, 0o750 if depth % 2 else 0o755)
        os.utime(level, ns=(MTIME_NS + depth, MTIME_NS + depth))
    code, out, err = cli("pack", src, "--out", fast_tmp / "out", "--drive-size", "100MB", "--quiet")
    assert code == 0, out + err
    dest = fast_tmp / "dest"
    code, out, err = cli("restore", fast_tmp / "out" / "drive-0001", "--into", dest)
    assert code == 0 and "every file matched" in out, out + err
    for level in levels[1:]:
        copy = dest / level.relative_to(src)
        ours, theirs = os.lstat(level), os.lstat(copy)
        assert (theirs.st_mode, theirs.st_mtime_ns) == (ours.st_mode, ours.st_mtime_ns), copy
        names = sorted(os.listdir(level))
        assert sorted(os.listdir(copy)) == names
        for name in set(names) - {"d"}:
            assert (copy / name).read_bytes() == (level / name).read_bytes()
            assert os.lstat(copy / name).st_mode == os.lstat(level / name).st_mode


def test_the_safe_tree_works_10000_levels_deep(fast_tmp: Path) -> None:
    """Issue 18: every operation of the safe tree is a loop over the components (the deepest path here is 20 KB,
    five times PATH_MAX), and a walk back up, as the metadata pass makes, is no recursion either."""
    tree = SafeTree(str(fast_tmp))
    try:
        deepest = b"/".join([b"d"] * 10_000)
        tree.make_dir(deepest)
        tree.symlink(deepest + b"/s", b"target")
        assert tree.exists(deepest + b"/s") and not tree.exists(deepest + b"/nothing")
        tree.set_metadata(deepest, 0o700, MTIME_NS, None)
        for depth in range(10_000, 9_800, -1):  # up again, deepest first, past the descriptors kept open
            tree.set_metadata(deepest[: 2 * depth - 1], 0o755, MTIME_NS, None)
        fd = tree.directory(deepest, create=False)
        assert os.readlink("s", dir_fd=fd) == "target"
    finally:
        tree.close()
        remove_chain(fast_tmp)


# --- 2. idempotence -----------------------------------------------------------------------------------------------


def test_restoring_a_drive_twice_changes_nothing(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    first = restore([str(ship.drives[5])], str(dest))
    assert [d.status for d in first.drives] == ["restored"] and first.drives[0].files > 40
    before = snapshot(dest)
    again = restore([str(ship.drives[5])], str(dest))
    assert [(d.status, d.files, d.written) for d in again.drives] == [("already", 0, 0)]
    assert "already restored" in again.drives[0].message
    assert snapshot(dest) == before
    assert again.status.restored == [6]
    code, out, _ = cli("restore", ship.drives[5], "--into", dest)
    assert code == 0 and "already restored" in out
    assert snapshot(dest) == before


def test_restoring_every_drive_again_after_the_end_changes_nothing(
    shipments: dict[str, Packed], tmp_path: Path
) -> None:
    ship = shipments["twins"]
    dest = tmp_path / "dest"
    assert restore([str(d) for d in ship.drives], str(dest), keep_journal=True).status.finished
    before = snapshot(dest)
    again = restore([str(d) for d in ship.drives], str(dest), keep_journal=True)
    assert {d.status for d in again.drives} == {"already"} and again.status.finished
    assert outside_journal(snapshot(dest)) == outside_journal(before)
    assert_same_tree(ship.src, dest)


@pytest.mark.parametrize("removed", [["parts"], ["parts", "catalog.jsonl.zst"]])
def test_a_run_killed_while_it_removed_the_finished_journal_is_finished_by_the_next(
    shipments: dict[str, Packed], tmp_path: Path, removed: list[str]
) -> None:
    """The journal goes last: a kill after the parts directory (and the catalog copy) went leaves a journal that
    says finished. The same command finishes again: exit 0, the tree as packed, no journal left."""
    ship = shipments["twins"]
    dest = tmp_path / "dest"
    assert restore([str(d) for d in ship.drives], str(dest), keep_journal=True).status.finished
    for name in removed:
        path = dest / JOURNAL_DIR / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    code, out, err = cli("restore", *ship.drives, "--into", dest)
    assert code == 0 and "Traceback" not in err, out + err
    assert only_finished_record(dest)
    assert_same_tree(ship.src, dest)


# --- 3. resume after a kill ---------------------------------------------------------------------------------------

#: Runs restore in a child that SIGKILLs itself at the Nth call of a function.
KILLER = r"""
import importlib, os, shutil, signal, sys
restore = importlib.import_module("sneakernet.restorer")
drive = importlib.import_module("sneakernet.restorer.drive_restorer")
catalog = importlib.import_module("sneakernet.restorer.catalog")
journal = importlib.import_module("sneakernet.restorer.journal")
tree = importlib.import_module("sneakernet.io.tree")
what, after, dest, *drives = sys.argv[1:]
targets = {
    "pwrite": (os, "pwrite"),
    "rename": (os, "rename"),
    "commit": (journal.Journal, "commit"),
    "flush": (drive.DriveRestorer, "_flush"),
    "copyfile": (catalog, "copy_atomic"),  # the catalog's copy into the journal directory
    "set_metadata": (tree.SafeTree, "set_metadata"),
}
owner, name = targets[what]
real = getattr(owner, name)
calls = 0
def killing(*args, **kwargs):
    global calls
    calls += 1
    if calls == int(after):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(owner, name, killing)
restore.restore(drives, dest)
"""


def _kill_bug(point: str, raises: type[BaseException], reason: str) -> Any:
    """A kill point that once showed a bug (``reason``), kept as a regression test."""
    what, after = point.split(":")
    return pytest.param(what, int(after), id=point)


@pytest.mark.parametrize(
    ("what", "after"),
    [
        ("pwrite", 1),
        ("pwrite", 6),
        ("pwrite", 11),
        ("pwrite", 14),
        ("flush", 1),
        ("flush", 6),
        ("rename", 1),
        ("commit", 2),
        ("commit", 7),
        ("set_metadata", 8),
        _kill_bug(
            "commit:1",
            UsageError,
            "bug: killed while Journal.create builds the journal, DEST keeps .sneakernet without a journal and the "
            "next run refuses it as a non-empty destination (--force needed)",
        ),
        _kill_bug(
            "copyfile:1",
            FormatError,
            "bug: killed after the journal was created but before the catalog was copied into it, every later run "
            "fails with 'cannot open the catalog'",
        ),
        _kill_bug(
            "rename:2",
            AssertionError,
            "bug: killed after a spanning file's part was renamed to its final name but before the journal commit, "
            "the next run finds its pieces recorded but the part gone, fails the file and never completes",
        ),
        _kill_bug("rename:30", AssertionError, "bug: as rename:2"),
    ],
    ids=lambda v: str(v),
)
def test_resume_after_a_kill(shipments: dict[str, Packed], tmp_path: Path, what: str, after: int) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    drives = [str(d) for d in ship.drives]
    child = subprocess.run(
        [sys.executable, "-c", KILLER, what, str(after), str(dest), *drives], capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    # Whatever the moment of the kill, no final name holds a wrong byte.
    if dest.exists():
        assert_final_names_exact(ship.src, dest)
    report = restore(drives, str(dest))
    assert {d.status for d in report.drives} <= {"restored", "already"}
    assert report.status.finished and only_finished_record(dest)
    assert_same_tree(ship.src, dest)


# --- 4. damage ----------------------------------------------------------------------------------------------------


def test_damaged_chunk_hurts_exactly_its_files_and_a_good_copy_finishes(
    shipments: dict[str, Packed], tmp_path: Path
) -> None:
    ship = shipments["edge"]
    bad, good = ship.copy(tmp_path / "bad"), ship.copy(tmp_path / "good")
    # The chunk of the last drive holding the most small files.
    chunk = max(chunks_of(bad[5]), key=lambda c: len(hurt_files(bad[5], c.id)))
    hurt = hurt_files(bad[5], chunk.id)
    assert len(hurt) >= 2
    damage(bad[5], chunk)
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *bad, "--into", dest, "--json")
    assert code == 1, err
    report = json.loads(out)
    assert [d["status"] for d in report["drives"]] == ["restored"] * 5 + ["damaged"]
    assert sorted(f.split(" ")[0] for f in report["drives"][5]["failed"]) == sorted(show_path(p) for p in hurt)
    assert report["drives"][5]["failed_count"] == len(hurt)
    assert sorted(report["status"]["failed"]) == sorted(show_path(p) for p in hurt)
    for path in hurt:
        assert not os.path.lexists(rel(dest, path)), path
    assert_final_names_exact(ship.src, dest)
    expected = source_entries(ship.src)
    for path, entry in expected.items():
        if entry.kind == "file" and path not in hurt and not _links_to(ship.src, path, hurt):
            assert os.path.lexists(rel(dest, path)), path
    # The text report names each hurt file; status says which drive needs a good copy.
    code, out, _ = cli("status", dest, "--json")
    state = json.loads(out)
    assert code == 3 and [(w["drive"], w["state"]) for w in state["waiting"]] == [(6, "partial")]
    assert state["restored"] == [1, 2, 3, 4, 5] and state["failed_count"] == len(hurt)
    # Issue 12, point 5: what waits on the damaged drive is what is absent, not all it carries (it counted every
    # entry of drive 6, those installed from it too).
    absent = [
        e
        for e in catalog_entries(bad[5])
        if e["last_drive"] == 6 and not os.path.lexists(rel(dest, decode_path("path", e)))
    ]
    assert len(absent) < len([e for e in catalog_entries(bad[5]) if e["last_drive"] == 6])
    waits = (len(absent), sum(e["size"] for e in absent if e["kind"] == "file"))
    assert [(w["files"], w["bytes"]) for w in state["waiting"]] == [waits]
    code, out, _ = cli("status", dest)
    assert code == 3 and "drive 6 (drive-0006): restore it again from a good copy" in out
    assert f"{waits[0]} entries, {format_size(waits[1])} wait on it" in out
    # The same damaged drive again: still damaged, nothing else changes.
    before = snapshot(dest)
    code, out, _ = cli("restore", bad[5], "--into", dest)
    assert code == 1 and all(f"not restored: {show_path(p)} " in out for p in hurt)
    assert outside_journal(snapshot(dest)) == outside_journal(before)
    code, out, _ = cli("restore", good[5], "--into", dest)
    assert code == 0 and ship.fingerprint in lines(out)[-1]
    assert_same_tree(ship.src, dest)


def _links_to(src: Path, path: bytes, targets: list[bytes]) -> bool:
    st = os.lstat(rel(src, path))
    return st.st_nlink > 1 and any(os.path.samestat(st, os.lstat(rel(src, t))) for t in targets)


@pytest.mark.parametrize(
    "damaged_drive_first",
    [
        True,
        pytest.param(
            False,
        ),
    ],
)
def test_damaged_piece_of_a_file_spanning_drives(
    shipments: dict[str, Packed], tmp_path: Path, damaged_drive_first: bool
) -> None:
    ship = shipments["edge"]
    bad, good = ship.copy(tmp_path / "bad"), ship.copy(tmp_path / "good")
    chunk = chunks_of(bad[1])[0]
    assert hurt_files(bad[1], chunk.id) == [b"arrays/big.npy"]
    damage(bad[1], chunk)
    dest = tmp_path / "dest"
    order = [bad[1], bad[0], *bad[2:]] if damaged_drive_first else [bad[0], *bad[2:], bad[1]]
    for drive in order:
        report = restore([str(drive)], str(dest))
        if drive == bad[1]:
            assert report.drives[0].status == "damaged" and failed_paths(report) == ["arrays/big.npy"]
    assert not (dest / "arrays" / "big.npy").exists()
    state = status(str(dest))
    assert [(w.drive, w.state) for w in state.waiting] == [(2, "partial")] and state.failed == ["arrays/big.npy"]
    report = restore([str(good[1])], str(dest))
    assert report.drives[0].status == "restored", report.drives[0].failed
    assert report.status.finished
    assert_same_tree(ship.src, dest)


# --- 5. hostile drives --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Hostile:
    """A crafted one-drive shipment and what restore must do with it."""

    items: Callable[[Path], list[Any]]
    #: "refused": the drive is refused, nothing written; "entry": the drive goes in, ``entries`` are not restored.
    outcome: str
    message: str = ""
    entries: tuple[str, ...] = ()


def _bomb(declared: int, actual: int, raw_size: int) -> Callable[[Path], list[Any]]:
    def items(_: Path) -> list[Any]:
        chunk = Chunk(b"x" * 100, stored=rle_frame(declared, actual), raw_size=raw_size)
        return [chunk, file_rec("f", b"x" * 100, chunk), *small_files([("ok.txt", b"fine\n")])]

    return items


def _zstd_bomb(_: Path) -> list[Any]:
    chunk = Chunk(b"x" * 100, stored=zstd_frame(bytes(20_000_000)), raw_size=100, method="zstd")
    return [chunk, file_rec("f", b"x" * 100, chunk), *small_files([("ok.txt", b"fine\n")])]


HOSTILE: dict[str, Hostile] = {
    "absolute": Hostile(lambda o: small_files([(str(o / "evil"), b"evil")]), "refused", "is absolute"),
    "dotdot": Hostile(lambda o: small_files([("../outside", b"evil")]), "refused", "'..' component"),
    "dotdot-deep": Hostile(lambda o: [dir_rec("a"), *small_files([("a/../../x", b"e")])], "refused", "'..' component"),
    "nul": Hostile(lambda o: small_files([("a\0b", b"evil")]), "refused", "NUL byte"),
    "empty-component": Hostile(lambda o: [dir_rec("a"), *small_files([("a//b", b"e")])], "refused", "empty"),
    "trailing-slash": Hostile(lambda o: [dir_rec("a/")], "refused", "empty"),
    "dot-component": Hostile(lambda o: small_files([("./a", b"evil")]), "refused", "'.' component"),
    "dot-inside": Hostile(lambda o: [dir_rec("a"), *small_files([("a/./b", b"e")])], "refused", "'.' component"),
    "dot-alone": Hostile(lambda o: [dir_rec(".")], "refused", "'.' component"),
    # The catalog, made from these manifests, lists the path twice too: it lies, and is refused before anything.
    "duplicate": Hostile(lambda o: small_files([("a", b"one"), ("a", b"two")]), "catalog", "'a' twice"),
    "duplicate-kinds": Hostile(lambda o: [dir_rec("a"), symlink_rec("a", "x")], "catalog", "'a' twice"),
    "file-and-dir": Hostile(
        lambda o: small_files([("a", b"one"), ("a/b", b"two")]), "refused", "'a/b' lies inside 'a', a file"
    ),
    "symlink-absolute-then-write": Hostile(
        lambda o: [symlink_rec("link", str(o)), *small_files([("link/file", b"evil")])],
        "refused",
        "'link/file' lies inside 'link', a symlink",
    ),
    "symlink-dotdot-then-write": Hostile(
        lambda o: [symlink_rec("link", ".."), *small_files([("link/file", b"evil")])],
        "refused",
        "'link/file' lies inside 'link', a symlink",
    ),
    "symlink-then-dir": Hostile(
        lambda o: [symlink_rec("link", str(o)), dir_rec("link/sub")], "refused", "lies inside 'link', a symlink"
    ),
    "symlink-then-symlink": Hostile(
        lambda o: [symlink_rec("link", str(o)), symlink_rec("link/s", "/etc/passwd")], "refused", "a symlink"
    ),
    "hardlink-target-dotdot": Hostile(
        lambda o: [*small_files([("a", b"one")]), hardlink_rec("h", "../x")], "refused", "'..' component"
    ),
    "hardlink-target-absolute": Hostile(
        lambda o: [*small_files([("a", b"one")]), hardlink_rec("h", "/etc/passwd")], "refused", "is absolute"
    ),
    "hardlink-path-dotdot": Hostile(
        lambda o: [*small_files([("a", b"one")]), hardlink_rec("../h", "a")], "refused", "'..' component"
    ),
    "symlink-path-absolute": Hostile(lambda o: [symlink_rec(str(o / "s"), "x")], "refused", "is absolute"),
    # The tool's own directory in DEST: a planted part (the name an earlier sneakernet gave notes.txt's) would be
    # renamed over notes.txt's own part and installed as notes.txt; a folded name is the same directory on a
    # case-insensitive destination; a hard link could reach the journal.
    "reserved-part": Hostile(
        lambda o: [
            dir_rec(".sneakernet"),
            dir_rec(".sneakernet/parts"),
            *small_files([(f".sneakernet/parts/{b3(b'notes.txt')[:40]}.part", b"EVIL\n"), ("notes.txt", b"real\n")]),
        ],
        "refused",
        "'.sneakernet' lies in .sneakernet, the name restore keeps for its own files",
    ),
    "reserved-file": Hostile(lambda o: small_files([(".sneakernet", b"x")]), "refused", "lies in .sneakernet"),
    "reserved-folded": Hostile(
        lambda o: small_files([(".SneakerNet/journal.sqlite3", b"x")]), "refused", "lies in .sneakernet"
    ),
    "reserved-hardlink-target": Hostile(
        lambda o: [*small_files([("a", b"one")]), hardlink_rec("h", ".sneakernet/journal.sqlite3")],
        "refused",
        "'.sneakernet/journal.sqlite3' lies in .sneakernet",
    ),
    "bomb-declares-small": Hostile(_bomb(100, 1 << 30, 100), "entry", entries=("f",)),
    "bomb-zstd-declares-content": Hostile(_zstd_bomb, "entry", entries=("f",)),
    "huge-declared-content-size": Hostile(_bomb(1 << 40, 1 << 20, 100), "entry", entries=("f",)),
    "huge-raw-size": Hostile(_bomb(1 << 40, 1 << 20, 1 << 40), "refused", "raw_size above the limit"),
    "piece-past-the-drive": Hostile(
        lambda o: [c := Chunk(b"abc"), file_rec("f", b"abcdef", c)], "refused", "runs past the last chunk"
    ),
}


def _nothing_outside(tmp_path: Path, outside: Path) -> None:
    """Only the destinations and what is inside them exist in ``work``; the outside directory is untouched."""
    assert {name.split("/")[0] for name in tree_of(tmp_path / "work")} <= {"dest", "dest-cli"}
    assert tree_of(outside) == []


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_drive(tmp_path: Path, case: str) -> None:
    hostile = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "work").mkdir()
    drives = write_shipment(tmp_path / "ship", [hostile.items(outside)])
    dest = tmp_path / "work" / "dest"
    if hostile.outcome == "catalog":
        with pytest.raises(UsageError, match=hostile.message):
            restore([str(d) for d in drives], str(dest))
        assert os.listdir(dest) == []
        code, out, err = cli("restore", *drives, "--into", tmp_path / "work" / "dest-cli")
        assert code == 2 and "Traceback" not in err and hostile.message in err and "another drive's catalog" in err
        _nothing_outside(tmp_path, outside)
        return
    report = restore([str(d) for d in drives], str(dest))
    outcome = report.drives[0]
    _nothing_outside(tmp_path, outside)
    if hostile.outcome == "refused":
        assert outcome.status == "refused", outcome
        assert hostile.message in outcome.message and "\n" not in outcome.message
        assert sorted(os.listdir(dest)) == [JOURNAL_DIR]
        assert [w.drive for w in report.status.waiting] == [1] and report.status.restored == []
    else:
        assert outcome.status == "damaged", outcome
        assert failed_paths(report) == sorted(hostile.entries)
        for path in hostile.entries:
            assert not os.path.lexists(dest / path)
        assert (dest / "ok.txt").read_bytes() == b"fine\n"
    # Through the command line: exit 1 and one line naming the problem.
    code, out, err = cli("restore", *drives, "--into", tmp_path / "work" / "dest-cli")
    assert code == 1 and "Traceback" not in err
    if hostile.outcome == "refused":
        refusals = [line for line in lines(out) if "refused" in line]
        assert len(refusals) == 1 and hostile.message in refusals[0]
    else:
        assert [line.split()[2] for line in lines(out) if "not restored:" in line] == sorted(hostile.entries)
    _nothing_outside(tmp_path, outside)


def test_file_after_a_path_inside_it(tmp_path: Path) -> None:
    """``a/b`` then a file ``a``: docs/restore.md says validation refuses a path inside a non-directory; restore
    refuses the entry instead (it finds ``a`` a directory when installing). Either way ``a`` is never a file over
    the directory and nothing escapes."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "work").mkdir()
    drives = write_shipment(tmp_path / "ship", [small_files([("a/b", b"two"), ("a", b"one")])])
    dest = tmp_path / "work" / "dest"
    report = restore([str(d) for d in drives], str(dest))
    outcome = report.drives[0]
    _nothing_outside(tmp_path, outside)
    assert outcome.status in ("refused", "damaged") and not report.clean
    if outcome.status == "damaged":
        assert failed_paths(report) == ["a"] and (dest / "a" / "b").read_bytes() == b"two"
    assert not (dest / "a").is_file()


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("symlink", id="hardlink-to-symlink"),
        pytest.param("dir", id="hardlink-to-dir"),
        pytest.param("missing", id="hardlink-to-nothing"),
    ],
)
def test_hard_link_to_something_not_a_regular_file(tmp_path: Path, target: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "work").mkdir()
    items: list[Any] = [*small_files([("ok.txt", b"fine\n")])]
    if target == "symlink":
        items.append(symlink_rec("s", str(victim)))
    elif target == "dir":
        items.append(dir_rec("s"))
    items.append(hardlink_rec("h", "s"))
    drives = write_shipment(tmp_path / "ship", [items])
    dest = tmp_path / "work" / "dest"
    code, out, err = cli("restore", *drives, "--into", dest)
    _nothing_outside(tmp_path, outside)
    assert victim.read_bytes() == b"keep me\n" and victim.stat().st_nlink == 1
    assert not os.path.lexists(dest / "h")
    assert "Traceback" not in err
    assert code == 1 and any(line.split()[2:3] == ["h"] for line in lines(out) if "not restored:" in line), out


def test_bomb_does_not_blow_up_memory(tmp_path: Path) -> None:
    """Chunks whose frames hold (or declare) far more than the record's raw_size: restored in a child limited to
    512 MiB of address space, which 1 GiB of decoded bytes would exceed."""
    cases = {
        "small-declared": _bomb(100, 1 << 30, 100),
        "max-declared": _bomb(64 << 20, 1 << 30, 64 << 20),
        "huge-declared": _bomb(1 << 40, 1 << 30, 100),
    }
    jobs = []
    for name, items in cases.items():
        drives = write_shipment(tmp_path / name, [items(tmp_path)])
        jobs.append((str(drives[0]), str(tmp_path / f"dest-{name}")))
    child = r"""
import importlib, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
restore = importlib.import_module("sneakernet.restorer")
out = []
for drive, dest in json.loads(sys.argv[1]):
    report = restore.restore([drive], dest)
    out.append([report.drives[0].status, report.drives[0].failed])
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report pytest's own peak.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"outcomes": out, "maxrss_kib": peak}))
"""
    result = subprocess.run([sys.executable, "-c", child, json.dumps(jobs)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    found = json.loads(result.stdout)
    assert [(s, [f.split(" ")[0] for f in failed]) for s, failed in found["outcomes"]] == [("damaged", ["f"])] * 3
    assert all("damaged bytes" in failed[0] for _, failed in found["outcomes"])
    assert found["maxrss_kib"] < 256 * 1024


def _with_ok(drives: list[list[Any]]) -> list[list[Any]]:
    drives[0] += small_files([("ok.txt", b"fine\n")])
    return drives


def _largest_file(dest: Path) -> int:
    """The largest apparent size of a file in ``dest``, parts included (the journal's own files aside)."""
    journal = JOURNAL_DIR.encode() + b"/"
    sizes = [0]
    for entry in walk(dest):
        kept = not entry.path.startswith(journal) or entry.path.startswith(journal + b"parts/")  # type: ignore[union-attr]
        if isinstance(entry, SourceEntry) and entry.kind == "file" and kept:
            sizes.append(entry.size)
    return max(sizes)


def test_a_spanning_file_restored_out_of_order_never_has_a_part_larger_than_its_pieces(tmp_path: Path) -> None:
    """Issue 18, 5: the drive holding a file's tail restored first wrote it at its offset, a sparse part as large
    as the file: a part holds only the bytes from 0 on that the drives given supplied, a later piece waits in a
    part of its own (as long as itself), and the file is assembled once the pieces before it come."""
    data = random.Random(5).randbytes(900)
    drives = write_shipment(
        tmp_path / "ship",
        _with_ok(spanning_file([(0, data[:300]), (300, data[300:600]), (600, data[600:])], 900, data)),
    )
    dest = tmp_path / "dest"
    for number in (3, 1, 2):
        code, out, err = cli("restore", drives[number - 1], "--into", dest)
        assert code == 0, out + err
        assert _largest_file(dest) <= 300 or number == 2  # the last run installs the whole file
    assert (dest / "span.bin").read_bytes() == data and (dest / "ok.txt").read_bytes() == b"fine\n"
    assert "every file matched" in lines(out)[-1]


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_a_piece_claiming_an_offset_of_2_40_never_makes_a_sparse_part(tmp_path: Path, order: str) -> None:
    """Issue 18, 5: a final piece claiming offset = size = 2^40 made restore create a 1 TiB sparse part, both runs
    exited 0 and the shipment could never complete. The piece must start where the piece before ends: refused,
    naming both, and nothing in DEST grows past the bytes the drives hold."""
    drives = write_shipment(
        tmp_path / "ship", _with_ok(spanning_file([(0, b"x" * 100), (1 << 40, b"")], 1 << 40, b"x" * 100))
    )
    dest = tmp_path / "dest"
    runs = [cli("restore", d, "--into", dest) for d in (drives if order == "forward" else drives[::-1])]
    assert _largest_file(dest) <= 100
    code, out, err = runs[-1]
    assert code == 1 and "Traceback" not in err
    refused = [line for line in lines(out) if "not restored: span.bin" in line]
    assert len(refused) == 1 and "cannot be assembled" in refused[0] and "1099511627776" in refused[0], out
    assert (dest / "ok.txt").read_bytes() == b"fine\n" and not (dest / "span.bin").exists()


@pytest.mark.parametrize("planted", ["symlink", "fifo", "directory"])
def test_something_planted_under_a_part_name_refuses_that_file_only(tmp_path: Path, planted: str) -> None:
    """Issue 18, 9: one symlink planted among the parts (under the name a file's part would take) aborted the
    whole drive; a FIFO would have blocked it. Only that file is refused, its neighbours are restored, and
    nothing is followed."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me\n")
    first, second = small_files([("a.txt", b"first\n")]), small_files([("b.txt", b"second\n"), ("c.txt", b"third\n")])
    drives = write_shipment(tmp_path / "ship", [first, second])
    dest = tmp_path / "dest"
    assert cli("restore", drives[0], "--into", dest)[0] == 0
    # The name b.txt's part took when part names were derived from paths.
    name = journal_dir(dest) / "parts" / (blake3.blake3(b"b.txt").hexdigest()[:40] + ".part")
    {"symlink": lambda: name.symlink_to(victim), "fifo": lambda: os.mkfifo(name), "directory": name.mkdir}[planted]()
    code, out, err = cli("restore", drives[1], "--into", dest)
    assert "Traceback" not in err and victim.read_bytes() == b"keep me\n"
    assert (dest / "c.txt").read_bytes() == b"third\n"
    if code == 1:  # the part's name was the planted one: that file alone is refused, and says why
        refused = [line for line in lines(out) if "not restored:" in line]
        assert len(refused) == 1 and "b.txt" in refused[0] and "DEST/.sneakernet/parts" in refused[0], out
        assert not (dest / "b.txt").exists()
    else:  # part names that cannot be guessed: nothing planted is in the way
        assert code == 0 and (dest / "b.txt").read_bytes() == b"second\n", out + err


# Cross-drive attacks: a symlink on drive 1, something beneath it on drive 2. Per drive, validation cannot see it;
# the safe tree must stop it, and restore must refuse the entry (named, exit 1) rather than abort the whole run.

CROSS: dict[str, Callable[[], list[Any]]] = {
    "file": lambda: small_files([("link/file", b"evil")]),
    "dir": lambda: [dir_rec("link/sub")],
    "symlink": lambda: [symlink_rec("link/s", "/etc/passwd")],
    "hardlink": lambda: [*small_files([("t", b"tt")]), hardlink_rec("link/h", "t")],
}


def _cross_shipment(tmp_path: Path, kind: str, target: str) -> tuple[list[Path], Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "work").mkdir()
    link_target = str(outside) if target == "absolute" else ".."
    drives = write_shipment(tmp_path / "ship", [[symlink_rec("link", link_target)], CROSS[kind]()])
    return drives, outside, tmp_path / "work" / "dest"


@pytest.mark.parametrize("order", ["forward", "reverse"])
@pytest.mark.parametrize("target", ["absolute", "dotdot"])
@pytest.mark.parametrize("kind", sorted(CROSS))
def test_symlink_on_one_drive_never_leads_writes_outside(tmp_path: Path, kind: str, target: str, order: str) -> None:
    drives, outside, dest = _cross_shipment(tmp_path, kind, target)
    for drive in drives if order == "forward" else drives[::-1]:
        with contextlib.suppress(UnsafePath):  # see test_symlink_on_one_drive_is_refused_as_an_entry
            restore([str(drive)], str(dest))
        _nothing_outside(tmp_path, outside)


def _cross_params() -> Iterator[Any]:
    for kind in sorted(CROSS):
        for order in ("forward", "reverse"):
            if kind == "file" and order == "forward":
                yield pytest.param(kind, order, id=f"{kind}-{order}")
            else:
                yield pytest.param(
                    kind,
                    order,
                    id=f"{kind}-{order}",
                )


@pytest.mark.parametrize(("kind", "order"), list(_cross_params()))
def test_symlink_on_one_drive_is_refused_as_an_entry(tmp_path: Path, kind: str, order: str) -> None:
    drives, outside, dest = _cross_shipment(tmp_path, kind, "absolute")
    first, second = drives if order == "forward" else drives[::-1]
    assert restore([str(first)], str(dest)).clean
    report = restore([str(second)], str(dest))
    _nothing_outside(tmp_path, outside)
    outcome = report.drives[0]
    assert outcome.status == "damaged"
    beneath = {"file": "link/file", "dir": "link/sub", "symlink": "link/s", "hardlink": "link/h"}[kind]
    assert failed_paths(report) == (sorted([beneath]) if order == "forward" else ["link"])


# --- 6. --include -------------------------------------------------------------------------------------------------


def _wants(patterns: list[str]) -> Callable[[bytes], bool]:
    encoded = [p.rstrip("/").encode() for p in patterns]
    return lambda path: any(path == p or path.startswith(p + b"/") or fnmatch.fnmatchcase(path, p) for p in encoded)


def test_an_include_that_matches_nothing_is_refused(shipments: dict[str, Packed], tmp_path: Path) -> None:
    """A typo in --include would restore nothing and call the shipment complete: refused up front, naming the
    pattern, with nothing written (as tar refuses a member it does not find)."""
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    code, out, err = cli("restore", ship.drives[5], "--into", dest, "--include", "arrays/", "--include", "aray/")
    assert code == 2 and out == "" and len(lines(err)) == 1
    assert "--include 'aray' matches no path of the shipment" in err and "arrays" not in err.split("matches")[0]
    assert not dest.exists() or os.listdir(dest) == []


def test_include_restores_only_matching_paths(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    patterns = ["arrays/", "*.txt", "empty-dir"]
    code, _, err = cli("restore", ship.drives[5], "--into", dest, *(a for p in patterns for a in ("--include", p)))
    assert code == 0, err
    state = status(str(dest))
    assert waiting_of(state) == expected_waiting(ship.drives[0], {6}, _wants(patterns))
    assert sorted(waiting_of(state)) == [1, 2, 3, 4, 5]
    # Later runs may repeat the patterns or give none.
    assert cli("restore", ship.drives[0], "--into", dest, *(a for p in patterns for a in ("--include", p)))[0] == 0
    for drive in ship.drives[1:5]:
        assert cli("restore", drive, "--into", dest)[0] == 0
    got = source_entries(dest)
    expected = {
        path: entry
        for path, entry in source_entries(ship.src).items()
        if path in (b"arrays", b"arrays/big.npy", b"empty-dir", b"empty-dir/nested-empty")
        or (path.endswith(b".txt") and entry.kind == "file")
    }
    assert sorted(expected) == sorted(
        [
            b"arrays",
            b"arrays/big.npy",
            b"empty-dir",
            b"empty-dir/nested-empty",
            b"empty.txt",
            b"latin1-\xe9t\xe9.txt",
            b"line\nbreak.txt",
            b"readonly.txt",
        ]
    )
    assert outside_journal(got) == expected
    assert only_finished_record(dest)


def test_include_counts_only_what_is_included(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    report = restore([str(ship.drives[2])], str(dest), include=["images"])
    # images/noise.png is on the last drive only.
    assert report.status.restored == [3]
    assert waiting_of(report.status) == {6: (2, 200_000)}
    code, out, _ = cli("status", dest, "--json")
    assert code == 3 and [w["drive"] for w in json.loads(out)["waiting"]] == [6]
    assert sorted(os.listdir(dest)) == [JOURNAL_DIR]


@pytest.mark.parametrize(
    ("first", "later"), [(["images"], ["text"]), (["images"], ["images", "text"]), ([], ["images"])]
)
def test_include_with_other_patterns_is_refused(
    shipments: dict[str, Packed], tmp_path: Path, first: list[str], later: list[str]
) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    restore([str(ship.drives[0])], str(dest), include=first)
    before = snapshot(dest)
    code, out, err = cli("restore", ship.drives[5], "--into", dest, *(a for p in later for a in ("--include", p)))
    assert code == 2 and out == "" and len(lines(err)) == 1 and "same patterns" in err
    assert snapshot(dest) == before


def test_include_a_hard_link_whose_target_is_outside_the_pattern(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    report = restore([str(d) for d in ship.drives], str(dest), include=["text"], keep_journal=True)
    assert report.status.complete
    # text/doc001.jsonl is a hard link to hardlink-to-doc001, which the pattern does not take.
    link = dest / "text" / "doc001.jsonl"
    assert link.is_file() and link.read_bytes() == (ship.src / "text" / "doc001.jsonl").read_bytes()


def _include_link_shipment(out: Path) -> list[Path]:
    """``top.py`` on drive 1 (outside the include), ``stdlib/os.py`` a hard link to it on drive 2, and
    ``stdlib/json.py`` (included) on drive 1: as ``--include stdlib`` met it on Python's standard library."""
    return write_shipment(
        out,
        [
            [*small_files([("top.py", b"top bytes\n"), ("stdlib/json.py", b"json\n")])],
            [*small_files([("stdlib/abc.py", b"abc\n")]), hardlink_rec("stdlib/os.py", "top.py")],
        ],
    )


@pytest.mark.parametrize("order", ["together", "link-drive-last", "link-drive-first"])
def test_include_a_hard_link_whose_target_is_on_another_drive(tmp_path: Path, order: str) -> None:
    """Issue 12, point 1 (data loss): an included hard link whose target is outside the pattern and on another
    drive was left out, and the subset was called complete (exit 0, journal removed). It gets its target's
    content; until the drive carrying that content is in, that drive is named as still needed."""
    d1, d2 = _include_link_shipment(tmp_path / "ship")
    dest = tmp_path / "dest"
    # Each run's drives, and the drive still needed after it (None: the subset is complete).
    runs = {
        "together": [([d1, d2], None)],
        "link-drive-last": [([d1], 2), ([d2], 1), ([d1], None)],
        "link-drive-first": [([d2], 1), ([d1], None)],
    }[order]
    for drives, needed in runs:
        code, out, err = cli("restore", *drives, "--into", dest, "--include", "stdlib")
        assert code == 0, err
        assert ("complete: every file matched" in out) == (needed is None), out
        if needed is not None:
            other = 3 - needed
            assert f"drive {needed} (drive-000{needed})" in out and f"drive {other} (drive-000{other})" not in out
            code, out, _ = cli("status", dest)
            assert code == 3 and f"drive {needed} (drive-000{needed})" in out, out
            assert f"drive {other} (drive-000{other})" not in out
    assert (dest / "stdlib" / "os.py").read_bytes() == b"top bytes\n"
    assert sorted(os.listdir(dest / "stdlib")) == ["abc.py", "json.py", "os.py"]
    assert not (dest / "top.py").exists()


def test_status_of_a_journal_without_the_catalog_index_counts_the_same(tmp_path: Path) -> None:
    """What waits is found by one join of the catalog index with the journal's entries; a journal of an earlier
    sneakernet, without that index, is read from the catalog copy, with the same answer."""
    _, d2 = _include_link_shipment(tmp_path / "ship")
    dest = tmp_path / "dest"
    assert cli("restore", d2, "--into", dest, "--include", "stdlib")[0] == 0
    code, indexed, _ = cli("status", dest, "--json")
    assert code == 3 and [(w["drive"], w["files"]) for w in json.loads(indexed)["waiting"]] == [(1, 2)]
    with contextlib.closing(sqlite3.connect(journal_dir(dest) / "journal.sqlite3")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'catalog_entries%'")]
        assert tables
        for table in tables:
            db.execute(f"DROP TABLE {table}")
        db.commit()
    assert cli("status", dest, "--json") == (3, indexed, "")


# Names the property test below draws from: some under the include patterns, some not.
_FILE_NAMES = ["lib/a.py", "lib/sub/b.py", "top.py", "other.txt"]
_LINK_NAMES = ["lib/l1.py", "lib/sub/l2.py", "top-link.py"]
_PATTERNS = ["lib", "lib/sub", "top*", "*l*", "lib/l1.py"]


@st.composite
def _linked_shipments(draw: st.DrawFn) -> tuple[int, list[list[Any]], dict[str, bytes], dict[str, str]]:
    """A tiny shipment of 1 to 3 drives: files wholly on a drive or spanning two, and hard links to them placed
    on the target's drive (before or after its record), a later drive or (as no packer writes it) an earlier one."""
    count = draw(st.integers(1, 3))
    drives: list[list[Any]] = [[] for _ in range(count)]
    files: dict[str, bytes] = {}
    where: dict[str, int] = {}
    for name in draw(st.lists(st.sampled_from(_FILE_NAMES), min_size=1, max_size=4, unique=True)):
        data = draw(st.binary(min_size=0, max_size=12))
        first = draw(st.integers(0, count - 1))
        if len(data) >= 2 and first + 1 < count and draw(st.booleans()):
            cut = len(data) // 2
            head, tail = Chunk(data[:cut]), Chunk(data[cut:])
            drives[first] += [head, {"type": "file", "path": name, "offset": 0, "length": cut, "chunk": head,
                                     "chunk_offset": 0, "final": False}]  # fmt: skip
            drives[first + 1] += [tail, file_rec(name, data, tail, offset=cut, length=len(data) - cut)]
            where[name] = first + 1
        else:
            drives[first] += small_files([(name, data)]) if data else [file_rec(name, b"", None)]
            where[name] = first
        files[name] = data
    links: dict[str, str] = {}
    for name in draw(st.lists(st.sampled_from(_LINK_NAMES), max_size=3, unique=True)):
        target = draw(st.sampled_from(sorted(files)))
        drive = draw(st.integers(0, count - 1))
        record = hardlink_rec(name, target)
        position = draw(st.integers(0, len(drives[drive]))) if drive == where[target] else len(drives[drive])
        drives[drive].insert(position, record)
        links[name] = target
    return count, drives, files, links


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shipment=_linked_shipments(),
    pattern=st.sampled_from(_PATTERNS),
    order=st.randoms(use_true_random=False),
)
def test_include_never_calls_a_subset_complete_with_an_entry_absent(
    shipment: tuple[int, list[list[Any]], dict[str, bytes], dict[str, str]], pattern: str, order: random.Random
) -> None:
    """Issue 12, point 1, over random trees, link placements, drive orders and include patterns: the included
    set restores with the right content (a link whose target is left out gets the target's content), or the
    drives still needed are named; never "complete" with an included entry absent. Every drive given once, in a
    random order and grouping; then the drives named as needed, until complete."""
    count, drives, files, links = shipment
    wants = _wants([pattern])
    expected = {name: data for name, data in files.items() if wants(name.encode())}
    expected.update({name: files[target] for name, target in links.items() if wants(name.encode())})
    assume(expected)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_shipment(Path(tmp) / "ship", drives)
        dest = Path(tmp) / "dest"
        numbers = list(range(1, count + 1))
        order.shuffle(numbers)
        runs: list[list[int]] = []
        for number in numbers:
            if runs and order.random() < 0.5:
                runs[-1].append(number)
            else:
                runs.append([number])
        for _ in range(count + 2):
            if not runs:
                break
            code, out, err = cli("restore", *(paths[n - 1] for n in runs.pop(0)), "--into", dest, "--include", pattern,
                                 "--json")  # fmt: skip
            assert code == 0, err
            state = json.loads(out)["status"]
            got = {os.path.relpath(p, dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
            got = {name: data for name, data in got.items() if not name.startswith(JOURNAL_DIR)}
            if state["complete"]:
                assert got == expected
                break
            assert state["waiting"] or state["failed_count"], state
            # What is there is right, and nothing outside the include.
            assert all(expected.get(name) == data for name, data in got.items()), (got, expected)
            if not runs:
                runs.append([w["drive"] for w in state["waiting"]])
        else:
            pytest.fail(f"not complete after every drive and each drive named as needed: {state}")
        assert state["complete"] and state["finished"]


# --- 7. destinations and shipments --------------------------------------------------------------------------------


def test_non_empty_destination_needs_force(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    write_file(dest / "mine.txt", b"my own file\n")
    before = snapshot(dest)
    code, out, err = cli("restore", *ship.drives, "--into", dest)
    assert code == 2 and out == "" and len(lines(err)) == 1 and "--force" in err
    assert snapshot(dest) == before
    code, out, _ = cli("restore", *ship.drives, "--into", dest, "--force")
    assert code == 0 and "every file matched" in lines(out)[-1]
    assert (dest / "mine.txt").read_bytes() == b"my own file\n"
    (dest / "mine.txt").unlink()
    assert_same_tree(ship.src, dest)


def test_force_names_the_files_it_replaces(tmp_path: Path) -> None:
    """Issue 12, point 8: --force replaced the destination's files without a word. Each one replaced (by a file
    or by a hard link) is counted and named, in the text and the JSON report; the rest is left alone."""
    drives = write_shipment(
        tmp_path / "ship",
        [
            [
                *small_files([("notes.txt", b"shipped notes\n"), ("sub/a.txt", b"a\n")]),
                hardlink_rec("sub/h", "notes.txt"),
            ]
        ],
    )
    dest = tmp_path / "dest"
    for name in ("notes.txt", "sub/h", "keep.txt"):
        write_file(dest / name, b"the destination's own " + name.encode() + b"\n")
    code, out, err = cli("restore", *drives, "--into", dest, "--force")
    assert code == 0, err
    assert "  replaced 2 files the destination held (--force): notes.txt, sub/h" in lines(out), out
    assert (dest / "sub" / "h").read_bytes() == (dest / "notes.txt").read_bytes() == b"shipped notes\n"
    assert (dest / "keep.txt").read_bytes() == b"the destination's own keep.txt\n"
    # Into an empty destination nothing is replaced, and nothing is said.
    code, out, _ = cli("restore", *drives, "--into", tmp_path / "empty", "--json")
    drive = json.loads(out)["drives"][0]
    assert code == 0 and (drive["replaced"], drive["replaced_count"]) == ([], 0)
    shutil.rmtree(dest)
    write_file(dest / "notes.txt", b"old\n")
    code, out, _ = cli("restore", *drives, "--into", dest, "--force", "--json")
    drive = json.loads(out)["drives"][0]
    assert code == 0 and (drive["replaced"], drive["replaced_count"]) == (["notes.txt"], 1)


@pytest.mark.parametrize("where", ["inside a drive", "the drive itself", "via a symlink", "a drive inside it"])
def test_a_destination_inside_a_drive_or_around_one_is_refused(tmp_path: Path, where: str) -> None:
    """Issue 12, point 8: restore --into a directory inside one of the given drives wrote the data onto the
    drive. Refused in one line, exit 2, nothing written, whichever way the two nest."""
    (drive,) = write_shipment(tmp_path / "ship", [small_files([("notes.txt", b"notes\n")])])
    os.symlink(drive, tmp_path / "mounted")
    dest = {
        "inside a drive": drive / "restored",
        "the drive itself": drive,
        "via a symlink": tmp_path / "mounted" / "restored",
        "a drive inside it": tmp_path / "ship",
    }[where]
    before = snapshot(tmp_path)
    code, out, err = cli("restore", drive, "--into", dest)
    assert code == 2 and out == "" and len(lines(err)) == 1, err
    said = "is inside the destination" if where == "a drive inside it" else "is inside the drive"
    assert said in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("dest", ["a file", "a dangling symlink", "a symlink to a directory"])
def test_the_destination_must_be_a_directory_or_lead_to_one(tmp_path: Path, dest: str) -> None:
    """A file or a symlink to nothing is refused in one line (exit 2), nothing written; a symlink to a directory is
    followed, as the destination the user named (nothing below it is)."""
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a\n")])])
    target = tmp_path / "dest"
    if dest == "a file":
        target.write_bytes(b"mine\n")
    elif dest == "a dangling symlink":
        target.symlink_to(tmp_path / "nowhere")
    else:
        (tmp_path / "real").mkdir()
        target.symlink_to("real")
    code, out, err = cli("restore", *drives, "--into", target)
    if dest == "a symlink to a directory":
        assert code == 0, err
        assert (tmp_path / "real" / "a.txt").read_bytes() == b"a\n" and target.is_symlink()
        return
    assert code == 2 and out == "" and len(lines(err)) == 1 and "Traceback" not in err
    assert ("not a directory" if dest == "a file" else "a symlink to nothing") in err
    assert not (tmp_path / "nowhere").exists()
    assert dest != "a file" or target.read_bytes() == b"mine\n"


def test_a_second_restore_into_the_same_destination_is_refused_while_one_runs(tmp_path: Path) -> None:
    """Two restores racing over one journal and one parts directory could install each other's half-made work:
    while one holds the destination, another with --no-wait is refused in one line (exit 2) and writes nothing
    (without it, it waits: test_restore_at_once.py)."""
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a\n")])])
    dest = tmp_path / "dest"
    dest.mkdir()
    holder = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running restore holds
        code, out, err = cli("restore", *drives, "--into", dest, "--no-wait")
        assert code == 2 and out == "" and len(lines(err)) == 1 and "another restore is writing into" in err
        assert os.listdir(dest) == []
    finally:
        os.close(holder)
    code, _, err = cli("restore", *drives, "--into", dest)
    assert code == 0, err
    assert (dest / "a.txt").read_bytes() == b"a\n"


def test_a_destination_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a\n")])])
    code, out, err = cli("restore", *drives, "--into", "/proc/sneakernet-cannot-be-made")
    assert code == 2 and out == "" and len(lines(err)) == 1 and "Traceback" not in err
    assert "cannot write into the destination /proc/sneakernet-cannot-be-made" in err


def test_a_directory_where_the_shipment_has_a_file_is_left_alone(tmp_path: Path) -> None:
    """--force into a destination holding a directory (with a file of the user's inside) at a file's path: that
    file is refused, named with why, and the directory and its contents stay; its neighbours are restored. The
    drive is not called damaged: the destination is in the way, and once it is moved, the same drive finishes."""
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a\n"), ("b.txt", b"b\n"), ("c.txt", b"c\n")])])
    dest = tmp_path / "dest"
    write_file(dest / "b.txt" / "mine", b"my own file\n")
    code, out, _ = cli("restore", *drives, "--into", dest, "--force", "--json")
    assert code == 1
    [drive] = json.loads(out)["drives"]
    assert drive["status"] == "blocked" and "the destination is in the way" in drive["message"]
    [failed] = drive["failed"]
    assert failed == "b.txt is a directory in the destination, where the shipment has a file"
    assert (dest / "b.txt" / "mine").read_bytes() == b"my own file\n"
    assert (dest / "a.txt").read_bytes() == b"a\n" and (dest / "c.txt").read_bytes() == b"c\n"
    code, out, _ = cli("status", dest)
    assert code == 3 and "drive 1 (drive-0001): clear the way in the destination, then restore it again" in out, out
    (dest / "b.txt").rename(tmp_path / "moved")
    code, out, _ = cli("restore", *drives, "--into", dest)
    assert code == 0, out
    assert (dest / "b.txt").read_bytes() == b"b\n"


def test_drive_of_another_shipment_is_refused(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship, other = shipments["edge"], shipments["edge2"]
    dest = tmp_path / "dest"
    assert restore([str(ship.drives[0])], str(dest)).clean
    before = snapshot(dest)
    report = restore([str(other.drives[5])], str(dest))
    assert report.drives[0].status == "refused" and "another shipment" in report.drives[0].message
    assert outside_journal(snapshot(dest)) == outside_journal(before)
    code, out, _ = cli("restore", other.drives[1], "--into", dest)
    assert code == 1 and "another shipment" in out
    assert status(str(dest)).restored == [1]
    # The right drives still finish it.
    assert restore([str(d) for d in ship.drives[1:]], str(dest)).status.finished
    assert_same_tree(ship.src, dest)


def test_not_a_drive_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    code, out, err = cli("restore", tmp_path / "plain", "--into", tmp_path / "dest")
    assert code == 2 and out == "" and "not a sneakernet drive" in err
    assert not (tmp_path / "dest").exists()


# --- 8. drives without the catalog --------------------------------------------------------------------------------


def test_drive_without_catalog(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    bare = ship.copy(tmp_path / "bare")
    for drive in bare:
        drop_catalog(drive)
    # The copies are still intact drives (B3SUMS fixed).
    assert cli("verify", "--quick", *bare)[0] == 0
    dest = tmp_path / "dest"
    code, out, err = cli("restore", bare[2], "--into", dest)
    assert code == 2 and out == "" and len(lines(err)) == 1
    assert "restore first a drive that does" in err
    assert not dest.exists() or os.listdir(dest) == []
    code, _, _ = cli("restore", ship.drives[0], "--into", dest)
    assert code == 0
    for drive in bare[1:]:
        code, out, err = cli("restore", drive, "--into", dest)
        assert code == 0, out + err
    assert ship.fingerprint in lines(out)[-1]
    assert_same_tree(ship.src, dest)


@pytest.mark.parametrize("damage", ["flipped", "fifo"])
def test_a_damaged_catalog_on_the_first_drive_given_falls_back_to_the_next(
    shipments: dict[str, Packed], tmp_path: Path, damage: str
) -> None:
    """Issue 18, 9: a damaged catalog on the first drive given stopped the whole restore ("use another drive's
    catalog") although every other drive carried a good copy: the next good copy is used, and said so."""
    ship = shipments["links"]
    drives = ship.copy(tmp_path / "copy")
    catalog = drives[0] / CATALOG_NAME
    if damage == "flipped":
        flip_byte(catalog, catalog.stat().st_size // 2)
    else:
        catalog.unlink()
        os.mkfifo(catalog)
    dest = tmp_path / "dest"
    code, out, err = cli("restore", *drives, "--into", dest)
    assert code == 0, out + err
    notes = [line for line in lines(out) if line.startswith("note:")]
    assert len(notes) == 1 and "the catalog of drive-0001" in notes[0] and "used the copy on drive-0002" in notes[0]
    assert ship.fingerprint in lines(out)[-1]
    assert_same_tree(ship.src, dest)
    # Alone, a drive with a damaged catalog still cannot start a restore: one line, exit 2.
    code, out, err = cli("restore", drives[0], "--into", tmp_path / "alone")
    assert code == 2 and len(lines(err)) == 1 and "damaged" in err and "Traceback" not in err


# --- 9. disk full -------------------------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def test_disk_full_exits_4_and_the_same_command_finishes(shipments: dict[str, Packed], small_fs: Path) -> None:
    ship = shipments["one"]
    dest = small_fs / "dest"
    args = ("restore", *ship.drives, "--into", dest, "--no-space-check")  # past the check up front: to fill
    code, out, err = cli(*args)
    assert code == 4 and len(lines(err)) == 1 and "is full" in err and "Traceback" not in err
    assert_final_names_exact(ship.src, dest)
    # The journal is intact: status reads it.
    code, out, _ = cli("status", dest, "--json")
    assert code == 3 and [w["drive"] for w in json.loads(out)["waiting"]] == [1]
    _grow(small_fs)
    code, out, err = cli(*args)
    assert code == 0, out + err
    assert ship.fingerprint in lines(out)[-1]
    assert_same_tree(ship.src, dest)


def test_disk_full_in_the_journal_exits_4(small_fs: Path, tmp_path: Path) -> None:
    drives = write_shipment(
        tmp_path / "ship", [small_files([("a.txt", b"a" * 1000)]), [dir_rec(f"d{i:03d}") for i in range(400)]]
    )
    dest = small_fs / "dest"
    assert cli("restore", drives[0], "--into", dest)[0] == 0
    fill_up(small_fs, leave=0)
    code, _, err = cli("restore", drives[1], "--into", dest)
    assert code == 4 and len(lines(err)) == 1 and "is full" in err
    (small_fs / "filler").unlink()
    code, out, _ = cli("restore", drives[1], "--into", dest)
    assert code == 0 and "every file matched" in lines(out)[-1]


def test_short_writes_never_reach_a_final_name(shipments: dict[str, Packed], tmp_path: Path) -> None:
    ship = shipments["edge"]
    # The first write into the parts of two files wholly on the last drive writes only half its bytes: a fake
    # destination knows them by their bytes (parts have random names).
    victims = {name: (ship.src / name).read_bytes() for name in ("images/noise.png", "text/doc003.jsonl")}
    shortened: set[str] = set()

    class ShortFirstWrites(LocalParts):
        def write(self, fd: int, data: bytes | memoryview, offset: int) -> int:
            for name, content in victims.items():
                if name not in shortened and offset == 0 and len(data) > 1 and data == content[: len(data)]:
                    shortened.add(name)
                    return super().write(fd, bytes(data)[: len(data) // 2], offset)
            return super().write(fd, data, offset)

    class ShortFirstWritesTree(SafeTree):
        def open_parts(self) -> LocalParts:
            return ShortFirstWrites(super().open_parts().fd)

    dest = tmp_path / "dest"
    restore([str(d) for d in ship.drives], str(dest), open_destination=ShortFirstWritesTree)
    assert shortened == set(victims) and len(victims) == 2
    assert_final_names_exact(ship.src, dest)


class FailingParts(LocalParts):
    """The parts directory of a destination that fails: the ``at``-th call of ``operation`` raises ``error``."""

    def __init__(self, fd: int, operation: str, at: int, error: int) -> None:
        super().__init__(fd)
        self.operation, self.left, self.error = operation, at, error
        self.failed = False

    def _maybe_fail(self, operation: str) -> None:
        if operation == self.operation and not self.failed:
            self.left -= 1
            if self.left == 0:
                self.failed = True
                raise OSError(self.error, os.strerror(self.error))

    def create(self, name: bytes) -> int:
        self._maybe_fail("create")
        return super().create(name)

    def write(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        self._maybe_fail("write")
        return super().write(fd, data, offset)

    def seal(self, fd: int, mode: int, mtime_ns: int, owner: tuple[int, int] | None) -> None:
        self._maybe_fail("seal")
        super().seal(fd, mode, mtime_ns, owner)


@pytest.mark.parametrize(
    ("operation", "at", "error", "code"),
    [
        ("create", 5, errno.EIO, 2),
        ("write", 12, errno.ENOSPC, 4),
        ("write", 3, errno.EIO, 2),
        ("seal", 7, errno.EIO, 2),
    ],
)
def test_a_parts_directory_that_fails_stops_cleanly_and_the_next_run_finishes_identical(
    shipments: dict[str, Packed], tmp_path: Path, operation: str, at: int, error: int, code: int
) -> None:
    """A fault in the parts directory (through the destination's Parts seam, no patched internals): one line and
    the documented exit code, no wrong byte under a final name; the same restore again finishes identical."""
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    made: list[FailingParts] = []

    class FailingTree(SafeTree):
        def open_parts(self) -> LocalParts:
            made.append(FailingParts(super().open_parts().fd, operation, at, error))
            return made[-1]

    with pytest.raises(SneakernetError) as raised:
        restore([str(d) for d in ship.drives], str(dest), open_destination=FailingTree)
    assert made and made[0].failed
    assert raised.value.exit_code == code and "\n" not in str(raised.value)
    assert "run the same restore again" in str(raised.value)
    assert_final_names_exact(ship.src, dest)
    report = restore([str(d) for d in ship.drives], str(dest))
    assert report.status.finished
    assert_same_tree(ship.src, dest)


# --- 10. case-insensitive destinations ----------------------------------------------------------------------------


def test_names_that_fold_together_collide(
    shipments: dict[str, Packed], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SafeTree, "folds_names", lambda self: True)  # a case-insensitive destination
    ship = shipments["case"]
    dest = tmp_path / "dest"
    code, out, _ = cli("restore", *ship.drives, "--into", dest, "--json")
    assert code == 1
    report = json.loads(out)
    collisions = [c for d in report["drives"] for c in d["collisions"]]
    # The first name in walk order (bytes) wins: README before readme, the decomposed café before the composed.
    assert sorted(collisions) == sorted(
        [
            "readme collides with README",
            "caf\u00e9 collides with cafe\u0301",
            "dir collides with Dir",
            "dir/y lies inside dir",
        ]
    )
    assert not report["clean"] and not report["status"]["complete"]
    assert (dest / "README").read_bytes() == b"upper\n" and not os.path.lexists(dest / "readme")
    assert (dest / "cafe\u0301").read_bytes() == b"decomposed\n" and not os.path.lexists(dest / "caf\u00e9")
    code, out, _ = cli("restore", *ship.drives, "--into", tmp_path / "dest2")
    assert code == 1 and "not restored: readme collides with README on this case-insensitive destination" in out


def test_contents_of_a_colliding_directory_are_not_merged(
    shipments: dict[str, Packed], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SafeTree, "folds_names", lambda self: True)  # a case-insensitive destination
    ship = shipments["case"]
    dest = tmp_path / "dest"
    restore([str(d) for d in ship.drives], str(dest))
    assert (dest / "Dir" / "x").read_bytes() == b"x\n"
    assert not os.path.lexists(dest / "dir") and not os.path.lexists(dest / "Dir" / "y")


# --- 11. ls and info ----------------------------------------------------------------------------------------------


def test_ls(shipments: dict[str, Packed]) -> None:
    ship = shipments["edge"]
    drive = ship.drives[2]
    expected = [
        {
            "schema_version": 1,
            "path": show_path(decode_path("path", e)),
            "kind": e["kind"],
            "size": e["size"],
            "first_drive": e["first_drive"],
            "last_drive": e["last_drive"],
            "drives": list(range(e["first_drive"], e["last_drive"] + 1)),  # version 1: every drive between
        }
        for e in catalog_entries(drive)
    ]
    code, out, _ = cli("ls", drive, "--json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == expected
    big = next(e for e in expected if e["path"] == "arrays/big.npy")
    assert (big["first_drive"], big["last_drive"]) == (1, 6) and big["size"] == 3_000_000
    assert len(expected) == len(source_entries(ship.src))
    code, out, _ = cli("ls", drive)
    assert code == 0 and len(out.splitlines()) == len(expected)
    row = next(line for line in out.splitlines() if line.endswith(" arrays/big.npy"))
    assert row.split()[:4] == ["file", "3000000", "drive", "1-6"]
    row = next(line for line in out.splitlines() if line.endswith(" readonly.txt"))
    assert row.split()[:4] == ["file", "13", "drive", "6"]
    assert any(line.endswith(" line\\nbreak.txt") for line in out.splitlines())


def test_info(shipments: dict[str, Packed]) -> None:
    ship = shipments["edge"]
    drive = ship.drives[1]
    label = json.loads((drive / "drive.json").read_text())
    code, out, _ = cli("info", drive, "--json")
    found = json.loads(out)
    assert code == 0
    assert found["drive"] == 2 and found["drives"] == 6 and found["label"] == "drive-0002"
    assert found["fingerprint"] == ship.fingerprint and found["short_fingerprint"] == ship.summary.short_fingerprint
    assert found["shipment"] == label["shipment"] == ship.summary.shipment
    assert (found["stored_bytes"], found["raw_bytes"], found["segments"]) == (
        label["stored_bytes"],
        label["raw_bytes"],
        label["segments"],
    )
    assert found["files"] == ship.summary.files and found["shipment_raw_bytes"] == ship.summary.raw_bytes
    assert found["shipment_stored_bytes"] == ship.summary.stored_bytes
    code, out, _ = cli("info", drive)
    assert code == 0
    assert "drive 2 of 6" in out and ship.fingerprint in out and ship.summary.short_fingerprint in out
    assert label["shipment"] in out and "drive-0002" in out


def test_ls_and_info_of_a_drive_without_catalog(shipments: dict[str, Packed], tmp_path: Path) -> None:
    drive = shipments["edge"].copy(tmp_path / "bare")[3]
    drop_catalog(drive)
    code, out, err = cli("ls", drive)
    assert code == 2 and out == "" and len(lines(err)) == 1 and "carries no catalog" in err
    code, out, _ = cli("info", drive)
    assert code == 0 and "drive 4 (no catalog on this drive)" in out and "fingerprint" not in out
    code, out, _ = cli("info", drive, "--json")
    found = json.loads(out)
    assert code == 0 and found["drive"] == 4 and found["drives"] is None and found["fingerprint"] is None


def test_ls_and_info_of_something_not_a_drive(tmp_path: Path) -> None:
    for command in ("ls", "info"):
        code, out, err = cli(command, tmp_path)
        assert code == 2 and out == "" and "not a sneakernet drive" in err


# --- 12. exit codes -----------------------------------------------------------------------------------------------


def test_status_exit_codes(shipments: dict[str, Packed], tmp_path: Path) -> None:
    """Issue 12, point 2: a finished restore answered like a typo ('holds no restore in progress', exit 2, and
    nothing with --json). Now: 3 while drives are needed, 0 and 'complete' with the fingerprint and date once
    finished (a script's loop ends), 2 for a path that does not exist, a drive, or a directory with no restore,
    each said as what it is."""
    ship = shipments["edge"]
    dest = tmp_path / "dest"
    code, out, err = cli("status", dest)
    assert code == 2 and out == "" and f"{dest} does not exist" in err
    dest.mkdir()
    code, out, err = cli("status", dest)
    assert code == 2 and out == "" and "holds no restore, in progress or finished" in err
    code, out, err = cli("status", ship.drives[0])
    assert code == 2 and out == "" and "is a drive, not the destination of a restore" in err
    assert cli("restore", ship.drives[0], "--into", dest)[0] == 0
    code, out, _ = cli("status", dest)
    assert code == 3 and "drive 6 (drive-0006)" in out and "drive 1 (drive-0001)" not in out
    assert cli("restore", *ship.drives[1:], "--into", dest)[0] == 0
    code, out, _ = cli("status", dest)
    assert code == 0 and f"complete: every file matched its BLAKE3 (fingerprint {ship.fingerprint})" in out
    assert f"restored into {dest}, finished 20" in out
    code, out, _ = cli("status", dest, "--json")
    state = json.loads(out)
    assert code == 0 and state["complete"] and state["finished"] and state["fingerprint"] == ship.fingerprint
    assert state["finished_at"].endswith("Z") and state["restored"] == [1, 2, 3, 4, 5, 6] and state["waiting"] == []
    record = json.loads((journal_dir(dest) / FINISHED_NAME).read_text())
    assert record["format"] == "sneakernet-finished" and record["version"] == 1
    assert (record["shipment"], record["drives"], record["includes"]) == (ship.summary.shipment, 6, [])


def test_a_drive_restored_again_into_a_finished_destination_is_a_no_op(
    shipments: dict[str, Packed], tmp_path: Path
) -> None:
    """Issue 12, point 2: a drive run again into a finished DEST was refused as 'not empty and holds no restore of
    a shipment', and the --force it suggested started a new restore over the finished tree. Now: a drive of that
    shipment says it is already in, exit 0, writing nothing (--force too); a drive of another shipment is refused,
    naming both."""
    ship, other = shipments["edge"], shipments["edge2"]
    dest = tmp_path / "dest"
    assert cli("restore", *ship.drives, "--into", dest, "--include", "text")[0] == 0
    before = snapshot(dest)
    for extra in ([], ["--force"], ["--include", "text"]):
        code, out, err = cli("restore", ship.drives[2], ship.drives[0], "--into", dest, *extra)
        assert code == 0, err
        finished = json.loads((journal_dir(dest) / FINISHED_NAME).read_text())["finished"]
        said = f"already restored: {dest} holds this shipment, finished {finished}; nothing to do"
        assert [line.endswith(said) for line in lines(out)[:2]] == [True, True], out
        assert f"complete: every file matched its BLAKE3 (fingerprint {ship.fingerprint})" in out
        assert snapshot(dest) == before
    code, out, err = cli("restore", ship.drives[0], "--into", dest, "--include", "images")
    assert code == 2 and "with --include ['text']" in err and snapshot(dest) == before
    code, out, err = cli("restore", other.drives[0], "--into", dest)
    assert code == 2 and out == "" and len(lines(err)) == 1
    assert f"finished restore of shipment {ship.summary.shipment}" in err and other.summary.shipment in err
    assert snapshot(dest) == before
    # --force restores the other shipment over it; the finished record of the first one goes.
    assert cli("restore", other.drives[0], "--into", dest, "--force")[0] == 0
    assert not (journal_dir(dest) / FINISHED_NAME).exists() and status(str(dest)).shipment == other.summary.shipment
    # A damaged record is one line, not a traceback.
    (journal_dir(dest) / "journal.sqlite3").unlink()
    (journal_dir(dest) / FINISHED_NAME).write_text('{"format": "sneakernet-finished", "version": 1}')
    code, out, err = cli("status", dest)
    assert code == 2 and "finished.json is damaged ('shipment' is missing or not a str)" in err and len(lines(err)) == 1


@pytest.mark.parametrize("path", ["pooled", "large"])
def test_a_file_whose_bytes_differ_from_its_blake3_never_gets_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Chunks intact (their own hashes match), the file record's BLAKE3 another: the file is refused, whichever
    way it is written: by the writer pool (small files) or as its chunks come, hashed on the hash lane (large)."""
    if path == "large":
        monkeypatch.setattr(drive_module, "POOLED_FILE_LIMIT", 1)
    data = random.Random(3).randbytes(600_000)
    chunks = [Chunk(data[i : i + 256 * 1024]) for i in range(0, len(data), 256 * 1024)]
    record = file_rec("big.bin", data, chunks[0], blake3=blake3.blake3(data + b"!").hexdigest())
    before = small_files([("a-before.txt", b"first\n")])
    good = small_files([("good.txt", b"fine\n")])
    drives = write_shipment(tmp_path / "ship", [[*before, *chunks, record, *good]])
    dest = tmp_path / "dest"
    code, out, _ = cli("restore", *drives, "--into", dest)
    assert code == 1 and "big.bin does not match its BLAKE3" in out, out
    assert not os.path.lexists(dest / "big.bin")
    # Small files share a writer job: the one refused is that file, not its neighbours in the job.
    assert (dest / "a-before.txt").read_bytes() == b"first\n"
    assert (dest / "good.txt").read_bytes() == b"fine\n"


def test_written_files_do_not_stay_in_memory_until_their_batch_is_installed(tmp_path: Path) -> None:
    """Files of 1-8 MiB go to the writer pool as views of their chunks; a job must let them go once handed over,
    not when the batch (up to BATCH_BYTES) is installed. 120 files of 1.5 MiB, all in one batch: held, they would
    keep 180 MB; let go, the restore stays near its usual footprint."""
    src = tmp_path / "src"
    for number in range(120):
        write_file(src / f"f{number:03d}.bin", bytes([number]) * (3 * 2**19))
    pack(src, out=str(tmp_path / "out"), drive_size=10**9, options=PackOptions())
    child = r"""
import importlib, json, sys
restore = importlib.import_module("sneakernet.restorer")
report = restore.restore(sys.argv[1:2], sys.argv[2])
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"status": report.drives[0].status, "maxrss_kib": peak}))
"""
    drive, dest = str(tmp_path / "out" / "drive-0001"), str(tmp_path / "dest")
    result = subprocess.run([sys.executable, "-c", child, drive, dest], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    found = json.loads(result.stdout)
    assert found["status"] == "restored" and (tmp_path / "dest" / "f119.bin").read_bytes() == bytes([119]) * (3 * 2**19)
    assert found["maxrss_kib"] < 128 * 1024, found


# --- setuid and setgid --------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root restores files owned by root")
def test_setuid_and_setgid_bits_are_cleared_unless_kept(tmp_path: Path) -> None:
    """As root, a drive from outside planted setuid root programs. Files lose setuid and setgid by default (as
    bsdtar does without -p), whole on a drive or spanning two; directories keep setgid; the summary counts them,
    human and --json; --keep-setuid restores every bit."""
    src = tmp_path / "src"
    write_file(src / "bin" / "tool", b"#!/bin/sh\nid\n", mode=0o4755)
    write_file(src / "bin" / "group-tool", b"#!/bin/sh\nid -g\n", mode=0o2711)
    write_file(src / "big", random.Random(8).randbytes(2_500_000), mode=0o6750)
    write_file(src / "shared" / "plain", b"plain\n", mode=0o1644)
    os.chmod(src / "shared", 0o2775)
    assert os.lstat(src / "bin" / "tool").st_uid == 0  # a setuid root program
    summary = pack(str(src), out=str(tmp_path / "out"), drive_size=DRIVE, options=SMALL)
    drives = [d["path"] for d in summary.drives]
    assert len(drives) >= 2
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, err
    assert "setuid/setgid bits cleared on 3 files (--keep-setuid keeps them" in out
    modes = {p: stat.S_IMODE(os.lstat(tmp_path / "dest" / p).st_mode) for p in ("bin/tool", "bin/group-tool", "big")}
    assert modes == {"bin/tool": 0o755, "bin/group-tool": 0o711, "big": 0o750}
    assert stat.S_IMODE(os.lstat(tmp_path / "dest" / "shared").st_mode) == 0o2775
    assert stat.S_IMODE(os.lstat(tmp_path / "dest" / "shared" / "plain").st_mode) == 0o1644
    assert_same_tree(src, tmp_path / "dest")
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest-json", "--json")
    report = json.loads(out)
    assert code == 0 and report["setid_cleared"] == sum(d["setid_cleared"] for d in report["drives"]) == 3
    code, out, err = cli("restore", *drives, "--into", tmp_path / "kept", "--keep-setuid")
    assert code == 0 and "bits cleared" not in out
    assert stat.S_IMODE(os.lstat(tmp_path / "kept" / "bin" / "tool").st_mode) == 0o4755
    assert outside_journal(source_entries(tmp_path / "kept")) == source_entries(src)


# --- the parts directory --------------------------------------------------------------------------------------------


def test_a_file_planted_in_the_parts_directory_is_never_written_through(tmp_path: Path) -> None:
    """Parts are made O_EXCL|O_NOFOLLOW under random names: a hard link to a file outside DEST planted under the
    name restore used to give notes.txt's part was opened with O_TRUNC and written through (the outside file then
    held the shipment's bytes, and became notes.txt). It is now never opened, and swept away."""
    write_file(tmp_path / "src" / "notes.txt", b"the real notes\n")
    assert cli("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "100MB")[0] == 0
    victim = tmp_path / "outside" / "victim.txt"
    write_file(victim, b"keep me\n")
    parts = tmp_path / "dest" / JOURNAL_DIR / "parts"
    parts.mkdir(parents=True)
    os.link(victim, parts / f"{blake3.blake3(b'notes.txt').hexdigest()[:40]}.part")
    os.symlink(victim, parts / "planted.part")
    code, _, err = cli("restore", tmp_path / "out" / "drive-0001", "--into", tmp_path / "dest", "--keep-journal")
    assert code == 0, err
    assert victim.read_bytes() == b"keep me\n" and os.stat(victim).st_nlink == 1
    assert (tmp_path / "dest" / "notes.txt").read_bytes() == b"the real notes\n"
    assert list(parts.iterdir()) == []


def _spanning_part(dest: Path) -> tuple[bytes, Path]:
    """The one file in progress across drives, and its part (recorded in the journal)."""
    with contextlib.closing(sqlite3.connect(dest / JOURNAL_DIR / "journal.sqlite3")) as db:
        ((path, name),) = db.execute("SELECT path, name FROM parts").fetchall()
    return bytes(path), dest / JOURNAL_DIR / "parts" / os.fsdecode(name)


@pytest.mark.parametrize("change", ["replaced", "flipped", "appended"])
def test_a_part_changed_between_runs_is_never_installed_wrong(
    shipments: dict[str, Packed], tmp_path: Path, change: str
) -> None:
    """A file spanning drives keeps its part across runs. Replaced meanwhile (another file under its name, even
    holding its bytes) or changed inside, it is refused with why; bytes appended to it are cut (the hash covers
    exactly the bytes renamed). Either way no wrong byte gets a final name."""
    ship = shipments["links"]
    dest = tmp_path / "dest"
    assert restore([str(ship.drives[0])], str(dest)).clean
    path, part = _spanning_part(dest)
    assert path == b"m-big.bin"
    data = part.read_bytes()
    if change == "replaced":
        other = part.with_name("other")
        other.write_bytes(data)
        os.replace(other, part)
    elif change == "flipped":
        with open(part, "r+b") as handle:
            handle.seek(1000)
            handle.write(bytes([data[1000] ^ 1]))
    else:
        with open(part, "ab") as handle:
            handle.write(b"EVIL" * 1000)
    report = restore([str(d) for d in ship.drives[1:]], str(dest))
    assert_final_names_exact(ship.src, dest)
    if change == "appended":
        assert report.clean and report.status.finished
        assert_same_tree(ship.src, dest)
        return
    assert not (dest / "m-big.bin").exists()
    why = {
        "replaced": "has a part that was replaced since an earlier drive wrote into it: not installed",
        "flipped": "does not match its BLAKE3 once assembled from its drives",
    }[change]
    assert [f for d in report.drives for f in d.failed] == [f"m-big.bin {why}"]


def test_a_symlink_in_place_of_the_journal_or_the_catalog_copy_is_refused(
    shipments: dict[str, Packed], tmp_path: Path
) -> None:
    """SQLite and the catalog copy are opened by name: a symlink there (of DEST's, not of a drive: a drive cannot
    name DEST/.sneakernet) is refused in one line, or removed before anything is written, never written through."""
    ship = shipments["links"]
    victim = tmp_path / "victim"
    write_file(victim, b"keep me\n")
    dest = tmp_path / "dest"
    (dest / JOURNAL_DIR).mkdir(parents=True)
    os.symlink(victim, dest / JOURNAL_DIR / (CATALOG_NAME + ".partial"))
    os.symlink(tmp_path / "made-outside", dest / JOURNAL_DIR / "journal.sqlite3.partial")  # dangling
    assert cli("restore", ship.drives[0], "--into", dest)[0] == 0
    assert victim.read_bytes() == b"keep me\n" and not os.path.lexists(tmp_path / "made-outside")
    journal = dest / JOURNAL_DIR / "journal.sqlite3"
    shutil.copyfile(journal, victim)
    journal.unlink()
    os.symlink(victim, journal)
    before = victim.read_bytes()
    code, _, err = cli("restore", ship.drives[1], "--into", dest)
    assert code == 2 and len(lines(err)) == 1 and "is not a regular file (a symlink?)" in err, err
    code, _, err = cli("status", dest)
    assert code == 2 and len(lines(err)) == 1 and "is not a regular file (a symlink?)" in err, err
    assert victim.read_bytes() == before


def test_restores_own_small_files_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    """The name-folding probe and the finished record are made O_EXCL|O_NOFOLLOW after any stale one is removed:
    a symlink there (a kept journal copied around, a hand) truncated or overwrote the file it named."""
    (drive,) = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a\n")])])
    victims = [tmp_path / "victim-probe", tmp_path / "victim-finished"]
    for victim in victims:
        write_file(victim, b"keep me\n")
    journal_dir = tmp_path / "dest" / JOURNAL_DIR
    journal_dir.mkdir(parents=True)
    os.symlink(victims[0], journal_dir / "Probe-\u00e9")
    os.symlink(victims[1], journal_dir / "finished.json.partial")
    code, _, err = cli("restore", drive, "--into", tmp_path / "dest")
    assert code == 0, err
    assert [v.read_bytes() for v in victims] == [b"keep me\n"] * 2
    assert (tmp_path / "dest" / "a.txt").read_bytes() == b"a\n"
