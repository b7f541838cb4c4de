"""Sizes as people type and read them: ``8TB``, ``500GB``, ``7.2TiB``, ``4M``."""

from __future__ import annotations

import re

from .errors import UsageError

_DECIMAL = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_BINARY = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}
# A bare letter is binary, as in zstd, dd and rclone (``--chunk-size 4M`` means 4 MiB).
_BARE = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}
_UNITS = {**_DECIMAL, **_BINARY, **_BARE}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: decimal units (KB, MB, GB, TB, PB), binary (KiB ... PiB, or K, M, G, T, P)."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS:
        raise UsageError(f"cannot read size {text!r}: give a number with a unit such as 150MB, 500GB, 8TB or 7.2TiB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: float) -> str:
    """``size`` bytes in decimal units with three significant digits, e.g. ``1.23 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
