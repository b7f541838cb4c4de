"""restore with data drives missing (docs/format.md 19.7.6, issue 15): the drives that arrived plus parity drives
restore the whole tree, the missing drives' chunks rebuilt on the fly and checked; a drive set with more drives lost
than parity restores what it can and names the rest; a hostile parity drive (wrong bytes, hashes that match them)
never puts a wrong byte under a final name."""

from __future__ import annotations

import itertools
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import as_restored, drive_dirs, make_edge_tree, source_entries
from conftest import invoke_cli as run
from craft import forge_parity
from sneakernet import PackOptions, pack, restore
from sneakernet.drive import DriveReader
from sneakernet.drive.parity.lost import ParitySet
from sneakernet.drive.parity.reader import ParityDriveReader
from sneakernet.drive.role import drive_role
from sneakernet.errors import FormatError
from sneakernet.format import ChunkRecord
from sneakernet.packer.parity import ParityOptions, add_parity
from sneakernet.parity.engine import installed_backends
from sneakernet.restorer.journal import JOURNAL_DIR

if not installed_backends():
    pytest.skip("no parity engine installed (the parity or parity-numpy extra)", allow_module_level=True)

BLOCK = 64 << 10
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=100_000, reserve=0)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The edge tree (a 3 MB file spanning drives) on drives of 3 MB (5 drives), with 2 parity drives."""
    base = tmp_path_factory.mktemp("lost")
    src = make_edge_tree(base / "src")
    pack(str(src), out=str(base / "ship"), drive_size=3_000_000, options=PACKING)
    drives = drive_dirs(base / "ship")
    add_parity([str(d) for d in drives], out=str(base / "ship"), options=ParityOptions(2, BLOCK, 4 * BLOCK))
    return src, base / "ship"


def copy_ship(packed: tuple[Path, Path], tmp_path: Path) -> tuple[list[Path], list[Path]]:
    shutil.copytree(packed[1], tmp_path / "ship")
    data = drive_dirs(tmp_path / "ship")
    parity = sorted((tmp_path / "ship").glob("parity-*"))
    return data, parity


def outside_journal(entries: dict[bytes, object]) -> dict[bytes, object]:
    journal = JOURNAL_DIR.encode()
    return {k: v for k, v in entries.items() if k != journal and not k.startswith(journal + b"/")}


def test_the_drives_are_parity_and_data_by_their_drive_json(packed: tuple[Path, Path], tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    assert len(data) >= 4 and len(parity) == 2
    assert {drive_role(str(d)) for d in data} == {"data"}
    assert {drive_role(str(p)) for p in parity} == {"parity"}
    assert drive_role(str(tmp_path / "nothing")) == "data"  # its reader says what is wrong


def test_a_lost_drive_reads_as_the_drive_it_was(packed: tuple[Path, Path], tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = DriveReader(str(data[1]))
    chunks = [r for r in original.records() if isinstance(r, ChunkRecord)]
    truth = [original.read_stored(c) for c in chunks]
    label_bytes = original.label_bytes
    shutil.rmtree(data[1])
    given = [str(d) for d in data if d != data[1]]
    parity_set = ParitySet(given, [ParityDriveReader(str(p)) for p in parity])
    [(group, cover)] = parity_set.lost()
    lost = parity_set.open_lost(group, cover)
    try:
        assert lost.label_bytes == label_bytes
        assert [r for r in lost.records() if isinstance(r, ChunkRecord)] == chunks
        assert [lost.read_stored(c) for c in chunks] == truth
        assert all(lost.stored_matches(c) and lost.frame_problem(c) is None for c in chunks)
    finally:
        lost.close()
        parity_set.close()


@pytest.mark.parametrize("lost", [(0, 1), (1, 3), (2, "P1"), ("P0", "P1")])
def test_restore_with_any_two_drives_missing_gives_the_tree(
    packed: tuple[Path, Path], tmp_path: Path, lost: tuple[int | str, ...]
) -> None:
    data, parity = copy_ship(packed, tmp_path)
    gone = [parity[int(x[1:])] if isinstance(x, str) else data[x] for x in lost]
    for drive in gone:
        shutil.rmtree(drive)
    given = [d for d in [*data, *parity] if d not in gone]
    report = restore([str(d) for d in given], str(tmp_path / "dest"))
    assert report.status.finished
    got = outside_journal(source_entries(tmp_path / "dest"))
    assert got == as_restored(source_entries(packed[0]))
    rebuilt = [n for n in report.notes if "rebuilt from" in n]
    lost_data = sorted(d.name for d in gone if d in data)
    assert [n.split()[0] for n in rebuilt] == lost_data


def test_restore_on_the_command_line_names_what_it_rebuilt_from(packed: tuple[Path, Path], tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    shutil.rmtree(data[2])
    code, out, err = run("restore", *[d for d in data if d != data[2]], parity[0], "--into", tmp_path / "dest")
    assert code == 0, out + err
    assert f"{data[2].name} was not given: its data is rebuilt from" in out + err
    assert outside_journal(source_entries(tmp_path / "dest")) == as_restored(source_entries(packed[0]))


def test_three_drives_lost_with_two_parity_restores_what_it_can_and_names_the_rest(
    packed: tuple[Path, Path], tmp_path: Path
) -> None:
    data, parity = copy_ship(packed, tmp_path)
    for drive in data[:3]:
        shutil.rmtree(drive)
    report = restore([str(d) for d in [*data[3:], *parity]], str(tmp_path / "dest"))
    assert not report.status.finished
    failed = {path for outcome in report.drives for path in outcome.failed}
    assert failed
    expected = as_restored(source_entries(packed[0]))
    # Nothing wrong under a final name: every file there is the source's.
    for path, entry in outside_journal(source_entries(tmp_path / "dest")).items():
        if entry.kind == "file":
            assert entry == expected[path], path


def test_a_hostile_parity_drive_never_puts_a_wrong_byte_under_a_final_name(
    packed: tuple[Path, Path], tmp_path: Path
) -> None:
    """parity-0001's blocks replaced by random bytes, its pblock hashes, segment hashes, manifest, drive.json and
    B3SUMS rewritten to match them: valid-looking everywhere. With drive 2 missing and parity-0002 absent too, the
    files with bytes on drive 2 are named as not restored, and nothing wrong is installed."""
    data, parity = copy_ship(packed, tmp_path)
    forge_parity(parity[0], random.Random(1))
    victim = data[1]
    victim_paths = paths_on(victim)
    shutil.rmtree(victim)
    shutil.rmtree(parity[1])
    report = restore([str(d) for d in data if d != victim] + [str(parity[0])], str(tmp_path / "dest"))
    assert not report.status.finished
    failed = {line.split(" has damaged bytes")[0] for outcome in report.drives for line in outcome.failed}
    assert failed and failed <= {p.decode() for p in victim_paths}
    expected = as_restored(source_entries(packed[0]))
    for path, entry in outside_journal(source_entries(tmp_path / "dest")).items():
        if entry.kind == "file":
            assert entry == expected[path], path


def paths_on(drive: Path) -> set[bytes]:
    reader = DriveReader(str(drive))
    return {r.path for r in reader.records() if type(r).__name__ == "FileRecord" and r.length}  # type: ignore[attr-defined]


def test_a_parity_drive_of_another_packing_is_refused(packed: tuple[Path, Path], tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    other = tmp_path / "other"
    pack(str(packed[0]), out=str(other), drive_size=3_000_000, options=PACKING)
    with pytest.raises(Exception, match=r"the parity drives of another"):
        ParitySet([str(d) for d in drive_dirs(other)], [ParityDriveReader(str(p)) for p in parity])
    assert all(isinstance(p, Path) for p in itertools.chain(data, parity))
    with pytest.raises(FormatError):
        ParityDriveReader(str(data[0]))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 3), data=st.data())
def test_any_m_drives_lost_restore_identical_and_rebuild_byte_identical(
    tmp_path_factory: pytest.TempPathFactory, seed: int, m: int, data: st.DataObject
) -> None:
    """Random trees and drive sizes, K data drives and M parity drives; any M of the K + M deleted: restore of
    the rest gives the tree, and every deleted data drive is rebuilt byte-identical."""
    from sneakernet.drive.parity.recover import rebuild

    base = tmp_path_factory.mktemp("prop")
    rng = random.Random(seed)
    src = base / "src"
    for index in range(rng.randint(3, 12)):
        path = src / f"d{index % 3}" / f"f{index}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 1, rng.randint(2, 5000), rng.randint(5000, 400_000)])
        path.write_bytes(rng.randbytes(size) if rng.random() < 0.7 else bytes(size))
    options = PackOptions(chunk_size=64 * 1024, segment_size=rng.choice([70_000, 150_000]), reserve=0)
    pack(str(src), out=str(base / "ship"), drive_size=rng.choice([2_000_000, 3_000_000]), options=options)
    drives = drive_dirs(base / "ship")
    add_parity([str(d) for d in drives], out=str(base / "ship"), options=ParityOptions(m, BLOCK, 2 * BLOCK))
    parity = sorted((base / "ship").glob("parity-*"))
    everything = [*drives, *parity]
    gone = data.draw(st.lists(st.sampled_from(everything), min_size=1, max_size=m, unique=True))
    originals = {d: files_of(d) for d in gone if d in drives}
    for drive in gone:
        shutil.rmtree(drive)
    given_drives = [str(d) for d in everything if d not in gone]
    report = restore(given_drives, str(base / "dest"))
    assert report.status.finished
    assert outside_journal(source_entries(base / "dest")) == as_restored(source_entries(src))
    for drive, files in originals.items():
        result = rebuild(given_drives, str(base / f"new-{drive.name}"), lost=drive.name)
        assert result.finished
        assert files_of(base / f"new-{drive.name}") == files


def files_of(drive: Path) -> dict[str, bytes]:
    return {str(p.relative_to(drive)): p.read_bytes() for p in sorted(drive.rglob("*")) if p.is_file()}
