"""patterns.py: restore's --include glob dialect, and pack's --exclude against `git check-ignore`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import invoke_cli, write_file
from sneakernet.patterns import Include

# --- --include: a glob over shipment paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matched"),
    [
        ("*.txt", b"a.txt", True),
        ("*.txt", b"deep/down/a.txt", True),  # * crosses /, as in tar
        ("images/*", b"images/sub/a.png", True),
        ("images/*", b"images", False),
        ("doc?.txt", b"doc1.txt", True),
        ("doc?.txt", b"doc10.txt", False),
        ("a?b", b"a/b", True),  # ? is any one byte, / included
        ("doc[0-2].txt", b"doc2.txt", True),
        ("doc[0-2].txt", b"doc3.txt", False),
        ("doc[!0-2].txt", b"doc3.txt", True),
        ("doc[!0-2].txt", b"doc1.txt", False),
        ("[*].txt", b"*.txt", True),  # no escape character: a class takes a literal *
        ("[*].txt", b"a.txt", False),
        ("images", b"images", True),  # a directory...
        ("images", b"images/a/b.png", True),  # ...takes its subtree
        ("images/", b"images/a.png", True),  # a trailing / is dropped
        ("images", b"images2/a.png", False),  # a prefix of a name is not a directory
        ("caf\udce9", b"caf\xe9/x", True),  # a name that is not UTF-8, as the shell hands it over
        ("A.txt", b"a.txt", False),  # case matters
    ],
)
def test_include_dialect(pattern: str, path: bytes, matched: bool) -> None:
    assert Include(pattern.encode("utf-8", "surrogateescape")).matches(path) is matched


def test_include_through_restore(tmp_path: Path) -> None:
    """The dialect where the user meets it: restore --include of a packed tree takes what the glob says."""
    src = tmp_path / "src"
    for name in ("runs/01/log.txt", "runs/02/log.txt", "runs/02/model.bin", "top.txt", "star*.txt", "notes/a.md"):
        write_file(src / name, name.encode())
    code, _, err = invoke_cli("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB")
    assert code == 0, err
    drive = next((tmp_path / "out").iterdir())
    dest = tmp_path / "dest"
    code, _, err = invoke_cli("restore", drive, "--into", dest, "--include", "runs/*.txt", "--include", "star[*]*")
    assert code == 0, err
    got = sorted(os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs)
    assert [p for p in got if not p.startswith(".sneakernet")] == ["runs/01/log.txt", "runs/02/log.txt", "star*.txt"]
