"""Sizes as people type and read them: ``8TB``, ``500GB``, ``7.2TiB``, ``4MiB``."""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import UsageError

_DECIMAL = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_BINARY = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}
_UNITS = {**_DECIMAL, **_BINARY}
# A bare letter (``8T``, ``100M``, ``4M``) is refused, for every size: a drive's label means 8 TB by it (decimal),
# while zstd, dd and rclone read 8 TiB (binary), 10% apart at T. Either guess would be wrong for someone: a
# "100M" staging drive read as MiB came out 100,691,968 bytes and did not fit a 100,000,000-byte drive, and reading
# it as decimal would silently change what ``chunk_size: 4M`` meant in existing profiles.
_BARE = frozenset("KMGTP")
_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z]*)\s*", re.ASCII)


def parse_size(text: str) -> int:
    """Bytes in ``text``: decimal units (KB, MB, GB, TB, PB) or binary (KiB ... PiB); a bare K, M, G, T or P is
    refused as ambiguous, with both readings."""
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).upper() if match else ""
    if match and unit in _BARE:
        number = match.group(1)
        decimal = int(Decimal(number) * _UNITS[unit + "B"])
        binary = int(Decimal(number) * _UNITS[unit + "IB"])
        raise UsageError(
            f"size {text.strip()!r} is ambiguous: write {number}{unit}B ({decimal:,} bytes, as drive labels count) "
            f"or {number}{unit}iB ({binary:,} bytes)"
        )
    if not match or unit not in _UNITS:
        raise UsageError(f"cannot read size {text!r}: give a number with a unit such as 150MB, 500GB, 8TB or 7.2TiB")
    # Decimal, not float: 4.1GB is exactly 4100000000 bytes.
    return int(Decimal(match.group(1)) * _UNITS[unit])


def counted(count: int, word: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``; ``counted(n, "entry", "entries")``."""
    return f"{count} {word if count == 1 else plural or word + 's'}"


def format_size(size: float) -> str:
    """``size`` bytes in decimal units with three significant digits, e.g. ``1.23 GB``."""
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    value = float(size)
    for unit in units:
        # Round first, so 999,500 bytes shows as 1 MB, not 1e+03 KB.
        shown = float(f"{value:.3g}")
        if abs(shown) < 1000 or unit == units[-1]:
            return (
                f"{shown:.0f} {unit}" if unit == "B" or shown >= 100 or shown == int(shown) else f"{shown:.3g} {unit}"
            )
        value /= 1000
    raise AssertionError("unreachable")
