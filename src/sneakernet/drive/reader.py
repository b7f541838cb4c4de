"""Reading a drive strictly read-only, through its store: :class:`DriveReader` (drive.json, then the manifest,
chunks from segments, a whole segment's hash), :class:`CatalogReader`, and :func:`read_unfinished` (the complete
segments' records in an unfinished drive's flushed ``.partial`` manifest, for a resumed pack)."""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import stat
import threading
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import blake3

from ..chunks.codec import ChunkCodec
from ..errors import FormatError, IntegrityError, KeyNeeded, NotADrive, UnfinishedDrive, UnsupportedVersion
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DEFAULT_CIPHER,
    DRIVE_LABEL_NAME,
    DRIVE_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    READERS,
    ROLE_PARITY,
    SEALED_CATALOG_NAME,
    CatalogBodyHasher,
    CatalogCheck,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogRecord,
    CatalogSummary,
    ChunkRecord,
    DriveLabel,
    EndRecord,
    ManifestHeader,
    ManifestRecord,
    SealedRecord,
    catalog_record_from_json,
    header_label_problems,
)
from ..format.checksums import Checksums, parse_checksums
from ..format.container import HashingReader, check_single_frame, read_records, type_prefix
from ..format.sealed import public_record_from_json
from ..io.atomic import COPY_BLOCK, write_chunks_atomic
from ..io.store import DriveStore, LocalStore, Stat
from ..validate import (
    catalog_drive_problems,
    catalog_entry_problems,
    catalog_header_problems,
    label_problems,
    manifest_header_problems,
)
from .files import SHIPMENT_NAMES, open_drive_file, stream_blake3

if TYPE_CHECKING:  # the crypt extra is imported only for an encrypted drive (format.md 19.8)
    from ..crypto.aead import SegmentKeys
    from ..crypto.keys import ShipmentIdentity
    from .keys import Unlock
_NO_MORE: Any = object()
H = TypeVar("H")
R = TypeVar("R")
#: B3SUMS is read up to this many bytes (a line per segment: far more than a drive of 999,999 segments needs).
CHECKSUMS_LIMIT = 1 << 24
#: drive.json is a few hundred bytes; a reader refuses one larger than this.
LABEL_LIMIT = 1 << 16


#: Bytes of a segment hashed at a time when it is hashed whole: large enough for BLAKE3's threads to share (64 MiB
#: hashes as fast as the whole file at once, about 11 GB/s on two cores here), small enough to let its pages go.
HASH_SLICE = 64 * 2**20


def segment_blake3(path: str, threads: int, advance: Callable[[int], None], slice_size: int = HASH_SLICE) -> str | None:
    """The BLAKE3 of a whole local (segment) file, None if it cannot be read (see :func:`mapped_blake3`)."""
    directory, name = os.path.split(path)
    return mapped_blake3(LocalStore(directory or "."), name, threads, advance, slice_size)


def mapped_blake3(
    store: DriveStore, name: str, threads: int, advance: Callable[[int], None], slice_size: int = HASH_SLICE
) -> str | None:
    """The BLAKE3 of a whole (segment) file of ``store``, None if it cannot be read: hashed from a memory map in
    slices of ``slice_size`` on ``threads`` threads, as b3sum does; each slice's pages are let go once hashed, so
    memory stays at a slice (many drives hashed at once each take a smaller one). ``advance`` is told the bytes of
    every slice."""
    hasher = blake3.blake3(max_threads=threads)
    try:
        if (info := store.stat(name)) is not None and info.size == 0:
            store.open(name).close()  # refused unless a regular file, as the map would be
            return hasher.hexdigest()
        with store.map(name) as mapped:
            size = len(mapped)
            view = memoryview(mapped)
            try:
                for start in range(0, size, slice_size):
                    end = min(start + slice_size, size)
                    hasher.update(view[start:end])
                    with contextlib.suppress(OSError, ValueError, AttributeError):
                        mapped.madvise(mmap.MADV_DONTNEED, start, end - start)
                    advance(end - start)
            finally:
                view.release()
    except (OSError, ValueError):
        return None
    return hasher.hexdigest()


class DriveReader:
    """Reads one drive directory strictly read-only: drive.json first (format version), then the manifest.

    Guarantee: :meth:`records` yields records from a manifest whose every line parsed; the manifest's BLAKE3
    and its end record are checked when the stream ends, so a caller that consumed every record has read the
    exact manifest drive.json names, or got a :class:`FormatError`.
    """

    def __init__(
        self, path: str, store: DriveStore | None = None, key: Unlock | ShipmentIdentity | None = None,
        versions: Collection[int] | None = None, public: bool = False,
    ) -> None:  # fmt: skip
        self.path = path
        #: The drive's files (a local directory unless a store is given).
        self.store: DriveStore = store if store is not None else LocalStore(path)
        label_path = os.path.join(path, DRIVE_LABEL_NAME)
        root = self.store.stat("")
        if root is None or not stat.S_ISDIR(root.mode):
            what = "does not exist" if root is None else "is not a directory"
            raise NotADrive(f"{path} {what}: give a drive directory such as OUT/drive-0001")
        names = self.store.list()
        if DRIVE_LABEL_NAME not in names:
            if any(name.removesuffix(PARTIAL_SUFFIX) in SHIPMENT_NAMES for name in names):
                raise UnfinishedDrive(
                    f"{path} is an unfinished drive: it has no {DRIVE_LABEL_NAME}, its packing never finished"
                )
            drives = sorted(name for name in names if DRIVE_NAME.fullmatch(name))
            if drives:
                # pack --out's directory given instead of its drives: say which to give.
                shown = ", ".join(drives[:3]) + (", ..." if len(drives) > 3 else "")
                error = NotADrive(
                    f"{path} is not a drive but holds drives ({shown}): give them, e.g. {os.path.join(path, 'drive-*')}"
                )
                error.drives = tuple(drives)
                raise error
            raise NotADrive(f"{path} is not a sneakernet drive: it has no {DRIVE_LABEL_NAME}")
        try:
            with self.store.open(DRIVE_LABEL_NAME) as handle:
                data = handle.read(LABEL_LIMIT + 1)
        except OSError as exc:
            raise FormatError(f"cannot read {label_path}: {exc.strerror}") from exc
        if len(data) > LABEL_LIMIT:
            raise FormatError(f"{label_path} is larger than any drive.json sneakernet writes")
        #: The bytes of drive.json, as B3SUMS hashes them.
        self.label_bytes = data
        self.versions = versions  # those read (None: format.READ_VERSIONS, what is read end to end)
        self.label = DriveLabel.from_bytes(data, versions)
        if problems := label_problems(self.label):
            raise FormatError(f"{DRIVE_LABEL_NAME} is out of bounds: {'; '.join(problems)}")
        if self.label.role == ROLE_PARITY:
            # A parity drive has no chunk records nor entries (docs/format.md 19.7.5): its own readers read it.
            raise UnsupportedVersion(
                f"{path} is a parity drive ({self.label.label}), not a data drive: give the shipment's data drives"
            )
        if self.label.encrypted and key is None and not public:
            raise KeyNeeded(
                f"{path} is a drive of an encrypted shipment: give its key with --identity FILE or "
                "--passphrase-file FILE"
            )
        self._maps: dict[str, mmap.mmap] = {}
        self._maps_lock = threading.Lock()
        #: How the drive's chunks decode: the codec its manifest header names, once :meth:`records` has read it (an
        #: encrypted drive's: sealed, its keys read with the manifest, its cipher the header's).
        self.codec = ChunkCodec(cipher=DEFAULT_CIPHER if self.label.encrypted else None)
        self.encrypted = self.label.encrypted
        #: An encrypted drive's identity once unwrapped from ``key`` (WrongKey here, before anything else is read).
        self.identity: ShipmentIdentity | None = _unlock(self.store, key) if self.encrypted and key else None
        #: The manifest :meth:`records` reads: the drive's, or (a local path) the copy :meth:`pin_manifest` made.
        self.manifest_path = self.file(MANIFEST_NAME)
        self._pinned = False
        #: Size and BLAKE3 of the manifest as read, once :meth:`records` has read it to its end.
        self.manifest_size: int | None = None
        self.manifest_blake3: str | None = None

    def file(self, name: str) -> str:
        """Where file ``name`` of the drive is, for messages and for what still reads it by path (a catalog)."""
        return os.path.join(self.path, name)

    def stat(self, name: str) -> Stat | None:
        """Size and mode of file ``name`` on the drive (never following a symlink), None if it is not there."""
        return self.store.stat(name)

    def list(self, name: str = "") -> list[str]:
        """The names in directory ``name`` of the drive (its root by default), sorted."""
        return sorted(self.store.list(name))

    def _open_manifest(self) -> BinaryIO:
        return self.store.open(MANIFEST_NAME)

    def open(self, name: str) -> BinaryIO:
        """File ``name`` of the drive opened for reading (refused unless a regular file: an OSError)."""
        return self.store.open(name)

    def hash_file(self, name: str) -> tuple[int, str]:
        """``(size, BLAKE3 hex)`` of file ``name`` of the drive, read whole (an OSError when it cannot be)."""
        with self.store.open(name) as handle:
            return stream_blake3(handle)

    def catalog(self) -> CatalogReader:
        """A reader of the drive's own catalog, read through the drive's store."""
        return CatalogReader(
            self.file(CATALOG_NAME), functools.partial(self.open, CATALOG_NAME), self.identity,
            (self.store, SEALED_CATALOG_NAME),
        )  # fmt: skip

    def segment_blake3(
        self, name: str, threads: int, advance: Callable[[int], None], slice_size: int = HASH_SLICE
    ) -> str | None:
        """The BLAKE3 of segment ``name`` hashed whole (see :func:`mapped_blake3`), None if it cannot be read."""
        return mapped_blake3(self.store, name, threads, advance, slice_size)

    def checksums(self) -> Checksums:
        """The drive's B3SUMS, parsed (an OSError when it cannot be read)."""
        with self.store.open(CHECKSUMS_NAME) as handle:
            return parse_checksums(handle.read(CHECKSUMS_LIMIT))

    def pin_manifest(self, copy: str) -> None:
        """Copy the drive's manifest to ``copy`` (off the drive, replacing what is there) and read that from now on.

        restore reads a manifest twice, checking every record in the first pass and writing files in the second; a
        drive that changes between the two (a hostile device, a file swapped meanwhile) would otherwise have its
        second manifest written unchecked, its BLAKE3 found wrong only after the files were installed. The copy is
        checked against drive.json like the drive's own, as :meth:`records` reads it. Reading the drive fails with
        FormatError; writing the copy with OSError."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(copy)
        try:
            source = self.store.open(MANIFEST_NAME)
        except OSError as exc:
            raise FormatError(f"cannot open the manifest of {self.path}: {exc.strerror}") from exc
        with source:
            write_chunks_atomic(copy, self._read_all(source), 0o600)
        self.read_copy(copy)

    def read_copy(self, copy: str) -> None:
        """Read the manifest from ``copy``, a copy of it made off the drive, from now on: checked against drive.json
        as :meth:`records` reads it, like the drive's own (the parity writer's covered/ copy, restore's pin)."""
        self.manifest_path = copy
        self._pinned = True

    def _read_all(self, manifest: BinaryIO) -> Iterator[bytes]:
        """The drive's ``manifest`` a block at a time, a read error a FormatError (the drive's fault)."""
        while True:
            try:
                data = manifest.read(COPY_BLOCK)
            except OSError as exc:
                raise FormatError(f"cannot read the manifest of {self.path}: {exc.strerror}") from exc
            if not data:
                return
            yield data

    def read_stored(self, chunk: ChunkRecord) -> bytes:
        """The stored bytes of ``chunk``, checked against its ``stored_blake3``."""
        try:
            stored = self.store.read_range(chunk.segment, chunk.offset, chunk.stored_size)
        except OSError as exc:
            raise FormatError(
                f"cannot read chunk {chunk.id} from {chunk.segment} on {self.path}: {exc.strerror}"
            ) from exc
        if len(stored) != chunk.stored_size or blake3.blake3(stored).hexdigest() != chunk.stored_blake3:
            raise IntegrityError(f"chunk {chunk.id} in {chunk.segment} on {self.path} is damaged (BLAKE3 mismatch)")
        return stored

    def stored_matches(self, chunk: ChunkRecord) -> bool:
        """Whether ``chunk``'s stored bytes are there and match their BLAKE3, hashed in place from a memory map
        of the segment (no copy); the pages are let go afterwards, so memory does not grow with the segment."""
        try:
            mapped = self._map(chunk.segment)
        except (OSError, ValueError):
            return False
        end = chunk.offset + chunk.stored_size
        if end > len(mapped):
            return False
        digest = blake3.blake3(memoryview(mapped)[chunk.offset : end]).hexdigest()
        first = chunk.offset - chunk.offset % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            mapped.madvise(mmap.MADV_DONTNEED, first, end - first)
        return digest == chunk.stored_blake3

    def frame_problem(self, chunk: ChunkRecord) -> str | None:
        """Why ``chunk``'s stored bytes are not exactly one zstd frame of its ``raw_size`` (see compress.frame_problem),
        read from a memory map of its segment: only the frame's header and block headers are touched. An encrypted
        drive's chunk is opened first (its tag checked); read without the key, its frame is not known (None)."""
        if self.encrypted and self.identity is None:
            return None
        try:
            mapped = self._map(chunk.segment)
        except (OSError, ValueError):
            return "its segment cannot be read"
        end = chunk.offset + chunk.stored_size
        if end > len(mapped):
            return "its segment is cut short before its end"
        view = memoryview(mapped)[chunk.offset : end]
        try:
            problem = self.codec.chunk_problem(view, chunk)
        finally:
            view.release()
        # The pages of block headers touched are let go, as stored_matches does: memory stays flat over a drive.
        first = chunk.offset - chunk.offset % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            mapped.madvise(mmap.MADV_DONTNEED, first, end - first)
        return None if problem is None else f"chunk {problem}"

    def _map(self, segment: str) -> mmap.mmap:
        with self._maps_lock:
            mapped = self._maps.get(segment)
            if mapped is None:
                mapped = self.store.map(segment)
                self._maps[segment] = mapped
            return mapped

    def close(self) -> None:
        """Let go of the segments mapped by :meth:`stored_matches`."""
        with self._maps_lock:
            for mapped in self._maps.values():
                with contextlib.suppress(BufferError):
                    mapped.close()
            self._maps.clear()

    def read_chunk(self, chunk: ChunkRecord, check_raw: bool = True) -> bytes:
        """The raw bytes of ``chunk``, with its stored hash checked and, unless the caller hashes every byte it uses
        itself (restore checks whole files), its raw hash too."""
        raw = self.codec.decode_record(self.read_stored(chunk), chunk)
        if check_raw and blake3.blake3(raw).hexdigest() != chunk.raw_blake3:
            raise IntegrityError(
                f"chunk {chunk.id} in {chunk.segment} on {self.path} decodes to other bytes than recorded"
            )
        return raw

    def records(self, only: tuple[str, ...] | None = None) -> Iterator[ManifestRecord]:
        """The manifest's header, then each record through the end record.

        With ``only`` (record types), the other records are counted but neither parsed nor yielded: a fast pass
        for one kind of record, to be made after a full pass has checked every record.

        An encrypted drive read with its key reads as a clear one (drive/index.py); without, its public records.
        """
        if not (self.encrypted and self.identity is not None):
            yield from self._manifest_records(only, None)
            return
        from .index import merged_records

        yield from merged_records(self, self.identity, only)

    def _manifest_records(self, only: tuple[str, ...] | None, keys: SegmentKeys | None) -> Iterator[Any]:
        """The manifest's records (an encrypted drive's public ones, its chunks opened by ``keys``)."""
        what = f"the manifest of {self.path}"

        def own_header(raw: dict[str, Any]) -> ManifestHeader:
            header = ManifestHeader.from_json(raw, self.versions)
            if problems := manifest_header_problems(header):
                raise FormatError(f"{what} has a header out of bounds: {'; '.join(problems)}")
            if header.shipment != self.label.shipment or header.drive != self.label.drive:
                raise FormatError(f"{what} belongs to another shipment or drive than its {DRIVE_LABEL_NAME}")
            if header.version != self.label.version:
                raise FormatError(f"{what} is of format version {header.version}, its {DRIVE_LABEL_NAME} of another")
            if problems := header_label_problems(self.label, header):
                raise FormatError(f"{what} does not agree with its {DRIVE_LABEL_NAME}: {'; '.join(problems)}")
            self.codec = ChunkCodec.from_header(header, keys)
            return header

        # The manifest's records are read as the version drive.json states (its header states the same).
        parse = public_record_from_json if self.encrypted else READERS[self.label.version].manifest_record
        opener = functools.partial(open_drive_file, self.manifest_path) if self._pinned else self._open_manifest
        size, digest = yield from _read_record_file(opener, what, only, own_header, parse)
        self.manifest_size, self.manifest_blake3 = size, digest
        if size != self.label.manifest_size or digest != self.label.manifest_blake3:
            raise IntegrityError(f"{what} does not match the BLAKE3 in its {DRIVE_LABEL_NAME}")


def _read_record_file(
    opener: Callable[[], BinaryIO],
    what: str,
    only: tuple[str, ...] | None,
    parse_header: Callable[[dict[str, Any]], H],
    parse: Callable[[dict[str, Any]], R],
    on_line: Callable[[bytes], None] | None = None,
) -> Generator[H | R, None, tuple[int, str]]:
    """The header, then each record through the end record, of the record file at ``path``; returns the size and
    BLAKE3 of the bytes read, once every byte has been read and the file found to be a single zstd frame.

    With ``only`` (record types), the other records are counted but neither parsed nor yielded. ``on_line`` is
    given each line after the header as it is read (see :func:`~sneakernet.format.container.read_records`)."""
    try:
        handle = opener()
    except OSError as exc:
        raise FormatError(f"cannot open {what}: {exc.strerror}") from exc
    with handle:
        source = HashingReader(handle)
        prefixes = None if only is None else tuple(type_prefix(t) for t in (*only, EndRecord.TYPE))
        raw_records = read_records(source, what, prefixes, on_line)
        first: dict[str, Any] | None = next(raw_records, None)
        yield parse_header(first or {})
        yield from _to_end_record(raw_records, parse, what)
        source.drain()
        check_single_frame(handle, what)
    return source.size, source.hasher.hexdigest()


def _to_end_record(
    raw_records: Iterator[dict[str, Any] | None], parse: Callable[[dict[str, Any]], R], what: str
) -> Iterator[R]:
    """The records after the header, parsed, through the end record, whose count (header and end included) must
    match and after which nothing may follow; lines ``read_records`` skipped (None) are counted, not parsed."""
    count = 1
    for raw in raw_records:
        count += 1
        if raw is None:
            continue
        record = parse(raw)
        yield record
        if isinstance(record, EndRecord):
            if record.records != count:
                raise FormatError(f"{what} has {count} records, its end record says {record.records}")
            if next(raw_records, _NO_MORE) is not _NO_MORE:
                raise FormatError(f"{what} has lines after its end record")
            return
    raise FormatError(f"{what} is cut short: it has no end record")


class CatalogReader:
    """Reads a catalog file: the header (format version first), then drive and entry records to the end record.

    Guarantee: when :meth:`records` has been consumed, every line parsed, the count in the end record matched,
    and :attr:`size` and :attr:`blake3` are those of the bytes read (for B3SUMS).
    """

    def __init__(
        self,
        path: str,
        opener: Callable[[], BinaryIO] | None = None,
        identity: ShipmentIdentity | None = None,
        sealed: tuple[DriveStore, str] | None = None,
    ) -> None:
        #: The catalog's path, for messages: a local file unless ``opener`` (a drive's store) opens it.
        self.path = path
        self._opener = opener or functools.partial(open_drive_file, path)
        #: An encrypted shipment's identity: with it, the public catalog's ``sealed`` record reads as the entries
        #: of the sealed catalog it pins (``sealed``: its store and name; by default the file beside ``path``,
        #: ``catalog.age`` beside ``catalog.jsonl.zst``, ``X.catalog.age`` beside ``X.catalog.jsonl.zst``).
        self.identity = identity
        self.sealed_file = sealed or sealed_beside(path)
        #: The ``sealed`` record of an encrypted shipment's public catalog, once read.
        self.sealed: SealedRecord | None = None
        self.size: int | None = None
        self.blake3: str | None = None

    def records(self, only: tuple[str, ...] | None = None) -> Iterator[CatalogRecord]:
        """The header, then each record through the end record (with ``only``, just those types; see
        :meth:`DriveReader.records`).

        Version 2 (docs/format.md 19.5, 19.6): the header yielded carries the counts of the summary record (read
        before the header is yielded, and yielded after it); a full pass (no ``only``) checks the records' order
        and lanes (:class:`~sneakernet.format.CatalogCheck`); every pass, once at the end, that the body gives the
        header's fingerprint."""
        what = f"the catalog {self.path}"
        wanted = only
        if only is not None:
            only = (*only, CatalogSummary.TYPE, SealedRecord.TYPE)  # version 2's counts are in it, or sealed
        inner = self._records(what, only)
        first = next(inner)
        if not (isinstance(first, CatalogHeader) and not first.summarised):
            yield first
            yield from inner
            return
        summary = next(inner, None)
        if not isinstance(summary, CatalogSummary):
            raise FormatError(f"{what} has no summary record after its header")
        if summary.files is not None or self.identity is None:
            yield first.with_summary(summary)
            yield summary
            for record in inner:
                if isinstance(record, SealedRecord):
                    self.sealed = record
                if wanted is None or record.TYPE in wanted or isinstance(record, EndRecord):
                    yield record
            return
        from .sealed_catalog import unsealed_records  # the crypt extra, for encrypted shipments only

        yield from unsealed_records(self, first, inner, wanted)

    def _records(self, what: str, only: tuple[str, ...] | None) -> Iterator[CatalogRecord]:
        drives = [0, 0]  # the header's (or summary's) count, and the drive records read
        # The records' parser: replaced by that of the version the header states, once it is read.
        parse: Callable[[dict[str, Any]], CatalogRecord] = catalog_record_from_json
        #: Version 2: the body's hash (the fingerprint) and, in a full pass, the records' order.
        body: CatalogBodyHasher | None = None
        order: CatalogCheck | None = None
        stated = [""]  # the header's fingerprint

        def checked_header(raw: dict[str, Any]) -> CatalogHeader:
            nonlocal parse, body, order
            header = CatalogHeader.from_json(raw)
            parse = READERS[header.version].catalog_record
            if header.version == 1 and (problems := catalog_header_problems(header)):
                raise FormatError(f"{what} has a header out of bounds: {'; '.join(problems)}")
            drives[0], stated[0] = header.drives, header.fingerprint
            if header.version >= 2:
                body = CatalogBodyHasher()
                order = CatalogCheck() if only is None else None
            return header

        def checked(raw: dict[str, Any]) -> CatalogRecord:
            # Every record within the bounds of docs/format.md section 11 before anyone sizes anything by it.
            record = parse(raw)
            if order is not None and not isinstance(record, CatalogHeader) and (problems := order.add(record)):
                raise FormatError(f"{what} is not in order: {'; '.join(problems)}")
            if isinstance(record, CatalogSummary):
                drives[0] = record.drives
            if isinstance(record, CatalogEntry):
                problems = catalog_entry_problems(record, drives[0])
            elif isinstance(record, CatalogDrive):
                drives[1] += 1
                problems = catalog_drive_problems(record)
                if drives[1] > drives[0]:
                    problems.append(f"more drive records than the {drives[0]} drives of its header")
            else:
                problems = []
            if problems:
                raise FormatError(f"{what} has a record out of bounds: {'; '.join(problems)}")
            return record

        def hash_line(line: bytes) -> None:
            if body is not None:
                body.update(line)

        self.size, self.blake3 = yield from _read_record_file(
            self._opener, what, only, checked_header, checked, hash_line
        )
        if order is not None and (problems := order.finish()):
            raise FormatError(f"{what} is not whole: {'; '.join(problems)}")
        if body is not None and body.hexdigest() != stated[0]:
            raise IntegrityError(
                f"{what} does not give the fingerprint in its header: its records were changed (docs/format.md 19.6)"
            )

    def drives(self) -> tuple[CatalogHeader, list[CatalogDrive]]:
        """The header and the drive list, after reading the whole catalog (entries counted, not parsed)."""
        return header_and(self.records(only=(CatalogDrive.TYPE,)), CatalogHeader, CatalogDrive)


def sealed_beside(path: str) -> tuple[DriveStore, str]:
    """Where the sealed catalog of the public catalog at ``path`` is: the file beside it whose name ends in
    ``.age`` where the catalog's ends in ``.jsonl.zst``."""
    directory, name = os.path.split(path)
    stem = name.removesuffix(".jsonl.zst")
    return LocalStore(directory or "."), f"{stem}.age" if stem != name else SEALED_CATALOG_NAME


def header_and(records: Iterable[object], header_type: type[H], kind: type[R]) -> tuple[H, list[R]]:
    """A record file's header and its records of one ``kind``, read to the end (which checks the whole file)."""
    header: H | None = None
    found: list[R] = []
    for record in records:
        if isinstance(record, header_type):
            header = record
        elif isinstance(record, kind):
            found.append(record)
    assert header is not None  # the readers refuse a file whose first record is not its header
    return header, found


def _unlock(store: DriveStore, key: Unlock | ShipmentIdentity) -> ShipmentIdentity:
    from .keys import unlock  # the crypt extra, for encrypted drives only

    return unlock(store, key)
