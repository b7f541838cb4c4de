#!/usr/bin/env python3
"""A read-only FUSE view of a directory whose reads are throttled to a rate: one simulated drive.

    python bench/throttle_fs.py SOURCE MOUNTPOINT --rate 40MB/s

Serves SOURCE at MOUNTPOINT (in the foreground, until unmounted: ``fusermount3 -u MOUNTPOINT``) and lets reads through
at most at ``--rate`` bytes per second (a token bucket of BURST seconds): what a USB hard drive of that speed gives a
reader. Requests are served one at a time, as a drive serves them. As with a real drive, the kernel keeps what was read
in its page cache while the mount lasts (``keep_cache``: a file opened again is not read again), so a benchmark mounts
afresh before each run to read through the throttle. Needs libfuse3 (Debian's ``fuse3``) and the ``mfusepy`` binding
(``pip install mfusepy``); run as root (or a user allowed to mount FUSE). Each mount runs in its own process, so drives
do not share one interpreter lock."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import threading
import time
from typing import Any

import mfusepy  # type: ignore[import-not-found]

#: Seconds of reads a drive idle for a while may serve at once: what its cache and readahead give.
BURST = 0.1
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_rate(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)\s*([KMG]?B)?(/s)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"cannot read rate {text!r}: give e.g. 40MB/s")
    return float(match.group(1)) * _UNITS[(match.group(2) or "").upper()]


class Throttled(mfusepy.Operations):  # type: ignore[misc]
    """SOURCE read-only, its reads let through at ``rate`` bytes per second."""

    use_ns = True

    def __init__(self, root: str, rate: float) -> None:
        self.root = root
        self.rate = rate
        self._lock = threading.Lock()
        #: When the bytes read so far are due: a read waits until then (BURST seconds of burst at most).
        self.due = 0.0

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._path(path))
        except OSError as exc:
            raise mfusepy.FuseOSError(exc.errno) from exc
        keys = ("st_mode", "st_size", "st_nlink", "st_uid", "st_gid", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
        return {key.removesuffix("_ns"): getattr(st, key) for key in keys}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def open(self, path: str, info: Any) -> int:
        if info.flags & (os.O_WRONLY | os.O_RDWR):
            raise mfusepy.FuseOSError(errno.EROFS)
        info.fh = os.open(self._path(path), os.O_RDONLY)
        info.keep_cache = 1  # a real drive's pages stay cached when the file is opened again
        return 0

    def read(self, path: str, size: int, offset: int, info: Any) -> bytes:
        data = os.pread(info.fh, size, offset)
        with self._lock:
            now = time.monotonic()
            self.due = max(self.due, now - BURST) + len(data) / self.rate
            wait = self.due - now
        if wait > 0:
            time.sleep(wait)
        return data

    def release(self, path: str, info: Any) -> int:
        os.close(info.fh)
        return 0

    def statfs(self, path: str) -> dict[str, Any]:
        st = os.statvfs(self.root)
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail", "f_namemax")
        return {key: getattr(st, key) for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--rate", type=parse_rate, required=True)
    args = parser.parse_args()
    mfusepy.FUSE(Throttled(os.path.abspath(args.source), args.rate), args.mountpoint, foreground=True, nothreads=True,
                 ro=True, raw_fi=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
