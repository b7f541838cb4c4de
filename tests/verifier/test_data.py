"""verifier/data.py: the parts of the data pass that stand alone."""

from __future__ import annotations

import os
import threading
from typing import Any

from sneakernet.verifier.data import HashAhead


class Drive:
    """What HashAhead asks of a drive reader here: the drive's path (the hashing is the test's own)."""

    def __init__(self, path: str) -> None:
        self.path = path


def test_hashing_ahead_drops_a_drive_it_is_told_to_forget() -> None:
    started, release = threading.Event(), threading.Event()
    hashed: list[str] = []

    def slow(reader: Any, name: str, threads: int, advance: Any) -> str:
        hashed.append(os.path.join(reader.path, name))
        started.set()
        release.wait(10)
        return "digest"

    ahead = HashAhead(1, slow)
    try:
        for number in (1, 2, 3):
            ahead.add(Drive("d1"), f"segments/s00000{number}.seg")  # type: ignore[arg-type]
        ahead.add(Drive("d2"), "segments/s000001.seg")  # type: ignore[arg-type]
        assert started.wait(10)
        ahead.forget("d1")  # while its first segment is being hashed
        release.set()
        future = ahead.take("d2", "segments/s000001.seg")
        assert future is not None and future.result(10) == "digest"
        assert ahead.take("d1", "segments/s000002.seg") is None
    finally:
        release.set()
        ahead.close()
    assert hashed == [os.path.join("d1", "segments/s000001.seg"), os.path.join("d2", "segments/s000001.seg")]


def _segmented_drive(tmp_path: Any) -> Any:
    """One drive of ten segments, two 64 KiB chunks each (pack's own output)."""
    from sneakernet import PackOptions, pack

    source = tmp_path / "src"
    source.mkdir()
    for i in range(10):
        (source / f"f{i}.bin").write_bytes(os.urandom(100_000))
    options = PackOptions(chunk_size=64 * 1024, segment_size=140_000, reserve=0)
    pack(str(source), out=str(tmp_path / "out"), drive_size=10**8, options=options)
    return tmp_path / "out" / "drive-0001"


def test_each_segment_is_walked_frame_by_frame_right_after_it_is_hashed(tmp_path: Any, monkeypatch: Any) -> None:
    """The frames of a segment hashed whole are walked while its pages are in the page cache, before the next
    segment is hashed (walked after the last one, an 8 TB drive's would be read a second time), and its progress
    is saved once they are (a resumed run skips the segment: its frames must have been walked)."""
    from sneakernet.drive import DriveReader
    from sneakernet.verifier import StateDir, verify

    drive = _segmented_drive(tmp_path)
    events: list[tuple[str, str]] = []
    real_hash, real_frames = DriveReader.segment_blake3, DriveReader.frame_problem

    def hashing(reader: DriveReader, name: str, *args: Any) -> Any:
        events.append(("hash", name))
        return real_hash(reader, name, *args)

    def walking(reader: DriveReader, chunk: Any) -> Any:
        events.append(("frame", chunk.segment))
        return real_frames(reader, chunk)

    class Saves(StateDir):
        def save(self, state: Any) -> None:
            events.append(("saved", state.done_segments[-1]))
            super().save(state)

    monkeypatch.setattr(DriveReader, "segment_blake3", hashing)
    monkeypatch.setattr(DriveReader, "frame_problem", walking)
    # A 100% sample: the segments are hashed here, in order, not ahead on another thread.
    report = verify([str(drive)], sample_percent=100, state_dir=Saves(str(tmp_path / "state")))
    assert report.ok and report.drives[0].chunks_checked == 20
    segments = sorted({name for _, name in events})
    assert len(segments) == 10
    expected = [event for name in segments for event in [("hash", name), ("frame", name), ("frame", name)]]
    assert [e for e in events if e[0] != "saved"] == expected
    for name in segments:  # saved after its two chunks were walked, before the next segment is hashed
        saved = events.index(("saved", name))
        assert events[saved - 2 : saved] == [("frame", name), ("frame", name)]
