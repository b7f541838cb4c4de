"""io/source.py: the local source pack reads through (open without following symlinks, whole reads, re-stat)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sneakernet import PackOptions, pack
from sneakernet.io.source import LocalFile, LocalSource


def test_a_local_file_reads_whole_and_stats_again(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"0123456789")
    source = LocalSource(tmp_path)
    file = source.open(b"a.bin")
    try:
        before = file.stat()
        assert file.read_at(8, 5) == b"89"
        assert file.read(4) == b"0123"  # read_at left the position where it was
        assert file.read(before.st_size + 1, before.st_size) == b"456789"
        assert file.read(1) == b""
        (tmp_path / "a.bin").write_bytes(b"longer than before")
        assert file.stat().st_size != before.st_size
    finally:
        file.close()


def test_a_short_read_is_followed_up() -> None:
    """A pipe hands over what was written so far: the read asks again until it has the size or the end."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"abc")
    file = LocalFile(read_end)  # the pipe stands in for a file on a network filesystem
    rest = threading.Timer(0.1, lambda: (os.write(write_end, b"defgh"), os.close(write_end)))
    rest.start()
    try:
        assert file.read(8) == b"abcdefgh"
    finally:
        rest.join()
        file.close()


def test_a_symlink_is_never_opened_through(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    source = LocalSource(tmp_path)
    with pytest.raises(OSError):
        source.open(b"link")
    assert source.readlink(b"link") == os.fsencode(tmp_path / "target")
    assert source.is_file(b"target") and not source.is_file(b"missing")


def test_pack_takes_a_source(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    summary = pack(LocalSource(tmp_path / "src"), out=str(tmp_path / "out"), drive_size=10**7,
                   options=PackOptions(reserve=0))  # fmt: skip
    assert summary.files == 1 and summary.raw_bytes == 1
