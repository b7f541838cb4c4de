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
from collections.abc import Sequence


class Excluder:
    """Exclude patterns with gitignore's rules, checked in order, the last match deciding:

    * a pattern without ``/`` (but a trailing one) matches a name at any depth; one with a ``/`` at its start or
      in its middle matches the path from the source's top (a leading ``/`` only anchors);
    * ``*`` and ``?`` match within one name, ``**`` across names (``**/x``, ``a/**``, ``a/**/b``);
      ``[...]`` is a character class;
    * a trailing ``/`` matches directories only; a leading ``!`` re-includes what an earlier pattern excluded
      (not inside an excluded directory, whose subtree is never read, as in git);
    * in a file (``--exclude-from``), blank lines and lines starting with ``#`` are ignored.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.rules = [_compile(p) for p in patterns if p and not p.startswith("#")]

    def excludes(self, path: bytes, is_dir: bool) -> bool:
        excluded = False
        for regex, negate, dirs_only in self.rules:
            if (is_dir or not dirs_only) and regex.match(path):
                excluded = not negate
        return excluded


def _compile(pattern: str) -> tuple[re.Pattern[bytes], bool, bool]:
    negate = pattern.startswith("!")
    if negate or pattern.startswith("\\"):
        pattern = pattern[1:]
    dirs_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    body = _translate(pattern.encode("utf-8", "surrogateescape"))
    regex = body if anchored else rb"(?:.*/)?" + body
    return re.compile(rb"(?s:" + regex + rb")\Z"), negate, dirs_only


def _translate(pattern: bytes) -> bytes:
    """A gitignore glob as a regular expression over paths with ``/`` separators."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith(b"**/", i):
            out.append(rb"(?:.*/)?")
            i += 3
        elif pattern.startswith(b"**", i):
            out.append(rb".*")
            i += 2
        elif pattern[i : i + 1] == b"*":
            out.append(rb"[^/]*")
            i += 1
        elif pattern[i : i + 1] == b"?":
            out.append(rb"[^/]")
            i += 1
        elif pattern[i : i + 1] == b"[" and (close := pattern.find(b"]", i + 2)) != -1:
            inner = pattern[i + 1 : close]
            if inner.startswith(b"!"):
                inner = b"^" + inner[1:]
            out.append(b"[" + inner.replace(b"\\", b"\\\\") + b"]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i : i + 1]))
            i += 1
    return b"".join(out)


class Include:
    """One ``--include`` pattern: a glob over a shipment path, as tar's (Python's ``fnmatch``, byte by byte):

    * ``*`` matches any run of bytes, ``/`` included (``images/*`` takes ``images/a/b.png`` too);
    * ``?`` matches any one byte, ``/`` included; ``[...]`` one byte of the class, ``[!...]`` one not in it;
      there is no escape character (``[*]`` matches a literal ``*``);
    * a trailing ``/`` is dropped; the pattern's own text, unglobbed, also takes the subtree below it
      (``images`` takes ``images/a.png``).
    """

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern.rstrip(b"/")
        self._glob = _include_glob(self.pattern).match

    def matches(self, path: bytes) -> bool:
        pattern = self.pattern
        return path == pattern or path.startswith(pattern + b"/") or self._glob(path) is not None


@functools.lru_cache(maxsize=256)
def _include_glob(pattern: bytes) -> re.Pattern[bytes]:
    """fnmatch's own translation, over bytes read as Latin-1 so that each byte is one character."""
    return re.compile(fnmatch.translate(pattern.decode("latin-1")).encode("latin-1"))
