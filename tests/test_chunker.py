"""chunks/chunker.py: how the bytes of a stream of files are cut into chunks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.chunks.chunker import Chunker, is_large, plan_chunks
from sneakernet.chunks.stream import RawChunk, Slice


@st.composite
def files_and_chunk_size(draw: st.DrawFn) -> tuple[list[int], int]:
    chunk_size = draw(st.integers(min_value=1, max_value=64 * 1024))
    size = st.one_of(
        st.just(0),
        st.integers(min_value=1, max_value=chunk_size),
        st.integers(min_value=chunk_size - 1, max_value=chunk_size + 1).filter(lambda n: n >= 0),
        st.integers(min_value=0, max_value=4 * chunk_size),
    )
    return draw(st.lists(size, max_size=60)), chunk_size


def plan(sizes: list[int], chunk_size: int) -> list[RawChunk]:
    return list(plan_chunks(sizes, chunk_size))


@settings(max_examples=200, deadline=None)
@given(files_and_chunk_size())
def test_plan_chunks_invariants(case: tuple[list[int], int]) -> None:
    sizes, chunk_size = case
    chunks = plan(sizes, chunk_size)

    # ids are 0 .. n-1, in order
    assert [c.id for c in chunks] == list(range(len(chunks)))

    by_file: dict[int, list[Slice]] = {}
    for chunk in chunks:
        assert chunk.slices, "no chunk is empty"
        assert 0 < len(chunk.data) <= chunk_size
        assert len(chunk.data) == sum(s.length for s in chunk.slices)
        # the slices tile the chunk [0, len) in order
        at = 0
        for piece in chunk.slices:
            assert piece.chunk_offset == at
            assert piece.length > 0
            at += piece.length
        assert at == len(chunk.data)
        # files appear in their order within a chunk, each at most once
        indexes = [s.file_index for s in chunk.slices]
        assert indexes == sorted(set(indexes))
        files = set(indexes)
        if len(files) > 1:
            # a shared chunk holds only small files, each whole
            for piece in chunk.slices:
                assert not is_large(sizes[piece.file_index], chunk_size)
                assert piece.file_offset == 0
                assert piece.length == sizes[piece.file_index]
        for piece in chunk.slices:
            by_file.setdefault(piece.file_index, []).append(piece)

    # every byte of every file exactly once, in order
    for index, size in enumerate(sizes):
        pieces = by_file.get(index, [])
        if size == 0:
            assert pieces == [], "empty files appear in no chunk"
            continue
        at = 0
        for piece in pieces:
            assert piece.file_offset == at
            at += piece.length
        assert at == size
        if size < chunk_size:
            assert len(pieces) == 1, "a small file is never split"
        else:
            # a large file is cut into full chunks of its own, the last one shorter
            assert [p.length for p in pieces] == [chunk_size] * (size // chunk_size) + (
                [size % chunk_size] if size % chunk_size else []
            )
            assert all(p.chunk_offset == 0 for p in pieces)
    assert set(by_file) == {i for i, size in enumerate(sizes) if size}

    # the chunks follow the files' order
    order = [s.file_index for c in chunks for s in c.slices]
    assert order == sorted(order)

    # deterministic
    assert plan(sizes, chunk_size) == chunks


@settings(max_examples=200, deadline=None)
@given(files_and_chunk_size())
def test_large_files_never_share_a_chunk(case: tuple[list[int], int]) -> None:
    sizes, chunk_size = case
    for chunk in plan(sizes, chunk_size):
        files = {s.file_index for s in chunk.slices}
        if any(is_large(sizes[i], chunk_size) for i in files):
            assert len(files) == 1
            assert len(chunk.slices) == 1


@settings(max_examples=200, deadline=None)
@given(files_and_chunk_size())
def test_groups_are_as_full_as_they_can_be(case: tuple[list[int], int]) -> None:
    # A group closes only when the next small file does not fit, or a large file (or the end) comes.
    sizes, chunk_size = case
    chunks = plan(sizes, chunk_size)
    for chunk, following in itertools.pairwise(chunks):
        first_next = following.slices[0].file_index
        if is_large(sizes[chunk.slices[-1].file_index], chunk_size) or is_large(sizes[first_next], chunk_size):
            continue
        # the next chunk starts with a small file: it did not fit in this one
        assert len(chunk.data) + sizes[first_next] > chunk_size


@settings(max_examples=100, deadline=None)
@given(files_and_chunk_size())
def test_large_file_chunks_do_not_depend_on_their_neighbours(case: tuple[list[int], int]) -> None:
    sizes, chunk_size = case
    big = 3 * chunk_size + 1
    alone = [c.data for c in plan([big], chunk_size)]
    among = [c.data for c in plan([*sizes, big, *sizes], chunk_size) if c.slices[0].file_index == len(sizes)]
    assert among == alone
    assert [len(d) for d in alone] == [chunk_size] * 3 + [1]


def test_plan_chunks_example() -> None:
    chunks = plan([3, 0, 4, 10, 2, 2, 9], chunk_size=8)
    assert [(c.id, len(c.data), c.slices) for c in chunks] == [
        (0, 7, [Slice(0, 0, 0, 3), Slice(2, 0, 3, 4)]),
        (1, 8, [Slice(3, 0, 0, 8)]),
        (2, 2, [Slice(3, 8, 0, 2)]),
        (3, 4, [Slice(4, 0, 0, 2), Slice(5, 0, 2, 2)]),
        (4, 8, [Slice(6, 0, 0, 8)]),
        (5, 1, [Slice(6, 8, 0, 1)]),
    ]


def test_is_large() -> None:
    assert not is_large(7, 8)
    assert is_large(8, 8)
    assert is_large(9, 8)
    assert not is_large(0, 1)


def test_chunker_carries_the_bytes() -> None:
    chunker = Chunker(10, next_id=5)
    assert chunker.add_small(0, b"abc") == []
    assert chunker.add_small(1, b"defg") == []
    closed = chunker.add_small(2, b"hijk")
    assert closed == [RawChunk(5, b"abcdefg", [Slice(0, 0, 0, 3), Slice(1, 0, 3, 4)])]
    assert chunker.close_group() == [RawChunk(6, b"hijk", [Slice(2, 0, 0, 4)])]
    assert chunker.close_group() == []
    assert chunker.add_large_piece(3, 20, b"0123456789") == [RawChunk(7, b"0123456789", [Slice(3, 20, 0, 10)])]
    assert chunker.next_id == 8


def test_group_exactly_full_stays_open_until_the_next_file() -> None:
    chunker = Chunker(4)
    assert chunker.add_small(0, b"ab") == []
    assert chunker.add_small(1, b"cd") == []
    assert chunker.add_small(2, b"e") == [RawChunk(0, b"abcd", [Slice(0, 0, 0, 2), Slice(1, 0, 2, 2)])]


def test_chunker_refusals() -> None:
    chunker = Chunker(4)
    with pytest.raises(ValueError, match="a small file must fit in one chunk"):
        chunker.add_small(0, b"12345")
    with pytest.raises(ValueError, match="a piece must fit in one chunk"):
        chunker.add_large_piece(0, 0, b"12345")
    chunker.add_small(1, b"ab")
    with pytest.raises(ValueError, match="after the group was closed"):
        chunker.add_large_piece(2, 0, b"1234")
