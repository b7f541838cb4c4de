"""What a resumed pack may keep of a drive it did not finish (format.md 19.10): the records of its ``.partial``
manifest through the last segment record that reads whole (moved from reader.py, which re-exports it)."""

from __future__ import annotations

from collections.abc import Generator, Iterator

from ..errors import FormatError
from ..format import (
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    READERS,
    ChunkRecord,
    EndRecord,
    ManifestHeader,
    ManifestRecord,
    SegmentRecord,
    segment_name,
)
from ..format.container import read_records
from ..io.store import DriveStore
from ..validate import manifest_header_problems


class UnfinishedManifest:
    """What a resumed pack may keep of a drive it did not finish (format.md 19.10): the drive writer flushes and
    fsyncs ``manifest.jsonl.zst.partial`` after each segment record, so the records through the last segment
    record that reads whole are durable, and every chunk they name is in a segment renamed to its final name.

    :meth:`open` finds how far that goes (one pass; bytes cut short or damaged after it are left, as a crash
    leaves them); :meth:`records` yields those records again (a second pass: never the whole list in memory).
    Each kept segment's chunk records lie end to end in it from offset 0 and its segment record sums them up (the
    first that does not ends what is kept), but nothing here is checked against the segments' bytes, and a byte
    changed in a hash of a record still reads: the caller hashes each kept segment (and chunk) before keeping it.
    """

    def __init__(self, store: DriveStore, header: ManifestHeader, kept: int, segments: int) -> None:
        self.store = store
        #: The manifest's header.
        self.header = header
        #: The records after the header that may be kept: through the last whole segment record.
        self.kept = kept
        #: How many segment records are among them.
        self.segments = segments

    @classmethod
    def open(cls, store: DriveStore) -> UnfinishedManifest | None:
        """The keepable part of ``store``'s ``.partial`` manifest; None if there is none (no such file, no header
        that reads, or no segment record after it)."""
        header: ManifestHeader | None = None
        kept = segments = 0
        # The segment being read: its chunks lie end to end from offset 0, and its record sums them up.
        size = chunks = 0
        try:
            for number, record in enumerate(_unfinished_records(store)):
                if number == 0:
                    assert isinstance(record, ManifestHeader)
                    header = record
                elif isinstance(record, ChunkRecord):
                    if record.segment != segment_name(segments + 1) or record.offset != size:
                        break  # not what the writer wrote (damage): keep what came before
                    size, chunks = size + record.stored_size, chunks + 1
                elif isinstance(record, SegmentRecord):
                    if (record.name, record.size, record.chunks) != (segment_name(segments + 1), size, chunks):
                        break
                    kept, segments, size, chunks = number, segments + 1, 0, 0
        except (OSError, FormatError):
            pass  # where the crash cut the file, or damage: what came before is what may be kept
        if header is None or not segments:
            return None
        return cls(store, header, kept, segments)

    @staticmethod
    def read_header(store: DriveStore) -> ManifestHeader | None:
        """The header of ``store``'s ``.partial`` manifest, None if none reads (no file, or not flushed yet)."""
        reading = _unfinished_records(store)
        try:
            header = next(reading, None)
        except (OSError, FormatError):
            return None
        finally:
            reading.close()
        return header if isinstance(header, ManifestHeader) else None

    def records(self) -> Iterator[ManifestRecord]:
        """The :attr:`kept` records after the header, in order (a FormatError if the file changed since)."""
        reading = _unfinished_records(self.store)
        next(reading)  # the header
        for _ in range(self.kept):
            record = next(reading, None)
            if record is None:
                raise FormatError(f"the unfinished manifest of {self.store.path} changed while it was read")
            yield record
        reading.close()


def _unfinished_records(store: DriveStore) -> Generator[ManifestHeader | ManifestRecord, None, None]:
    """The header, then each record that reads whole, of ``store``'s ``.partial`` manifest (cut anywhere)."""
    what = f"the unfinished manifest of {store.path}"
    # A manifest renamed to its final name on a drive without drive.json (killed while finishing it) is read too.
    name = MANIFEST_NAME + PARTIAL_SUFFIX if store.stat(MANIFEST_NAME + PARTIAL_SUFFIX) is not None else MANIFEST_NAME
    with store.open(name) as handle:
        raw_records = read_records(handle, what, cut=True)
        first = next(raw_records, None)
        header = ManifestHeader.from_json(first or {})
        if problems := manifest_header_problems(header):
            raise FormatError(f"{what} has a header out of bounds: {'; '.join(problems)}")
        yield header
        parse = READERS[header.version].manifest_record
        for raw in raw_records:
            assert raw is not None  # every line is parsed: no ``only``
            record = parse(raw)
            if isinstance(record, EndRecord):
                return  # a manifest finished but never renamed: its records are all there, and the end is not kept
            yield record
