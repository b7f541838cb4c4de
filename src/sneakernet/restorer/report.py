"""What a restore reports: each drive's outcome, where the shipment stands (its status) and the run's report."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..format import short_fingerprint
from ..output import SCHEMA_VERSION, versioned
from .states import OutcomeStatus

#: How many failed or colliding paths a report lists; the counts are always complete.
LISTED_PATHS = 100


@dataclass
class DriveOutcome:
    """What one run did with one drive."""

    path: str
    label: str | None = None
    drive: int | None = None
    status: OutcomeStatus = OutcomeStatus.RESTORED
    message: str = ""
    files: int = 0
    bytes: int = 0
    #: Data bytes written, including pieces of files that continue on other drives.
    written: int = 0
    failed: list[str] = field(default_factory=list)
    failed_count: int = 0
    #: Of the failed entries, those the destination was in the way of (a directory where a file goes): nothing
    #: wrong with the drive.
    blocked_count: int = 0
    collisions: list[str] = field(default_factory=list)
    #: Files of the destination replaced by the drive's (a destination restored into with --force): the first
    #: LISTED_PATHS, and how many.
    replaced: list[str] = field(default_factory=list)
    replaced_count: int = 0
    #: Files installed with their setuid/setgid bits cleared (see :data:`SETID_BITS`).
    setid_cleared: int = 0
    #: How long writing the drive took (its checks before aside).
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.status in (OutcomeStatus.RESTORED, OutcomeStatus.ALREADY)

    @property
    def bytes_per_second(self) -> int:
        """The data bytes the drive wrote a second of its work."""
        return int(self.written / self.seconds) if self.seconds > 0 else 0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 3), "bytes_per_second": self.bytes_per_second}


@dataclass
class WaitingDrive:
    drive: int
    label: str
    files: int
    bytes: int
    #: One of :class:`WaitState`'s values.
    state: str


@dataclass
class ShipmentStatus:
    """Where a restore stands: which drives are in, which are still needed and what waits on each."""

    dest: str
    shipment: str
    fingerprint: str
    drives: int
    restored: list[int]
    waiting: list[WaitingDrive]
    failed: list[str]
    failed_count: int
    complete: bool
    finished: bool = False
    #: When the restore finished (UTC, ISO 8601), once its journal is gone: from the finished record.
    finished_at: str | None = None
    includes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = versioned(self.__dict__)
        out["waiting"] = [w.__dict__ for w in self.waiting]
        out["short_fingerprint"] = short_fingerprint(self.fingerprint)
        return out


@dataclass
class RestoreReport:
    drives: list[DriveOutcome]
    status: ShipmentStatus
    #: What the last drive's run could not finish for the whole shipment (hard links whose target never came).
    problems: list[str] = field(default_factory=list)
    #: What the user should know that did not stop anything (a damaged catalog copy passed over for another).
    notes: list[str] = field(default_factory=list)
    #: How long the run took, from its first drive's write to its last's (drives written at once overlap).
    seconds: float = 0.0

    @property
    def bytes_per_second(self) -> int:
        """The data bytes all drives wrote a second of the run (drives written at once add up)."""
        return int(sum(d.written for d in self.drives) / self.seconds) if self.seconds > 0 else 0

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.drives) and not self.problems

    @property
    def setid_cleared(self) -> int:
        """Files this run installed without the setuid/setgid bits the drives gave them."""
        return sum(d.setid_cleared for d in self.drives)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "drives": [d.to_json() for d in self.drives],
            "seconds": round(self.seconds, 3),
            "bytes_per_second": self.bytes_per_second,
            "problems": self.problems,
            "notes": self.notes,
            "setid_cleared": self.setid_cleared,
            "status": self.status.to_json(),
            "clean": self.clean,
        }


def merge_outcomes(first: DriveOutcome, again: DriveOutcome) -> DriveOutcome:
    """One drive's outcome over the two times a run restored it (the second for what a later drive reopened)."""
    merged = replace(again, status=first.status if again.status == OutcomeStatus.ALREADY else again.status)
    if first.status == OutcomeStatus.RESTORED and again.status in (OutcomeStatus.RESTORED, OutcomeStatus.ALREADY):
        merged.message = first.message
    merged.files += first.files
    merged.bytes += first.bytes
    merged.written += first.written
    merged.failed = (first.failed + again.failed)[:LISTED_PATHS]
    merged.failed_count += first.failed_count
    merged.blocked_count += first.blocked_count
    merged.setid_cleared += first.setid_cleared
    merged.collisions = first.collisions + again.collisions
    merged.replaced = (first.replaced + again.replaced)[:LISTED_PATHS]
    merged.replaced_count += first.replaced_count
    merged.seconds += first.seconds
    return merged
