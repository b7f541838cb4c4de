"""Bugs in pack.py found while testing the format modules, each shown by a strict xfail test.

(tests/test_pack.py is pack's own suite; these only pin down defects, and pass once they are fixed.)
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from sneakernet.bundle import DriveReader
from sneakernet.codec import stored_size_bound
from sneakernet.errors import DestinationError
from sneakernet.format import FileRecord, HardlinkRecord
from sneakernet.pack import PackOptions, pack
from sneakernet.planner import DriveBudget, catalog_bound, catalog_entry_bound


def drive_records(out: Path) -> list[object]:
    records: list[object] = []
    for drive in sorted(out.iterdir()):
        records += list(DriveReader(str(drive)).records())
    return records


def test_hardlink_to_a_large_file_follows_its_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-big").write_bytes(random.Random(1).randbytes(100_000))
    os.link(src / "a-big", src / "b-link")
    pack(src, out=str(tmp_path / "out"), drive_size=10**7, options=PackOptions(chunk_size=64 * 1024, reserve=0))
    records = drive_records(tmp_path / "out")
    target = next(i for i, r in enumerate(records) if isinstance(r, FileRecord) and r.final)
    link = next(i for i, r in enumerate(records) if isinstance(r, HardlinkRecord))
    assert records[link] == HardlinkRecord(b"b-link", b"a-big")
    assert target < link


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="bug: SourceReader._file (pack.py) yields a HardlinkRecord at once, while the final FileRecord of its "
    "target, a small file, waits in _pending_ends until its group chunk closes: the hard link is written before "
    "the file it names (even on an earlier drive), against HardlinkRecord's 'a file stored earlier'",
)
def test_hardlink_to_a_small_file_follows_its_target(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-small.txt").write_bytes(b"small file content\n")
    os.link(src / "a-small.txt", src / "b-link")
    pack(src, out=str(tmp_path / "out"), drive_size=10**7, options=PackOptions(chunk_size=64 * 1024, reserve=0))
    records = drive_records(tmp_path / "out")
    target = next(i for i, r in enumerate(records) if isinstance(r, FileRecord) and r.path == b"a-small.txt")
    link = next(i for i, r in enumerate(records) if isinstance(r, HardlinkRecord))
    assert target < link


@pytest.mark.xfail(
    strict=True,
    raises=DestinationError,
    reason="bug: _check_space (pack.py) passes stored_size_bound(chunk_size) + 8 records as the *manifest* bound to "
    "budget.usable() and then adds the chunk again, so it counts one chunk twice and refuses drives that hold it",
)
def test_drive_that_holds_a_chunk_is_not_refused(tmp_path: Path) -> None:
    chunk_size = 256 * 1024
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(random.Random(2).randbytes(200_000))
    # Room for everything the planner counts: one full chunk, 64 KiB of manifest and a generous catalog.
    catalog = catalog_bound(catalog_entry_bound(b"data.bin"), 4)
    drive_size = DriveBudget(0, catalog).overhead(1, 64 * 1024) + stored_size_bound(chunk_size)
    assert drive_size < 1_200_000
    pack(src, out=str(tmp_path / "out"), drive_size=drive_size, options=PackOptions(chunk_size=chunk_size, reserve=0))
    assert [d.name for d in (tmp_path / "out").iterdir()] == ["drive-0001"]
