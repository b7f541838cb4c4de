"""sneakernet plan: link rates, durations, the estimate against what pack then does, --json, refusals."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path

import pytest

import sneakernet.planner.walk as walk_module
from conftest import invoke_cli as run
from conftest import make_edge_tree, write_file
from sneakernet import PackOptions, pack
from sneakernet.chunks.chunker import plan_chunks
from sneakernet.errors import DestinationError, SourceError, UsageError
from sneakernet.io.source import LocalFile, LocalSource
from sneakernet.packer.checks import _check_space
from sneakernet.packer.targets import DriveTargets
from sneakernet.planner import DEFAULT_LINKS, plan
from sneakernet.planner.sample import SAMPLE_PIECE, StreamSampler
from sneakernet.planner.walk import EVENT_GROUP, EVENT_LARGE, EventSpool, Walk
from sneakernet.scan import scan
from sneakernet.space.budget import Placement
from sneakernet.space.fill import Fill
from sneakernet.units import format_duration, parse_rate

ROOT = Path(__file__).resolve().parent.parent
KiB, MiB = 2**10, 2**20


# --- link rates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bytes_per_second", "label"),
    [
        ("1Gbps", 125_000_000, "1 Gbit/s"),
        ("10Gbit", 1_250_000_000, "10 Gbit/s"),
        ("500Mbps", 62_500_000, "500 Mbit/s"),
        ("100MB/s", 100_000_000, "100 MB/s"),
        ("1 Gbit/s", 125_000_000, "1 Gbit/s"),
        ("2.5Gb/s", 312_500_000, "2.5 Gbit/s"),
        ("100 mbit", 12_500_000, "100 Mbit/s"),
        ("800kbps", 100_000, "800 kbit/s"),
        ("1.5GiB/s", 1.5 * 2**30, "1.5 GiB/s"),
        ("200 MBps", 200_000_000, "200 MB/s"),
        ("1 Tbit/s", 125_000_000_000, "1 Tbit/s"),
        ("64 bytes/s", 64, "64 B/s"),
        ("8bps", 1, "8 bit/s"),
    ],
)
def test_parse_rate(text: str, bytes_per_second: float, label: str) -> None:
    link = parse_rate(text)
    assert link.bytes_per_second == pytest.approx(bytes_per_second)
    assert link.bits_per_second == pytest.approx(8 * bytes_per_second)
    assert link.label == label


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "cannot read rate 'fast'"),
        ("", "cannot read rate ''"),
        ("1G", "say bits or bytes per second"),
        ("100MB", "unknown unit 'B'"),
        ("1Gb", "unknown unit 'b'"),
        ("1 GBPS", "unknown unit 'BPS'"),
        ("0Gbps", "is zero"),
        ("-1Gbps", "cannot read rate"),
        ("1 ibps", "cannot read rate"),
        ("1,5Gbps", "cannot read rate"),
        ("1 Xbps", "cannot read rate"),
    ],
)
def test_parse_rate_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        parse_rate(text)
    assert "1Gbps, 10Gbit, 500Mbps or 100MB/s" in str(caught.value) or "zero" in str(caught.value)


def test_default_links_parse() -> None:
    assert [parse_rate(text).label for text in DEFAULT_LINKS] == ["100 Mbit/s", "1 Gbit/s", "10 Gbit/s"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.25, "0.2 s"),
        (9.94, "9.9 s"),
        (42, "42 s"),
        (90, "1.5 min"),
        (45 * 60, "45 min"),
        (9 * 3600, "9.0 h"),
        (30 * 3600, "30 h"),
        (80e12 * 8 / 1e9, "7.4 days"),
        (400 * 86400, "400 days"),
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_80_tb_over_1_gbit() -> None:
    assert format_duration(80e12 / parse_rate("1Gbps").bytes_per_second) == "7.4 days"


# --- the estimate against pack ------------------------------------------------------------------------------


def make_mixed_tree(root: Path, seed: int) -> Path:
    """Text that compresses, random bytes that do not, small files and large ones, interleaved in walk order."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "tensor", "label", "epoch", "weight", "0.5", "1.25"]
    for part in range(6):
        for i in range(rng.randint(10, 40)):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(50, 4000)))
            write_file(root / f"part{part}" / "text" / f"doc{i:03d}.jsonl", text.encode())
        for i in range(rng.randint(1, 5)):
            write_file(root / f"part{part}" / "media" / f"img{i:02d}.jpg", rng.randbytes(rng.randint(10_000, 600_000)))
        if rng.random() < 0.6:
            write_file(root / f"part{part}" / "big.bin", rng.randbytes(rng.randint(1, 3) * 1_000_000))
        if rng.random() < 0.6:
            text = "\n".join(f"{i},{rng.choice(words)},{rng.random():.3f}" for i in range(rng.randint(50_000, 150_000)))
            write_file(root / f"part{part}" / "table.csv", text.encode())
    return root


@pytest.mark.parametrize(
    ("seed", "drive_size", "chunk_size"),
    [(1, 3_000_000, 256 * KiB), (2, 2_000_000, 128 * KiB), (3, 5_000_000, 512 * KiB), (4, 1_500_000, 64 * KiB)],
)
def test_drive_count_within_one_of_pack(tmp_path: Path, seed: int, drive_size: int, chunk_size: int) -> None:
    src = make_mixed_tree(tmp_path / "src", seed)
    planned = plan(src, drive_size=drive_size, chunk_size=chunk_size)
    summary = pack(src, out=str(tmp_path / "out"), drive_size=drive_size, options=PackOptions(chunk_size=chunk_size))
    packed = len(summary.drives)
    assert packed >= 3, "the tree should need several drives"
    assert abs(planned.drives_needed - packed) <= 1, (planned.drives_needed, packed)
    assert planned.drives_if_nothing_compresses >= packed
    # The counts are pack's, exactly; the stored size is an estimate.
    assert (planned.files, planned.data_bytes) == (summary.files, summary.raw_bytes)
    assert planned.stored_bytes == pytest.approx(summary.stored_bytes, rel=0.15)
    assert sum(d.raw_bytes for d in planned.drives) == summary.raw_bytes
    assert all(d.used_bytes <= drive_size for d in planned.drives)


def test_drive_count_within_one_with_a_small_sample(tmp_path: Path) -> None:
    """A sample far smaller than the data (one piece per 16 of data) still lands within one drive."""
    src = make_mixed_tree(tmp_path / "src", 5)
    sample = 8 * SAMPLE_PIECE
    planned = plan(src, drive_size=2_000_000, chunk_size=256 * KiB, sample_bytes=sample)
    summary = pack(src, out=str(tmp_path / "out"), drive_size=2_000_000, options=PackOptions(chunk_size=256 * KiB))
    assert planned.sample_bytes <= sample
    assert abs(planned.drives_needed - len(summary.drives)) <= 1


def _walk_chunks(root: Path, chunk_size: int) -> list[tuple[int, int]]:
    """(start in the stream, raw size) of every chunk plan's walk finds, in order."""
    events = EventSpool()
    sampler = StreamSampler(LocalSource(root), chunk_size, 1, max_bytes=SAMPLE_PIECE)
    Walk(LocalSource(root), sampler, events, chunk_size).run(None)
    chunks = []
    for kind, start, size, _, _ in events:
        if kind == EVENT_GROUP:
            chunks.append((start, size))
        elif kind == EVENT_LARGE:
            chunks += [(start + offset, min(chunk_size, size - offset)) for offset in range(0, size, chunk_size)]
    return chunks


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_walk_cuts_the_chunks_packs_chunker_cuts(tmp_path: Path, seed: int) -> None:
    """plan's walk groups small files inline, for speed: it must make exactly chunks/chunker.py's chunks."""
    rng = random.Random(seed)
    chunk_size = 64 * KiB
    sizes = []
    for i in range(300):
        size = rng.choice(
            [
                0,
                rng.randint(1, 2000),
                rng.randint(2000, chunk_size),
                chunk_size,
                rng.randint(1, 4) * chunk_size + rng.randint(0, 99),
            ]
        )
        write_file(tmp_path / "src" / f"d{i // 50}" / f"f{i:03d}", bytes(size))
        sizes.append(size)
    expected, position = [], 0
    starts = list(itertools.accumulate(sizes, initial=0))
    for chunk in plan_chunks(sizes, chunk_size):
        first = chunk.slices[0]
        expected.append((starts[first.file_index] + first.file_offset, chunk.raw_size))
        position += chunk.raw_size
    assert position == sum(sizes)
    assert _walk_chunks(tmp_path / "src", chunk_size) == expected


def test_events_spill_to_a_file_and_come_back_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_mixed_tree(tmp_path / "src", 9)
    in_memory = plan(src, drive_size=2_000_000, chunk_size=64 * KiB)
    monkeypatch.setattr(walk_module, "EVENT_BATCH", 3)
    spilled = plan(src, drive_size=2_000_000, chunk_size=64 * KiB)
    assert spilled.drives == in_memory.drives and spilled.stored_bytes == in_memory.stored_bytes


def test_a_directory_of_many_empty_files_is_not_one_batch(tmp_path: Path) -> None:
    """Records between two chunks are checked for room in batches: 3,000 of them (a bound of 2.2 MB) must not make
    a drive of 1.5 MB look too small, and the drive count stays within one of pack's."""
    for i in range(3_000):
        (tmp_path / "src" / "empty").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "empty" / f"an-empty-file-with-a-long-name-{i:05d}").touch()
    write_file(tmp_path / "src" / "data.bin", random.Random(4).randbytes(2_000_000))
    planned = plan(tmp_path / "src", drive_size=1_500_000, chunk_size=64 * KiB)
    summary = pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=1_500_000, options=PackOptions(64 * KiB))
    assert abs(planned.drives_needed - len(summary.drives)) <= 1, (planned.drives_needed, len(summary.drives))


@pytest.mark.parametrize(
    ("data_bytes", "pieces", "stride"),
    [
        (3 * MiB, 6, SAMPLE_PIECE),  # a tiny tree: all of it
        (40 * MiB, 20, 4 * SAMPLE_PIECE),  # at least 16 pieces, at most 32
        (1000 * MiB, 32, 32 * MiB),  # 1/64 of the data: a piece every 32 MiB
        (10 * 2**30, 160, 64 * MiB),  # at most 256 pieces, at least 128
    ],
)
def test_the_sample_strides_as_documented(tmp_path: Path, data_bytes: int, pieces: int, stride: int) -> None:
    """Sparse files (read as zeros, at no cost) stand for data of any size: the stride doubles as the walk goes
    and ends where docs/plan.md says, whatever the walk saw first."""
    (tmp_path / "src").mkdir()
    for number, share in enumerate((1, 2, 1)):
        with open(tmp_path / "src" / f"part{number}.bin", "wb") as handle:
            handle.truncate(data_bytes * share // 4)
    sampler = StreamSampler(LocalSource(tmp_path / "src"), 4 * MiB, 1)
    walked = Walk(LocalSource(tmp_path / "src"), sampler, EventSpool(), 4 * MiB)
    sample = sampler.finish(walked.run(None).stream_bytes)
    assert (sample.pieces, sample.stride, sample.encoded_bytes) == (pieces, stride, pieces * SAMPLE_PIECE)
    assert all(ratio is not None for ratio in sample.ratios)
    # Near a file's end a window is moved back into the file, over the one before it: read once, counted once.
    assert sample.bytes_read <= min(data_bytes, sample.encoded_bytes)


def test_the_sample_never_counts_a_byte_twice(tmp_path: Path) -> None:
    """A piece may read bytes the piece before read (the head of a small file, the end of a large one): the plan
    says how much of the source it read, never more than the source holds."""
    rng = random.Random(1)
    for number in range(6):
        write_file(tmp_path / "src" / f"s{number}.txt", b"word %d " % number * rng.randint(2000, 9000))
    write_file(tmp_path / "src" / "w.bin", rng.randbytes(3_000_000))  # its last window moves back over the one before
    planned = plan(tmp_path / "src", drive_size=10**9, chunk_size=256 * KiB)
    assert 0 < planned.sample_bytes <= planned.data_bytes
    assert planned.sample_files <= planned.files


def test_plan_and_pack_fill_drives_through_the_one_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """space/fill.py is the one fill model: pack (real sizes) and plan (estimates) place every chunk and record
    through Fill.room and finish every drive through Fill.finish, so their drive counts differ only by the
    estimates. Counted by wrapping the two methods, which still run."""
    src = make_mixed_tree(tmp_path / "src", 1)
    calls: dict[str, int] = {}
    real_room, real_finish = Fill.room, Fill.finish

    def room(self: Fill, stored_size: int, extra_records: int) -> Placement | None:
        calls["room"] = calls.get("room", 0) + 1
        return real_room(self, stored_size, extra_records)

    def finish(self: Fill) -> None:
        calls["finish"] = calls.get("finish", 0) + 1
        real_finish(self)

    monkeypatch.setattr(Fill, "room", room)
    monkeypatch.setattr(Fill, "finish", finish)
    planned = plan(src, drive_size=3_000_000, chunk_size=256 * KiB)
    planned_calls, calls = calls, {}
    summary = pack(src, out=str(tmp_path / "out"), drive_size=3_000_000, options=PackOptions(chunk_size=256 * KiB))
    # plan fills twice (the estimate and nothing compressing); pack once.
    assert planned_calls["finish"] == planned.drives_needed + planned.drives_if_nothing_compresses
    assert calls["finish"] == len(summary.drives) >= 3
    assert planned_calls["room"] > 0 and calls["room"] > 0
    assert abs(planned.drives_needed - len(summary.drives)) <= 1


def test_catalog_bound_is_packs(tmp_path: Path) -> None:
    """plan and pack's _check_space reserve the same catalog room on every drive (space/reserve.py)."""
    src = make_mixed_tree(tmp_path / "src", 6)
    for drive_size, reserve in ((3_000_000, None), (50_000_000, 0), (10**12, None)):
        options = PackOptions(chunk_size=256 * KiB, reserve=reserve)
        totals, spool = scan(src)
        spool.close()
        targets = DriveTargets(str(tmp_path / "never-written"), (), drive_size, reserve)
        expected = _check_space(targets, totals, options)
        planned = plan(src, drive_size=drive_size, chunk_size=256 * KiB, reserve=reserve)
        assert planned.catalog_bound == expected
    assert not (tmp_path / "never-written").exists()


def test_counts_match_pack_on_the_edge_tree(tmp_path: Path) -> None:
    src = make_edge_tree(tmp_path / "src")
    planned = plan(src, drive_size=1_500_000, chunk_size=256 * KiB, reserve=0, excludes=("*.png",))
    summary = pack(
        src,
        out=str(tmp_path / "out"),
        drive_size=1_500_000,
        options=PackOptions(256 * KiB, reserve=0, excludes=("*.png",)),
    )
    assert (planned.files, planned.dirs, planned.symlinks, planned.hardlinks) == (
        summary.files,
        summary.dirs,
        summary.symlinks,
        summary.hardlinks,
    )
    assert planned.data_bytes == summary.raw_bytes
    assert (planned.excluded_entries, planned.excluded_bytes) == (summary.excluded_entries, summary.excluded_bytes)
    assert abs(planned.drives_needed - len(summary.drives)) <= 1


def test_plan_is_deterministic_and_writes_nothing(tmp_path: Path) -> None:
    src = make_mixed_tree(tmp_path / "src", 7)
    before = sorted((p, p.stat().st_mtime_ns) for p in src.rglob("*"))
    first = plan(src, drive_size=3_000_000, chunk_size=256 * KiB)
    second = plan(src, drive_size=3_000_000, chunk_size=256 * KiB)
    assert first.stored_bytes == second.stored_bytes and first.drives == second.drives
    # The sample is compressed on a thread per core, or on this thread alone: the same estimate either way.
    alone = plan(src, drive_size=3_000_000, chunk_size=256 * KiB, threads=1)
    assert (alone.stored_bytes, alone.drives, alone.sample_bytes) == (
        first.stored_bytes,
        first.drives,
        first.sample_bytes,
    )
    assert sorted((p, p.stat().st_mtime_ns) for p in src.rglob("*")) == before


def test_sample_is_bounded(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "big.bin", random.Random(1).randbytes(6 * MiB))
    for i in range(300):
        write_file(tmp_path / "src" / "small" / f"{i:03d}.txt", f"line {i}\n".encode() * 100)
    planned = plan(tmp_path / "src", drive_size=10**9, sample_bytes=16 * SAMPLE_PIECE)
    assert 0 < planned.sample_bytes <= 16 * SAMPLE_PIECE
    assert planned.sample_pieces <= 16


def test_a_file_gone_before_the_sample_reads_it_is_noted(tmp_path: Path) -> None:
    """The sample is read after the walk: a file removed in between is an unreadable piece, said in a note, and
    the plan goes on with the ratios of the other strata."""
    for i in range(4):
        write_file(tmp_path / "src" / f"part{i}.bin", bytes(3 * MiB) if i % 2 else random.Random(i).randbytes(3 * MiB))

    class GoneAfterTheWalk(LocalSource):
        """The tree, but part1.bin is gone by the time the sample opens it (the walk has seen it)."""

        def open(self, path: bytes) -> LocalFile:
            if path == b"part1.bin":
                raise FileNotFoundError(path)
            return super().open(path)

    planned = plan(GoneAfterTheWalk(tmp_path / "src"), drive_size=10**9)
    assert planned.files == 4 and planned.data_bytes == 12 * MiB  # the walk saw it
    assert 0 < planned.sample_bytes < 12 * MiB
    assert any(re.fullmatch(r"\d+ files? could not be read for the sample; .*", note) for note in planned.notes)


def test_incompressible_data_is_estimated_as_stored(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "noise.bin", random.Random(2).randbytes(3 * MiB + 17))
    planned = plan(tmp_path / "src", drive_size=10**9, chunk_size=256 * KiB)
    summary = pack(tmp_path / "src", out=str(tmp_path / "out"), drive_size=10**9, options=PackOptions(256 * KiB))
    assert planned.stored_bytes == summary.stored_bytes  # stored frames have an exact size


def test_empty_source(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    planned = plan(tmp_path / "src", drive_size=10**9)
    assert planned.drives_needed == 1 and planned.data_bytes == 0 and planned.stored_bytes == 0
    assert planned.pack_seconds == 0 and all(link.seconds == 0 for link in planned.links)


def test_drives_given(tmp_path: Path) -> None:
    src = make_mixed_tree(tmp_path / "src", 8)
    needed = plan(src, drive_size=2_000_000, chunk_size=256 * KiB).drives_needed
    enough = plan(src, drive_size=2_000_000, chunk_size=256 * KiB, drives=needed)
    short = plan(src, drive_size=2_000_000, chunk_size=256 * KiB, drives=needed - 1)
    assert enough.drives_suffice is True and short.drives_suffice is False
    # pack --drive wants the data to fit uncompressed before it starts: the plan says so, and pack does refuse.
    assert short.drives_given_accepted is False
    assert any("pack --drive refuses" in note for note in short.notes)
    drives = [tmp_path / f"usb{i}" for i in range(needed - 1)]
    for drive in drives:
        drive.mkdir()
    with pytest.raises(DestinationError, match="hold about"):
        pack(src, drives=[str(d) for d in drives], drive_size=2_000_000, options=PackOptions(256 * KiB))
    assert plan(src, drive_size=10**9, drives=1).drives_given_accepted is True


def test_rate_override(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a.bin", bytes(2_000_000))
    planned = plan(tmp_path / "src", drive_size=10**9, rate="1MB/s")
    assert not planned.pack_rate_measured
    assert planned.pack_seconds == pytest.approx(2.0)
    assert planned.pack_rate == pytest.approx(1_000_000)


# --- the command --------------------------------------------------------------------------------------------


@pytest.fixture
def src(tmp_path: Path) -> Path:
    rng = random.Random(3)
    write_file(tmp_path / "src" / "text.txt", b"hello sneakernet\n" * 50_000)
    write_file(tmp_path / "src" / "noise.bin", rng.randbytes(1_500_000))
    write_file(tmp_path / "src" / "sub" / "small.txt", b"small\n")
    os.symlink("text.txt", tmp_path / "src" / "link")
    return tmp_path / "src"


def test_plan_text(src: Path) -> None:
    code, out, err = run("plan", src, "--drive-size", "2MB", "--chunk-size", "256KiB", "--drives", "9")
    assert code == 0, err
    assert err == ""
    assert f"{src}: 3 files, 1 directory, 1 symlink, 0 hard links; 2.35 MB of data" in out
    assert re.search(r"^on drives: about [0-9.]+ (MB|KB) \(ratio 0\.\d+, from a sample of ", out, re.MULTILINE)
    assert re.search(r"^drives of 2 MB \(1.98 MB after the reserve\): \d needed, \d if nothing compressed$", out, re.M)
    assert re.search(r"^  drives? 1(-\d)?: \d+% full", out, re.MULTILINE)
    assert "  with 9 drives: enough" in out
    assert "2.35 MB: 0.2 s at 100 Mbit/s\n2.35 MB: 0.0 s at 1 Gbit/s\n2.35 MB: 0.0 s at 10 Gbit/s" in out
    assert re.search(
        r"^packing: [0-9.]+ s at [0-9.]+ [KMG]B/s \(estimated from the sample on \d+ threads?; ", out, re.M
    )


def test_plan_links_and_rate(src: Path) -> None:
    code, out, _ = run("plan", src, "--drive-size", "1GB", "--link", "1Mbps", "--link", "100KB/s", "--rate", "1MB/s")
    assert code == 0
    assert "2.35 MB: 19 s at 1 Mbit/s\n2.35 MB: 24 s at 100 kB/s\npacking: 2.4 s at 1 MB/s (at the --rate given)" in out
    assert "100 Mbit/s" not in out


def test_plan_not_enough_drives(src: Path) -> None:
    code, out, _ = run("plan", src, "--drive-size", "2MB", "--chunk-size", "256KiB", "--drives", "1")
    assert code == 0
    assert re.search(r"^  with 1 drive: not enough: about \d+ more needed$", out, re.MULTILINE)
    assert "note: pack --drive refuses 1 drive of 2 MB up front" in out


def test_plan_says_what_each_filesystem_leaves_of_a_labelled_drive(src: Path) -> None:
    # Measured with bench/drive_space.sh: an 8 TB ext4 drive has 7.54 TB available, a 100 GB one 92.8 GB.
    code, out, _ = run("plan", src, "--drive-size", "8TB")
    assert code == 0
    assert (
        "  a drive labelled 8 TB leaves about 7.54 TB on ext4 (7.94 TB with mkfs.ext4 -m 0), 7.94 TB on XFS, "
        "8 TB on NTFS, 8 TB on exFAT: give --drive-size what df -B1 shows on the formatted drive"
    ) in out.splitlines()
    code, out, _ = run("plan", src, "--drive-size", "100GB", "--json")
    room = json.loads(out)["filesystem_room"]
    assert room == {
        "ext4": 92_812_000_000, "ext4 -m 0": 97_812_000_000, "exFAT": 99_995_000_000, "NTFS": 99_929_000_000,
        "XFS": 99_202_000_000,
    }  # fmt: skip


def documented_fields() -> dict[str, list[str]]:
    """The fields docs/plan.md documents, per table: the top level, then each object's."""
    text = (ROOT / "docs" / "plan.md").read_text(encoding="utf-8")
    section = text.split("## `--json`", 1)[1]
    tables: dict[str, list[str]] = {}
    current = ""
    for line in section.splitlines():
        heading = re.match(r"^(?:Each|The) `([a-z_]+)`", line)
        if heading:
            current = heading.group(1)
        cell = re.match(r"^\| `([a-z_]+)` \|", line)
        if cell:
            tables.setdefault(current, []).append(cell.group(1))
    return tables


def test_plan_json_matches_docs(src: Path) -> None:
    code, out, _ = run("plan", src, "--drive-size", "2MB", "--chunk-size", "256KiB", "--drives", "2", "--json")
    assert code == 0
    report = json.loads(out)
    documented = documented_fields()
    assert sorted(report) == sorted(documented[""])
    assert sorted(report["sample"]) == sorted(documented["sample"])
    assert sorted(report["pack"]) == sorted(documented["pack"])
    assert all(sorted(d) == sorted(documented["drives"]) for d in report["drives"])
    assert all(sorted(link) == sorted(documented["links"]) for link in report["links"])
    assert (report["files"], report["dirs"], report["symlinks"], report["hardlinks"]) == (3, 1, 1, 0)
    assert report["data_bytes"] == 2_350_006 and report["drive_size"] == 2_000_000
    assert report["reserve"] == 20_000 and report["capacity"] == 1_980_000
    assert report["drives_needed"] == len(report["drives"]) >= 2
    assert [d["drive"] for d in report["drives"]] == list(range(1, report["drives_needed"] + 1))
    assert sum(d["raw_bytes"] for d in report["drives"]) == report["data_bytes"]
    assert sum(d["stored_bytes"] for d in report["drives"]) == report["stored_bytes"]
    assert all(0 < d["fill"] <= 1 and d["used_bytes"] <= 1_980_000 for d in report["drives"])
    assert report["drives_given"] == 2 and report["drives_suffice"] is (report["drives_needed"] <= 2)
    assert [link["link"] for link in report["links"]] == ["100 Mbit/s", "1 Gbit/s", "10 Gbit/s"]
    assert report["links"][1]["bits_per_second"] == 10**9 and report["links"][1]["bytes_per_second"] == 125 * 10**6
    assert report["links"][0]["seconds"] == pytest.approx(2_350_006 / 12_500_000, abs=0.1)
    assert report["pack"]["measured"] is True and report["pack"]["seconds"] >= 0
    assert 0 < report["sample"]["bytes"] <= 4 * MiB and report["ratio"] < 1


def test_plan_json_without_drives(src: Path) -> None:
    report = json.loads(run("plan", src, "--drive-size", "1GB", "--json")[1])
    assert report["drives_given"] is None and report["drives_suffice"] is None
    assert report["drives_given_accepted"] is None and report["notes"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "{missing}", "--drive-size", "1GB"], "does not exist: give the directory to pack"),
        (["plan", "{file}", "--drive-size", "1GB"], "is not a directory"),
        (["plan", "{src}", "--drive-size", "100KB"], "drive size too small"),
        (["plan", "{src}", "--drive-size", "600KB", "--chunk-size", "4MiB"], "drive size too small"),
        (["plan", "{src}"], "plan needs --drive-size"),
        (["plan", "{src}", "--drive-size", "1GB", "--link", "fast"], "cannot read rate 'fast'"),
        (["plan", "{src}", "--drive-size", "1GB", "--link", "1G"], "say bits or bytes per second"),
        (["plan", "{src}", "--drive-size", "1GB", "--rate", "0MB/s"], "is zero"),
        (["plan", "{src}", "--drive-size", "1GB", "--chunk-size", "1KiB"], "chunk size must be between"),
        (["plan", "{src}", "--drive-size", "1GB", "--segment-size", "1KiB"], "segment size must be at least"),
        (
            ["plan", "{src}", "--drive-size", "100TB", "--chunk-size", "64KiB", "--segment-size", "128KiB"],
            "segment size too small",
        ),
        (["plan", "{src}", "--drive-size", "1GB", "--config", "{missing}"], "does not exist: give the path"),
    ],
)
def test_plan_refusals(src: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "file").write_text("x")
    values = {"src": src, "missing": tmp_path / "missing", "file": tmp_path / "file"}
    code, out, err = run(*[a.format(**values) for a in args])
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sneakernet: error: ") and message in err, err


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"drive_size": None}, UsageError, "plan needs --drive-size"),
        ({"drive_size": 0}, UsageError, "drive size must be above zero"),
        ({"drive_size": 10**9, "drives": 0}, UsageError, "--drives must be at least 1"),
        ({"drive_size": 10**9, "level": 23}, UsageError, "zstd level"),
        ({"drive_size": 10**5}, DestinationError, "drive size too small"),
    ],
)
def test_plan_refusals_in_the_library(src: Path, kwargs: dict[str, int], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        plan(src, **kwargs)  # type: ignore[arg-type]


def test_plan_missing_source_in_the_library(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        plan(tmp_path / "missing", drive_size=10**9)
