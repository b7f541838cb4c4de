"""The catalog a drive is checked against: read whole (its integrity, shipment and fingerprint, this drive's line
in it), its entries indexed for the set-wise comparison with the manifest (validate.CatalogIndex), and the
fingerprint a user typed compared with it.

The catalog is not covered by the fingerprint (docs/format.md section 9): nothing of it is trusted until it
matches the manifest. Every drive of a shipment carries the same catalog, so the drives of one run share the
catalogs parsed (:class:`CatalogMemo`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator

from ..drive import CatalogReader, DriveReader, file_blake3
from ..errors import FormatError, UsageError
from ..format import (
    CATALOG_NAME,
    MANIFEST_NAME,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    DriveLabel,
    LaneTable,
    SealedRecord,
    catalog_is_consistent,
    shipment_fingerprint,
    short_fingerprint,
    show_path,
)
from ..validate import CatalogIndex
from .report import DriveReport, Kind, Status
from .settings import Settings

#: A fingerprint given on the command line must have at least this many hex digits (64 bits).
MIN_FINGERPRINT_DIGITS = 16
#: A fingerprint given that differs from a drive's in at most this many digits looks mistyped: two fingerprints
#: of different shipments share a digit at a place one time in 16, so they differ in about 15 of every 16.
TYPO_DIGITS = 2

#: A catalog parsed whole: the header, the drive list, the index of the entries (None when the catalog lies, see
#: validate.CatalogIndex), what it lies about, and an encrypted shipment's record of its sealed catalog.
Parsed = tuple[CatalogHeader, list[CatalogDrive], CatalogIndex | None, list[str], SealedRecord | None]


class CatalogMemo:
    """The catalogs parsed whole by the drive checks of one thread, by BLAKE3: every drive of a shipment carries the
    same catalog, and one whose bytes were parsed for an earlier drive is not parsed again. Each thread of a run
    has its own (the indexes live in that thread's scratch database, see drive.Scratch): drives checked at once
    each parse their own copy, from their own drive, at the same time."""

    def __init__(self) -> None:
        self._parsed: dict[str, Parsed] = {}
        self._tables = 0
        self._lock = threading.Lock()

    def get(self, digest: str) -> Parsed | None:
        with self._lock:
            return self._parsed.get(digest)

    def put(self, digest: str, parsed: Parsed) -> None:
        with self._lock:
            self._parsed[digest] = parsed

    def new_table(self) -> str:
        """A name for the table of a catalog's entries that no other catalog of the run has."""
        with self._lock:
            self._tables += 1
            return f"catalog_{self._tables - 1}"


def fingerprint_mismatch(expected: str, computed: str) -> str:
    """Why a drive is not of the shipment whose fingerprint starts with ``expected``: a typo, or another shipment."""
    differ = [i for i, (a, b) in enumerate(zip(expected, computed, strict=False)) if a != b]
    given, found = short_fingerprint(expected.ljust(20, "?")), short_fingerprint(computed)
    if len(differ) <= TYPO_DIGITS:
        where = ", ".join(f"digit {i + 1}: {expected[i]} given, {computed[i]} on the drive" for i in differ)
        return (
            f"the fingerprint given, {given}, differs from this drive's, {found}, in only {len(differ)} of "
            f"{len(expected)} digits ({where}): it looks mistyped; check it against what the sender sent"
        )
    return (
        f"this drive belongs to shipment {found}, not to the expected {given} ({len(differ)} of {len(expected)} "
        "digits differ): it is a drive of another shipment"
    )


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as typed (any case, dashes or spaces between groups) as lowercase hex."""
    digits = "".join(ch for ch in text.lower() if ch not in "- :")
    if len(digits) < MIN_FINGERPRINT_DIGITS or len(digits) > 64 or any(ch not in "0123456789abcdef" for ch in digits):
        raise UsageError(
            f"cannot read fingerprint {text!r}: give at least {MIN_FINGERPRINT_DIGITS} hex digits, "
            "as pack printed them (e.g. 3f9a-12bc-77d0-e145-9abc)"
        )
    return digits


class CatalogCheck:
    """One drive's catalog: its own, or (for a drive without one) the sender's copy given with --catalog."""

    def __init__(
        self,
        reader: DriveReader,
        report: DriveReport,
        settings: Settings,
        catalogs: CatalogMemo,
        db: sqlite3.Connection,
    ) -> None:
        self.reader = reader
        self.report = report
        self.given = settings.catalog
        self.expected_fingerprint = settings.expected_fingerprint
        self.catalogs = catalogs
        self.db = db
        #: The BLAKE3 of the drive's own catalog (what its B3SUMS line must say), when it could be read.
        self.digest: str | None = None
        self.header: CatalogHeader | None = None
        self.drives: list[CatalogDrive] = []
        #: The catalog's line for this drive.
        self.own: CatalogDrive | None = None
        #: The catalog's entries as an index, when the catalog parsed and does not lie.
        self.index: CatalogIndex | None = None
        #: An encrypted shipment's: the public catalog's record of catalog.age (docs/format.md 19.8.3).
        self.sealed: SealedRecord | None = None

    def read(self, label: DriveLabel) -> None:
        """Read the catalog whole: its integrity, its shipment, its fingerprint, and this drive's line in it."""
        report = self.report
        # A drive without its own catalog (all but the last of a --swap pack) can be checked against the sender's.
        own = self.reader.stat(CATALOG_NAME) is not None
        given = None if own else self.given
        if not own and not (given is not None and os.path.exists(given)):
            report.notes.append(
                "no catalog on this drive: the shipment's packing may not have finished; the drive was checked alone"
            )
            if self.expected_fingerprint:
                report.add(
                    Kind.FINGERPRINT,
                    "cannot check --fingerprint: this drive carries no catalog; give the shipment's catalog with "
                    "--catalog FILE (the last drive's catalog.jsonl.zst, or the copy a --swap pack kept in "
                    "~/.local/share/sneakernet/catalogs)",
                    status=Status.UNCONFIRMED,
                )
            return
        external = given is not None
        reader = CatalogReader(given) if given is not None else self.reader.catalog()
        try:
            digest: str | None = (file_blake3(given) if given is not None else self.reader.hash_file(CATALOG_NAME))[1]
        except OSError:
            digest = None
        try:
            header, drives = self._parsed(reader, digest)
        except FormatError as exc:
            report.add(Kind.CATALOG, f"{CATALOG_NAME} is damaged: {exc}")
            self.digest = None if external else digest
            return
        self.digest = None if external else digest
        report.drives, report.fingerprint = header.drives, header.fingerprint
        self.header, self.drives = header, drives
        if header.shipment != label.shipment:
            # Decided once the manifest is read: drive.json may be the damaged one (see StructureCheck).
            return
        computed = shipment_fingerprint(header, drives)
        if not catalog_is_consistent(header, drives):
            report.add(Kind.CATALOG, f"{CATALOG_NAME} is inconsistent: its drive list does not give its fingerprint")
        self.own = next((d for d in drives if d.drive == label.drive), None)
        if self.own is None:
            report.add(Kind.CATALOG, f"the catalog lists no drive {label.drive}")
        if self.expected_fingerprint:
            report.fingerprint_matched = computed.startswith(self.expected_fingerprint)
            if not report.fingerprint_matched:
                report.add(
                    Kind.FINGERPRINT,
                    fingerprint_mismatch(self.expected_fingerprint, computed),
                    status=Status.WRONG_SHIPMENT,
                )

    def _parsed(self, reader: CatalogReader, digest: str | None) -> tuple[CatalogHeader, list[CatalogDrive]]:
        """The header and drive list of the catalog whose BLAKE3 is ``digest``, its entries indexed (see
        :attr:`index`). Every drive of a shipment carries the same catalog: one whose bytes were parsed
        whole for an earlier drive of this run is not parsed again."""
        cached = self.catalogs.get(digest) if digest is not None else None
        if cached is not None:
            cached_header, cached_drives, self.index, cached_lies, self.sealed = cached
            for problem in cached_lies:
                self.report.add(Kind.CATALOG, f"{CATALOG_NAME}: {problem}")
            return cached_header, cached_drives
        index = CatalogIndex(self.db, self.catalogs.new_table())
        found: list[CatalogHeader] = []
        drives: list[CatalogDrive] = []

        def entries() -> Iterator[CatalogEntry]:
            for record in reader.records():
                if isinstance(record, CatalogEntry):
                    yield record
                elif isinstance(record, CatalogDrive):
                    drives.append(record)
                elif isinstance(record, CatalogHeader):
                    found.append(record)
                elif isinstance(record, SealedRecord):
                    self.sealed = record

        lies = index.build(entries())
        self.sealed = self.sealed or reader.sealed  # read with the key, the reader took it
        for problem in lies:
            self.report.add(Kind.CATALOG, f"{CATALOG_NAME}: {problem}")
        header = found[0]
        if lies:
            # The rest is read to know whether the file is whole (its entries are no longer indexed).
            header, drives = reader.drives()
        if digest is not None:
            if reader.blake3 != digest:
                raise FormatError("it changed while it was read")
            self.catalogs.put(digest, (header, drives, None if lies else index, lies, self.sealed))
        self.index = None if lies else index
        return header, drives

    def vouched_drive(self) -> CatalogDrive | None:
        """The catalog's drive whose manifest BLAKE3 is that of the manifest on this drive, if any."""
        actual = self.reader.manifest_blake3
        if actual is None:
            try:
                actual = self.reader.hash_file(MANIFEST_NAME)[1]
            except OSError:
                return None
        return next((d for d in self.drives if d.manifest_blake3 == actual), None)

    def cross_check(self, loaded: bool) -> None:
        """The catalog's slice for this drive against the manifest just read (docs/format.md section 9): the
        catalog is not covered by the fingerprint, so a reader must not trust its entries until they match.
        ``loaded``: the manifest's entries are all in the database (none was twice on the drive)."""
        index, own = self.index, self.own
        if not loaded or index is None or own is None or own.manifest_blake3 != self.reader.manifest_blake3:
            return  # no catalog to compare, or another problem already says the two do not belong together
        drive, lanes = self.reader.label.drive, self.lanes()
        lane = None if lanes is None else [d.drive for d in self.drives if d.lane == own.lane]
        for problem in index.compare(drive, lane):
            self.report.add(Kind.CATALOG, problem)
        for problem in index.link_problems(drive, ordered=lanes is None):
            self.report.add(Kind.MANIFEST, f"{MANIFEST_NAME}: {problem}")

    def lanes(self) -> LaneTable | None:
        """Version 2: the catalog's data drives by lane (what a piece's ``next_drive`` must follow), else None."""
        if self.header is None or self.header.version < 2:
            return None
        return LaneTable.of(self.drives)

    def paths_on_drive(self) -> list[str]:
        """The catalog's paths with bytes on this drive: what a damaged manifest may hurt (in version 2, of the
        entries whose drives span this one's number, those of its lane only)."""
        drive = self.reader.label.drive
        if self.reader.stat(CATALOG_NAME) is None:
            return []
        lanes = self.lanes()
        own = lanes.position(drive) if lanes is not None else None

        def here(entry: CatalogEntry) -> bool:
            if not entry.first_drive <= drive <= entry.last_drive:
                return False
            return lanes is None or own is None or (lanes.position(entry.last_drive) or (0, 0))[0] == own[0]

        try:
            return [
                show_path(r.path) for r in self.reader.catalog().records() if isinstance(r, CatalogEntry) and here(r)
            ]
        except FormatError:
            return []

    def check_against_drive(self, label: DriveLabel) -> None:
        """The manifest read must be the one the catalog (and so the fingerprint) names for this drive."""
        own, actual = self.own, self.reader.manifest_blake3
        if own is None or actual is None:
            return
        if own.manifest_blake3 != actual:
            self.report.add(
                Kind.CATALOG,
                f"{MANIFEST_NAME} is not the one the catalog names for drive {label.drive}: "
                "the drive's files were changed or mixed with another drive's",
            )
