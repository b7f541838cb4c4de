"""The pack's pipeline over one writer: the source read into the chunk stream on a thread, chunks encoded on a
pool, items written in order (:func:`run_pipeline`); one per pack, or one per lane in each lane's process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from functools import partial
from typing import Any

from ..chunks.codec import ChunkCodec
from ..chunks.pipeline import encode, encode_in_order
from ..chunks.stream import EncodedChunk, FileEnd
from ..io.source import Source, SourceEntry, Unreadable
from ..options import PackOptions
from ..progress import Progress
from .reader import SourceReader
from .resume import Replayed, ReplayingReader, replay
from .shipment import ShipmentWriter
from .summary import ReadTally

#: Allocations between two collections of the youngest generation while packing (Python's default is 700): the
#: objects of a file's records mostly die young by their reference counts, and each collection costs a walk.
GC_THRESHOLD = 20_000


def run_pipeline(
    source: Source,
    entries: Iterator[SourceEntry | Unreadable],
    writer: ShipmentWriter,
    options: PackOptions,
    progress: Progress,
    replayed: Iterator[Replayed] | None = None,
    hardlinks: dict[tuple[int, int], bytes] | None = None,
    codec: ChunkCodec | None = None,
    in_flight: int | None = None,
) -> tuple[ReadTally, int]:
    """Three stages that overlap: a thread reads the source (and hashes whole files), a pool encodes chunks, and
    this thread writes in order; at most a few chunks per worker are in flight, so memory stays flat.

    With ``replayed`` (a resumed pack: the records of the finished drives, and a lane's of the complete segments
    of its unfinished drive), the stream's first items are only compared with those records, without reading
    files, until they run out (the unfinished drive's are written again on it, see ShipmentWriter.keep); then
    packing goes on for real.
    ``hardlinks`` (a lane: the first names of hard-linked files met in the walk before the lane's entries) makes
    a further name of one of those a hard link to it.

    ``in_flight`` caps the chunks in flight (:func:`~sneakernet.chunks.pipeline.encode_in_order`; a lane among
    many).

    Returns what the reader counted (read once its thread has ended) and the number of chunks in the shipment.
    """
    tally = ReadTally()
    reader_class = SourceReader if replayed is None else ReplayingReader
    reader = reader_class(source, options, tally, paths=writer.paths, on_bytes=progress.advance)
    if hardlinks is not None:
        # The same dict: the lane's entries fill it as they pass the walk before the lane (lane.lane_entries).
        reader._hardlinks = hardlinks
    items, chunks = reader.items(source.ahead(entries)), 0
    if replayed is not None:
        assert isinstance(reader, ReplayingReader)
        chunks = replay(items, reader, replayed, writer.paths, writer.keep)
    files: dict[int, str] = {}
    codec = codec or ChunkCodec(options.level)  # an encrypted pack's seals each frame, in the drive writer
    # A pack makes several objects a file, and every so many the collector walks all it tracks, the imported
    # modules' functions and classes among them: frozen, they are left out of its walks until the pack ends.
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        for item, encoded in encode_in_order(items, partial(encode, codec=codec), options.workers, in_flight):
            write_item(writer, item, encoded, files)
            chunks += encoded is not None
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return tally, chunks


def write_item(writer: ShipmentWriter, item: Any, encoded: EncodedChunk | None, files: dict[int, str]) -> None:
    """Write one item of the stream; ``files`` carries the whole-file hashes of a group chunk to its files' ends,
    which follow the chunk."""
    if encoded is not None:
        writer.add_chunk(encoded, item)
        files.update(encoded.file_blake3)
    elif isinstance(item, FileEnd):
        if item.with_chunk:
            item.blake3, item.with_chunk = files.pop(item.index), False
        writer.end_file(item)
    else:
        writer.add_entry(item)
