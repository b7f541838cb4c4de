"""The drive layer: the only code that writes or reads the files of a drive (segments, manifest, B3SUMS,
drive.json and the shipment's catalog).

Write order (docs/format.md, "Write order"), which makes every crash detectable:

1. each segment is written as ``segments/sNNNNNN.seg.partial``, fsynced, then renamed to its final name;
2. the manifest is written as ``manifest.jsonl.zst.partial``, ending with its end record, fsynced, renamed;
3. B3SUMS (segments, manifest, and the drive.json about to be written) is written to a temporary name,
   fsynced, renamed;
4. drive.json is written to a temporary name, fsynced, renamed. Only now is the drive finished: a drive without
   drive.json is unfinished whatever else it holds;
5. once every drive is finished, the catalog is added the same way and B3SUMS is replaced by one that covers it.

Every rename is made durable (its directory fsynced) as it is made, by io/atomic.py.

Every file operation on a drive goes through the drive's store (io/store.py: a :class:`~sneakernet.io.store.
DriveStore`, a local directory for :class:`~sneakernet.io.store.LocalStore`); tests hand in stores that fail.

``writer.py`` writes one drive (steps 1-4), ``catalog.py`` step 5, ``reader.py`` reads a drive and a catalog (and
what a resumed pack may keep of an unfinished drive), ``chunkmap.py`` places file pieces in a drive's raw stream,
``files.py`` names a drive's files and clears an unfinished one, ``driveset.py`` tells a shipment's drives given,
missing and duplicated, ``stream.py`` reads a drive's segments as one stored stream (what parity computes over,
docs/format.md 19.7.2), and ``parity/`` holds the parity drives' files and what rebuilds a lost drive from them
(its own docstring lists its modules). The names other packages use are re-exported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import catalog_entry, copy_catalog, finish_shipment, write_catalog
    from .chunkmap import ChunkMap
    from .driveset import DriveKey, DriveSet, GivenDrive, ListedDrive, drive_queues, same_drive_groups
    from .files import (
        FILESYSTEM_ENTRIES,
        SHIPMENT_NAMES,
        clear_unfinished,
        file_blake3,
        file_kind,
        holds_shipment,
        open_drive_file,
        refuse_non_directory,
    )
    from .reader import CatalogReader, DriveReader, header_and, segment_blake3
    from .unfinished import UnfinishedManifest
    from .writer import DriveWriter

#: Each name's module, imported on first use: reading a drive (verify, restore, info) does not load the writer and
#: what it needs (nor the crypt extra for an encrypted shipment's writing).
_LAZY = {
    "CatalogReader": ".reader",
    "ChunkMap": ".chunkmap",
    "DriveKey": ".driveset",
    "DriveReader": ".reader",
    "DriveSet": ".driveset",
    "DriveWriter": ".writer",
    "FILESYSTEM_ENTRIES": ".files",
    "GivenDrive": ".driveset",
    "ListedDrive": ".driveset",
    "SHIPMENT_NAMES": ".files",
    "UnfinishedManifest": ".unfinished",
    "catalog_entry": ".catalog",
    "clear_unfinished": ".files",
    "copy_catalog": ".catalog",
    "drive_queues": ".driveset",
    "file_blake3": ".files",
    "file_kind": ".files",
    "finish_shipment": ".catalog",
    "header_and": ".reader",
    "holds_shipment": ".files",
    "open_drive_file": ".files",
    "refuse_non_directory": ".files",
    "same_drive_groups": ".driveset",
    "segment_blake3": ".reader",
    "write_catalog": ".catalog",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FILESYSTEM_ENTRIES",
    "SHIPMENT_NAMES",
    "CatalogReader",
    "ChunkMap",
    "DriveKey",
    "DriveReader",
    "DriveSet",
    "DriveWriter",
    "GivenDrive",
    "ListedDrive",
    "UnfinishedManifest",
    "catalog_entry",
    "clear_unfinished",
    "copy_catalog",
    "drive_queues",
    "file_blake3",
    "file_kind",
    "finish_shipment",
    "header_and",
    "holds_shipment",
    "open_drive_file",
    "refuse_non_directory",
    "same_drive_groups",
    "segment_blake3",
    "write_catalog",
]
