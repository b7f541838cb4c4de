"""format/container.py: zstd-compressed JSON Lines, the container of manifests and catalogs."""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path
from typing import Any

import blake3
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from craft import RecordFileWriter
from sneakernet.errors import FormatError
from sneakernet.format.container import (
    MAX_LINE,
    HashingReader,
    RecordWriter,
    _parse_line,
    check_single_frame,
    encode_record,
    read_records,
)

COUNT = 10_000


def make_records(count: int = COUNT, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records: list[dict[str, Any]] = [
        {"type": "file", "i": i, "path": f"dir{i % 97}/file-{i:05d}.bin", "blake3": rng.randbytes(32).hex()}
        for i in range(count - 1)
    ]
    records.append({"type": "end", "records": count})
    return records


def write(path: Path, records: list[dict[str, Any]]) -> tuple[int, str]:
    writer = RecordFileWriter(path)  # the writer on a file it is handed
    for record in records:
        writer.write(record)
    assert writer.records == len(records)
    return writer.close()


def read(data: bytes, what: str = "the manifest") -> list[dict[str, Any]]:
    return list(read_records(io.BytesIO(data), what))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], bytes]:
    records = make_records()
    path = tmp_path_factory.mktemp("records") / "manifest.jsonl.zst"
    size, digest = write(path, records)
    data = path.read_bytes()
    assert size == len(data)
    assert digest == blake3.blake3(data).hexdigest()
    return records, data


def test_encode_record() -> None:
    assert encode_record({"type": "end", "records": 3}) == b'{"type":"end","records":3}\n'
    assert encode_record({"path": "é\n"}) == b'{"path":"\\u00e9\\n"}\n'
    assert encode_record({"a": [1, None, True]}) == b'{"a":[1,null,true]}\n'


def test_round_trip_10000_records(big_file: tuple[list[dict[str, Any]], bytes]) -> None:
    records, data = big_file
    raw_size = sum(len(encode_record(r)) for r in records)
    assert raw_size > 1 << 20, "enough records to cross a compressor flush"
    assert len(data) < raw_size
    # zstd frame with its content checksum on
    assert data[:4] == b"\x28\xb5\x2f\xfd"
    assert data[4] & 0x04
    assert read(data) == records
    # the standard zstd decoder reads it as plain JSON Lines
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert [json.loads(line) for line in text.splitlines()] == records


def test_hashing_reader_sees_every_byte(big_file: tuple[list[dict[str, Any]], bytes]) -> None:
    records, data = big_file
    source = HashingReader(io.BytesIO(data))
    stream = read_records(source, "the manifest")
    assert next(stream) == records[0]
    source.drain()
    assert source.size == len(data)
    assert source.hasher.hexdigest() == blake3.blake3(data).hexdigest()


def test_size_bound_holds_at_every_point(tmp_path: Path) -> None:
    records = make_records(6000, seed=9)
    lines = [len(encode_record(r)) for r in records]
    writer = RecordFileWriter(tmp_path / "m.zst")
    bounds = []
    for i, record in enumerate(records):
        if i % 500 == 0:
            bounds.append(writer.size_bound(sum(lines[i:])))
        writer.write(record)
    bounds.append(writer.size_bound(0))
    size, _ = writer.close()
    assert size == (tmp_path / "m.zst").stat().st_size
    assert len(bounds) == 13
    assert all(bound >= size for bound in bounds), (size, bounds)
    # and the bound is not absurdly loose once everything is written and flushed at least once
    assert bounds[-1] < size + 2 * (1 << 20)


@settings(max_examples=40, deadline=None)
@given(
    blobs=st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=60),
    check_every=st.integers(min_value=1, max_value=7),
)
def test_size_bound_holds_for_incompressible_records(
    tmp_path_factory: Any, blobs: list[bytes], check_every: int
) -> None:
    # Base64 of random bytes hardly compresses: the worst case for the bound.
    rng = random.Random(len(blobs))
    records = [{"b": base64.b64encode(blob + rng.randbytes(len(blob))).decode()} for blob in blobs]
    lines = [len(encode_record(r)) for r in records]
    path = tmp_path_factory.mktemp("bound") / "m.zst"
    writer = RecordFileWriter(path)
    bounds = []
    for i, record in enumerate(records):
        if i % check_every == 0:
            bounds.append(writer.size_bound(sum(lines[i:])))
        writer.write(record)
    bounds.append(writer.size_bound())
    size, _ = writer.close()
    assert min(bounds) >= size
    assert read(path.read_bytes()) == records


def test_size_bound_of_a_large_incompressible_file(tmp_path: Path) -> None:
    rng = random.Random(3)
    records = [{"b": base64.b64encode(rng.randbytes(30_000)).decode()} for _ in range(120)]
    lines = [len(encode_record(r)) for r in records]
    writer = RecordFileWriter(tmp_path / "m.zst")
    bounds = []
    for i, record in enumerate(records):
        bounds.append(writer.size_bound(sum(lines[i:])))
        writer.write(record)
    bounds.append(writer.size_bound())
    size, _ = writer.close()
    assert sum(lines) > 4 << 20
    assert min(bounds) >= size


CUTS = [0, 1, 4, 6, 20, 100, 0.25, 0.5, 0.75, -100, -8, -5]


@pytest.mark.parametrize("cut", CUTS)
def test_truncated_file_raises_or_loses_its_end(big_file: tuple[list[dict[str, Any]], bytes], cut: float) -> None:
    records, data = big_file
    keep = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    assert 0 <= keep < len(data)
    try:
        got = read(data[:keep])
    except FormatError as exc:
        assert "the manifest is damaged or cut short at line" in str(exc)
        return
    # No error: what was read is a strict prefix, and the end record the caller checks is missing.
    assert len(got) < len(records)
    assert got == records[: len(got)]
    assert all(r["type"] != "end" for r in got)


def test_truncation_outcomes(big_file: tuple[list[dict[str, Any]], bytes]) -> None:
    _, data = big_file
    # A cut inside the first (only partly flushed) block yields nothing; a cut further on is reported.
    assert read(data[:100]) == []
    with pytest.raises(FormatError, match=r"the manifest is damaged or cut short at line \d+"):
        read(data[: len(data) // 2])


@pytest.mark.parametrize("missing", [1, 2, 3])
def test_frame_cut_in_its_checksum_is_refused(big_file: tuple[list[dict[str, Any]], bytes], missing: int) -> None:
    """The stream reader takes a frame cut inside its checksum for a clean end; check_single_frame does not."""
    records, data = big_file
    cut = data[:-missing]
    assert read(cut) == records
    with pytest.raises(FormatError, match="cut short"):
        check_single_frame(io.BytesIO(cut), "the manifest")


def test_single_frame_check(big_file: tuple[list[dict[str, Any]], bytes]) -> None:
    _, data = big_file
    check_single_frame(io.BytesIO(data), "the manifest")
    with pytest.raises(FormatError, match="followed by other bytes"):
        check_single_frame(io.BytesIO(data + b"\0"), "the manifest")
    with pytest.raises(FormatError, match="not a zstd frame"):
        check_single_frame(io.BytesIO(b"garbage" * 10), "the manifest")


@pytest.mark.parametrize("where", [1 / 3, 1 / 2, 2 / 3, -6, -2])
def test_flipped_byte_is_refused(big_file: tuple[list[dict[str, Any]], bytes], where: float) -> None:
    _, data = big_file
    position = int(len(data) * where) if isinstance(where, float) else len(data) + where
    damaged = bytearray(data)
    damaged[position] ^= 0xFF
    # Caught by the frame checksum, or before it by a line that no longer parses.
    with pytest.raises(
        FormatError, match=r"the manifest is damaged: zstd cannot decode it|the manifest line \d+ is not valid JSON"
    ):
        read(bytes(damaged))


def test_flipped_byte_in_small_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.zst"
    records = make_records(40)
    write(path, records)
    data = path.read_bytes()
    refused = 0
    for position in range(10, len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            got = read(bytes(damaged))
        except FormatError:
            refused += 1
        else:
            # never silently different records
            assert got == records[: len(got)]
            assert len(got) < len(records)
    assert refused >= (len(data) - 10) * 0.9


def zstd_lines(*lines: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(b"".join(lines))


def test_line_longer_than_max_line_is_refused() -> None:
    ok = b'{"x":"' + b"a" * (MAX_LINE - 9) + b'"}\n'
    assert len(ok) == MAX_LINE
    assert read(zstd_lines(b'{"n":1}\n', ok)) == [{"n": 1}, {"x": "a" * (MAX_LINE - 9)}]
    too_long = b'{"x":"' + b"a" * (MAX_LINE - 8) + b'"}\n'
    with pytest.raises(FormatError, match="the manifest is damaged or cut short at line 2"):
        read(zstd_lines(b'{"n":1}\n', too_long))
    with pytest.raises(FormatError, match="at line 1"):
        read(zstd_lines(b"x" * (5 * MAX_LINE)))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((b'{"a":1}\n', b"[1, 2]\n"), "the manifest line 2 is not a JSON object"),
        ((b'"text"\n',), "the manifest line 1 is not a JSON object"),
        ((b'{"a":1}\n', b"{not json}\n"), "the manifest line 2 is not valid JSON"),
        ((b"\xff\xfe\n",), "the manifest line 1 is not valid JSON"),
        ((b'{"a":1}\n', b'{"a":2}'), "the manifest is damaged or cut short at line 2"),
        ((b"\n",), "the manifest line 1 is not valid JSON"),
    ],
)
def test_bad_lines_are_refused(lines: tuple[bytes, ...], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read(zstd_lines(*lines))


@pytest.mark.parametrize("data", [b"not zstd at all\n" * 10, b"\x28\xb5\x2f\xfd" + b"\xff" * 40])
def test_not_zstd_is_refused(data: bytes) -> None:
    with pytest.raises(FormatError, match="the catalog is damaged: zstd cannot decode it"):
        read(data, "the catalog")


def test_empty_file_has_no_records() -> None:
    assert read(b"") == []


def test_deeply_nested_line_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        read(zstd_lines(b"[" * 100_000 + b"\n"))


def test_a_writer_not_closed_leaves_bytes_without_their_end() -> None:
    sink = io.BytesIO()
    writer = RecordWriter(sink)
    records = make_records(30)
    for record in records:
        writer.write(record)
    got = read(sink.getvalue())
    assert len(got) < len(records)
    assert got == records[: len(got)]
    with pytest.raises(FormatError):
        check_single_frame(io.BytesIO(sink.getvalue()), "the manifest")


def test_a_flushed_writer_leaves_every_record_so_far_readable_from_a_cut_frame() -> None:
    """format.md 19.10: after flush() the bytes handed over decode to every record written (read with cut=True),
    though the frame is not finished; cut anywhere after, they decode to the same records or more."""
    sink = io.BytesIO()
    writer = RecordWriter(sink)
    records = make_records(2000)
    marks = []
    for number, record in enumerate(records[:-1], start=1):
        writer.write(record)
        if number % 300 == 0:
            marks.append((writer.flush(), number))
    data = sink.getvalue()
    for size, number in marks:
        assert size <= len(data)
        got = list(read_records(io.BytesIO(data[:size]), "the manifest", cut=True))
        assert got == records[:number]
        for cut in range(size, min(size + 200, len(data))):
            try:
                more = list(read_records(io.BytesIO(data[:cut]), "the manifest", cut=True))
            except FormatError:
                continue  # a line or a block cut short: the reader says so, it yields no part of it
            assert more[:number] == records[:number] and more == records[: len(more)]
    # Without cut, python-zstandard's stream reader holds back the last block of a frame without end: the
    # reason the .partial reader asks for cut=True.
    size, number = marks[-1]
    with pytest.raises(FormatError):
        assert len(list(read_records(io.BytesIO(data[:size]), "the manifest"))) == number


# --- the line parser --------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, compact=st.booleans())
def test_a_line_parses_as_json_loads_reads_it(value: Any, compact: bool) -> None:
    text = json.dumps(value, separators=(",", ":") if compact else (", ", ": "))
    assert _parse_line(text + "\n") == json.loads(text)


@pytest.mark.parametrize("line", ['  {"a":1}\n', '{"a":1}  \n', "\t[1, 2]\n", "NaN\n"])
def test_whitespace_around_the_value_is_accepted_as_json_loads_accepts_it(line: str) -> None:
    assert repr(_parse_line(line)) == repr(json.loads(line))


@pytest.mark.parametrize("line", ['{"a":1}x\n', '{"a":1}{"b":2}\n', "\n", '{"a":\n', '{"a" 1}\n', "]\n"])
def test_what_json_loads_refuses_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        json.loads(line)
    with pytest.raises(ValueError):
        _parse_line(line)
