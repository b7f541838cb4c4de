"""Rebuilding lost data from parity (docs/format.md 19.7.6), the core: the pure stripe arithmetic of parity/rebuild.py,
the stored stream of drive/stream.py, and drive/parity/rebuilder.py's chunks rebuilt and checked, against drives and
parity made here (segment files of random bytes, chunks cut over them, parity computed with parity.engine), so that any
m lost drives are rebuilt, m + 1 are not, and a damaged or hostile parity drive never gives a wrong byte."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.drive.parity.chunkindex import ChunkIndex, stream_chunks
from sneakernet.drive.parity.rebuilder import Column, Rebuilder, Row, read
from sneakernet.drive.stream import StoredStream
from sneakernet.errors import FormatError
from sneakernet.format import ChunkRecord, ManifestRecord, SegmentRecord
from sneakernet.parity import mend
from sneakernet.parity.engine import ParityCode, installed_backends
from sneakernet.parity.layout import stripes_of
from sneakernet.parity.mend import WINDOW, Suspect, differences, resolve, search
from sneakernet.parity.rebuild import Group, StripeLoss, matches, stripe_loss, take_range, unrecoverable_stripes

if not installed_backends():
    pytest.skip("no parity engine installed (the parity or parity-numpy extra)", allow_module_level=True)

B = 64 << 10  # the smallest block 19.7.2 allows: many stripes from little data


# --- the pure arithmetic ---------------------------------------------------------------------------------------


def test_a_lost_column_past_its_end_is_known_zeros() -> None:
    group = Group(m=1, block_size=B, stored=(3 * B, B + 1, 0))
    assert group.stripes == 3
    assert group.lost_in(0, {1, 2}) == (1,)
    assert group.lost_in(1, {1, 2}) == (1,)  # one byte of column 1 reaches stripe 1
    assert group.lost_in(2, {1, 2}) == ()
    assert stripe_loss(group, 2, {0, 1}).columns == (0,)


def test_unrecoverable_stripes_are_those_where_more_lost_columns_reach_than_rows_survive() -> None:
    group = Group(m=2, block_size=B, stored=(10 * B, 7 * B, 4 * B + 5, 2 * B, 9 * B))
    assert unrecoverable_stripes(group, {1, 2}) == range(0)  # two lost, two rows
    assert unrecoverable_stripes(group, {1, 2, 3}) == range(2)  # all three reach stripes 0, 1; two reach 2 ... 4
    assert unrecoverable_stripes(group, {1, 2, 3}, {0}) == range(5)  # one row left: column 2 reaches stripe 4
    assert unrecoverable_stripes(group, {1, 2, 3}, {0, 1}) == range(7)
    # Counted the slow way, stripe by stripe, for every pattern of this group.
    for lost in range(1 << 5):
        columns = {c for c in range(5) if lost >> c & 1}
        for rows_lost in ({0}, set(), {0, 1}):
            slow = [s for s in range(group.stripes) if not stripe_loss(group, s, columns, rows_lost).recoverable]
            assert list(unrecoverable_stripes(group, columns, rows_lost)) == slow


def test_row_choices_begin_with_the_lowest_rows() -> None:
    assert list(StripeLoss(0, (4,), (0, 2, 3)).row_choices()) == [(0,), (2,), (3,)]
    assert next(StripeLoss(0, (1, 4), (0, 2, 3)).row_choices()) == (0, 2)
    assert list(StripeLoss(0, (1, 4), (3,)).row_choices()) == []
    assert list(StripeLoss(0, (), (0,)).row_choices()) == [()]


def test_take_range_crosses_stripes() -> None:
    blocks = {s: bytes([s]) * B for s in range(3)}
    assert take_range(B - 2, B + 4, B, blocks) == b"\0\0" + b"\1" * B + b"\2\2"
    assert matches(b"abc", 3, blake3.blake3(b"abc").hexdigest())
    assert not matches(b"abc", 4, blake3.blake3(b"abc").hexdigest())


# --- drives made here -------------------------------------------------------------------------------------------


@dataclass
class Drive:
    root: Path
    records: list[ManifestRecord]
    stream: bytes

    def chunks(self) -> list[ChunkRecord]:
        return [r for r in self.records if isinstance(r, ChunkRecord)]

    def opened(self) -> StoredStream:
        segments = [r for r in self.records if isinstance(r, SegmentRecord)]
        return StoredStream(str(self.root), self.root.name, segments)


def make_drive(root: Path, size: int, rng: random.Random, segment_size: int = 5 * B // 2) -> Drive:
    """A data drive's segments of random bytes, cut into chunks of random sizes (up to a block and a half: a chunk
    spans two or three stripes) with their records, as a manifest lists them."""
    (root / "segments").mkdir(parents=True)
    stream = rng.randbytes(size)
    records: list[ManifestRecord] = []
    position, chunk_id, number = 0, 0, 1
    while position < size:
        name = f"segments/s{number:06d}.seg"
        end = min(size, position + segment_size)
        data = stream[position:end]
        (root / name).write_bytes(data)
        offset = 0
        while offset < len(data):
            length = min(len(data) - offset, rng.randint(1, 3 * B // 2))
            stored = data[offset : offset + length]
            digest = blake3.blake3(stored).hexdigest()
            records.append(ChunkRecord(chunk_id, name, offset, length, length, "store", digest, digest))
            chunk_id, offset = chunk_id + 1, offset + length
        records.append(SegmentRecord(name, len(data), blake3.blake3(data).hexdigest(), 0))
        position, number = end, number + 1
    return Drive(root, records, stream)


def make_parity(root: Path, drives: list[Drive], m: int) -> tuple[list[Drive], list[list[str]]]:
    """The m parity drives over ``drives`` (one segment each, stripe after stripe) and their pblock hashes."""
    group = Group(m=m, block_size=B, stored=tuple(len(d.stream) for d in drives))
    code = ParityCode(group.k, m)
    rows: list[bytearray] = [bytearray() for _ in range(m)]
    for stripe in range(group.stripes):
        blocks = [read(d.opened(), stripe * B, B) for d in drives]
        for row, block in zip(rows, code.encode(blocks), strict=True):
            row += block
    parity, hashes = [], []
    for j, data in enumerate(rows):
        drive_root = root / f"parity-{j + 1:04d}"
        (drive_root / "segments").mkdir(parents=True)
        (drive_root / "segments/s000001.seg").write_bytes(data)
        record = SegmentRecord("segments/s000001.seg", len(data), blake3.blake3(data).hexdigest(), 0)
        parity.append(Drive(drive_root, [record], bytes(data)))
        hashes.append([blake3.blake3(data[s * B : (s + 1) * B]).hexdigest() for s in range(group.stripes)])
    return parity, hashes


def shipment(tmp_path: Path, sizes: list[int], m: int, seed: int) -> tuple[list[Drive], list[Drive], list[list[str]]]:
    rng = random.Random(seed)
    drives = [make_drive(tmp_path / f"drive-{c + 1:04d}", size, rng) for c, size in enumerate(sizes)]
    parity, hashes = make_parity(tmp_path, drives, m)
    return drives, parity, hashes


def rebuilder(
    drives: list[Drive],
    parity: list[Drive],
    hashes: list[list[str]],
    lost: set[int],
    lost_rows: frozenset[int] = frozenset(),
) -> Rebuilder:
    group = Group(m=len(parity), block_size=B, stored=tuple(len(d.stream) for d in drives))
    columns = [
        Column(None) if c in lost else Column(d.opened(), ChunkIndex(lambda d=d: iter(d.records)))
        for c, d in enumerate(drives)
    ]
    rows = [Row(None) if j in lost_rows else Row(p.opened(), hashes[j].__getitem__) for j, p in enumerate(parity)]
    return Rebuilder(group, ParityCode(group.k, group.m), columns, rows)


def rebuild_all(rebuild: Rebuilder, drive: Drive, column: int) -> list[bytes | None]:
    found = []
    for placed in stream_chunks(drive.records):
        chunk = placed.chunk
        found.append(rebuild.stored(column, placed.offset, chunk.stored_size, chunk.stored_blake3))
    return found


def stored_of(drive: Drive) -> list[bytes]:
    return [bytes(drive.stream[p.offset : p.end]) for p in stream_chunks(drive.records)]


# --- where chunks lie ------------------------------------------------------------------------------------------


def test_the_chunk_index_walks_forward_and_starts_again_when_asked_back(tmp_path: Path) -> None:
    drive = make_drive(tmp_path / "d", 8 * B, random.Random(3))
    calls = []

    def records() -> list[ManifestRecord]:
        calls.append(1)
        return drive.records

    index = ChunkIndex(records)
    everything = list(stream_chunks(drive.records))
    for start, end in [(0, B), (B, 2 * B), (3 * B + 7, 3 * B + 8), (7 * B, 9 * B), (2 * B, 3 * B)]:
        assert index.overlapping(start, end) == [c for c in everything if c.offset < end and c.end > start]
    assert len(calls) == 2  # once forward, once more for the range asked after a later one


def test_a_chunk_out_of_its_segment_order_is_refused() -> None:
    chunk = ChunkRecord(0, "segments/s000002.seg", 0, 1, 1, "store", "0" * 64, "0" * 64)
    first = ChunkRecord(1, "segments/s000001.seg", 0, 1, 1, "store", "0" * 64, "0" * 64)
    with pytest.raises(FormatError, match="before"):
        list(stream_chunks([first, chunk]))


# --- rebuilding -------------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    k=st.integers(1, 6),
    m=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_any_m_lost_data_drives_are_rebuilt_chunk_by_chunk(
    tmp_path_factory: pytest.TempPathFactory, k: int, m: int, seed: int, data: st.DataObject
) -> None:
    rng = random.Random(seed)
    sizes = [rng.randint(0, 7 * B) for _ in range(k)]
    drives, parity, hashes = shipment(tmp_path_factory.mktemp("ship"), sizes, m, seed)
    lost_count = data.draw(st.integers(1, min(m, k)))
    lost = set(data.draw(st.permutations(range(k)))[:lost_count])
    # Rows lost as well, as many as the lost columns leave spare: any m of the k + m drives.
    lost_rows = frozenset(data.draw(st.permutations(range(m)))[: m - lost_count])
    rebuild = rebuilder(drives, parity, hashes, lost, lost_rows)
    for column in sorted(lost):
        assert rebuild_all(rebuild, drives[column], column) == stored_of(drives[column])
    assert rebuild.retried == 0


def test_one_more_loss_than_rows_gives_nothing_where_too_many_drives_reach(tmp_path: Path) -> None:
    drives, parity, hashes = shipment(tmp_path, [6 * B, 3 * B, 5 * B], 1, seed=4)
    rebuild = rebuilder(drives, parity, hashes, lost={1, 2})
    group = rebuild.group
    for column in (1, 2):
        for placed, found in zip(
            stream_chunks(drives[column].records), rebuild_all(rebuild, drives[column], column), strict=True
        ):
            lost_stripes = unrecoverable_stripes(group, {1, 2})
            beyond = all(s not in lost_stripes for s in stripes_of(placed.offset, placed.chunk.stored_size, B))
            # Column 1 ends at stripe 3: past it only column 2 is lost, and one row rebuilds it.
            assert (found is not None) == beyond
            if found is not None:
                assert found == drives[column].stream[placed.offset : placed.end]


def test_a_damaged_surviving_drive_is_found_and_a_spare_row_rebuilds_past_it(tmp_path: Path) -> None:
    drives, parity, hashes = shipment(tmp_path, [5 * B, 5 * B, 4 * B, 5 * B], 2, seed=5)
    victim = drives[2].chunks()[1]
    path = drives[2].root / victim.segment
    data = bytearray(path.read_bytes())
    data[victim.offset] ^= 0x40
    path.write_bytes(data)
    rebuild = rebuilder(drives, parity, hashes, lost={0})
    assert rebuild_all(rebuild, drives[0], 0) == stored_of(drives[0])
    assert rebuild.retried > 0
    # And the damaged chunk of the present drive (repair) comes back from the others.
    placed = next(p for p in stream_chunks(drives[2].records) if p.chunk == victim)
    assert rebuild.stored(2, placed.offset, victim.stored_size, victim.stored_blake3) == bytes(
        drives[2].stream[placed.offset : placed.end]
    )


def test_a_damaged_parity_block_counts_as_lost_when_its_pblock_hash_fails(tmp_path: Path) -> None:
    drives, parity, hashes = shipment(tmp_path, [5 * B, 5 * B, 5 * B], 2, seed=6)
    path = parity[0].root / "segments/s000001.seg"
    data = bytearray(path.read_bytes())
    for stripe in range(5):
        data[stripe * B + 100] ^= 1
    path.write_bytes(data)
    rebuild = rebuilder(drives, parity, hashes, lost={1})
    assert rebuild_all(rebuild, drives[1], 1) == stored_of(drives[1])


def test_a_hostile_parity_drive_never_gives_a_wrong_byte(tmp_path: Path) -> None:
    """Wrong parity bytes whose pblock hashes match them: with no other row, every rebuilt chunk is refused; with a
    second, honest row, the rebuild finds the right bytes through it."""
    drives, parity, hashes = shipment(tmp_path, [4 * B, 4 * B, 3 * B], 2, seed=7)
    path = parity[0].root / "segments/s000001.seg"
    forged = bytearray(path.read_bytes())
    forged[B : 2 * B] = random.Random(8).randbytes(B)
    path.write_bytes(forged)
    hashes[0] = [blake3.blake3(forged[s * B : (s + 1) * B]).hexdigest() for s in range(4)]
    truth = stored_of(drives[1])

    alone = rebuild_all(rebuilder(drives, parity, hashes, lost={1}, lost_rows=frozenset({1})), drives[1], 1)
    for placed, found in zip(stream_chunks(drives[1].records), alone, strict=True):
        in_forged_stripe = placed.offset < 2 * B and placed.end > B
        assert found is None if in_forged_stripe else found == drives[1].stream[placed.offset : placed.end]
    assert any(found is None for found in alone)

    assert rebuild_all(rebuilder(drives, parity, hashes, lost={1}), drives[1], 1) == truth


def test_a_lost_drive_beside_an_unreadable_one_is_not_rebuilt_from_guesses(tmp_path: Path) -> None:
    drives, parity, hashes = shipment(tmp_path, [3 * B, 3 * B], 1, seed=9)
    os.remove(drives[1].root / "segments/s000002.seg")
    rebuild = rebuilder(drives, parity, hashes, lost={0})
    found = rebuild_all(rebuild, drives[0], 0)
    for placed, got in zip(stream_chunks(drives[0].records), found, strict=True):
        # Drive 2's second segment holds stream bytes 2.5 B ... 3 B: the stripe over them cannot be solved.
        if placed.end > 2 * B:
            assert got is None
        else:
            assert got == drives[0].stream[placed.offset : placed.end]


def flip_at(drive: Drive, offset: int) -> None:
    """Flip a bit of the byte at stream offset ``offset`` of ``drive``, in its segment file."""
    for placed in stream_chunks(drive.records):
        if placed.offset <= offset < placed.end:
            path = drive.root / placed.chunk.segment
            data = bytearray(path.read_bytes())
            data[placed.chunk.offset + offset - placed.offset] ^= 0x10
            path.write_bytes(data)
            return
    raise AssertionError(f"no chunk over byte {offset}")


def test_a_damaged_chunk_over_two_stripes_is_taken_as_it_reads_where_its_damage_is_not(tmp_path: Path) -> None:
    """Column 1's chunk over stripes 0 and 1 is damaged in stripe 1, column 2 in stripe 0, column 0 lost, 2 rows:
    19.7.6 counts 3 columns lost in stripe 0, more than the rows rebuild; taking column 1 as it reads there (its
    stripe-0 bytes are right) rebuilds column 0, and the hash says so."""
    for seed in range(10, 60):
        drives, parity, hashes = shipment(tmp_path / str(seed), [4 * B, 4 * B, 4 * B, 4 * B], 2, seed)
        spanning = [p for p in stream_chunks(drives[1].records) if p.offset < B < p.end]
        if spanning and spanning[0].end > B + 1:
            break
    flip_at(drives[1], spanning[0].end - 1)  # in stripe 1
    flip_at(drives[2], 10)  # in stripe 0
    rebuild = rebuilder(drives, parity, hashes, lost={0})
    assert rebuild_all(rebuild, drives[0], 0) == stored_of(drives[0])


# --- a present drive's chunk mended byte by byte (parity/mend.py) ----------------------------------------------


def test_differences_finds_every_differing_byte_across_windows() -> None:
    a = bytes(3 * WINDOW + 5)
    b = bytearray(a)
    for position in (0, WINDOW - 1, WINDOW, 3 * WINDOW + 4):
        b[position] = 7
    assert differences(a, b) == [0, WINDOW - 1, WINDOW, 3 * WINDOW + 4]
    assert differences(a, a) == []


def test_search_finds_the_one_choice_that_gives_the_hash_and_only_it() -> None:
    rng = random.Random(3)
    right = bytearray(rng.randbytes(5000))
    positions = sorted(rng.sample(range(100, 5100), 10))
    fixes = {p: right[p - 100] ^ 0x40 for p in positions}
    damaged = bytearray(right)
    mine = positions[1::3]
    for p in mine:  # the suspect's own wrong bytes: parity's byte is the right one there
        damaged[p - 100] ^= 0x11
        fixes[p] = right[p - 100]
    digest = blake3.blake3(right).hexdigest()
    assert search(damaged, 100, positions, fixes, digest) == right
    assert search(damaged, 100, [p for p in positions if p != mine[0]], fixes, digest) is None
    assert search(right, 100, [], {}, digest) == right


def test_resolve_settles_the_suspects_with_fewest_undecided_first_and_passes_what_they_learn_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunk A (stream bytes 0-19) has its damage at 2 and 12; chunks B (0-5) and C (10-19) of other drives at 4
    and 14. Parity points at all four; each is A's or another's. A has four undecided positions, past what is
    tried (two, here); B two: settled first, it gives 4 to B and 2 to A alone, and A's choices are few enough."""
    monkeypatch.setattr(mend, "MAX_UNDECIDED", 2)
    rng = random.Random(7)
    right = {"A": rng.randbytes(20), "B": rng.randbytes(6), "C": rng.randbytes(10)}
    start = {"A": 0, "B": 0, "C": 10}
    errors = {"A": [2, 12], "B": [4], "C": [14]}
    read_as = {key: bytearray(data) for key, data in right.items()}
    for key, positions in errors.items():
        for p in positions:
            read_as[key][p - start[key]] ^= 0x21
    suspects = []
    for key, data in right.items():
        over = [p for p in (2, 4, 12, 14) if start[key] <= p < start[key] + len(data)]
        fixes = {p: data[p - start[key]] if p in errors[key] else read_as[key][p - start[key]] ^ 0x5A for p in over}
        suspects.append(Suspect(key, start[key], len(data), fixes))
    tried: list[str] = []

    def reading(suspect: Suspect[str]) -> bytearray:
        tried.append(suspect.key)
        return bytearray(read_as[suspect.key])

    def digest(suspect: Suspect[str]) -> str:
        return blake3.blake3(right[suspect.key]).hexdigest()

    assert resolve(suspects, "A", reading, digest) == right["A"]
    assert tried[0] == "B" and tried[-1] == "A"  # A's four undecided were too many before B was settled
    # Nothing settles a suspect that no choice makes right (a true overlap): None, never a guess.
    alone = [Suspect("A", 0, 20, {2: 0})]
    assert resolve(alone, "A", lambda s: bytearray(read_as["A"]), digest) is None


def existing_bytes(drive: Drive, chunk: ChunkRecord) -> bytes:
    with open(drive.root / chunk.segment, "rb") as handle:
        return os.pread(handle.fileno(), chunk.stored_size, chunk.offset)


def spanning_chunk(drive: Drive, stripe: int) -> tuple[int, ChunkRecord]:
    """A chunk of ``drive`` with bytes in ``stripe`` and the next one: its stream offset and record."""
    placed = next(p for p in stream_chunks(drive.records) if p.offset < (stripe + 1) * B < p.end - 1)
    return placed.offset, placed.chunk


@pytest.mark.parametrize("seed", [31, 32])
def test_a_repaired_chunk_and_another_drive_damaged_in_its_stripe_are_told_apart_byte_by_byte(
    tmp_path: Path, seed: int
) -> None:
    """One parity row; drive 1's chunk and drive 2's chunks flipped in the same stripes, at other bytes, and drive 2
    flipped all over the next stripe too: counting drive 2 lost there is two losses for one row, taking it as it
    reads rebuilds wrong bytes; mended where parity points, with the forced bytes and the right choice of the
    ambiguous ones, the chunk comes back."""
    drives, parity, hashes = shipment(tmp_path, [4 * B, 4 * B, 4 * B], 1, seed)
    offset, chunk = spanning_chunk(drives[0], 1)
    flip_at(drives[0], offset + 3)
    flip_at(drives[0], offset + chunk.stored_size - 2)  # in the next stripe
    for at in (offset + 7, B + 11):
        flip_at(drives[1], at)  # beside drive 1's flips, in its stripes
    for at in range(2 * B + 5, 3 * B, B // 20):
        flip_at(drives[1], at)  # 20 flips in the next stripe, past what is tried byte by byte
    right = drives[0].stream[offset : offset + chunk.stored_size]
    assert existing_bytes(drives[0], chunk) != right
    # Drive 1 read as lost (as restore reads a missing drive): chunk by chunk it is two losses for one row.
    assert rebuilder(drives, parity, hashes, lost={0}).stored(0, offset, chunk.stored_size, chunk.stored_blake3) is None
    rebuild = rebuilder(drives, parity, hashes, lost=set())  # present, as repair reads it
    assert rebuild.stored(0, offset, chunk.stored_size, chunk.stored_blake3) == right
    assert rebuild.mended == 1


def test_flips_at_the_same_byte_of_two_drives_are_a_true_overlap_never_a_wrong_byte(tmp_path: Path) -> None:
    drives, parity, hashes = shipment(tmp_path, [4 * B, 4 * B, 4 * B], 1, seed=33)
    offset, chunk = spanning_chunk(drives[0], 1)
    for drive in drives[:2]:
        flip_at(drive, offset + 3)
    rebuild = rebuilder(drives, parity, hashes, lost=set())
    assert rebuild.stored(0, offset, chunk.stored_size, chunk.stored_blake3) is None
