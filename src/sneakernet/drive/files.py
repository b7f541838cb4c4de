"""The names pack writes on a drive, the clearing of what an interrupted pack left of them, and how a reader opens
a drive's files (io/store.py's open_regular: refused unless a regular file, a FIFO never blocking, a symlink never
followed)."""

from __future__ import annotations

import os
from typing import BinaryIO

import blake3

from ..errors import DestinationError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    INDEX_NAME,
    KEYS_DIR,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    SEALED_CATALOG_NAME,
    SEGMENTS_DIR,
)
from ..format.parity import COVERED_DIR
from ..io.store import DriveStore, LocalStore, open_regular
from ..io.store import file_kind as file_kind

#: How a reader opens a local file of a drive (or a catalog given apart from one).
open_drive_file = open_regular

#: What filesystems and operating systems put at the root of a drive by themselves: never part of a shipment,
#: never reported as strays, and no reason to call a drive not empty.
FILESYSTEM_ENTRIES = frozenset(
    {"lost+found", "System Volume Information", "$RECYCLE.BIN", ".Trashes", ".fseventsd", ".Spotlight-V100",
     ".TemporaryItems", ".DS_Store"}
)  # fmt: skip
#: Names pack writes on a drive (and parity writes on a parity drive: covered/; an encrypted shipment's keys/,
#: index.age and catalog.age, docs/format.md 19.8); a directory holding any of them already holds (part of) a
#: shipment.
SHIPMENT_NAMES = (
    DRIVE_LABEL_NAME, MANIFEST_NAME, CATALOG_NAME, CHECKSUMS_NAME, SEGMENTS_DIR, COVERED_DIR, KEYS_DIR, INDEX_NAME,
    SEALED_CATALOG_NAME,
)  # fmt: skip


def refuse_non_directory(path: str, role: str) -> None:
    """An output to write into must be a directory, or nothing yet (it is made); a symlink to one is followed."""
    if os.path.lexists(path) and not os.path.isdir(path):
        what = "a symlink to nothing" if not os.path.exists(path) else "not a directory"
        raise DestinationError(f"{role} {path} is {what}: give a directory (it is made if missing)")


def holds_shipment(path: str) -> bool:
    """Whether ``path`` already holds sneakernet files, finished or not."""
    try:
        names = LocalStore(path).list()
    except OSError:
        return False
    return any(name.split(".partial")[0] in SHIPMENT_NAMES for name in names)


def file_blake3(path: str) -> tuple[int, str]:
    """``(size, BLAKE3 hex)`` of a whole local file (a catalog given apart from its drive)."""
    with open_drive_file(path) as handle:
        return stream_blake3(handle)


def stream_blake3(handle: BinaryIO) -> tuple[int, str]:
    """``(size, BLAKE3 hex)`` of what ``handle`` holds from where it stands, read in large blocks."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    size = 0
    while data := handle.read(1 << 22):
        hasher.update(data)
        size += len(data)
    return size, hasher.hexdigest()


def clear_unfinished(store: DriveStore) -> None:
    """Remove what an interrupted pack (or parity run) left on the drive it did not finish (only sneakernet's own
    files)."""
    try:
        names = store.list()
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        if name.removesuffix(PARTIAL_SUFFIX) in SHIPMENT_NAMES:
            store.remove(name)
