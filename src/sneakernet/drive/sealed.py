"""A drive's sealed files (docs/format.md 19.8.3): record files (section 5) encrypted to the shipment identity as
age files, ``index.age`` and ``catalog.age``, written and read as streams.

Writing: records go through zstd into a bounded pipe, which age (pyrage, on a thread of its own) encrypts into
``NAME.partial`` on the drive; :meth:`SealedWriter.close` fsyncs it and renames it to its final name, so a crash
leaves at most a ``.partial`` file (section 13). The plaintext never touches a disk and never is whole in memory:
the pipe holds a few blocks.

Reading: age decrypts the drive's file on a thread into the pipe, and the records are parsed from it one line at a
time; age authenticates each 64 KiB chunk before it comes out, so a caller never sees a byte that was not sealed
by the shipment's key. Size and BLAKE3 of the file as read are kept, for the public manifest's ``sealed`` record.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import blake3

from ..chunks.codec import ChunkCodec
from ..chunks.stream import EncodedChunk
from ..crypto.aead import KeyDrawer, SegmentPlace, SegmentSealer
from ..crypto.keys import ShipmentIdentity
from ..errors import AuthenticationFailed, FormatError, KeyNeeded, SneakernetError, UsageError
from ..format import (
    DEFAULT_CIPHER,
    INDEX_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    PASSPHRASE_NAME,
    RECIPIENTS_NAME,
    ChunkRecord,
    EndRecord,
    SealedRecord,
    segment_name,
)
from ..format.container import HashingReader, RecordWriter, encode_record, read_records
from ..format.sealed import IndexHeader, SegmentKeyRecord, split_chunk
from ..io.store import DriveStore
from .keys import Unlock, WrappedKeys, read_key_file, unlock, write_keys

#: Blocks the pipe between a stream and age holds before the writing side waits (each at most _BLOCK bytes).
_PIPE_BLOCKS = 8
_BLOCK = 1 << 16
#: age's payload is sealed in chunks of 64 KiB, each with a 16-byte tag; its header to one X25519 recipient is
#: about 200 bytes (a stanza and the MAC), and the payload's nonce 16.
_AGE_CHUNK = 1 << 16
_AGE_TAG = 16
_AGE_HEADER = 512


class _Closed(Exception):
    """The other side of a pipe stopped: the thread on this side stops too."""


class _Pipe:
    """A bounded byte pipe between two threads: ``write`` waits while it is full, ``readinto`` while it is empty;
    :meth:`close_writing` ends the stream, :meth:`cancel` stops both sides (a reader that stopped early)."""

    def __init__(self) -> None:
        self._blocks: deque[bytes] = deque()
        self._head = b""
        self._ended = False
        self._cancelled = False
        self._ready = threading.Condition()

    def write(self, data: Any) -> int:
        data = bytes(data)
        for start in range(0, len(data), _BLOCK):
            with self._ready:
                while len(self._blocks) >= _PIPE_BLOCKS and not self._cancelled:
                    self._ready.wait()
                if self._cancelled:
                    raise _Closed
                self._blocks.append(data[start : start + _BLOCK])
                self._ready.notify_all()
        return len(data)

    def readinto(self, buffer: Any) -> int:
        if not self._head:
            with self._ready:
                while not self._blocks and not self._ended and not self._cancelled:
                    self._ready.wait()
                if self._cancelled:
                    raise _Closed
                if not self._blocks:
                    return 0
                self._head = self._blocks.popleft()
                self._ready.notify_all()
        size = min(len(buffer), len(self._head))
        buffer[:size] = self._head[:size]
        self._head = self._head[size:]
        return size

    def close_writing(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def cancel(self) -> None:
        with self._ready:
            self._cancelled = True
            self._ready.notify_all()


class _Reading(io.RawIOBase):
    """The reading end of a pipe as a file object (what pyrage and zstd read from)."""

    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.pipe.readinto(buffer)


class _Writing(io.RawIOBase):
    """The writing end of a pipe as a file object; ``sink`` (optional) is a drive file whose bytes are counted
    and hashed instead."""

    def __init__(self, pipe: _Pipe | None = None, sink: BinaryIO | None = None) -> None:
        self.pipe = pipe
        self.sink = sink
        self.hasher = blake3.blake3()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.sink is not None:
            self.sink.write(data)
            self.hasher.update(data)
            self.size += len(data)
            return len(data)
        assert self.pipe is not None
        self.size += len(data)
        return self.pipe.write(data)


class _Worker(threading.Thread):
    """Runs one age call on its own thread and keeps what it raised, for the caller's thread to raise."""

    def __init__(self, name: str, call: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.call = call
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.call()
        except BaseException as error:  # handed to the caller's thread, which raises it
            self.error = error


class SealedWriter:
    """Writes one sealed record file, ``name`` (``index.age``, ``catalog.age``), on the drive ``store``.

    Guarantee: until :meth:`close` returns, the file is only ``NAME.partial``; once it returns, it is durable under
    its name, and the :class:`SealedRecord` returned gives its size and BLAKE3 (what the public manifest pins)."""

    def __init__(self, store: DriveStore, name: str, identity: ShipmentIdentity) -> None:
        self.name = name
        self._file = store.create(name)
        self._sink = _Writing(sink=cast(BinaryIO, self._file))
        self._pipe = _Pipe()
        self._worker = _Worker(
            f"seal {name}", lambda: identity.seal_stream(_Reading(self._pipe), cast(BinaryIO, self._sink))
        )
        self._worker.start()
        # The record file's batching, flushing and size bound are format/container.py's; only its bytes go to age.
        self._records = RecordWriter(_Writing(self._pipe))

    @property
    def records(self) -> int:
        return self._records.records

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(encode_record(record))

    def write_line(self, line: bytes) -> None:
        try:
            self._records.write_line(line)
        except _Closed:
            self._raise_worker_error()

    def size_bound(self, extra: int = 0) -> int:
        """The most bytes the finished file can have if ``extra`` more bytes of records are written: the record
        file's bound (format/container.py's RecordWriter), plus age's header and its tag per 64 KiB of payload."""
        payload = self._records.size_bound(extra)
        return payload + (payload // _AGE_CHUNK + 1) * _AGE_TAG + _AGE_HEADER

    def close(self) -> SealedRecord:
        """Finish the stream, fsync the file and give it its name."""
        try:
            self._records.close()
        except _Closed:
            self._raise_worker_error()
        self._pipe.close_writing()
        self._worker.join()
        self._raise_worker_error()
        self._file.commit()
        return SealedRecord(self.name, self._sink.size, self._sink.hasher.hexdigest())

    def abort(self) -> None:
        """Stop; the ``.partial`` file stays behind, detectably unfinished."""
        self._pipe.cancel()
        self._worker.join()
        self._file.abort()

    def _raise_worker_error(self) -> None:
        error = self._worker.error
        if error is None:
            return
        self._pipe.cancel()
        if isinstance(error, OSError | SneakernetError):
            raise error
        raise FormatError(f"cannot seal {self.name}: {type(error).__name__}") from None


class SealedReader:
    """Reads one sealed record file of a drive with the shipment identity: its records, each as a dict, as
    :func:`~sneakernet.format.container.read_records` gives them; :attr:`size` and :attr:`blake3` of the file
    once the records have been read to their end."""

    def __init__(self, store: DriveStore, name: str, identity: ShipmentIdentity, what: str) -> None:
        self.store = store
        self.name = name
        self.identity = identity
        self.what = what
        self.size: int | None = None
        self.blake3: str | None = None

    def records(self, only: tuple[bytes, ...] | None = None) -> Iterator[dict[str, Any] | None]:
        try:
            handle = self.store.open(self.name)
        except OSError as exc:
            raise FormatError(f"cannot open {self.what}: {exc.strerror}") from exc
        pipe = _Pipe()
        source = HashingReader(handle)

        def decrypt() -> None:
            try:
                self.identity.open_stream(source, _Writing(pipe), self.what)
            finally:
                pipe.close_writing()

        worker = _Worker(f"open {self.name}", decrypt)
        worker.start()
        try:
            plain = io.BufferedReader(_Reading(pipe))
            try:
                yield from read_records(cast(BinaryIO, plain), self.what, only)
                # The pipe read to its end (age's thread ends only then); a sealed file holds one zstd frame.
                if any(iter(lambda: plain.read(_BLOCK), b"")):
                    raise FormatError(f"{self.what} has bytes after its record stream")
            except (FormatError, _Closed):
                worker.join()
                if worker.error is not None and not isinstance(worker.error, _Closed):
                    raise self._error(worker.error) from None
                raise
            worker.join()
            if worker.error is not None:
                raise self._error(worker.error) from None
            source.drain()
            self.size, self.blake3 = source.size, source.hasher.hexdigest()
        finally:
            pipe.cancel()
            worker.join()
            handle.close()

    def _error(self, error: BaseException) -> Exception:
        if isinstance(error, SneakernetError):
            return error
        if isinstance(error, OSError) and error.errno is not None:
            return FormatError(f"cannot read {self.what}: {error.strerror}")
        # pyrage's decrypt_io reports a chunk whose tag fails, or a file cut short, as an OSError without errno.
        return AuthenticationFailed(
            f"{self.what} does not open with the shipment's key: it is damaged, cut short, or not this shipment's"
        )


@dataclass(frozen=True)
class ShipmentSealing:
    """What an encrypted pack shares among its drives: the wrapped keys written on each, the codec that seals
    chunks (its ``cipher`` is what every manifest header names) and the drawer of segment keys (one key per segment
    file opened, never one twice)."""

    keys: WrappedKeys = field(repr=False)
    codec: ChunkCodec
    drawer: KeyDrawer = field(repr=False)

    @classmethod
    def new(cls, keys: WrappedKeys, level: int, cipher: str = DEFAULT_CIPHER) -> ShipmentSealing:
        return cls(keys, ChunkCodec(level, cipher), KeyDrawer(cipher=cipher))

    @property
    def cipher(self) -> str:
        assert self.codec.cipher is not None
        return self.codec.cipher

    def summary(self) -> dict[str, int | bool | str]:
        """What pack's summary says of the encryption (public, docs/format.md 19.8.5): the key files' recipient
        count and passphrase (:meth:`WrappedKeys.summary`), and the cipher every manifest header names."""
        return {**self.keys.summary(), "cipher": self.cipher}

    def spec(self) -> SealingSpec:
        """This sealing as plain data for a lane's process (:class:`SealingSpec`)."""
        return SealingSpec(self.keys.identity.secret_line(), tuple(self.keys.files.items()), self.cipher)


@dataclass(frozen=True)
class SealingSpec:
    """A :class:`ShipmentSealing` as plain data, for a lane's process (packer/lane.py): the shipment identity's
    line, the wrapped key files' bytes and the cipher. It crosses only the local pipe to a lane process of this
    host (pickled in memory, never written anywhere); its ``repr`` shows the cipher alone. Each lane draws its own
    segment keys (:class:`~sneakernet.crypto.aead.KeyDrawer`): 32 fresh random bytes per segment file."""

    secret: str = field(repr=False)
    files: tuple[tuple[str, bytes], ...] = field(repr=False)
    cipher: str

    def identity(self) -> ShipmentIdentity:
        return ShipmentIdentity.from_secret_line(self.secret)

    def sealing(self, level: int) -> ShipmentSealing:
        return ShipmentSealing.new(WrappedKeys(self.identity(), dict(self.files)), level, self.cipher)


class DriveSealing:
    """One encrypted drive's share of the writing (docs/format.md 19.8.3), for :class:`~sneakernet.drive.DriveWriter`:
    its ``keys/`` files, its sealed index (segment keys, the chunks' raw side, every entry), a sealer per segment.

    The public manifest gets each chunk's public record and, once the index is closed (durable, 19.10), the
    ``sealed`` records pinning the key files and the index."""

    def __init__(self, store: DriveStore, shipment: str, drive: int, sealing: ShipmentSealing) -> None:
        self.shipment = shipment
        self.drive = drive
        self.sealing = sealing
        self.key_records = write_keys(store, sealing.keys)
        self.index = SealedWriter(store, INDEX_NAME, sealing.keys.identity)
        self.index.write(IndexHeader(shipment, drive).to_json())
        self._sealer: SegmentSealer | None = None
        #: The key files' and (once finished) the index's records: what the public manifest and B3SUMS name.
        self.sealed: list[SealedRecord] = list(self.key_records)
        #: The buffer chunks are sealed into, kept from chunk to chunk (a fresh 4 MiB object costs more than the
        #: cipher: bench/crypto.py).
        self._buffer = bytearray()

    def open_segment(self, number: int) -> None:
        """Draw the key of segment ``number``, opened for writing: recorded in the index, used for it alone."""
        self._sealer = self.sealing.drawer.new_segment(SegmentPlace(self.shipment, self.drive, number))
        self.index.write(SegmentKeyRecord(segment_name(number), self._sealer.key.hex()).to_json())

    def seal(self, chunk: EncodedChunk, offset: int) -> tuple[memoryview, str]:
        """The stored bytes of ``chunk`` (its frame sealed) at ``offset`` in the open segment, and their BLAKE3;
        the view is valid until the next call."""
        assert self._sealer is not None, "a segment is opened before its chunks are sealed"
        stored = self.sealing.codec.seal(
            chunk.stored, self._sealer, self._buffer, chunk_id=chunk.id, offset=offset, raw_size=chunk.raw_size
        )
        return stored, blake3.blake3(stored).hexdigest()

    def add_chunk(self, record: ChunkRecord, manifest: RecordWriter) -> None:
        public, sealed = split_chunk(record)
        manifest.write(public.to_json())
        self.index.write(sealed.to_json())

    def add_entry(self, line: bytes) -> None:
        self.index.write_line(line)

    def size_bound(self, extra: int) -> int:
        """The most bytes the index can have on the drive if ``extra`` more bytes of records are written."""
        return self.index.size_bound(extra)

    def finish(self, manifest: RecordWriter) -> None:
        """Close the index (fsynced, renamed) and pin it and the key files in the public manifest."""
        self.index.write(EndRecord(self.index.records + 1).to_json())
        self.sealed.append(self.index.close())
        for record in self.sealed:
            manifest.write(record.to_json())

    def abort(self) -> None:
        self.index.abort()


def resumed_sealing(
    stores: Iterator[DriveStore], given: Unlock | None, level: int, cipher: str
) -> ShipmentSealing | None:
    """The sealing of a resumed encrypted pack (docs/format.md 19.10): the shipment identity the interrupted pack
    wrapped in the ``keys/`` of the first drive of ``stores`` that has them, opened with ``given``, and those very
    key files (so that every drive of the shipment keeps the same bytes); segment keys are drawn afresh, one per
    segment file the resumed pack writes. None when no drive has key files (nothing of the shipment to keep).

    Raises :class:`~sneakernet.errors.KeyNeeded` when there is something to keep and nothing opens it, WrongKey
    when what was given does not, UsageError when that drive's manifest header names another ``cipher`` than the
    resumed pack's (every drive of a shipment names the same one, 19.8.2)."""
    for store in stores:
        files = {name: data for name in (RECIPIENTS_NAME, PASSPHRASE_NAME) if (data := read_key_file(store, name))}
        if not files:
            continue
        if not given:
            raise KeyNeeded(
                "resuming an encrypted pack reads what the interrupted one wrote, which needs its key: give "
                "--identity FILE (one of its recipients') or the --passphrase-file it was packed with, or pack "
                "again from the start onto empty drives"
            )
        identity = unlock(store, given)
        written = written_cipher(store)
        if written is not None and written != cipher:
            raise UsageError(
                f"cannot resume: {store.path} was packed with --cipher {written}: give the same options as the "
                "interrupted pack"
            )
        return ShipmentSealing.new(WrappedKeys(identity, files), level, cipher)
    return None


def written_cipher(store: DriveStore) -> str | None:
    """The ``cipher`` the manifest header of the drive ``store`` names, finished or not (its ``.partial``); None
    when there is no header to read (a drive killed before its first flush: the resume's own checks judge it)."""
    for name, cut in ((MANIFEST_NAME, False), (MANIFEST_NAME + PARTIAL_SUFFIX, True)):
        if store.stat(name) is None:
            continue
        try:
            with store.open(name) as handle:
                header = next(read_records(handle, name, cut=cut), None)
        except (OSError, FormatError):
            return None
        cipher = header.get("cipher") if isinstance(header, dict) else None
        return cipher if isinstance(cipher, str) else None
    return None


def sealed_problems(store: DriveStore, records: list[SealedRecord]) -> list[str]:
    """What is wrong with the sealed and key files the public manifest (or catalog) of the drive ``store`` pins:
    each must be there with the size and BLAKE3 of its record (checked without the key: docs/format.md 19.8.4)."""
    problems = []
    for record in records:
        try:
            size, digest = _hash(store, record.name)
        except OSError as exc:
            problems.append(f"{record.name} cannot be read: {exc.strerror}")
            continue
        if (size, digest) != (record.size, record.blake3):
            problems.append(f"{record.name} is damaged: its BLAKE3 is not the one its manifest records")
    return problems


def _hash(store: DriveStore, name: str) -> tuple[int, str]:
    hasher = blake3.blake3()
    size = 0
    with store.open(name) as handle:
        while data := handle.read(_BLOCK * 16):
            hasher.update(data)
            size += len(data)
    return size, hasher.hexdigest()
