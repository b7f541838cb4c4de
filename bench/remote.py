#!/usr/bin/env python3
"""Pack from a local S3 server against pack from a local directory of the same data (issue 17's acceptance), and
a restore into s3:// killed with SIGKILL and run again.

    python bench/remote.py --objects 6 --size 64MiB --runs 3 --raw --kill

Starts moto's S3 server (tests/s3server.py, the test extra) on 127.0.0.1, uploads --objects objects of --size of
incompressible bytes under a prefix and writes the same files in a local directory, then times
``sneakernet -q pack SRC --out ... --json`` from each side alternately (A B A B ...), reporting the medians, their
ratio (target: s3 at least 0.7x the local rate) and each side's peak RSS (``/usr/bin/time -f %M``; target under
300 MB). With --kill, restores the local pack into s3:// in a subprocess, kills it with SIGKILL once a third of the
objects are up, runs it again with the same journal and counts the objects the second run did not upload again.
With --raw, the server's own rate: the objects fetched by ranged GETs on a thread pool, nothing packed. With
--roundtrip, issue 17's round trip: 2,000 small objects under nested prefixes and the large ones packed from s3://
onto 3 drives, restored into another bucket and into a local directory, every key and byte compared.
Slow and noisy on a shared machine: not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from s3server import S3Server  # noqa: E402
from sneakernet.units import parse_size  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, object]]:
    """Wall seconds, peak RSS in KB, and the --json summary of one command."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return seconds, int(result.stderr.strip().splitlines()[-1]), json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--size", default="64MiB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kill", action="store_true", help="also the SIGKILL test of a restore into s3://")
    parser.add_argument("--raw", action="store_true", help="also the server's own rate: the objects by ranged GETs")
    parser.add_argument("--roundtrip", action="store_true", help="also a tree packed from s3:// restored into s3://")
    parser.add_argument("--small", type=int, default=300, help="small objects beside the large ones for --kill")
    args = parser.parse_args()
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="sneakernet-remote-bench-"))
    server = S3Server()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "AWS_ACCESS_KEY_ID": server.key,
           "AWS_SECRET_ACCESS_KEY": server.secret}  # fmt: skip
    try:
        client = server.client()
        client.create_bucket(Bucket="bench")
        local = work / "src"
        local.mkdir()
        for i in range(args.objects):
            data = os.urandom(size)
            (local / f"large-{i:02d}.bin").write_bytes(data)
            client.upload_file(str(local / f"large-{i:02d}.bin"), "bench", f"data/large-{i:02d}.bin")
        total = args.objects * size
        endpoint = ["--storage-option", f"endpoint_url={server.endpoint}"]
        sides = {
            "local": [str(local)],
            "s3": ["s3://bench/data", *endpoint],
        }
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        rss: dict[str, list[int]] = {name: [] for name in sides}
        for run in range(args.runs):
            for name, source in sides.items():
                out = work / f"out-{name}-{run}"
                command = [sys.executable, "-m", "sneakernet", "-q", "pack", *source, "--out", str(out),
                           "--drive-size", str(total * 2), "--json"]  # fmt: skip
                subprocess.run(["sync"], check=False)
                wall, peak, summary = timed(command, env)
                seconds[name].append(wall)
                rss[name].append(peak)
                print(f"run {run + 1} {name}: {wall:.2f} s, {total / wall / 1e6:.0f} MB/s, peak RSS {peak // 1024} MB, "
                      f"{summary['files']} files", flush=True)  # fmt: skip
                if not (args.kill and name == "local" and run == 0):
                    shutil.rmtree(out)
        median = {name: statistics.median(values) for name, values in seconds.items()}
        local_s, s3_s = median["local"], median["s3"]
        print(
            f"median local {local_s:.2f} s ({total / local_s / 1e6:.0f} MB/s), s3 {s3_s:.2f} s "
            f"({total / s3_s / 1e6:.0f} MB/s): s3 at {local_s / s3_s:.2f}x the local rate; peak RSS local "
            f"{max(rss['local']) // 1024} MB, s3 {max(rss['s3']) // 1024} MB"
        )
        if args.raw:
            raw_rate(server, [f"bench/data/large-{i:02d}.bin" for i in range(args.objects)], size)
        if args.kill:
            kill_test(server, env, work, args.small)
        if args.roundtrip:
            roundtrip(server, env, work, 2000, args.objects, size)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def raw_rate(server: S3Server, keys: list[str], size: int) -> None:
    """What the server itself serves: every object fetched by ranged GETs on a thread pool, nothing packed."""
    import concurrent.futures

    import fsspec

    fs = fsspec.filesystem("s3", endpoint_url=server.endpoint, key=server.key, secret=server.secret)
    for piece in (8 << 20, 16 << 20, 64 << 20):
        for threads in (4, 8):
            jobs = [(key, offset) for key in keys for offset in range(0, size, piece)]
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                got = sum(map(len, pool.map(lambda j, n=piece: fs.cat_file(j[0], start=j[1], end=j[1] + n), jobs)))
            rate = got / (time.monotonic() - started) / 1e6
            print(f"server alone: ranges of {piece >> 20} MiB, {threads} threads: {rate:.0f} MB/s")


def kill_test(server: S3Server, env: dict[str, str], work: Path, small: int) -> None:
    """Restore into s3:// killed with SIGKILL, then run again: the objects not uploaded again."""
    src = work / "kill-src"
    src.mkdir()
    for i in range(small):
        (src / f"small-{i:04d}.txt").write_bytes(os.urandom(2000 + i))
    shutil.copytree(work / "src", src / "large")
    out = work / "kill-out"
    subprocess.run([sys.executable, "-m", "sneakernet", "-q", "pack", str(src), "--out", str(out), "--drive-size",
                    "200MB"], env=env, check=True)  # fmt: skip
    drives = sorted(str(p) for p in out.iterdir())
    wanted = small + len(list((src / "large").iterdir()))
    client = server.client()
    client.create_bucket(Bucket="killed")
    journal = work / "journal"
    command = [sys.executable, "-m", "sneakernet", "-q", "restore", *drives, "--into", "s3://killed/p", "--journal",
               str(journal), "--storage-option", f"endpoint_url={server.endpoint}"]  # fmt: skip

    def listed() -> dict[str, int]:
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="killed", Prefix="p/"):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
        return found

    sizes = {str(p.relative_to(src)): p.stat().st_size for p in src.rglob("*") if p.is_file()}

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    while process.poll() is None and len(listed()) < wanted // 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = listed()
    partial = [key for key, size in before.items() if size != sizes[key.split("/", 1)[1]]]
    # The second run in this process, through a store that counts what it uploads.
    from sneakernet.io.objects import ObjectStore
    from sneakernet.restorer.objects import restore_to_store

    uploaded: list[str] = []

    class Counting(ObjectStore):
        def upload(self, local: str, key: str) -> None:
            super().upload(local, key)
            uploaded.append(key)

    os.environ.update(env)
    started = time.monotonic()
    store = Counting("s3://killed/p", {"endpoint_url": server.endpoint})
    restore_to_store(drives, "s3://killed/p", journal=str(journal), store=store)
    again = time.monotonic() - started
    kept = len(set(before) - {key.split("/", 1)[1] for key in uploaded})
    print(
        f"kill test: {len(before)} of {wanted} objects up when killed ({len(partial)} of a wrong size); the second run "
        f"({again:.1f} s) uploaded {len(uploaded)}, so {kept} of the {len(before)} were not uploaded again; "
        f"{len(listed())} objects at the end"
    )


def roundtrip(server: S3Server, env: dict[str, str], work: Path, small: int, large: int, size: int) -> None:
    """Issue 17's round trip: a tree of small and large objects under nested prefixes packed from s3:// onto 3
    drives, restored into another bucket and into a local directory; every key and byte compared."""
    import hashlib
    import random

    client = server.client()
    client.create_bucket(Bucket="round-src")
    client.create_bucket(Bucket="round-dst")
    rng = random.Random(17)
    digests: dict[str, str] = {}
    for i in range(small):
        data = rng.randbytes(rng.randint(0, 64_000))
        key = f"small/{i % 7}/{i // 7 % 5}/obj-{i:05d}.bin"
        client.put_object(Bucket="round-src", Key=f"tree/{key}", Body=data)
        digests[key] = hashlib.sha256(data).hexdigest()
    for i in range(large):
        data = os.urandom(size)
        key = f"large/part-{i:02d}.bin"
        client.put_object(Bucket="round-src", Key=f"tree/{key}", Body=data)
        digests[key] = hashlib.sha256(data).hexdigest()
    total = sum(1 for _ in digests)
    raw = small * 32_000 + large * size
    endpoint = ["--storage-option", f"endpoint_url={server.endpoint}"]
    out = work / "round-out"
    drive_size = str(raw // 3 + raw // 10)
    sneakernet = [sys.executable, "-m", "sneakernet", "-q"]
    subprocess.run([*sneakernet, "pack", "s3://round-src/tree", *endpoint, "--out", str(out), "--drive-size",
                    drive_size], env=env, check=True)  # fmt: skip
    drives = sorted(str(p) for p in out.iterdir())
    subprocess.run([*sneakernet, "restore", *drives, "--into", "s3://round-dst/back", "--journal",
                    str(work / "round-journal"), *endpoint], env=env, check=True)  # fmt: skip
    got: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="round-dst", Prefix="back/"):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket="round-dst", Key=item["Key"])["Body"].read()
            got[item["Key"][len("back/") :]] = hashlib.sha256(body).hexdigest()
    subprocess.run([*sneakernet, "restore", *drives, "--into", str(work / "round-local")], env=env, check=True)
    local = {
        str(p.relative_to(work / "round-local")): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (work / "round-local").rglob("*")
        if p.is_file() and ".sneakernet" not in p.parts
    }
    same_s3 = "identical" if got == digests else "DIFFERENT"
    same_local = "identical" if local == digests else "DIFFERENT"
    print(
        f"round trip: {total} objects ({small} small, {large} of {size >> 20} MiB) packed from s3:// onto "
        f"{len(drives)} drives; into s3:// {same_s3} ({len(got)} objects), into a local directory {same_local} "
        f"({len(local)} files)"
    )


if __name__ == "__main__":
    main()
