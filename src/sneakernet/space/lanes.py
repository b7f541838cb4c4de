"""Cutting a walk into lanes (docs/format.md 19.3): L contiguous runs of entries of similar estimated stored size,
lane 1 taking the first run. Pure logic, no I/O: pack and plan feed it the same weights in walk order, so they
cut the same lanes.

An entry's weight is its estimated stored size (its data times the ratio assumed, a hard link's further name
none) plus the bound of its manifest record: a million tiny files weigh their records too, and the records are
what per-file work (an open, a read, a hash) scales with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .budget import record_bound


def entry_weight(path_length: int, data_bytes: int, ratio: float = 1.0) -> int:
    """The weight of one entry: ``data_bytes`` of data it stores (0 for a directory, a symlink, or a further name
    of a hard-linked file) times ``ratio``, plus its record's bound."""
    return int(data_bytes * ratio) + record_bound(path_length)


@dataclass(frozen=True)
class LaneRange:
    """Lane ``lane`` (1-based) takes the entries ``start`` ... ``stop - 1`` of the walk, weighing ``weight``."""

    lane: int
    start: int
    stop: int
    weight: int

    @property
    def entries(self) -> int:
        return self.stop - self.start


def lane_count(wanted: int, entries: int) -> int:
    """Lanes to cut: ``wanted``, but never more than there are entries (a lane holds at least one), at least 1."""
    return max(1, min(wanted, entries))


def cut_lanes(weights: Iterable[int], lanes: int, total: int) -> Iterator[LaneRange]:
    """Cut the walk whose entries weigh ``weights`` (in walk order, ``total`` in all) into ``lanes`` contiguous
    ranges, each ending at the entry boundary nearest to its share ``k * total / lanes`` of the cumulative weight.

    Streams: memory does not grow with the walk. Every entry falls in exactly one lane, lanes come in order, none
    is empty, and each cut lies within half the heaviest entry's weight of its share (past it when a lane's one
    entry alone reaches beyond). At most ``lanes`` ranges come:
    fewer when the walk has fewer entries, or when entries heavier than a share leave the last lanes nothing (a
    file is never cut between lanes). ``total`` is the sum of ``weights``.
    """
    if lanes < 1:
        raise ValueError("at least one lane")
    lane, start, index, cumulative, lane_weight = 1, 0, 0, 0, 0
    for weight in weights:
        boundary = total * lane / lanes
        # Close the lane before this entry when the boundary is nearer before it than after it (the lane keeps
        # at least one entry).
        if lane < lanes and index > start and cumulative + weight - boundary > boundary - cumulative:
            yield LaneRange(lane, start, index, lane_weight)
            lane, start, lane_weight = lane + 1, index, 0
        cumulative += weight
        lane_weight += weight
        index += 1
    if index > start:
        yield LaneRange(lane, start, index, lane_weight)
