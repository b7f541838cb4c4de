"""Adding parity drives to packed data drives (docs/format.md 19.7): ``sneakernet parity`` and packer.parity.

The parity drives' bytes are checked against parity computed here from the data drives' stored streams with a
table-lookup reference of 19.7.3 (numpy, independent of the engine's ISA-L path), and used to rebuild a lost data
drive's stream; the records, B3SUMS and drive.json against 19.7.4-19.7.5; a damaged data drive, a missing one and
an interrupted run against what the format promises (nothing finished over damage, detectably incomplete, resumable).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from conftest import drive_dirs, make_edge_tree
from conftest import invoke_cli as run
from sneakernet import PackOptions, pack
from sneakernet.drive import DriveReader
from sneakernet.errors import DestinationError, FormatError, IntegrityError, UsageError
from sneakernet.format import CATALOG_NAME, PARITY_CODE, READERS, DriveLabel, SegmentRecord
from sneakernet.format.checksums import parse_checksums
from sneakernet.format.container import read_records
from sneakernet.format.parity import (
    CoversRecord,
    ParityHeader,
    ParitySegmentRecord,
    PBlockRecord,
    parity_record_from_json,
)
from sneakernet.packer import parity as parity_module
from sneakernet.packer.parity import ParityOptions, add_parity
from sneakernet.parity.engine import ParityCode
from sneakernet.parity.matrix import MATRIX, gf_mul

np = pytest.importorskip("numpy")

#: Small blocks and parity segments, so a few MB of data make many stripes and several parity segments.
BLOCK = 64 << 10
OPTIONS = ParityOptions(parity=2, block_size=BLOCK, segment_size=4 * BLOCK)
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=300_000, reserve=0)
#: gf_mul as a 256 x 256 table: the reference multiplies whole arrays by table lookup.
TABLE = np.array([[gf_mul(a, b) for b in range(256)] for a in range(256)], dtype=np.uint8)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edge tree (a 3 MB file spanning drives) packed onto drives of 1.5 MB: drives of unequal stored sizes."""
    base = tmp_path_factory.mktemp("parity")
    tree = make_edge_tree(base / "src")
    pack(str(tree), out=str(base / "ship"), drive_size=1_500_000, options=PACKING)
    return base / "ship"


@pytest.fixture
def ship(packed: Path, tmp_path: Path) -> list[Path]:
    shutil.copytree(packed, tmp_path / "ship")
    return drive_dirs(tmp_path / "ship")


def stored_stream(drive: Path) -> bytes:
    """A data drive's stored stream read the plain way: its segment files in name order, concatenated."""
    return b"".join(path.read_bytes() for path in sorted((drive / "segments").iterdir()))


def reference_parity(streams: list[bytes], rows: int, block: int) -> list[bytes]:
    """19.7.3 by table lookup: P_j = XOR over c of A[j][c]·D_c, each stream zero-padded to S blocks."""
    stripes = -(-max(len(s) for s in streams) // block)
    padded = [np.frombuffer(s.ljust(stripes * block, b"\0"), dtype=np.uint8) for s in streams]
    out = []
    for row in range(rows):
        total = np.zeros(stripes * block, dtype=np.uint8)
        for column, data in enumerate(padded):
            total ^= TABLE[MATRIX[row][column]][data]
        out.append(total.tobytes())
    return out


def parity_records(drive: Path) -> list[object]:
    with open(drive / "manifest.jsonl.zst", "rb") as handle:
        raw = list(read_records(handle, "test"))
    assert raw[0] is not None
    return [ParityHeader.from_json(raw[0]), *(parity_record_from_json(r) for r in raw[1:] if r is not None)]


def parity_drives(out: Path) -> list[Path]:
    return sorted(out.glob("parity-*"))


def test_parity_drives_hold_the_code_of_19_7_3_over_the_stored_streams(ship: list[Path]) -> None:
    out = ship[0].parent
    summary = add_parity([str(d) for d in ship], out=str(out), options=OPTIONS)
    streams = [stored_stream(d) for d in ship]
    assert len({len(s) for s in streams}) > 1, "the test needs drives of different sizes"
    expected = reference_parity(streams, 2, BLOCK)
    drives = parity_drives(out)
    assert [d.name for d in drives] == ["parity-0001", "parity-0002"]
    assert [d.label for d in summary.drives] == ["parity-0001", "parity-0002"]
    assert summary.read_bytes == sum(len(s) for s in streams)
    for row, drive in enumerate(drives):
        assert stored_stream(drive) == expected[row]
        segments = sorted((drive / "segments").iterdir())
        assert len(segments) > 1 and all(len(p.read_bytes()) == 4 * BLOCK for p in segments[:-1])


def test_a_lost_data_drive_is_rebuilt_from_the_others_and_the_parity(ship: list[Path]) -> None:
    out = ship[0].parent
    add_parity([str(d) for d in ship], out=str(out), options=OPTIONS)
    streams = [stored_stream(d) for d in ship]
    parity = [stored_stream(d) for d in parity_drives(out)]
    stripes = len(parity[0]) // BLOCK
    code = ParityCode(len(ship), 2)
    lost = (0, len(ship) - 1)  # the first and the last data drive, both gone
    rebuilt: dict[int, bytearray] = {c: bytearray() for c in lost}
    for s in range(stripes):
        window = slice(s * BLOCK, (s + 1) * BLOCK)
        columns = {c: streams[c][window].ljust(BLOCK, b"\0") for c in range(len(ship)) if c not in lost}
        for column, block in code.reconstruct(columns, {0: parity[0][window], 1: parity[1][window]}).items():
            rebuilt[column] += block
    for column in lost:
        assert bytes(rebuilt[column][: len(streams[column])]) == streams[column]


def test_records_b3sums_and_drive_json_follow_19_7_4_and_19_7_5(ship: list[Path]) -> None:
    out = ship[0].parent
    add_parity([str(d) for d in ship], out=str(out), options=OPTIONS)
    drive = parity_drives(out)[1]
    records = parity_records(drive)
    header = records[0]
    assert isinstance(header, ParityHeader)
    assert (header.drive, header.group, header.row, header.data_drives, header.parity_drives) == (2, 1, 1, len(ship), 2)
    covers = [r for r in records if isinstance(r, CoversRecord)]
    assert [(c.column, c.drive, c.label) for c in covers] == [(i, i + 1, d.name) for i, d in enumerate(ship)]
    for record, data in zip(covers, ship, strict=True):
        label = (data / "drive.json").read_bytes()
        assert (record.drive_json_size, record.drive_json_blake3) == (len(label), blake3.blake3(label).hexdigest())
        assert (drive / "covered" / f"{data.name}.json").read_bytes() == label
        manifest = (data / "manifest.jsonl.zst").read_bytes()
        assert (drive / "covered" / f"{data.name}.manifest.jsonl.zst").read_bytes() == manifest
        assert record.manifest_blake3 == blake3.blake3(manifest).hexdigest()
        assert record.stored_bytes == len(stored_stream(data))
    stream = stored_stream(drive)
    pblocks = [r for r in records if isinstance(r, PBlockRecord)]
    assert [p.stripe for p in pblocks] == list(range(header.stripes))
    assert header.stripes * BLOCK == len(stream) == -(-max(c.stored_bytes for c in covers) // BLOCK) * BLOCK
    for p in pblocks:
        assert p.blake3 == blake3.blake3(stream[p.stripe * BLOCK : (p.stripe + 1) * BLOCK]).hexdigest()
    # Each segment record follows its own blocks' pblock records.
    order = [type(r).__name__ for r in records[1 + len(covers) : -1]]
    segments = [r for r in records if isinstance(r, ParitySegmentRecord)]
    assert order == ["PBlockRecord"] * 4 + ["ParitySegmentRecord"] + order[5:]
    assert sum(s.blocks for s in segments) == header.stripes
    label = DriveLabel.from_bytes((drive / "drive.json").read_bytes(), READERS)
    assert (label.role, label.label, label.drive, label.group, label.row) == ("parity", "parity-0002", 2, 1, 1)
    assert (label.segments, label.stored_bytes, label.version) == (len(segments), len(stream), 2)
    assert json.loads((drive / "drive.json").read_text())["role"] == "parity"
    sums = parse_checksums((drive / "B3SUMS").read_bytes())
    names = [name for name, _ in sums.entries]
    covered = [f"covered/{d.name}{suffix}" for d in ship for suffix in (".json", ".manifest.jsonl.zst")]
    assert names == [s.name for s in segments] + covered + ["manifest.jsonl.zst", "drive.json", CATALOG_NAME]
    for name, digest in sums.entries:  # b3sum --check, by hand
        assert blake3.blake3((drive / name).read_bytes()).hexdigest() == digest, name
    assert (drive / CATALOG_NAME).read_bytes() == (ship[-1] / CATALOG_NAME).read_bytes()


def test_slices_smaller_than_a_block_give_the_same_parity(ship: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """With k + m blocks above the memory bound, each stripe is computed in slices: the same bytes and hashes."""
    whole, sliced = ship[0].parent / "whole", ship[0].parent / "sliced"
    options = ParityOptions(parity=2, block_size=4 * BLOCK, segment_size=8 * BLOCK)
    add_parity([str(d) for d in ship], out=str(whole), options=options)
    monkeypatch.setattr(parity_module, "MEMORY", BLOCK * (len(ship) + 2))
    add_parity([str(d) for d in ship], out=str(sliced), options=options)
    for a, b in zip(parity_drives(whole), parity_drives(sliced), strict=True):
        assert stored_stream(a) == stored_stream(b)
        assert [r for r in parity_records(a)[1:] if not isinstance(r, ParityHeader)] == parity_records(b)[1:]


def test_a_damaged_data_drive_leaves_the_parity_unfinished(ship: list[Path]) -> None:
    segment = sorted((ship[1] / "segments").iterdir())[-1]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x40
    segment.write_bytes(bytes(data))
    out = ship[0].parent
    with pytest.raises(IntegrityError, match=rf"{segment.name} on drive-0002 .* is damaged"):
        add_parity([str(d) for d in ship], out=str(out), options=OPTIONS)
    for drive in parity_drives(out):
        assert not (drive / "drive.json").exists()
    with pytest.raises(FormatError, match="unfinished drive"):
        DriveReader(str(parity_drives(out)[0]))


def test_every_data_drive_of_the_catalog_must_be_given(ship: list[Path]) -> None:
    given = [str(d) for d in ship if d.name != "drive-0002"]
    with pytest.raises(UsageError, match=r"1 of the shipment's \d+ data drives not given \(drive-0002\)"):
        add_parity(given, out=str(ship[0].parent), options=OPTIONS)
    assert not parity_drives(ship[0].parent)
    with pytest.raises(UsageError, match="both drive-0001"):
        add_parity([str(ship[0]), str(ship[0])], out=str(ship[0].parent), options=OPTIONS)


def test_a_catalog_of_another_packing_is_refused(ship: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    pack(str(ship[0] / "segments"), out=str(other), drive_size=10**8, options=PACKING)
    with pytest.raises(UsageError, match="another shipment's"):
        add_parity([str(d) for d in ship], out=str(ship[0].parent), catalog=str(other / "drive-0001" / CATALOG_NAME))


class Interrupt(Exception):
    pass


class StopAfter:
    """A progress that interrupts the run after ``steps`` advances (a kill between two slices)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise Interrupt

    def close(self) -> None:
        pass


def finished_bytes(out: Path) -> Iterator[tuple[str, bytes]]:
    for drive in parity_drives(out):
        yield drive.name, stored_stream(drive)
        for path in sorted((drive / "covered").iterdir()):
            yield f"{drive.name}/{path.name}", path.read_bytes()


@pytest.mark.parametrize("steps", [0, 3, 7])
def test_an_interrupted_run_is_detectably_unfinished_and_resumes(ship: list[Path], tmp_path: Path, steps: int) -> None:
    out = ship[0].parent
    drives = [str(d) for d in ship]
    with pytest.raises(Interrupt):
        add_parity(drives, out=str(out), options=OPTIONS, progress=StopAfter(steps))
    for drive in parity_drives(out):
        assert not (drive / "drive.json").exists()
        with pytest.raises(FormatError, match="unfinished"):
            DriveReader(str(drive))
    with pytest.raises(DestinationError, match=r"already holds a drive.*--resume"):
        add_parity(drives, out=str(out), options=OPTIONS)
    resumed = ParityOptions(parity=2, block_size=BLOCK, segment_size=4 * BLOCK, resume=True)
    add_parity(drives, out=str(out), options=resumed)
    add_parity(drives, out=str(tmp_path / "whole"), options=OPTIONS)
    assert dict(finished_bytes(out)) == dict(finished_bytes(tmp_path / "whole"))
    assert not list(out.rglob("*.partial"))


def test_resume_keeps_a_finished_parity_drive(ship: list[Path]) -> None:
    out = ship[0].parent
    drives = [str(d) for d in ship]
    add_parity(drives, out=str(out), options=OPTIONS)
    second = parity_drives(out)[1]
    (second / "drive.json").unlink()  # as if killed just before its drive.json
    kept = (parity_drives(out)[0] / "drive.json").stat().st_mtime_ns
    resumed = ParityOptions(parity=2, block_size=BLOCK, segment_size=4 * BLOCK, resume=True)
    summary = add_parity(drives, out=str(out), options=resumed)
    assert [d.kept for d in summary.drives] == [True, False]
    assert (parity_drives(out)[0] / "drive.json").stat().st_mtime_ns == kept
    assert stored_stream(second) == reference_parity([stored_stream(d) for d in ship], 2, BLOCK)[1]


def test_the_command_line(ship: list[Path]) -> None:
    out = ship[0].parent
    code, stdout, stderr = run("parity", *ship, "--out", out, "--parity", "2", "-q")
    assert code == 0, stderr
    assert f"wrote 2 parity drives over {len(ship)} data drives" in stdout
    assert "parity-0002" in stdout
    code, stdout, _ = run("parity", *ship, "--out", out, "--resume", "--parity", "2", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert [d["kept"] for d in report["parity_drives"]] == [True, True]
    assert report["data_drives"] == len(ship) and report["groups"] == [
        {"group": 1, "first_drive": 1, "last_drive": len(ship)}
    ]
    code, _, stderr = run("parity", *ship)
    assert code == 2 and "--out DIR" in stderr
    code, _, stderr = run("parity", *ship[1:], "--out", out / "x")
    assert code == 2 and "drive-0001" in stderr and "Traceback" not in stderr
    code, _, stderr = run("parity", *ship, "--out", out / "y", "--segment-size", "5MB")
    assert code == 2 and "multiple of the 4194304-byte parity block" in stderr


def test_parity_records_refuse_what_19_9_refuses() -> None:
    base = ParityHeader("s" * 32, 1, "t", "x", 1, 0, 3, 2, BLOCK, 5, 4 * BLOCK).to_json()
    assert ParityHeader.from_json(base) == ParityHeader("s" * 32, 1, "t", "x", 1, 0, 3, 2, BLOCK, 5, 4 * BLOCK)
    for change, message in [
        ({"code": "rs-vandermonde"}, "code"),
        ({"block_size": 3 * BLOCK}, "power of two"),
        ({"block_size": 1 << 15}, "power of two"),
        ({"row": 2}, "row 2 is not below"),
        ({"data_drives": 252}, "data_drives"),
        ({"parity_drives": 7}, "parity_drives"),
        ({"segment_size": BLOCK + 1}, "segment_size"),
        ({"stripes": -1}, "negative"),
        ({"version": 1}, "version 1"),
        ({"role": "data"}, "not a parity drive"),
        ({"format": "sneakernet-catalog"}, "not a sneakernet manifest"),
    ]:
        with pytest.raises(FormatError, match=message):
            ParityHeader.from_json({**base, **change})
    covers = CoversRecord(0, 1, "drive-0001", 10, "a" * 64, 20, "b" * 64, 30).to_json()
    assert parity_record_from_json(covers) == CoversRecord(0, 1, "drive-0001", 10, "a" * 64, 20, "b" * 64, 30)
    with pytest.raises(FormatError, match="not data drive 1's"):
        parity_record_from_json({**covers, "label": "../../etc"})
    pblock = PBlockRecord(3, "c" * 64)
    assert parity_record_from_json(json.loads(pblock.to_line())) == pblock
    with pytest.raises(FormatError, match="no 'chunk' records"):
        parity_record_from_json({"type": "chunk", "id": 0})
    with pytest.raises(FormatError, match=r"segments/sNNNNNN\.seg"):
        parity_record_from_json({"type": "segment", "name": "../x", "size": 1, "blake3": "d" * 64, "blocks": 1})
    from sneakernet.parity.matrix import CODE_NAME

    assert PARITY_CODE == CODE_NAME  # the format's name of the code is the engine's


def test_segment_list_is_read_from_the_pinned_copy(ship: list[Path]) -> None:
    """The covered/ copy is what the segments come from: the same records as the drive's own manifest, read from the
    copy (the drive's own may be gone by then)."""
    out = ship[0].parent
    add_parity([str(d) for d in ship], out=str(out), options=OPTIONS)
    copy = parity_drives(out)[0] / "covered" / f"{ship[0].name}.manifest.jsonl.zst"
    reader = DriveReader(str(ship[0]))
    own = [r for r in reader.records(only=("segment",)) if isinstance(r, SegmentRecord)]
    reader.read_copy(str(copy))
    (ship[0] / "manifest.jsonl.zst").unlink()
    assert [r for r in reader.records(only=("segment",)) if isinstance(r, SegmentRecord)] == own
    assert os.path.getsize(copy) == reader.label.manifest_size
