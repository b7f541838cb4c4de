#!/usr/bin/env python3
"""Time the chunk transform of an encrypted shipment (crypto/aead.py) on one core, beside what pack already does
to every chunk (zstd level 3, BLAKE3), on the same 4 MiB buffers.

    .venv/bin/python bench/crypto.py                 # 3 kinds of data, 7 repeats of 16 buffers each
    .venv/bin/python bench/crypto.py --repeats 3 --buffers 8 --json out.json

For each kind of data (``text``: words, compresses about 3:1; ``floats``: float32-like arrays, about 0.9;
``random``: incompressible) it reports, in GB/s of input per core (the median of ``--repeats`` runs, each over
``--buffers`` different 4 MiB buffers), for each cipher of docs/format.md 19.8.2 (``aes``: AES-256-GCM, what pack
writes by default; ``chacha``: ChaCha20-Poly1305): ``seal`` (SegmentSealer.seal_into, associated data and all, into
one buffer kept from chunk to chunk, as the drive writer does) and ``open`` (SegmentOpener, a new bytes object per
chunk); then ``blake3`` and ``zstd-3`` (compress). Then what encryption adds to pack's work on a chunk with each
cipher: sealing its zstd frame, into a kept buffer, over compressing it and hashing the raw bytes and the stored
ones (the ``added`` columns, in per cent).

The process is pinned to one CPU (``--cpu``, default the first it may use). Needs the ``crypt`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import blake3  # noqa: E402
import zstandard  # noqa: E402

from sneakernet.crypto.aead import KeyDrawer, SegmentKey, SegmentOpener, SegmentPlace  # noqa: E402
from sneakernet.format import CIPHER_AES_GCM, CIPHER_CHACHA, CIPHERS  # noqa: E402

BUFFER = 4 * 1024 * 1024
WORDS = b"the of and to in is that for it as with was on be by at this from data model train shard token".split()


def make_buffer(kind: str, rng: random.Random) -> bytes:
    if kind == "random":
        return rng.randbytes(BUFFER)
    if kind == "floats":  # random mantissas under a low-entropy sign and exponent, as bench/compare.py's arrays
        mantissas = rng.randbytes(BUFFER // 4 * 3)
        exponents = bytes(rng.choice((0x3E, 0x3F, 0xBE, 0xBF)) for _ in range(BUFFER // 4))
        return b"".join(mantissas[3 * i : 3 * i + 3] + exponents[i : i + 1] for i in range(BUFFER // 4))
    text = bytearray()
    while len(text) < BUFFER:
        text += b" ".join(rng.choices(WORDS, k=64)) + b"\n"
    return bytes(text[:BUFFER])


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


#: Each cipher a manifest header may name (docs/format.md 19.8.2), by its column's short name.
SHORT = {CIPHER_AES_GCM: "aes", CIPHER_CHACHA: "chacha"}
assert set(SHORT) == set(CIPHERS)


def seal_segment_into(frames: list[bytes], place: SegmentPlace, out: bytearray, cipher: str) -> SegmentKey:
    """Seal ``frames`` into one buffer kept from chunk to chunk, as a drive writer does before writing it, with a
    fresh key; the key, for opening."""
    sealer = KeyDrawer(cipher=cipher).new_segment(place)
    offset = 0
    for index, frame in enumerate(frames):
        offset += sealer.seal_into(frame, out, chunk_id=index, offset=offset, raw_size=BUFFER)
    return sealer.key


def seal_segment(frames: list[bytes], place: SegmentPlace, cipher: str) -> tuple[SegmentKey, list[bytes]]:
    """Seal ``frames`` as one segment's chunks, back to back, with a fresh key: the key and each sealed chunk."""
    sealer = KeyDrawer(cipher=cipher).new_segment(place)
    sealed, offset = [], 0
    for index, frame in enumerate(frames):
        sealed.append(sealer.seal(frame, chunk_id=index, offset=offset, raw_size=BUFFER))
        offset += len(sealed[-1])
    return sealer.key, sealed


def measure(kind: str, count: int, repeats: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    buffers = [make_buffer(kind, rng) for _ in range(count)]
    size = count * BUFFER
    place = SegmentPlace("0123456789abcdef0123456789abcdef", drive=1, segment=1)
    compressor = zstandard.ZstdCompressor(level=3)
    frames = [compressor.compress(buffer) for buffer in buffers]
    out = bytearray(BUFFER + 4096)  # an incompressible chunk's frame is a little longer than the chunk
    seconds: dict[str, float] = {}
    for cipher, short in SHORT.items():
        key, sealed = seal_segment(buffers, place, cipher)
        segment = SegmentOpener(key, place, cipher)
        offsets = [i * (BUFFER + 16) for i in range(count)]

        def open_all(segment: SegmentOpener = segment, sealed: list[bytes] = sealed, offsets: list[int] = offsets):
            for i, stored in enumerate(sealed):
                segment.open(stored, index=i, chunk_id=i, offset=offsets[i], raw_size=BUFFER)

        seconds[f"{short} seal"] = median_seconds(lambda c=cipher: seal_segment_into(buffers, place, out, c), repeats)
        seconds[f"{short} open"] = median_seconds(open_all, repeats)
    seconds["blake3"] = median_seconds(lambda: [blake3.blake3(b).digest() for b in buffers], repeats)
    seconds["zstd-3"] = median_seconds(lambda: [compressor.compress(b) for b in buffers], repeats)
    result = {name: size / value / 1e9 for name, value in seconds.items()}
    result["ratio"] = sum(map(len, frames)) / size
    # pack's work on a chunk today: compress it, hash the raw bytes and the stored frame; encryption adds the seal
    # of the frame (the stored hash is then of the ciphertext, 16 bytes longer: the same hashing).
    today = median_seconds(
        lambda: [
            (compressor.compress(b), blake3.blake3(b).digest(), blake3.blake3(f).digest())
            for b, f in zip(buffers, frames, strict=True)
        ],
        repeats,
    )
    for cipher, short in SHORT.items():
        added = median_seconds(lambda c=cipher: seal_segment_into(frames, place, out, c), repeats)
        result[f"added {short}"] = 100 * added / today
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--buffers", type=int, default=16, help="distinct 4 MiB buffers per run")
    parser.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the first allowed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    print(f"one core (cpu {cpu}), {args.buffers} x 4 MiB buffers, median of {args.repeats} runs, GB/s of input")
    columns = [f"{short} {what}" for short in SHORT.values() for what in ("seal", "open")] + ["blake3", "zstd-3"]
    added = [f"added {short}" for short in SHORT.values()]
    print(
        f"{'data':8}"
        + "".join(f"{c:>13}" for c in columns)
        + f"{'zstd ratio':>12}"
        + "".join(f"{a:>14}" for a in added)
    )
    results = {}
    for kind in ("text", "floats", "random"):
        figures = results[kind] = measure(kind, args.buffers, args.repeats, args.seed)
        print(
            f"{kind:8}"
            + "".join(f"{figures[c]:13.2f}" for c in columns)
            + f"{figures['ratio']:12.2f}"
            + "".join(f"{figures[a]:13.1f}%" for a in added)
        )
    print("seal: into a buffer kept from chunk to chunk, as the drive writer does; open: a new bytes object each")
    print("added: sealing the zstd frame, over compressing it plus hashing the raw and stored bytes (pack's work)")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "buffers": args.buffers, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
