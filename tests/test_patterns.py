"""patterns.py: restore's --include glob dialect, and pack's --exclude against `git check-ignore`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import invoke_cli, write_file
from sneakernet.errors import SourceError
from sneakernet.io.source import SourceEntry, walk
from sneakernet.patterns import Excluder, Include
from sneakernet.scan import read_exclude_file

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
        ("run-0?", b"run-01/logs/a.txt", True),  # a directory the glob matches takes its subtree
        ("*.d", b"conf.d/x", True),
        ("*.d", b"conf.dx", False),
        ("[^a]b", b"^b", True),  # ^ is no negation
        ("[^a]b", b"xb", False),
        ("data[1]", b"data[1]/x", True),  # the pattern as it is, a path listed with a [
        ("data[1]", b"data1", True),
        ("a[b", b"a[b", True),  # a [ left open is itself
        ("caf\udce9", b"caf\xe9/x", True),  # a name that is not UTF-8, as the shell hands it over
        ("A.txt", b"a.txt", False),  # case matters
    ],
)
def test_include_dialect(pattern: str, path: bytes, matched: bool) -> None:
    assert Include(pattern.encode("utf-8", "surrogateescape")).matches(path) is matched


def test_include_through_restore(tmp_path: Path) -> None:
    """The dialect where the user meets it: restore --include of a packed tree takes what the glob says."""
    names = ["runs/01/log.txt", "runs/02/log.txt", "runs/02/model.bin", "top.txt", "star*.txt", "notes/a.md"]
    dest = _pack_and_restore(tmp_path, names, ["runs/*.txt", "star[*]*"])
    assert _files(dest) == ["runs/01/log.txt", "runs/02/log.txt", "star*.txt"]


def test_include_of_a_directory_a_glob_matches_takes_its_subtree(tmp_path: Path) -> None:
    """'--include runs/0?' matched the directories runs/01 and runs/02 but not what they hold: restore made two
    empty directories and called the subset complete. Now a directory the glob matches brings its subtree, as a
    directory given by name always did."""
    names = ["runs/01/log.txt", "runs/02/sub/model.bin", "runs/10/log.txt", "conf.d/a", "top.txt"]
    dest = _pack_and_restore(tmp_path, names, ["runs/0?", "*.d"])
    assert _files(dest) == ["conf.d/a", "runs/01/log.txt", "runs/02/sub/model.bin"]
    code, out, _ = invoke_cli("status", dest)
    assert code == 0, out


def _pack_and_restore(tmp_path: Path, names: list[str], includes: list[str]) -> Path:
    """Files of these names packed onto one drive, restored with these --include patterns: the destination."""
    src = tmp_path / "src"
    for name in names:
        write_file(src / name, name.encode())
    code, _, err = invoke_cli("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB")
    assert code == 0, err
    dest = tmp_path / "dest"
    code, _, err = invoke_cli(
        "restore", tmp_path / "out" / "drive-0001", "--into", dest, *(a for p in includes for a in ("--include", p))
    )
    assert code == 0, err
    return dest


def _files(dest: Path) -> list[str]:
    """The files restored under DEST, its .sneakernet left out."""
    found = (os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs)
    return sorted(p for p in found if not p.startswith(".sneakernet"))


# --- --exclude: gitignore's rules, as `git check-ignore` has them ----------------------------------------------------


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


def test_exclude_file(tmp_path: Path) -> None:
    (tmp_path / "ignore").write_text("# build output\n*.o\n\n  \n/dist/\n!keep.o\n")
    assert read_exclude_file(str(tmp_path / "ignore")) == ["*.o", "/dist/", "!keep.o"]
    with pytest.raises(SourceError, match="cannot read exclude file"):
        read_exclude_file(str(tmp_path / "missing"))


GIT = shutil.which("git")
needs_git = pytest.mark.skipif(
    GIT is None, reason="git is not installed: --exclude is checked against git check-ignore"
)

#: Names of the generated trees: trailing and leading spaces, glob characters, a backslash, '!' and '#' first,
#: UTF-8 and a byte that is not, case, control characters.
NAMES = ["a", "b", "ab", "ba", "a.log", "keep.log", ".x", "a b", "a ", " a", "[a]", "a*", "a?", "a\\b", "!a", "#a"]
NAMES += ["-", "caf\u00e9", "caf\udce9", "A", "x]", "\t", "\x0b", "a\r", "}"]
#: What the generated patterns are made of: names' pieces, wildcards, classes of every kind (a range, negated
#: both ways, a leading ']', POSIX names known and unknown, left open), escapes, spaces, slashes.
TOKENS = ["a", "b", "ab", ".log", "keep", ".x", "caf", "\u00e9", "\udce9", "A", " ", "\\ ", "*", "**", "?", "/"]
TOKENS += ["[ab]", "[!a]", "[^a]", "[]a]", "[a-b]", "[b-a]", "[[:alpha:]]", "[[:space:]]", "[[:punct:]]"]
TOKENS += [
    "[[:cntrl:]]",
    "[[:graph:]]",
    "[[:blank:]]",
    "[[:upper:]]",
    "[[:nope:]]",
    "[[:",
    "[",
    "]",
    "\\",
    "\\*",
    "\\[",
    "\\?",
    "!",
    "#",
    "-",
    "[\\]]",
    "[a-]",
    "[--b]",
]


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bare git directory and, apart from it, the work tree the generated trees are made in."""
    if GIT is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("git")
    subprocess.run([GIT, "init", "-q", "--bare", str(base / "repo.git")], check=True, env=_git_env(base))
    (base / "repo.git" / "info").mkdir(exist_ok=True)
    return base / "repo.git", base / "tree"


def _git_env(base: Path) -> dict[str, str]:
    """No user's or system's git configuration: a global ignore file (~/.config/git/ignore, read even without a
    configuration) would add its patterns to the ones tested."""
    home = str(base / "home")
    return {
        **os.environ,
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }


def _check_ignore(repo: Path, tree: Path, paths: list[bytes]) -> dict[bytes, bytes]:
    """What git says of every path at once (one `git check-ignore --stdin` call): path -> the pattern that
    decides, b'' when none does."""
    assert GIT is not None
    result = subprocess.run(
        [GIT, f"--git-dir={repo}", f"--work-tree={tree}", "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n"],
        input=b"".join(p + b"\0" for p in paths),
        capture_output=True,
        cwd=tree,
        env=_git_env(repo.parent),
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    fields = result.stdout.split(b"\0")[:-1]
    return {fields[i + 3]: fields[i + 2] for i in range(0, len(fields), 4)}


trees = st.lists(
    st.tuples(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3), st.booleans()), min_size=1, max_size=8
)
pattern_lists = st.lists(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=6).map("".join), max_size=4)


@needs_git
@settings(max_examples=300, deadline=None)
@given(tree=trees, patterns=pattern_lists)
def test_exclude_is_what_git_check_ignore_says(
    git_repo: tuple[Path, Path], tree: list[tuple[list[str], bool]], patterns: list[str]
) -> None:
    """pack's walk with these patterns leaves out exactly what `git check-ignore` calls ignored, over generated
    trees and patterns, the patterns given both as --exclude arguments and as lines of an --exclude-from file."""
    repo, root = git_repo
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    is_dir: dict[bytes, bool] = {}
    for names, leaf_is_dir in tree:
        encoded = [os.fsencode(name) for name in names]
        for depth in range(1, len(encoded) + 1):
            path = b"/".join(encoded[:depth])
            is_dir[path] = is_dir.get(path, False) or depth < len(encoded) or leaf_is_dir
    for path in sorted(is_dir):  # a directory before what it holds
        full = os.path.join(os.fsencode(root), path)
        if is_dir[path]:
            os.mkdir(full)
        else:
            open(full, "wb").close()
    paths = set(is_dir)
    lines = b"".join(p.encode("utf-8", "surrogateescape") + b"\n" for p in patterns)
    (repo / "info" / "exclude").write_bytes(lines)
    exclude_file = root.parent / "exclude-from"
    exclude_file.write_bytes(lines)

    decided = _check_ignore(repo, root, sorted(paths))
    ignored = {p for p in paths if decided[p] and not decided[p].startswith(b"!")}
    for given_patterns in (patterns, read_exclude_file(str(exclude_file))):
        kept = {e.path for e in walk(root, Excluder(given_patterns)) if isinstance(e, SourceEntry)}
        got = paths - kept
        assert got == ignored, {p: decided[p] for p in got ^ ignored}


def test_exclude_escapes_and_trailing_spaces_through_pack(tmp_path: Path) -> None:
    """Where the user meets it: a '\\' makes the next character literal ('\\*.txt' left out every .txt file, the
    backslash dropped) and trailing spaces go ('a.log ' left out nothing), as in a .gitignore; an exclude file
    written on Windows (CRLF, a byte-order mark) reads the same."""
    src = tmp_path / "src"
    for name in ("*.txt", "x.txt", "a.log", "b.log", "c.tmp", "d.tmp"):
        write_file(src / name, name.encode())
    (tmp_path / "ignore").write_bytes(b"\xef\xbb\xbfc.tmp\r\n")
    args = ["--exclude", "\\*.txt", "--exclude", "a.log ", "--exclude-from", tmp_path / "ignore"]
    code, _, err = invoke_cli("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB", *args)
    assert code == 0, err
    code, out, err = invoke_cli("ls", tmp_path / "out" / "drive-0001")
    assert code == 0, err
    assert [line.split()[-1] for line in out.splitlines()] == ["b.log", "d.tmp", "x.txt"]


@pytest.mark.parametrize("pattern", ["[b-a]", "[!]a]", "[[:alpha:]]", "a[", "[[:nope:]]", "x\\"])
def test_exclude_patterns_that_were_a_traceback_or_a_warning(pattern: str) -> None:
    """Classes Python's re refused (a reversed range, a ']' first) or warned about (a nested set) are compiled
    from the bytes they take, as git reads them; one left open or naming an unknown POSIX class matches nothing, and
    so does a pattern ending in a lone backslash."""
    excluder = Excluder([pattern])
    assert [name for name in (b"a", b"b", b"x", b"a[", b"x\\") if excluder.excludes(name, False)] == {
        "[b-a]": [b"b"],  # git takes the range's start as a member before it reads the range
        "[!]a]": [b"b", b"x"],
        "[[:alpha:]]": [b"a", b"b", b"x"],
        "a[": [],
        "[[:nope:]]": [],
        "x\\": [],
    }[pattern]
