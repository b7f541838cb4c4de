"""The chunk pipeline: a bounded read-ahead on a thread of its own (:func:`read_ahead`), chunks encoded on a pool
of threads and handed on in stream order (:func:`encode_in_order`), and the encoding of one chunk (:func:`encode`).

No file I/O: the stream's items come from the caller, which also consumes what comes out.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import blake3

from .codec import ChunkCodec
from .stream import EncodedChunk, RawChunk

#: Items handed from the reading thread at a time: a chunk ends a batch, so each holds at most one chunk.
READ_BATCH = 256
_END: Any = object()


def read_ahead(items: Iterator[Any], batches: int) -> Generator[Any, None, None]:
    """``items``, produced on a thread of its own at most ``batches`` batches ahead (each with one chunk at most).

    Reading and whole-file hashing then overlap with encoding and writing. An exception in the producer is raised
    here; when the consumer stops early, the producer stops too and closes the generator.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=batches)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch: list[Any] = []
        try:
            for item in items:
                batch.append(item)
                if (isinstance(item, RawChunk) or len(batch) >= READ_BATCH) and not put(batch):
                    return
                if isinstance(item, RawChunk) or len(batch) >= READ_BATCH:
                    batch = []
            if put(batch):
                put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
        finally:
            if stop.is_set():
                items.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=produce, name="sneakernet-read", daemon=True)
    thread.start()
    try:
        while (got := handoff.get()) is not _END:
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        stop.set()
        thread.join()


def encode_in_order(
    items: Iterator[Any], encoder: Callable[[RawChunk], EncodedChunk], workers: int, in_flight: int | None = None
) -> Iterator[tuple[Any, EncodedChunk | None]]:
    """Each item of the stream in order, a :class:`RawChunk` with its encoding (``encoder`` run on a pool of
    ``workers`` threads), anything else with None.

    Three stages overlap: a thread produces ``items`` (:func:`read_ahead`), the pool encodes, and the caller
    consumes; at most a few chunks per worker are in flight, so memory stays flat. ``in_flight`` caps the chunks
    being encoded or waiting to be consumed, with one read ahead (a lane among many: their memory adds up).
    """
    window: deque[tuple[Any, Future[EncodedChunk] | None]] = deque()
    # Enough chunks in flight to keep every worker busy while the writer waits on the oldest one. Chunks are
    # counted, not items: a chunk of small files comes with a record for each file, and counting those would
    # leave one chunk in flight at a time (measured: the encode pool idle half the time on 400 KB images).
    limit = in_flight or workers + 2
    batches = 1 if in_flight else limit
    encoding = 0
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sneakernet-encode") as pool,
        contextlib.closing(read_ahead(items, batches)) as ahead,
    ):
        for item in ahead:
            if isinstance(item, RawChunk):
                window.append((item, pool.submit(encoder, item)))
                encoding += 1
            else:
                window.append((item, None))
            while encoding > limit or (window and window[0][1] is None):
                done, future = window.popleft()
                encoding -= future is not None
                yield done, None if future is None else future.result()
        while window:
            done, future = window.popleft()
            yield done, None if future is None else future.result()


def encode(chunk: RawChunk, codec: ChunkCodec) -> EncodedChunk:
    """Compress (or store) and hash one chunk, and the small files of a group; runs on the pool."""
    method, stored = codec.encode(chunk.data)
    files: dict[int, str] = {}
    if chunk.group:
        view = memoryview(chunk.data)
        for piece in chunk.slices:
            files[piece.file_index] = blake3.blake3(
                view[piece.chunk_offset : piece.chunk_offset + piece.length]
            ).hexdigest()
    encoded = EncodedChunk(
        id=chunk.id,
        stored=stored,
        method=method,
        raw_size=len(chunk.data),
        # A frame to be sealed is hashed by the writer once sealed: its own hash would go unused.
        stored_blake3="" if codec.sealed else blake3.blake3(stored).hexdigest(),
        raw_blake3=blake3.blake3(chunk.data).hexdigest(),
        file_blake3=files,
        overhead=codec.stored_size(len(stored)) - len(stored),
    )
    # The writer needs only the slices from here on: let the raw bytes go while the chunk waits its turn.
    chunk.data = b""
    return encoded
