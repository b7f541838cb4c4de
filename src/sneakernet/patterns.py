"""Path patterns, the two dialects a user writes, compiled once and matched against every path of a walk or a
catalog. Pure: no I/O (reading an exclude file is scan.read_exclude_file's).

**Exclude patterns** (pack and plan: ``--exclude``, ``--exclude-from``, a profile's ``excludes``) follow gitignore's
rules: see :class:`Excluder`.

**Include patterns** (restore: ``--include``) are a glob over shipment paths, as tar's: see :class:`Include`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple


class Excluder:
    """Exclude patterns, each read as one line of a ``.gitignore`` and matched as ``git check-ignore`` does
    (git's dir.c and wildmatch.c, byte by byte; tests/test_patterns.py checks it against git itself):

    * a line starting with ``#`` is a comment; trailing spaces are dropped unless the last is escaped (``\\ ``);
    * ``\\`` makes the character after it literal anywhere: ``\\!``, ``\\#`` at the start, ``\\*``, ``\\?``, ``\\[``;
      a pattern ending in a lone ``\\`` matches nothing;
    * a leading ``!`` re-includes what an earlier pattern excluded, but not inside an excluded directory (whose
      subtree is never read, as in git); of the patterns that match a path, the last decides;
    * a trailing ``/`` matches directories only (and is then dropped);
    * a pattern with no other ``/`` matches a name at any depth; one with a ``/`` at its start or in its middle
      matches the path from the source's top (a leading ``/`` only anchors);
    * ``*`` matches any run of bytes but ``/``, ``?`` one byte but ``/``, ``[...]`` one byte of a class
      (``[!...]`` or ``[^...]`` negated, ranges ``a-z``, ``[:alpha:]`` and the other POSIX names, ``\\``
      escaping; never ``/``); a class left open or naming an unknown POSIX class matches nothing;
    * ``**`` between slashes or at an end crosses names: ``**/x`` at any depth, ``a/**`` all below ``a``,
      ``a/**/b`` with any directories between, none included; elsewhere it is a ``*`` (git's quirk: after the
      literal start of an anchored pattern, ``a/b**`` also crosses names).
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        # Kept last first: of the patterns matching a path the last decides, so the first match met ends it.
        rules = (_rule(p.encode("utf-8", "surrogateescape")) for p in patterns)
        self.rules = [rule for rule in rules if rule is not None][::-1]

    def excludes(self, path: bytes, is_dir: bool) -> bool:
        """Whether ``path`` (relative, ``/`` separators) is excluded; its parent directories are the caller's
        to have checked (a walk does not enter an excluded directory)."""
        name = path[path.rfind(b"/") + 1 :]
        for negate, dirs_only, on_name, literal, suffix, match in self.rules:
            if dirs_only and not is_dir:
                continue
            text = name if on_name else path
            if literal is not None:
                hit = text == literal
            elif suffix is not None:
                hit = text.endswith(suffix)
            else:
                hit = match(text) is not None
            if hit:
                return not negate
        return False


def exclude_lines(data: bytes) -> list[str]:
    """The patterns of an exclude file's bytes, split as git splits a ``.gitignore``: at ``\\n`` only, one ``\\r``
    before it dropped, a UTF-8 byte-order mark skipped; blank lines, lines of spaces and ``#`` comments left out."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = (line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n"))
    return [line.decode("utf-8", "surrogateescape") for line in lines if line.strip(b" ") and not line.startswith(b"#")]


class _Rule(NamedTuple):
    negate: bool
    dirs_only: bool
    #: Matched against the last name of a path, not the whole path (a pattern without ``/``).
    on_name: bool
    #: Fast paths, as git's: a pattern without wildcards is compared, ``*literal`` is a suffix.
    literal: bytes | None
    suffix: bytes | None
    match: Callable[[bytes], object]


#: The bytes that make a pattern more than literal text (git's is_glob_special).
_SPECIAL = frozenset(b"*?[\\")


def _rule(line: bytes) -> _Rule | None:
    """One gitignore line as a rule (dir.c's add_pattern and parse_path_pattern), or None for a comment."""
    if not line or line.startswith(b"#"):
        return None
    pattern = _trim_trailing_spaces(line)
    negate = pattern.startswith(b"!")
    if negate:
        pattern = pattern[1:]
    dirs_only = pattern.endswith(b"/")
    if dirs_only:
        pattern = pattern[:-1]
    on_name = b"/" not in pattern
    if not on_name and pattern.startswith(b"/"):
        pattern = pattern[1:]
    literal = suffix = None
    # The literal start of the pattern, compared before the wildcards (match_pathname's prefix).
    prefix = next((i for i, byte in enumerate(pattern) if byte in _SPECIAL), len(pattern))
    if prefix == len(pattern):
        literal = pattern
    elif on_name and pattern.startswith(b"*") and not _SPECIAL.intersection(pattern[1:]):
        suffix = pattern[1:]
    body = _wildmatch(pattern[prefix:])
    regex = None if body is None else re.escape(pattern[:prefix]) + body
    match = _NEVER.match if regex is None else re.compile(b"(?s:" + regex + b")\\Z").match
    return _Rule(negate, dirs_only, on_name, literal, suffix, match)


#: What a pattern that can match nothing compiles to.
_NEVER = re.compile(b"(?!)")


def _trim_trailing_spaces(line: bytes) -> bytes:
    """dir.c's trim_trailing_spaces: trailing spaces go, unless escaped; after a lone trailing ``\\``, none go."""
    end, i = len(line), 0
    last_space = None
    while i < end:
        byte = line[i]
        if byte == 0x20:
            if last_space is None:
                last_space = i
        elif byte == 0x5C:
            i += 1
            if i == end:
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def _wildmatch(pattern: bytes) -> bytes | None:
    """wildmatch.c with WM_PATHNAME as a regular expression, or None when the pattern can match nothing.

    Each ``*`` run is looked at whole: ``**`` crosses names only with the pattern's start or a ``/`` before it
    and its end, a ``/`` or ``\\/`` after it."""
    out: list[bytes] = []
    i, end = 0, len(pattern)
    while i < end:
        byte = pattern[i]
        if byte == 0x2A:  # *
            run_end = i
            while run_end < end and pattern[run_end] == 0x2A:
                run_end += 1
            before = i == 0 or pattern[i - 1] == 0x2F
            after = pattern[run_end : run_end + 1] in (b"", b"/") or pattern[run_end : run_end + 2] == b"\\/"
            if run_end - i >= 2 and before and after:
                if pattern[run_end : run_end + 1] == b"/":
                    out.append(b"(?:.*/)?")  # none or any directories, and the slash after them
                    run_end += 1
                else:
                    out.append(b".*")
            else:
                out.append(b"[^/]*")
            i = run_end
        elif byte == 0x3F:  # ?
            out.append(b"[^/]")
            i += 1
        elif byte == 0x5B:  # [
            parsed = _char_class(pattern, i + 1)
            if parsed is None:
                return None
            members, i = parsed
            out.append(_class_regex(members - {0x2F}))
        elif byte == 0x5C:  # \
            if i + 1 == end:
                return None
            out.append(re.escape(pattern[i + 1 : i + 2]))
            i += 2
        else:
            out.append(re.escape(pattern[i : i + 1]))
            i += 1
    return b"".join(out)


def _char_class(pattern: bytes, i: int) -> tuple[frozenset[int], int] | None:
    """The bytes a class starting at ``pattern[i]`` (just after its ``[``) takes, and where the pattern goes on;
    None when it is left open or names an unknown POSIX class (wildmatch then gives up the whole match)."""
    end = len(pattern)
    negated = i < end and pattern[i] in b"!^"
    if negated:
        i += 1
    members: set[int] = set()
    previous: int | None = None  # the last single byte, which a following '-' makes the start of a range
    first = True
    while True:
        if i >= end:
            return None
        byte = pattern[i]
        if byte == 0x5D and not first:  # ]
            break
        first = False
        if byte == 0x5C:  # \
            i += 1
            if i >= end:
                return None
            previous = pattern[i]
            members.add(previous)
        elif byte == 0x2D and previous is not None and i + 1 < end and pattern[i + 1] != 0x5D:  # a-z
            i += 1
            last = pattern[i]
            if last == 0x5C:
                i += 1
                if i >= end:
                    return None
                last = pattern[i]
            members.update(range(previous, last + 1))
            previous = None
        elif byte == 0x5B and pattern[i + 1 : i + 2] == b":":  # [:name:]
            close = pattern.find(b"]", i + 2)
            if close == -1:
                return None
            name = pattern[i + 2 : close]
            if close - (i + 2) < 1 or not name.endswith(b":"):
                # no ":]": the '[' is a member like any other
                previous = byte
                members.add(byte)
            else:
                posix = _POSIX_CLASSES.get(name[:-1])
                if posix is None:
                    return None
                members.update(posix)
                previous = None
                i = close
        else:
            previous = byte
            members.add(byte)
        i += 1
    taken = frozenset(range(256)) - members if negated else frozenset(members)
    return taken, i + 1


def _class_regex(members: frozenset[int]) -> bytes:
    if not members:
        return b"(?!)"
    ranges: list[bytes] = []
    ordered = sorted(members)
    start = previous = ordered[0]
    for byte in [*ordered[1:], None]:
        if byte is not None and byte == previous + 1:
            previous = byte
            continue
        ranges.append(b"\\x%02x" % start if start == previous else b"\\x%02x-\\x%02x" % (start, previous))
        if byte is not None:
            start = previous = byte
    return b"[" + b"".join(ranges) + b"]"


def _ascii(test: Callable[[int], bool]) -> frozenset[int]:
    return frozenset(byte for byte in range(128) if test(byte))


def _is_alpha(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _is_print(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E


#: The POSIX classes as git's own ctype has them: ASCII only, and its space is tab, newline, return and space
#: (not vertical tab or form feed, which are control characters like the others below 0x20).
_SPACE = b"\t\n\r "
_POSIX_CLASSES = {
    b"alnum": _ascii(lambda b: _is_alpha(b) or _is_digit(b)),
    b"alpha": _ascii(_is_alpha),
    b"blank": frozenset(b" \t"),
    b"cntrl": _ascii(lambda b: b < 0x20 or b == 0x7F),
    b"digit": _ascii(_is_digit),
    b"graph": _ascii(lambda b: _is_print(b) and b not in _SPACE),
    b"lower": _ascii(lambda b: 0x61 <= b <= 0x7A),
    b"print": _ascii(_is_print),
    b"punct": _ascii(lambda b: _is_print(b) and b != 0x20 and not _is_alpha(b) and not _is_digit(b)),
    b"space": frozenset(_SPACE),
    b"upper": _ascii(lambda b: 0x41 <= b <= 0x5A),
    b"xdigit": _ascii(lambda b: _is_digit(b) or 0x41 <= b <= 0x46 or 0x61 <= b <= 0x66),
}


class Include:
    """One ``--include`` pattern: a glob over a shipment path, as tar's (Python's ``fnmatch``, byte by byte):

    * ``*`` matches any run of bytes, ``/`` included (``images/*`` takes ``images/a/b.png`` too);
    * ``?`` matches any one byte, ``/`` included; ``[...]`` one byte of the class (ranges ``0-9``), ``[!...]`` one
      not in it (``^`` is a member like any other); there is no escape character: ``[*]`` is a literal ``*``, and a
      ``[`` left open is itself;
    * the whole path must match, and a path that matches takes the subtree below it: ``images`` takes
      ``images/a.png``, ``run-0?`` all of ``run-01/``; a trailing ``/`` is dropped;
    * the pattern's text as it is also matches (a path with ``[`` in its name, given as it is listed).
    """

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern.rstrip(b"/")
        self._glob = _include_glob(self.pattern).match

    def matches(self, path: bytes) -> bool:
        pattern = self.pattern
        return path == pattern or path.startswith(pattern + b"/") or self._glob(path) is not None


@functools.lru_cache(maxsize=256)
def _include_glob(pattern: bytes) -> re.Pattern[bytes]:
    """fnmatch's own translation, over bytes read as Latin-1 so that each byte is one character, and then
    anything below what it matched."""
    glob = fnmatch.translate(pattern.decode("latin-1"))
    for end in ("\\Z", "\\z"):  # the end anchor fnmatch writes (\\z from Python 3.14)
        glob = glob.removesuffix(end)
    return re.compile(glob.encode("latin-1") + b"(?s:/.*)?\\Z")
