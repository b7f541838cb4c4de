"""The generator of hostile drives: one crafted shipment per class of issue 18, each written from docs/format.md
with every hash, size, count and the fingerprint recomputed (tests/craft.py), so that it looks valid.

Each case runs ``sneakernet verify`` and then ``sneakernet restore`` on its drives in a child process, under a
timeout (:data:`TIMEOUT`) and a memory cap (``RLIMIT_AS`` of :data:`MEMORY`), and asserts what a user must be
able to rely on whatever a drive says:

* verify exits 1 (it found the problem) and restore exits 1 or 2 (it refused the entry or the drive);
* no traceback, and no hang (the timeout);
* nothing written outside DEST;
* no wrong byte under a final name: every regular file in DEST holds the honest bytes of its path;
* no file in DEST (its parts included) with an apparent size beyond what the shipment's drives hold;
* no setuid or setgid bit installed.

Cases another slice fixes are marked ``xfail(strict=True)`` with the slice's name until its fix lands on main.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from craft import (
    Chunk,
    b3,
    dir_rec,
    file_rec,
    hardlink_rec,
    small_files,
    spanning_file,
    symlink_rec,
    write_shipment,
)
from sneakernet.chunks.compress import store_frame
from sneakernet.format import CATALOG_NAME, CHECKSUMS_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME, segment_name
from sneakernet.io.source import walk
from sneakernet.restorer.journal import JOURNAL_DIR

#: Seconds a case's verify and restore may take together: a hang is a failure, not a stuck suite.
TIMEOUT = 60
#: Address space of the child: a hostile drive must not make a reader allocate its way past it.
MEMORY = 1 << 30
#: What every case's drive carries besides its hostile part: it must come out right (or not at all).
HONEST = {"ok.txt": b"fine\n", "sub/also.txt": b"also fine\n"}

# verify, then restore, in-process in the child: one interpreter start per case, not two.
_CHILD = r"""
import contextlib, io, json, sys, traceback
from sneakernet.cli import main

def run(args):
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main.main(args, prog_name="sneakernet", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = -1
    return [code, out.getvalue()]

drives, dest = json.loads(sys.argv[1]), sys.argv[2]
print(json.dumps({"verify": run(["verify", *drives]), "restore": run(["restore", *drives, "--into", dest])}))
"""


def _cap_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


@dataclass
class Case:
    """A hostile shipment: ``build(ship, outside)`` writes its drives under ``ship`` and returns them (``outside``
    is a directory nothing may ever be written into)."""

    build: Callable[[Path, Path], list[Path]]
    #: A phrase restore's output must hold (the clear line naming the problem).
    says: str = ""
    #: Bytes each path may hold in DEST, beyond :data:`HONEST`.
    honest: dict[str, bytes] = field(default_factory=dict)
    restore_codes: tuple[int, ...] = (1, 2)
    verify_code: int = 1
    #: Only entries are refused: the honest files must come out too (not only never wrong).
    keeps_honest: bool = False
    #: The slice whose fix this case waits for (the case is an xfail until it lands).
    waits_for: str | None = None


def _drive(*hostile: Any) -> Callable[[Path, Path], list[Path]]:
    """One drive: the honest files, then the hostile items (records and chunks)."""

    def build(ship: Path, _: Path) -> list[Path]:
        return write_shipment(ship, [[*small_files(list(HONEST.items())), *hostile]])

    return build


def _special(name: str, kind: str) -> Callable[[Path, Path], list[Path]]:
    """A drive whose file ``name`` is replaced by a FIFO (which blocks a plain open forever) or by a symlink to a
    copy of itself outside the drive (which must not be followed)."""

    def build(ship: Path, outside: Path) -> list[Path]:
        drives = write_shipment(ship, [small_files(list(HONEST.items()))])
        path = drives[0] / name
        moved = ship / "moved"
        os.replace(path, moved)
        if kind == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to(moved)
        return drives

    return build


def _drive_with_catalog(
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], **header: Any
) -> Callable[[Path, Path], list[Path]]:
    """One drive of the honest files whose catalog's entries ``edit`` changed (the fingerprint still matches), and
    whose catalog header says ``header``."""

    def build(ship: Path, _: Path) -> list[Path]:
        return write_shipment(ship, [small_files(list(HONEST.items()))], catalog_edit=edit, catalog_header=header)

    return build


def _relabelled(**fields: Any) -> Callable[[Path, Path], list[Path]]:
    """One drive of the honest files whose drive.json then says ``fields`` (its B3SUMS line left as it was)."""

    def build(ship: Path, _: Path) -> list[Path]:
        drives = write_shipment(ship, [small_files(list(HONEST.items()))])
        label = drives[0] / DRIVE_LABEL_NAME
        label.write_text(json.dumps({**json.loads(label.read_text()), **fields}, indent=2) + "\n")
        return drives

    return build


def _one(path: str, **overrides: Any) -> list[Any]:
    """A small file whose final record has ``overrides`` (hostile values of its fields)."""
    chunk = Chunk(b"value\n")
    return [chunk, file_rec(path, b"value\n", chunk, **overrides)]


def _sparse_bomb(order: str) -> Callable[[Path, Path], list[Path]]:
    """A file whose piece on drive 1 holds 100 bytes and whose final piece on drive 2 claims offset = size = 2^40;
    the drives given tail first or last."""

    def build(ship: Path, _: Path) -> list[Path]:
        drives = spanning_file([(0, b"x" * 100), (2**40, b"")], 2**40, b"x" * 100)
        drives[0] += small_files(list(HONEST.items()))
        paths = write_shipment(ship, drives)
        return paths[::-1] if order == "tail-first" else paths

    return build


def _deep_path(components: int) -> Callable[[Path, Path], list[Path]]:
    """A file ``components`` levels down, its directories made by restore itself (no dir records)."""
    path = "/".join(["d"] * (components - 1) + ["deep.txt"])
    return _drive(*small_files([(path, b"deep\n")]))


#: The files of a drive, and the exit codes restore may give when one is not a regular file.
DRIVE_FILES = [
    ("segment", segment_name(1), (1, 2)),
    ("manifest", MANIFEST_NAME, (1, 2)),
    ("drive-json", DRIVE_LABEL_NAME, (1, 2)),
    ("catalog", CATALOG_NAME, (1, 2)),
    # restore does not read B3SUMS: every byte it installs is checked by the manifest's hashes.
    ("b3sums", CHECKSUMS_NAME, (0,)),
]

CASES: dict[str, Case] = {
    # 4: no hang on a FIFO, no symlink followed, in place of any file of a drive.
    **{
        f"{kind}-{label}": Case(_special(name, kind), f"{what}, not a regular file", restore_codes=codes)
        for label, name, codes in DRIVE_FILES
        for kind, what in (("fifo", "a FIFO"), ("symlink", "a symlink"))
    },
    # 1: the tool's own names: a planted part (its name predictable) installed EVIL as notes.txt.
    "reserved-planted-part": Case(
        _drive(
            *small_files([(f".sneakernet/parts/{b3(b'notes.txt')[:40]}.part", b"EVIL\n"), ("notes.txt", b"real\n")])
        ),
        ".sneakernet",
        honest={"notes.txt": b"real\n"},
    ),
    "reserved-journal": Case(_drive(*small_files([(".sneakernet/journal.sqlite3", b"not a journal")])), ".sneakernet"),
    # 2: one path finished on two drives: the catalog names the one drive that finishes it.
    "duplicate-across-drives": Case(
        lambda ship, _: write_shipment(
            ship,
            [[*small_files(list(HONEST.items())), *small_files([("a", b"one\n")])], small_files([("a", b"two\n")])],
        ),
        "twice",
    ),
    # 3: a catalog that lies about what the manifests hold (consistent with its fingerprint).
    "catalog-phantom-entry": Case(
        _drive_with_catalog(
            lambda e: [
                *e,
                {"type": "entry", "path": "phantom", "kind": "file", "size": 5, "first_drive": 1, "last_drive": 1},
            ]
        ),
        "phantom",
    ),
    "catalog-missing-entry": Case(_drive_with_catalog(lambda e: [x for x in e if x.get("path") != "ok.txt"]), "ok.txt"),
    "catalog-wrong-kind": Case(
        _drive_with_catalog(lambda e: [{**x, "kind": "dir"} if x.get("path") == "ok.txt" else x for x in e]), "ok.txt"
    ),
    "catalog-last-drive-huge": Case(
        _drive_with_catalog(lambda e: [{**x, "last_drive": 10**15} if x.get("path") == "ok.txt" else x for x in e]),
        "last_drive",
    ),
    # 4: crash cases: tracebacks on hostile values.
    "symlink-target-nul": Case(_drive(symlink_rec("s", "a\0b")), "NUL"),
    "symlink-target-empty": Case(_drive(symlink_rec("s", "")), "empty target"),
    "chunk-type-not-first": Case(
        _drive(c := Chunk(b"late type", type_last=True), file_rec("late", b"late type", c)), "type"
    ),
    "mtime-huge": Case(_drive(*_one("m", mtime_ns=2**70)), "mtime_ns"),
    "mtime-huge-negative": Case(_drive(*_one("m", mtime_ns=-(2**70))), "mtime_ns"),
    "uid-huge": Case(_drive(*_one("u", uid=2**40)), "uid"),
    "size-2-62": Case(_drive(*_one("s", size=2**62)), "size"),
    "size-2-64": Case(_drive(*_one("s", size=2**64)), "size"),
    "chunk-offset-2-64": Case(
        _drive(c := Chunk(b"far away", offset=2**64), file_rec("far", b"far away", c)), "18446744073709551616"
    ),
    "drive-number-2-64": Case(_relabelled(drive=2**64), "drive"),
    "catalog-claims-10-12-drives": Case(_drive_with_catalog(lambda e: e, drives=10**12), "catalog"),
    # 6: chunk records that do not fit their segment, hidden by a whole-segment hash that matches.
    "chunks-overlap": Case(
        _drive(Chunk(b"first chunk"), c := Chunk(b"first chunk", offset=0), file_rec("o", b"first chunk", c)),
        "overlaps",
    ),
    "chunk-of-two-frames": Case(
        _drive(c := Chunk(b"one", stored=store_frame(b"one") + store_frame(b"two")), file_rec("two", b"one", c)),
        "frame",
    ),
    # 5: the sparse-file bomb, on one drive and across two in either order.
    "sparse-bomb-one-drive": Case(_drive(file_rec("big", b"", None, offset=2**40, size=2**40)), "big"),
    **{f"sparse-bomb-{order}": Case(_sparse_bomb(order), "1099511627776") for order in ("tail-first", "tail-last")},
    # 6: what verify must check like restore: entries and chunk records against their segment.
    "absolute-path": Case(
        lambda ship, outside: write_shipment(ship, [small_files([(str(outside / "x"), b"x")])]), "absolute"
    ),
    "symlink-then-write-through-it": Case(
        lambda ship, outside: write_shipment(
            ship, [[symlink_rec("link", str(outside)), *small_files([("link/f", b"e")])]]
        ),
        "symlink",
    ),
    "hardlink-out": Case(_drive(hardlink_rec("h", "../outside")), "'..'"),
    "chunk-past-its-segment": Case(
        _drive(c := Chunk(b"beyond", offset=10**6), file_rec("beyond", b"beyond", c)), "segment"
    ),
    "file-inside-a-file": Case(_drive(*small_files([("f", b"one"), ("f/g", b"two")])), "lies inside"),
    "dir-and-file": Case(_drive(dir_rec("x"), *small_files([("x", b"file")])), "twice"),
    # 8: a setuid root file from outside is installed without its setuid bit (verify has nothing to refuse).
    "setuid-root": Case(
        _drive(c := Chunk(b"#!/bin/sh\n"), file_rec("tool", b"#!/bin/sh\n", c, mode=0o4755)),
        honest={"tool": b"#!/bin/sh\n"},
        verify_code=0,
        restore_codes=(0,),
        keeps_honest=True,
    ),
    # 9: one name longer than NAME_MAX refuses that entry, the rest of the drive is restored.
    "name-too-long": Case(
        _drive(*small_files([("x" * 300, b"long\n")])),
        "longer than",
        verify_code=0,
        restore_codes=(1,),
        keeps_honest=True,
    ),
    # 4: paths of about 490 components from a crafted drive (the safe tree recursed).
    "deep-path-490": Case(
        _deep_path(490),
        honest={"/".join(["d"] * 489 + ["deep.txt"]): b"deep\n"},
        verify_code=0,
        restore_codes=(0,),
    ),
}


def _expected_failure(case: Case) -> list[Any]:
    if case.waits_for is None:
        return []
    return [pytest.mark.xfail(strict=True, reason=f"fixed by wt-{case.waits_for}, not on main yet")]


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=_expected_failure(case), id=name) for name, case in sorted(CASES.items())]
)
def test_hostile_drive(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    ship, outside, work = tmp_path / "ship", tmp_path / "outside", tmp_path / "work"
    for directory in (ship, outside, work):
        directory.mkdir()
    drives = case.build(ship, outside)
    dest = work / "dest"
    bound = _bytes_below(ship) + (1 << 20)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([str(d) for d in drives]), str(dest)],
        capture_output=True,
        timeout=TIMEOUT,
        preexec_fn=_cap_memory,
        cwd=work,
    )
    assert child.returncode == 0, child.stderr.decode()
    found = json.loads(child.stdout)
    (verify_code, verify_out), (restore_code, restore_out) = found["verify"], found["restore"]
    assert "Traceback" not in verify_out + restore_out, verify_out + restore_out
    assert verify_code == case.verify_code, verify_out
    assert restore_code in case.restore_codes, restore_out
    assert case.says in restore_out or case.says in verify_out, verify_out + restore_out
    # Nothing outside DEST: the work directory holds DEST alone, the outside directory nothing.
    assert os.listdir(outside) == [] and sorted(os.listdir(work)) == (["dest"] if dest.exists() else [])
    _check_dest(dest, {**HONEST, **case.honest}, bound)
    if case.keeps_honest:
        assert all((dest / path).read_bytes() == data for path, data in HONEST.items()), restore_out


def _bytes_below(root: Path) -> int:
    """Apparent bytes of every regular file below ``root`` (a FIFO or symlink counts nothing)."""
    return sum(e.size for e in walk(root) if not isinstance(e, tuple) and getattr(e, "kind", "") == "file")


def _check_dest(dest: Path, honest: dict[str, bytes], bound: int) -> None:
    """No wrong byte under a final name, no apparent size beyond the shipment's, no setuid or setgid bit."""
    if not dest.exists():
        return
    for entry in walk(dest):
        assert hasattr(entry, "kind"), entry  # the walk found nothing it could not read
        path = entry.path.decode("utf-8", "surrogateescape")  # type: ignore[union-attr]
        kind, size, mode = entry.kind, entry.size, entry.mode  # type: ignore[union-attr]
        assert size <= bound, f"{path} has an apparent size of {size} bytes"
        if kind != "file":
            continue
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} was installed with mode {mode:o}"
        if path.split("/")[0] == JOURNAL_DIR:
            continue
        assert path in honest, f"{path} was installed, no honest shipment has it"
        assert (dest / path).read_bytes() == honest[path], f"{path} holds wrong bytes"
