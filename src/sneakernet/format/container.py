"""Streaming JSON Lines files compressed with zstd: the container of manifests and catalogs.

A writer never holds more than one record and zstd's window; a reader never holds more than one line. The
writer keeps an upper bound of the file's final size, so a drive can reserve room for its manifest while it is
still growing. Both work on streams they are handed: opening, fsyncing and renaming a record file are drive/'s.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Protocol, cast

import blake3
import zstandard

from ..errors import FormatError

#: Compression level of manifests and catalogs: level 1. Most of a manifest is hashes, which do not compress; on the
#: 100,000-file manifest of bench/many_files.py level 1 left 0.200 of it at 828 MB/s, level 3 0.228 at 339 MB/s,
#: level 9 0.230 at 72 MB/s (catalogs: 0.058 / 0.056 / 0.042). The writing thread compresses them, per file packed.
RECORD_LEVEL = 1
#: Lines gathered before they go to the compressor together.
BATCH = 64 * 1024
#: Flush the compressor after this much input, so the bytes still held inside it stay bounded and the
#: writer's size bound stays tight.
FLUSH_EVERY = 1 << 20
#: Longest line a reader accepts; a longer one is damage, not a record (bounds a reader's memory).
MAX_LINE = 1 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd adds at most a few bytes per 128 KiB block plus a frame header and a final empty block.
_FRAME_SLACK = 64


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as its line: compact JSON, ASCII only, ending in a newline."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


class Sink(Protocol):
    """Where a :class:`RecordWriter` puts the compressed bytes: anything with ``write`` (a drive's
    ``.partial`` file, a buffer). Opening, fsyncing and renaming it are the caller's (drive/)."""

    def write(self, data: bytes | memoryview, /) -> object: ...


class RecordWriter:
    """Writes records to ``sink`` as zstd-compressed JSON Lines and hashes the compressed bytes as they go.

    Until :meth:`close` the bytes handed to ``sink`` are not a valid record file (no end record, no closed frame),
    which is what makes a crash detectable; after :meth:`flush` they decode up to the last record written.
    """

    def __init__(self, sink: Sink) -> None:
        self._hashing = _HashingSink(sink)
        compressor = zstandard.ZstdCompressor(level=RECORD_LEVEL, write_checksum=True)
        self._stream = compressor.stream_writer(cast(BinaryIO, self._hashing), closefd=False)
        self.records = 0
        self._unflushed = 0
        #: Lines not yet handed to the compressor: one call per batch, not per record.
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(encode_record(record))

    def write_line(self, line: bytes) -> None:
        """A record already encoded by :func:`encode_record`."""
        self._pending.append(line)
        self._pending_size += len(line)
        self.records += 1
        self._unflushed += len(line)
        if self._pending_size >= BATCH:
            self._hand_over()
        if self._unflushed >= FLUSH_EVERY:
            self.flush()

    def _hand_over(self) -> None:
        if self._pending:
            self._stream.write(b"".join(self._pending))
            self._pending, self._pending_size = [], 0

    def flush(self) -> int:
        """Hand every record written so far to the sink as whole zstd blocks (they decode without the rest of the
        frame); returns the bytes the sink has had. The frame stays open: more records may follow."""
        self._hand_over()
        self._stream.flush(zstandard.FLUSH_BLOCK)
        self._unflushed = 0
        return self._hashing.size

    def size_bound(self, extra: int = 0) -> int:
        """The most bytes the finished file can have if ``extra`` more uncompressed bytes are written."""
        pending = self._unflushed + extra
        return self._hashing.size + pending + pending // 1024 + _FRAME_SLACK

    def close(self) -> tuple[int, str]:
        """Finish the frame and return ``(size, blake3 hex)`` of every byte handed to the sink (which the caller
        then makes durable and closes)."""
        self._hand_over()
        self._stream.close()  # type: ignore[no-untyped-call]
        return self._hashing.size, self._hashing.hasher.hexdigest()


class _HashingSink(io.RawIOBase):
    """A write-only file object that hashes and counts what passes through to ``target``."""

    def __init__(self, target: Sink) -> None:
        self.target = target
        self.hasher = blake3.blake3()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.target.write(data)
        self.hasher.update(data)
        self.size += len(data)
        return len(data)


class HashingReader:
    """A readable file object that hashes and counts every byte read from ``source``."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.hasher = blake3.blake3()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left unread."""
        while self.read(1 << 20):
            pass


def type_prefix(record_type: str) -> bytes:
    """How a line of ``record_type`` starts: writers put ``type`` first (docs/format.md, section 5)."""
    return b'{"type":"' + record_type.encode("ascii") + b'"'


def _starts_with_its_type(line: bytes, record_type: Any) -> bool:
    """Whether ``line`` starts with ``{"type":"<its type>"``, written out plainly (no escapes, no spaces)."""
    if not isinstance(record_type, str) or not record_type.isascii():
        return True  # not a type any reader knows: refused as such by the caller, with a better message
    return line.startswith(type_prefix(record_type))


# JSONDecoder sets scan_once in __init__ (the C scanner); typeshed does not declare it.
_scan_value: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse_line(text: str) -> Any:
    """The JSON value of one line, as ``json.loads`` reads it: the decoder's scanner called directly when the
    value fills the line up to its newline (every line a writer of this format writes), which skips a third of
    the per-line cost of ``json.loads``; anything else (whitespace around the value, trailing bytes) is left to
    ``json.loads``, which accepts or refuses it as always."""
    try:
        value, end = _scan_value(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text) - 1:
        return json.loads(text)
    return value


def read_records(
    source: BinaryIO | HashingReader,
    what: str,
    only: tuple[bytes, ...] | None = None,
    on_line: Callable[[bytes], None] | None = None,
    *,
    cut: bool = False,
) -> Iterator[dict[str, Any] | None]:
    """Each record of a zstd JSON Lines stream, as a dict; :class:`FormatError` naming ``what`` on damage.

    With ``only`` (line prefixes from :func:`type_prefix`), the first line and lines starting with one of them
    are parsed and every other line yields None: a cheap way to walk one kind of record while still counting all.
    The caller checks the header (the first record) and the end record's count; this reader only promises
    that each record it yields was a whole, well-formed line. ``on_line`` is given every whole line after the
    first, parsed or not, as its bytes (version 2's fingerprint hashes a catalog's body, docs/format.md 19.6).

    With ``cut``, ``source`` may be a frame cut short (a writer's flushed ``.partial``, format.md 19.10): it is
    decoded as far as its bytes go, and a line cut at its end is the FormatError of any damage.
    """
    reader: io.RawIOBase | zstandard.ZstdDecompressionReader
    if cut:
        reader = _CutFrameReader(source)
    else:
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, source), read_across_frames=False, closefd=False
        )
    text = io.BufferedReader(cast(io.RawIOBase, reader), buffer_size=1 << 16)
    number = 0
    while True:
        try:
            line = text.readline(MAX_LINE + 1)
        except zstandard.ZstdError as exc:
            raise FormatError(f"{what} is damaged: zstd cannot decode it ({exc})") from exc
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise FormatError(f"{what} is damaged or cut short at line {number}")
        if on_line is not None and number > 1:
            on_line(line)
        if only is not None and number > 1 and not line.startswith(only):
            yield None
            continue
        try:
            record = _parse_line(line.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise FormatError(f"{what} line {number} is not valid JSON") from exc
        if not isinstance(record, dict):
            raise FormatError(f"{what} line {number} is not a JSON object")
        if not _starts_with_its_type(line, record.get("type")):
            # A pass for one kind of record picks lines by this prefix: a record that does not start with it
            # would be read by one pass and missed by the other.
            raise FormatError(f'{what} line {number} does not start with its "type", as every record must')
        yield record


class _CutFrameReader(io.RawIOBase):
    """The decoded bytes of a zstd frame that may end early or be damaged after some point, as far as its whole
    blocks go. The frame is walked by its block headers and each whole block handed to the decoder on its own:
    a block cut short is never handed over (the end of what is readable), a damaged one raises after every block
    before it was given out, and no more than one block's output (128 KiB) is held at a time. (python-zstandard's
    stream reader holds back the output of the last blocks of a frame that has no end.)"""

    def __init__(self, source: BinaryIO | HashingReader) -> None:
        self._source = source
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self._input = bytearray()
        self._output = b""
        self._started = False
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._output and not self._done:
            piece = self._next_piece()
            if piece is None:
                self._done = True
            else:
                self._output = self._decoder.decompress(piece)
        count = min(len(target), len(self._output))
        target[:count] = self._output[:count]
        self._output = self._output[count:]
        return count

    def _take(self, size: int) -> bytes | None:
        """The next ``size`` bytes of the source, None if it ends first."""
        while len(self._input) < size:
            data = self._source.read(max(size - len(self._input), 1 << 16))
            if not data:
                return None
            self._input += data
        piece = bytes(self._input[:size])
        del self._input[:size]
        return piece

    def _next_piece(self) -> bytes | None:
        """The frame header first, then one whole block at a time (the last with the checksum after it)."""
        if not self._started:
            self._started = True
            head = self._take(5)  # magic number and frame header descriptor: enough to size the header
            if head is None:
                return None
            rest = self._take(zstandard.frame_header_size(head + bytes(13)) - 5)
            return None if rest is None else head + rest
        header = self._take(3)
        if header is None:
            return None
        value = int.from_bytes(header, "little")
        last, kind, length = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise zstandard.ZstdError("a zstd block of reserved type")
        body = self._take(1 if kind == 1 else length)
        if body is None:
            return None
        if last:
            self._done = True  # a checksum may follow: the decoder checks it if it is whole, else it is left
            return header + body + (self._take(4) or b"")
        return header + body


def check_single_frame(handle: BinaryIO, what: str) -> None:
    """The file holds exactly one whole zstd frame: its blocks are walked by their headers (no decoding) to the
    last one and its checksum. python-zstandard's stream reader takes a frame cut inside its final checksum for a
    clean end, so a reader that must know the file is whole calls this after reading the records."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    head = handle.read(18)
    if head[:4] != ZSTD_MAGIC:
        raise FormatError(f"{what} is not a zstd frame (no zstd magic number)")
    try:
        position = zstandard.frame_header_size(head)
    except zstandard.ZstdError as exc:
        raise FormatError(f"{what} is not a zstd frame ({exc})") from exc
    has_checksum = bool(head[4] & 0x04)
    while True:
        handle.seek(position)
        block = handle.read(3)
        if len(block) < 3:
            raise FormatError(f"{what} is cut short: its zstd frame has no last block")
        header = int.from_bytes(block, "little")
        last, kind, length = header & 1, (header >> 1) & 3, header >> 3
        if kind == 3:
            raise FormatError(f"{what} is damaged: a zstd block of reserved type")
        position += 3 + (1 if kind == 1 else length)
        if last:
            break
    position += 4 if has_checksum else 0
    if position != size:
        problem = "cut short" if position > size else "followed by other bytes"
        raise FormatError(f"{what} is {problem}: its zstd frame ends at byte {position} of {size}")
