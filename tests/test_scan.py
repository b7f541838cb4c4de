"""io/source.py's walk and scan.py: deterministic walk order, excluded directories left unread (the patterns:
test_patterns.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sneakernet.io.source as source_module
from conftest import make_chain, remove_chain, write_file
from sneakernet import scan as scan_module
from sneakernet.io.source import SourceEntry, Unreadable, walk
from sneakernet.scan import ScanSpool, scan


def test_excluded_directory_is_not_read(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "skip" / "a.txt", b"a")
    write_file(tmp_path / "src" / "keep" / "b.txt", b"b")
    os.chmod(tmp_path / "src" / "skip", 0o000)  # root could read it anyway: the point is it is never listed
    try:
        totals, spool = scan(tmp_path / "src", ["skip/"])
        paths = [e.path for e in spool.entries()]
        spool.close()
    finally:
        os.chmod(tmp_path / "src" / "skip", 0o755)
    assert paths == [b"keep", b"keep/b.txt"]
    assert totals.excluded_entries == 1 and totals.unreadable == []


def test_walk_order_is_by_name_bytes_directory_first(tmp_path: Path) -> None:
    for name in ("b", "a/z", "a/b", "B", "\u00e9"):
        write_file(tmp_path / "src" / name, b"x")
    paths = [e.path for e in walk(tmp_path / "src")]
    assert paths == [b"B", b"a", b"a/b", b"a/z", b"b", "\u00e9".encode()]


def _deep_tree(top: Path, depth: int) -> list[bytes]:
    """A chain of ``depth`` directories with a file beside each; the paths a walk gives, by a plain recursion."""
    folder = top
    for level in range(depth):
        write_file(folder / f"f{level}", b"x")
        folder = folder / "d"
        folder.mkdir()

    def listed(rel: bytes) -> list[bytes]:
        paths = []
        for name in sorted(os.listdir(os.path.join(os.fsencode(top), rel) if rel else os.fsencode(top))):
            path = rel + b"/" + name if rel else name
            paths.append(path)
            if os.path.isdir(os.path.join(os.fsencode(top), path)):
                paths += listed(path)
        return paths

    return listed(b"")


def test_walk_past_the_open_levels_opens_them_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _deep_tree(tmp_path, 6)
    assert [e.path for e in walk(tmp_path)] == expected
    monkeypatch.setattr(source_module, "MAX_OPEN_LEVELS", 2)
    assert [e.path for e in walk(tmp_path)] == expected


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to count descriptors")
def test_walk_at_10000_levels(fast_tmp: Path) -> None:
    """Issue 18: walks must be loops, and a path longer than PATH_MAX (the deepest here are 20 KB) must not stop
    them: every level is reached through its parent's descriptor, and descriptors stay bounded."""
    make_chain(fast_tmp, 10_000, files_every=1000)
    try:
        before = _open_descriptors(fast_tmp)
        most = dirs = 0
        files, expected = [], b"d"
        for entry in walk(fast_tmp):
            assert isinstance(entry, SourceEntry), entry
            if entry.kind == "dir":
                dirs += 1
                assert entry.path == expected  # depth first: each level right after its parent
                expected += b"/d"
            else:
                files.append(entry.path.count(b"/"))
            if dirs % 500 == 0:
                most = max(most, _open_descriptors(fast_tmp) - before)
        assert dirs == 10_000
        # The files come as the walk climbs back up, each found again through a reopened level.
        assert files == list(range(10_000, 0, -1000))
        assert most <= 2 * source_module.MAX_OPEN_LEVELS + 10_000 // source_module.MAX_OPEN_LEVELS + 2
        assert _open_descriptors(fast_tmp) == before
    finally:
        remove_chain(fast_tmp)


def test_a_level_replaced_before_the_walk_comes_back_to_it_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed level is opened again by name: if that name is now another directory, it is reported, not
    walked as if it were the one listed."""
    monkeypatch.setattr(source_module, "MAX_OPEN_LEVELS", 3)  # a/b is closed once a/b/c/d/e/f is open
    for path in ("a/b/c/d/e/f/g", "a/b/zz", "a/z"):
        write_file(tmp_path / path, b"x")
    walker = walk(tmp_path)
    seen = [next(walker).path for _ in range(7)]  # type: ignore[union-attr]
    assert seen[-1] == b"a/b/c/d/e/f/g"
    (tmp_path / "a" / "b").rename(tmp_path / "old")
    write_file(tmp_path / "a" / "b" / "new", b"y")
    rest = list(walker)
    assert [(type(e).__name__, e.path) for e in rest] == [("Unreadable", b"a/b"), ("SourceEntry", b"a/z")]


def _open_descriptors(root: Path) -> int:
    """The descriptors this process holds open on ``root`` or below: the walk's own. Counting every descriptor was
    flaky under pytest-xdist, where other tests' threads and garbage in the same process open and close theirs."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        count += target == str(root) or target.startswith(f"{root}/")
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to count descriptors")
def test_walk_closes_its_directories_even_when_abandoned(tmp_path: Path) -> None:
    _deep_tree(tmp_path, 5)
    before = _open_descriptors(tmp_path)
    assert len(list(walk(tmp_path))) == 10
    assert _open_descriptors(tmp_path) == before
    walker = walk(tmp_path)
    for _ in range(7):  # deep inside: several levels open
        next(walker)
    assert _open_descriptors(tmp_path) > before
    walker.close()
    assert _open_descriptors(tmp_path) == before


def test_a_source_given_as_a_symlink_is_followed_and_nothing_below_it(tmp_path: Path) -> None:
    """``/data/current -> v3``: the source the user named is the directory it points to (as find -H); a symlink
    inside it is still an entry of its own, never followed."""
    write_file(tmp_path / "v3" / "a.txt", b"a")
    write_file(tmp_path / "elsewhere" / "secret", b"s")
    (tmp_path / "v3" / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "current").symlink_to("v3")
    through_link = [(e.path, e.kind) for e in walk(tmp_path / "current")]  # type: ignore[union-attr]
    assert through_link == [(e.path, e.kind) for e in walk(tmp_path / "v3")]  # type: ignore[union-attr]
    assert through_link == [(b"a.txt", "file"), (b"link", "symlink")]
    totals, spool = scan(tmp_path / "current")
    spool.close()
    assert (totals.files, totals.symlinks, totals.unreadable) == (1, 1, [])


def test_a_directory_swapped_for_a_symlink_while_walking_is_not_followed(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "a" / "inside", b"x")
    write_file(tmp_path / "src" / "b", b"y")
    write_file(tmp_path / "outside" / "secret", b"z")
    walker = walk(tmp_path / "src")
    first = next(walker)
    assert first.path == b"a" and first.kind == "dir"  # type: ignore[union-attr]
    (tmp_path / "src" / "a" / "inside").unlink()
    (tmp_path / "src" / "a").rmdir()
    (tmp_path / "src" / "a").symlink_to(tmp_path / "outside")
    rest = list(walker)
    assert isinstance(rest[0], Unreadable) and rest[0].path == b"a"
    assert [e.path for e in rest[1:]] == [b"b"]


def test_the_spool_gives_back_every_entry_in_order_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_module, "SPOOL_BATCH", 3)
    for number in range(7):
        write_file(tmp_path / "src" / f"d{number % 2}" / f"f{number}", bytes(number))
    entries: list[SourceEntry | Unreadable] = list(walk(tmp_path / "src"))  # type: ignore[arg-type]
    entries.insert(4, Unreadable(b"gone", "permission denied"))
    spool = ScanSpool()
    for entry in entries:
        spool.add(entry)
    try:
        assert list(spool.entries()) == entries
        assert list(spool.entries()) == entries  # read twice, as pack does
        assert all(type(a) is type(b) for a, b in zip(spool.entries(), entries, strict=True))
    finally:
        spool.close()
