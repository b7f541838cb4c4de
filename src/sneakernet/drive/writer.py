"""Writing one drive directory: :class:`DriveWriter` (segments, manifest, B3SUMS, drive.json), in the write
order of docs/format.md section 13 (see the package's docstring), through the drive's store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import blake3

from ..chunks.stream import EncodedChunk
from ..format import (
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    SEGMENTS_DIR,
    ChunkRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    ManifestHeader,
    ManifestRecord,
    SegmentRecord,
    segment_name,
)
from ..format.checksums import checksum_lines
from ..format.container import RecordWriter, encode_record
from ..io.atomic import write_error
from ..io.store import DriveStore, PartialFile
from ..units import format_size
from .parity.accumulator import ColumnFeed

if TYPE_CHECKING:  # the crypt extra, imported only for an encrypted shipment (reading drives never needs it)
    from .sealed import DriveSealing, ShipmentSealing


class DriveWriter:
    """Writes one drive directory: segments, manifest, B3SUMS, drive.json, in the write order above.

    Guarantee: nothing under a final name is ever partial. Segments and the manifest are durable (fsynced)
    before drive.json names them; drive.json is durable before :meth:`finish` returns. After each segment record
    the manifest's ``.partial`` is flushed and fsynced (format.md 19.10): a pack killed later leaves a manifest
    whose records through that segment's decode (:func:`~sneakernet.drive.reader.read_unfinished`).

    With ``sealing`` (an encrypted shipment, docs/format.md 19.8), each chunk's frame is sealed with its segment's
    key as it is written, the manifest gets only the public records, and the entries, the chunks' raw side and the
    segment keys go to the drive's sealed index (:class:`~sneakernet.drive.sealed.DriveSealing`).
    """

    def __init__(
        self, store: DriveStore, label: str, header: ManifestHeader, segment_size: int,
        sealing: ShipmentSealing | None = None, feed: ColumnFeed | None = None,
    ) -> None:  # fmt: skip
        if sealing is not None and header.cipher != sealing.cipher:  # a reader opens chunks with the header's
            raise ValueError(f"the header names {header.cipher}, the sealing {sealing.cipher}: they must agree")
        self.store = store
        #: pack --parity: every stored byte goes on, in order, to the parity accumulated in the same pass.
        self.feed = feed
        #: Where the drive is, for messages.
        self.path = store.path
        self.label = label
        self.header = header
        self.segment_size = segment_size
        self.stored_bytes = 0
        try:
            store.make_dir(SEGMENTS_DIR)
            self._manifest_file = store.create(MANIFEST_NAME)
        except OSError as exc:
            raise self._os_error(exc, "start") from exc
        self.manifest = RecordWriter(self._manifest_file)
        self.manifest.write(header.to_json())
        try:
            self.sealing = _drive_sealing(store, header, sealing) if sealing else None
        except OSError as exc:
            raise self._os_error(exc, "start") from exc
        self.segments: list[SegmentRecord] = []
        #: The B3SUMS entries, once :meth:`finish` wrote them (pack adds the catalog's later).
        self.checksums: list[tuple[str, str]] = []
        self.raw_bytes = 0
        self._segment: PartialFile | None = None
        self._segment_hasher = blake3.blake3()
        self._segment_chunks = 0

    def add_chunk(self, chunk: EncodedChunk, new_segment: bool) -> ChunkRecord:
        """Append ``chunk`` to the current segment (or a new one) and record it in the manifest."""
        try:
            if new_segment or self._segment is None:
                self._close_segment()
                self._segment = self.store.create(segment_name(len(self.segments) + 1))
                self._segment_hasher = blake3.blake3()
                self._segment_chunks = 0
                if self.sealing:
                    self.sealing.open_segment(len(self.segments) + 1)
            offset = self._segment.size
            stored, stored_blake3 = (
                self.sealing.seal(chunk, offset) if self.sealing else (chunk.stored, chunk.stored_blake3)
            )
            self._segment.write(stored)
        except OSError as exc:
            raise self._os_error(exc, "write a segment") from exc
        if self.feed is not None:
            self.feed.write(stored)
        self._segment_hasher.update(stored)
        self._segment_chunks += 1
        self.stored_bytes += len(stored)
        self.raw_bytes += chunk.raw_size
        record = ChunkRecord(
            id=chunk.id,
            segment=segment_name(len(self.segments) + 1),
            offset=offset,
            stored_size=len(stored),
            raw_size=chunk.raw_size,
            method=chunk.method,
            stored_blake3=stored_blake3,
            raw_blake3=chunk.raw_blake3,
        )
        if self.sealing:
            self.sealing.add_chunk(record, self.manifest)
        else:
            self.add_record(record)
        return record

    def keep_chunk(self, record: ChunkRecord) -> None:
        """Record a chunk that a kept segment already holds (a resumed pack, format.md 19.10): nothing is written to
        the segment, whose BLAKE3 the caller checked; its segment record follows (:meth:`keep_segment`)."""
        assert self.sealing is None and self._segment is None, "kept chunks come before any written"
        self.stored_bytes += record.stored_size
        self.raw_bytes += record.raw_size
        self.add_record(record)

    def keep_segment(self, record: SegmentRecord) -> None:
        """Record a segment an interrupted pack wrote whole, kept as it is; the manifest's records so far are made
        durable, as after a segment written (:meth:`_close_segment`)."""
        assert self._segment is None and record.name == segment_name(len(self.segments) + 1)
        self.segments.append(record)
        self.add_record(record)
        try:
            self.manifest.flush()
            self._manifest_file.sync()
        except OSError as exc:
            raise self._os_error(exc, "write the manifest") from exc

    @property
    def records(self) -> RecordWriter | _SealedRecords:
        """What the drive's records take on it, as the fill measures it: the manifest, and an encrypted drive's
        sealed index beside it."""
        return _SealedRecords(self.manifest, self.sealing) if self.sealing else self.manifest

    def add_record(self, record: ManifestRecord) -> None:
        try:
            if type(record) is FileRecord and self.sealing is None:
                self.manifest.write_line(record.to_line())  # the one record every file has: the fast path
            elif self.sealing and not isinstance(record, SegmentRecord):
                self.sealing.add_entry(
                    record.to_line() if isinstance(record, FileRecord) else encode_record(record.to_json())
                )
            elif isinstance(record, FileRecord):
                self.manifest.write_line(record.to_line())  # the one record every file has: the fast path
            else:
                self.manifest.write(record.to_json())
        except OSError as exc:
            raise self._os_error(exc, "write the manifest") from exc

    def finish(self) -> DriveLabel:
        """Close the last segment, finish the manifest, write B3SUMS and drive.json; the drive is finished."""
        if self.feed is not None:
            self.feed.close()  # the drive's last partial block: its parity is whole before drive.json is written
        try:
            self._close_segment()
            if self.sealing:
                self.sealing.finish(self.manifest)
            self.manifest.write(EndRecord(self.manifest.records + 1).to_json())
            manifest_size, manifest_blake3 = self.manifest.close()
            self._manifest_file.commit()
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
                raw_bytes=self.raw_bytes,
                version=self.header.version,
                lane=self.header.lane,
                lane_seq=self.header.lane_seq,
                encrypted=self.sealing is not None,
            )
            label_bytes = label.to_bytes()
            sums = [(s.name, s.blake3) for s in self.segments]
            sums += [(r.name, r.blake3) for r in self.sealing.sealed] if self.sealing else []
            sums += [(MANIFEST_NAME, manifest_blake3), (DRIVE_LABEL_NAME, blake3.blake3(label_bytes).hexdigest())]
            # The renames of segments, manifest and B3SUMS are durable (each made so) before drive.json says the
            # drive is done.
            self.store.write_atomic(CHECKSUMS_NAME, (checksum_lines(sums),))
            self.checksums = sums
            self.store.write_atomic(DRIVE_LABEL_NAME, (label_bytes,))
        except OSError as exc:
            raise self._os_error(exc, "finish the drive") from exc
        return label

    def abort(self) -> None:
        """Stop writing; partial files stay behind under their .partial names."""
        if self._segment is not None:
            self._segment.abort()
        self._manifest_file.abort()
        if self.sealing:
            self.sealing.abort()

    def _close_segment(self) -> None:
        """Make the open segment durable under its final name, record it, and make the manifest's records so far
        durable in its ``.partial`` (format.md 19.10: a resumed pack may keep the segments it names)."""
        if self._segment is None:
            return
        segment = self._segment
        segment.commit()
        self._segment = None
        record = SegmentRecord(segment.name, segment.size, self._segment_hasher.hexdigest(), self._segment_chunks)
        self.segments.append(record)
        self.add_record(record)
        self.manifest.flush()
        self._manifest_file.sync()

    def _os_error(self, exc: OSError, doing: str) -> Exception:
        return write_error(
            exc,
            f"{self.label} ({self.path}) is full after {format_size(self.stored_bytes)} of chunks ({exc.strerror}); "
            "it is left unfinished (no drive.json), the drives before it are finished: free space on it or give "
            "a larger drive in its place, then run the same pack with --resume",
            f"cannot {doing} on {self.label} ({self.path}): {exc.strerror}",
            too_large_is_full=True,
        )


class _SealedRecords:
    """An encrypted drive's manifest and sealed index as one :class:`~sneakernet.space.fill.Manifest`: a record
    about to be written is bounded in both (a chunk's goes to both; an entry's to the index)."""

    def __init__(self, manifest: RecordWriter, sealing: DriveSealing) -> None:
        self.manifest = manifest
        self.sealing = sealing

    @property
    def records(self) -> int:
        return self.manifest.records

    def size_bound(self, extra: int) -> int:
        return self.manifest.size_bound(extra) + self.sealing.size_bound(extra)


def _drive_sealing(store: DriveStore, header: ManifestHeader, sealing: ShipmentSealing) -> DriveSealing:
    from .sealed import DriveSealing  # the crypt extra: see the TYPE_CHECKING import

    return DriveSealing(store, header.shipment, header.drive, sealing)
