"""What plan --parity M says about the parity drives pack --parity M would write (docs/plan.md, Parity).

Pure arithmetic over the planned data drives (docs/format.md 19.7.1-19.7.5): the groups, each parity drive's stored
bytes (the group's stripes times the block), what else it holds (its manifest's per-block records, the covered copies
of the data drives' manifests, the catalog), and the local room the parity takes while it adds up during the pack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..parity.layout import BLOCK_SIZE, groups, stripe_count

#: Bytes a parity drive's manifest takes per stripe: a ``pblock`` record (its stripe number and a BLAKE3 in hex,
#: about 90 bytes of JSON) compressed by zstd; hex digests barely compress, so a bound, not a guess.
PBLOCK_RECORD_BYTES = 96


@dataclass(frozen=True)
class ParityPlan:
    """pack --parity M over the planned data drives: groups, parity drives, their sizes, and the room they need."""

    parity: int
    data_drives: int
    groups: int
    #: The parity bytes of the largest group's parity drives (stripes times the 4 MiB block).
    stored_bytes: int
    #: What such a parity drive takes at most on disk: its parity, manifest, covered copies and catalog.
    used_bytes: int
    #: Whether that fits the drive size planned (the data drives' capacity).
    fits: bool
    #: Local bytes the parity takes while the data drives are written (pack --parity-dir, or OUT with --out).
    accumulate_bytes: int

    @property
    def parity_drives(self) -> int:
        return self.parity * self.groups

    @property
    def drives_total(self) -> int:
        return self.data_drives + self.parity_drives

    def to_json(self) -> dict[str, Any]:
        return {
            "parity": self.parity,
            "data_drives": self.data_drives,
            "groups": self.groups,
            "parity_drives": self.parity_drives,
            "drives_total": self.drives_total,
            "parity_drive_stored_bytes": self.stored_bytes,
            "parity_drive_used_bytes": self.used_bytes,
            "parity_drive_fits": self.fits,
            "accumulate_bytes": self.accumulate_bytes,
            "survives_lost_drives": self.parity,
        }


def parity_plan(parity: int, drives: Sequence[tuple[int, int]], capacity: int, catalog_bound: int) -> ParityPlan:
    """The parity drives of ``parity`` per group over the planned ``drives`` (each its stored bytes and the bytes
    it takes on disk at most; of ``capacity`` bytes each)."""
    parts = groups(len(drives))
    stored = 0
    used = 0
    for part in parts:
        members = [drives[number - 1] for number in part]
        stripes = stripe_count((chunks for chunks, _ in members), BLOCK_SIZE)
        # Covered copies: each data drive's manifest (its records; what it takes beyond its chunks, catalog included,
        # bounds it) and drive.json.
        covered = sum(max(on_disk - chunks, 0) for chunks, on_disk in members)
        stored = max(stored, stripes * BLOCK_SIZE)
        used = max(used, stripes * BLOCK_SIZE + stripes * PBLOCK_RECORD_BYTES + covered + catalog_bound)
    # pack adds up one group's rows at a time in the same pass only while there is one group (19.10).
    accumulate = parity * max((chunks for chunks, _ in drives), default=0) if len(parts) == 1 else 0
    return ParityPlan(parity, len(drives), len(parts), stored, used, used <= capacity, accumulate)
