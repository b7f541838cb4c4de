"""Reading an encrypted drive's records with the shipment identity (docs/format.md 19.8.3-19.8.4): its public
manifest and its sealed index, read side by side in one pass, give the records a clear drive's manifest gives.

Both files list the drive's chunks in id order, the index interleaving them with the entries as a clear manifest
does; so one record of each is held at a time, never a list. Every public chunk record is paired with exactly one
sealed one (same id, in the same order; else the drive is refused), and each whole record carries its place in its
segment (the nonce) and the segment keys read so far, which is what opens its bytes. Segment records come from the
public manifest, in the place a clear manifest has them (just before the next segment's first chunk). Once both
files are read to their end, the index's size and BLAKE3 must be the ones the public manifest's ``sealed`` record
gives (the public manifest itself is pinned by drive.json, as on every drive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..crypto.aead import SegmentKey, SegmentKeys
from ..crypto.keys import ShipmentIdentity
from ..errors import FormatError, IntegrityError
from ..format import INDEX_NAME, READERS, EndRecord, ManifestHeader, SealedRecord, SegmentRecord
from ..format.sealed import (
    IndexHeader,
    PublicChunk,
    SealedChunk,
    SegmentKeyRecord,
    index_record_from_json,
    merge_chunk,
    segment_number,
)
from ..io.store import DriveStore
from .sealed import SealedReader


def merged_records(reader: Any, identity: ShipmentIdentity, only: tuple[str, ...] | None) -> Iterator[Any]:
    """An encrypted drive's records as a clear drive's: its public manifest and its sealed index, one pass.
    ``reader`` is the drive's :class:`~sneakernet.drive.DriveReader` (not imported: it imports this module)."""
    keys = SegmentKeys(reader.label.shipment, reader.label.drive)
    parse = READERS[reader.label.version].manifest_record
    public = reader._manifest_records(None, keys)
    yield from IndexMerge(public, reader.store, identity, keys, parse, reader.path).records(only)


class IndexMerge:
    """One pass over an encrypted drive's public records (``public``: the header first, as the drive reader read
    and checked it) and its sealed index (``index.age`` of the drive ``store``), yielding whole records. ``keys``
    is filled with the segment keys as the index gives them; ``entry`` parses an entry record of the shipment's
    version."""

    def __init__(
        self,
        public: Iterator[Any],
        store: DriveStore,
        identity: ShipmentIdentity,
        keys: SegmentKeys,
        entry: Callable[[dict[str, Any]], Any],
        what: str,
    ) -> None:
        self.public = public
        self.index = SealedReader(store, INDEX_NAME, identity, f"{INDEX_NAME} of {what}")
        self.keys = keys
        self.entry = entry
        self.what = what
        self._segment = ""
        self._in_segment = 0

    def records(self, only: tuple[str, ...] | None = None) -> Iterator[Any]:
        header = next(self.public)
        assert isinstance(header, ManifestHeader)
        yield header
        wanted = None if only is None else {*only, EndRecord.TYPE}
        raw_records = self.index.records()
        first = next(raw_records, None)
        index_header = IndexHeader.from_json(first or {})
        if index_header.shipment != header.shipment or index_header.drive != header.drive:
            raise FormatError(f"the {INDEX_NAME} of {self.what} belongs to another shipment or drive")
        count = 1
        for raw in raw_records:
            count += 1
            assert raw is not None  # read without a filter: every line is parsed
            record = index_record_from_json(raw, self.entry)
            if isinstance(record, EndRecord):
                if record.records != count:
                    raise FormatError(
                        f"the {INDEX_NAME} of {self.what} has {count} records, its end says {record.records}"
                    )
                break
            for whole in self._whole(record):
                if wanted is None or whole.TYPE in wanted:
                    yield whole
        else:
            raise FormatError(f"the {INDEX_NAME} of {self.what} is cut short: it has no end record")
        yield from self._rest(raw_records, wanted)

    def _whole(self, record: Any) -> Iterator[Any]:
        """What an index record stands for in the merged stream: a key is taken in, a sealed chunk paired with its
        public record (segment records met on the way come first), an entry passed on."""
        if isinstance(record, SegmentKeyRecord):
            self.keys.add(segment_number(record.segment), SegmentKey.from_hex(record.key))
        elif isinstance(record, SealedChunk):
            public = next(self.public, None)
            while isinstance(public, SegmentRecord):
                yield public
                public = next(self.public, None)
            if not isinstance(public, PublicChunk):
                raise FormatError(
                    f"the {INDEX_NAME} of {self.what} describes chunk {record.id}, which its public manifest lacks"
                )
            if public.segment != self._segment:
                self._segment, self._in_segment = public.segment, 0
            yield merge_chunk(public, record, self._in_segment)
            self._in_segment += 1
        else:
            yield record

    def _rest(self, raw_records: Iterator[Any], wanted: set[str] | None) -> Iterator[Any]:
        """After the index's end record: the index read to its end (which checks its last tag), then what is left
        of the public manifest (segment and sealed records, the end record), the index checked against its
        ``sealed`` record."""
        if next(raw_records, None) is not None:
            raise FormatError(f"the {INDEX_NAME} of {self.what} has records after its end record")
        pinned: SealedRecord | None = None
        for record in self.public:
            if isinstance(record, PublicChunk):
                raise FormatError(
                    f"the public manifest of {self.what} has chunk {record.id}, which its {INDEX_NAME} lacks"
                )
            if isinstance(record, SealedRecord) and record.name == INDEX_NAME:
                pinned = record
            if isinstance(record, EndRecord):
                if pinned is None:
                    raise FormatError(f"the public manifest of {self.what} pins no {INDEX_NAME}")
                if (pinned.size, pinned.blake3) != (self.index.size, self.index.blake3):
                    raise IntegrityError(
                        f"the {INDEX_NAME} of {self.what} does not match the BLAKE3 its public manifest gives"
                    )
            if wanted is None or record.TYPE in wanted:
                yield record
