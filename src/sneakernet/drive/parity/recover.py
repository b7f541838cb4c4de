"""``rebuild`` and ``repair`` (docs/format.md 19.7.6): a lost data drive written again onto a new drive, and a damaged
one mended in place, both from the other drives of its parity group, by
:func:`~sneakernet.drive.parity.rebuild.write_drive`.

The drives given are told apart by their drive.json (data or parity). The catalog copied onto the drive comes from a
data drive given when one carries it (the parity drives' copy otherwise); a drive gets one when the drives around it
show it had one: every drive of a pack with --out or several --drive carries the catalog, with --swap only the last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...errors import DestinationError, FormatError, UsageError
from ...format import CATALOG_NAME, DRIVE_LABEL_NAME, PARITY_NAME, PARTIAL_SUFFIX, drive_label, parity_label
from ...progress import NullProgress, Progress, begin_drive
from ..files import FILESYSTEM_ENTRIES, SHIPMENT_NAMES
from ..reader import DriveReader
from ..role import drive_role
from .lost import LostDriveReader, ParityGroup, ParitySet
from .reader import ParityDriveReader
from .rebuild import RebuildResult, write_drive
from .reparity import lost_rows, parity_number, repair_parity_drive, write_parity_drive


def _split(drives: Sequence[str]) -> tuple[list[str], list[ParityDriveReader]]:
    data = [path for path in drives if drive_role(path) == "data"]
    parity = [ParityDriveReader(path) for path in drives if drive_role(path) == "parity"]
    if not parity:
        raise UsageError("no parity drive among the drives given: give the shipment's parity drives too")
    return data, parity


def _catalog(lost: LostDriveReader, data: Sequence[str], had_one: bool | None = None) -> str | None:
    """The catalog to copy onto ``lost``'s drive, None when it carried none."""
    readers = [DriveReader(path, public=True) for path in data]
    carrying = [r for r in readers if os.path.exists(r.file(CATALOG_NAME))]
    last = max([r.label.drive for r in readers] + [c.drive for c in lost.group.covers])
    if had_one is None:
        # With --swap only the last drive carries it: a drive before it that does not shows that.
        before_last = [r for r in readers if r.label.drive != last]
        had_one = lost.cover.drive == last or not before_last or all(r in carrying for r in before_last)
    if not had_one:
        return None
    source = carrying[0].file(CATALOG_NAME) if carrying else lost.file(CATALOG_NAME)
    return source if os.path.exists(source) else None


def _chosen(parity_set: ParitySet, which: str | None) -> tuple[ParityGroup, int]:
    missing = parity_set.lost()
    if which is not None:
        label = drive_label(int(which)) if which.isdigit() else which
        found = [(g, c) for g, c in missing if c.label == label]
        if not found:
            covered = {c.label for g in parity_set.groups.values() for c in g.covers}
            why = "was given" if label in covered else "is not a data drive the parity drives cover"
            raise UsageError(f"{label} {why}: name a data drive that is missing from the drives given")
        return found[0][0], found[0][1].column
    if not missing:
        raise UsageError("every data drive the parity drives cover was given: nothing to rebuild")
    if len(missing) > 1:
        names = ", ".join(c.label for _, c in missing)
        raise UsageError(f"{names} are missing: say which one to rebuild with --lost LABEL")
    return missing[0][0], missing[0][1].column


def _refuse_target(target: str, label: str, label_bytes: bytes | None) -> None:
    """A rebuild goes onto an empty drive, or one a rebuild of this drive left unfinished (it goes on there)."""
    if not os.path.exists(target):
        return
    if not os.path.isdir(target):
        raise DestinationError(f"{target} is not a directory: give the empty drive to rebuild onto")
    names = set(os.listdir(target)) - FILESYSTEM_ENTRIES
    if {n.removesuffix(PARTIAL_SUFFIX) for n in names} - set(SHIPMENT_NAMES):
        raise DestinationError(f"{target} is not empty: give an empty drive to rebuild {label} onto")
    existing = os.path.join(target, DRIVE_LABEL_NAME)
    if os.path.exists(existing):
        with open(existing, "rb") as handle:
            if handle.read() != label_bytes:
                raise DestinationError(f"{target} holds another drive: give an empty drive")


def rebuild(
    drives: Sequence[str], onto: str, lost: str | None = None, progress: Progress | None = None
) -> RebuildResult:
    """Write the data drive missing from ``drives`` (data and parity drives of one shipment; ``lost``, its label or
    number, when several are missing) onto the empty directory ``onto``, byte-identical to the original. Run again
    onto the same directory, it keeps what an interrupted run finished."""
    data, parity = _split(drives)
    parity_set = ParitySet(data, parity)
    try:
        lost_parity = _lost_parity(parity_set, lost)
        if lost_parity is not None:
            group, row = lost_parity
            _refuse_target(onto, parity_label(parity_number(group, row)), None)
            shown = progress or NullProgress()
            shown.start(sum(group.group.stored))  # the data drives are read once
            try:
                return write_parity_drive(group, row, onto, shown)
            finally:
                shown.close()
        group, column = _chosen(parity_set, lost)
        reader = parity_set.open_lost(group, group.covers[column])
        try:
            _refuse_target(onto, reader.cover.label, reader.label_bytes)
            return _write(reader, onto, _catalog(reader, data), progress)
        finally:
            reader.close()
    finally:
        parity_set.close()


def _lost_parity(parity_set: ParitySet, which: str | None) -> tuple[ParityGroup, int] | None:
    """The group and row of the parity drive to rebuild: the one named ``which`` (parity-NNNN), or, with no name and
    no data drive missing, the only parity drive missing; None to rebuild a data drive."""
    missing = [(g, row) for g in parity_set.groups.values() for row in lost_rows(g)]
    if which is not None:
        if not PARITY_NAME.fullmatch(which):
            return None
        found = [(g, row) for g, row in missing if parity_label(parity_number(g, row)) == which]
        if not found:
            raise UsageError(f"{which} is not a parity drive missing from the drives given")
        return found[0]
    if parity_set.lost() or not missing:
        return None
    if len(missing) > 1:
        names = ", ".join(parity_label(parity_number(g, row)) for g, row in missing)
        raise UsageError(f"{names} are missing: say which one to rebuild with --lost LABEL")
    return missing[0]


def repair(drive: str, others: Sequence[str], progress: Progress | None = None) -> RebuildResult:
    """Mend the data drive ``drive`` in place from ``others`` (the other data drives of its group and its parity
    drives): segments whose BLAKE3 is not the manifest's written again (chunks taken from the drive when intact,
    else rebuilt, else mended byte by byte where parity says they are wrong), drive.json, manifest, catalog and
    B3SUMS written again where they differ; the rest untouched. A parity drive is mended from every data drive of
    its group (intact: repair those first): its segments and copies that differ from what they give written again."""
    if drive_role(drive) == "parity":
        return _repair_parity(drive, others, progress)
    data, parity = _split([path for path in others if os.path.realpath(path) != os.path.realpath(drive)])
    number = _drive_number(drive, parity)
    parity_set = ParitySet([path for path in data if _number_of(path) != number], parity)
    try:
        group, column = _chosen(parity_set, drive_label(number))
        reader = parity_set.open_lost(group, group.covers[column])
        group.repairing(drive, reader)
        try:
            had_catalog = True if os.path.exists(os.path.join(drive, CATALOG_NAME)) else None
            return _write(reader, drive, _catalog(reader, data, had_catalog), progress)
        finally:
            reader.close()
    finally:
        parity_set.close()


def _repair_parity(drive: str, others: Sequence[str], progress: Progress | None) -> RebuildResult:
    given = [path for path in others if os.path.realpath(path) != os.path.realpath(drive)]
    mending = ParityDriveReader(drive)
    data = [path for path in given if drive_role(path) == "data"]
    parity = [mending] + [ParityDriveReader(path) for path in given if drive_role(path) == "parity"]
    parity_set = ParitySet(data, parity)
    try:
        index = mending.index()
        group = parity_set.groups[index.header.group]
        shown = progress or NullProgress()
        shown.start(sum(group.group.stored))  # the data drives are read once
        begin_drive(shown, mending.label.label)
        try:
            return repair_parity_drive(group, index.header.row, shown)
        finally:
            shown.close()
    finally:
        parity_set.close()


def _write(reader: LostDriveReader, target: str, catalog: str | None, progress: Progress | None) -> RebuildResult:
    shown = progress or NullProgress()
    shown.start(reader.cover.stored_bytes)
    begin_drive(shown, reader.cover.label)
    try:
        return write_drive(reader, target, catalog, shown.advance)
    finally:
        shown.close()


def _number_of(path: str) -> int | None:
    try:
        return DriveReader(path, public=True).label.drive
    except (FormatError, DestinationError):
        return None


def _drive_number(drive: str, parity: Sequence[ParityDriveReader]) -> int:
    """The number of the drive to repair: its drive.json's, or (when that is damaged) its directory's name."""
    number = _number_of(drive)
    if number is None:
        name = os.path.basename(os.path.normpath(drive))
        covered = {c.label: c.drive for p in parity for c in p.index().covers}
        if name not in covered:
            raise UsageError(
                f"{drive}'s drive.json cannot be read and its name is no covered drive's: rename it drive-NNNN"
            )
        number = covered[name]
    return number
