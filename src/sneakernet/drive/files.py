"""The names pack writes on a drive, the clearing of what an interrupted pack left of them, and how a reader opens
a drive's files: refused unless a regular file, a FIFO never blocking, a symlink never followed."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import BinaryIO

import blake3

from ..errors import DestinationError
from ..format import CATALOG_NAME, CHECKSUMS_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME, PARTIAL_SUFFIX, SEGMENTS_DIR
from ..format.parity import COVERED_DIR

#: What filesystems and operating systems put at the root of a drive by themselves: never part of a shipment,
#: never reported as strays, and no reason to call a drive not empty.
FILESYSTEM_ENTRIES = frozenset(
    {"lost+found", "System Volume Information", "$RECYCLE.BIN", ".Trashes", ".fseventsd", ".Spotlight-V100",
     ".TemporaryItems", ".DS_Store"}
)  # fmt: skip
#: Names pack writes on a drive (and parity writes on a parity drive: covered/); a directory holding any of them
#: already holds (part of) a shipment.
SHIPMENT_NAMES = (DRIVE_LABEL_NAME, MANIFEST_NAME, CATALOG_NAME, CHECKSUMS_NAME, SEGMENTS_DIR, COVERED_DIR)


def refuse_non_directory(path: str, role: str) -> None:
    """An output to write into must be a directory, or nothing yet (it is made); a symlink to one is followed."""
    if os.path.lexists(path) and not os.path.isdir(path):
        what = "a symlink to nothing" if not os.path.exists(path) else "not a directory"
        raise DestinationError(f"{role} {path} is {what}: give a directory (it is made if missing)")


def holds_shipment(path: str) -> bool:
    """Whether ``path`` already holds sneakernet files, finished or not."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(name.split(".partial")[0] in SHIPMENT_NAMES for name in names)


#: How a reader opens a drive's files: a FIFO in place of one must not block it forever (O_NONBLOCK), and a
#: symlink planted in place of one is not followed (O_NOFOLLOW) but refused.
_DRIVE_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFLNK: "a symlink"}  # fmt: skip


def file_kind(mode: int) -> str:
    """What a file that should be a regular file is instead, for a message: "a FIFO", "a symlink", ..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_drive_file(path: str) -> BinaryIO:
    """Open a file of a drive for reading, refused (an OSError whose ``strerror`` says why) unless it is a regular
    file: checked with fstat on the descriptor opened, before a byte is read, so nothing can block or swap it."""
    try:
        fd = os.open(path, _DRIVE_FILE_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "it is a symlink, not a regular file", path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"it is {file_kind(mode)}, not a regular file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_blake3(path: str) -> tuple[int, str]:
    """``(size, BLAKE3 hex)`` of a whole file, read in large blocks."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    size = 0
    with open_drive_file(path) as handle:
        while data := handle.read(1 << 22):
            hasher.update(data)
            size += len(data)
    return size, hasher.hexdigest()


def clear_unfinished(path: str) -> None:
    """Remove what an interrupted pack (or parity run) left on the drive it did not finish (only sneakernet's own
    files)."""
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name.removesuffix(PARTIAL_SUFFIX) in SHIPMENT_NAMES:
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
