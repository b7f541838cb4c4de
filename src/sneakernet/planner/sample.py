"""A sample of a source's data, taken while it is walked: how well it compresses, and how fast.

The data, seen as one stream of bytes in pack's walk order (every file's size end to end, a hard link's size
included though it has no data of its own), is cut into equal *strata* of ``stride`` bytes; stratum ``k`` is
represented by one *piece* of :data:`SAMPLE_PIECE` bytes read where it starts: a window of the file there, or, for
a small file, that file and the small files after it, as pack groups them into one chunk. Each piece goes through
pack's own compression (:meth:`~sneakernet.chunks.codec.ChunkCodec.encode`), which gives the stratum's stored ratio
and, timed, the encoder's cost.

The walk does not know the data's size until it ends, so the stride starts at one piece and doubles whenever
there are too many strata, dropping every other one: the sample ends up the same as one planned with the total
known. Only the pieces that survive are read, after the walk, through the source's seam
(:class:`~sneakernet.io.source.Source`, as pack reads), and encoded on a thread per core.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import blake3

from ..chunks.chunker import is_large
from ..chunks.codec import ChunkCodec
from ..format import METHOD_STORE
from ..io.source import Source

#: The piece read for one stratum. zstd finds more in a chunk (4 MiB) than in a short piece of it: repeats
#: between the small files of a group, far apart in an archive. Measured on five real trees of 442 to 823 MB,
#: pieces of 64 KiB put the estimate 9% to 34% above what pack stored; pieces of 512 KiB, taking the same share
#: of the data, -1% to +7%, and 22% on a tree of archives.
SAMPLE_PIECE = 512 * 1024
#: The stride does not stay below this many pieces while there are more than ``2 * MIN_PIECES`` strata: the
#: sample is 1/64 of the data (a piece every 32 MiB), at least 16 pieces of a smaller tree (all of a tiny one).
SAMPLE_SHARE = 64
MIN_PIECES = 16
#: The most a sample reads by default: 128 to 256 strata of a very large tree, and a bounded sample keeps what a
#: plan of 80 TB reads as small as for 8 GB.
SAMPLE_MAX = 128 * 2**20

#: BLAKE3's cost is the same on any bytes: timing it on one piece in eight is enough, and saves hashing the rest.
HASH_TIMED_EVERY = 8


@dataclass
class _Piece:
    """What is read for one or more strata: ``(path, offset, length)`` reads, concatenated; then its result."""

    strata: list[int]
    reads: list[tuple[bytes, int, int]]
    #: Bytes the reads will give (a group of small files grows until it holds a piece).
    planned: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    stored: bool = False
    unreadable: int = 0
    compress_seconds: float = 0.0
    hash_seconds: float = 0.0
    hashed_bytes: int = 0


@dataclass
class Sample:
    """The finished sample: a stored ratio per stratum, and what reading and encoding it took."""

    data_bytes: int
    stride: int
    ratios: list[float | None]
    stored: list[bool]
    #: Bytes of the source read (a byte two pieces share counts once), and bytes compressed (it counts twice).
    bytes_read: int = 0
    encoded_bytes: int = 0
    stored_bytes: int = 0
    pieces: int = 0
    #: Distinct files read (a large file gives several pieces) and files that could not be.
    files: int = 0
    unreadable: int = 0
    #: CPU seconds pack's compression took over the pieces, and BLAKE3 over ``hashed_bytes`` of them.
    compress_seconds: float = 0.0
    hash_seconds: float = 0.0
    hashed_bytes: int = 0
    _last: tuple[float, bool] = field(default=(1.0, True), repr=False)

    @property
    def hash_cost(self) -> float:
        """CPU seconds BLAKE3 takes a byte."""
        return max(self.hash_seconds, 1e-9) / self.hashed_bytes if self.hashed_bytes else 0.0

    @property
    def encode_cost(self) -> float:
        """CPU seconds pack's encoder takes a byte of data: compression, and BLAKE3 over the raw and the stored
        chunk (pack.encode)."""
        if not self.encoded_bytes:
            return 0.0
        spent = self.compress_seconds + self.hash_cost * (self.encoded_bytes + self.stored_bytes)
        return spent / self.encoded_bytes

    def estimate(self, start: int, length: int) -> tuple[float, bool]:
        """Estimated stored bytes of the data ``[start, start + length)``, and whether every stratum it touches
        was stored rather than compressed. A stratum without a piece (a hard link's bytes, a file that could not be
        read) takes the ratio of the one before it."""
        count = len(self.ratios)
        if not count or length <= 0:
            return float(length), True
        first = min(start // self.stride, count - 1)
        last = min((start + length - 1) // self.stride, count - 1)
        estimate, stored = 0.0, True
        for k in range(first, last + 1):
            ratio = self.ratios[k]
            if ratio is None:
                ratio, stored_k = self._last
            else:
                stored_k = self.stored[k]
                self._last = (ratio, stored_k)
            overlap = min(start + length, (k + 1) * self.stride) - max(start, k * self.stride)
            estimate += max(overlap, 0) * ratio
            stored = stored and stored_k
        return estimate, stored


class StreamSampler:
    """Takes the sample as the walk streams the files by: :meth:`add` each file with data, :meth:`skip` a hard
    link's bytes, then :meth:`finish`.

    During the walk a piece is only noted (which files, where); :meth:`finish` reads the pieces that survived
    every doubling and compresses them on a thread per core. Reading them during the walk would read pieces the
    doublings then drop. Measured on two cores: a thread beside the walk that reads pieces costs the walk more in
    handing the interpreter's lock back and forth (at every read of a small file) than it saves; one that only
    compresses pieces the walk's thread reads saved 0.005 s of 0.25 on a tree of 50,000 files, not worth a
    thread's bookkeeping.

    :attr:`next_position` is where the next stratum starts: a file that ends before it, with no group of small
    files open (:attr:`collecting`), need not be shown to :meth:`add` at all. That is what keeps the sample's
    cost per file near nothing on a tree of a million small files.
    """

    def __init__(self, source: Source, chunk_size: int, level: int, max_bytes: int = SAMPLE_MAX) -> None:
        self.source = source
        self.chunk_size = chunk_size
        self.level = level
        self.max_pieces = max(1, max_bytes // SAMPLE_PIECE)
        #: Strata are ``step`` pieces long: stratum k starts at grid point ``k * step``, at byte
        #: ``k * step * SAMPLE_PIECE`` of the stream.
        self.step = 1
        #: The grid point where the next stratum starts, and its byte.
        self.next_point = 0
        self.next_position = 0
        self.collecting = False
        self._group: _Piece | None = None
        #: The pieces of the strata kept so far, by grid point (a group of small files may serve several).
        self._pieces: dict[int, _Piece] = {}

    def add(self, path: bytes, start: int, size: int) -> None:
        """The file ``path`` (relative to the root) holds the data ``[start, start + size)``, ``size`` > 0."""
        end = start + size
        joined: _Piece | None = None
        group = self._group
        if group is not None:
            if is_large(size, self.chunk_size):
                self._close_group()
            else:
                length = min(size, SAMPLE_PIECE - group.planned)
                group.reads.append((path, 0, length))
                group.planned += length
                joined = group
        while self.next_position < end:
            point = self.next_point
            if size > SAMPLE_PIECE:
                offset = min(self.next_position - start, size - SAMPLE_PIECE)
                self._pieces[point] = _Piece([point], [(path, offset, SAMPLE_PIECE)], SAMPLE_PIECE)
            elif joined is not None:
                joined.strata.append(point)
                self._pieces[point] = joined
            else:
                self._group = joined = _Piece([point], [(path, 0, size)], size)
                self._pieces[point] = joined
                self.collecting = True
            self._advance()
        if self._group is not None and self._group.planned >= SAMPLE_PIECE:
            self._close_group()

    def skip(self, end: int) -> None:
        """Data up to ``end`` that is not read: a hard link's bytes. Strata starting there get no piece."""
        while self.next_position < end:
            self._advance()

    def _advance(self) -> None:
        """On to the next stratum, doubling the stride (and dropping every other stratum) when there are too many:
        more than ``max_pieces``, or more than ``2 * MIN_PIECES`` while the stride is below 1/SAMPLE_SHARE."""
        self.next_point += self.step
        strata = self.next_point // self.step
        while strata > self.max_pieces or (strata > 2 * MIN_PIECES and self.step < SAMPLE_SHARE):
            self.step *= 2
            strata = -(-self.next_point // self.step)
            for point in [p for p in self._pieces if p % self.step]:
                del self._pieces[point]
            if self._group is not None and not any(p in self._pieces for p in self._group.strata):
                self._close_group()
        # The next stratum starts at the next multiple of the (maybe doubled) step.
        self.next_point = -(-self.next_point // self.step) * self.step
        self.next_position = self.next_point * SAMPLE_PIECE

    def _close_group(self) -> None:
        self._group = None
        self.collecting = False

    def finish(self, data_bytes: int, threads: int = 0) -> Sample:
        """Read and encode the pieces kept (on ``threads`` threads, 0 for one per core): the sample of the
        ``data_bytes`` the walk streamed."""
        self._close_group()
        kept = sorted({id(piece): piece for piece in self._pieces.values()}.values(), key=lambda p: p.strata[0])
        workers = min(threads or os.cpu_count() or 1, max(len(kept), 1))
        if workers == 1:
            for number, piece in enumerate(kept):
                _encode(piece, self._load(piece), number % HASH_TIMED_EVERY == 0, self.level)
            return self._sample(kept, data_bytes)
        # This thread reads the pieces while the pool compresses the ones read; a few in flight bound the memory.
        with ThreadPoolExecutor(workers, thread_name_prefix="sneakernet-sample") as pool:
            in_flight: deque[Future[None]] = deque()
            for number, piece in enumerate(kept):
                data = self._load(piece)
                in_flight.append(pool.submit(_encode, piece, data, number % HASH_TIMED_EVERY == 0, self.level))
                if len(in_flight) > 2 * workers:
                    in_flight.popleft().result()
            for done in in_flight:
                done.result()
        return self._sample(kept, data_bytes)

    def _load(self, piece: _Piece) -> bytes:
        return b"".join(self._read(path, offset, length, piece) for path, offset, length in piece.reads)

    def _read(self, path: bytes, offset: int, size: int, piece: _Piece) -> bytes:
        """Up to ``size`` bytes at ``offset``; nothing from a file that cannot be read (pack reports those)."""
        try:
            file = self.source.open(path)
        except OSError:
            piece.unreadable += 1
            return b""
        try:
            return file.read_at(offset, size)
        except OSError:
            piece.unreadable += 1
            return b""
        finally:
            file.close()

    def _sample(self, kept: list[_Piece], data_bytes: int) -> Sample:
        stride = self.step * SAMPLE_PIECE
        count = -(-data_bytes // stride)
        sample = Sample(data_bytes, stride, [None] * count, [False] * count)
        # What each file gave the pieces: a small file may open one piece and end the one before it.
        spans: dict[bytes, list[tuple[int, int]]] = {}
        for piece in kept:
            sample.unreadable += piece.unreadable
            if not piece.raw_bytes:
                continue
            for point in piece.strata:
                stratum = point // self.step
                if point % self.step == 0 and stratum < count:
                    sample.ratios[stratum] = piece.stored_bytes / piece.raw_bytes
                    sample.stored[stratum] = piece.stored
            sample.pieces += 1
            sample.encoded_bytes += piece.raw_bytes
            sample.stored_bytes += piece.stored_bytes
            sample.compress_seconds += piece.compress_seconds
            sample.hash_seconds += piece.hash_seconds
            sample.hashed_bytes += piece.hashed_bytes
            for path, offset, length in piece.reads:
                spans.setdefault(path, []).append((offset, offset + length))
        sample.files = len(spans)
        # Asked-for ranges, so at most what was compressed (a file may have been shorter than the walk saw).
        sample.bytes_read = min(sample.encoded_bytes, sum(_covered(ranges) for ranges in spans.values()))
        return sample


def _covered(ranges: list[tuple[int, int]]) -> int:
    """Bytes the ``[start, end)`` ranges cover together."""
    total, reach = 0, -1
    for start, end in sorted(ranges):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _encode(piece: _Piece, data: bytes, timed_hash: bool, level: int) -> None:
    """Compress a piece's bytes as pack's encoder would and note the result on it, with the CPU time taken (thread
    time: other threads run beside); ``timed_hash``: time BLAKE3 over them too."""
    if not data:
        return
    started = time.thread_time()
    method, stored = ChunkCodec(level).encode(data)
    piece.compress_seconds = time.thread_time() - started
    if timed_hash:
        started = time.thread_time()
        blake3.blake3(data)
        piece.hash_seconds = time.thread_time() - started
        piece.hashed_bytes = len(data)
    piece.raw_bytes = len(data)
    piece.stored_bytes = len(stored)
    piece.stored = method == METHOD_STORE


__all__ = ["SAMPLE_MAX", "SAMPLE_PIECE", "Sample", "StreamSampler"]
