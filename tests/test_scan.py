"""scan.py: deterministic walk order, excludes with gitignore's rules, exclude files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write_file
from sneakernet.errors import SourceError
from sneakernet.scan import Excluder, read_exclude_file, scan, walk


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "excluded"),
    [
        ("*.png", b"images/noise.png", False, True),
        ("*.png", b"noise.png", False, True),
        ("*.png", b"images", True, False),
        ("text/doc00?.jsonl", b"text/doc001.jsonl", False, True),
        ("text/doc00?.jsonl", b"a/text/doc001.jsonl", False, False),  # a pattern with a / is anchored
        ("text/*.jsonl", b"text/sub/doc.jsonl", False, False),  # * stays within one name
        ("empty-dir/", b"empty-dir", True, True),
        ("empty-dir/", b"empty-dir", False, False),  # a trailing / matches directories only
        ("**/cache", b"a/b/cache", True, True),
        ("**/cache", b"cache", True, True),
        ("a/**", b"a/x/y", False, True),
        ("a/**/b", b"a/b", False, True),
        ("a/**/b", b"a/x/y/b", False, True),
        ("/top.txt", b"top.txt", False, True),
        ("/top.txt", b"d/top.txt", False, False),
        ("[!a]bc", b"xbc", False, True),
        ("[!a]bc", b"abc", False, False),
        ("[ab]c", b"bc", False, True),
        ("we?rd", b"we/rd", False, False),
        ("a.b", b"axb", False, False),  # a dot is a dot
        ("\\!important", b"!important", False, True),
    ],
)
def test_gitignore_rules(pattern: str, path: bytes, is_dir: bool, excluded: bool) -> None:
    assert Excluder([pattern]).excludes(path, is_dir) is excluded


def test_last_match_wins_and_negation_re_includes() -> None:
    excluder = Excluder(["*.log", "!keep.log"])
    assert excluder.excludes(b"a.log", False)
    assert not excluder.excludes(b"keep.log", False)
    assert not excluder.excludes(b"d/keep.log", False)
    assert Excluder(["!keep.log", "*.log"]).excludes(b"keep.log", False)


def test_non_utf8_names_match(tmp_path: Path) -> None:
    assert Excluder(["*.bin"]).excludes(b"caf\xe9.bin", False)


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


def test_exclude_file(tmp_path: Path) -> None:
    (tmp_path / "ignore").write_text("# build output\n*.o\n\n  \n/dist/\n!keep.o\n")
    assert read_exclude_file(str(tmp_path / "ignore")) == ["*.o", "/dist/", "!keep.o"]
    with pytest.raises(SourceError, match="cannot read exclude file"):
        read_exclude_file(str(tmp_path / "missing"))


def test_walk_order_is_by_name_bytes_directory_first(tmp_path: Path) -> None:
    for name in ("b", "a/z", "a/b", "B", "\u00e9"):
        write_file(tmp_path / "src" / name, b"x")
    paths = [e.path for e in walk(tmp_path / "src")]
    assert paths == [b"B", b"a", b"a/b", b"a/z", b"b", "\u00e9".encode()]
