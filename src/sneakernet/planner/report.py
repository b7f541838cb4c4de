"""What a plan reports: the drives planned, the link times, what each filesystem leaves of a drive, and how long
pack takes; ``Plan.to_json()`` is the schema documented in docs/plan.md."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..output import SCHEMA_VERSION
from ..units import Link
from .durations import StepTimes

if TYPE_CHECKING:
    from .parity import ParityPlan
from .sample import Sample


@dataclass(frozen=True)
class DriveFill:
    """One planned drive: its chunk bytes, the raw bytes they hold, its segments, and the bytes its directory
    takes on disk at most (chunks, manifest, catalog, drive.json, B3SUMS and allocation slack)."""

    drive: int
    stored_bytes: int
    raw_bytes: int
    segments: int
    used_bytes: int
    fill: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "fill": round(self.fill, 4)}


@dataclass(frozen=True)
class LinkTime:
    link: Link
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "link": self.link.label,
            "bits_per_second": round(self.link.bits_per_second),
            "bytes_per_second": round(self.link.bytes_per_second),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Plan:
    """What :func:`plan` found and estimates; ``to_json()`` is the schema documented in docs/plan.md."""

    source: str
    drive_size: int
    reserve: int
    capacity: int
    chunk_size: int
    segment_size: int
    level: int
    files: int
    dirs: int
    symlinks: int
    hardlinks: int
    data_bytes: int
    excluded_entries: int
    excluded_bytes: int
    specials: int
    unreadable: int
    catalog_bound: int
    stored_bytes: int
    drives: list[DriveFill]
    drives_if_nothing_compresses: int
    drives_given: int | None
    drives_given_accepted: bool | None
    sample_bytes: int
    sample_pieces: int
    sample_files: int
    #: Estimated seconds pack takes, and the rate that makes (bytes of data a second).
    pack_seconds: float
    pack_rate: float
    pack_rate_measured: bool
    threads: int
    links: list[LinkTime]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: With a drive speed: each step's time with N drives at once (plan --at-once N --drive-speed RATE).
    at_once: StepTimes | None = None
    #: With plan --parity M: the parity drives pack --parity M would write.
    parity: ParityPlan | None = None
    #: Planned as an encrypted shipment (plan --encrypt, or a profile that encrypts).
    encrypted: bool = False

    @property
    def drives_needed(self) -> int:
        return len(self.drives)

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.data_bytes if self.data_bytes else 1.0

    @property
    def drives_suffice(self) -> bool | None:
        return None if self.drives_given is None else self.drives_given >= self.drives_needed

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "files": self.files,
            "dirs": self.dirs,
            "symlinks": self.symlinks,
            "hardlinks": self.hardlinks,
            "data_bytes": self.data_bytes,
            "excluded_entries": self.excluded_entries,
            "excluded_bytes": self.excluded_bytes,
            "specials": self.specials,
            "unreadable": self.unreadable,
            "drive_size": self.drive_size,
            "reserve": self.reserve,
            "capacity": self.capacity,
            "chunk_size": self.chunk_size,
            "segment_size": self.segment_size,
            "level": self.level,
            "catalog_bound": self.catalog_bound,
            "stored_bytes": self.stored_bytes,
            "ratio": round(self.ratio, 4),
            "sample": {"bytes": self.sample_bytes, "pieces": self.sample_pieces, "files": self.sample_files},
            "drives_needed": self.drives_needed,
            "drives_if_nothing_compresses": self.drives_if_nothing_compresses,
            "drives_given": self.drives_given,
            "drives_suffice": self.drives_suffice,
            "drives_given_accepted": self.drives_given_accepted,
            "drives": [drive.to_json() for drive in self.drives],
            "pack": {
                "seconds": round(self.pack_seconds, 1),
                "rate_bytes_per_second": round(self.pack_rate),
                "measured": self.pack_rate_measured,
                "threads": self.threads,
            },
            "links": [link.to_json() for link in self.links],
            "at_once": self.at_once.to_json() if self.at_once else None,
            "parity": self.parity.to_json() if self.parity else None,
            "encrypted": self.encrypted,
            "filesystem_room": filesystem_room(self.drive_size),
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


#: What pack spends on each file besides its bytes (open, fstat, close, its records in the manifest and the
#: catalog, the hand-offs between its threads): about 25 microseconds. Measured: 100,000 small files packed at
#: 37,000 files a second, their bytes included (bench/many_files.py); 16 us a file on the Python standard library's
#: tree once its bytes are counted at the sample's rate.
PER_FILE_SECONDS = 25e-6


#: What ``df -B1`` calls Available on a freshly formatted drive, as a fraction of its label, by filesystem, at
#: labels of 100 GB, 1 TB and 8 TB. Measured with bench/drive_space.sh (sparse images, each filesystem's mkfs
#: defaults: e2fsprogs 1.47.0, exfatprogs 1.2.0, xfsprogs 6.1.0, ntfs-3g 2022.10.3 with mkfs.ntfs -f; Linux 6.18).
#: ext4 keeps 5% of its blocks for root unless formatted with ``-m 0``.
FILESYSTEM_ROOM: dict[str, tuple[float, float, float]] = {
    "ext4": (0.92812, 0.93313, 0.94197),
    "ext4 -m 0": (0.97812, 0.98313, 0.99197),
    "exFAT": (0.99995, 0.99997, 0.99997),
    "NTFS": (0.99929, 0.99990, 0.99996),
    "XFS": (0.99202, 0.99251, 0.99276),
}
_ROOM_AT = (1e11, 1e12, 8e12)


def filesystem_room(label: int) -> dict[str, int]:
    """Bytes a drive labelled ``label`` bytes leaves for files, by filesystem: :data:`FILESYSTEM_ROOM`'s fractions,
    interpolated between the measured labels on a log scale and held at the ends."""
    at = min(max(math.log(label), math.log(_ROOM_AT[0])), math.log(_ROOM_AT[-1])) if label > 0 else math.log(1e11)
    logs = [math.log(size) for size in _ROOM_AT]
    room = {}
    for name, fractions in FILESYSTEM_ROOM.items():
        i = 0 if at <= logs[1] else 1
        share = (at - logs[i]) / (logs[i + 1] - logs[i])
        room[name] = int(label * (fractions[i] + share * (fractions[i + 1] - fractions[i])))
    return room


def pack_seconds_estimate(sample: Sample, data_bytes: int, files: int, threads: int) -> float:
    """Seconds pack needs for its CPU work, from the sample's timings: the encoder runs on ``threads`` threads
    (all cores for 0), and every byte is hashed once more as part of its whole file (large files on the reading
    thread, small ones on the encoding pool), no faster than the cores allow; plus :data:`PER_FILE_SECONDS` a
    file. Reading the source and writing the drives are not counted."""
    cores = os.cpu_count() or 1
    workers = min(threads or cores, cores)
    seconds = files * PER_FILE_SECONDS
    encode_cost, hash_cost = sample.encode_cost, sample.hash_cost
    if encode_cost > 0:
        seconds += data_bytes * max(encode_cost / workers, hash_cost, (encode_cost + hash_cost) / cores)
    return seconds
