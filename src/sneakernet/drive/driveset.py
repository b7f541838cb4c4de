"""A shipment's drives as a set: which drives were given (by role, number and lane), which of them are there
twice, which the shipment has that were not given, and which given paths are no drive of it.

Pure over what the drive readers return: it is built from each given path's drive.json (:class:`GivenDrive`, or
none when the path is no readable drive) and the drives the shipment's catalog lists (:class:`ListedDrive`), and
does no I/O of its own. verify uses it to say what of the shipment it was given; restore and the parity commands
use it to know which drives are present and which must be rebuilt (docs/format.md 19.3: drives are numbered per
role, data drives ``drive-NNNN``, parity drives ``parity-NNNN``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..format import ROLE_DATA, ROLE_PARITY, CatalogDrive, CatalogParity, DriveLabel, role_label

DATA = ROLE_DATA
PARITY = ROLE_PARITY


@dataclass(frozen=True, order=True)
class DriveKey:
    """A drive's name in its shipment: its role and its number among the drives of that role. Keys sort data
    drives first, then parity drives, each by number (the catalog's order, docs/format.md 19.5)."""

    role: str
    number: int

    @property
    def label(self) -> str:
        """``drive-0003`` or ``parity-0001`` (docs/format.md 19.3)."""
        return role_label(self.role, self.number)


@dataclass(frozen=True)
class GivenDrive:
    """A path given as a drive, and what its drive.json says (None when it is no drive that could be read)."""

    path: str
    shipment: str | None = None
    key: DriveKey | None = None
    lane: int | None = None
    lane_seq: int | None = None
    manifest_blake3: str | None = None

    @classmethod
    def of(cls, path: str, label: DriveLabel | None) -> GivenDrive:
        if label is None:
            return cls(path)
        # Version 1 drives are data drives, of no lane (one writer filled them in order).
        key = DriveKey(label.role, label.drive)
        return cls(path, label.shipment, key, label.lane, label.lane_seq, label.manifest_blake3)


@dataclass(frozen=True)
class ListedDrive:
    """A drive as the shipment's catalog lists it."""

    key: DriveKey
    label: str
    lane: int | None = None
    lane_seq: int | None = None
    manifest_blake3: str | None = None

    @classmethod
    def of(cls, record: CatalogDrive | CatalogParity) -> ListedDrive:
        """A catalog's data drive record, or (version 2) its parity drive record."""
        if isinstance(record, CatalogParity):
            return cls(DriveKey(PARITY, record.drive), record.label, None, None, record.manifest_blake3)
        return cls(DriveKey(DATA, record.drive), record.label, record.lane, record.lane_seq, record.manifest_blake3)


@dataclass
class DriveSet:
    """The drives given for one shipment (the one most of them are of; on a tie, the first given's)."""

    given: list[GivenDrive]
    #: The catalog's drives of that shipment (empty when no catalog was read: then nothing is known missing).
    listed: list[ListedDrive] = field(default_factory=list)
    shipment: str | None = None

    @classmethod
    def build(
        cls, given: Iterable[GivenDrive], listings: Mapping[str, Iterable[ListedDrive]] | None = None
    ) -> DriveSet:
        """The set of the drives ``given``; ``listings``: the drives each shipment's catalog lists, by shipment."""
        drives = list(given)
        shipments = [d.shipment for d in drives if d.shipment is not None]
        shipment = max(dict.fromkeys(shipments), key=shipments.count) if shipments else None
        listed = (listings or {}).get(shipment or "", [])
        return cls(drives, sorted({d.key: d for d in listed}.values(), key=lambda d: d.key), shipment)

    def present(self) -> dict[DriveKey, list[GivenDrive]]:
        """The shipment's drives given, by key in drive order, each with every path it was given at."""
        found: dict[DriveKey, list[GivenDrive]] = {}
        for drive in self.given:
            if drive.key is not None and drive.shipment == self.shipment:
                found.setdefault(drive.key, []).append(drive)
        return dict(sorted(found.items()))

    def duplicated(self) -> dict[DriveKey, list[GivenDrive]]:
        """Drives given more than once (two paths, or two copies of one drive)."""
        return {key: drives for key, drives in self.present().items() if len(drives) > 1}

    def missing(self) -> list[ListedDrive]:
        """The drives the catalog lists that were not given, in drive order."""
        present = self.present()
        return [d for d in self.listed if d.key not in present]

    def strangers(self) -> list[GivenDrive]:
        """Drives given of another shipment."""
        return [d for d in self.given if d.shipment is not None and d.shipment != self.shipment]

    def not_drives(self) -> list[GivenDrive]:
        """Paths given whose drive.json could not be read."""
        return [d for d in self.given if d.key is None]

    def lanes(self) -> dict[int, list[DriveKey]]:
        """The data drives given by lane (version 2), each lane's in lane order; version 1 drives are lane 1."""
        lanes: dict[int, list[tuple[int, DriveKey]]] = {}
        for key, drives in self.present().items():
            if key.role == DATA:
                first = drives[0]
                lanes.setdefault(first.lane or 1, []).append((first.lane_seq or key.number, key))
        return {lane: [key for _, key in sorted(keys)] for lane, keys in sorted(lanes.items())}


def same_drive_groups(given: Sequence[GivenDrive], together: Sequence[object | None] = ()) -> list[list[int]]:
    """The given drives (indexes) in groups that must be worked on one after another: the paths of one drive (its
    copies share verify's saved progress), and those whose ``together`` values are equal and not None (e.g. the
    device they are on). Each group in given order, the groups in the order of their first drive."""
    parent = list(range(len(given)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first: dict[object, int] = {}
    for index, drive in enumerate(given):
        keys: list[object] = []
        if drive.key is not None:
            keys.append(("drive", drive.shipment, drive.key))
        if index < len(together) and together[index] is not None:
            keys.append(("with", together[index]))
        for key in keys:
            if key in first:
                parent[root(index)] = root(first[key])
            else:
                first[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(given)):
        groups.setdefault(root(index), []).append(index)
    return sorted(groups.values(), key=lambda group: group[0])


def drive_queues(given: Sequence[GivenDrive], devices: Sequence[int | None], at_once: int | None) -> list[list[int]]:
    """The drives given (indexes), in queues worked on at the same time, each queue's drives one after another
    (verify and restore): by default one queue a device (:func:`same_drive_groups` with ``devices``), with
    ``at_once`` up to that many queues whatever the devices; the copies of one drive always in one queue."""
    if at_once is None:
        return same_drive_groups(given, devices)
    groups = same_drive_groups(given)
    if at_once >= len(groups):
        return groups
    # Fewer threads than groups: each group to the queue with the fewest drives so far, in given order.
    queues: list[list[int]] = [[] for _ in range(at_once)]
    for group in groups:
        min(queues, key=len).extend(group)
    return [sorted(q) for q in queues if q]
