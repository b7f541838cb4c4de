"""Parity engines' throughput (issue 15): encode, rebuild one lost data drive, rebuild three, on one core.

    taskset -c 1 .venv/bin/python bench/parity_engine.py            # k=10, m=3, 4 MiB blocks, every engine found

Each figure is data GB/s: the k data blocks of a stripe (k x 4 MiB) divided by the median time of one call of
sneakernet.parity.engine.ParityCode's encode_into / reconstruct_into (into output blocks kept from stripe to stripe,
as a writer does) over --repeat runs; "fresh" is encode() making new output blocks each time, for comparison.
Floors on the same bytes and core: a plain copy (memcpy) and BLAKE3 (one thread, what b3sum does per core). The
issue asks at least 2 GB/s of data per core for k=10, m=3, and rebuild at least at the drives' speed.
The process pins itself to one CPU (the first it may use, or --cpu) unless --no-pin.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import blake3

from sneakernet.parity.engine import Backend, ParityCode, installed_backends


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    run()  # warm: tables made, pages touched
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engines(names: list[str] | None) -> list[Backend]:
    found = installed_backends()
    return [engine for engine in found if not names or any(name in engine.name for name in names)]


def measure(code: ParityCode, data: list[bytes], repeat: int) -> list[float]:
    """Median seconds of: encode_into, rebuild one (column 3), rebuild three (0, 4, 8), encode (fresh outputs)."""
    k, size = code.k, len(data[0])
    parity = code.encode(data)
    one = {c: data[c] for c in range(k) if c != 3}
    three = {c: data[c] for c in range(k) if c not in (0, 4, 8)}
    rows = dict(enumerate(parity))
    assert code.reconstruct(one, rows)[3] == data[3]
    assert [bytes(b) for b in code.reconstruct(three, rows).values()] == [data[0], data[4], data[8]]
    outputs = [bytearray(size) for _ in range(code.m)]
    one_out = {3: bytearray(size)}
    three_out = {c: bytearray(size) for c in (0, 4, 8)}
    figures = [
        median_seconds(lambda: code.encode_into(data, outputs), repeat),
        median_seconds(lambda: code.reconstruct_into(one, rows, one_out), repeat),
        median_seconds(lambda: code.reconstruct_into(three, rows, three_out), repeat),
        median_seconds(lambda: code.encode(data), repeat),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", type=int, default=10, help="data blocks a stripe (default 10)")
    parser.add_argument("-m", type=int, default=3, help="parity blocks a stripe (default 3)")
    parser.add_argument("--block-mib", type=int, default=4, help="block size in MiB (default 4)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs a figure, median taken (default 15)")
    parser.add_argument("--engine", action="append", help="only engines whose name contains this (repeatable)")
    parser.add_argument("--cpu", type=int, help="the CPU to pin to (default: the first this process may use)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    args = parser.parse_args()
    if not args.no_pin:
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    k, m, size = args.k, args.m, args.block_mib << 20
    data = [os.urandom(size) for _ in range(k)]
    stripe = k * size
    print(
        f"k={k} m={m} block={args.block_mib} MiB, data GB/s (1e9 bytes/s), median of {args.repeat}, "
        f"CPUs {sorted(os.sched_getaffinity(0))}"
    )

    target = bytearray(stripe)
    joined = b"".join(data)
    view = memoryview(target)  # a memoryview's slice assignment is a memcpy (bytearray's own is several times slower)
    copy = median_seconds(lambda: view.__setitem__(slice(None), joined), args.repeat)
    hashing = median_seconds(lambda: blake3.blake3(joined).digest(), args.repeat)
    print(f"{'floor: memcpy':44} {stripe / copy / 1e9:7.2f}")
    print(f"{'floor: BLAKE3, one thread':44} {stripe / hashing / 1e9:7.2f}")

    for engine in engines(args.engine):
        figures = measure(
            ParityCode(k, m, engine), data, args.repeat if engine.name != "numpy" else max(3, args.repeat // 5)
        )
        rates = [stripe / seconds / 1e9 for seconds in figures]
        print(
            f"{engine.name[-44:]:44} encode {rates[0]:6.2f}  rebuild one {rates[1]:6.2f}  rebuild three {rates[2]:6.2f}"
            f"  fresh encode {rates[3]:6.2f}  (encode = {rates[0] / (stripe / hashing / 1e9):.2f} x BLAKE3)"
        )


if __name__ == "__main__":
    main()
