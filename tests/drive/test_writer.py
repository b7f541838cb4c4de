"""drive/writer.py through a store that fails (tests/fakestore.py), and drive/reader.py's UnfinishedManifest: what
a resumed pack may keep of a flushed ``.partial`` manifest, whatever byte the crash cut it at."""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
from pathlib import Path

import blake3
import pytest

from fakestore import FaultyStore
from sneakernet.chunks.codec import ChunkCodec
from sneakernet.chunks.stream import EncodedChunk
from sneakernet.drive import DriveReader, DriveWriter, UnfinishedManifest
from sneakernet.errors import DestinationError, OutOfSpace, UnfinishedDrive
from sneakernet.format import (
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    ChunkRecord,
    DirRecord,
    ManifestHeader,
    ManifestRecord,
    Metadata,
    SegmentRecord,
)
from sneakernet.format.container import RecordWriter
from sneakernet.io.store import DriveStore, LocalStore

HEADER = ManifestHeader("a" * 32, 1, "2026-12-03T17:00:00Z", 4096, 3 * 4096, "sneakernet test", level=3)
CHUNKS = 10
#: A new segment every this many chunks: 4 segments for CHUNKS.
PER_SEGMENT = 3


def encoded(number: int) -> EncodedChunk:
    raw = random.Random(number).randbytes(4096) if number % 2 else bytes([number]) * 4096
    method, stored = ChunkCodec(3).encode(raw)
    return EncodedChunk(
        number, stored, method, len(raw), blake3.blake3(stored).hexdigest(), blake3.blake3(raw).hexdigest()
    )


def write_drive(store: DriveStore, finish: bool = True) -> tuple[DriveWriter, list[ManifestRecord], list[int]]:
    """A drive of CHUNKS chunks in segments of PER_SEGMENT, a dir record after each chunk; returns the writer, the
    records after the header in the order written, and the size of the manifest's .partial after each segment."""
    writer = DriveWriter(store, "drive-0001", HEADER, HEADER.segment_size)
    records: list[ManifestRecord] = []
    flushed: list[int] = []
    partial = os.path.join(store.path, MANIFEST_NAME + PARTIAL_SUFFIX)
    try:
        for number in range(CHUNKS):
            closing = number > 0 and number % PER_SEGMENT == 0
            records.append(writer.add_chunk(encoded(number), new_segment=closing))
            if closing:
                records.insert(-1, writer.segments[-1])  # the closed segment's record came before the new chunk's
                flushed.append(os.path.getsize(partial))
            record = DirRecord(f"d{number}".encode(), Metadata(0o755, 0, 0, 0))
            writer.add_record(record)
            records.append(record)
        if finish:
            writer.finish()
            records.append(writer.segments[-1])
    except BaseException:
        writer.abort()  # as pack does: the files stay behind under their .partial names
        raise
    return writer, records, flushed


def final_files(drive: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(drive)): path.read_bytes()
        for path in drive.rglob("*")
        if path.is_file() and not path.name.endswith(PARTIAL_SUFFIX)
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], int]:
    """The files of the drive written without a fault, and how many writes it took."""
    drive = tmp_path_factory.mktemp("clean") / "drive"
    store = FaultyStore(drive)
    write_drive(store)
    assert DriveReader(str(drive)).label.segments == 4
    return final_files(drive), store.writes


def test_a_write_failing_at_any_point_leaves_the_drive_unfinished_and_no_wrong_byte(
    tmp_path: Path, clean: tuple[dict[str, bytes], int]
) -> None:
    files, writes = clean
    assert writes > CHUNKS
    for failing in range(1, writes + 1):
        drive = tmp_path / f"fail-{failing}"
        with pytest.raises(DestinationError, match=rf"cannot .* on drive-0001 \({re.escape(str(drive))}\)"):
            write_drive(FaultyStore(drive, fail_write=failing))
        assert not (drive / DRIVE_LABEL_NAME).exists()
        with pytest.raises(UnfinishedDrive):
            DriveReader(str(drive))
        for name, data in final_files(drive).items():  # what is under a final name is what a clean run wrote
            assert data == files[name], (failing, name)


def test_a_full_drive_is_out_of_space_and_unfinished(tmp_path: Path, clean: tuple[dict[str, bytes], int]) -> None:
    total = sum(len(data) for data in clean[0].values())  # every byte the clean run wrote
    for full_after in (0, total // 4, total // 2, total - 1):
        drive = tmp_path / f"full-{full_after}"
        with pytest.raises(OutOfSpace, match=r"drive-0001 .* is full after .*--resume"):
            write_drive(FaultyStore(drive, full_after=full_after))
        assert not (drive / DRIVE_LABEL_NAME).exists()


def test_a_failing_fsync_stops_the_drive_before_anything_is_under_a_final_name(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    with pytest.raises(DestinationError, match="cannot write a segment on drive-0001"):
        write_drive(FaultyStore(drive, fail_sync=True))
    assert final_files(drive) == {}


# --- the flushed .partial manifest (format.md 19.10) --------------------------------------------------------------


def test_an_unfinished_manifest_keeps_the_complete_segments_whatever_byte_it_was_cut_at(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    writer, records, flushed = write_drive(LocalStore(drive), finish=False)
    writer.abort()
    partial = drive / (MANIFEST_NAME + PARTIAL_SUFFIX)
    data = partial.read_bytes()
    assert len(flushed) == 3 and flushed[-1] == len(data)  # nothing since the last segment's flush reached the file
    # Segment n's record, and so every record before it, is durable once the file has flushed[n] bytes.
    ends = [index + 1 for index, record in enumerate(records) if isinstance(record, SegmentRecord)]
    kept_before = 0
    for cut in range(len(data) + 1):
        partial.write_bytes(data[:cut])
        found = UnfinishedManifest.open(LocalStore(drive))
        expected = max([end for end, size in zip(ends, flushed, strict=True) if size <= cut], default=0)
        if not expected:
            assert found is None, cut
            continue
        assert found is not None, cut
        assert found.header == HEADER and found.kept == expected and found.kept >= kept_before
        kept = list(found.records())
        assert kept == records[:expected] and isinstance(kept[-1], SegmentRecord), cut
        assert found.segments == sum(isinstance(record, SegmentRecord) for record in kept)
        kept_before = found.kept
    # Every chunk kept lies in a segment renamed to its final name, as its record says.
    for record in records[: ends[-1]]:
        if isinstance(record, ChunkRecord):
            stored = (drive / record.segment).read_bytes()[record.offset : record.offset + record.stored_size]
            assert blake3.blake3(stored).hexdigest() == record.stored_blake3


def test_an_unfinished_manifest_damaged_after_a_segment_keeps_what_came_before(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    writer, records, flushed = write_drive(LocalStore(drive), finish=False)
    writer.abort()
    partial = drive / (MANIFEST_NAME + PARTIAL_SUFFIX)
    data = bytearray(partial.read_bytes())
    data[flushed[1] + 2 :] = os.urandom(len(data) - flushed[1] - 2)  # noise after the second segment's flush
    partial.write_bytes(bytes(data))
    found = UnfinishedManifest.open(LocalStore(drive))
    assert found is not None and found.segments == 2
    assert list(found.records())[-1] == records[[i for i, r in enumerate(records) if isinstance(r, SegmentRecord)][1]]


def test_nothing_to_keep_without_a_partial_manifest_or_a_segment(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    assert UnfinishedManifest.open(LocalStore(tmp_path / "nothing")) is None
    writer = DriveWriter(LocalStore(drive), "drive-0001", HEADER, HEADER.segment_size)
    writer.add_chunk(encoded(0), new_segment=False)
    writer.abort()
    assert UnfinishedManifest.open(LocalStore(drive)) is None  # one chunk, its segment never closed


def test_a_manifest_finished_but_not_renamed_keeps_every_segment(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    _, records, _ = write_drive(LocalStore(drive))
    shutil.copy(drive / MANIFEST_NAME, drive / (MANIFEST_NAME + PARTIAL_SUFFIX))
    found = UnfinishedManifest.open(LocalStore(drive))
    assert found is not None and found.segments == 4
    assert isinstance(records[-1], SegmentRecord) and list(found.records()) == records


@pytest.mark.parametrize("lie", ["offset", "segment of a chunk", "size", "chunks"])
def test_an_unfinished_manifest_stops_at_a_segment_its_chunks_do_not_add_up_to(tmp_path: Path, lie: str) -> None:
    """Records that read but are not what the writer wrote (a changed byte in a raw zstd block stays valid JSON)
    end what is kept, at the segment before them."""
    drive = tmp_path / "drive"
    writer, records, _ = write_drive(LocalStore(drive))
    segments = [i for i, record in enumerate(records) if isinstance(record, SegmentRecord)]
    third = records[segments[1] + 1 : segments[2] + 1]  # the third segment's records, its segment record last
    chunk = next(i for i, record in enumerate(third) if isinstance(record, ChunkRecord))
    if lie == "offset":
        third[chunk] = dataclasses.replace(third[chunk], offset=third[chunk].offset + 1)
    elif lie == "segment of a chunk":
        third[chunk] = dataclasses.replace(third[chunk], segment="segments/s000004.seg")
    elif lie == "size":
        third[-1] = dataclasses.replace(third[-1], size=third[-1].size - 1)
    else:
        third[-1] = dataclasses.replace(third[-1], chunks=third[-1].chunks + 1)
    store = LocalStore(drive)
    target = store.create(MANIFEST_NAME)
    lines = RecordWriter(target)
    for record in [HEADER, *records[: segments[1] + 1], *third, *records[segments[2] + 1 :]]:
        lines.write(record.to_json())
    lines.flush()
    target.sync()
    target.abort()
    found = UnfinishedManifest.open(store)
    assert found is not None and found.segments == 2 and list(found.records()) == records[: segments[1] + 1]
    assert writer.segments[2].name == "segments/s000003.seg"  # the lie was in the third segment
