"""chunks/pipeline.py: the read-ahead thread and the in-order encode window."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sneakernet.chunks.codec import ChunkCodec
from sneakernet.chunks.pipeline import encode, encode_in_order, read_ahead
from sneakernet.chunks.stream import EncodedChunk, RawChunk, Slice


def chunk(number: int, data: bytes = b"data") -> RawChunk:
    return RawChunk(number, data, [Slice(number, 0, 0, len(data))])


def test_read_ahead_hands_over_every_item_in_order() -> None:
    items = [chunk(n) if n % 3 == 0 else f"record {n}" for n in range(1000)]
    assert list(read_ahead(iter(items), 2)) == items


def test_read_ahead_raises_what_the_producer_raised() -> None:
    def produce() -> Iterator[object]:
        yield chunk(0)  # a chunk ends a batch: it is handed over before the error
        yield "a record"
        raise OSError(5, "Input/output error")

    got = read_ahead(produce(), 2)
    assert next(got) == chunk(0)
    with pytest.raises(OSError, match="Input/output"):
        next(got)


def test_read_ahead_stops_the_producer_when_the_consumer_stops() -> None:
    closed = threading.Event()

    def produce() -> Iterator[RawChunk]:
        try:
            for number in range(10**6):
                yield chunk(number)
        finally:
            closed.set()

    got = read_ahead(produce(), 2)
    assert next(got).id == 0
    got.close()
    assert closed.wait(10)


def test_encoded_in_stream_order_with_the_records_between() -> None:
    items: list[object] = []
    for number in range(50):
        items += [chunk(number, bytes([number]) * 1000), f"end of {number}"]
    out = list(encode_in_order(iter(items), lambda raw: encode(raw, ChunkCodec(3)), workers=4))
    assert [item for item, _ in out] == items
    for item, encoded in out:
        assert (encoded is None) == isinstance(item, str)
        if isinstance(item, RawChunk):
            assert isinstance(encoded, EncodedChunk) and encoded.id == item.id and encoded.raw_size == 1000


def test_chunks_in_flight_are_counted_not_items() -> None:
    """A chunk of small files comes with a record for each of its files: were items counted, one chunk would be
    encoded at a time. Two encodes must run at once: each waits (up to 10 s) at a barrier for the other."""
    barrier = threading.Barrier(2, timeout=10)

    def side_by_side(raw: RawChunk) -> EncodedChunk:
        if raw.id < 2:
            barrier.wait()  # BrokenBarrierError if the other never starts
        return encode(raw, ChunkCodec(1))

    items: list[object] = []
    for number in range(10):
        items += [chunk(number), *(f"file {number}.{k}" for k in range(300))]
    assert sum(encoded is not None for _, encoded in encode_in_order(iter(items), side_by_side, workers=2)) == 10


@pytest.mark.parametrize("in_flight", [1, 2, 3])
def test_in_flight_caps_the_chunks_read_but_not_yet_written(in_flight: int) -> None:
    """A lane among many keeps ``in_flight`` chunks being encoded or waiting for the writer (one more gets in before
    the window waits), one batch read ahead and the one waiting to be handed over: never more chunks out of the
    reader than that, however slow the writer (without ``in_flight``, one worker: up to 8)."""
    produced = consumed = 0
    most = 0

    def produce() -> Iterator[object]:
        nonlocal produced, most
        for number in range(40):
            produced += 1
            most = max(most, produced - consumed)
            yield chunk(number, bytes(1000))

    for _ in encode_in_order(produce(), lambda raw: encode(raw, ChunkCodec(1)), workers=1, in_flight=in_flight):
        consumed += 1
        threading.Event().wait(0.002)  # a slow writer: the reader runs as far ahead as it may
    assert consumed == 40
    assert most <= in_flight + 3
