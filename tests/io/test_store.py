"""io/store.py: a drive's directory as a store (LocalStore), and the faulty store the fault tests inject through."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakestore import FaultyStore
from sneakernet.io.store import LocalStore


def test_a_file_is_under_its_final_name_only_once_committed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "data").write_bytes(b"what was there")
    target = store.create("data")
    target.write(b"new ")
    target.write(memoryview(b"bytes"))
    target.sync()
    assert (tmp_path / "data").read_bytes() == b"what was there"
    assert (tmp_path / "data.partial").read_bytes() == b"new bytes" and target.size == 9
    target.commit()
    assert (tmp_path / "data").read_bytes() == b"new bytes"
    assert not (tmp_path / "data.partial").exists()


def test_an_aborted_file_stays_a_partial_and_the_final_name_is_untouched(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.make_dir("segments")
    target = store.create("segments/s000001.seg")
    target.write(b"half")
    target.abort()
    target.abort()  # never raises, even twice
    assert (tmp_path / "segments" / "s000001.seg.partial").read_bytes() == b"half"
    assert not (tmp_path / "segments" / "s000001.seg").exists()


def test_create_replaces_a_stale_partial_and_never_writes_through_a_symlink(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "old.partial").write_bytes(b"left by a killed run")
    target = store.create("old")
    target.write(b"fresh")
    target.commit()
    assert (tmp_path / "old").read_bytes() == b"fresh"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "planted.partial")
    store.write_atomic("planted", [b"x"])
    assert victim.read_bytes() == b"precious" and (tmp_path / "planted").read_bytes() == b"x"


def test_reopen_cuts_a_partial_to_what_is_kept_and_goes_on_after_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "s.partial").write_bytes(b"kept|torn tail")
    target = store.reopen("s", 5)
    assert target.size == 5
    target.write(b"more")
    target.commit()
    assert (tmp_path / "s").read_bytes() == b"kept|more"
    os.symlink(tmp_path / "s", tmp_path / "link.partial")
    with pytest.raises(OSError):
        store.reopen("link", 0)
    assert (tmp_path / "s").read_bytes() == b"kept|more"


def test_write_atomic_leaves_the_name_as_it_was_when_its_bytes_fail(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_atomic("B3SUMS", [b"one\n", b"two\n"])

    def failing() -> Iterator[bytes]:
        yield b"half"
        raise OSError(errno.EIO, "the source failed")

    with pytest.raises(OSError, match="the source failed"):
        store.write_atomic("B3SUMS", failing())
    assert (tmp_path / "B3SUMS").read_bytes() == b"one\ntwo\n"


def test_reads_refuse_anything_but_a_regular_file_without_blocking(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "real").write_bytes(b"0123456789")
    os.symlink(tmp_path / "real", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    assert store.read_range("real", 3, 4) == b"3456"
    assert store.read_range("real", 8, 100) == b"89"
    with store.map("real") as mapped:
        assert mapped[:] == b"0123456789"
    done = threading.Event()

    def refused() -> None:
        for name, why in (("link", "symlink"), ("fifo", "FIFO"), ("dir", "directory")):
            with pytest.raises(OSError, match=why):
                store.open(name)
        with pytest.raises(OSError, match="FIFO"):
            store.map("fifo")
        done.set()

    reader = threading.Thread(target=refused, daemon=True)
    reader.start()
    reader.join(10)
    assert done.is_set(), "a read of the FIFO blocked, or a refusal was missed"


def test_stat_list_and_remove(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "drive")
    assert store.stat("") is None
    store.make_dir("segments")
    store.write_atomic("segments/s000001.seg", [b"abc"])
    os.symlink("/nowhere", tmp_path / "drive" / "dangling")
    root = store.stat("")
    assert root is not None and stat.S_ISDIR(root.mode)
    segment = store.stat("segments/s000001.seg")
    assert segment is not None and segment.size == 3 and stat.S_ISREG(segment.mode)
    dangling = store.stat("dangling")
    assert dangling is not None and stat.S_ISLNK(dangling.mode)  # not followed
    assert store.stat("missing") is None
    assert sorted(store.list()) == ["dangling", "segments"] and store.list("segments") == ["s000001.seg"]
    with pytest.raises(NotADirectoryError):
        store.list("segments/s000001.seg")
    store.remove("dangling")
    store.remove("segments")
    store.remove("missing")
    assert store.list() == []
    os.symlink(tmp_path / "drive", tmp_path / "mount")
    mounted = LocalStore(tmp_path / "mount").stat("")  # the drive given may be a symlink to its directory
    assert mounted is not None and stat.S_ISDIR(mounted.mode)
    store.sync_all()


# --- the faulty store the fault tests use -----------------------------------------------------------------------


def test_the_faulty_store_fails_the_nth_write_of_the_files_it_counts(tmp_path: Path) -> None:
    store = FaultyStore(tmp_path, fail_write=3, only=lambda name: name != "free")
    store.write_atomic("free", [b"a", b"b", b"c"])
    target = store.create("counted")
    target.write(b"1")
    target.write(b"2")
    with pytest.raises(OSError) as raised:
        target.write(b"3")
    assert raised.value.errno == errno.EIO and store.writes == 3
    target.abort()
    assert (tmp_path / "counted.partial").read_bytes() == b"12" and not (tmp_path / "counted").exists()


def test_the_faulty_store_fills_up_and_fails_fsync(tmp_path: Path) -> None:
    full = FaultyStore(tmp_path, full_after=10)
    full.write_atomic("a", [b"x" * 6])
    with pytest.raises(OSError) as raised:
        full.write_atomic("b", [b"y" * 3, b"z" * 3])
    assert raised.value.errno == errno.ENOSPC and full.written == 9
    assert not (tmp_path / "b").exists() and (tmp_path / "b.partial").read_bytes() == b"yyy"
    syncless = FaultyStore(tmp_path, fail_sync=True)
    with pytest.raises(OSError) as raised:
        syncless.write_atomic("c", [b"never durable"])
    assert raised.value.errno == errno.EIO and not (tmp_path / "c").exists()
