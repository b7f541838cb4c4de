"""Writing one parity drive (docs/format.md 19.7.4, 19.7.5): :class:`ParityDriveWriter` (segments of parity blocks,
``pblock`` records, the ``covered/`` copies, manifest, catalog copy, B3SUMS, drive.json), and the copies of the
covered data drives' files made in one read for every parity drive of a group.

Write order, which makes a crash detectable as on a data drive (section 13): the ``covered/`` copies first (each
atomic), then each parity segment as ``sNNNNNN.seg.partial``, fsynced, renamed; the manifest (``.partial``, ended,
fsynced, renamed); the catalog copy; B3SUMS; drive.json last. A parity drive without drive.json is unfinished
whatever else it holds. A writer made :meth:`~ParityDriveWriter.ahead` (pack --parity onto drives written at once)
writes its first segments before the data drives are finished, so before the ``covered/`` copies: its records wait
in a scratch file until :meth:`~ParityDriveWriter.begin` starts the manifest.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import blake3

from ...errors import FormatError, IntegrityError
from ...format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    ROLE_PARITY,
    SEGMENTS_DIR,
    DriveLabel,
    EndRecord,
    segment_name,
)
from ...format.checksums import checksum_lines
from ...format.container import RecordWriter, encode_record
from ...format.parity import (
    COVERED_DIR,
    CoversRecord,
    ParityHeader,
    ParitySegmentRecord,
    PBlockRecord,
    covered_index_name,
    covered_label_name,
    covered_manifest_name,
)
from ...io.atomic import COPY_BLOCK, install, write_error
from ...io.store import DriveStore, LocalStore, PartialFile
from ...units import format_size
from ..files import open_drive_file, stream_blake3


class StaleParity(Exception):
    """A block a writer made :meth:`ParityDriveWriter.ahead` wrote is not the finished row's: the drive is to be
    written again from the start (a data drive opened after those blocks were written added into them)."""


class ParityDriveWriter:
    """Writes one parity drive: its row's parity blocks, handed in order (in pieces that never straddle a block),
    then :meth:`finish`.

    Guarantee: nothing under a final name is partial; the segments, the manifest and the copies are durable before
    drive.json names them, and drive.json is durable before :meth:`finish` returns."""

    #: Where the records of the blocks and segments written go: the manifest, or the scratch file until begin().
    _lines: Callable[[bytes], object]
    #: A writer made ahead(): the scratch file of its records until begin().
    _scratch: BinaryIO | None

    @classmethod
    def ahead(
        cls, path: str, label: str, block_size: int, segment_size: int, scratch: str, store: DriveStore | None = None
    ) -> ParityDriveWriter:
        """A writer of the parity blocks known before the data drives are finished (their header and ``covers``
        records are not): the records of what it writes go to the file ``scratch`` until :meth:`begin`."""
        writer = cls.__new__(cls)
        writer._open(path, label, block_size, segment_size, store)
        handle: BinaryIO = open(scratch, "w+b")  # noqa: SIM115 - closed by begin() or abort()
        writer._scratch = handle
        writer._lines = handle.write
        return writer

    def begin(self, header: ParityHeader, covers: Sequence[CoversRecord], expected: Iterator[bytes]) -> None:
        """Start the manifest of a writer made :meth:`ahead`, now that the data drives are finished: its header,
        ``covers``, then the records of the blocks already written, each block's BLAKE3 checked against the finished
        row's (``expected``, in stripe order). :class:`StaleParity` if one differs (:meth:`abort`, then write the
        drive again)."""
        if (header.block_size, header.segment_size) != (self.block_size, self._per_segment * self.block_size):
            raise ValueError("the header's block or segment size is not the one the blocks were written in")
        self._start_manifest(header, covers)
        scratch, self._scratch = self._scratch, None
        assert scratch is not None
        with scratch:
            scratch.seek(0)
            for line in scratch:
                if line.startswith(b'{"type":"pblock"'):
                    block = PBlockRecord.from_json(json.loads(line))
                    if next(expected, None) != bytes.fromhex(block.blake3):
                        raise StaleParity(f"{self.label}'s parity block {block.stripe} is not the finished row's")
                self.manifest.write_line(line)

    def __init__(
        self,
        path: str,
        label: str,
        header: ParityHeader,
        covers: Sequence[CoversRecord],
        store: DriveStore | None = None,
    ) -> None:
        self._open(path, label, header.block_size, header.segment_size, store)
        self._start_manifest(header, covers)

    def _open(self, path: str, label: str, block_size: int, segment_size: int, store: DriveStore | None) -> None:
        self.path = path
        #: The parity drive's files (a local directory unless a store is given), as for a data drive's writer.
        self.store: DriveStore = store if store is not None else LocalStore(path)
        self.label = label
        self.block_size = block_size
        self._per_segment = segment_size // block_size
        self._scratch = None
        self._manifest_file: PartialFile | None = None
        self.segments: list[ParitySegmentRecord] = []
        self.stored_bytes = 0
        try:
            self.store.make_dir(SEGMENTS_DIR)
            self.store.make_dir(COVERED_DIR)
        except OSError as exc:
            raise self.error(exc, "start") from exc
        self._segment: PartialFile | None = None
        self._segment_hasher = blake3.blake3()
        self._segment_blocks = 0
        self._block_hasher = blake3.blake3()
        self._block_filled = 0
        self._stripe = 0

    def _start_manifest(self, header: ParityHeader, covers: Sequence[CoversRecord]) -> None:
        self.header = header
        self.covers = list(covers)
        try:
            self._manifest_file = self.store.create(MANIFEST_NAME)
        except OSError as exc:
            raise self.error(exc, "start") from exc
        self.manifest = RecordWriter(self._manifest_file)
        self._lines = self.manifest.write_line
        self.manifest.write(header.to_json())
        for record in self.covers:
            self.manifest.write(record.to_json())

    @property
    def stripes(self) -> int:
        """The whole blocks written so far."""
        return self._stripe

    def write(self, data: memoryview | bytes | bytearray) -> str | None:
        """Append ``data``, the next bytes of this row's parity stream (a whole block, or a piece of one); the
        BLAKE3 of the block it completes, if it completes one."""
        size = len(data)
        block = self.block_size
        if self._block_filled + size > block:
            raise ValueError("a piece of parity handed to the writer straddles two blocks")
        try:
            if self._segment is None:
                self._open_segment()
            assert self._segment is not None
            self._segment.write(data)
        except OSError as exc:
            raise self.error(exc, "write a parity segment") from exc
        self._segment_hasher.update(data)
        self._block_hasher.update(data)
        self._block_filled += size
        self.stored_bytes += size
        if self._block_filled != block:
            return None
        digest = self._block_hasher.hexdigest()
        self._lines(PBlockRecord(self._stripe, digest).to_line())
        self._stripe += 1
        self._segment_blocks += 1
        self._block_hasher = blake3.blake3()
        self._block_filled = 0
        if self._segment_blocks == self._per_segment:
            self._close_segment()
        return digest

    def finish(self, catalog: str | None, catalog_blake3: str | None) -> DriveLabel:
        """Close the last segment, finish the manifest, copy the shipment's catalog from the file ``catalog`` (its
        BLAKE3 ``catalog_blake3``, checked on the copy), write B3SUMS and drive.json: the parity drive is finished."""
        if self._stripe != self.header.stripes or self._block_filled:
            raise AssertionError(
                f"{self.label} got {self._stripe} parity blocks, its header says {self.header.stripes}"
            )
        assert self._manifest_file is not None, "begin() starts the manifest of a writer made ahead()"
        try:
            self._close_segment()
            self.manifest.write(EndRecord(self.manifest.records + 1).to_json())
            manifest_size, manifest_blake3 = self.manifest.close()
            self._manifest_file.commit()
            sums = [(s.name, s.blake3) for s in self.segments]
            for record in self.covers:
                sums.append((covered_label_name(record.label), record.drive_json_blake3))
                sums.append((covered_manifest_name(record.label), record.manifest_blake3))
                sums += self._covered_index(record.label)
            label = DriveLabel(
                shipment=self.header.shipment,
                drive=self.header.drive,
                label=self.label,
                created=self.header.created,
                tool=self.header.tool,
                manifest_size=manifest_size,
                manifest_blake3=manifest_blake3,
                segments=len(self.segments),
                stored_bytes=self.stored_bytes,
                raw_bytes=0,
                version=2,
                role=ROLE_PARITY,
                group=self.header.group,
                row=self.header.row,
            )
            label_bytes = label.to_bytes()
            sums += [(MANIFEST_NAME, manifest_blake3), (DRIVE_LABEL_NAME, blake3.blake3(label_bytes).hexdigest())]
            if catalog is not None and catalog_blake3 is not None:
                self._copy_catalog(catalog, catalog_blake3)
                sums.append((CATALOG_NAME, catalog_blake3))
            self.store.write_atomic(CHECKSUMS_NAME, (checksum_lines(sums),))
            self.store.write_atomic(DRIVE_LABEL_NAME, (label_bytes,))
        except OSError as exc:
            raise self.error(exc, "finish the parity drive") from exc
        return label

    def _covered_index(self, label: str) -> list[tuple[str, str]]:
        """The B3SUMS line of the copy of an encrypted data drive's sealed index, when it has one (19.7.4): the copy
        was checked against its manifest's ``sealed`` record as it was written, and is hashed again as it lies."""
        name = covered_index_name(label)
        if self.store.stat(name) is None:
            return []
        with self.store.open(name) as copy:
            return [(name, stream_blake3(copy)[1])]

    def _copy_catalog(self, catalog: str, digest: str) -> None:
        try:
            source = open_drive_file(catalog)
        except OSError as exc:
            raise FormatError(f"cannot read the catalog {catalog}: {exc.strerror}") from exc
        with source:
            self.store.write_atomic(CATALOG_NAME, iter(functools.partial(source.read, COPY_BLOCK), b""))
        with self.store.open(CATALOG_NAME) as copied:
            copied_digest = stream_blake3(copied)[1]
        if copied_digest != digest:
            self.store.remove(CATALOG_NAME)
            raise IntegrityError(f"the catalog {catalog} changed while it was copied to {self.label}: run again")

    def abort(self) -> None:
        """Stop writing; what was written stays behind, unfinished (no drive.json)."""
        if self._segment is not None:
            self._segment.abort()
            self._segment = None
        if self._manifest_file is not None:
            self._manifest_file.abort()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def _open_segment(self) -> None:
        self._segment = self.store.create(segment_name(len(self.segments) + 1))
        self._segment_hasher = blake3.blake3()
        self._segment_blocks = 0
        self._segment_start = self.stored_bytes

    def _close_segment(self) -> None:
        if self._segment is None:
            return
        self._segment.commit()
        name = self._segment.name
        self._segment = None
        size = self.stored_bytes - self._segment_start
        record = ParitySegmentRecord(name, size, self._segment_hasher.hexdigest(), self._segment_blocks)
        self.segments.append(record)
        self._lines(encode_record(record.to_json()))

    def error(self, exc: OSError, doing: str) -> Exception:
        return write_error(
            exc,
            f"{self.label} ({self.path}) is full after {format_size(self.stored_bytes)} of parity ({exc.strerror}); "
            "it is left unfinished (no drive.json): give a larger drive in its place and run again with --resume",
            f"cannot {doing} on {self.label} ({self.path}): {exc.strerror}",
            too_large_is_full=True,
        )


def copy_covered(source: str, targets: Sequence[str], size: int, digest: str, what: str) -> None:
    """Copy the file ``source`` (a data drive's manifest) to every path of ``targets`` in one read, each copy
    written as ``.partial``, fsynced and renamed only once the bytes read are found to be ``size`` bytes with BLAKE3
    ``digest``: a copy under its final name is always the file its data drive's drive.json pins."""
    try:
        handle = open_drive_file(source)
    except OSError as exc:
        raise FormatError(f"cannot read {what}: {exc.strerror}") from exc
    outputs: list[BinaryIO] = []
    try:
        for target in targets:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target + PARTIAL_SUFFIX)
            outputs.append(open(target + PARTIAL_SUFFIX, "xb"))  # noqa: SIM115 - closed below
        hasher = blake3.blake3()
        copied = 0
        while True:
            try:
                data = handle.read(COPY_BLOCK)
            except OSError as exc:
                raise FormatError(f"cannot read {what}: {exc.strerror}") from exc
            if not data:
                break
            hasher.update(data)
            copied += len(data)
            for output in outputs:
                output.write(data)
        if copied != size or hasher.hexdigest() != digest:
            raise IntegrityError(f"{what} does not match the BLAKE3 in its {DRIVE_LABEL_NAME}: the drive is damaged")
        for output in outputs:
            output.flush()
            os.fsync(output.fileno())
    finally:
        handle.close()
        for output in outputs:
            output.close()
    for target in targets:
        install(target + PARTIAL_SUFFIX, target)
