"""Adding parity drives to finished data drives (docs/format.md 19.7, 19.7.7): :func:`add_parity`.

The data drives are read once, front to back, all at the same time (one thread per drive: their reads and BLAKE3
release the GIL), stripe by stripe; each stripe's parity rows are computed by parity.engine and handed to the parity
drives' writers. Each segment of a data drive is checked against its manifest as it is read, so parity is never
finished over a damaged drive. Memory is bounded: k + m buffers of at most :data:`MEMORY` bytes in all, whatever the
drives' sizes (a stripe is cut into slices when k + m blocks would not fit).

The data drives must all be given (parity covers every data drive of the shipment) and be those the shipment's
catalog lists. A version 1 shipment may be covered (19.7.7): its drives stay exactly as they are.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import blake3

from .._version import __version__
from ..drive import CatalogReader, DriveReader, clear_unfinished, holds_shipment, refuse_non_directory
from ..drive.parity.accumulator import ParityAccumulator, check_block
from ..drive.parity.writer import ParityDriveWriter, StaleParity, copy_covered
from ..drive.stream import StoredStream
from ..errors import DestinationError, FormatError, UsageError
from ..format import CATALOG_NAME, DRIVE_LABEL_NAME, INDEX_NAME, SealedRecord, SegmentRecord, drive_label, parity_label
from ..format.parity import (
    COVERED_DIR,
    CoversRecord,
    ParityHeader,
    covered_index_name,
    covered_label_name,
    covered_manifest_name,
)
from ..io.atomic import write_atomic
from ..io.store import LocalStore
from ..options import DEFAULT_SEGMENT_SIZE
from ..output import versioned
from ..parity.engine import ParityCode, load_backend
from ..parity.layout import BLOCK_SIZE, MIN_BLOCK_SIZE, check_block_size, groups, stripe_count
from ..parity.matrix import MAX_COLUMNS, MAX_ROWS
from ..progress import NullProgress, Progress, begin_drive

#: The most bytes of buffers one group's pass holds (k data + m parity slices): 13 blocks of 4 MiB for 10 + 3.
MEMORY = 64 << 20
#: Data drives read at the same time: one thread each, up to this many (a group has at most 251).
READ_THREADS = 32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityOptions:
    """How to add parity: M parity drives per group, the block and parity segment sizes, the group size."""

    parity: int = 1
    block_size: int = BLOCK_SIZE
    segment_size: int = DEFAULT_SEGMENT_SIZE
    group_size: int = MAX_COLUMNS
    resume: bool = False

    def check(self) -> None:
        if not 1 <= self.parity <= MAX_ROWS:
            raise UsageError(f"a parity group has 1 to {MAX_ROWS} parity drives, not {self.parity}")
        try:
            check_block_size(self.block_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if self.segment_size < self.block_size or self.segment_size % self.block_size:
            raise UsageError(
                f"a parity segment is a multiple of the {self.block_size}-byte parity block, not {self.segment_size}"
            )
        if not 1 <= self.group_size <= MAX_COLUMNS:
            raise UsageError(f"a parity group has 1 to {MAX_COLUMNS} data drives, not {self.group_size}")


@dataclass
class ParityDriveResult:
    """One parity drive: where, which group and row, how many bytes of parity, and whether a resumed run kept it."""

    label: str
    path: str
    group: int
    row: int
    stored_bytes: int
    kept: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ParitySummary:
    """What :func:`add_parity` did: the shipment, its data drives and groups, the parity drives written."""

    shipment: str
    data_drives: int
    groups: list[tuple[int, int]]
    drives: list[ParityDriveResult] = field(default_factory=list)
    read_bytes: int = 0
    seconds: float = 0.0
    engine: str = ""

    def to_json(self) -> dict[str, Any]:
        return versioned({
            "shipment": self.shipment,
            "data_drives": self.data_drives,
            "groups": [{"group": n, "first_drive": first, "last_drive": last} for n, (first, last) in
                       enumerate(self.groups, 1)],
            "parity_drives": [drive.to_json() for drive in self.drives],
            "read_bytes": self.read_bytes,
            "seconds": round(self.seconds, 3),
            "engine": self.engine,
        })  # fmt: skip


def add_parity(
    drives: Sequence[str],
    *,
    out: str | None = None,
    targets: Sequence[str] = (),
    options: ParityOptions | None = None,
    catalog: str | None = None,
    progress: Progress | None = None,
    created: str | None = None,
) -> ParitySummary:
    """Write the parity drives of the shipment whose data drives are ``drives`` (every one of them), into
    ``out``/parity-NNNN or onto the directories ``targets`` (as many as the groups need parity drives). A parity
    drive left unfinished by an interrupted run is written again with ``options.resume``; finished ones are kept.
    ``created`` is the time their headers record (default: now; pack --parity gives the shipment's)."""
    options = options or ParityOptions()
    options.check()
    progress = progress or NullProgress()
    backend = load_backend()  # before anything is read: a missing engine is said first
    started = time.monotonic()
    readers = _data_drives(drives)
    catalog_path = catalog or _catalog_on(readers)
    catalog_blake3 = _check_catalog(catalog_path, readers)
    by_number = {reader.label.drive: reader for reader in readers}
    parts = groups(len(readers), options.group_size)
    paths = _parity_paths(out, targets, len(parts) * options.parity)
    finished = [_finished(path, options.resume) for path in paths]
    created = created or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = ParitySummary(
        readers[0].label.shipment, len(readers), [(g[0], g[-1]) for g in parts], engine=backend.name
    )
    progress.start(sum(reader.label.stored_bytes for reader in readers))
    try:
        for number, part in enumerate(parts, 1):
            columns = [by_number[drive] for drive in part]
            first = (number - 1) * options.parity
            rows = slice(first, first + options.parity)
            group = _Group(number, columns, paths[rows], finished[rows], first, options, created)
            summary.drives += group.write(ParityCode(len(columns), options.parity, backend), progress)
            summary.read_bytes += group.read_bytes
            group.finish(catalog_path, catalog_blake3)
    finally:
        progress.close()
    summary.seconds = time.monotonic() - started
    return summary


def _data_drives(paths: Sequence[str]) -> list[DriveReader]:
    """The data drives given, each a finished drive of one shipment, each once, in drive number order."""
    if not paths:
        raise UsageError("give the shipment's data drives: parity covers every one of them")
    readers: list[DriveReader] = []
    for path in paths:
        reader = DriveReader(path, public=True)  # parity is over the stored bytes: no key needed (19.8)
        readers.append(reader)
    shipments = {reader.label.shipment for reader in readers}
    if len(shipments) > 1:
        raise UsageError("the drives given belong to different shipments: give the data drives of one shipment")
    seen: dict[int, str] = {}
    for reader in readers:
        if reader.label.drive in seen:
            raise UsageError(
                f"{reader.path} and {seen[reader.label.drive]} are both {reader.label.label}: give it once"
            )
        seen[reader.label.drive] = reader.path
    return sorted(readers, key=lambda reader: reader.label.drive)


def _catalog_on(readers: Sequence[DriveReader]) -> str:
    for reader in reversed(readers):  # a --swap pack's catalog is on its last drive
        path = reader.file(CATALOG_NAME)
        if os.path.isfile(path):
            return path
    raise UsageError(
        "none of the drives given carries the shipment's catalog (a --swap pack's is on its last drive): "
        "give it with --catalog FILE"
    )


def _check_catalog(path: str, readers: Sequence[DriveReader]) -> str:
    """The catalog's BLAKE3, once its drive list is found to be exactly the drives given (19.7.5: a parity drive's
    ``covers`` must be the catalog's drives)."""
    reader = CatalogReader(path)
    header, listed = reader.drives()
    shipment = readers[0].label.shipment
    if header.shipment != shipment:
        raise UsageError(f"the catalog {path} is another shipment's than the drives given")
    given = {r.label.drive: r for r in readers}
    missing = [record.label for record in listed if record.drive not in given]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UsageError(
            f"{len(missing)} of the shipment's {len(listed)} data drives not given ({shown}): parity is computed "
            "over every data drive, give them all"
        )
    for record in listed:
        label = given[record.drive].label
        if (record.manifest_size, record.manifest_blake3, record.stored_bytes) != (
            label.manifest_size,
            label.manifest_blake3,
            label.stored_bytes,
        ):
            raise FormatError(
                f"{given[record.drive].path} is not the {record.label} the catalog lists (another packing of the "
                "shipment, or damaged): give the shipment's own drives"
            )
    extra = sorted(set(given) - {record.drive for record in listed})
    if extra:
        raise UsageError(f"the catalog lists no drive {extra[0]}: {given[extra[0]].path} is not of this shipment")
    assert reader.blake3 is not None
    return reader.blake3


def _finished(path: str, resume: bool) -> bool:
    """Whether ``path`` already holds a finished parity drive (kept by a resumed run); what an interrupted run left
    unfinished there is cleared with ``resume``, refused without."""
    if not holds_shipment(path):
        return False
    if not resume:
        raise DestinationError(
            f"{path} already holds a drive: give an empty directory, or --resume to finish an interrupted run"
        )
    if os.path.exists(os.path.join(path, DRIVE_LABEL_NAME)):
        return True
    clear_unfinished(LocalStore(path))
    return False


def _parity_paths(out: str | None, targets: Sequence[str], count: int) -> list[str]:
    if out is not None and targets:
        raise UsageError("give --out DIR or --drive PATH for the parity drives, not both")
    if out is not None:
        refuse_non_directory(out, "output")
        return [os.path.join(out, parity_label(number)) for number in range(1, count + 1)]
    if len(targets) != count:
        raise UsageError(f"the parity needs {count} parity drives, {len(targets)} given with --drive")
    for target in targets:
        refuse_non_directory(target, "parity drive")
    return list(targets)


class _Group:
    """One parity group's pass: its data drives (columns), its parity drives (rows), their writers."""

    def __init__(
        self,
        number: int,
        columns: list[DriveReader],
        paths: list[str],
        finished: list[bool],
        first: int,
        options: ParityOptions,
        created: str,
    ) -> None:
        self.number = number
        self.columns = columns
        self.paths = paths
        self.finished = finished
        self.options = options
        self.read_bytes = 0
        self.stripes = stripe_count((c.label.stored_bytes for c in columns), options.block_size)
        self.covers = [
            CoversRecord(
                column=index,
                drive=reader.label.drive,
                label=drive_label(reader.label.drive),
                drive_json_size=len(reader.label_bytes),
                drive_json_blake3=blake3.blake3(reader.label_bytes).hexdigest(),
                manifest_size=reader.label.manifest_size,
                manifest_blake3=reader.label.manifest_blake3,
                stored_bytes=reader.label.stored_bytes,
            )
            for index, reader in enumerate(columns)
        ]
        self.headers = [
            ParityHeader(
                shipment=columns[0].label.shipment,
                drive=first + row + 1,
                created=created,
                tool=f"sneakernet {__version__}",
                group=number,
                row=row,
                data_drives=len(columns),
                parity_drives=options.parity,
                block_size=options.block_size,
                stripes=self.stripes,
                segment_size=options.segment_size,
            )
            for row in range(options.parity)
        ]
        self.writers: dict[int, ParityDriveWriter] = {}

    def write(
        self,
        code: ParityCode,
        progress: Progress,
        accumulated: ParityAccumulator | None = None,
        ahead: Sequence[ParityDriveWriter] | None = None,
    ) -> list[ParityDriveResult]:
        """Read every data drive of the group once and write the rows whose parity drive is not finished; with
        ``accumulated`` (pack --parity: the rows summed while the data drives were written, sealed), write those
        rows' blocks instead, reading no data drive but its drive.json and manifest, each block checked against the
        row's seal; ``ahead``: the writers, by row, that wrote the first blocks while the data drives were written
        (packer/ahead.py), gone on with where those blocks are the sealed rows'."""
        results: list[ParityDriveResult] = []
        rows: list[int] = []
        for row, (path, kept) in enumerate(zip(self.paths, self.finished, strict=True)):
            label = parity_label(self.headers[row].drive)
            results.append(
                ParityDriveResult(label, path, self.number, row, self.stripes * self.options.block_size, kept)
            )
            if not kept:
                rows.append(row)
        if not rows:
            return results
        streams = self._copy_covered(rows)
        try:
            for row in rows:
                self.writers[row] = self._writer(row, accumulated, ahead[row] if ahead else None)
            if accumulated is None:
                self._pass(code, streams, rows, progress)
            else:
                self._drain(accumulated, rows, progress)
        except BaseException:
            for writer in self.writers.values():
                writer.abort()
            raise
        finally:
            for stream in streams:
                stream.close()
        return results

    def _copy_covered(self, rows: list[int]) -> list[StoredStream]:
        """Each data drive's drive.json and manifest copied to the parity drives of ``rows`` (the manifest read
        once, checked against drive.json, then read back from the copy for its segment list)."""
        streams: list[StoredStream] = []
        for record, reader in zip(self.covers, self.columns, strict=True):
            targets = [os.path.join(self.paths[row], covered_manifest_name(record.label)) for row in rows]
            for row in rows:
                os.makedirs(os.path.join(self.paths[row], COVERED_DIR), exist_ok=True)
                write_atomic(os.path.join(self.paths[row], covered_label_name(record.label)), reader.label_bytes)
            manifest = reader.manifest_path
            copy_covered(
                manifest, targets, record.manifest_size, record.manifest_blake3, f"the manifest of {reader.path}"
            )
            reader.read_copy(targets[0])  # the pinned copy: what the parity covers is what was checked
            records = list(reader.records(only=(SegmentRecord.TYPE, SealedRecord.TYPE)))
            segments = [r for r in records if isinstance(r, SegmentRecord)]
            index = next((r for r in records if isinstance(r, SealedRecord) and r.name == INDEX_NAME), None)
            if index is not None:
                # An encrypted drive's names and segment keys: a rebuild of it needs them too (19.7.4, 19.8.3).
                copies = [os.path.join(self.paths[row], covered_index_name(record.label)) for row in rows]
                what = f"the {INDEX_NAME} of {reader.path}"
                copy_covered(reader.file(INDEX_NAME), copies, index.size, index.blake3, what)
            if sum(segment.size for segment in segments) != reader.label.stored_bytes:
                raise FormatError(f"the segments of {reader.path} do not add up to the stored_bytes of its drive.json")
            streams.append(StoredStream(reader.path, reader.label.label, segments))
        return streams

    def _pass(self, code: ParityCode, streams: list[StoredStream], rows: list[int], progress: Progress) -> None:
        block = self.options.block_size
        width = len(streams) + len(rows)
        piece = block
        while piece > MIN_BLOCK_SIZE and piece * width > MEMORY:
            piece //= 2
        data = [memoryview(bytearray(piece)) for _ in streams]
        parity = [memoryview(bytearray(piece)) for _ in rows]
        begin_drive(progress, ", ".join(parity_label(self.headers[row].drive) for row in rows))
        with ThreadPoolExecutor(max_workers=min(len(streams), READ_THREADS)) as pool:
            for _stripe in range(self.stripes):
                for _ in range(block // piece):
                    read = sum(pool.map(lambda pair: pair[0].read_into(pair[1]), zip(streams, data, strict=True)))
                    code.encode_into(data, parity, rows)
                    list(pool.map(lambda pair: self.writers[pair[0]].write(pair[1]), zip(rows, parity, strict=True)))
                    self.read_bytes += read
                    progress.advance(read)
        for stream in streams:
            stream.check_end()  # every segment read to its end, so every one checked against its manifest

    def _writer(
        self, row: int, accumulated: ParityAccumulator | None, ahead: ParityDriveWriter | None
    ) -> ParityDriveWriter:
        """Row ``row``'s writer: the one that wrote ahead if every block it wrote is the sealed row's, else new."""
        label = parity_label(self.headers[row].drive)
        if ahead is not None and accumulated is not None:
            try:
                ahead.begin(self.headers[row], self.covers, accumulated.sealed(row))
                return ahead
            except StaleParity as stale:  # its segments are written again, each over the one of its name
                log.info("%s: written again from its first block (%s)", label, stale)
                ahead.abort()
        return ParityDriveWriter(self.paths[row], label, self.headers[row], self.covers)

    def _drain(self, accumulated: ParityAccumulator, rows: list[int], progress: Progress) -> None:
        """Each row's accumulated blocks handed to its parity drive's writer, stripe after stripe (after those a
        writer wrote ahead), each checked against the row's seal before the drive is finished."""
        begin_drive(progress, ", ".join(parity_label(self.headers[row].drive) for row in rows))
        for row in rows:
            writer = self.writers[row]
            start = writer.stripes
            expected = itertools.islice(accumulated.sealed(row), start, None)
            for stripe, block in enumerate(accumulated.blocks(row, self.stripes, start), start):
                digest = writer.write(block)
                assert digest is not None, "a whole block"
                check_block(next(expected, None), digest, row, stripe, accumulated.spec)

    def finish(self, catalog: str, catalog_blake3: str) -> None:
        for writer in self.writers.values():
            writer.finish(catalog, catalog_blake3)
