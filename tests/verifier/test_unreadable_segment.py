"""verify reads every drive through its store (io/store.py): a segment that cannot be read, injected through
tests/fakestore.py's FaultyStore, is reported as damage to the chunks it holds and the files they hurt, on that
drive alone."""

from __future__ import annotations

import random
from pathlib import Path

from conftest import drive_dirs, write_file
from fakestore import FaultyStore
from sneakernet import PackOptions, pack, verify


def test_a_segment_that_cannot_be_read_is_damage_to_its_chunks_on_its_drive_only(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a.bin", random.Random(1).randbytes(3_000_000))
    options = PackOptions(chunk_size=256 * 1024, segment_size=600_000, reserve=0)
    pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=2_000_000, options=options)
    drives = [str(d) for d in drive_dirs(tmp_path / "out")]
    assert len(drives) == 3 and verify(drives).ok
    broken = "segments/s000002.seg"

    def failing(path: str) -> FaultyStore:
        return FaultyStore(path, fail_read=lambda name: path == drives[1] and name == broken)

    reports = verify(drives, open_store=failing).drives
    assert [r.status for r in reports] == ["intact", "damaged", "intact"]
    damaged = reports[1].damaged_chunks
    assert damaged and {c.segment for c in damaged} == {broken} and {p for c in damaged for p in c.paths} == {"a.bin"}
