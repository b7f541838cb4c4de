"""space/lanes.py: cutting a walk into lanes of similar weight (docs/format.md 19.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sneakernet.space.budget import record_bound
from sneakernet.space.lanes import LaneRange, cut_lanes, entry_weight, lane_count


def cut(weights: list[int], lanes: int) -> list[LaneRange]:
    return list(cut_lanes(iter(weights), lanes, sum(weights)))


def test_equal_entries_are_dealt_equally() -> None:
    ranges = cut([10] * 12, 3)
    assert [(r.lane, r.start, r.stop, r.weight) for r in ranges] == [(1, 0, 4, 40), (2, 4, 8, 40), (3, 8, 12, 40)]


def test_a_cut_goes_to_the_nearer_boundary() -> None:
    # The share is 50: after 40 the next entry would reach 70, 20 past it, where stopping leaves it 10 short.
    assert [(r.start, r.stop) for r in cut([40, 30, 30], 2)] == [(0, 1), (1, 3)]
    # After 45, an entry of 5 reaches the share exactly: it stays in lane 1.
    assert [(r.start, r.stop) for r in cut([45, 5, 50], 2)] == [(0, 2), (2, 3)]


def test_a_heavy_file_is_never_cut_and_leaves_later_lanes_nothing() -> None:
    ranges = cut([1000, 1, 1], 4)
    assert [(r.lane, r.start, r.stop) for r in ranges] == [(1, 0, 1), (2, 1, 2), (3, 2, 3)]
    assert [(r.lane, r.start, r.stop) for r in cut([1, 1, 1000], 4)] == [(1, 0, 2), (2, 2, 3)]


def test_one_lane_takes_everything_and_an_empty_walk_gives_none() -> None:
    assert cut([3, 4, 5], 1) == [LaneRange(1, 0, 3, 12)]
    assert cut([], 3) == []
    with pytest.raises(ValueError):
        cut([1], 0)


def test_lane_count_is_bounded_by_entries() -> None:
    assert lane_count(4, 10) == 4
    assert lane_count(4, 2) == 2
    assert lane_count(4, 0) == 1


def test_entry_weight_counts_data_at_the_ratio_and_the_record() -> None:
    assert entry_weight(10, 1000) == 1000 + record_bound(10)
    assert entry_weight(10, 1000, 0.5) == 500 + record_bound(10)
    assert entry_weight(3, 0) == record_bound(3)


@given(st.lists(st.integers(0, 10_000), max_size=200), st.integers(1, 12))
def test_lanes_cover_the_walk_in_order_and_cut_near_their_shares(weights: list[int], lanes: int) -> None:
    ranges = cut(weights, lanes)
    total = sum(weights)
    assert len(ranges) <= lanes
    assert [r.lane for r in ranges] == list(range(1, len(ranges) + 1))
    # Contiguous, none empty, every entry once.
    position = 0
    for lane in ranges:
        assert lane.start == position < lane.stop
        assert lane.weight == sum(weights[lane.start : lane.stop])
        position = lane.stop
    assert position == len(weights)
    heaviest = max(weights, default=0)
    cumulative = 0
    for lane in ranges[:-1]:
        cumulative += lane.weight
        share = total * lane.lane / lanes
        assert cumulative - share >= -heaviest / 2
        if lane.entries > 1:  # a lane of one entry may reach past its share: a file is never cut
            assert cumulative - share <= heaviest / 2
    if len(weights) >= lanes and heaviest * lanes <= total:
        # No entry above a share: every lane is there.
        assert len(ranges) == lanes
