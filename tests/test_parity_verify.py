"""``verify`` of parity drives (docs/format.md 19.7.5, 19.7.6): a parity drive alone (blocks, covered/ copies,
catalog, B3SUMS), and what a set of drives says about the shipment: whole, recoverable from parity, or lost (which
drives, which files), in --json too."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from conftest import drive_dirs, make_edge_tree
from conftest import invoke_cli as run
from fakestore import FaultyStore
from sneakernet import PackOptions, pack
from sneakernet.drive import CatalogReader
from sneakernet.format import CATALOG_NAME, CatalogEntry, show_path
from sneakernet.io.store import LocalStore
from sneakernet.packer.parity import ParityOptions, add_parity
from sneakernet.verifier import Mode, verify

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "verify-report.schema.json").read_text())
BLOCK = 64 << 10
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=300_000, reserve=0)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edge tree on seven data drives, with two parity drives (64 KiB blocks: several stripes per drive)."""
    base = tmp_path_factory.mktemp("parity-verify")
    tree = make_edge_tree(base / "src")
    pack(str(tree), out=str(base / "ship"), drive_size=1_500_000, options=PACKING)
    drives = [str(d) for d in drive_dirs(base / "ship")]
    add_parity(
        drives, out=str(base / "ship"), options=ParityOptions(parity=2, block_size=BLOCK, segment_size=4 * BLOCK)
    )
    return base / "ship"


@pytest.fixture
def ship(packed: Path, tmp_path: Path) -> Path:
    shutil.copytree(packed, tmp_path / "ship")
    return tmp_path / "ship"


def data(ship: Path) -> list[Path]:
    return drive_dirs(ship)


def parity(ship: Path) -> list[Path]:
    return sorted(ship.glob("parity-*"))


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def paths_on(ship: Path, number: int) -> set[str]:
    reader = CatalogReader(str(data(ship)[0] / CATALOG_NAME))
    return {
        show_path(r.path)
        for r in reader.records(only=(CatalogEntry.TYPE,))
        if isinstance(r, CatalogEntry) and r.first_drive <= number <= r.last_drive
    }


def test_a_parity_drive_verifies_alone(ship: Path) -> None:
    (drive,) = verify([str(parity(ship)[0])]).drives
    assert (drive.status, drive.label, drive.problems) == ("intact", "parity-0001", [])
    segments = sum(p.stat().st_size for p in (parity(ship)[0] / "segments").iterdir())
    assert drive.bytes_checked == segments > 0
    (quick,) = verify([str(parity(ship)[0])], mode=Mode.QUICK).drives
    assert quick.status == "intact" and quick.bytes_checked == 0


def test_a_damaged_parity_block_is_named_by_its_stripe(ship: Path) -> None:
    segment = sorted((parity(ship)[1] / "segments").iterdir())[1]
    flip(segment, BLOCK + 5)  # the second block of the second segment: stripe 5
    (drive,) = verify([str(parity(ship)[1])]).drives
    assert drive.status == "damaged"
    assert [(p.kind, "stripe 5" in p.message) for p in drive.problems] == [("parity_block", True)]
    (quick,) = verify([str(parity(ship)[1])], mode=Mode.QUICK).drives
    assert quick.status == "intact"  # sizes only: the flip is not seen, as on a data drive


def test_a_parity_drive_is_read_through_its_store(ship: Path) -> None:
    """The drive store's seam (verify(open_store=)): a parity drive's segment whose reads fail is damage in its
    stripes only, a covered copy that cannot be read is named, and the other drives given read as they are."""
    failing = parity(ship)[0]
    second = sorted((failing / "segments").iterdir())[1].name

    def unreadable(name: str) -> bool:
        return name == f"segments/{second}" or name == "covered/drive-0002.json"

    def open_store(path: str) -> LocalStore:
        return FaultyStore(path, fail_read=unreadable) if path == str(failing) else LocalStore(path)

    report = verify([str(failing), str(parity(ship)[1])], open_store=open_store)
    (bad, good) = report.drives
    assert bad.status == "damaged" and good.status == "intact"
    kinds = {p.kind for p in bad.problems}
    assert {"parity_block", "covered"} <= kinds
    assert any(p.kind == "covered" and "drive-0002.json is missing" in p.message for p in bad.problems)
    assert any(p.kind == "parity_block" and "stripe 4" in p.message for p in bad.problems)


def test_covered_copies_catalog_and_b3sums_are_checked(ship: Path) -> None:
    drive = parity(ship)[0]
    flip(drive / "covered" / "drive-0003.manifest.jsonl.zst", 10)
    (report,) = verify([str(drive)]).drives
    kinds = [p.kind for p in report.problems]
    assert "covered" in kinds and report.status == "damaged"
    assert any("drive-0003.manifest.jsonl.zst is damaged" in p.message for p in report.problems)
    other = parity(ship)[1]
    (other / "B3SUMS").write_text((other / "B3SUMS").read_text().replace("segments/s000001.seg", "segments/s9.seg"))
    (report,) = verify([str(other)]).drives
    assert [p.kind for p in report.problems] == ["checksums"]


def test_a_parity_drive_of_another_shipment_is_refused(ship: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    pack(str(data(ship)[0] / "segments"), out=str(other), drive_size=10**8, options=PACKING)
    shutil.copy(other / "drive-0001" / CATALOG_NAME, parity(ship)[0] / CATALOG_NAME)
    (report,) = verify([str(parity(ship)[0])]).drives
    assert report.status == "wrong_shipment"
    assert any("another shipment" in p.message for p in report.problems)


def test_an_unfinished_parity_drive_and_a_damaged_manifest(ship: Path) -> None:
    (parity(ship)[0] / "drive.json").unlink()
    (report,) = verify([str(parity(ship)[0])]).drives
    assert report.status == "unfinished"
    (parity(ship)[1] / "manifest.jsonl.zst").write_bytes(b"not a manifest")
    code, stdout, _ = run("verify", parity(ship)[1])
    assert code == 1 and "manifest.jsonl.zst is damaged" in stdout and "parity-0002" in stdout


def test_every_drive_given_the_shipment_is_whole(ship: Path) -> None:
    report = verify([str(d) for d in [*data(ship), *parity(ship)]])
    assert report.recovery is not None
    assert (report.recovery.status, report.recovery.missing, report.recovery.lost) == ("whole", [], [])
    assert report.recovery.parity_drives == ["parity-0001", "parity-0002"]


def test_two_drives_missing_are_recoverable_from_two_parity_drives(ship: Path) -> None:
    given = [d for d in data(ship) if d.name not in ("drive-0002", "drive-0005")]
    report = verify([str(d) for d in [*given, *parity(ship)]])
    verdict = report.recovery
    assert verdict is not None and verdict.status == "recoverable"
    assert verdict.missing == verdict.rebuildable == ["drive-0002", "drive-0005"]
    assert verdict.messages[0] == "drive-0002 missing: recoverable from parity-0001, parity-0002"
    # One of the two parity drives missing too: three losses, two survive of nine: lost.
    report = verify([str(d) for d in [*given, parity(ship)[0]]])
    verdict = report.recovery
    assert verdict is not None and verdict.status == "lost" and verdict.lost == ["drive-0002", "drive-0005"]
    assert set(verdict.lost_paths) == paths_on(ship, 2) | paths_on(ship, 5)
    assert "cannot be rebuilt" in verdict.messages[0]


def test_a_damaged_chunk_is_repairable_and_a_stripe_too_many_is_lost(ship: Path) -> None:
    segment = sorted((data(ship)[2] / "segments").iterdir())[0]
    flip(segment, 100)  # drive-0003, stripe 0
    report = verify([str(d) for d in [*data(ship), *parity(ship)]])
    verdict = report.recovery
    assert verdict is not None and verdict.status == "recoverable" and verdict.damaged == ["drive-0003"]
    assert verdict.messages[0].startswith("drive-0003 has 1 damaged chunk: recoverable from parity-0001")
    # Two data drives missing, and the damaged chunk: stripe 0 has three lost columns for two rows.
    given = [d for d in data(ship) if d.name not in ("drive-0001", "drive-0007")]
    verdict = verify([str(d) for d in [*given, *parity(ship)]]).recovery
    assert verdict is not None and verdict.status == "lost"
    assert "drive-0003" in verdict.lost
    assert re.search(
        r"drive-0003 has 1 damaged chunk: \d+ stripes? of it cannot be rebuilt", " ".join(verdict.messages)
    )
    hurt = {p for drive in verify([str(data(ship)[2])]).drives for p in drive.hurt_paths()}
    assert hurt and hurt <= set(verdict.lost_paths)


def test_verify_command_says_the_verdict_in_text_and_json(ship: Path) -> None:
    given = [d for d in data(ship) if d.name != "drive-0004"]
    code, stdout, stderr = run("verify", *given, *parity(ship), "-q")
    assert code == 0, stderr
    assert "shipment: recoverable: drive-0004 missing: recoverable from parity-0001, parity-0002" in stdout
    code, stdout, _ = run("verify", *given[2:], parity(ship)[0], "--json")
    report = json.loads(stdout)
    jsonschema.validate(report, SCHEMA)
    assert code == 1 and report["recovery"]["status"] == "lost"
    assert [d["label"] for d in report["drives"]][-1] == "parity-0001"
    assert report["recovery"]["lost"] == ["drive-0001", "drive-0002", "drive-0004"]
