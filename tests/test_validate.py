"""The one validation verify and restore share (validate.py), through the command line where a user meets it.

Each hostile class is crafted from docs/format.md with every hash recomputed (tests/craft.py), so that only the
rule under test is broken. For each: verify exits 1 and names the problem; restore refuses (exit 1 or 2) in one
line, no traceback, and no wrong byte is installed under a final name.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from conftest import invoke_cli as cli
from craft import Chunk, RecordFileWriter, b3, dir_rec, file_rec, hardlink_rec, small_files, symlink_rec, write_shipment
from sneakernet.chunks.compress import store_frame
from sneakernet.drive.reader import DriveReader
from sneakernet.format import CATALOG_NAME, CHECKSUMS_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME
from sneakernet.format.container import read_records
from sneakernet.io.store import LocalStore, open_regular
from sneakernet.restorer import restore

FIXTURE = Path(__file__).parent / "fixtures" / "format-v1"


def _replace_sum(drive: Path, name: str) -> None:
    """B3SUMS' line for ``name`` made to match the file again (B3SUMS detects damage, not forgery)."""
    lines = (drive / CHECKSUMS_NAME).read_text().splitlines()
    digest = b3((drive / name).read_bytes())
    (drive / CHECKSUMS_NAME).write_text(
        "".join((f"{digest}  {name}" if line.endswith(f"  {name}") else line) + "\n" for line in lines)
    )


def edit_catalog(drives: list[Path], edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Rewrite every drive's catalog through ``edit``, B3SUMS made to match."""
    for drive in drives:
        rewrite_catalog(drive / CATALOG_NAME, edit)
        _replace_sum(drive, CATALOG_NAME)


def rewrite_catalog(path: Path, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Rewrite the catalog file at ``path`` through ``edit`` (records without the end record, recounted)."""
    with open(path, "rb") as handle:
        records = [r for r in read_records(handle, "catalog") if r is not None and r["type"] != "end"]
    records = edit(records)
    path.unlink()
    writer = RecordFileWriter(path)
    for record in records:
        writer.write(record)
    writer.write({"type": "end", "records": len(records) + 1})
    writer.close()


def edit_label(path: Path, **fields: Any) -> None:
    label = json.loads((path / DRIVE_LABEL_NAME).read_text())
    label.update(fields)
    (path / DRIVE_LABEL_NAME).write_text(json.dumps(label, indent=2) + "\n")
    _replace_sum(path, DRIVE_LABEL_NAME)


def verify_says(drives: list[Path], *words: str) -> str:
    """verify exits 1, without a traceback, and its report holds ``words``."""
    code, out, err = cli("verify", *drives)
    assert code == 1 and "Traceback" not in err, (code, out, err)
    for word in words:
        assert word in out, out
    return out


def restore_refuses(drives: list[Path], dest: Path, *words: str) -> str:
    """restore exits 1 or 2 in one line per refusal naming ``words``, no traceback."""
    code, out, err = cli("restore", *drives, "--into", dest)
    assert code in (1, 2) and "Traceback" not in err, (code, out, err)
    text = out + err
    for word in words:
        assert word in text, text
    return text


def entries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "entry"]


# --- bounds ---------------------------------------------------------------------------------------------------

BIG = 2**70


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        pytest.param("mtime_ns", BIG, "'mtime_ns' is 1180591620717411303424", id="mtime-2^70"),
        pytest.param("mtime_ns", -BIG, "'mtime_ns' is -1180591620717411303424", id="mtime-minus-2^70"),
        pytest.param("uid", 2**40, "'uid' is 1099511627776", id="uid-2^40"),
        pytest.param("gid", 2**32 - 1, "'gid' is 4294967295", id="gid-minus-one"),
    ],
)
def test_metadata_out_of_bounds(tmp_path: Path, field: str, value: int, named: str) -> None:
    chunk = Chunk(b"evil")
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", b"evil", chunk, **{field: value})]])
    verify_says(drives, named)
    restore_refuses(drives, tmp_path / "dest", named)
    assert not (tmp_path / "dest" / "f").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("uid", True), ("mtime_ns", 1.6e18), ("mode", 420.0), ("chunk_offset", False)],
    ids=["uid-true", "mtime-float", "mode-float", "chunk-offset-false"],
)
def test_integer_fields_refuse_booleans_and_floats(tmp_path: Path, field: str, value: Any) -> None:
    chunk = Chunk(b"data")
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", b"data", chunk, **{field: value})]])
    verify_says(drives, f"{field!r} missing or not int")
    restore_refuses(drives, tmp_path / "dest", f"{field!r} missing or not int")
    assert not (tmp_path / "dest" / "f").exists()


@pytest.mark.parametrize("size", [2**62, 2**64], ids=["2^62", "2^64"])
def test_declared_size_out_of_bounds(tmp_path: Path, size: int) -> None:
    """A final piece that says the file is 2^62 (or 2^64) bytes: refused, not an EFBIG or an overflow."""
    chunk = Chunk(b"tail")
    record = file_rec("f", b"tail", chunk, offset=size - 4, size=size)
    drives = write_shipment(tmp_path / "ship", [[chunk, record]])
    verify_says(drives, f"'size' is {size}")
    # The catalog's totals, made from the same records, are out of bounds too: either refusal will do.
    restore_refuses(drives, tmp_path / "dest", f"is {size}, outside")


def test_chunk_offset_of_2_to_the_64(tmp_path: Path) -> None:
    chunk = Chunk(b"data", offset=2**64)
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", b"data", chunk)]])
    verify_says(drives, "chunk 0: it starts at byte 18446744073709551616")
    restore_refuses(drives, tmp_path / "dest", "chunk 0: it starts at byte 18446744073709551616")


def test_drive_number_of_2_to_the_64(tmp_path: Path) -> None:
    drives = write_shipment(tmp_path / "ship", [small_files([("a", b"a")])])
    edit_label(drives[0], drive=2**64)
    verify_says(drives, "'drive' is 18446744073709551616")
    restore_refuses(drives, tmp_path / "dest", "'drive' is 18446744073709551616")


@pytest.mark.parametrize(
    "target", [pytest.param("", id="empty"), pytest.param("a\0b", id="nul")]
)  # fmt: skip
def test_symlink_target_that_symlink_refuses(tmp_path: Path, target: str) -> None:
    drives = write_shipment(tmp_path / "ship", [[symlink_rec("s", target)]])
    verify_says(drives, "symlink 's': it has")
    restore_refuses(drives, tmp_path / "dest", "symlink 's': it has")
    assert not os.path.lexists(tmp_path / "dest" / "s")


def hostile_catalog_child(tmp_path: Path, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """verify, restore and status of a catalog claiming huge numbers, each in a child limited to 1 GiB of address
    space and 60 seconds: refused in one line, no MemoryError, no hang. For status, the catalog copy of a restore
    in progress is replaced (restore checked the one it copied), and the journal's index of the catalog dropped,
    as in a journal of an earlier sneakernet: status then reads the copy (with the index it never does)."""
    drives = write_shipment(tmp_path / "ship", [small_files([("a", b"a")]), small_files([("b", b"b")])])
    code, _, err = cli("restore", drives[0], "--into", tmp_path / "partial")
    assert code in (0, 3), err
    rewrite_catalog(tmp_path / "partial" / ".sneakernet" / CATALOG_NAME, edit)
    with contextlib.closing(sqlite3.connect(tmp_path / "partial" / ".sneakernet" / "journal.sqlite3")) as db:
        for table in ("catalog_entries", "catalog_entries_counts"):
            db.execute(f"DROP TABLE {table}")
        db.commit()
    edit_catalog(drives, edit)
    limit = "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    run = limit + "from sneakernet.cli import main; sys.exit(main())"
    runs = [
        ["verify", drives[0]],
        ["restore", drives[0], "--into", tmp_path / "dest"],
        ["status", tmp_path / "partial"],
    ]
    for args in runs:
        child = subprocess.run(
            [sys.executable, "-c", run, *map(str, args)], capture_output=True, timeout=60, text=True
        )  # fmt: skip
        assert child.returncode in (1, 2), (args, child.stdout, child.stderr)
        assert "Traceback" not in child.stderr and "out of bounds" in child.stdout + child.stderr


def test_catalog_header_claiming_10_to_the_12_drives(tmp_path: Path) -> None:
    hostile_catalog_child(tmp_path, lambda rs: [r | {"drives": 10**12} if r["type"] == "header" else r for r in rs])


def test_catalog_entry_with_last_drive_10_to_the_15(tmp_path: Path) -> None:
    hostile_catalog_child(tmp_path, lambda rs: [r | {"last_drive": 10**15} if r["type"] == "entry" else r for r in rs])


# --- chunk records against their segment ----------------------------------------------------------------------


def test_chunk_records_that_overlap(tmp_path: Path) -> None:
    """Two chunk records over the same bytes, the segment's hash right: verify's whole-segment shortcut must not
    hide it."""
    first = Chunk(b"A" * 100)
    second = Chunk(b"A" * 100, offset=0)  # its bytes are written after the first's; its record says 0
    drives = write_shipment(tmp_path / "ship", [[first, second, file_rec("f", b"A" * 200, first)]])
    verify_says(drives, "chunk 1: it starts at byte 0", "overlaps")
    restore_refuses(drives, tmp_path / "dest", "overlaps")


def test_chunk_record_past_the_end_of_its_segment(tmp_path: Path) -> None:
    chunk = Chunk(b"data", offset=1000)
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", b"data", chunk)]])
    verify_says(drives, "chunk 0: it starts at byte 1000")
    restore_refuses(drives, tmp_path / "dest", "chunk 0: it starts at byte 1000")


def test_piece_starting_past_the_end_of_its_chunk(tmp_path: Path) -> None:
    one, two = Chunk(b"1" * 10), Chunk(b"2" * 10)
    drives = write_shipment(tmp_path / "ship", [[one, two, file_rec("f", b"2" * 5, one, chunk_offset=12)]])
    verify_says(drives, "starts at byte 12 of chunk 0, past its end")
    restore_refuses(drives, tmp_path / "dest", "past its end")


@pytest.mark.parametrize("mode", [[], ["--deep"]], ids=["full", "deep"])
def test_a_second_frame_inside_a_chunk(tmp_path: Path, mode: list[str]) -> None:
    """A chunk's stored bytes holding its frame and then another: the segment's hash and the chunk's hashes all
    match, zstd decodes the first frame alone; the format says one frame, and readers say so."""
    raw = b"the real bytes\n"
    chunk = Chunk(raw, stored=store_frame(raw) + store_frame(b"EVIL\n"))
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", raw, chunk), *small_files([("ok", b"ok")])]])
    code, out, err = cli("verify", *mode, *drives)
    assert code == 1 and "Traceback" not in err and "a second frame?" in out and "hurts: f" in out, out + err
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 1 and "Traceback" not in err and "not restored:" in out and " f " in out, out + err
    assert not (tmp_path / "dest" / "f").exists() and (tmp_path / "dest" / "ok").read_bytes() == b"ok"


def test_a_frame_of_a_million_empty_blocks_is_refused_quickly(tmp_path: Path) -> None:
    """Empty raw blocks, 3 bytes each, then the real one: a legal-looking frame whose walk would take seconds."""
    raw = b"x" * 100
    frame = store_frame(raw)
    header = frame[:9]
    stored = header + b"\x00\x00\x00" * 1_000_000 + frame[9:]  # block header 0: raw, size 0, not last
    chunk = Chunk(raw, stored=stored)
    drives = write_shipment(tmp_path / "ship", [[chunk, file_rec("f", raw, chunk)]])
    verify_says(drives, "chunk frame has more blocks than 3, more than its 100 raw bytes can fill")
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 1 and "Traceback" not in err and not (tmp_path / "dest" / "f").exists(), out + err


# --- duplicates across drives, and the catalog against the manifests --------------------------------------------


def two_drives_finishing_one_path(tmp_path: Path) -> list[Path]:
    """Drive 1 carries its own final record for ``notes.txt``, which drive 2 also finishes (the issue's case)."""
    return write_shipment(
        tmp_path / "ship", [small_files([("notes.txt", b"EVIL\n")]), small_files([("notes.txt", b"the real notes\n")])]
    )


def test_a_path_finished_on_two_drives_listed_twice_by_the_catalog(tmp_path: Path) -> None:
    drives = two_drives_finishing_one_path(tmp_path)
    verify_says(drives, "lists 'notes.txt' twice")
    text = restore_refuses(drives, tmp_path / "dest", "lists 'notes.txt' twice", "another drive's catalog")
    assert not (tmp_path / "dest" / "notes.txt").exists(), text


def test_a_path_finished_on_a_drive_the_catalog_does_not_name(tmp_path: Path) -> None:
    """The catalog lists notes.txt once, for drive 2: drive 1's final record for it is refused, drive 2's bytes
    are the ones installed."""
    drives = two_drives_finishing_one_path(tmp_path)
    edit_catalog(drives, lambda rs: [r for r in rs if not (r["type"] == "entry" and r["last_drive"] == 1)])
    out = verify_says(drives, "'notes.txt' is finished on drive 1, the catalog names drive 2 for it")
    assert ": intact: drive 2 of 2" in out
    dest = tmp_path / "dest"
    restore_refuses([drives[0]], dest, "refused", "the catalog names drive 2 for it")
    assert not (dest / "notes.txt").exists()
    code, _, err = cli("restore", drives[1], "--into", dest)
    assert code == 0, err
    assert (dest / "notes.txt").read_bytes() == b"the real notes\n"


def _catalog_case(name: str) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def edit(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = [dict(r) for r in records]
        listed = entries(out)
        sub = next(r for r in listed if r["path"] == "sub")  # the last entry of drive 1
        if name == "phantom":
            ghost = {"type": "entry", "path": "ghost", "kind": "file", "size": 3, "first_drive": 1, "last_drive": 1}
            out.insert(out.index(sub) + 1, ghost)
        elif name == "missing":
            out.remove(sub)
        elif name == "wrong-kind":
            listed[0].update(kind="dir", size=0)
        elif name == "wrong-size":
            listed[0]["size"] += 1
        elif name == "wrong-drive":
            sub.update(first_drive=2, last_drive=2)
        return out

    return edit


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("phantom", "it lists 3 entries finished on drive 1, the manifest has 2, e.g. 'ghost'"),
        ("missing", "'sub' is on this drive, the catalog does not list it"),
        ("wrong-kind", "'a.txt' is a file here, a dir in the catalog"),
        ("wrong-size", "'a.txt' has size 6 here, 7 in the catalog"),
        ("wrong-drive", "'sub' is finished on drive 1, the catalog names drive 2 for it"),
    ],
)
def test_catalog_that_does_not_match_the_manifest(tmp_path: Path, case: str, named: str) -> None:
    """Phantom, missing, wrong-kind, wrong-size and wrong-drive catalog entries, the manifests untouched."""
    drive_two = [dir_rec("other")]
    drives = write_shipment(tmp_path / "ship", [[*small_files([("a.txt", b"hello\n")]), dir_rec("sub")], drive_two])
    edit_catalog(drives, _catalog_case(case))
    verify_says(drives[:1], "the catalog does not match this drive's manifest", named)
    restore_refuses(drives[:1], tmp_path / "dest", "refused", named)
    assert not (tmp_path / "dest" / "a.txt").exists()


def test_a_path_twice_on_one_drive_that_the_catalog_lists_once(tmp_path: Path) -> None:
    drives = write_shipment(tmp_path / "ship", [small_files([("a", b"one"), ("a", b"two")])])
    edit_catalog(drives, lambda rs: rs[:-1])  # the catalog's second entry for 'a' taken out
    verify_says(drives, "lists 'a' twice")
    restore_refuses(drives, tmp_path / "dest", "refused", "lists 'a' twice")
    assert not (tmp_path / "dest" / "a").exists()


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("symlink", "hard link 'h' names 's', a symlink, not a regular file"),
        ("dir", "hard link 'h' names 's', a dir, not a regular file"),
        ("missing", "hard link 'h' names 's', which is not in the shipment"),
    ],
)
def test_hard_link_to_something_not_a_regular_file_is_found_by_verify(tmp_path: Path, target: str, named: str) -> None:
    """Restore refuses such a link as an entry (test_restore.py); verify names it up front."""
    items: list[Any] = [*small_files([("ok.txt", b"fine\n")])]
    items += {"symlink": [symlink_rec("s", "ok.txt")], "dir": [dir_rec("s")], "missing": []}[target]
    items.append(hardlink_rec("h", "s"))
    drives = write_shipment(tmp_path / "ship", [items])
    verify_says(drives, named)


class ChangingDevice(LocalStore):
    """A hostile device (io/store.py's seam): the genuine drive's files until its manifest, read to its end once
    (restore's check: the one pass that reads every record), is closed; from then on the forged drive's manifest
    and segment, every hash recomputed. :attr:`forged_reads` names each file it served from the forgery."""

    SWAPPED = (MANIFEST_NAME, "segments/s000001.seg")

    def __init__(self, path: str, forged: Path) -> None:
        super().__init__(path)
        self.forged = forged
        self.changed = False
        self.forged_reads: list[str] = []

    def open(self, name: str) -> BinaryIO:
        if self.changed and name in self.SWAPPED:
            self.forged_reads.append(name)
            return open_regular(str(self.forged / name))
        handle = super().open(name)
        return cast(BinaryIO, _ChangesOnceRead(handle, self)) if name == MANIFEST_NAME else handle


class _ChangesOnceRead:
    """The genuine manifest's handle: closed after a read found its end, the device changes."""

    def __init__(self, handle: BinaryIO, device: ChangingDevice) -> None:
        self.handle = handle
        self.device = device
        self.read_to_end = False

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.read_to_end = self.read_to_end or (not data and size != 0)
        return data

    def close(self) -> None:
        self.handle.close()
        self.device.changed = self.device.changed or self.read_to_end

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _ChangesOnceRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_a_drive_that_changes_between_the_check_and_the_writes(tmp_path: Path) -> None:
    """A hostile device serves the genuine manifest while restore checks it, then a forged one (and forged
    segments, every hash recomputed) while it writes: what is written is what was checked, never the forgery."""
    drive_module = importlib.import_module("sneakernet.restorer.drive_restorer")
    # More files than restore installs in one batch, each in a chunk of its own: the first batch is installed
    # before either pass reaches the manifest's end (where its BLAKE3 is checked).
    names = [f"notes{i:04d}.txt" for i in range(drive_module.BATCH_FILES + drive_module.LOOKUP_WINDOW + 10)]

    def drive(data: bytes) -> list[Any]:
        return [item for name in names for item in small_files([(name, data)])]

    ship = write_shipment(tmp_path / "ship", [drive(b"the real notes\n")])
    shipment = json.loads((ship[0] / DRIVE_LABEL_NAME).read_text())["shipment"]
    forged = write_shipment(tmp_path / "forged", [drive(b"EVIL\n")], shipment=shipment)
    devices: list[ChangingDevice] = []

    def open_reader(path: str) -> DriveReader:
        devices.append(ChangingDevice(path, forged[0]))
        return DriveReader(path, devices[-1])

    report = restore([str(ship[0])], str(tmp_path / "dest"), open_reader=open_reader)
    assert not report.clean
    # The forged segment's bytes fail the hashes checked: nothing is installed, and never EVIL.
    assert not any((tmp_path / "dest" / name).exists() for name in names)
    # The check read the genuine drive whole; the writes were served the forged segment (the manifest they follow
    # is restore's own copy of the one checked).
    (device,) = devices
    assert device.changed and "segments/s000001.seg" in device.forged_reads
    # The same drive read through an honest device restores: the check above is not blind.
    report = restore([str(ship[0])], str(tmp_path / "honest"))
    assert report.clean and (tmp_path / "honest" / names[0]).read_bytes() == b"the real notes\n"


def test_the_golden_v1_fixture_still_verifies_and_restores(tmp_path: Path) -> None:
    drives = sorted(FIXTURE.glob("**/drive-0*"))
    assert drives
    code, out, err = cli("verify", *drives)
    assert code == 0, out + err
    code, out, err = cli("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, out + err
