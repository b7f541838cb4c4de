"""The names pack writes on a drive, the clearing of what an interrupted pack left of them, and how a reader opens
a drive's files (io/store.py's open_regular: refused unless a regular file, a FIFO never blocking, a symlink never
followed)."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
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
from ..format.names import COVERED_DIR
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


def holds_shipment(path: str, store: DriveStore | None = None) -> bool:
    """Whether ``path`` (read through ``store`` when given) already holds sneakernet files, finished or not."""
    try:
        names = (store if store is not None else LocalStore(path)).list()
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


def clear_unfinished(store: DriveStore, keep: Collection[str] = ()) -> int:
    """Remove what an interrupted pack (or parity run) left on the drive it did not finish (only sneakernet's own
    files), but the segments named in ``keep`` (``segments/sNNNNNN.seg``: complete segments a resumed pack keeps,
    format.md 19.10). Returns the bytes of the segment files removed (the work a resume writes again)."""
    try:
        names = store.list()
    except (FileNotFoundError, NotADirectoryError):
        return 0
    removed = 0
    for name in names:
        if name.removesuffix(PARTIAL_SUFFIX) not in SHIPMENT_NAMES:
            continue
        if name == SEGMENTS_DIR:
            removed += _clear_segments(store, keep)
        if name != SEGMENTS_DIR or not keep:
            store.remove(name)
    return removed


def _clear_segments(store: DriveStore, keep: Collection[str]) -> int:
    """The segment files but ``keep`` removed (all of them are when nothing is kept); their bytes."""
    removed = 0
    try:
        segments = store.list(SEGMENTS_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for segment in segments:
        name = f"{SEGMENTS_DIR}/{segment}"
        if name in keep:
            continue
        info = store.stat(name)
        removed += info.size if info is not None and stat.S_ISREG(info.mode) else 0
        if keep:
            store.remove(name)
    return removed
