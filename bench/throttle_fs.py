#!/usr/bin/env python3
"""One simulated drive: a FUSE passthrough over a directory whose reads and writes are throttled to a rate.

    python bench/throttle_fs.py BACKING MOUNTPOINT --rate 40MB/s                   # a drive to write and read
    python bench/throttle_fs.py BACKING MOUNTPOINT --rate 40MB/s --read-only       # a read-only view of a drive
    python bench/throttle_fs.py BACKING MOUNTPOINT --rate 40MB/s --drive-size 100MB  # statfs says 100 MB

Serves BACKING at MOUNTPOINT in the foreground, until unmounted (``fusermount3 -u MOUNTPOINT``). This is the one
FUSE harness of bench/: drives.py, restore_drives.py and verify_drives.py run one such process per drive, so that
drives do not share one interpreter lock.

* **The rate**: every read and write takes its turn on one token bucket of ``--rate`` bytes per second, as a disk
  does one thing at a time: reads and writes of one drive share its rate. A drive idle for a while may serve
  BURST seconds of requests at once (what its cache gives). Requests are served on threads, so the kernel may
  queue several (readahead, writeback); the bucket orders them.
* **The page cache**: as with a real drive's filesystem, the kernel keeps a file's pages cached when the file is
  opened again (``keep_cache``), so a reader that opens a segment twice reads it from the drive once. Drop the page
  cache (``sync; echo 3 > /proc/sys/vm/drop_caches``) before a timed read, or mount afresh.
* **statfs** reports the backing filesystem's, capped at ``--drive-size`` when given (a drive of that size).
* ``fsync`` is passed on to the backing file. Put the backing directories in a tmpfs (drives.py does, as root) so
  that the throttle alone limits each drive: backings on the machine's one disk would make all the simulated drives
  share that disk's flushes, which separate physical drives do not.

Needs libfuse3 (Debian's ``fuse3``) and the ``mfusepy`` binding (the ``bench`` extra: ``pip install -e '.[bench]'``);
run as root (or a user allowed to mount FUSE). Nothing of this runs in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import sys
import threading
import time
from typing import Any

import mfusepy  # type: ignore[import-not-found]

#: Seconds of requests a drive idle for a while may serve at once: what its cache and readahead give.
BURST = 0.1
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def parse_rate(text: str) -> float:
    """``40MB/s``, ``1GiB/s``, ``100MB`` (for a size) as a number of bytes."""
    match = re.fullmatch(r"([0-9.]+)\s*([KMG]i?B)?(/s)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: give e.g. 40MB/s or 100MB")
    return float(match.group(1)) * _UNITS[(match.group(2) or "").upper()]


class Bucket:
    """One drive's time: each request waits until the bytes before it are through at ``rate`` bytes per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        #: When the bytes taken so far are through: a request waits until then (BURST seconds of burst at most).
        self.due = 0.0

    def take(self, size: int) -> None:
        with self._lock:
            now = time.monotonic()
            self.due = max(self.due, now - BURST) + size / self.rate
            wait = self.due - now
        if wait > 0:
            time.sleep(wait)


class Throttled(mfusepy.Operations):  # type: ignore[misc]
    """BACKING served through ``bucket`` (read-only with ``read_only``), statfs capped at ``capacity``."""

    use_ns = True

    def __init__(self, root: str, bucket: Bucket, read_only: bool = False, capacity: int | None = None) -> None:
        self.root = root
        self.bucket = bucket
        self.read_only = read_only
        self.capacity = capacity

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _call(self, function: Any, *args: Any, write: bool = False) -> Any:
        if write and self.read_only:
            raise mfusepy.FuseOSError(errno.EROFS)
        try:
            return function(*args)
        except OSError as exc:
            raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc

    # --- metadata ---

    def access(self, path: str, amode: int) -> None:
        if not os.access(self._path(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        st = self._call(os.lstat, self._path(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
        out = {key.removesuffix("_ns"): getattr(st, key) for key in keys}
        out["st_ino"] = st.st_ino
        return out

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *self._call(os.listdir, self._path(path))]

    def readlink(self, path: str) -> str:
        return str(self._call(os.readlink, self._path(path)))

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self.root)
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail", "f_namemax")
        out = {key: getattr(st, key) for key in keys}
        if self.capacity is not None:
            blocks = self.capacity // st.f_frsize
            free = max(0, blocks - _tree_bytes(self.root) // st.f_frsize)
            out.update(f_blocks=blocks, f_bfree=min(free, out["f_bfree"]), f_bavail=min(free, out["f_bavail"]))
        return out

    # --- changes (refused read-only) ---

    def mkdir(self, path: str, mode: int) -> None:
        self._call(os.mkdir, self._path(path), mode, write=True)

    def rmdir(self, path: str) -> None:
        self._call(os.rmdir, self._path(path), write=True)

    def unlink(self, path: str) -> None:
        self._call(os.unlink, self._path(path), write=True)

    def rename(self, old: str, new: str) -> None:
        self._call(os.rename, self._path(old), self._path(new), write=True)

    def symlink(self, target: str, source: str) -> None:
        self._call(os.symlink, source, self._path(target), write=True)

    def link(self, target: str, source: str) -> None:
        self._call(os.link, self._path(source), self._path(target), write=True)

    def chmod(self, path: str, mode: int) -> None:
        self._call(os.chmod, self._path(path), mode, write=True)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._call(os.chown, self._path(path), uid, gid, write=True)

    def utimens(self, path: str, times: Any = None) -> None:
        full = self._path(path)
        if times:
            self._call(lambda: os.utime(full, ns=tuple(times), follow_symlinks=False), write=True)
        else:
            self._call(os.utime, full, write=True)

    def truncate(self, path: str, length: int, fh: Any = None) -> None:
        self._call(os.truncate, self._path(path), length, write=True)

    # --- files ---

    def open(self, path: str, info: Any) -> int:
        info.fh = self._call(os.open, self._path(path), info.flags & ~os.O_CREAT, write=bool(info.flags & _WRITING))
        info.keep_cache = 1  # a real drive's pages stay cached when the file is opened again
        return 0

    def create(self, path: str, mode: int, info: Any) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        info.fh = self._call(os.open, self._path(path), flags, mode, write=True)
        return 0

    def read(self, path: str, size: int, offset: int, info: Any) -> bytes:
        data = self._call(os.pread, info.fh, size, offset)
        self.bucket.take(len(data))
        return bytes(data)

    def write(self, path: str, data: bytes, offset: int, info: Any) -> int:
        self.bucket.take(len(data))
        return int(self._call(os.pwrite, info.fh, data, offset, write=True))

    def flush(self, path: str, info: Any) -> None:
        pass

    def fsync(self, path: str, datasync: int, info: Any) -> None:
        self._call(os.fdatasync if datasync else os.fsync, info.fh)

    def release(self, path: str, info: Any) -> None:
        self._call(os.close, info.fh)


def _tree_bytes(root: str) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--rate", type=parse_rate, required=True, help="bytes per second, reads and writes together")
    parser.add_argument("--read-only", action="store_true", help="refuse every change (EROFS)")
    parser.add_argument("--drive-size", type=parse_rate, default=None, help="statfs's size of the drive")
    args = parser.parse_args()
    os.makedirs(args.mountpoint, exist_ok=True)
    capacity = int(args.drive_size) if args.drive_size else None
    operations = Throttled(os.path.abspath(args.backing), Bucket(args.rate), args.read_only, capacity)
    mfusepy.FUSE(operations, args.mountpoint, foreground=True, nothreads=False, raw_fi=True, ro=args.read_only,
                 default_permissions=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
