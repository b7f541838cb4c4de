"""pack --parity M: parity drives computed in the same pass as the data drives (docs/format.md 19.10).

The parity drives pack writes are compared file by file with those ``sneakernet parity`` writes afterwards over the
same data drives (given the same creation time): byte-identical, one drive after another and lanes at once. The data
drives are not read again for it; a lost data drive is restored through them; a killed pack resumed with --parity
finishes with the parity complete; the command line's refusals are one line, exit 2.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import drive_dirs, make_edge_tree, source_entries
from conftest import invoke_cli as run
from sneakernet import PackOptions, pack, verify
from sneakernet.drive.stream import StoredStream
from sneakernet.packer.parity import ParityOptions, add_parity
from test_swap import Dock as SwapDock

pytest.importorskip("numpy")

#: Small parity blocks and segments: a few MB of data make many stripes and several parity segments.
BLOCK = 64 << 10
PARITY = ParityOptions(parity=2, block_size=BLOCK, segment_size=4 * BLOCK)
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=300_000, reserve=0)
DRIVE = 1_500_000


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_edge_tree(tmp_path_factory.mktemp("pack-parity") / "src")


def same_files(left: Path, right: Path) -> list[str]:
    """The files that differ (or are on one side only) below two directories, by their bytes."""
    differ: list[str] = []
    for dirpath, _, names in os.walk(left):
        for name in names:
            path = Path(dirpath, name)
            other = right / path.relative_to(left)
            if not other.is_file() or not filecmp.cmp(path, other, shallow=False):
                differ.append(str(path.relative_to(left)))
    for dirpath, _, names in os.walk(right):
        for name in names:
            if not (left / Path(dirpath, name).relative_to(right)).exists():
                differ.append(str(Path(dirpath, name).relative_to(right)))
    return differ


def parity_afterwards(out: Path, where: Path) -> list[Path]:
    """``sneakernet parity``'s drives over ``out``'s data drives, with the time pack gave its parity drives."""
    created = json.loads((out / "parity-0001" / "drive.json").read_text())["created"]
    where.mkdir()
    add_parity([str(d) for d in drive_dirs(out)], out=str(where), options=PARITY, created=created)
    return sorted(where.glob("parity-*"))


@pytest.mark.parametrize("at_once", [1, 3])
def test_pack_parity_drives_are_those_sneakernet_parity_writes(tree: Path, tmp_path: Path, at_once: int) -> None:
    out = tmp_path / "out"
    summary = pack(str(tree), out=str(out), drive_size=DRIVE, options=PACKING, parity=PARITY, at_once=at_once)
    assert summary.lanes == at_once
    assert [d["label"] for d in summary.parity_drives] == ["parity-0001", "parity-0002"]
    assert len(drive_dirs(out)) >= 3 and sorted(os.listdir(out))[-2:] == ["parity-0001", "parity-0002"]
    assert not (out / ".parity-accumulating").exists(), "the work directory is removed"
    afterwards = parity_afterwards(out, tmp_path / "afterwards")
    assert [p.name for p in afterwards] == ["parity-0001", "parity-0002"]
    for drive in afterwards:
        assert len(list((drive / "segments").iterdir())) > 1
        assert same_files(out / drive.name, drive) == []
    report = verify([str(d) for d in sorted(out.iterdir())], expected_fingerprint=summary.fingerprint)
    assert report.ok


def test_pack_parity_reads_no_data_drive_again(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_second_read(*args: object) -> int:
        raise AssertionError("a data drive's stored stream was read again for its parity")

    monkeypatch.setattr(StoredStream, "read_into", no_second_read)
    pack(str(tree), out=str(tmp_path / "out"), drive_size=DRIVE, options=PACKING, parity=PARITY)
    label = json.loads((tmp_path / "out" / "parity-0002" / "drive.json").read_text())
    assert label["role"] == "parity" and label["stored_bytes"] > 0


def test_a_lost_data_drive_restores_through_the_pack_parity(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(
        "pack", tree, "--out", out, "--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "4MiB",
        "--reserve", "0", "--parity", "1", "--at-once", "2", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads(stdout)
    schema = json.loads((Path(__file__).parents[1] / "docs" / "pack-summary.schema.json").read_text())
    jsonschema.validate(summary, schema)
    assert [d["label"] for d in summary["parity_drives"]] == ["parity-0001"]
    assert summary["parity_drives"][0]["stored_bytes"] % (4 << 20) == 0
    data = drive_dirs(out)
    shutil.rmtree(data[1])  # one data drive lost on the way
    dest = tmp_path / "dest"
    code, _, stderr = run("restore", *[d for d in data if d != data[1]], out / "parity-0001", "--into", dest)
    assert code == 0, stderr
    for path, entry in source_entries(tree).items():
        target = dest / os.fsdecode(path)
        if entry.kind == "file":
            assert target.read_bytes() == entry.data, path


def test_pack_parity_text_summary_names_the_parity_drives(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run(
        "pack", tree, "--out", out, "--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "4MiB",
        "--reserve", "0", "--parity", "2", "-q",
    )  # fmt: skip
    assert code == 0, stderr
    drives = len(drive_dirs(out))
    assert f"parity-0002: {out / 'parity-0002'}" in stdout
    assert f"any 2 of the {drives + 2} drives can be lost" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--drive", "{d1}", "--parity", "1", "--parity-drive", "{p1}"), "needs --parity-dir DIR"),
        (("--out", "{out}", "--drive-size", "1MB", "--parity", "1", "--segment-size", "5MiB"), "multiple of the 4MiB"),
        (("--out", "{out}", "--drive-size", "1MB", "--parity-dir", "{out}"), "go with --parity M"),
        (("--drive", "{d1}", "--parity", "2", "--parity-drive", "{p1}", "--parity-dir", "{out}"), "needs 2 parity"),
        (("--drive", "{d1}", "--swap", "--parity", "1", "--parity-drive", "{p1}", "--parity-dir", "{out}"), "no "),
    ],
)
def test_pack_parity_refusals_are_one_line_exit_2(
    tree: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    places = {"d1": tmp_path / "d1", "p1": tmp_path / "p1", "out": tmp_path / "out"}
    places["d1"].mkdir()
    places["p1"].mkdir()
    code, _, stderr = run("pack", tree, *[a.format(**places) for a in args])
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert os.listdir(places["d1"]) == [] and os.listdir(places["p1"]) == []


def test_pack_parity_onto_mounted_drives_accumulates_in_the_parity_dir(tree: Path, tmp_path: Path) -> None:
    data = [tmp_path / f"d{n}" for n in range(1, 7)]
    rows = [tmp_path / "p1", tmp_path / "p2"]
    for path in (*data, *rows):
        path.mkdir()
    summary = pack(
        str(tree), drives=[str(d) for d in data], drive_size=2_000_000, options=PACKING, parity=PARITY,
        parity_drives=[str(p) for p in rows], parity_dir=str(tmp_path / "work"), at_once=2,
    )  # fmt: skip
    assert [d["path"] for d in summary.parity_drives] == [str(p) for p in rows]
    assert not (tmp_path / "work").exists()
    created = json.loads((rows[0] / "drive.json").read_text())["created"]
    used = [tmp_path / f"d{n}" for n in range(1, len(summary.drives) + 1)]
    add_parity([str(d) for d in used], out=str(tmp_path / "afterwards"), options=PARITY, created=created)
    for row, path in enumerate(rows, 1):
        assert same_files(path, tmp_path / "afterwards" / f"parity-{row:04d}") == []


#: Packs argv[1] into argv[2] with --parity through stores (tests/fakestore.py) that SIGKILL the process after the
#: argv[3]-th chunk written to a data segment, or (argv[3] == "catalog") once the last data drive's catalog is in
#: place, before any parity drive is written.
KILL_PARITY = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.packer.parity import ParityOptions

where, calls = sys.argv[3], 0

def die(event, name):
    global calls
    if where == "catalog":
        if (event, name) == ("commit", "catalog.jsonl.zst") and os.path.exists(
            os.path.join(sys.argv[2], "drive-0003", "catalog.jsonl.zst")
        ):
            os.kill(os.getpid(), signal.SIGKILL)
    elif event == "write" and name.endswith(".seg"):
        calls += 1
        if calls == int(where):
            os.kill(os.getpid(), signal.SIGKILL)

pack(sys.argv[1], out=sys.argv[2], drive_size={DRIVE},
     options=PackOptions(chunk_size=64 * 1024, segment_size=300_000, reserve=0),
     parity=ParityOptions(parity=2, block_size={BLOCK}, segment_size={4 * BLOCK}),
     open_store=lambda path: FaultyStore(path, after=die))
"""


@pytest.mark.parametrize("where", ["9", "30", "catalog"])
def test_resume_of_a_killed_pack_with_parity_finishes_the_parity(tree: Path, tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILL_PARITY, str(tree), str(out), where])
    assert killed.returncode == -9
    assert not (out / "parity-0001" / "drive.json").exists()
    summary = pack(str(tree), out=str(out), drive_size=DRIVE, options=PACKING, parity=PARITY, resume=True)
    assert summary.resumed_drives > 0 or where == "9"
    assert [d["label"] for d in summary.parity_drives] == ["parity-0001", "parity-0002"]
    assert not (out / ".parity-accumulating").exists()
    for drive in parity_afterwards(out, tmp_path / "afterwards"):
        assert same_files(out / drive.name, drive) == []
    report = verify([str(d) for d in sorted(out.iterdir())], expected_fingerprint=summary.fingerprint)
    assert report.ok


class Dock(SwapDock):
    """test_swap's dock (each call files the drive in and puts a new, empty one at the mount point), which also
    swaps in parity drives and keeps what it was asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def next_drive(self, number: int, problem: str | None) -> None:
        self.asked.append(f"drive-{number:04d}")
        super().next_drive(number, problem)

    def next_parity_drive(self, label: str, problem: str | None) -> None:
        self.asked.append(label)
        self._insert()


def test_swap_parity_accumulates_locally_and_writes_the_parity_drives_at_the_end(tree: Path, tmp_path: Path) -> None:
    dock = Dock(tmp_path)
    work = tmp_path / "parity-work"
    summary = pack(
        str(tree), drives=[str(dock.mount)], drive_size=DRIVE, options=PACKING, next_drive=dock.next_drive,
        next_parity_drive=dock.next_parity_drive, parity=PARITY, parity_dir=str(work),
        catalog_dir=str(tmp_path / "sender"),
    )  # fmt: skip
    data = len(summary.drives)
    assert data >= 3
    # Each data drive then each parity drive was asked for in turn at the one mount point.
    assert dock.asked == [f"drive-{n:04d}" for n in range(2, data + 1)] + ["parity-0001", "parity-0002"]
    used, rows = dock.drives[:data], dock.drives[data:]
    assert [d["path"] for d in summary.parity_drives] == [str(dock.mount)] * 2
    assert [json.loads((r / "drive.json").read_text())["label"] for r in rows] == ["parity-0001", "parity-0002"]
    assert not work.exists(), "the local rows and manifest copies are removed once the parity drives are written"
    # The parity drives are those sneakernet parity writes over the data drives (the catalog is the last drive's).
    created = json.loads((rows[0] / "drive.json").read_text())["created"]
    add_parity([str(d) for d in used], out=str(tmp_path / "afterwards"), options=PARITY, created=created)
    for row, path in enumerate(rows, 1):
        assert same_files(path, tmp_path / "afterwards" / f"parity-{row:04d}") == []
    # Two drives lost on the way (a data drive and a parity drive): the rest restore the tree.
    dest = tmp_path / "dest"
    given = [d for d in used if d != used[1]] + [rows[1]]
    code, _, stderr = run("restore", *given, "--into", dest)
    assert code == 0, stderr
    for path, entry in source_entries(tree).items():
        if entry.kind == "file":
            assert (dest / os.fsdecode(path)).read_bytes() == entry.data, path


def test_swap_parity_of_an_encrypted_pack_carries_the_sealed_indexes(tree: Path, tmp_path: Path) -> None:
    """--swap --parity --encrypt-to: each data drive's index.age kept with its manifest as it leaves the dock goes
    to the parity drives' covered/ as sneakernet parity puts it there; a data drive lost, the rest restore the tree
    with the identity."""
    from sneakernet.crypto.keys import ShipmentIdentity
    from sneakernet.drive.keys import Encryption

    identity = ShipmentIdentity.generate()
    (tmp_path / "key.txt").write_text(identity.secret_line() + "\n")
    dock = Dock(tmp_path)
    summary = pack(
        str(tree), drives=[str(dock.mount)], drive_size=DRIVE, options=PACKING, next_drive=dock.next_drive,
        next_parity_drive=dock.next_parity_drive, parity=PARITY, parity_dir=str(tmp_path / "parity-work"),
        catalog_dir=str(tmp_path / "sender"), encryption=Encryption((identity.recipient,)),
    )  # fmt: skip
    data = len(summary.drives)
    used, rows = dock.drives[:data], dock.drives[data:]
    labels = [json.loads((d / "drive.json").read_text())["label"] for d in used]
    assert data >= 2 and all((r / "covered" / f"{label}.index.age").is_file() for r in rows for label in labels)
    created = json.loads((rows[0] / "drive.json").read_text())["created"]
    add_parity([str(d) for d in used], out=str(tmp_path / "afterwards"), options=PARITY, created=created,
               catalog=str(tmp_path / "sender" / f"{summary.shipment}.catalog.jsonl.zst"))  # fmt: skip
    for row, path in enumerate(rows, 1):
        assert same_files(path, tmp_path / "afterwards" / f"parity-{row:04d}") == []
    given = [d for d in used if d != used[0]] + [rows[1]]
    code, _, stderr = run("restore", *given, "--into", tmp_path / "dest", "--identity", tmp_path / "key.txt")
    assert code == 0, stderr
    for path, entry in source_entries(tree).items():
        if entry.kind == "file":
            assert (tmp_path / "dest" / os.fsdecode(path)).read_bytes() == entry.data, path


def test_swap_parity_needs_a_parity_dir(tree: Path, tmp_path: Path) -> None:
    dock = Dock(tmp_path)
    code, _, stderr = run("pack", tree, "--drive", dock.mount, "--swap", "--parity", "1", "--next-drive-cmd", "true")
    assert code == 2 and "needs --parity-dir DIR" in stderr and len(stderr.strip().splitlines()) == 1
    assert os.listdir(dock.drives[0]) == []


def test_cli_swap_parity_asks_the_hook_for_each_parity_drive(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shelf" / "drive-0001").mkdir(parents=True)
    (tmp_path / "mnt").symlink_to(tmp_path / "shelf" / "drive-0001")
    hook = tmp_path / "next-drive.sh"
    hook.write_text(
        "#!/bin/sh\nset -e\n"
        f'mkdir "{tmp_path}/shelf/$SNEAKERNET_DRIVE_LABEL"\n'
        f'ln -sfn "{tmp_path}/shelf/$SNEAKERNET_DRIVE_LABEL" "{tmp_path}/mnt"\n'
    )
    hook.chmod(0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, stdout, stderr = run(
        "pack", tree, "--drive", tmp_path / "mnt", "--swap", "--next-drive-cmd", hook, "--drive-size", str(DRIVE),
        "--chunk-size", "64KiB", "--segment-size", "4MiB", "--reserve", "0", "--parity", "1",
        "--parity-dir", tmp_path / "work", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads(stdout)
    shelf = sorted(p.name for p in (tmp_path / "shelf").iterdir())
    assert shelf == [d["label"] for d in summary["drives"]] + ["parity-0001"]
    code, out, _ = run("verify", *sorted((tmp_path / "shelf").iterdir()))
    assert code == 0, out
    assert "shipment: whole" in out
