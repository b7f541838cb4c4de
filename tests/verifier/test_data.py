"""verifier/data.py: the parts of the data pass that stand alone."""

from __future__ import annotations

import os
import threading
from typing import Any

from sneakernet.verifier.data import HashAhead


def test_hashing_ahead_drops_a_drive_it_is_told_to_forget() -> None:
    started, release = threading.Event(), threading.Event()
    hashed: list[str] = []

    def slow(path: str, threads: int, advance: Any) -> str:
        hashed.append(path)
        started.set()
        release.wait(10)
        return "digest"

    ahead = HashAhead(1, slow)
    try:
        for number in (1, 2, 3):
            ahead.add("d1", f"segments/s00000{number}.seg")
        ahead.add("d2", "segments/s000001.seg")
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
