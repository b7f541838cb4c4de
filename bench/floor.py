#!/usr/bin/env python3
"""Pack against its floor: the CPU its codecs need for a dataset, and what `sneakernet pack` spends beyond it.

    python bench/floor.py --size 1GB --repeats 3            # compare.py's ML-like mix (generated, cached)
    python bench/floor.py --tree DIR --repeats 3            # any tree

The floor (issue 19) is what no packer of this format can avoid on a warm cache: reading every byte, one BLAKE3
pass over it, and zstd at the level pack chose for the chunks it keeps compressed (a chunk stored raw costs no
compression). It is measured here in this process, chunk by chunk with the package's own chunker and its own choice
of level (a chunk's trial decides, as in pack; the trial itself is overhead, not floor), as thread CPU seconds:

    floor CPU   = read + BLAKE3 + zstd of the kept chunks        (core-seconds)
    floor wall  = floor CPU / cores                              (every core busy, nothing else)

Then `sneakernet pack` of the same tree runs ``--repeats`` times (each into a fresh output, ``sync`` between), and
the report gives pack's median wall time and CPU time (user + system of the process and its children) against the
floor, as ratios: issue 19 asks for pack within 1.3x of the floor wall time. Each floor part is measured
``--repeats`` times too, alternating with the packs, and its median used.

It imports the package (for the chunker and the codec) and runs the ``sneakernet`` next to this interpreter.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import blake3
import zstandard

from sneakernet.chunks.chunker import Chunker, is_large
from sneakernet.chunks.compress import (
    LOW_YIELD,
    LOW_YIELD_LEVEL,
    LOW_YIELD_WINDOW_LOG,
    MIN_SAVING,
    trial_saving,
)
from sneakernet.chunks.stream import RawChunk
from sneakernet.options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (  # bench/ is not a package: compare.py is found on sys.path
    DEFAULT_WORKDIR,
    Command,
    ensure_dataset,
    find_sneakernet,
    parse_size,
    run_timed,
    warm_cache,
    write_bytecode,
)


@dataclass
class Floor:
    """Thread CPU seconds of each part of the floor, and what the chunks came to."""

    read: float = 0.0
    blake3: float = 0.0
    zstd: float = 0.0
    files: int = 0
    raw_bytes: int = 0
    chunks: int = 0
    compressed_chunks: int = 0
    stored_bytes: int = 0

    @property
    def cpu(self) -> float:
        return self.read + self.blake3 + self.zstd


def tree_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, in a sorted walk (pack's order is sorted too; the floor does not
    depend on the order beyond how small files group)."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


@functools.cache
def compressors(level: int) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
    """The two compressors pack's codec uses (chunks/compress.py): the chosen level, and the low-yield one."""
    chosen = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
    params = zstandard.ZstdCompressionParameters.from_level(
        LOW_YIELD_LEVEL, window_log=LOW_YIELD_WINDOW_LOG, write_content_size=True, write_checksum=False
    )
    return chosen, zstandard.ZstdCompressor(compression_params=params)


def account_chunk(chunk: RawChunk, floor: Floor, level: int) -> None:
    """Add one chunk's hash and, when pack would keep it compressed, its compression."""
    chosen, low_yield = compressors(level)
    data = chunk.data
    started = time.thread_time()
    blake3.blake3(data).digest()
    floor.blake3 += time.thread_time() - started
    compressor = chosen if trial_saving(data) >= LOW_YIELD else low_yield
    started = time.thread_time()
    compressed = compressor.compress(data)
    spent = time.thread_time() - started
    floor.chunks += 1
    if len(compressed) <= len(data) * (1 - MIN_SAVING):
        floor.zstd += spent
        floor.compressed_chunks += 1
        floor.stored_bytes += len(compressed)
    else:
        floor.stored_bytes += len(data)


def read_file(path: Path, floor: Floor) -> bytes:
    started = time.thread_time()
    with open(path, "rb") as handle:
        data = handle.read()
    floor.read += time.thread_time() - started
    return data


def measure_floor(files: list[Path], chunk_size: int, level: int) -> Floor:
    """The floor of ``files``: each file read, cut by the package's chunker, each chunk hashed and compressed."""
    floor = Floor()
    chunker = Chunker(chunk_size)
    for index, path in enumerate(files):
        size = path.stat().st_size
        floor.files += 1
        if size == 0:
            continue
        floor.raw_bytes += size
        if is_large(size, chunk_size):
            for chunk in chunker.close_group():
                account_chunk(chunk, floor, level)
            with open(path, "rb") as handle:
                offset = 0
                while True:
                    started = time.thread_time()
                    piece = handle.read(chunk_size)
                    floor.read += time.thread_time() - started
                    if not piece:
                        break
                    for chunk in chunker.add_large_piece(index, offset, piece):
                        account_chunk(chunk, floor, level)
                    offset += len(piece)
        else:
            for chunk in chunker.add_small(index, read_file(path, floor)):
                account_chunk(chunk, floor, level)
    for chunk in chunker.close_group():
        account_chunk(chunk, floor, level)
    return floor


def time_pack(sneakernet: str, tree: Path, out: Path, drive_size: int, logs: Path) -> dict[str, float]:
    """One `sneakernet pack` into a fresh ``out``: wall seconds, CPU seconds (user + system), peak RSS MB."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    before = os.times()
    argv = [sneakernet, "pack", str(tree), "--out", str(out), "--drive-size", str(drive_size), "--quiet"]
    seconds, rss, code = run_timed(Command(argv), logs)
    after = os.times()
    if code != 0:
        raise SystemExit(f"floor: pack failed (exit {code}); see {logs.with_suffix('.err')}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall": seconds, "cpu": cpu, "rss_mb": rss / 1024}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tree", type=Path, help="pack this tree (default: compare.py's generated mix)")
    source.add_argument("--size", type=parse_size, default=parse_size("1GB"), help="mix size (default 1GB)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--drive-size", type=parse_size, help="sneakernet --drive-size (default: size/4)")
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL, help=f"zstd level (default {DEFAULT_LEVEL})")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    parser.add_argument("--seed", type=int, default=0, help="mix seed (default 0)")
    parser.add_argument("--out", type=Path, help="JSON results (default: print only)")
    return parser.parse_args(argv)


def report(floors: list[Floor], packs: list[dict[str, float]], cores: int) -> dict[str, Any]:
    parts = {name: statistics.median(getattr(f, name) for f in floors) for name in ("read", "blake3", "zstd")}
    floor_cpu = sum(parts.values())
    floor_wall = floor_cpu / cores
    wall = statistics.median(p["wall"] for p in packs)
    cpu = statistics.median(p["cpu"] for p in packs)
    return {
        "cores": cores,
        "floor_parts_cpu_s": parts,
        "floor_cpu_s": floor_cpu,
        "floor_wall_s": floor_wall,
        "pack_wall_s": wall,
        "pack_cpu_s": cpu,
        "pack_rss_mb": max(p["rss_mb"] for p in packs),
        "pack_wall_over_floor": wall / floor_wall,
        "pack_cpu_over_floor": cpu / floor_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.tree is not None:
        tree = args.tree.resolve()
        files = tree_files(tree)
        total = sum(p.stat().st_size for p in files)
    else:
        drive_size = args.drive_size or args.size // 4
        tree, _ = ensure_dataset(args.workdir, args.size, drive_size, args.seed)
        files = tree_files(tree)
        total = sum(p.stat().st_size for p in files)
    drive_size = args.drive_size or max(total // 4, 64 * 2**20)
    sneakernet = find_sneakernet()
    write_bytecode(sneakernet)
    warm_cache(tree)
    logs = args.workdir / "floor-logs"
    logs.mkdir(exist_ok=True)
    cores = os.cpu_count() or 1
    floors, packs = [], []
    for repeat in range(args.repeats):
        floors.append(measure_floor(files, DEFAULT_CHUNK_SIZE, args.level))
        packs.append(time_pack(sneakernet, tree, args.workdir / "floor-out", drive_size, logs / f"pack-{repeat}"))
        print(
            f"#{repeat + 1}: floor {floors[-1].cpu:.2f} CPU-s, pack {packs[-1]['wall']:.2f} s wall "
            f"{packs[-1]['cpu']:.2f} CPU-s",
            file=sys.stderr,
        )
    shutil.rmtree(args.workdir / "floor-out", ignore_errors=True)
    result = report(floors, packs, cores)
    result["dataset"] = {"tree": str(tree), "files": len(files), "bytes": total}
    result["chunks"] = {k: v for k, v in asdict(floors[-1]).items() if k not in ("read", "blake3", "zstd")}
    result["load_average_after"] = os.getloadavg()
    parts = result["floor_parts_cpu_s"]
    print(f"dataset: {len(files)} files, {total / 1e9:.2f} GB; {cores} cores; medians of {args.repeats}")
    print(
        f"floor:  {result['floor_cpu_s']:.2f} CPU-s (read {parts['read']:.2f}, BLAKE3 {parts['blake3']:.2f}, "
        f"zstd {parts['zstd']:.2f}) = {result['floor_wall_s']:.2f} s on {cores} cores"
    )
    print(
        f"pack:   {result['pack_wall_s']:.2f} s wall = {result['pack_wall_over_floor']:.2f}x the floor; "
        f"{result['pack_cpu_s']:.2f} CPU-s = {result['pack_cpu_over_floor']:.2f}x the floor's CPU; "
        f"peak RSS {result['pack_rss_mb']:.0f} MB"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
