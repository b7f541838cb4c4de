"""The catalog a restore is checked against: read whole, copied into DEST/.sneakernet durably, mended when that
copy is found bad, and indexed in the journal."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..drive import CatalogReader, DriveReader, open_drive_file
from ..drive.reader import sealed_beside
from ..errors import FormatError, UnsupportedVersion, UsageError
from ..format import CATALOG_NAME, CatalogDrive, CatalogEntry, CatalogHeader, catalog_is_consistent, short_fingerprint
from ..io.atomic import copy_atomic
from .journal import CATALOG_COPY, Journal

if TYPE_CHECKING:
    from ..crypto.keys import ShipmentIdentity


def index_catalog(journal: Journal, catalog: str, identity: ShipmentIdentity | None = None) -> None:
    """The catalog's entries into the journal (validate.CatalogIndex), once per restore: what each drive is
    checked against (an encrypted shipment's from its sealed catalog beside it, opened with ``identity``). A
    catalog that lists a path twice or out of drive order lies: UsageError."""
    index = journal.catalog_index()
    if index.built() or journal.get("finished") == "true":
        return
    entries = (r for r in CatalogReader(catalog, identity=identity).records() if isinstance(r, CatalogEntry))
    try:
        lies = index.build(entries)
    except FormatError as exc:
        raise UsageError(f"the catalog {catalog} is damaged ({exc}): use another drive's catalog") from exc
    if lies:
        journal.rollback()
        raise UsageError(f"{lies[0]}: use another drive's catalog (--catalog FILE), or ask the sender for one")
    journal.commit()


def copy_catalog(catalog: str, copy: str) -> None:
    """``catalog`` copied to ``copy`` durably before anything (the journal) can say the copy is there; its
    temporary file O_EXCL|O_NOFOLLOW: a symlink left in the journal directory is refused, never written through."""
    with open_drive_file(catalog) as original:
        copy_atomic(original, copy, 0o600)
    # An encrypted shipment's entries are in its sealed catalog beside it (docs/format.md 19.8.3): copied too,
    # still sealed (the receiver's disk gets no plaintext of it but the journal's index).
    (store, name), (_, copied) = sealed_beside(catalog), sealed_beside(copy)
    if store.stat(name) is not None:
        with store.open(name) as original:
            copy_atomic(original, os.path.join(os.path.dirname(copy), copied), 0o600)


def catalog_copy_problem(journal: Journal) -> str | None:
    """What is wrong with the catalog copy of ``journal``'s restore, None when it reads whole and is of the
    journal's shipment. A journal of an older sneakernet, which did not fsync the copy, can outlive it after a
    power loss: the copy empty, cut or missing."""
    copy = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    if not os.path.lexists(copy):
        return "missing"
    try:
        header, _ = read_catalog(copy)
    except UsageError as exc:
        return f"damaged ({exc.__cause__ or exc})"
    if header.fingerprint != journal.get_json("fingerprint"):
        return "of another shipment"
    return None


def mend_catalog_copy(journal: Journal, readers: list[DriveReader], catalog: str | None, notes: list[str]) -> None:
    """A bad catalog copy (see :func:`catalog_copy_problem`) copied again from ``catalog`` or the first drive
    given whose catalog reads whole and is the journal's shipment's; without one, UsageError saying what to
    give. A finished restore's copy is not read again (it may be gone)."""
    if journal.get("finished") == "true" or (problem := catalog_copy_problem(journal)) is None:
        return
    copy = os.path.join(Journal.directory(journal.dest), CATALOG_COPY)
    fingerprint = journal.get_json("fingerprint")
    candidates = [catalog] if catalog is not None else [r.file(CATALOG_NAME) for r in readers]
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        try:
            header, _ = read_catalog(candidate)
        except UsageError:
            continue
        if header.fingerprint == fingerprint:
            copy_catalog(candidate, copy)
            notes.append(f"the catalog copy {copy} was {problem}: copied it again from {candidate}")
            return
    given = f"--catalog {catalog} is not a good catalog of it" if catalog else "none of these drives carries it"
    raise UsageError(
        f"the catalog copy {copy} is {problem} and {given}: restore with a drive of shipment "
        f"{short_fingerprint(fingerprint)} that carries its catalog, or give --catalog FILE"
    )


def first_good_catalog(readers: list[DriveReader], notes: list[str]) -> tuple[str, CatalogHeader, list[CatalogDrive]]:
    """The catalog of the first drive given whose copy reads whole and matches its fingerprint: every drive carries
    the same catalog, so one damaged copy does not stop a restore that other drives can start. ``notes`` is told
    which copies were passed over and which was used."""
    damaged: list[tuple[DriveReader, UsageError]] = []
    for reader in readers:
        path = reader.file(CATALOG_NAME)
        if not os.path.lexists(path):
            continue
        try:
            header, drives = read_catalog(path)
        except UsageError as exc:
            damaged.append((reader, exc))
            continue
        for bad, why in damaged:
            notes.append(f"the catalog of {bad.label.label} ({bad.path}) is damaged ({why.__cause__ or why}): used the "
                         f"copy on {reader.label.label} ({reader.path})")  # fmt: skip
        return path, header, drives
    if damaged:
        raise damaged[0][1]
    raise UsageError(
        "none of these drives carries the shipment's catalog: restore first a drive that does (with --out every "
        "drive does; with --swap the last one), or give --catalog with the sender's copy"
    )


def read_catalog(path: str) -> tuple[CatalogHeader, list[CatalogDrive]]:
    """A catalog's header and drive list, after reading it whole (FormatError when damaged or inconsistent)."""
    try:
        header, drives = CatalogReader(path).drives()
    except UnsupportedVersion:
        raise  # not damage: every drive's copy is of that version, and a newer release reads it
    except FormatError as exc:
        raise UsageError(f"the catalog {path} is damaged ({exc}): use another drive's catalog") from exc
    if not catalog_is_consistent(header, drives):
        raise UsageError(f"the catalog {path} is inconsistent with its fingerprint: use another drive's catalog")
    return header, drives
