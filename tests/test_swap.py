"""One dock: pack drive after drive through one mount point (a hook swaps them), each drive checkable alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import as_restored, make_edge_tree, source_entries, unpack
from sneakernet import PackOptions, PackSummary, pack, verify
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


def swap_pack(tmp_path: Path) -> tuple[Path, Dock, PackSummary]:
    """The edge tree packed through one dock, the catalog copied to ``tmp_path/sender``: source, dock, summary."""
    src = make_edge_tree(tmp_path / "src")
    dock = Dock(tmp_path)
    options = PackOptions(chunk_size=256 * 1024, reserve=0)
    summary = pack(
        src, drives=[str(dock.mount)], drive_size=DRIVE, options=options, next_drive=dock.next_drive,
        catalog_dir=str(tmp_path / "sender"),
    )  # fmt: skip
    return src, dock, summary


def test_swap_packs_a_multi_drive_shipment_through_one_mount_point(tmp_path: Path) -> None:
    src, dock, summary = swap_pack(tmp_path)
    sender = tmp_path / "sender"
    used = dock.drives[: len(summary.drives)]
    assert len(used) >= 3 and dock.problems == [None] * (len(used) - 1)
    assert all((d / DRIVE_LABEL_NAME).exists() for d in used)
    # Only the last drive (and the sender's copy) carry the catalog; every drive verifies alone.
    assert [d.name for d in used if (d / CATALOG_NAME).exists()] == [used[-1].name]
    copy = sender / f"{summary.shipment}.catalog.jsonl.zst"
    assert summary.catalog_copy == str(copy) and copy.read_bytes() == (used[-1] / CATALOG_NAME).read_bytes()
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


def test_cli_swap_with_next_drive_cmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from sneakernet.cli import main

    src = make_edge_tree(tmp_path / "src")
    (tmp_path / "shelf" / "usb1").mkdir(parents=True)
    (tmp_path / "mnt").symlink_to(tmp_path / "shelf" / "usb1")
    hook = tmp_path / "next-drive.sh"
    hook.write_text(
        "#!/bin/sh\nset -e\n"
        f'mkdir -p "{tmp_path}/shelf/usb$SNEAKERNET_DRIVE_NUMBER"\n'
        f'ln -sfn "{tmp_path}/shelf/usb$SNEAKERNET_DRIVE_NUMBER" "{tmp_path}/mnt"\n'
    )
    hook.chmod(0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    args = ["pack", str(src), "--drive", str(tmp_path / "mnt"), "--swap", "--next-drive-cmd", str(hook)]
    args += ["--drive-size", str(DRIVE), "--chunk-size", "256KiB", "--reserve", "0", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    import json

    summary = json.loads(result.stdout)
    drives = sorted((tmp_path / "shelf").iterdir())
    assert len(drives) == len(summary["drives"]) >= 3
    assert summary["catalog_copy"].startswith(str(tmp_path / "data" / "sneakernet" / "catalogs"))
    result = CliRunner().invoke(main, ["verify", *map(str, drives)])
    assert result.exit_code == 0, result.stdout


def test_cli_swap_refusals(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sneakernet.cli import main

    (tmp_path / "src").mkdir()
    (tmp_path / "mnt").mkdir()
    result = CliRunner().invoke(
        main, ["pack", str(tmp_path / "src"), "--drive", str(tmp_path / "mnt"), "--next-drive-cmd", "true"]
    )
    assert result.exit_code == 2 and "--next-drive-cmd goes with --swap" in result.stderr
    src = make_edge_tree(tmp_path / "big")
    args = [
        "pack",
        str(src),
        "--drive",
        str(tmp_path / "mnt"),
        "--swap",
        "--drive-size",
        str(DRIVE),
        "--chunk-size",
        "256KiB",
    ]
    result = CliRunner().invoke(main, [*args, "--reserve", "0"])  # no terminal in tests
    assert result.exit_code == 2 and "--swap asks for each drive on the terminal" in result.stderr


def test_cli_exclude_from(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sneakernet.cli import main

    src = make_edge_tree(tmp_path / "src")
    (tmp_path / "ignore").write_text("# no images\nimages/\n*.npy\n")
    args = [
        "pack",
        str(src),
        "--out",
        str(tmp_path / "out"),
        "--drive-size",
        "1GB",
        "--exclude-from",
        str(tmp_path / "ignore"),
    ]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    import json

    assert json.loads(result.stdout)["excluded_entries"] == 2
    missing = CliRunner().invoke(
        main,
        [
            "pack",
            str(src),
            "--out",
            str(tmp_path / "o2"),
            "--drive-size",
            "1GB",
            "--exclude-from",
            str(tmp_path / "nope"),
        ],
    )
    assert missing.exit_code == 2 and "cannot read exclude file" in missing.stderr


def test_restore_a_swapped_shipment_in_any_order_with_the_senders_catalog(tmp_path: Path) -> None:
    """Only the last drive of a --swap pack carries the catalog: --catalog gives restore the sender's copy."""
    from sneakernet import restore
    from sneakernet.errors import UsageError as Usage

    src, dock, summary = swap_pack(tmp_path)
    used = dock.drives[: len(summary.drives)]
    with pytest.raises(Usage, match="give --catalog"):
        restore([str(used[0])], str(tmp_path / "dest"))
    assert summary.catalog_copy is not None
    for drive in used:  # first drive first: it carries no catalog
        report = restore([str(drive)], str(tmp_path / "dest"), catalog=summary.catalog_copy)
        assert report.clean, report.drives
    assert report.status.finished
    got = source_entries(tmp_path / "dest")
    assert got.pop(b".sneakernet/finished.json").kind == "file" and got.pop(b".sneakernet").kind == "dir"
    assert got == as_restored(source_entries(src))


def test_verify_a_swapped_drive_against_the_senders_catalog(tmp_path: Path) -> None:
    """A --swap drive without a catalog is 'unconfirmed' with --fingerprint, unless --catalog gives one."""
    from sneakernet.verifier import Status

    _, dock, summary = swap_pack(tmp_path)
    first = str(dock.drives[0])
    alone = verify([first], expected_fingerprint=summary.fingerprint)
    assert alone.drives[0].status == Status.UNCONFIRMED.value
    checked = verify([first], expected_fingerprint=summary.fingerprint, catalog=summary.catalog_copy)
    assert checked.ok, [p.message for p in checked.drives[0].problems]
    assert checked.drives[0].drives == len(summary.drives)
    wrong = verify([first], expected_fingerprint="0123456789abcdef0123", catalog=summary.catalog_copy)
    assert wrong.drives[0].status == Status.WRONG_SHIPMENT.value
