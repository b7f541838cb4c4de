"""Reading the source tree into the chunk stream: :class:`SourceReader`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import blake3

from ..chunks.chunker import Chunker, is_large
from ..chunks.stream import FileEnd, RawChunk
from ..errors import SourceError
from ..format import DirRecord, EntryRecord, HardlinkRecord, Metadata, SkippedRecord, SymlinkRecord
from ..io.source import FileStat, Source, SourceFile
from ..options import PackOptions
from ..scan import KIND_DIR, KIND_FILE, KIND_SYMLINK, SourceEntry, Unreadable
from .summary import ReadTally, _show

#: Reasons recorded in skipped records and shown in warnings.
VANISHED = "vanished before it was read"
SPECIAL = "special file (FIFO, socket or device)"


@dataclass
class SourceReader:
    """Turns the spooled entries into an ordered stream of records, chunks and file ends.

    Order guarantees the writer relies on: a file's :class:`FileEnd` comes after the chunk holding its last
    bytes and before any later chunk; a group chunk comes before the ends of the files it holds.
    """

    source: Source
    options: PackOptions
    tally: ReadTally
    paths: dict[int, bytes] = field(default_factory=dict)
    on_bytes: Callable[[int], None] = lambda n: None
    #: Replaying what finished drives already hold (a resumed pack): files are neither opened nor read, chunks
    #: are laid out from the sizes the scan found. :meth:`go_live` ends it.
    dry: bool = False
    _hardlinks: dict[tuple[int, int], bytes] = field(default_factory=dict)
    _pending_ends: list[FileEnd | HardlinkRecord] = field(default_factory=list)
    _chunker: Chunker | None = None
    #: While replaying: the raw BLAKE3 of the finished drives' chunks of the large file in progress, and the
    #: last chunk replayed with a function that reads its bytes back from its drive.
    replayed_chunks: dict[int, list[str]] = field(default_factory=dict)
    last_replayed: tuple[RawChunk, Callable[[], bytes]] | None = None

    def items(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[EntryRecord | RawChunk | FileEnd]:
        chunker = self._chunker = Chunker(self.options.chunk_size)
        for index, entry in enumerate(entries):
            if isinstance(entry, Unreadable):
                self.tally.note_skipped(entry.path, f"unreadable: {entry.reason}")
                yield SkippedRecord(entry.path, f"unreadable: {entry.reason}")
            elif entry.kind == KIND_DIR:
                self.tally.dirs += 1
                yield DirRecord(entry.path, _meta(entry))
            elif entry.kind == KIND_SYMLINK:
                yield from self._symlink(entry)
            elif entry.kind == KIND_FILE:
                yield from self._file(index, entry, chunker)
            else:
                self.tally.note_skipped(entry.path, SPECIAL)
                yield SkippedRecord(entry.path, SPECIAL)
        yield from self._flush_group(chunker)

    def _drain_ends(self) -> Iterator[FileEnd | HardlinkRecord]:
        """The waiting file ends, each taken off the list as it is handed out (a replay may end between two)."""
        while self._pending_ends:
            yield self._pending_ends.pop(0)

    def _symlink(self, entry: SourceEntry) -> Iterator[EntryRecord]:
        try:
            target = self.source.readlink(entry.path)
        except FileNotFoundError:
            self.tally.note_skipped(entry.path, VANISHED)
            yield SkippedRecord(entry.path, VANISHED)
            return
        self.tally.symlinks += 1
        yield SymlinkRecord(entry.path, target, _meta(entry))

    def _flush_group(self, chunker: Chunker) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        yield from chunker.close_group()
        yield from self._drain_ends()

    def _file(self, index: int, entry: SourceEntry, chunker: Chunker) -> Iterator[EntryRecord | RawChunk | FileEnd]:
        if entry.nlink > 1:
            key = (entry.dev, entry.ino)
            if key in self._hardlinks:
                self.tally.hardlinks += 1
                link = HardlinkRecord(entry.path, self._hardlinks[key])
                if self._pending_ends:
                    # The target may be a small file still waiting for its group chunk: the link follows its record.
                    self._pending_ends.append(link)
                else:
                    yield link
                return
        if self.dry:
            yield from self._dry_file(index, entry, chunker)
            return
        try:
            file = self.source.open(entry.path)
        except FileNotFoundError:
            self.tally.note_skipped(entry.path, VANISHED)
            yield SkippedRecord(entry.path, VANISHED)
            return
        except OSError as exc:
            if not self.options.skip_unreadable:
                raise SourceError(
                    f"cannot read {_show(entry.path)}: {exc.strerror}; fix it or pack with --skip-unreadable"
                ) from exc
            self.tally.note_skipped(entry.path, f"unreadable: {exc.strerror}")
            yield SkippedRecord(entry.path, f"unreadable: {exc.strerror}")
            return
        try:
            before = file.stat()
            if entry.nlink > 1:
                self._hardlinks[(entry.dev, entry.ino)] = entry.path
            self.paths[index] = entry.path
            self.tally.files += 1
            if is_large(before.st_size, self.options.chunk_size):
                yield from self._large_file(index, file, before, chunker)
            else:
                yield from self._small_file(index, file, before, chunker)
        finally:
            file.close()

    def _small_file(
        self, index: int, file: SourceFile, before: FileStat, chunker: Chunker
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        # Ask for one byte more than the size: getting it means the file grew while it was read.
        data = file.read(before.st_size + 1, before.st_size)
        grew = len(data) > before.st_size
        data = data[: before.st_size]
        self.on_bytes(len(data))
        end = self._end(index, file, before, len(data), EMPTY_BLAKE3 if not data else None, grew, bool(data))
        if not data:
            yield end
            return
        closed = chunker.add_small(index, data)
        if closed:
            yield from closed
            yield from self._drain_ends()
        self._pending_ends.append(end)

    def _large_file(
        self, index: int, file: SourceFile, before: FileStat, chunker: Chunker, offset: int = 0
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """Read a large file into chunks of its own, from ``offset``: a resumed pack re-reads what lies before,
        which must be exactly what the finished drives hold (their chunks' raw BLAKE3)."""
        if offset == 0:
            yield from self._flush_group(chunker)
        hasher = blake3.blake3()
        chunk_size = self.options.chunk_size
        stored = self.replayed_chunks.pop(index, [])
        position = 0
        for digest in stored:
            data = file.read(min(chunk_size, offset - position))
            if blake3.blake3(data).hexdigest() != digest:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            hasher.update(data)
            position += len(data)
        if position != offset:
            raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
        while offset < before.st_size:
            data = file.read(min(chunk_size, before.st_size - offset))
            if not data:
                break
            hasher.update(data)
            self.on_bytes(len(data))
            yield from chunker.add_large_piece(index, offset, data)
            offset += len(data)
        grew = offset == before.st_size and bool(file.read_at(offset, 1))
        yield self._end(index, file, before, offset, hasher.hexdigest(), grew)

    def _end(
        self, index: int, file: SourceFile, before: FileStat, size: int, digest: str | None, grew: bool,
        with_chunk: bool = False,
    ) -> FileEnd:  # fmt: skip
        after = file.stat()
        changed = grew or size != before.st_size or after.st_size != before.st_size
        changed = changed or after.st_mtime_ns != before.st_mtime_ns
        if changed:
            self.tally.note_changed(self.paths[index])
        self.tally.raw_bytes += size
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return FileEnd(index, size, digest, meta, changed, with_chunk)

    # -- replaying a resumed pack --

    def _dry_file(
        self, index: int, entry: SourceEntry, chunker: Chunker
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """A file as the finished drives hold it, from its scanned size: no open, no read."""
        if entry.nlink > 1:
            self._hardlinks[(entry.dev, entry.ino)] = entry.path
        self.paths[index] = entry.path
        self.tally.files += 1
        self.tally.raw_bytes += entry.size
        self.on_bytes(entry.size)
        meta = _meta(entry)
        if not is_large(entry.size, self.options.chunk_size):
            if entry.size == 0:
                yield FileEnd(index, 0, EMPTY_BLAKE3, meta, False)
                return
            closed = chunker.add_small(index, entry.size)
            if closed:
                yield from closed
                yield from self._drain_ends()
            self._pending_ends.append(FileEnd(index, entry.size, None, meta, False))
            return
        yield from self._flush_group(chunker)
        offset = 0
        while offset < entry.size and self.dry:
            piece = min(self.options.chunk_size, entry.size - offset)
            yield from chunker.add_large_piece(index, offset, piece)
            offset += piece
        if self.dry:
            yield FileEnd(index, entry.size, None, meta, False)
            return
        # The replay ended inside this file: the rest is read for real, after hashing what came before.
        self.tally.raw_bytes -= entry.size
        file = self._open_unchanged(index, entry.size, entry.mtime_ns)
        try:
            yield from self._large_file(index, file, file.stat(), chunker, offset)
        finally:
            file.close()

    def go_live(self) -> None:
        """End the replay: what follows is read for real, and replayed files still to come are read now.

        Files whose bytes are in the last replayed chunk (on a finished drive) but whose final record is not must
        still be what that chunk holds.
        """
        self.dry = False
        assert self._chunker is not None
        for index in self._chunker.dry_files():
            data, end = self._read_whole(index)
            self._chunker.fill(index, data)
            self._replace_end(end)
        stored: dict[int, bytes] = {}
        if self.last_replayed is not None:
            chunk, read_back = self.last_replayed
            raw = read_back()
            stored = {s.file_index: raw[s.chunk_offset : s.chunk_offset + s.length] for s in chunk.slices}
        for item in list(self._pending_ends):
            if isinstance(item, FileEnd) and item.blake3 is None and not item.with_chunk:
                data, end = self._read_whole(item.index)
                if stored.get(item.index, data) != data:
                    raise SourceError(f"{_show(self.paths[item.index])} changed since the interrupted pack: start over")
                self._replace_end(end)

    def _replace_end(self, end: FileEnd) -> None:
        self._pending_ends = [
            end if isinstance(item, FileEnd) and item.index == end.index else item for item in self._pending_ends
        ]

    def _read_whole(self, index: int) -> tuple[bytes, FileEnd]:
        """A replayed small file read for real; it must be as the scan saw it."""
        dry = next(e for e in self._pending_ends if isinstance(e, FileEnd) and e.index == index)
        assert isinstance(dry, FileEnd)
        file = self._open_unchanged(index, dry.size, dry.meta.mtime_ns)
        try:
            data = file.read(dry.size + 1, dry.size)
            if len(data) != dry.size:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            after = file.stat()
        finally:
            file.close()
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return data, FileEnd(index, dry.size, blake3.blake3(data).hexdigest(), meta, False)

    def _open_unchanged(self, index: int, size: int, mtime_ns: int) -> SourceFile:
        path = self.paths[index]
        try:
            file = self.source.open(path)
        except OSError as exc:
            raise SourceError(f"cannot read {_show(path)} ({exc.strerror}) to resume: start over") from exc
        st = file.stat()
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            file.close()
            raise SourceError(f"{_show(path)} changed since the interrupted pack: start over (without --resume)")
        return file


EMPTY_BLAKE3 = blake3.blake3(b"").hexdigest()


def _meta(entry: SourceEntry) -> Metadata:
    return Metadata(entry.mode, entry.mtime_ns, entry.uid, entry.gid)
