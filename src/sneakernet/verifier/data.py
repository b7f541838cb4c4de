"""The data pass over one drive's segments, as the mode asks: each segment hashed whole against its manifest
record (the default, ``b3sum --check``'s speed) and only a damaged one read again chunk by chunk to name the
damaged chunks; each chunk's stored bytes (``--sample`` segments), or decoded and hashed, files too (``--deep``).
Progress is saved after every finished segment (state.py), so an interrupted pass resumes there.
:class:`HashAhead` hashes the next drives' segments on a thread of its own while manifests are checked."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict

import blake3

from ..drive import ChunkMap, DriveReader
from ..drive.reader import HASH_SLICE
from ..errors import FormatError
from ..format import MANIFEST_NAME, ChunkRecord, FileRecord, show_path
from ..format.sealed import PublicChunk
from ..progress import DriveProgress
from ..units import counted
from .report import DamagedChunk, DriveReport, Kind, Problem, Status
from .settings import Mode, Settings
from .state import VerifyState

#: Chunks being hashed at once, per worker: enough to overlap reading with hashing.
IN_FLIGHT_PER_WORKER = 2

#: Hashes a segment file whole: ``(reader, name, threads, advance) -> BLAKE3 hex``, None when it cannot be read.
SegmentHash = Callable[[DriveReader, str, int, Callable[[int], None]], str | None]


class HashAhead:
    """Hashes segment files whole, in the order given, on a thread of its own (BLAKE3 and the reads leave the
    interpreter lock free, and BLAKE3 spreads each slice over ``threads`` threads), while the main thread checks
    manifests and catalogs: a full check of intact drives then costs about the hashing alone."""

    def __init__(self, threads: int, hash_segment: SegmentHash | None = None, slice_size: int = HASH_SLICE) -> None:
        self.threads = threads
        #: Bytes of a segment mapped at a time (see DriveReader.segment_blake3).
        self.slice_size = slice_size
        #: What hashes a segment file (None: the drive reader's segment_blake3, as the data pass does).
        self.hash_segment = hash_segment
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sneakernet-verify-ahead")
        self.futures: dict[tuple[str, str], Future[str | None]] = {}
        #: Guards :attr:`futures`: the drive checks of a run may add, take and forget from several threads.
        self.lock = threading.Lock()

    def add(self, reader: DriveReader, segment: str) -> None:
        """Hash ``segment`` of the drive ``reader`` reads (through its store), known by the drive's path."""
        with self.lock:
            self.futures[reader.path, segment] = self.pool.submit(self._hash, reader, segment)

    def _hash(self, reader: DriveReader, segment: str) -> str | None:
        # The progress is told when the digest is used, on the main thread.
        if self.hash_segment is not None:
            return self.hash_segment(reader, segment, self.threads, lambda _: None)
        return reader.segment_blake3(segment, self.threads, lambda _: None, self.slice_size)

    def take(self, drive: str, segment: str) -> Future[str | None] | None:
        with self.lock:
            return self.futures.pop((drive, segment), None)

    def forget(self, drive: str) -> None:
        """Drop what is still to be hashed of ``drive`` (its structure failed, or its check is over): an 8 TB
        drive whose manifest is damaged must not be hashed ahead for hours before the next drive."""
        with self.lock:
            for key in [key for key in self.futures if key[0] == drive]:
                self.futures.pop(key).cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DataCheck:
    """Checks the contents of one drive whose structure was checked (its reader and chunk map) into ``report``."""

    def __init__(
        self,
        reader: DriveReader,
        manifest: ChunkMap,
        segment_sizes: dict[str, int],
        report: DriveReport,
        settings: Settings,
        progress: DriveProgress,
        ahead: HashAhead | None,
    ) -> None:
        self.path = reader.path
        self.reader = reader
        self.manifest = manifest
        self.segment_sizes = segment_sizes
        self.report = report
        self.settings = settings
        self.progress = progress
        #: What hashed this drive's segment files ahead, if anything did.
        self.ahead = ahead
        #: Segments hashed whole (their bytes are in the progress once, even if checked again chunk by chunk).
        self.hashed_whole: set[str] = set()

    def _selected_segments(self, seed: int | None) -> set[str]:
        names = sorted(self.manifest.segments)
        if self.settings.sample_percent is None:
            return set(names)
        count = max(1, round(len(names) * self.settings.sample_percent / 100)) if names else 0
        return set(random.Random(seed).sample(names, count))

    def run(self) -> None:
        """Read every selected chunk's stored bytes (and with --deep decode them and hash whole files)."""
        assert self.manifest.header is not None
        state = self._load_state()
        seed = self.settings.seed
        if self.settings.sample_percent is not None and seed is None:
            seed = state.seed if state is not None and state.seed is not None else random.randrange(2**32)
        if state is not None:
            state.seed = seed
        selected = self._selected_segments(seed)
        done = set(state.done_segments) if state else set()
        if state is not None and done:
            self._resume_from(state)
        if self.settings.mode == Mode.FULL:
            # Segments hashed whole and found intact need no chunk read: the pass below only names damage.
            selected = self._check_whole_segments(selected - done, state)
        if selected or self.settings.mode != Mode.FULL:
            self._check_chunks(selected, done, state)
        self.reader.close()
        if state is not None and self.settings.state is not None:
            self.settings.state.clear(state.key)

    def _check_chunks(self, selected: set[str], done: set[str], state: VerifyState | None) -> None:
        """Check the chunks of ``selected`` segments (not ``done``) one by one, on the pool."""
        # Files that span the resume point cannot be hashed whole; the others still are.
        files = (
            FileHasher(self.reader, self.manifest, self.report)
            if self.settings.mode == Mode.DEEP and self.settings.sample_percent is None
            else None
        )
        segment_chunks: dict[str, int] = {}
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="sneakernet-verify") as pool:
            window: list[tuple[ChunkRecord, Future[tuple[str | None, bytes | None]]]] = []
            limit = self.settings.workers * IN_FLIGHT_PER_WORKER
            for chunk in self._chunk_records():
                if chunk.segment not in selected or chunk.segment in done:
                    if files is not None:
                        files.skip(chunk)
                    continue
                window.append((chunk, pool.submit(self._check_chunk, chunk, files is not None)))
                while len(window) > limit:
                    self._finish_chunk(*window.pop(0), files, segment_chunks, state)
            for item in window:
                self._finish_chunk(*item, files, segment_chunks, state)
        if files is not None and files.unchecked:
            self.report.notes.append(
                f"{counted(files.unchecked, 'file')} spanning the point where this verify resumed were not hashed "
                "whole (their chunks were); --restart checks them too"
            )

    def _resume_from(self, state: VerifyState) -> None:
        report = self.report
        report.resumed = True
        report.bytes_checked, report.chunks_checked = state.bytes_checked, state.chunks_checked
        report.files_checked = state.files_checked
        report.damaged_chunks.extend(DamagedChunk(**raw) for raw in state.damaged)
        report.problems.extend(Problem(**raw) for raw in state.file_problems)
        if (report.damaged_chunks or state.file_problems) and report.ok:  # damage outranks unexpected files
            report.status = Status.DAMAGED.value

    def _load_state(self) -> VerifyState | None:
        settings, store = self.settings, self.settings.state
        if store is None:
            return None
        label = self.reader.label
        key = f"{label.shipment}-{label.drive:04d}-{self.reader.manifest_blake3}-{settings.mode.value}"
        if settings.sample_percent is not None:
            key += f"-sample{settings.sample_percent}-{'auto' if settings.seed is None else settings.seed}"
        state = store.load(key)
        if settings.restart:
            store.clear(key)
            state = VerifyState(key)
        return state

    def _chunk_records(self) -> Iterator[ChunkRecord]:
        """The chunk records again, fast: the first pass parsed and checked every record, this one must find as
        many chunks (a record whose ``type`` is not its first member would otherwise slip through)."""
        count = 0
        for record in self.reader.records(only=(ChunkRecord.TYPE,)):
            if isinstance(record, ChunkRecord | PublicChunk):  # public: an encrypted drive read without its key
                count += 1
                yield record
        if count != len(self.manifest.raw_offsets) - 1 + (self.manifest.first_chunk is None):
            raise FormatError(f"{MANIFEST_NAME} changed while it was read")

    def _check_chunk(self, chunk: ChunkRecord, decode: bool) -> tuple[str | None, bytes | None]:
        """Runs on the pool: ``(reason the chunk is damaged or None, raw bytes when decoding)``."""
        size = self.segment_sizes.get(chunk.segment)
        if size is None:
            return "its segment is missing", None
        if size < chunk.offset + chunk.stored_size:
            return "its segment is cut short before its end", None
        if not decode:
            # Hashed in place in the segment's memory map: no copy of the bytes.
            if not self.reader.stored_matches(chunk):
                return "stored bytes do not match their BLAKE3 (or cannot be read)", None
            return self.reader.frame_problem(chunk), None
        try:
            stored = self.reader.read_stored(chunk)
        except FormatError:
            return "stored bytes do not match their BLAKE3 (or cannot be read)", None
        try:
            raw = self.reader.codec.decode_record(stored, chunk)
        except FormatError as exc:
            return f"does not decompress: {exc}", None
        if blake3.blake3(raw).hexdigest() != chunk.raw_blake3:
            return "decompressed bytes do not match their BLAKE3", None
        return None, raw

    def _finish_chunk(
        self,
        chunk: ChunkRecord,
        future: Future[tuple[str | None, bytes | None]],
        files: FileHasher | None,
        segment_chunks: dict[str, int],
        state: VerifyState | None,
    ) -> None:
        reason, raw = future.result()
        self.report.bytes_checked += chunk.stored_size
        self.report.chunks_checked += 1
        if chunk.segment not in self.hashed_whole:  # its bytes were counted once already
            self.progress.advance(chunk.stored_size)
        if reason is not None:
            self.report.add_damaged(chunk, reason)
        if files is not None:
            files.feed(chunk, raw)
        segment_chunks[chunk.segment] = segment_chunks.get(chunk.segment, 0) + 1
        if state is not None and segment_chunks[chunk.segment] == self.manifest.segments[chunk.segment].chunks:
            self._segment_done(chunk.segment, state)

    def _segment_done(self, segment: str, state: VerifyState) -> None:
        state.done_segments.append(segment)
        state.damaged = [asdict(c) for c in self.report.damaged_chunks]
        state.bytes_checked, state.chunks_checked = self.report.bytes_checked, self.report.chunks_checked
        state.files_checked = self.report.files_checked
        state.file_problems = [asdict(p) for p in self.report.problems if p.kind == Kind.FILE_HASH]
        assert self.settings.state is not None
        self.settings.state.save(state)

    def _check_whole_segments(self, segments: set[str], state: VerifyState | None) -> set[str]:
        """Hash each of ``segments`` whole against its manifest record, as ``b3sum --check`` would, on all the
        threads BLAKE3 can use; return those that must be checked chunk by chunk to say what is damaged.

        A segment whose BLAKE3 is the manifest's (which the catalog vouches for) holds every chunk's stored bytes
        as packed, so its chunks need no hash of their own: the intact drive, the usual case, is read once at
        b3sum's speed. A segment missing, of the wrong size, unreadable or with another hash goes to the
        chunk-by-chunk pass, which names each damaged chunk and so each hurt file.

        The segment's hash says its bytes are as packed, not that the chunk records cut them into single frames (a
        second frame inside a chunk would pass): each chunk of an intact segment is walked, frame and block
        headers only, as soon as its segment is hashed, while the segment's pages are still in the page cache (a
        walk after the drive's last segment would read an 8 TB drive a second time). Its progress is saved once
        its chunks are walked.
        """
        damaged: set[str] = set()
        intact: dict[str, bool] = {}
        walking: str | None = None
        for chunk in self._chunk_records():
            name = chunk.segment
            if name not in segments:
                continue
            if name not in intact:
                if walking is not None and state is not None:
                    self._segment_done(walking, state)
                intact[name] = self._hash_whole(name)
                walking = name if intact[name] else None
                if not intact[name]:
                    damaged.add(name)
            if intact[name] and (reason := self.reader.frame_problem(chunk)) is not None:
                self.report.add_damaged(chunk, reason)
        if walking is not None and state is not None:
            self._segment_done(walking, state)
        # A segment no chunk record names (the structure check says so) is hashed all the same.
        for name in sorted(segments - intact.keys()):
            if not self._hash_whole(name):
                damaged.add(name)
            elif state is not None:
                self._segment_done(name, state)
        return damaged

    def _hash_whole(self, name: str) -> bool:
        """Whether segment ``name`` hashed whole (ahead, or here) is the one the manifest records."""
        record = self.manifest.segments[name]
        if self.segment_sizes.get(name) != record.size:
            return False
        self.hashed_whole.add(name)
        ahead = self.ahead.take(self.path, name) if self.ahead is not None else None
        if ahead is not None:
            digest = ahead.result()
            self.progress.advance(record.size)
        else:
            digest = self.reader.segment_blake3(
                name, self.settings.workers, self.progress.advance, self.settings.hash_slice
            )
        if digest != record.blake3:
            return False
        self.report.bytes_checked += record.size
        self.report.chunks_checked += record.chunks
        return True


class FileHasher:
    """--deep: hashes each file wholly on this drive from the decoded chunks, in the drive's raw order.

    File records come after their chunks in the manifest, so a second iterator over the manifest walks the file
    pieces while the chunks are fed in order; both advance together and hold one chunk at a time.
    """

    def __init__(self, reader: DriveReader, manifest: ChunkMap, report: DriveReport) -> None:
        self.manifest = manifest
        self.report = report
        self.pieces = (r for r in reader.records() if isinstance(r, FileRecord) and r.length)
        self.current: FileRecord | None = None
        self.skipping = False
        self.span: tuple[int, int] | None = None
        self.hasher = blake3.blake3()
        self.broken = False
        self.skipped = False
        self.position = 0
        #: Files wholly on the drive that could not be hashed because a resume skipped part of them.
        self.unchecked = 0
        self._next_piece()

    def _next_piece(self) -> None:
        self.current = next(self.pieces, None)
        self.span = self.manifest.piece_range(self.current) if self.current else None
        self.hasher = blake3.blake3()
        self.broken = False
        self.skipped = False

    def skip(self, chunk: ChunkRecord) -> None:
        """A chunk not read in this run (done before a resume, or not sampled)."""
        self.skipping = True
        self.feed(chunk, None)
        self.skipping = False

    def feed(self, chunk: ChunkRecord, raw: bytes | None) -> None:
        """The raw bytes of the next chunk, or None when they are unknown (damaged)."""
        end = self.position + chunk.raw_size
        while self.span is not None and self.span[0] < end:
            lo, hi = max(self.span[0], self.position), min(self.span[1], end)
            if raw is None:
                self.broken = True
                self.skipped = self.skipped or self.skipping
            else:
                self.hasher.update(memoryview(raw)[lo - self.position : hi - self.position])
            if self.span[1] > end:
                break
            self._close_piece()
        self.position = end

    def _close_piece(self) -> None:
        record = self.current
        assert record is not None
        if record.final and record.offset == 0 and self.broken and self.skipped:
            self.unchecked += 1
        if record.final and record.offset == 0 and not self.broken:
            self.report.files_checked += 1
            if self.hasher.hexdigest() != record.blake3:
                self.report.add(
                    Kind.FILE_HASH,
                    f"{show_path(record.path)} does not match its whole-file BLAKE3",
                    [show_path(record.path)],
                )
        self._next_piece()
