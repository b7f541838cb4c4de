"""How one chunk's raw bytes become its stored bytes and back.

Every stored chunk is one standard zstd frame, so ``zstd -d`` decodes any chunk, and a whole segment is a
concatenation of frames. A chunk that compresses (method ``zstd``) is a normal compressed frame. A chunk that
does not pay (method ``store``) is a frame built here of *raw blocks*: the bytes as they are behind a 3-byte
header every 128 KiB, so no CPU is spent compressing them.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from ..errors import FormatError
from ..format import METHOD_STORE, METHOD_ZSTD

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: A chunk's frame may have at most raw_size / MIN_BLOCK_AVERAGE + 2 blocks (see frame_problem).
MIN_BLOCK_AVERAGE = 64
# Frame header descriptor: Single_Segment_flag set (no window descriptor; the window is the content size)
# and a 4-byte Frame_Content_Size field (FCS flag 2). Chunks are far below 4 GiB.
_STORE_DESCRIPTOR = 0xA0
_RAW_BLOCK_MAX = 128 * 1024
_RAW_BLOCK_TYPE = 0

#: Compression must save at least this fraction of a chunk, or the chunk is stored.
MIN_SAVING = 0.03
#: A trial compresses this many samples of this size, spread over the chunk, at level 1: it tells data that
#: compresses well (text, code, tables) from data that saves little or nothing (floats, media, archives). A group
#: of small files can mix text with JPEGs, so one sample from one place would misjudge it.
TRIAL_SAMPLES = 4
TRIAL_SAMPLE_SIZE = 16 * 1024
#: A chunk whose trial saves less than this is *low-yield*: it is compressed whole at :data:`LOW_YIELD_LEVEL`, not
#: at the chosen level. On such data (float arrays, audio, images, archives) zstd's higher levels find no more
#: than level 1 does (measured: float32 arrays 0.9103 at both levels 1 and 3, 1.6x faster at 1; PNG within 1.2%),
#: and on random bytes level 1 runs at about 4 GB/s a core. Compressing the whole chunk rather than trusting the
#: samples catches what samples cannot see: files of a group repeating each other (Debian's .gz changelogs:
#: the samples save nothing, the whole chunk 38%).
LOW_YIELD = 0.15
LOW_YIELD_LEVEL = 1
#: The low-yield compressor's window covers a whole chunk (level 1's own is 512 KiB), so a repeat anywhere in a
#: chunk is found; a decoder needs at most that much memory, as for any frame of a chunk.
LOW_YIELD_WINDOW_LOG = 22

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # ZstdCompressor objects are not thread-safe; keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] = getattr(_local, "compressors", None) or {}
    _local.compressors = cache
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
    return cache[level]


def _low_yield_compressor() -> zstandard.ZstdCompressor:
    found: zstandard.ZstdCompressor | None = getattr(_local, "low_yield", None)
    if found is None:
        params = zstandard.ZstdCompressionParameters.from_level(
            LOW_YIELD_LEVEL, window_log=LOW_YIELD_WINDOW_LOG, write_content_size=True, write_checksum=False
        )
        found = _local.low_yield = zstandard.ZstdCompressor(compression_params=params)
    return found


def store_frame(raw: bytes | memoryview) -> bytes:
    """A zstd frame of raw blocks holding ``raw`` unchanged."""
    size = len(raw)
    parts = [_ZSTD_MAGIC, struct.pack("<BI", _STORE_DESCRIPTOR, size)]
    view = memoryview(raw)
    offset = 0
    while True:
        block = view[offset : offset + _RAW_BLOCK_MAX]
        offset += len(block)
        last = offset >= size
        header = last | (_RAW_BLOCK_TYPE << 1) | (len(block) << 3)
        parts.append(header.to_bytes(3, "little"))
        parts.append(block)  # type: ignore[arg-type]
        if last:
            return b"".join(parts)


def trial_saving(raw: bytes | memoryview) -> float:
    """The fraction a level-1 trial on samples spread over ``raw`` saves (0 for empty input)."""
    if len(raw) <= TRIAL_SAMPLES * TRIAL_SAMPLE_SIZE:
        sample: bytes | memoryview = raw
    else:
        view = memoryview(raw)
        step = (len(raw) - TRIAL_SAMPLE_SIZE) // (TRIAL_SAMPLES - 1)
        sample = b"".join(view[i * step : i * step + TRIAL_SAMPLE_SIZE] for i in range(TRIAL_SAMPLES))
    if not len(sample):
        return 0.0
    return 1 - len(_compressor(1).compress(sample)) / len(sample)


def encode_chunk(raw: bytes | memoryview, level: int) -> tuple[str, bytes]:
    """``(method, stored bytes)`` for ``raw``: compressed when that saves at least :data:`MIN_SAVING`, else stored.

    Compressed at ``level`` when a trial says it compresses well; otherwise (low-yield) compressed whole at
    level 1 with a window of the chunk, which finds what higher levels would on such data, at their fraction of
    the CPU.
    """
    if not len(raw):
        return METHOD_STORE, store_frame(raw)
    if trial_saving(raw) >= LOW_YIELD:
        compressed = _compressor(level).compress(raw)
    else:
        compressed = _low_yield_compressor().compress(raw)
    if len(compressed) <= len(raw) * (1 - MIN_SAVING):
        return METHOD_ZSTD, compressed
    return METHOD_STORE, store_frame(raw)


def stored_size_bound(raw_size: int) -> int:
    """The most bytes :func:`encode_chunk` can produce for ``raw_size`` raw bytes (a stored frame)."""
    blocks = max(1, -(-raw_size // _RAW_BLOCK_MAX))
    return len(_ZSTD_MAGIC) + 5 + 3 * blocks + raw_size


def frame_problem(stored: bytes | memoryview, raw_size: int) -> str | None:
    """Why ``stored`` is not exactly one zstd frame declaring ``raw_size`` bytes (docs/format.md 4.2), or None;
    the reason reads after "chunk" ("chunk frame declares 10 bytes, the manifest 12").

    Walks the frame's block headers without decoding (a few bytes per block of up to 128 KiB), so verify can check
    every chunk of a segment whose hash it took whole: a second frame, or other bytes, after the first inside a
    chunk's stored bytes would otherwise pass as long as the hashes were recomputed.
    """
    view = memoryview(stored)
    if bytes(view[:4]) != _ZSTD_MAGIC:
        return "is not a zstd frame (no zstd magic number)"
    try:
        position = zstandard.frame_header_size(bytes(view[:18]))
        declared = zstandard.frame_content_size(bytes(view[:position]))
    except zstandard.ZstdError as exc:
        return f"is not a zstd frame ({exc})"
    if declared != raw_size:
        return f"frame declares {declared} bytes, the manifest {raw_size}"
    # No writer makes blocks that decode to fewer than 64 bytes on average (libzstd's hold 128 KiB): a frame of
    # millions of empty blocks would otherwise make this walk, run on every chunk, take seconds a chunk.
    blocks, most = 0, raw_size // MIN_BLOCK_AVERAGE + 2
    while True:
        blocks += 1
        if blocks > most:
            return f"frame has more blocks than {most}, more than its {raw_size} raw bytes can fill"
        if position + 3 > len(view):
            return "frame is cut short: it has no last block"
        header = int.from_bytes(view[position : position + 3], "little")
        last, kind, length = header & 1, (header >> 1) & 3, header >> 3
        if kind == 3:
            return "frame holds a block of reserved type"
        position += 3 + (1 if kind == 1 else length)
        if last:
            break
    position += 4 if view[4] & 0x04 else 0  # the content checksum
    if position != len(view):
        what = "is cut short" if position > len(view) else "is followed by other bytes (a second frame?)"
        return f"frame {what}: it ends at byte {position} of its {len(view)} stored bytes"
    return None


def decode_chunk(stored: bytes | memoryview, raw_size: int) -> bytes:
    """The raw bytes of a stored chunk, refusing any frame that would decode to other than ``raw_size`` bytes.

    The check happens before decompressing into a buffer of at most ``raw_size`` bytes, so a hostile frame
    cannot make the reader allocate more than the manifest declared (no decompression bomb).
    """
    problem = frame_problem(stored, raw_size)
    if problem is not None:
        raise FormatError(f"chunk {problem}")
    decompressor = zstandard.ZstdDecompressor()
    try:
        raw = decompressor.decompress(stored, max_output_size=raw_size)
    except zstandard.ZstdError as exc:
        raise FormatError(f"chunk does not decompress ({exc})") from exc
    if len(raw) != raw_size:
        raise FormatError(f"chunk decompressed to {len(raw)} bytes, the manifest says {raw_size}")
    return raw
