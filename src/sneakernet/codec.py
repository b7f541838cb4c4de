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

from .errors import FormatError
from .format import METHOD_STORE, METHOD_ZSTD

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Frame header descriptor: Single_Segment_flag set (no window descriptor; the window is the content size)
# and a 4-byte Frame_Content_Size field (FCS flag 2). Chunks are far below 4 GiB.
_STORE_DESCRIPTOR = 0xA0
_RAW_BLOCK_MAX = 128 * 1024
_RAW_BLOCK_TYPE = 0

#: Compression must save at least this fraction of a sample, or the chunk is stored.
MIN_SAVING = 0.03
#: The trial that decides whether a chunk is worth compressing at all compresses this many samples of this
#: size, spread over the chunk at level 1: a group of small files can mix text with JPEGs, so one sample from
#: one place would misjudge it.
TRIAL_SAMPLES = 4
TRIAL_SAMPLE_SIZE = 16 * 1024

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # ZstdCompressor objects are not thread-safe; keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] = getattr(_local, "compressors", None) or {}
    _local.compressors = cache
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
    return cache[level]


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


def looks_compressible(raw: bytes | memoryview) -> bool:
    """Whether a fast trial on samples spread over ``raw`` saves at least :data:`MIN_SAVING`."""
    if len(raw) <= TRIAL_SAMPLES * TRIAL_SAMPLE_SIZE:
        sample: bytes | memoryview = raw
    else:
        view = memoryview(raw)
        step = (len(raw) - TRIAL_SAMPLE_SIZE) // (TRIAL_SAMPLES - 1)
        sample = b"".join(view[i * step : i * step + TRIAL_SAMPLE_SIZE] for i in range(TRIAL_SAMPLES))
    trial = _compressor(1).compress(sample)
    return len(trial) <= len(sample) * (1 - MIN_SAVING)


def encode_chunk(raw: bytes | memoryview, level: int) -> tuple[str, bytes]:
    """``(method, stored bytes)`` for ``raw``: compressed at ``level`` when that pays, else stored."""
    if len(raw) and looks_compressible(raw):
        compressed = _compressor(level).compress(raw)
        if len(compressed) <= len(raw) * (1 - MIN_SAVING):
            return METHOD_ZSTD, compressed
    return METHOD_STORE, store_frame(raw)


def stored_size_bound(raw_size: int) -> int:
    """The most bytes :func:`encode_chunk` can produce for ``raw_size`` raw bytes (a stored frame)."""
    blocks = max(1, -(-raw_size // _RAW_BLOCK_MAX))
    return len(_ZSTD_MAGIC) + 5 + 3 * blocks + raw_size


def decode_chunk(stored: bytes | memoryview, raw_size: int) -> bytes:
    """The raw bytes of a stored chunk, refusing any frame that would decode to other than ``raw_size`` bytes.

    The check happens before decompressing into a buffer of at most ``raw_size`` bytes, so a hostile frame
    cannot make the reader allocate more than the manifest declared (no decompression bomb).
    """
    try:
        declared = zstandard.frame_content_size(stored)
    except zstandard.ZstdError as exc:
        raise FormatError(f"chunk is not a zstd frame ({exc})") from exc
    if declared != raw_size:
        raise FormatError(f"chunk frame declares {declared} bytes, the manifest {raw_size}")
    decompressor = zstandard.ZstdDecompressor()
    try:
        raw = decompressor.decompress(stored, max_output_size=raw_size)
    except zstandard.ZstdError as exc:
        raise FormatError(f"chunk does not decompress ({exc})") from exc
    if len(raw) != raw_size:
        raise FormatError(f"chunk decompressed to {len(raw)} bytes, the manifest says {raw_size}")
    return raw
