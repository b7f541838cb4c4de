"""parse_size and format_size: sizes as people type and read them."""

from __future__ import annotations

import pytest

from sneakernet.errors import ExitCode, UsageError
from sneakernet.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8TB", 8 * 10**12),
        ("500GB", 500 * 10**9),
        ("150MB", 150 * 10**6),
        ("1KB", 1000),
        ("2PB", 2 * 10**15),
        ("7.2TiB", int(7.2 * 2**40)),
        ("1.5GiB", 3 * 2**29),
        ("64KiB", 64 * 2**10),
        ("3MiB", 3 * 2**20),
        ("1PiB", 2**50),
        # "B" and a bare number are bytes.
        ("123B", 123),
        ("0", 0),
        ("1", 1),
        ("4096", 4096),
        ("1000000", 10**6),
        (".5KiB", 512),
        ("0.5KiB", 512),
    ],
)
def test_parse_size_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  8TB", 8 * 10**12),
        ("8TB  ", 8 * 10**12),
        ("8 TB", 8 * 10**12),
        ("\t150MB\n", 150 * 10**6),
        (" 4 MiB ", 4 * 2**20),
        ("  42  ", 42),
    ],
)
def test_parse_size_whitespace(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8tb", 8 * 10**12),
        ("8Tb", 8 * 10**12),
        ("500gb", 500 * 10**9),
        ("7.2tib", int(7.2 * 2**40)),
        ("7.2TIB", int(7.2 * 2**40)),
        ("4mib", 4 * 2**20),
        ("1.5gib", 3 * 2**29),
        ("10b", 10),
    ],
)
def test_parse_size_ignores_case(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_decimal_and_binary_units_differ() -> None:
    assert parse_size("1MB") == 1_000_000
    assert parse_size("1MiB") == 1_048_576


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "MB", "10XB", "10 K B", "-5MB", "-1", "+5MB", "1e5", "1E5", "1.5.5MB", "1.", "5 MB B", "1,5MB",
     "inf", "nan", "0x10", "10MBs", "1_000"],
)  # fmt: skip
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_size(text)
    message = str(info.value)
    # The message quotes what was given and says what a size looks like.
    assert repr(text) in message
    assert "150MB" in message
    assert "7.2TiB" in message
    assert info.value.exit_code == ExitCode.USAGE == 2


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (999, "999 B"),
        (1000, "1 KB"),
        (1234, "1.23 KB"),
        (12_345, "12.3 KB"),
        (123_456, "123 KB"),
        (1_234_567, "1.23 MB"),
        (150 * 10**6, "150 MB"),
        (999_499, "999 KB"),
        (5 * 10**9, "5 GB"),
        (8 * 10**12, "8 TB"),
        (2**40, "1.1 TB"),
        (999 * 10**12, "999 TB"),
        (-1234, "-1.23 KB"),
        (12.7, "13 B"),
    ],
)
def test_format_size(size: float, expected: str) -> None:
    assert format_size(size) == expected


@pytest.mark.parametrize("text", ["150MB", "8TB", "500GB", "1KB", "42B"])
def test_format_size_reads_back(text: str) -> None:
    assert parse_size(format_size(parse_size(text)).replace(" ", "")) == parse_size(text)


# --- bugs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimal", "binary"),
    [
        ("100M", "100MB (100,000,000 bytes", "100MiB (104,857,600 bytes)"),
        ("8T", "8TB (8,000,000,000,000 bytes", "8TiB (8,796,093,022,208 bytes)"),
        ("4m", "4MB (4,000,000 bytes", "4MiB (4,194,304 bytes)"),
        (" 1.5 G ", "1.5GB (1,500,000,000 bytes", "1.5GiB (1,610,612,736 bytes)"),
        ("64K", "64KB (64,000 bytes", "64KiB (65,536 bytes)"),
        ("2P", "2PB", "2PiB"),
    ],
)
def test_bare_letter_is_refused_with_both_readings(text: str, decimal: str, binary: str) -> None:
    # A "100M" drive read as MiB came out at 100,691,968 bytes and did not fit a 100,000,000-byte drive.
    with pytest.raises(UsageError) as info:
        parse_size(text)
    message = str(info.value)
    assert "ambiguous" in message and decimal in message and binary in message
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.1GB", 4_100_000_000), ("2.01TB", 2_010_000_000_000), ("1.005KB", 1005)],
)
def test_parse_size_fractional_decimal_is_exact(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_large_byte_count_is_exact() -> None:
    assert parse_size("9007199254740993") == 2**53 + 1


@pytest.mark.parametrize("size", [999_500, 999_999, 999_999_999, 1.5 * 10**15])
def test_format_size_never_uses_exponent_notation(size: float) -> None:
    text = format_size(size)
    assert "e+" not in text
    # and it still reads back as about the same size
    assert abs(parse_size(text.replace(" ", "")) - size) <= size * 0.005
