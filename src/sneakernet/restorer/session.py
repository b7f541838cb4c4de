"""A restore's journal in DEST/.sneakernet: opened, or started from a catalog, and removed once finished."""

from __future__ import annotations

import contextlib
import os
import shutil

from ..drive import DriveReader
from ..errors import UsageError
from ..format import FINISHED_NAME
from ..io.atomic import fsync_dir
from .catalog import copy_catalog, first_good_catalog, index_catalog, mend_catalog_copy, read_catalog
from .includes import Includes
from .journal import CATALOG_COPY, JOURNAL_DIR, JOURNAL_NAME, PARTS_DIR, Journal


def journal_for(
    dest: str,
    readers: list[DriveReader],
    includes: Includes,
    force: bool,
    catalog: str | None = None,
    notes: list[str] | None = None,
) -> Journal:
    """Open the destination's journal, or start one from ``catalog`` or the first good catalog among the drives
    (``notes`` is told of damaged copies passed over)."""
    notes = notes if notes is not None else []
    # An encrypted shipment's identity, as its drives were opened with (its entries are in its sealed catalog).
    identity = next((reader.identity for reader in readers if reader.identity is not None), None)
    if Journal.exists(dest):
        journal = open_journal(dest)
        stored = journal.get_json("includes") or []
        given = [p.decode("utf-8", "surrogateescape") for p in includes.patterns]
        if includes and given != stored:
            journal.close()
            raise UsageError(
                f"{dest} is a restore with --include {stored or '(everything)'}: give the same patterns or none"
            )
        try:
            mend_catalog_copy(journal, readers, catalog, notes)
            # A run killed while it indexed the catalog (or a journal made before the index existed).
            index_catalog(journal, os.path.join(Journal.directory(dest), CATALOG_COPY), identity)
        except UsageError:
            journal.close()
            raise
        return journal
    # A run killed while it set up its journal leaves .sneakernet without one: that is no user data.
    over_existing = os.path.isdir(dest) and bool(set(os.listdir(dest)) - {JOURNAL_DIR})
    if over_existing and not force:
        raise UsageError(
            f"{dest} is not empty and holds no restore of a shipment: give an empty directory, or --force to restore "
            "over what it holds (files where the shipment has files are replaced, and named)"
        )
    if catalog is None:
        catalog, header, drives = first_good_catalog(readers, notes)
    elif not os.path.isfile(catalog):
        raise UsageError(f"catalog {catalog} is not a file: give the catalog.jsonl.zst of the shipment")
    else:
        header, drives = read_catalog(catalog)
    if includes:
        includes.refuse_unmatched(catalog, identity)
    # The catalog copy first, whole and durable: the journal, made last, is what says a restore exists.
    os.makedirs(os.path.join(Journal.directory(dest), PARTS_DIR), exist_ok=True)
    copy = os.path.join(Journal.directory(dest), CATALOG_COPY)
    copy_catalog(catalog, copy)
    with contextlib.suppress(FileNotFoundError):
        # Forced over a finished restore of another shipment: that record no longer says what DEST holds.
        os.unlink(os.path.join(Journal.directory(dest), FINISHED_NAME))
    journal = Journal.create(
        dest,
        {
            "shipment": header.shipment,
            "fingerprint": header.fingerprint,
            "drives": header.drives,
            "files": header.files,
            "manifests": [d.manifest_blake3 for d in drives],
            "labels": [d.label for d in drives],
            # Version 2: each data drive's lane and place in it, what a piece's next_drive must follow (19.4).
            "lanes": [[d.lane, d.lane_seq] for d in drives] if header.version >= 2 else None,
            "includes": [p.decode("utf-8", "surrogateescape") for p in includes.patterns],
            # Restored over what DEST held (--force): what each install replaces is counted and named.
            "over_existing": over_existing,
        },
    )
    try:
        index_catalog(journal, copy, identity)
    except UsageError:
        # Nothing restored yet: the lying catalog leaves no restore behind, another catalog starts afresh.
        journal.close()
        remove_journal(dest)
        raise
    return journal


def open_journal(dest: str) -> Journal:
    """The journal of the restore in ``dest``; one it cannot use (another version, a symlink) is one line."""
    try:
        return Journal.open(dest)
    except ValueError as exc:
        raise UsageError(f"cannot use the journal in {dest}: {exc}") from exc


def remove_journal(dest: str) -> None:
    """Remove a restore's journal, the journal itself last: a finished one's run killed meanwhile leaves a
    journal that says finished, and the next run just finishes again. The finished record (written before)
    stays; without one, the directory goes too."""
    directory = Journal.directory(dest)
    for name in os.listdir(directory):
        if name not in (JOURNAL_NAME, FINISHED_NAME):
            path = os.path.join(directory, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    os.unlink(os.path.join(directory, JOURNAL_NAME))
    if os.listdir(directory):
        fsync_dir(directory)
    else:
        os.rmdir(directory)  # no finished record: a restore given up before it began leaves nothing
