"""One dock: pack drive after drive through one mount point (a hook swaps them), each drive checkable alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import make_edge_tree, source_entries, unpack
from sneakernet import PackOptions, pack, verify
from sneakernet.errors import DestinationError, UsageError
from sneakernet.format import CATALOG_NAME, DRIVE_LABEL_NAME

DRIVE = 1_500_000


class Dock:
    """A mount point (a symlink here) and a shelf of drives: the hook files the full drive and puts in a new one."""

    def __init__(self, tmp_path: Path) -> None:
        self.mount = tmp_path / "mnt"
        self.shelf = tmp_path / "shelf"
        self.shelf.mkdir()
        self.drives: list[Path] = []
        self.problems: list[str | None] = []
        self._insert()

    def _insert(self) -> None:
        drive = self.shelf / f"usb{len(self.drives) + 1}"
        drive.mkdir()
        self.drives.append(drive)
        if self.mount.is_symlink():
            self.mount.unlink()
        self.mount.symlink_to(drive)

    def next_drive(self, number: int, problem: str | None) -> None:
        self.problems.append(problem)
        assert number == len(self.drives) + 1
        self._insert()


def test_swap_packs_a_multi_drive_shipment_through_one_mount_point(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src")
    dock = Dock(tmp_path)
    copy = tmp_path / "sender" / "catalog.jsonl.zst"
    options = PackOptions(chunk_size=256 * 1024, reserve=0)
    summary = pack(
        src, drives=[str(dock.mount)], drive_size=DRIVE, options=options, next_drive=dock.next_drive,
        catalog_copy=str(copy),
    )  # fmt: skip
    used = dock.drives[: len(summary.drives)]
    assert len(used) >= 3 and dock.problems == [None] * (len(used) - 1)
    assert all((d / DRIVE_LABEL_NAME).exists() for d in used)
    # Only the last drive (and the sender's copy) carry the catalog; every drive verifies alone.
    assert [d.name for d in used if (d / CATALOG_NAME).exists()] == [used[-1].name]
    assert copy.read_bytes() == (used[-1] / CATALOG_NAME).read_bytes()
    report = verify([str(d) for d in used])
    assert report.ok, [p.message for r in report.drives for p in r.problems]
    assert verify([str(used[-1])], expected_fingerprint=summary.fingerprint).ok
    got = unpack(used)
    for path, entry in source_entries(src).items():
        assert got.entries[path].data == entry.data, path


def test_swap_asks_again_until_an_empty_drive_is_in(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src")
    dock = Dock(tmp_path)
    calls: list[str | None] = []

    def stubborn(number: int, problem: str | None) -> None:
        calls.append(problem)
        if len(calls) == 1:
            return  # the full drive is still in
        if len(calls) == 2:
            (dock.shelf / "junk").mkdir()
            dock.mount.unlink()
            dock.mount.symlink_to(dock.shelf / "junk")
            (dock.shelf / "junk" / "photo.jpg").write_bytes(b"x")
            return
        if problem and "not empty" in problem:
            shutil.rmtree(dock.shelf / "junk")
        dock.next_drive(number, problem)

    pack(src, drives=[str(dock.mount)], drive_size=DRIVE, options=PackOptions(chunk_size=256 * 1024, reserve=0),
         next_drive=stubborn)  # fmt: skip
    assert calls[0] is None
    assert calls[1] is not None and "already holds" in calls[1]
    assert calls[2] is not None and "not empty" in calls[2]


def test_swap_hook_can_stop_the_pack(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src")
    dock = Dock(tmp_path)

    def give_up(number: int, problem: str | None) -> None:
        raise DestinationError("no more drives")

    with pytest.raises(DestinationError, match="no more drives"):
        pack(src, drives=[str(dock.mount)], drive_size=DRIVE, options=PackOptions(chunk_size=256 * 1024, reserve=0),
             next_drive=give_up)  # fmt: skip
    assert (dock.drives[0] / DRIVE_LABEL_NAME).exists()  # the full drive was finished before asking


def test_swap_needs_one_mount_point(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "src").mkdir()
    with pytest.raises(UsageError, match="exactly one --drive"):
        pack(tmp_path / "src", drives=[str(tmp_path / "a"), str(tmp_path / "b")], next_drive=lambda n, p: None)
    assert os.listdir(tmp_path / "a") == []
