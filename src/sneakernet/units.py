"""Sizes, rates and durations as people type and read them: ``8TB``, ``7.2TiB``, ``1Gbps``, ``100MB/s``, ``9 h``."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


# --- rates and durations ------------------------------------------------------------------------------------

_RATE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([kmgtp]?)(i?)([a-z/]*)\s*", re.ASCII | re.IGNORECASE)
_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY_PREFIXES = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
# A lower-case b is a bit and an upper-case B a byte, as in every network data sheet: 1Gbps, 100MB/s.
_BIT_UNITS = {"bps", "b/s"}
_BIT_WORDS = {"bit", "bits", "bit/s", "bits/s"}
_BYTE_UNITS = {"Bps", "B/s"}
_BYTE_WORDS = {"byte/s", "bytes/s"}
_RATE_HINT = "give bits or bytes per second, e.g. 1Gbps, 10Gbit, 500Mbps or 100MB/s"


@dataclass(frozen=True)
class Link:
    """A network link (or any transfer rate): what was given, how it reads, and its rate in bytes a second."""

    text: str
    label: str
    bytes_per_second: float

    @property
    def bits_per_second(self) -> float:
        return self.bytes_per_second * 8


def parse_rate(text: str) -> Link:
    """A transfer rate such as ``1Gbps``, ``10Gbit``, ``500Mbps``, ``100MB/s`` or ``1.5 GiB/s``.

    Bits are a lower-case ``b`` or the word ``bit`` (``bps``, ``b/s``, ``bit``, ``bit/s``), bytes an upper-case
    ``B`` or the word ``byte`` (``B/s``, ``Bps``, ``byte/s``); prefixes are decimal (k, M, G, T, P, any case) or
    binary (Ki, Mi, Gi, Ti, Pi). Raises :class:`UsageError` for anything else, or a rate of zero.
    """
    match = _RATE_RE.fullmatch(text)
    if not match:
        raise UsageError(f"cannot read rate {text!r}: {_RATE_HINT}")
    number, prefix, binary, unit = match.groups()
    prefix = prefix.lower()
    if unit in _BIT_UNITS or unit.lower() in _BIT_WORDS:
        bits = True
    elif unit in _BYTE_UNITS or unit.lower() in _BYTE_WORDS:
        bits = False
    else:
        why = "say bits or bytes per second" if not unit else f"unknown unit {unit!r}"
        raise UsageError(f"cannot read rate {text!r} ({why}): {_RATE_HINT}")
    value = Decimal(number)
    if value <= 0:
        raise UsageError(f"rate {text!r} is zero: a link must move some bytes")
    if binary and not prefix:
        raise UsageError(f"cannot read rate {text!r}: {_RATE_HINT}")
    scale = _BINARY_PREFIXES[prefix] if binary else _PREFIXES[prefix]
    per_second = float(value * scale)
    shown = format(value.normalize(), "f")
    letter = ("k" if prefix == "k" and not binary else prefix.upper()) + ("i" if binary else "")
    label = f"{shown} {letter}bit/s" if bits else f"{shown} {letter}B/s"
    return Link(text.strip(), label, per_second / 8 if bits else per_second)


def format_duration(seconds: float) -> str:
    """``seconds`` as a person says it: ``42 s``, ``7.5 min``, ``9 h``, ``7.4 days``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    days = hours / 24
    return f"{days:.1f} days" if days < 100 else f"{days:.0f} days"
