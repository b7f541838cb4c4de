#!/usr/bin/env python3
"""Drives as the limit: N drives simulated by FUSE mounts throttled to a rate, and sneakernet's pack, verify and
restore onto (from) all of them at once, as multiples of one drive's rate measured in the same run.

    python bench/drives.py run --drives 4 --rate 40MB/s --size 400MB          # the issue's acceptance run
    python bench/drives.py mount BACKING MOUNTPOINT --rate 40MB/s             # one throttled drive, foreground

Each drive is a passthrough FUSE filesystem over a backing directory (libfuse3 from Debian's ``fuse3``, the
``mfusepy`` binding from PyPI; /dev/fuse works as root), run as a process of its own, whose reads and writes go
through one token bucket per mount: like a disk, a drive does one thing at a time at its rate, so reading and
writing the same drive share its rate. ``statfs`` reports the backing filesystem's, capped at ``--drive-size``.

``run`` does, in one run, alternating nothing (each step is measured once per repeat, medians reported):

1. **one drive's rate**: ``--probe`` bytes written to drive 1 with an fsync, then read back with the page cache
   dropped (``sync; echo 3 > /proc/sys/vm/drop_caches``, root);
2. **pack**: ``sneakernet pack DATA --drive D1 ... --drive DN --at-once N`` (and, with ``--baseline``, the same
   data onto drive 1 alone), the dataset being ``--size`` bytes of incompressible files;
3. **verify**: ``sneakernet verify D1 ... DN`` after dropping the page cache;
4. **restore**: ``sneakernet restore D1 ... DN --into T`` into a tmpfs, after dropping the page cache.

Each step's aggregate rate is the dataset's bytes over the step's wall time, reported with its multiple of the one
drive's write (pack) or read (verify, restore) rate. Results go to ``--out`` (JSON) and stdout. Nothing of this
runs in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
DEFAULT_WORKDIR = "/tmp/sneakernet-drives"
#: Bytes a drive may run ahead of its rate (a disk's cache): a few FUSE requests, so short bursts are not throttled
#: to a crawl while the average stays at the rate.
BURST = 1 << 20


def parse_size(text: str) -> int:
    upper = text.strip().upper().removesuffix("/S")
    for unit in sorted(UNITS, key=len, reverse=True):
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * UNITS[unit])
    return int(upper)


class Bucket:
    """One drive's rate: every read and write waits its turn, ``size / rate`` seconds of the drive's time."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._free_at = time.monotonic()

    def take(self, size: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._free_at, now - BURST / self.rate)
            self._free_at = start + size / self.rate
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


def passthrough(backing: str, bucket: Bucket, capacity: int | None) -> Any:
    """A passthrough FUSE filesystem over ``backing`` whose reads and writes take ``bucket``'s time."""
    import mfusepy

    class Throttled(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def _full(self, path: str) -> str:
            return os.path.join(backing, path.lstrip("/"))

        def _call(self, function: Any, *args: Any) -> Any:
            try:
                return function(*args)
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def access(self, path: str, amode: int) -> None:
            if not os.access(self._full(path), amode):
                raise mfusepy.FuseOSError(errno.EACCES)

        def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
            st = self._call(os.lstat, self._full(path))
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
            out = {key.removesuffix("_ns"): getattr(st, key) for key in keys}
            out["st_ino"] = st.st_ino
            return out

        def readdir(self, path: str, fh: Any) -> list[str]:
            return [".", "..", *self._call(os.listdir, self._full(path))]

        def readlink(self, path: str) -> str:
            return str(self._call(os.readlink, self._full(path)))

        def mkdir(self, path: str, mode: int) -> None:
            self._call(os.mkdir, self._full(path), mode)

        def rmdir(self, path: str) -> None:
            self._call(os.rmdir, self._full(path))

        def unlink(self, path: str) -> None:
            self._call(os.unlink, self._full(path))

        def rename(self, old: str, new: str) -> None:
            self._call(os.rename, self._full(old), self._full(new))

        def symlink(self, target: str, source: str) -> None:
            self._call(os.symlink, source, self._full(target))

        def link(self, target: str, source: str) -> None:
            self._call(os.link, self._full(source), self._full(target))

        def chmod(self, path: str, mode: int) -> None:
            self._call(os.chmod, self._full(path), mode)

        def chown(self, path: str, uid: int, gid: int) -> None:
            self._call(os.chown, self._full(path), uid, gid)

        def utimens(self, path: str, times: Any = None) -> None:
            full = self._full(path)
            try:
                os.utime(full, ns=tuple(times), follow_symlinks=False) if times else os.utime(full)
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

        def truncate(self, path: str, length: int, fh: Any = None) -> None:
            self._call(os.truncate, self._full(path) if fh is None else fh, length)

        def open(self, path: str, flags: int) -> int:
            return int(self._call(os.open, self._full(path), flags))

        def create(self, path: str, mode: int, fi: Any = None) -> int:
            return int(self._call(os.open, self._full(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            data = self._call(os.pread, fh, size, offset)
            bucket.take(len(data))
            return bytes(data)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            bucket.take(len(data))
            return int(self._call(os.pwrite, fh, data, offset))

        def flush(self, path: str, fh: int) -> None:
            pass

        def fsync(self, path: str, datasync: int, fh: int) -> None:
            self._call(os.fdatasync if datasync else os.fsync, fh)

        def release(self, path: str, fh: int) -> None:
            self._call(os.close, fh)

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(backing)
            out = {key: getattr(st, key) for key in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                                                    "f_files", "f_ffree", "f_favail", "f_namemax")}  # fmt: skip
            if capacity is not None:
                blocks = capacity // st.f_frsize
                free = max(0, blocks - _tree_bytes(backing) // st.f_frsize)
                out.update(f_blocks=blocks, f_bfree=min(free, out["f_bfree"]), f_bavail=min(free, out["f_bavail"]))
            return out

    return Throttled()


def _tree_bytes(root: str) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def mount(args: argparse.Namespace) -> None:
    """One throttled drive in the foreground, until it is unmounted (``fusermount3 -u MOUNTPOINT``)."""
    import mfusepy

    os.makedirs(args.mountpoint, exist_ok=True)
    operations = passthrough(os.path.abspath(args.backing), Bucket(parse_size(args.rate)), args.drive_size)
    mfusepy.FUSE(operations, args.mountpoint, foreground=True, nothreads=False, default_permissions=True)


class Drives:
    """N throttled mounts under ``workdir``: started as processes of their own, unmounted at the end."""

    def __init__(self, workdir: Path, count: int, rate: str, drive_size: int | None) -> None:
        self.backings = [workdir / f"backing-{n}" for n in range(1, count + 1)]
        self.mounts = [workdir / f"drive-{n}" for n in range(1, count + 1)]
        self.rate, self.drive_size = rate, drive_size
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Drives:
        for backing, mountpoint in zip(self.backings, self.mounts, strict=True):
            if os.path.ismount(mountpoint):
                subprocess.run(["fusermount3", "-u", mountpoint], check=False)
            shutil.rmtree(backing, ignore_errors=True)
            backing.mkdir(parents=True)
            mountpoint.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, __file__, "mount", str(backing), str(mountpoint), "--rate", self.rate]
            if self.drive_size:
                command += ["--drive-size", str(self.drive_size)]
            self.processes.append(subprocess.Popen(command))
        deadline = time.monotonic() + 30
        while not all(os.path.ismount(m) for m in self.mounts):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.__exit__()
                raise SystemExit("the FUSE mounts did not come up (fuse3 and mfusepy installed? /dev/fuse? root?)")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        for mountpoint in self.mounts:
            subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, stderr=subprocess.DEVNULL)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def empty(self) -> None:
        """Every drive emptied through its backing directory (not throttled: not part of any step)."""
        for backing in self.backings:
            for entry in backing.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        raise SystemExit(f"cannot drop the page cache ({exc.strerror}): run as root") from exc


def timed(command: list[str]) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        said = (result.stdout + result.stderr).decode(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {said}")
    return seconds


def probe(drive: Path, size: int) -> tuple[float, float]:
    """One drive's write rate (with fsync) and cold read rate, in bytes per second."""
    block = os.urandom(1 << 20)
    path = drive / "probe.bin"
    started = time.monotonic()
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    write_rate = size / (time.monotonic() - started)
    drop_caches()
    started = time.monotonic()
    with open(path, "rb") as handle:
        while handle.read(1 << 20):
            pass
    read_rate = size / (time.monotonic() - started)
    path.unlink()
    return write_rate, read_rate


def make_dataset(root: Path, size: int, file_size: int) -> int:
    """``size`` bytes of incompressible files of ``file_size`` (made once, kept: the cache of later runs)."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{size} {file_size}":
        return size
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    left, number = size, 0
    while left > 0:
        count = min(file_size, left)
        (root / f"part-{number:05d}.bin").write_bytes(os.urandom(count))
        left, number = left - count, number + 1
    marker.write_text(f"{size} {file_size}")
    return size


def sneakernet() -> str:
    here = Path(sys.executable).with_name("sneakernet")
    return str(here) if here.exists() else shutil.which("sneakernet") or "sneakernet"


def run(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    size = make_dataset(data, parse_size(args.size), parse_size(args.file_size))
    (data / ".complete").rename(workdir / ".complete")  # not part of what is packed
    try:
        results = measure(args, workdir, data, size)
    finally:
        (workdir / ".complete").rename(data / ".complete")
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


def measure(args: argparse.Namespace, workdir: Path, data: Path, size: int) -> dict[str, Any]:
    tool = sneakernet()
    subprocess.run([tool, "--version"], check=True, stdout=subprocess.DEVNULL)
    restore_into = workdir / "restore"
    times: dict[str, list[float]] = {}
    rates: list[tuple[float, float]] = []
    steps = args.steps.split(",")
    with Drives(workdir, args.drives, args.rate, parse_size(args.drive_size) if args.drive_size else None) as drives:
        mounts = [str(m) for m in drives.mounts]
        for _ in range(args.repeats):
            drives.empty()
            rates.append(probe(drives.mounts[0], parse_size(args.probe)))
            if args.baseline and "pack" in steps:
                drop_caches()
                times.setdefault("pack_one_drive", []).append(timed([tool, "pack", str(data), "--drive", mounts[0]]))
                drives.empty()
            drive_args = [arg for m in mounts for arg in ("--drive", m)]
            drop_caches()
            times.setdefault("pack", []).append(
                timed([tool, "pack", str(data), *drive_args, "--at-once", str(len(mounts))])
            )
            used = [m for m in mounts if os.path.exists(os.path.join(m, "drive.json"))]
            if "verify" in steps:
                drop_caches()
                times.setdefault("verify", []).append(timed([tool, "verify", *used]))
            if "restore" in steps:
                _fresh_tmpfs(restore_into, size)
                drop_caches()
                times.setdefault("restore", []).append(
                    timed([tool, "restore", *used, "--into", str(restore_into / "into")])
                )
                subprocess.run(["umount", str(restore_into)], check=False)
    write_rate = statistics.median(r[0] for r in rates)
    read_rate = statistics.median(r[1] for r in rates)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "drives": args.drives,
        "rate_limit": args.rate,
        "dataset_bytes": size,
        "file_size": parse_size(args.file_size),
        "repeats": args.repeats,
        "one_drive_write_mb_s": round(write_rate / 1e6, 1),
        "one_drive_read_mb_s": round(read_rate / 1e6, 1),
        "load_average": os.getloadavg(),
        "steps": {},
    }
    for step, seconds in times.items():
        median = statistics.median(seconds)
        rate = size / median
        base = write_rate if step.startswith("pack") else read_rate
        report["steps"][step] = {
            "seconds": [round(s, 2) for s in seconds],
            "median_seconds": round(median, 2),
            "mb_s": round(rate / 1e6, 1),
            "x_one_drive": round(rate / base, 2),
        }
    return report


def _fresh_tmpfs(path: Path, size: int) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size * 2 + (64 << 20)}", "tmpfs", str(path)], check=True)
    # restore wants DEST itself new or empty: restore into a directory inside the tmpfs.
    path.joinpath("into").mkdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("mount", help="one throttled drive, in the foreground")
    one.add_argument("backing")
    one.add_argument("mountpoint")
    one.add_argument("--rate", default="40MB/s")
    one.add_argument("--drive-size", type=int, default=None)
    many = sub.add_parser("run", help="pack, verify and restore onto N throttled drives at once")
    many.add_argument("--drives", type=int, default=4)
    many.add_argument("--rate", default="40MB/s")
    many.add_argument("--size", default="400MB")
    many.add_argument("--file-size", default="10MB")
    many.add_argument("--drive-size", default=None, help="cap each drive's reported size")
    many.add_argument("--probe", default="64MB", help="bytes written and read to measure one drive")
    many.add_argument("--repeats", type=int, default=3)
    many.add_argument("--steps", default="pack,verify,restore")
    many.add_argument("--baseline", action="store_true", help="also pack onto one drive alone")
    many.add_argument("--workdir", default=DEFAULT_WORKDIR)
    many.add_argument("--out", default=None)
    args = parser.parse_args()
    mount(args) if args.command == "mount" else run(args)


if __name__ == "__main__":
    main()
