"""chunks/compress.py: chunks as standard zstd frames, compressed or stored, and the refusals of bad frames."""

from __future__ import annotations

import dataclasses
import random
import shutil
import struct
import subprocess

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.chunks.codec import ChunkCodec
from sneakernet.chunks.compress import (
    LOW_YIELD,
    LOW_YIELD_LEVEL,
    LOW_YIELD_WINDOW_LOG,
    MIN_SAVING,
    decode_chunk,
    encode_chunk,
    store_frame,
    stored_size_bound,
    trial_saving,
)
from sneakernet.errors import FormatError
from sneakernet.format import ManifestHeader
from sneakernet.options import DEFAULT_LEVEL

MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 128 * 1024
HAVE_ZSTD = shutil.which("zstd") is not None


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def text(size: int) -> bytes:
    line = b"a line of text that repeats, as logs and CSV files do, 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


# --- round trips ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 100, 4096, 65536, 1_000_000])
def test_random_bytes_are_stored(size: int) -> None:
    raw = random_bytes(size)
    method, stored = encode_chunk(raw, 3)
    assert method == "store"
    assert stored == store_frame(raw)
    assert len(stored) == stored_size_bound(size)
    assert decode_chunk(stored, size) == raw


@pytest.mark.parametrize("size", [200, 4096, 65536, 1_000_000])
@pytest.mark.parametrize("level", [1, 3, 19])
def test_repetitive_text_is_compressed(size: int, level: int) -> None:
    raw = text(size)
    method, stored = encode_chunk(raw, level)
    assert method == "zstd"
    assert len(stored) <= size * (1 - MIN_SAVING)
    assert stored.startswith(MAGIC)
    assert zstandard.frame_content_size(stored) == size
    assert decode_chunk(stored, size) == raw
    assert zstandard.ZstdDecompressor().decompress(stored) == raw


def test_memoryview_input() -> None:
    raw = text(10_000) + random_bytes(10_000)
    for data in (memoryview(raw), memoryview(bytearray(raw))):
        method, stored = encode_chunk(data, 3)
        assert method == "zstd"
        assert decode_chunk(stored, len(raw)) == raw
    assert store_frame(memoryview(raw)) == store_frame(raw)


def test_empty_chunk() -> None:
    method, stored = encode_chunk(b"", 3)
    assert method == "store"
    # magic, descriptor 0xA0 (single segment, 4-byte content size), size 0, one last raw block of 0 bytes
    assert stored == MAGIC + b"\xa0" + b"\x00\x00\x00\x00" + b"\x01\x00\x00"
    assert stored_size_bound(0) == len(stored) == 12
    assert decode_chunk(stored, 0) == b""
    assert zstandard.ZstdDecompressor().decompress(stored) == b""


def raw_blocks(frame: bytes) -> list[tuple[bool, int, int]]:
    """(last, type, size) of each block of a store frame."""
    assert frame[:4] == MAGIC
    assert frame[4] == 0xA0
    blocks = []
    at = 9
    while True:
        header = int.from_bytes(frame[at : at + 3], "little")
        last, kind, size = bool(header & 1), (header >> 1) & 3, header >> 3
        blocks.append((last, kind, size))
        at += 3 + size
        if last:
            assert at == len(frame)
            return blocks


@pytest.mark.parametrize(
    ("size", "blocks"),
    [
        (1, [1]),
        (BLOCK - 1, [BLOCK - 1]),
        (BLOCK, [BLOCK]),
        (BLOCK + 1, [BLOCK, 1]),
        (2 * BLOCK, [BLOCK, BLOCK]),
        (2 * BLOCK + 1, [BLOCK, BLOCK, 1]),
        (4 * 2**20, [BLOCK] * 32),
    ],
)
def test_store_frame_blocks(size: int, blocks: list[int]) -> None:
    raw = random_bytes(size, seed=size)
    frame = store_frame(raw)
    assert struct.unpack("<I", frame[5:9]) == (size,)
    assert raw_blocks(frame) == [(i == len(blocks) - 1, 0, n) for i, n in enumerate(blocks)]
    assert len(frame) == 9 + 3 * len(blocks) + size == stored_size_bound(size)
    assert zstandard.frame_content_size(frame) == size
    assert zstandard.ZstdDecompressor().decompress(frame) == raw
    assert decode_chunk(frame, size) == raw
    method, stored = encode_chunk(raw, 3)
    assert (method, stored) == ("store", frame)


@pytest.mark.skipif(not HAVE_ZSTD, reason="the zstd command-line tool is not on PATH")
@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 1])
def test_zstd_cli_decodes_store_frames(size: int) -> None:
    raw = random_bytes(size, seed=size)
    result = subprocess.run(["zstd", "-d", "-c", "-q"], input=store_frame(raw), capture_output=True, check=True)
    assert result.stdout == raw


@pytest.mark.skipif(not HAVE_ZSTD, reason="the zstd command-line tool is not on PATH")
def test_zstd_cli_decodes_a_segment_of_mixed_frames() -> None:
    chunks = [random_bytes(BLOCK + 7, seed=1), text(50_000), b"", random_bytes(10, seed=2), text(3 * BLOCK)]
    encoded = [encode_chunk(c, 3) for c in chunks]
    assert [m for m, _ in encoded] == ["store", "zstd", "store", "store", "zstd"]
    segment = b"".join(stored for _, stored in encoded)
    result = subprocess.run(["zstd", "-d", "-c", "-q"], input=segment, capture_output=True, check=True)
    assert result.stdout == b"".join(chunks)
    # and zstd's own integrity test accepts the segment
    subprocess.run(["zstd", "-t", "-q"], input=segment, check=True)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(min_value=0, max_value=3 * BLOCK + 5))
def test_stored_size_bound_is_exact_for_store_frames(size: int) -> None:
    assert len(store_frame(bytes(size))) == stored_size_bound(size)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=5000), level=st.integers(min_value=1, max_value=9))
def test_encode_round_trip_and_bound(raw: bytes, level: int) -> None:
    method, stored = encode_chunk(raw, level)
    assert method in ("zstd", "store")
    assert len(stored) <= stored_size_bound(len(raw))
    if method == "zstd":
        assert len(stored) <= len(raw) * (1 - MIN_SAVING)
    else:
        assert stored == store_frame(raw)
    assert decode_chunk(stored, len(raw)) == raw


def test_compressibility_trial() -> None:
    assert trial_saving(bytes(100)) > 0.5
    assert trial_saving(text(2**20)) > 0.5
    assert trial_saving(random_bytes(100)) <= 0
    assert trial_saving(random_bytes(2**20)) <= 0
    assert trial_saving(b"") == 0


def float_like(size: int, seed: int = 0) -> bytes:
    """float32 values with random mantissas and few exponents: zstd saves about 10%, only by entropy coding."""
    rng = random.Random(seed)
    values = [rng.getrandbits(23) | (rng.choice((124, 125, 126, 127)) << 23) for _ in range(size // 4)]
    return struct.pack(f"<{len(values)}I", *values)


def low_yield_frame(raw: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        LOW_YIELD_LEVEL, window_log=LOW_YIELD_WINDOW_LOG, write_content_size=True, write_checksum=False
    )
    return zstandard.ZstdCompressor(compression_params=params).compress(raw)


@pytest.mark.parametrize("level", [3, 9])
def test_well_compressing_chunks_use_the_chosen_level(level: int) -> None:
    raw = text(2**20)
    assert trial_saving(raw) >= LOW_YIELD
    chosen = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False).compress(raw)
    assert encode_chunk(raw, level) == ("zstd", chosen)


def test_low_yield_chunks_are_compressed_fast_and_lose_nothing_to_level_3() -> None:
    raw = float_like(2**20)
    assert 0 < trial_saving(raw) < LOW_YIELD
    method, stored = encode_chunk(raw, 3)
    assert (method, stored) == ("zstd", low_yield_frame(raw))
    level_3 = zstandard.ZstdCompressor(level=3).compress(raw)
    assert len(stored) <= len(level_3) * 1.01
    assert decode_chunk(stored, len(raw)) == raw


def test_repeats_the_samples_miss_are_found() -> None:
    # Two copies of the same 1.5 MiB of noise in one chunk (a group of files repeating each other): every sample
    # of the trial is noise, and only compressing the whole chunk with a window over all of it sees the repeat.
    noise = random_bytes(1536 * 1024, seed=7)
    raw = noise + noise
    assert trial_saving(raw) <= 0
    method, stored = encode_chunk(raw, 3)
    assert method == "zstd"
    assert len(stored) < len(raw) * 0.51
    assert decode_chunk(stored, len(raw)) == raw
    assert zstandard.get_frame_parameters(stored).window_size <= 2**LOW_YIELD_WINDOW_LOG


@pytest.mark.parametrize(
    "raw",
    [text(64 * 1024) + random_bytes(192 * 1024), random_bytes(192 * 1024) + text(64 * 1024)],
    ids=["text-first", "text-last"],
)
def test_group_of_text_and_noise_is_compressed(raw: bytes) -> None:
    # A group of small files mixing text with incompressible files still pays to compress as a whole.
    method, stored = encode_chunk(raw, 3)
    assert method == "zstd"
    assert len(stored) < len(raw) * 0.8
    assert decode_chunk(stored, len(raw)) == raw


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw_size", [0, 99, 101, 2**20])
def test_declared_size_must_match(raw_size: int) -> None:
    with pytest.raises(FormatError, match=f"chunk frame declares 100 bytes, the manifest {raw_size}"):
        decode_chunk(store_frame(random_bytes(100)), raw_size)
    with pytest.raises(FormatError, match=f"chunk frame declares 2000 bytes, the manifest {raw_size}"):
        decode_chunk(encode_chunk(text(2000), 3)[1], raw_size)


def test_frame_without_content_size_is_refused() -> None:
    stored = zstandard.ZstdCompressor(write_content_size=False).compress(text(2000))
    with pytest.raises(FormatError, match="chunk frame declares -1 bytes, the manifest 2000"):
        decode_chunk(stored, 2000)


@pytest.mark.parametrize("keep", [0, 3, 4, 8, 9, 12, 5000, 2 * BLOCK, 2 * BLOCK + 14])
def test_truncated_store_frame_is_refused(keep: int) -> None:
    raw = random_bytes(2 * BLOCK + 10)
    frame = store_frame(raw)
    assert keep < len(frame)
    with pytest.raises(FormatError, match="chunk"):
        decode_chunk(frame[:keep], len(raw))


def test_truncated_compressed_frame_is_refused() -> None:
    raw = text(300_000)
    method, stored = encode_chunk(raw, 3)
    assert method == "zstd"
    for keep in (0, 5, len(stored) // 2, len(stored) - 1):
        with pytest.raises(FormatError, match="chunk"):
            decode_chunk(stored[:keep], len(raw))


@pytest.mark.parametrize(
    "stored", [b"", b"\x00", b"garbage, not a frame", bytes(64), MAGIC, b"\xfd\x2f\xb5\x28" + bytes(20)]
)
def test_garbage_is_refused(stored: bytes) -> None:
    with pytest.raises(FormatError, match="chunk is not a zstd frame"):
        decode_chunk(stored, 0)


def test_corrupt_compressed_frame_is_refused() -> None:
    raw = text(100_000)
    stored = bytearray(encode_chunk(raw, 3)[1])
    stored[len(stored) // 2 :] = bytes(len(stored) - len(stored) // 2)
    with pytest.raises(FormatError, match="chunk does not decompress"):
        decode_chunk(bytes(stored), len(raw))


def zeros_bomb(size: int) -> bytes:
    """A zstd frame of ``size`` zero bytes, made without holding ``size`` bytes."""
    compressor = zstandard.ZstdCompressor(level=1, write_content_size=True).compressobj(size=size)
    step = 2**20
    parts = [compressor.compress(bytes(step)) for _ in range(size // step)]
    return b"".join([*parts, compressor.flush()])


def test_bomb_is_refused_by_its_declared_size() -> None:
    bomb = zeros_bomb(64 * 2**20)
    assert len(bomb) < 10_000
    assert zstandard.frame_content_size(bomb) == 64 * 2**20
    with pytest.raises(FormatError, match=f"chunk frame declares {64 * 2**20} bytes, the manifest 1000"):
        decode_chunk(bomb, 1000)


def test_bomb_that_lies_about_its_size_is_refused() -> None:
    bomb = bytearray(zeros_bomb(64 * 2**20))
    # Frame header: magic, descriptor 0x80 (4-byte content size, with a window descriptor), window, size.
    assert bomb[4] == 0x80
    assert struct.unpack("<I", bomb[6:10]) == (64 * 2**20,)
    bomb[6:10] = struct.pack("<I", 1000)
    assert zstandard.frame_content_size(bytes(bomb)) == 1000
    # Its 512 blocks are more than 1000 bytes can fill: refused by the walk of its block headers, before decoding.
    with pytest.raises(FormatError, match="chunk frame has more blocks than 17"):
        decode_chunk(bytes(bomb), 1000)


def test_chunk_codec_from_the_manifest_header_round_trips() -> None:
    header = ManifestHeader("s" * 32, 1, "2026-01-01T00:00:00Z", 1 << 20, 1 << 30, "sneakernet test", level=7)
    codec = ChunkCodec.from_header(header)
    assert codec.level == 7 and ChunkCodec.from_header(dataclasses.replace(header, level=None)).level == DEFAULT_LEVEL
    raw = b"sneakernet " * 5000
    method, stored = codec.encode(raw)
    assert (method, stored) == encode_chunk(raw, 7)
    assert codec.frame_problem(stored, len(raw)) is None and codec.decode(stored, len(raw)) == raw
    with pytest.raises(FormatError):
        codec.decode(stored, len(raw) + 1)
