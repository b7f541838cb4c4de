"""Verifying parity drives (docs/format.md 19.7.5, 19.7.6): a parity drive alone (:class:`ParityDriveCheck`: its
manifest, its segments block by block against their ``pblock`` hashes, its ``covered/`` copies, its catalog copy
and B3SUMS), and what the drives given together say about the shipment (:func:`shipment_verdict`): whole,
recoverable from the parity drives given, or lost, naming the drives and files.

A parity drive is trusted only as far as its ``covers`` records match the catalog's data drives (19.7.7): one that
covers another packing is of another shipment here. What this module concludes about recovery is what 19.7.6's
arithmetic allows; the bytes themselves are checked when they are rebuilt.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import blake3

from ..drive import FILESYSTEM_ENTRIES, CatalogReader, ChunkMap, DriveReader
from ..drive.parity.reader import ParityDriveReader
from ..errors import FormatError, NotADrive, UnfinishedDrive
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    INDEX_NAME,
    MANIFEST_NAME,
    READERS,
    SEGMENTS_DIR,
    CatalogEntry,
    ChunkRecord,
    FileRecord,
    HardlinkRecord,
    ManifestRecord,
    SealedRecord,
    SegmentRecord,
    drive_label,
    shipment_fingerprint,
    show_path,
)
from ..format.checksums import parse_checksums
from ..format.container import read_records, type_prefix
from ..format.parity import (
    COVERED_DIR,
    CoversRecord,
    ParityHeader,
    ParitySegmentRecord,
    PBlockRecord,
    covered_index_name,
    covered_label_name,
    covered_manifest_name,
)
from ..io.store import DriveStore, LocalStore
from ..parity.layout import stripes_of
from ..progress import DriveProgress
from .catalog import fingerprint_mismatch
from .damage import chunk_ranges, hurt_paths
from .report import DriveReport, Kind, ShipmentVerdict, Status
from .settings import Mode, Settings

#: B3SUMS is read up to this many bytes (as the data drive reader does).
CHECKSUMS_LIMIT = 1 << 24
#: The most lost paths a verdict names (a count says how many more): the catalog is streamed, never held.
MOST_PATHS = 1000


@dataclass
class ParityFacts:
    """What a parity drive's check found that the shipment's verdict needs: which group and row it is, what it
    covers, and which of its stripes are lost (damaged blocks). ``usable``: its manifest and covers could be
    trusted (else it counts as absent)."""

    label: str
    group: int
    row: int
    data_drives: int
    parity_drives: int
    block_size: int
    stripes: int
    covers: list[CoversRecord]
    #: The parity drive's directory, and its store: its covered/ copies name what a lost data drive held.
    path: str = ""
    store: DriveStore | None = None
    damaged_stripes: set[int] = field(default_factory=set)
    usable: bool = True


class ParityDriveCheck:
    """Checks the parity drive at ``path`` into ``report`` (read-only), returning its :class:`ParityFacts`."""

    def __init__(self, path: str, report: DriveReport, settings: Settings, progress: DriveProgress) -> None:
        self.path = path
        self.report = report
        self.settings = settings
        self.progress = progress
        self.reader: ParityDriveReader | None = None
        self.header: ParityHeader | None = None
        self.segments: list[ParitySegmentRecord] = []
        #: The ``sealed`` records of the encrypted covered drives' indexes, by label (their copies' pins).
        self._indexes: dict[str, SealedRecord] = {}
        self.damaged: set[int] = set()

    def run(self) -> ParityFacts | None:
        report = self.report
        try:
            self.reader = reader = ParityDriveReader(self.path, self.settings.open_store(self.path))
        except NotADrive as exc:
            report.add(Kind.NOT_A_DRIVE, str(exc), status=Status.NOT_A_DRIVE)
            return None
        except UnfinishedDrive as exc:
            report.add(Kind.UNFINISHED, str(exc), status=Status.UNFINISHED)
            return None
        except FormatError as exc:
            report.add(Kind.LABEL, f"{DRIVE_LABEL_NAME} is damaged: {exc}")
            return None
        report.label, report.shipment = reader.label.label, reader.label.shipment
        try:
            self._manifest_and_blocks(reader)
        except FormatError as exc:
            report.add(Kind.MANIFEST, f"{MANIFEST_NAME} is damaged: {exc}")
            return None
        header = self.header
        assert header is not None
        facts = ParityFacts(
            reader.label.label, header.group, header.row, header.data_drives, header.parity_drives,
            header.block_size, header.stripes, reader.covers, self.path, reader.store, self.damaged,
        )  # fmt: skip
        self._covered(reader)
        catalog_blake3 = self._catalog(reader, facts)
        self._checksums(reader, catalog_blake3)
        self._strays(reader)
        return facts

    def _manifest_and_blocks(self, reader: ParityDriveReader) -> None:
        """One pass over the manifest; each segment's blocks are hashed against its ``pblock`` records as its
        ``segment`` record comes (a segment's hashes are all that is held: memory stays at one segment's list)."""
        pending: list[PBlockRecord] = []
        for record in reader.records():
            if isinstance(record, ParityHeader):
                self.header = record
            elif isinstance(record, PBlockRecord):
                pending.append(record)
            elif isinstance(record, ParitySegmentRecord):
                self.segments.append(record)
                self._segment(reader, record, pending)
                pending = []

    def _segment(self, reader: ParityDriveReader, record: ParitySegmentRecord, blocks: list[PBlockRecord]) -> None:
        header = self.header
        assert header is not None
        try:
            found = reader.store.stat(record.name)
        except OSError:
            found = None
        if found is None:
            self.report.add(Kind.MISSING_SEGMENT, f"{record.name} is missing: {len(blocks)} parity blocks lost")
            self.damaged.update(block.stripe for block in blocks)
            return
        size = found.size
        if size != record.size:
            kind = Kind.TRUNCATED_SEGMENT if size < record.size else Kind.OVERSIZED_SEGMENT
            self.report.add(kind, f"{record.name} has {size} bytes, its manifest records {record.size}")
        if self.settings.mode == Mode.QUICK:
            if size < record.size:
                self.damaged.update(
                    b.stripe for b in blocks if (b.stripe - blocks[0].stripe + 1) * header.block_size > size
                )
            return
        bad = self._hash_blocks(reader, record, blocks)
        if bad:
            self.damaged.update(bad)
            shown = ", ".join(str(s) for s in bad[:10]) + (", ..." if len(bad) > 10 else "")
            self.report.add(
                Kind.PARITY_BLOCK,
                f"{record.name}: {len(bad)} damaged parity block{'s' if len(bad) != 1 else ''} (stripe {shown}): "
                "each counts as one more loss in its stripe",
            )

    def _hash_blocks(
        self, reader: ParityDriveReader, record: ParitySegmentRecord, blocks: list[PBlockRecord]
    ) -> list[int]:
        """The stripes of ``blocks`` whose bytes in the segment ``record`` do not give their ``pblock`` hash."""
        header = self.header
        assert header is not None
        bad: list[int] = []
        segment_hasher = blake3.blake3()
        try:
            handle = reader.open(record.name)
        except OSError:
            return [block.stripe for block in blocks]
        with handle:
            for block in blocks:
                try:
                    data = handle.read(header.block_size)
                except OSError:
                    data = b""
                segment_hasher.update(data)
                if len(data) != header.block_size or blake3.blake3(data).hexdigest() != block.blake3:
                    bad.append(block.stripe)
                self.report.bytes_checked += len(data)
                self.progress.advance(len(data))
        if not bad and segment_hasher.hexdigest() != record.blake3:
            self.report.add(Kind.MANIFEST, f"{record.name}: its blocks match, its segment hash does not")
        return bad

    def _covered(self, reader: ParityDriveReader) -> None:
        for record in reader.covers:
            copies = [
                (covered_label_name(record.label), record.drive_json_size, record.drive_json_blake3),
                (covered_manifest_name(record.label), record.manifest_size, record.manifest_blake3),
            ]
            index = self._covered_index(reader, record)
            if index is not None:  # an encrypted drive's sealed index, pinned by the manifest copy (19.7.4)
                copies.append((covered_index_name(record.label), index.size, index.blake3))
            for name, size, digest in copies:
                try:
                    found: tuple[int, str] | None = reader.hash_file(name)
                except OSError:
                    found = None
                if found != (size, digest):
                    what = "missing" if found is None else "damaged (BLAKE3 mismatch)"
                    self.report.add(
                        Kind.COVERED,
                        f"{name} is {what}: the copy of {record.label}'s index, which a rebuild of that drive needs, "
                        "is on every other parity drive of the group too",
                    )

    def _covered_index(self, reader: ParityDriveReader, record: CoversRecord) -> SealedRecord | None:
        """The ``sealed`` record of ``index.age`` in the covered manifest copy of ``record``'s drive (kept for B3SUMS),
        None for a drive in the clear or a copy that does not read (named as damaged by its own check)."""
        name = covered_manifest_name(record.label)
        copy = _ManifestCopy(reader.store, name, os.path.join(reader.path, name))
        try:
            found = next(
                (r for r in _manifest_records(copy, (SealedRecord.TYPE,)) if getattr(r, "name", "") == INDEX_NAME),
                None,
            )
        except (OSError, FormatError):
            found = None
        if isinstance(found, SealedRecord):
            self._indexes[record.label] = found
            return found
        return None

    def _catalog(self, drive: ParityDriveReader, facts: ParityFacts) -> str | None:
        """Check the ``covers`` records against the catalog (19.7.5); the catalog copy's BLAKE3, when it read."""
        covers = drive.covers
        own = _has(drive.store, CATALOG_NAME)
        if own:
            reader = CatalogReader(drive.catalog, functools.partial(drive.open, CATALOG_NAME))
        elif self.settings.catalog is not None and os.path.exists(self.settings.catalog):
            reader = CatalogReader(self.settings.catalog)  # given apart from the drives: a local file
        else:
            self.report.notes.append("no catalog on this parity drive: its covers were not checked against one")
            return None
        try:
            header, drives = reader.drives()
        except FormatError as exc:
            self.report.add(Kind.CATALOG, f"{CATALOG_NAME} is damaged: {exc}")
            return None
        self.report.fingerprint = header.fingerprint
        if header.shipment != self.report.shipment:
            self.report.add(Kind.OTHER_SHIPMENT, "its catalog is another shipment's", status=Status.WRONG_SHIPMENT)
            facts.usable = False
        listed = {drive.drive: drive for drive in drives}
        for record in covers:
            match = listed.get(record.drive)
            if match is None or (match.manifest_size, match.manifest_blake3, match.stored_bytes) != (
                record.manifest_size,
                record.manifest_blake3,
                record.stored_bytes,
            ):
                self.report.add(
                    Kind.OTHER_SHIPMENT,
                    f"it covers a {record.label} that is not the catalog's: a parity drive of another packing",
                    status=Status.WRONG_SHIPMENT,
                )
                facts.usable = False
                break
        if self.settings.expected_fingerprint:
            # Version 2's is the catalog body's (19.6), which the catalog reader checked as it read it.
            computed = shipment_fingerprint(header, drives)
            self.report.fingerprint_matched = computed.startswith(self.settings.expected_fingerprint)
            if not self.report.fingerprint_matched:
                self.report.add(
                    Kind.FINGERPRINT,
                    fingerprint_mismatch(self.settings.expected_fingerprint, computed),
                    status=Status.WRONG_SHIPMENT,
                )
                facts.usable = False
        return reader.blake3 if own else None

    def _checksums(self, reader: ParityDriveReader, catalog_blake3: str | None) -> None:
        """B3SUMS must list what 19.7.4 says, in its order, with the digests found."""
        assert reader.header is not None
        expected = [(s.name, s.blake3) for s in self.segments]
        for record in reader.covers:
            expected.append((covered_label_name(record.label), record.drive_json_blake3))
            expected.append((covered_manifest_name(record.label), record.manifest_blake3))
            if (index := self._indexes.get(record.label)) is not None:
                expected.append((covered_index_name(record.label), index.blake3))
        expected.append((MANIFEST_NAME, reader.label.manifest_blake3))
        expected.append((DRIVE_LABEL_NAME, blake3.blake3(reader.label_bytes).hexdigest()))
        try:
            with reader.open(CHECKSUMS_NAME) as handle:
                found = parse_checksums(handle.read(CHECKSUMS_LIMIT))
        except OSError as exc:
            self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} cannot be read: {exc.strerror}")
            return
        entries = found.entries
        if catalog_blake3 is not None:
            expected.append((CATALOG_NAME, catalog_blake3))
        elif entries and entries[-1][0] == CATALOG_NAME:
            entries = entries[:-1]
        if found.problem or entries != expected:
            self.report.add(Kind.CHECKSUMS, f"{CHECKSUMS_NAME} does not list what the parity drive holds")

    def _strays(self, reader: ParityDriveReader) -> None:
        """Files that are not part of the parity drive: a warning, as on a data drive."""
        covers = reader.covers
        known = {CATALOG_NAME, CHECKSUMS_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME, SEGMENTS_DIR, COVERED_DIR}
        listed = {s.name for s in self.segments}
        listed |= {name for c in covers for name in (covered_label_name(c.label), covered_manifest_name(c.label))}
        listed |= {covered_index_name(label) for label in self._indexes}
        strays: list[str] = []
        for directory in ("", SEGMENTS_DIR, COVERED_DIR):
            try:
                names = reader.store.list(directory)
            except OSError:
                continue
            for name in names:
                relative = f"{directory}/{name}" if directory else name
                if (not directory and (name in known or name in FILESYSTEM_ENTRIES)) or relative in listed:
                    continue
                strays.append(relative)
        if strays:
            self.report.unexpected = sorted(strays)
            self.report.add(
                Kind.UNEXPECTED_FILE,
                f"{len(strays)} file{'s' if len(strays) != 1 else ''} that are not part of the parity drive: "
                + ", ".join(sorted(strays)[:5]),
                status=Status.UNEXPECTED_FILES,
            )


def shipment_verdict(
    reports: Sequence[DriveReport],
    parity: Sequence[ParityFacts],
    catalog: str | None,
    open_store: Callable[[str], DriveStore] = LocalStore,
) -> ShipmentVerdict | None:
    """The verdict over the data drives of ``reports`` (read through ``open_store``) and the usable parity drives of
    ``parity``, stripe by stripe as 19.7.6 counts losses; None when no parity drive was given or no catalog (the
    one given apart, else a data drive's) says which data drives there are."""
    if not parity:
        return None
    open_catalog = functools.partial(CatalogReader, catalog) if catalog else _catalog_of(reports, open_store)
    if open_catalog is None:
        return None
    try:
        _, listed = open_catalog().drives()
    except FormatError:
        return None
    usable = [facts for facts in parity if facts.usable]
    data = {r.drive: r for r in reports if r.drive is not None and r.label and r.label.startswith("drive-")}
    numbers = [drive.drive for drive in listed]
    # A data drive that could not be read at all (not a drive, unfinished, its index damaged) is as good as missing.
    missing = [n for n in numbers if n not in data or data[n].status in _ABSENT or not _indexed(data[n])]
    damaged = {n: data[n] for n in numbers if n not in missing and data[n].damaged_chunks}
    verdict = ShipmentVerdict("whole", len(numbers), [f.label for f in usable], [drive_label(n) for n in missing],
                              [drive_label(n) for n in damaged], [], [], [], 0, [])  # fmt: skip
    unrecoverable: dict[int, set[int] | None] = {}  # drive -> its stripes that cannot be rebuilt (None: all)
    groups = _groups(usable)
    covered = {drive for columns in groups for drive in columns}
    for number in [*missing, *damaged]:
        if number not in covered:
            unrecoverable[number] = None
    for columns, rows in groups.items():
        _group_losses(columns, rows, missing, damaged, unrecoverable)
    _word(verdict, missing, damaged, unrecoverable, usable)
    _lost_paths(verdict, open_catalog, unrecoverable, damaged, usable)
    return verdict


_ABSENT = {Status.NOT_A_DRIVE.value, Status.UNFINISHED.value, Status.WRONG_SHIPMENT.value}


def _indexed(report: DriveReport) -> bool:
    """Whether the drive's index could be read (its damage, if any, is in chunks the verdict can place)."""
    return not any(p.kind in (Kind.LABEL.value, Kind.MANIFEST.value) for p in report.problems)


def _catalog_of(
    reports: Sequence[DriveReport], open_store: Callable[[str], DriveStore]
) -> Callable[[], CatalogReader] | None:
    """A reader of the first catalog a drive of ``reports`` carries, read through its store."""
    for report in reports:
        store = open_store(report.path)
        try:
            found = store.stat(CATALOG_NAME)
        except OSError:
            continue
        if found is not None and stat.S_ISREG(found.mode):
            path = os.path.join(report.path, CATALOG_NAME)
            return functools.partial(CatalogReader, path, functools.partial(store.open, CATALOG_NAME))
    return None


def _groups(usable: Sequence[ParityFacts]) -> dict[tuple[int, ...], dict[int, ParityFacts]]:
    """The parity drives given, by the data drives their group covers, then by row."""
    found: dict[tuple[int, ...], dict[int, ParityFacts]] = {}
    for facts in usable:
        found.setdefault(tuple(c.drive for c in facts.covers), {})[facts.row] = facts
    return found


def _group_losses(
    columns: tuple[int, ...],
    rows: dict[int, ParityFacts],
    missing: list[int],
    damaged: dict[int, DriveReport],
    unrecoverable: dict[int, set[int] | None],
) -> None:
    """Where a group's lost columns outnumber its surviving rows (19.7.6): a stripe no damage touches loses the
    missing drives' columns only, so either every missing drive is lost or none is there; each stripe with a
    damaged chunk or parity block is counted on its own."""
    block_size = next(iter(rows.values())).block_size
    gone = [d for d in columns if d in missing]
    hurt = {d: _damaged_stripes(damaged[d], block_size) for d in columns if d in damaged}
    if len(gone) > len(rows):
        for drive in gone:
            unrecoverable[drive] = None
    special: set[int] = set()
    for stripes in [*hurt.values(), *(f.damaged_stripes for f in rows.values())]:
        special |= stripes
    for stripe in sorted(special):
        lost = [*gone, *(d for d, stripes in hurt.items() if stripe in stripes)]
        surviving = sum(1 for f in rows.values() if stripe not in f.damaged_stripes)
        if len(lost) > surviving:
            for drive in lost:
                already = unrecoverable.setdefault(drive, set())
                if already is not None:
                    already.add(stripe)


def _damaged_stripes(report: DriveReport, block_size: int) -> set[int]:
    """The stripes the damaged chunks of a data drive overlap (19.7.6: its column is lost in each)."""
    starts: dict[str, int] = {}
    offset = 0
    for record in DriveReader(report.path, public=True).records(only=(SegmentRecord.TYPE,)):
        if isinstance(record, SegmentRecord):
            starts[record.name] = offset
            offset += record.size
    stripes: set[int] = set()
    for chunk in report.damaged_chunks:
        stripes.update(stripes_of(starts.get(chunk.segment, 0) + chunk.offset, chunk.stored_size, block_size))
    return stripes


def _word(
    verdict: ShipmentVerdict,
    missing: list[int],
    damaged: dict[int, DriveReport],
    unrecoverable: dict[int, set[int] | None],
    usable: list[ParityFacts],
) -> None:
    names = ", ".join(f.label for f in usable) or "no parity drive"
    for number in [*missing, *damaged]:
        label = drive_label(number)
        count = 0 if number in missing else len(damaged[number].damaged_chunks)
        what = "missing" if number in missing else f"has {count} damaged chunk{'s' if count != 1 else ''}"
        if number not in unrecoverable:
            verdict.rebuildable.append(label)
            verdict.messages.append(f"{label} {what}: recoverable from {names}")
        else:
            verdict.lost.append(label)
            stripes = unrecoverable[number]
            part = (
                "cannot be rebuilt"
                if stripes is None
                else f"{len(stripes)} stripe{'s' if len(stripes) != 1 else ''} of it cannot be rebuilt"
            )
            verdict.messages.append(f"{label} {what}: {part} (more drives lost than the {len(usable)} parity drives "
                                    "of its group can rebuild)")  # fmt: skip
    if verdict.lost:
        verdict.status = "lost"
    elif missing or damaged:
        verdict.status = "recoverable"
    for facts in usable:
        if facts.damaged_stripes and not verdict.lost:
            verdict.messages.append(
                f"{facts.label}: {len(facts.damaged_stripes)} damaged parity blocks, recomputable from the data drives"
            )


def _lost_paths(
    verdict: ShipmentVerdict,
    open_catalog: Callable[[], CatalogReader],
    unrecoverable: dict[int, set[int] | None],
    damaged: dict[int, DriveReport],
    usable: Sequence[ParityFacts],
) -> None:
    """The files the lost drives held: catalog entries on a wholly lost drive (streamed); on a partly lost one,
    the paths its chunks in the lost stripes hurt (from the parity drives' covered/ copy of its manifest when it is
    missing). At most MOST_PATHS named, the rest counted."""
    whole = {n for n, stripes in unrecoverable.items() if stripes is None}
    found: set[str] = set()
    for number, stripes in unrecoverable.items():
        if stripes is None:
            continue
        if number in damaged:
            found.update(p for chunk in damaged[number].damaged_chunks for p in chunk.paths)
        else:
            found.update(show_path(path) for path in _paths_in_stripes(number, stripes, usable))
    more = 0
    if whole:
        for record in open_catalog().records(only=(CatalogEntry.TYPE,)):
            if isinstance(record, CatalogEntry) and any(record.first_drive <= n <= record.last_drive for n in whole):
                if len(found) < MOST_PATHS:
                    found.add(show_path(record.path))
                else:
                    more += 1
    verdict.lost_paths = sorted(found)[:MOST_PATHS]
    verdict.lost_paths_more = more + max(0, len(found) - MOST_PATHS)


def _paths_in_stripes(number: int, stripes: set[int], usable: Sequence[ParityFacts]) -> set[bytes]:
    """The paths whose pieces lie in ``stripes`` of missing data drive ``number``, from a parity drive's covered/
    copy of its manifest (the first that reads; none: nothing named)."""
    for facts in usable:
        record = next((c for c in facts.covers if c.drive == number), None)
        if record is None:
            continue
        name = covered_manifest_name(record.label)
        store = facts.store if facts.store is not None else LocalStore(facts.path)
        copy = _ManifestCopy(store, name, os.path.join(facts.path, name))
        try:
            starts: dict[str, int] = {}
            offset = 0
            for item in _manifest_records(copy, (SegmentRecord.TYPE,)):
                if isinstance(item, SegmentRecord):
                    starts[item.name] = offset
                    offset += item.size
            chunks = ChunkMap()
            ids: list[int] = []
            for item in _manifest_records(copy, (ChunkRecord.TYPE,)):
                if isinstance(item, ChunkRecord):
                    chunks.add_chunk(item)
                    span = stripes_of(starts.get(item.segment, 0) + item.offset, item.stored_size, facts.block_size)
                    if stripes.intersection(span):
                        ids.append(item.id)
            ranges = chunk_ranges(chunks, ids) if ids else []
            files = _manifest_records(copy, (FileRecord.TYPE, HardlinkRecord.TYPE))
            return {path for _, path in hurt_paths(ranges, chunks, files)} if ranges else set()
        except (OSError, FormatError):
            continue
    return set()


@dataclass(frozen=True)
class _ManifestCopy:
    """A data drive's manifest copy in a parity drive's covered/: its store, its name there, its path (messages)."""

    store: DriveStore
    name: str
    path: str


def _has(store: DriveStore, name: str) -> bool:
    try:
        return store.stat(name) is not None
    except OSError:
        return False


def _manifest_records(copy: _ManifestCopy, only: tuple[str, ...]) -> Iterator[ManifestRecord]:
    """The records of types ``only`` of a data drive's manifest copy, parsed as its header's version says."""
    path = copy.path
    with copy.store.open(copy.name) as handle:
        raw_records = read_records(handle, f"the manifest copy {path}", tuple(type_prefix(t) for t in only))
        header = next(raw_records, None) or {}
        version = header.get("version")
        reader = READERS.get(version) if type(version) is int else None
        if reader is None:
            raise FormatError(f"the manifest copy {path} is of no version this sneakernet reads")
        for raw in raw_records:
            if raw is not None and raw.get("type") in only:
                yield reader.manifest_record(raw)
