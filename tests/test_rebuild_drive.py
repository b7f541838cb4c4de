"""``sneakernet rebuild`` and ``repair`` (docs/format.md 19.7.6, issue 15): a lost data drive written again
byte-identical (every file, B3SUMS and drive.json included) from the others and parity, resumed after an
interruption; a damaged drive mended in place, only its damaged segments written again; more losses than parity
reported with the files they hold, nothing wrong ever under a final name."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from conftest import drive_dirs, make_edge_tree
from conftest import invoke_cli as run
from craft import forge_parity
from sneakernet import PackOptions, pack, verify
from sneakernet.drive import DriveReader
from sneakernet.drive.parity.recover import rebuild, repair
from sneakernet.errors import DestinationError, UsageError
from sneakernet.format import DRIVE_LABEL_NAME, MANIFEST_NAME, ChunkRecord, SegmentRecord
from sneakernet.packer.parity import ParityOptions, add_parity
from sneakernet.parity.engine import installed_backends
from sneakernet.progress import NullProgress

if not installed_backends():
    pytest.skip("no parity engine installed (the parity or parity-numpy extra)", allow_module_level=True)

BLOCK = 64 << 10
PACKING = PackOptions(chunk_size=64 * 1024, segment_size=100_000, reserve=0)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edge tree on drives of 3 MB (5 drives of up to 11 segments, the last shorter), with 2 parity drives."""
    base = tmp_path_factory.mktemp("rebuild")
    src = make_edge_tree(base / "src")
    pack(str(src), out=str(base / "ship"), drive_size=3_000_000, options=PACKING)
    drives = drive_dirs(base / "ship")
    add_parity([str(d) for d in drives], out=str(base / "ship"), options=ParityOptions(2, BLOCK, 4 * BLOCK))
    return base / "ship"


def files_of(drive: Path) -> dict[str, bytes]:
    return {str(path.relative_to(drive)): path.read_bytes() for path in sorted(drive.rglob("*")) if path.is_file()}


def copy_ship(packed: Path, tmp_path: Path) -> tuple[list[Path], list[Path]]:
    shutil.copytree(packed, tmp_path / "ship")
    return drive_dirs(tmp_path / "ship"), sorted((tmp_path / "ship").glob("parity-*"))


@pytest.mark.parametrize("lost", [[0], [2], [1, 3]])
def test_a_lost_drive_is_rebuilt_byte_identical(packed: Path, tmp_path: Path, lost: list[int]) -> None:
    data, parity = copy_ship(packed, tmp_path)
    originals = {i: files_of(data[i]) for i in lost}
    for i in lost:
        shutil.rmtree(data[i])
    given = [str(d) for i, d in enumerate(data) if i not in lost] + [str(p) for p in parity]
    for i in lost:
        target = tmp_path / f"new-{i}"
        result = rebuild(given, str(target), lost=data[i].name)
        assert result.finished and not result.chunks_lost
        assert files_of(target) == originals[i]
        assert result.segments_written == len(list((target / "segments").iterdir()))
        assert verify([str(target)]).drives[0].status == "intact"


class Interrupt(NullProgress):
    """A progress that stops the run (as Ctrl-C would) once ``after`` bytes are done."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.done = 0

    def advance(self, done_bytes: int) -> None:
        self.done += done_bytes
        if self.done >= self.after:
            raise KeyboardInterrupt


def test_an_interrupted_rebuild_is_unfinished_and_resumes_keeping_its_segments(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(data[1])
    stored = json.loads(original[DRIVE_LABEL_NAME])["stored_bytes"]
    assert len([n for n in original if n.startswith("segments/")]) >= 3
    shutil.rmtree(data[1])
    given = [str(d) for d in data if d != data[1]] + [str(p) for p in parity]
    target = tmp_path / "new"
    with pytest.raises(KeyboardInterrupt):
        rebuild(given, str(target), progress=Interrupt(stored // 2))
    assert not (target / DRIVE_LABEL_NAME).exists()  # unfinished, as section 13 says
    for name, content in files_of(target).items():
        if not name.endswith(".partial"):
            assert content == original[name], name  # nothing wrong under a final name
    result = rebuild(given, str(target))
    assert result.finished and result.segments_kept >= 1
    assert files_of(target) == original


def test_a_rebuild_goes_onto_an_empty_drive_only(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    shutil.rmtree(data[0])
    given = [str(d) for d in data[1:]] + [str(p) for p in parity]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DestinationError, match="not empty"):
        rebuild(given, str(tmp_path / "full"))
    with pytest.raises(DestinationError, match="another drive"):
        rebuild(given, str(data[1]))
    with pytest.raises(UsageError, match="no parity drive"):
        rebuild([str(d) for d in data[1:]], str(tmp_path / "new"))
    with pytest.raises(UsageError, match="was given"):
        rebuild(given, str(tmp_path / "new"), lost=data[1].name)


def test_more_lost_drives_than_parity_names_the_files_and_leaves_no_wrong_byte(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(data[0])
    for drive in data[:3]:
        shutil.rmtree(drive)
    given = [str(d) for d in data[3:]] + [str(p) for p in parity]
    target = tmp_path / "new"
    result = rebuild(given, str(target), lost=data[0].name)
    assert not result.finished and result.chunks_lost and result.files_lost
    assert not (target / DRIVE_LABEL_NAME).exists()
    for name, content in files_of(target).items():
        assert content == original[name], name
    code, out, _ = run("rebuild", *given, "--lost", data[0].name, "--onto", tmp_path / "cli")
    assert code == 1
    assert "cannot be rebuilt" in out and result.files_lost[0] in out


def test_a_hostile_parity_drive_stops_a_rebuild_without_a_wrong_byte(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(data[2])
    forge_parity(parity[0], random.Random(3))
    shutil.rmtree(data[2])
    shutil.rmtree(parity[1])
    given = [str(d) for d in data if d != data[2]] + [str(parity[0])]
    result = rebuild(given, str(tmp_path / "new"))
    assert not result.finished and result.chunks_lost
    for name, content in files_of(tmp_path / "new").items():
        assert content == original[name], name


def flip_bytes(drives: list[Path], count: int, rng: random.Random) -> None:
    segments = [path for drive in drives for path in sorted((drive / "segments").iterdir())]
    for _ in range(count):
        path = rng.choice(segments)
        data = bytearray(path.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(data)


def test_repair_mends_flipped_bytes_and_touches_only_damaged_segments(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(data[1])
    flip_bytes([data[1]], 3, random.Random(4))
    intact = {
        p.name: p.stat().st_mtime_ns
        for p in (data[1] / "segments").iterdir()
        if p.read_bytes() == original[f"segments/{p.name}"]
    }
    result = repair(str(data[1]), [str(d) for d in [*data, *parity]])
    assert result.finished and 1 <= result.segments_written <= 3
    assert result.segments_kept == len(intact)
    assert files_of(data[1]) == original
    for name, mtime in intact.items():
        assert (data[1] / "segments" / name).stat().st_mtime_ns == mtime
    again = repair(str(data[1]), [str(d) for d in [*data, *parity]])
    assert again.finished and again.segments_written == 0 and not again.files_written


def test_repair_brings_back_a_damaged_manifest_and_drive_json(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(data[0])
    (data[0] / DRIVE_LABEL_NAME).write_bytes(b"{ damaged")
    (data[0] / MANIFEST_NAME).write_bytes(b"damaged")
    os.remove(next((data[0] / "segments").iterdir()))
    code, out, err = run("repair", data[0], *data[1:], *parity)
    assert code == 0, out + err
    assert "repaired drive-0001" in out
    assert files_of(data[0]) == original


def flip_spread(drives: list[Path], rng: random.Random) -> int:
    """Flip one random bit in every stripe of each drive that is its turn (drive i of n: stripes i, i + n, ...):
    flips over all the drives, each stripe with the bytes of at most one drive damaged. The number flipped."""
    flipped = 0
    for index, drive in enumerate(drives):
        segments = sorted((drive / "segments").iterdir())
        stream = [(path, path.stat().st_size) for path in segments]
        length = sum(size for _, size in stream)
        for stripe in range(index, -(-length // BLOCK), len(drives)):
            at = rng.randrange(stripe * BLOCK, min(length, (stripe + 1) * BLOCK))
            for path, size in stream:
                if at < size:
                    data = bytearray(path.read_bytes())
                    data[at] ^= 1 << rng.randrange(8)
                    path.write_bytes(data)
                    flipped += 1
                    break
                at -= size
    return flipped


def test_flips_spread_over_every_drive_are_repaired_drive_by_drive(packed: Path, tmp_path: Path) -> None:
    """Flips over the data drives and a parity drive, a stripe damaged on one drive at most: each data drive
    repaired in turn from the others (damaged as they are) is the original again, and the tree restores."""
    data, parity = copy_ship(packed, tmp_path)
    originals = [files_of(d) for d in data]
    assert flip_spread([*data, parity[0]], random.Random(5)) >= 8
    for index, drive in enumerate(data):
        result = repair(str(drive), [str(d) for d in [*data, *parity]])
        assert result.finished, result
        assert result.segments_written >= 1
        assert files_of(drive) == originals[index]


def flip_anywhere(drives: list[Path], count: int, rng: random.Random) -> set[tuple[int, int]]:
    """Flip one bit of ``count`` bytes drawn at random over every segment byte of ``drives`` (several drives'
    flips may share a stripe); the (drive, stream offset) pairs flipped."""
    places = []
    for index, drive in enumerate(drives):
        start = 0
        for path in sorted((drive / "segments").iterdir()):
            size = path.stat().st_size
            places.append((index, start, path, size))
            start += size
    total = sum(size for *_, size in places)
    flipped = set()
    for at in rng.sample(range(total), count):
        for index, start, path, size in places:
            if at < size:
                data = bytearray(path.read_bytes())
                data[at] ^= 1 << rng.randrange(8)
                path.write_bytes(data)
                flipped.add((index, start + at))
                break
            at -= size
    return flipped


def test_random_flips_over_every_drive_one_parity_are_mended_byte_by_byte(packed: Path, tmp_path: Path) -> None:
    """One parity drive, flips drawn anywhere over every drive's segments (data and parity): stripes with flips on
    two or three drives are mended byte by byte; each data drive repaired, then the parity drive, each is the
    original again, its intact segments untouched."""
    data, parity = copy_ship(packed, tmp_path)
    shutil.rmtree(parity[1])
    drives = [*data, parity[0]]
    originals = [files_of(d) for d in drives]
    flipped = flip_anywhere(drives, 60, random.Random(11))
    stripes = {offset // BLOCK for _, offset in flipped}
    shared = {s for s in stripes if len({d for d, offset in flipped if offset // BLOCK == s}) > 1}
    assert len(shared) >= 3  # the case chunk by chunk repair could not mend
    mended = 0
    for index, drive in enumerate(drives):
        before = {p.name: p.stat().st_mtime_ns for p in (drive / "segments").iterdir()}
        intact = {
            p.name for p in (drive / "segments").iterdir() if p.read_bytes() == originals[index][f"segments/{p.name}"]
        }
        result = repair(str(drive), [str(d) for d in drives])
        assert result.finished, result
        mended += result.chunks_mended
        assert files_of(drive) == originals[index]
        assert result.segments_kept == len(intact) and result.segments_written == len(before) - len(intact)
        for name in intact:
            assert (drive / "segments" / name).stat().st_mtime_ns == before[name]
    assert mended >= 3
    report = verify([str(d) for d in drives])
    assert report.ok and all(d.status == "intact" for d in report.drives)


@pytest.mark.parametrize("which", [0, 1])
def test_a_lost_parity_drive_is_computed_again_byte_identical(packed: Path, tmp_path: Path, which: int) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(parity[which])
    shutil.rmtree(parity[which])
    given = [str(d) for d in [*data, *parity] if d != parity[which]]
    target = tmp_path / "new"
    code, out, err = run("rebuild", *given, "--onto", target)
    assert code == 0, out + err
    assert f"rebuilt {parity[which].name} onto" in out
    assert files_of(target) == original


def test_a_lost_parity_drive_needs_every_data_drive(packed: Path, tmp_path: Path) -> None:
    data, parity = copy_ship(packed, tmp_path)
    shutil.rmtree(parity[1])
    shutil.rmtree(data[0])
    with pytest.raises(UsageError, match="needs every data drive"):
        rebuild([str(d) for d in [*data[1:], parity[0]]], str(tmp_path / "new"), lost=parity[1].name)


def test_rebuild_and_repair_json_follow_their_schema(packed: Path, tmp_path: Path) -> None:
    from test_json import validate

    data, parity = copy_ship(packed, tmp_path)
    flip_bytes([data[0]], 1, random.Random(6))
    code, out, err = run("repair", data[0], *data[1:], *parity, "--json")
    assert code == 0, err
    repaired = json.loads(out)
    validate(repaired, "rebuild-result.schema.json")
    assert repaired["finished"] and repaired["segments_written"] == 1
    shutil.rmtree(data[3])
    code, out, err = run("rebuild", *data[:3], *data[4:], *parity, "--onto", tmp_path / "new", "--json")
    assert code == 0, err
    rebuilt = json.loads(out)
    validate(rebuilt, "rebuild-result.schema.json")
    assert rebuilt["label"] == data[3].name and rebuilt["chunks_rebuilt"] > 0


def test_an_interrupted_parity_repair_leaves_each_file_old_or_right_and_runs_again(
    packed: Path, tmp_path: Path
) -> None:
    data, parity = copy_ship(packed, tmp_path)
    original = files_of(parity[0])
    flip_bytes([parity[0]], 6, random.Random(12))
    damaged = files_of(parity[0])
    stored = sum(json.loads((d / DRIVE_LABEL_NAME).read_bytes())["stored_bytes"] for d in data)
    given = [str(d) for d in [*data, *parity]]
    with pytest.raises(KeyboardInterrupt):
        repair(str(parity[0]), given, progress=Interrupt(stored // 2))
    for name, content in files_of(parity[0]).items():
        if not name.endswith(".partial"):
            assert content in (original[name], damaged[name]), name
    result = repair(str(parity[0]), given)
    assert result.finished and 1 <= result.segments_written <= 6 and result.segments_kept >= 1
    assert files_of(parity[0]) == original
    assert 0 < result.bytes_written <= sum(len(c) for n, c in original.items() if n.startswith("segments/"))
    again = repair(str(parity[0]), given)
    assert again.finished and again.segments_written == 0 and again.bytes_written == 0 and not again.files_written


def flip_stream(drive: Path, offset: int) -> None:
    """Flip a bit of the byte at stream offset ``offset`` of ``drive`` (its segments in order)."""
    for path in sorted((drive / "segments").iterdir()):
        size = path.stat().st_size
        if offset < size:
            data = bytearray(path.read_bytes())
            data[offset] ^= 0x08
            path.write_bytes(data)
            return
        offset -= size
    raise AssertionError("past the end of the stream")


def test_a_repair_mends_what_it_can_of_a_segment_and_keeps_a_true_overlap_as_it_reads(
    packed: Path, tmp_path: Path
) -> None:
    """One parity drive; drive 2 and drive 3 flipped at the same stream byte (a true overlap: one parity row cannot
    tell which is wrong), and drive 2 again in the next chunk of that segment: the segment is written again with
    the second chunk mended and the first as it read, nothing else changed; the run names the first's files."""
    rng = random.Random(13)
    (tmp_path / "src").mkdir()
    for n in range(4):
        (tmp_path / "src" / f"f{n}").write_bytes(rng.randbytes(800_000))
    options = PackOptions(chunk_size=64 * 1024, segment_size=400_000, reserve=0)
    pack(str(tmp_path / "src"), out=str(tmp_path / "ship"), drive_size=1_500_000, options=options)
    data = drive_dirs(tmp_path / "ship")
    add_parity([str(d) for d in data], out=str(tmp_path / "ship"), options=ParityOptions(1, BLOCK, 4 * BLOCK))
    parity = sorted((tmp_path / "ship").glob("parity-*"))
    reader = DriveReader(str(data[1]))
    chunks = [r for r in reader.records() if isinstance(r, ChunkRecord)]
    starts, at = {}, 0
    for record in reader.records():
        if isinstance(record, SegmentRecord):
            starts[record.name] = at
            at += record.size
    first, second = next((a, b) for a, b in itertools.pairwise(chunks) if a.segment == b.segment)
    overlap = starts[first.segment] + first.offset + 5
    assert json.loads((data[2] / DRIVE_LABEL_NAME).read_bytes())["stored_bytes"] > overlap
    original = files_of(data[1])
    flip_stream(data[1], overlap)
    flip_stream(data[2], overlap)
    flip_stream(data[1], starts[second.segment] + second.offset + 7)
    result = repair(str(data[1]), [str(d) for d in [*data, *parity]])
    assert not result.finished and result.chunks_lost == [first.id] and result.files_lost
    assert result.segments_written == 1
    now = files_of(data[1])
    segment = bytearray(now[first.segment])
    right = original[first.segment]
    assert (
        segment[second.offset : second.offset + second.stored_size]
        == right[second.offset : second.offset + second.stored_size]
    )
    assert [i for i in range(len(right)) if segment[i] != right[i]] == [first.offset + 5]
    assert {n: c for n, c in now.items() if n != first.segment} == {
        n: c for n, c in original.items() if n != first.segment
    }
