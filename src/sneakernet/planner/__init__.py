"""Planning a shipment before packing it: ``sneakernet.plan()``.

How many drives, how full each one, how long packing takes, and how long the same bytes would take over a
network link. The plan walks the source once, as pack's scan walks it (``Source.walk_stats``: for a directory
:func:`sneakernet.io.source.walk_stats`), and reads a small, bounded, deterministic sample of its data through
the same :class:`~sneakernet.io.source.Source`, never the whole of it:

- **the walk** (walk.py): the totals pack's scan gives; it cuts the data into pack's chunks by size alone
  (grouped as :class:`~sneakernet.chunks.chunker.Chunker` groups them) and notes them, with the records between them,
  as events in a spool.
- **the sample** (sample.py): the data, seen as one stream of bytes in walk order, is cut into strata, each
  represented by a 64 KiB piece compressed as pack compresses chunks; the pieces are noted during the walk and
  read and compressed after it.
- **the fill** (estimate.py): after the walk each chunk, its stored size estimated from the strata it spans, is
  placed on drives with pack's space arithmetic (:class:`~sneakernet.space.budget.DriveSpace` under a
  :class:`~sneakernet.space.budget.DriveBudget` that reserves room for the catalog as pack computes it, in
  :mod:`sneakernet.space.reserve`). Manifests are estimated from record sizes (manifest.py).
- **the report** (report.py): :class:`Plan`, whose ``to_json()`` docs/plan.md documents.

It writes nothing but its temporary spool. It must not grow into a second packer: whatever pack decides, the plan
asks pack's modules (and a test holds its chunks to the chunker's).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence

from ..errors import UsageError
from ..io.remote import is_url, open_source
from ..io.source import Source, check_source
from ..options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_SIZE, PackOptions
from ..parity.matrix import MAX_ROWS
from ..patterns import Excluder
from ..space.budget import DriveBudget, default_reserve
from ..space.reserve import catalog_reservation, data_room, holds, sealed_catalog_reservation
from ..units import Link, counted, format_size, parse_rate
from .durations import StepTimes, step_times
from .estimate import EstimatedFill, place
from .parity import parity_plan
from .report import DriveFill, LinkTime, Plan, filesystem_room, pack_seconds_estimate
from .sample import SAMPLE_MAX, Sample, StreamSampler
from .walk import EventSpool, Walk

#: The links a plan compares with when none is given: an office line, a data-centre port, a fast backbone.
DEFAULT_LINKS = ("100Mbit", "1Gbit", "10Gbit")


def plan(
    source: str | os.PathLike[str] | Source,
    *,
    drive_size: int | None,
    drives: int | None = None,
    links: Sequence[str | Link] = DEFAULT_LINKS,
    level: int = DEFAULT_LEVEL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    excludes: Sequence[str] = (),
    reserve: int | None = None,
    threads: int = 0,
    rate: str | Link | None = None,
    sample_bytes: int | None = None,
    at_once: int = 1,
    drive_speed: str | Link | None = None,
    parity: int = 0,
    encrypted: bool = False,
) -> Plan:
    """Plan packing ``source`` (a directory, or a :class:`~sneakernet.io.source.Source` as pack takes) onto drives
    of ``drive_size`` bytes, as ``pack(source, out=..., drive_size=..., options=PackOptions(...))`` with the same
    options would pack it.

    Reads the metadata and a sample of at most ``sample_bytes`` (default: :func:`default_sample_bytes`). With
    ``drives``, says whether that many drives suffice. ``rate`` (such as ``"200MB/s"``, or a :class:`Link`)
    replaces the pack rate measured on the sample. With ``drive_speed`` (one drive's rate, such as ``"250MB/s"``),
    the plan says how long pack, verify and restore take with ``at_once`` drives at once (durations.py). With
    ``parity`` M, it says what pack --parity M adds: the parity drives, their size and the room they need
    (parity.py). With ``encrypted``, as pack --encrypt-to packs it (docs/format.md 19.8: each chunk's tag, the
    sealed index beside each manifest, the sealed catalog beside the public one). Raises
    :class:`UsageError`, :class:`SourceError` or :class:`DestinationError` for what pack would refuse up front.
    """
    started = time.monotonic()
    if drive_size is None:
        raise UsageError("plan needs --drive-size, the size of the drives the shipment will go on")
    if drive_size <= 0:
        raise UsageError("drive size must be above zero")
    if drives is not None and drives < 1:
        raise UsageError(f"--drives must be at least 1, not {drives}")
    options = PackOptions(
        chunk_size=chunk_size, segment_size=segment_size, level=level, reserve=reserve, excludes=tuple(excludes),
        threads=threads,
    )  # fmt: skip
    options.check()
    if at_once < 1:
        raise UsageError(f"--at-once must be at least 1, not {at_once}")
    if not 0 <= parity <= MAX_ROWS:
        raise UsageError(f"--parity is 0 to {MAX_ROWS} parity drives, not {parity}")
    if at_once > 1 and drive_speed is None:
        raise UsageError("--at-once goes with --drive-speed RATE, how fast one drive writes (e.g. 250MB/s)")
    speed = drive_speed if isinstance(drive_speed, Link) or drive_speed is None else parse_rate(drive_speed)
    parsed_links = [link if isinstance(link, Link) else parse_rate(link) for link in links]
    override = rate if isinstance(rate, Link) or rate is None else parse_rate(rate)
    kept = reserve if reserve is not None else default_reserve(drive_size)
    capacity = drive_size - kept
    if isinstance(source, str | os.PathLike) and not is_url(source):
        check_source(source)
    tree = open_source(source)
    sampler = StreamSampler(tree, chunk_size, level, max_bytes=SAMPLE_MAX if sample_bytes is None else sample_bytes)
    events = EventSpool()
    try:
        # What pack leaves out of a restored tree, plan leaves out too (io/source.py restore_record_excludes).
        excludes = options.excludes + tree.restore_record_excludes()
        walked = Walk(tree, sampler, events, chunk_size).run(Excluder(excludes) if excludes else None)
        sample = sampler.finish(walked.stream_bytes, threads)
        totals = walked.totals
        catalog_size = catalog_reservation(totals.catalog_entry_bytes, totals.unique_bytes, [capacity], options)
        if encrypted:
            catalog_size = sealed_catalog_reservation(catalog_size)
        estimated = EstimatedFill(DriveBudget(capacity, catalog_size), segment_size, drive_size, encrypted)
        worst = EstimatedFill(DriveBudget(capacity, catalog_size), segment_size, drive_size, encrypted)
        stored_bytes = place(events, sample, (estimated, worst), chunk_size)
    finally:
        events.close()
    accepted = None
    if drives is not None:
        # pack --drive refuses, before writing, drives that together cannot hold the data uncompressed.
        accepted = holds(drives * data_room(capacity, catalog_size), totals.unique_bytes)
    if override is None:
        pack_seconds = pack_seconds_estimate(sample, walked.raw_bytes, walked.files, threads)
    else:
        pack_seconds = walked.raw_bytes / override.bytes_per_second
    result = Plan(
        source=os.fsdecode(tree.root),
        drive_size=drive_size,
        reserve=kept,
        capacity=capacity,
        chunk_size=chunk_size,
        segment_size=segment_size,
        level=level,
        files=walked.files,
        dirs=totals.dirs,
        symlinks=totals.symlinks,
        hardlinks=walked.hardlinks,
        data_bytes=walked.raw_bytes,
        excluded_entries=totals.excluded_entries,
        excluded_bytes=totals.excluded_bytes,
        specials=len(totals.specials),
        unreadable=len(totals.unreadable),
        catalog_bound=catalog_size,
        stored_bytes=stored_bytes,
        drives=estimated.drives,
        drives_if_nothing_compresses=len(worst.drives),
        drives_given=drives,
        drives_given_accepted=accepted,
        sample_bytes=sample.bytes_read,
        sample_pieces=sample.pieces,
        sample_files=sample.files,
        pack_seconds=pack_seconds,
        pack_rate=walked.raw_bytes / pack_seconds if pack_seconds > 0 else 0.0,
        pack_rate_measured=override is None,
        threads=min(threads or os.cpu_count() or 1, os.cpu_count() or 1),
        links=[LinkTime(link, walked.raw_bytes / link.bytes_per_second) for link in parsed_links],
        encrypted=encrypted,
    )
    if speed is not None:
        full = max((drive.stored_bytes for drive in estimated.drives), default=0)
        result.at_once = step_times(
            stored_bytes, len(estimated.drives), full, totals.entries, at_once, speed.bytes_per_second, pack_seconds
        )
    if parity:
        result.parity = parity_plan(
            parity, [(d.stored_bytes, d.used_bytes) for d in estimated.drives], capacity, catalog_size
        )
    result.notes.extend(_notes(result, sample))
    result.seconds = time.monotonic() - started
    return result


def _notes(result: Plan, sample: Sample) -> Iterator[str]:
    if result.unreadable:
        unreadable = counted(result.unreadable, "entry", "entries")
        yield f"{unreadable} cannot be read: pack refuses them unless --skip-unreadable"
    if result.specials:
        specials = counted(result.specials, "special file", "special files")
        yield f"{specials} (FIFO, socket, device) will be skipped, as pack does"
    if sample.unreadable:
        yield (
            f"{counted(sample.unreadable, 'file', 'files')} could not be read for the sample; "
            "the data around them was estimated alike"
        )
    if result.drives_given_accepted is False and result.drives_given is not None:
        refusal = (
            f"pack --drive refuses {counted(result.drives_given, 'drive', 'drives')} of "
            f"{format_size(result.drive_size)} up front: it wants room for all the data uncompressed "
            "(pack --out has no such check)"
        )
        if result.drives_suffice:
            # Rounded up, so that the ratio given accepts what this estimate says fits.
            ratio = math.ceil(result.ratio * 100) / 100
            refusal += (
                f"; with --assume-ratio {ratio:.2f} (this estimate) it accepts them, and should they run out it stops "
                "with exit code 4 and --resume with one more --drive goes on"
            )
        yield refusal


__all__ = ["DEFAULT_LINKS", "DriveFill", "LinkTime", "Plan", "StepTimes", "filesystem_room", "plan"]
