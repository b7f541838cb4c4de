"""Resuming a pack written onto several drives at once (lanes, docs/format.md 19.3 and 19.10).

A pack of L lanes killed at any moment leaves, in each lane, finished drives (with drive.json) and at most one
unfinished drive, the one the lane was writing. ``pack --resume`` with the same command keeps all of it that can be
proven:

* the coordinating process (:func:`find_lane_drives`) reads only labels and headers: which drive is whose, in lane
  order, which drive numbers are already given (kept drives, and the next drive a finished drive's last pieces
  name), and which numbers were given out but hold nothing to keep (handed out again first, so that the finished
  shipment still numbers its drives 1 ... K without a gap);
* each lane's process (:func:`take_over_lane`) re-checks its finished drives whole, as a one-lane resume does, and
  on its unfinished drive keeps every complete segment (:class:`~sneakernet.drive.UnfinishedManifest`: the records
  through the last segment record that reads whole) whose BLAKE3 matches its record; only what follows is cleared.
  The lane then replays its source from its start (resume.py): the finished drives' records are matched, the kept
  records matched and written again into the drive's new manifest (ShipmentWriter.keep), and packing goes on for
  real on that drive, in a new segment after the kept ones.

A one-lane pack's resume keeps the complete segments of the drive it was writing the same way
(:func:`keep_next_drive`). What a resume kept and wrote again is counted (:class:`ResumeTally`) for the summary.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import blake3

from ..chunks.codec import ChunkCodec
from ..drive import DriveReader, UnfinishedManifest
from ..drive.files import clear_unfinished, holds_shipment, stream_blake3
from ..errors import DestinationError, FormatError, IntegrityError, SneakernetError, UsageError
from ..format import (
    DRIVE_LABEL_NAME,
    READERS,
    ROLE_DATA,
    ChunkRecord,
    DriveLabel,
    FileRecord,
    ManifestHeader,
    ManifestRecord,
    SegmentRecord,
)
from ..format.container import encode_record
from ..io.store import DriveStore, LocalStore
from ..options import PackOptions
from .resume import FinishedDrives, check_finished, check_options

if TYPE_CHECKING:  # the crypt extra, for an encrypted pack only
    from ..crypto.keys import ShipmentIdentity

#: A drive directory under ``--out``: drive-NNNN (numbers of more digits once past 9999).
_OUT_DRIVE = re.compile(r"drive-(\d{4,})")


@dataclass(frozen=True)
class LaneResume:
    """What a resumed lane takes over, as plain data for its process: its finished drives in lane order, its
    unfinished drive, each as (number, path), and the number its next drive must take when one is already given
    (a finished drive's last pieces name it; lane *i*'s first drive is *i*)."""

    finished: tuple[tuple[int, str], ...] = ()
    unfinished: tuple[int, str] | None = None
    next_number: int | None = None


@dataclass
class ResumeTally:
    """What a resumed pack kept and wrote again: finished drives kept whole, unfinished drives continued with their
    complete segments kept, and the bytes of segment files found after those and written again."""

    finished_drives: int = 0
    finished_bytes: int = 0
    continued_drives: int = 0
    kept_segments: int = 0
    kept_bytes: int = 0
    rewritten_bytes: int = 0

    def add(self, other: ResumeTally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class LanesFound:
    """The drives an interrupted pack of several lanes left, as the coordinating process reads them (labels and
    headers only): the shipment, what each lane takes over, the numbers to give out again first (``free``), and
    the highest number given so far (``last``: the next new one is ``last + 1``)."""

    shipment: str | None = None
    created: str | None = None
    lanes: dict[int, LaneResume] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    last: int = 0
    #: Whether the finished drives are encrypted (None: none finished).
    encrypted: bool | None = None


@dataclass
class _Found:
    """A drive as found: its number, path, lane, place in the lane and, when finished, its label."""

    number: int
    path: str
    lane: int
    lane_seq: int
    label: DriveLabel | None = None


def find_lane_drives(out: str | None, drives: list[str], lanes: int, key: ShipmentIdentity | None = None) -> LanesFound:
    """The drives under ``out`` (``drive-NNNN``) or the given ``drives`` (drive *n* on the *n*-th), sorted into
    ``lanes`` lanes; unfinished drives whose header never reached the disk are cleared (their numbers are given out
    again). Raises :class:`DestinationError` for drives of another shipment or out of lane order, and
    :class:`UsageError` for drives packed otherwise (one lane, more lanes)."""
    found = LanesFound()
    finished: dict[int, list[_Found]] = {}
    unfinished: dict[int, _Found] = {}
    seen: set[int] = set(range(1, lanes + 1))
    for number, path in _candidates(out, drives):
        drive = _read_drive(number, path, found)
        if drive is None:
            continue
        seen.add(number)
        if drive.lane == 0:
            continue  # nothing on it to keep, cleared: its number is given out again
        if drive.lane > lanes or (number <= lanes and (drive.lane, drive.lane_seq) != (number, 1)):
            raise UsageError(
                f"cannot resume: {path} is drive {drive.lane_seq} of lane {drive.lane}, which --at-once {lanes} "
                "does not cut so: give the same --at-once as the interrupted pack"
            )
        if drive.label is not None:
            finished.setdefault(drive.lane, []).append(drive)
            if found.encrypted not in (None, drive.label.encrypted):
                raise DestinationError(
                    f"cannot resume: {path} is encrypted as the other drives are not, or not as they are"
                )
            found.encrypted = drive.label.encrypted
        elif drive.lane in unfinished:
            raise DestinationError(
                f"cannot resume: {unfinished[drive.lane].path} and {path} are both the drive lane {drive.lane} was "
                "writing: give the drives of one interrupted pack"
            )
        else:
            unfinished[drive.lane] = drive
    taken: set[int] = set()
    for lane in range(1, lanes + 1):
        found.lanes[lane] = resume = _lane_resume(lane, finished.get(lane, []), unfinished.get(lane), key)
        taken.update(number for number, _ in resume.finished)
        taken.update(n for n in (resume.next_number, resume.unfinished and resume.unfinished[0]) if n)
    found.last = max(seen | taken)
    found.free = sorted(set(range(1, found.last + 1)) - taken)
    return found


def _candidates(out: str | None, drives: list[str]) -> Iterator[tuple[int, str]]:
    if drives:
        yield from enumerate(drives, 1)
        return
    assert out is not None
    names = os.listdir(out) if os.path.isdir(out) else []
    for name in sorted(names):
        if (match := _OUT_DRIVE.fullmatch(name)) and os.path.isdir(path := os.path.join(out, name)):
            yield int(match.group(1)), path


def _read_drive(number: int, path: str, found: LanesFound) -> _Found | None:
    """Drive ``number`` at ``path`` as found (None: nothing of a shipment on it; lane 0: an unfinished drive
    without a header, cleared); ``found``'s shipment and created are taken from the first drive that tells them."""
    store = LocalStore(path)
    if store.stat(DRIVE_LABEL_NAME) is not None:
        try:
            label = DriveReader(path, public=True).label
        except SneakernetError as exc:
            raise DestinationError(f"cannot resume: finished drive {path} does not check out ({exc})") from exc
        if label.version < 2 or label.role != ROLE_DATA or label.lane is None or label.lane_seq is None:
            raise UsageError(
                f"cannot resume: {path} was not packed onto several drives at once: give the same options as the "
                "interrupted pack (without --at-once)"
            )
        _same_shipment(found, label.shipment, label.created, number, label.drive, path)
        return _Found(number, path, label.lane, label.lane_seq, label)
    if not holds_shipment(path):
        return None
    header = UnfinishedManifest.read_header(store)
    if header is None or header.version < 2 or header.lane is None or header.lane_seq is None:
        clear_unfinished(store)
        return _Found(number, path, 0, 0)
    _same_shipment(found, header.shipment, header.created, number, header.drive, path)
    return _Found(number, path, header.lane, header.lane_seq)


def _same_shipment(found: LanesFound, shipment: str, created: str, number: int, drive: int, path: str) -> None:
    if drive != number or (found.shipment is not None and shipment != found.shipment):
        raise DestinationError(f"cannot resume: {path} is not drive {number} of the interrupted shipment")
    found.shipment, found.created = shipment, found.created or created


def _lane_resume(
    lane: int, finished: list[_Found], unfinished: _Found | None, key: ShipmentIdentity | None = None
) -> LaneResume:
    """A lane's drives in lane order, checked to follow each other, and the number its next drive must take."""
    finished.sort(key=lambda d: d.lane_seq)
    for seq, drive in enumerate(finished, 1):
        if drive.lane_seq != seq or (seq == 1 and drive.number != lane):
            raise DestinationError(
                f"cannot resume: lane {lane}'s drives are not all there in order ({drive.path} is drive "
                f"{drive.lane_seq} of it): give every drive of the interrupted pack"
            )
    if unfinished is not None and unfinished.lane_seq != len(finished) + 1:
        raise DestinationError(
            f"cannot resume: {unfinished.path} is drive {unfinished.lane_seq} of lane {lane}, which has "
            f"{len(finished)} finished drives: give every drive of the interrupted pack"
        )
    pinned: int | None = lane if not finished else None
    if finished and unfinished is None:
        pinned = _next_drive(finished[-1].path, key)
    return LaneResume(
        tuple((d.number, d.path) for d in finished),
        (unfinished.number, unfinished.path) if unfinished else None,
        pinned,
    )


def _next_drive(path: str, key: ShipmentIdentity | None = None) -> int | None:
    """The drive a finished drive's last pieces continue on (``next_drive``), None when every file ends on it."""
    following = None
    try:
        for record in DriveReader(path, key=key).records(only=("file",)):
            if isinstance(record, FileRecord) and not record.final:
                following = record.next_drive
    except SneakernetError as exc:
        raise DestinationError(f"cannot resume: finished drive {path} does not check out ({exc})") from exc
    return following


# --- in a lane's process ---------------------------------------------------------------------------------


class KeptDrive:
    """An unfinished drive's complete segments, checked, with their records copied off the drive (to ``copy``, a
    local file): the writer opens the drive again, writes its manifest again from the header, and goes on after
    the kept segments."""

    def __init__(
        self, number: int, store: DriveStore, header: ManifestHeader, segments: list[SegmentRecord], copy: str
    ) -> None:
        self.number = number
        self.store = store
        self.header = header
        self.segments = segments
        self.copy = copy
        self.codec = ChunkCodec.from_header(header)

    @property
    def kept_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    def records(self) -> Iterator[ManifestRecord]:
        """The kept records after the header, in order, read back from the copy."""
        parse = READERS[self.header.version].manifest_record
        with open(self.copy, "rb") as lines:
            for line in lines:
                yield parse(json.loads(line))

    def read_back(self, record: ChunkRecord) -> bytes:
        """A kept chunk's raw bytes, both its hashes checked."""
        stored = self.store.read_range(record.segment, record.offset, record.stored_size)
        if blake3.blake3(stored).hexdigest() != record.stored_blake3:
            raise IntegrityError(f"a chunk of {record.segment} on {self.store.path} changed while resuming")
        raw = self.codec.decode_record(stored, record)
        if blake3.blake3(raw).hexdigest() != record.raw_blake3:
            raise IntegrityError(f"a chunk of {record.segment} on {self.store.path} changed while resuming")
        return raw


@dataclass
class LaneTakeOver:
    """What a resumed lane takes over: its finished drives, its unfinished drive's kept part (or None), the number
    its next drive must take (or None: the next free one), and the tally."""

    finished: FinishedDrives
    kept: KeptDrive | None
    next_number: int | None
    tally: ResumeTally


def keep_next_drive(
    path: str, number: int, shipment: str | None, options: PackOptions, open_store: Callable[[str], DriveStore],
    copy: str, tally: ResumeTally,
) -> KeptDrive | None:  # fmt: skip
    """A one-lane (version 1) resume: the complete segments of drive ``number`` at ``path``, the drive that was being
    written after the finished ones (of ``shipment``, when any finished), as :func:`keep_unfinished` keeps them; None
    when it holds nothing to keep of this shipment (the caller clears it)."""
    store = open_store(path)
    header = UnfinishedManifest.read_header(store)
    if header is None or header.version != 1 or header.drive != number:
        return None
    if shipment is not None and header.shipment != shipment:
        return None
    kept = keep_unfinished(store, number, (header.shipment, number, None, None), options, copy, tally)
    if kept is not None:
        tally.continued_drives += 1
        tally.kept_segments += len(kept.segments)
        tally.kept_bytes += kept.kept_bytes
    return kept


def take_over_lane(
    resume: LaneResume, lane: int, shipment: str, options: PackOptions, open_store: Callable[[str], DriveStore],
    copy: str, key: ShipmentIdentity | None = None,
) -> LaneTakeOver:  # fmt: skip
    """Check lane ``lane``'s finished drives whole and keep its unfinished drive's complete segments (their
    records copied to ``copy``); what follows them on that drive is cleared.

    An encrypted shipment's (``key``, its identity): the finished drives are read with it, and the unfinished
    drive is cleared whole and written again from its start, every segment file under a fresh key (its sealed
    index is finished only with the drive, so the kept segments' keys and records could not be read back)."""
    finished, tally = FinishedDrives(key=key), ResumeTally()
    for seq, (number, path) in enumerate(resume.finished, 1):
        label, header, checksums = check_finished(path, options.chunk_size, options.segment_size, options.level, key)
        if (label.shipment, label.drive, label.lane, label.lane_seq) != (shipment, number, lane, seq):
            raise DestinationError(f"cannot resume: {path} is not drive {seq} of lane {lane} of the shipment")
        if label.encrypted != (key is not None):  # a shipment is encrypted on every drive or on none (19.8)
            how = "encrypted" if label.encrypted else "not encrypted"
            raise UsageError(f"cannot resume: {path} is {how}: give the options of the interrupted pack")
        finished.paths.append(path)
        finished.labels.append(label)
        finished.checksums.append(checksums)
        finished.header = finished.header or header
        tally.finished_drives += 1
        tally.finished_bytes += label.stored_bytes
    if resume.unfinished is None:
        return LaneTakeOver(finished, None, resume.next_number, tally)
    number, path = resume.unfinished
    store = open_store(path)
    if key is not None:
        tally.rewritten_bytes += clear_unfinished(store)
        return LaneTakeOver(finished, None, number, tally)
    expected = (shipment, number, lane, len(resume.finished) + 1)
    kept = keep_unfinished(store, number, expected, options, copy, tally)
    if kept is not None:
        tally.continued_drives += 1
        tally.kept_segments += len(kept.segments)
        tally.kept_bytes += kept.kept_bytes
    # Nothing kept: the drive is packed again from its start, under its own number.
    return LaneTakeOver(finished, kept, None if kept else number, tally)


def keep_unfinished(
    store: DriveStore, number: int, expected: tuple[str, int, int | None, int | None], options: PackOptions, copy: str,
    tally: ResumeTally,
) -> KeptDrive | None:  # fmt: skip
    """The complete segments of unfinished drive ``store`` that a resumed pack keeps: those its ``.partial``
    manifest records whole, each hashed, up to the first that does not match, and before the pieces of a drive
    being finished (its last segment is then written again: the drive is finished anew). Their records are copied
    to ``copy``; everything else of sneakernet's on the drive is removed (its segment bytes counted in ``tally``).
    None when nothing is kept (the drive is then cleared)."""
    unfinished = UnfinishedManifest.open(store)
    segments: list[SegmentRecord] = []
    if unfinished is not None:
        header = unfinished.header
        if (header.shipment, header.drive, header.lane, header.lane_seq) != expected:
            raise DestinationError(f"cannot resume: {store.path} is not drive {number} of the interrupted shipment")
        check_options(store.path, header, options.chunk_size, options.segment_size, options.level)
        segments = _copy_kept(unfinished, store, copy)
    tally.rewritten_bytes += clear_unfinished(store, keep={segment.name for segment in segments})
    if unfinished is None or not segments:
        return None
    return KeptDrive(number, store, unfinished.header, segments, copy)


def _copy_kept(unfinished: UnfinishedManifest, store: DriveStore, copy: str) -> list[SegmentRecord]:
    """Copy the records through the last segment kept to ``copy``; the segments kept."""
    segments: list[SegmentRecord] = []
    with open(copy, "wb") as lines:
        kept_at = 0
        try:
            for record in unfinished.records():
                if isinstance(record, FileRecord) and not record.final:
                    break  # the drive was being finished: its last segment is written again with it
                segment = record if isinstance(record, SegmentRecord) else None
                if segment and _segment_blake3(store, segment.name) != (segment.size, segment.blake3):
                    break
                lines.write(record.to_line() if isinstance(record, FileRecord) else encode_record(record.to_json()))
                if segment:
                    segments.append(segment)
                    kept_at = lines.tell()
        except (OSError, FormatError):
            pass  # the records through the last segment already kept stand
        lines.truncate(kept_at)
    return segments


def _segment_blake3(store: DriveStore, name: str) -> tuple[int, str] | None:
    try:
        with store.open(name) as handle:
            return stream_blake3(handle)
    except OSError:
        return None


__all__ = [
    "KeptDrive", "LaneResume", "LanesFound", "ResumeTally", "find_lane_drives", "keep_next_drive", "take_over_lane",
]  # fmt: skip
