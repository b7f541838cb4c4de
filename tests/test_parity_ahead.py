"""pack --parity onto drives written at once: the parity drives written while the lanes write (packer/ahead.py),
and the rows sealed once the data drives are finished, every block written to a parity drive checked against them
(drive/parity/accumulator.py).

The parity drives are compared file by file with those ``sneakernet parity`` writes afterwards over the same data
drives: identical whether the blocks were written ahead, written ahead then found stale (a lane went on to a second
drive), or written at the end. A row damaged in the work directory after the data drives were finished never
becomes a finished parity drive.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import blake3
import pytest

from conftest import drive_dirs
from sneakernet import PackOptions, pack, verify
from sneakernet.drive.parity.accumulator import ROW_NAME, AccumulatorSpec, ParityAccumulator, empty_rows
from sneakernet.drive.parity.writer import ParityDriveWriter, StaleParity
from sneakernet.errors import IntegrityError
from sneakernet.format.parity import ParityHeader
from sneakernet.io.store import LocalStore, PartialFile
from sneakernet.packer import ahead
from sneakernet.packer.parity import ParityOptions, add_parity
from test_pack_parity import BLOCK, Dock, same_files

pytest.importorskip("numpy")

PARITY = ParityOptions(parity=1, block_size=BLOCK, segment_size=4 * BLOCK)
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=300_000, reserve=0)


class _SlowPartial:
    def __init__(self, inner: PartialFile) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def size(self) -> int:
        return self.inner.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        time.sleep(0.004)  # a drive's pace: the lanes take a while, the parity thread sees them go
        self.inner.write(data)

    def sync(self) -> None:
        self.inner.sync()

    def commit(self) -> None:
        self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()


class SlowStore(LocalStore):
    """A data drive whose writes take a few milliseconds each (picklable: the lanes' processes open it)."""

    def create(self, name: str) -> PartialFile:
        return _SlowPartial(super().create(name))


def parity_afterwards(out: Path, where: Path) -> Path:
    """``sneakernet parity``'s drive over ``out``'s data drives, with the time pack gave its parity drive."""
    created = json.loads((out / "parity-0001" / "drive.json").read_text())["created"]
    add_parity([str(d) for d in drive_dirs(out)], out=str(where), options=PARITY, created=created)
    return where / "parity-0001"


def make_tree(root: Path, files: int, size: int) -> Path:
    root.mkdir(parents=True)
    for index in range(files):
        (root / f"f{index:02d}.bin").write_bytes(os.urandom(size))
    return root


def ahead_blocks(caplog: pytest.LogCaptureFixture) -> int:
    """The blocks per parity drive the pack said it wrote ahead (0 if it did not)."""
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("parity written ahead:")]
    return int(said[-1].split()[3]) if said else 0


@pytest.mark.parametrize("drive_size", [3_000_000, 1_100_000])
def test_parity_written_ahead_is_what_sneakernet_parity_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, drive_size: int
) -> None:
    """One drive per lane (3 MB): blocks are written ahead and kept; drives of 1.1 MB: each lane goes on to more
    drives, which add into the blocks already written, so those are found stale and written again."""
    monkeypatch.setattr(ahead, "POLL", 0.002)
    caplog.set_level(logging.INFO, logger="sneakernet")
    tree = make_tree(tmp_path / "src", 8, 300_000)
    out = tmp_path / "out"
    summary = pack(
        str(tree), out=str(out), drive_size=drive_size, options=PACKING, parity=PARITY, at_once=2,
        open_store=SlowStore,
    )  # fmt: skip
    data = drive_dirs(out)
    if drive_size == 3_000_000:
        assert len(data) == 2
        assert ahead_blocks(caplog) > 0, "the parity drive was written while the lanes wrote"
    else:
        assert len(data) > 2
        assert ahead_blocks(caplog) == 0
    afterwards = parity_afterwards(out, tmp_path / "afterwards")
    assert same_files(out / "parity-0001", afterwards) == []
    assert not (out / ".parity-accumulating").exists()
    assert verify([str(d) for d in sorted(out.iterdir())], expected_fingerprint=summary.fingerprint).ok


def test_blocks_written_ahead_that_changed_after_are_stale(tmp_path: Path) -> None:
    """A writer made ahead() checks each block it wrote against the finished row's digest when its manifest
    begins: one that differs is StaleParity, not a parity drive."""
    spec = AccumulatorSpec(str(tmp_path / "work"), 1, BLOCK)
    empty_rows(spec)
    accumulator = ParityAccumulator(spec)
    first, second = os.urandom(2 * BLOCK), os.urandom(2 * BLOCK)
    accumulator.feed(0, 0, first)
    accumulator.flush()
    assert accumulator.fed()[:2] == [2 * BLOCK, 0]
    (tmp_path / "parity").mkdir()
    writer = ParityDriveWriter.ahead(
        str(tmp_path / "parity"), "parity-0001", BLOCK, 4 * BLOCK, str(tmp_path / "work" / "ahead-0.jsonl")
    )
    for block in accumulator.blocks(0, 2):
        writer.write(block)
    accumulator.feed(1, 0, second)  # a drive opened after the blocks were written adds into them
    accumulator.flush()
    accumulator.seal(2)
    digests = list(accumulator.sealed(0))
    assert len(digests) == 2 and digests[0] != blake3.blake3(first[:BLOCK]).digest()
    with pytest.raises(StaleParity):
        writer.begin(header_for(tmp_path), [], accumulator.sealed(0))
    writer.abort()
    accumulator.close()


def header_for(tmp_path: Path) -> ParityHeader:
    return ParityHeader(
        shipment="0" * 32, drive=1, created="2026-12-04T00:00:00Z", tool="test", group=1, row=0, data_drives=2,
        parity_drives=1, block_size=BLOCK, stripes=2, segment_size=4 * BLOCK,
    )  # fmt: skip


def test_a_row_damaged_after_the_data_drives_never_becomes_a_parity_drive(tmp_path: Path) -> None:
    """One dock: the rows wait in --parity-dir while the parity drives are swapped in. A byte of a row flipped
    there meanwhile (a bad disk, another program) stops the pack with the row named; the parity drive being written
    is left unfinished (no drive.json), never finished with parity that its own hashes would agree with."""
    tree = make_tree(tmp_path / "src", 6, 300_000)
    work = tmp_path / "parity-work"

    class Damaging(Dock):
        def next_parity_drive(self, label: str, problem: str | None) -> None:
            row = work / ROW_NAME.format(row=0)
            with open(row, "r+b") as handle:
                handle.seek(BLOCK + 5)
                byte = handle.read(1)
                handle.seek(BLOCK + 5)
                handle.write(bytes([byte[0] ^ 0x40]))
            super().next_parity_drive(label, problem)

    dock = Damaging(tmp_path)
    with pytest.raises(IntegrityError, match=r"parity row 0 .* changed after the data drives were finished"):
        pack(
            str(tree), drives=[str(dock.mount)], drive_size=1_100_000, options=PACKING, next_drive=dock.next_drive,
            next_parity_drive=dock.next_parity_drive, parity=PARITY, parity_dir=str(work),
        )  # fmt: skip
    parity_drive = dock.drives[-1]
    assert dock.asked[-1] == "parity-0001"
    assert not (parity_drive / "drive.json").exists()


def test_at_once_a_row_damaged_before_it_is_written_stops_the_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drives at once: the rows are sealed once every lane is done; a row changed between the seal and its
    parity drive's writing is refused the same way (the data drives are finished: --resume computes the parity
    from them)."""
    tree = make_tree(tmp_path / "src", 6, 300_000)
    out = tmp_path / "out"
    seal = ParityAccumulator.seal

    def seal_then_damage(self: ParityAccumulator, stripes: int) -> None:
        seal(self, stripes)
        with open(os.path.join(self.spec.path, ROW_NAME.format(row=0)), "r+b") as handle:
            handle.seek(3 * BLOCK)
            handle.write(b"\xff" * 7)

    monkeypatch.setattr(ParityAccumulator, "seal", seal_then_damage)
    with pytest.raises(IntegrityError, match="parity row 0"):
        pack(str(tree), out=str(out), drive_size=1_100_000, options=PACKING, parity=PARITY, at_once=2)
    assert not (out / "parity-0001" / "drive.json").exists()
    summary = pack(
        str(tree), out=str(out), drive_size=1_100_000, options=PACKING, parity=PARITY, at_once=2, resume=True
    )
    afterwards = parity_afterwards(out, tmp_path / "afterwards")
    assert same_files(out / "parity-0001", afterwards) == []
    assert verify([str(d) for d in sorted(out.iterdir())], expected_fingerprint=summary.fingerprint).ok
