"""What verify finds: one :class:`DriveReport` per drive (typed :class:`Problem` and :class:`DamagedChunk`
records, the paths they hurt) and the :class:`VerifyReport` of a run, with the JSON shape docs/verify-report.schema.json
describes. Plain data: no checks and no I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from ..drive import DriveSet
from ..format import ChunkRecord
from ..output import SCHEMA_VERSION


class Status(str, Enum):
    INTACT = "intact"
    #: Every byte intact, but files that are not part of the drive are on it too: a warning, exit code 0.
    UNEXPECTED_FILES = "unexpected_files"
    DAMAGED = "damaged"
    UNFINISHED = "unfinished"
    WRONG_SHIPMENT = "wrong_shipment"
    #: A check that was asked for could not be made (--fingerprint on a drive without a catalog).
    UNCONFIRMED = "unconfirmed"
    NOT_A_DRIVE = "not_a_drive"
    #: The drive could not be read to the end of its check (an I/O error, a drive pulled out): not verified.
    UNREADABLE = "unreadable"


class Kind(str, Enum):
    """The kinds of problem (docs/verify.md, docs/verify-report.schema.json); the values are those of --json."""

    NOT_A_DRIVE = "not_a_drive"
    UNFINISHED = "unfinished"
    #: drive.json: damaged, of a version not read, or not describing the manifest it names.
    LABEL = "label"
    MANIFEST = "manifest"
    CATALOG = "catalog"
    CHECKSUMS = "checksums"
    FINGERPRINT = "fingerprint"
    OTHER_SHIPMENT = "other_shipment"
    MISSING_SEGMENT = "missing_segment"
    TRUNCATED_SEGMENT = "truncated_segment"
    OVERSIZED_SEGMENT = "oversized_segment"
    UNEXPECTED_FILE = "unexpected_file"
    #: --deep: a file wholly on the drive whose bytes do not give its whole-file BLAKE3.
    FILE_HASH = "file_hash"
    #: The check stopped on an error reading the drive (see Status.UNREADABLE).
    #: A parity drive's block whose bytes do not give its pblock hash (docs/format.md 19.7.5).
    PARITY_BLOCK = "parity_block"
    #: A parity drive's copy of a covered data drive's drive.json or manifest, missing or damaged.
    COVERED = "covered"
    #: An encrypted drive's sealed or key file (index.age, catalog.age, keys/*.age) missing or not as pinned.
    SEALED = "sealed"
    UNREADABLE = "unreadable"


@dataclass
class Problem:
    """One thing wrong with a drive. ``kind`` is the value of a :class:`Kind` (a plain string, as in --json)."""

    kind: str
    message: str
    paths: list[str] = field(default_factory=list)


@dataclass
class DamagedChunk:
    """A chunk whose stored (or, with --deep, raw) bytes are not what the manifest says, and the paths it hurts."""

    id: int
    segment: str
    offset: int
    stored_size: int
    reason: str
    paths: list[str] = field(default_factory=list)


@dataclass
class DriveReport:
    """Everything verify found on one drive."""

    path: str
    mode: str
    status: str = Status.INTACT.value
    label: str | None = None
    drive: int | None = None
    drives: int | None = None
    shipment: str | None = None
    fingerprint: str | None = None
    sample_percent: float | None = None
    #: With --fingerprint: whether the catalog's fingerprint starts with the digits given (None: not asked or
    #: not checkable).
    fingerprint_matched: bool | None = None
    bytes_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    resumed: bool = False
    #: How long the drive's check took, and the bytes it read in that time per second (bytes checked by a run
    #: that was resumed are not counted again).
    seconds: float = 0.0
    bytes_per_second: int = 0
    damaged_chunks: list[DamagedChunk] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every byte of the drive intact (unexpected files beside them hurt nothing)."""
        return self.status in (Status.INTACT.value, Status.UNEXPECTED_FILES.value)

    def add(self, kind: Kind, message: str, paths: Sequence[str] = (), status: Status = Status.DAMAGED) -> None:
        self.problems.append(Problem(kind.value, message, list(paths)))
        # The first problem sets the status; any problem outranks unexpected files.
        if self.status == Status.INTACT.value or (
            self.status == Status.UNEXPECTED_FILES.value and status != Status.UNEXPECTED_FILES
        ):
            self.status = status.value

    def add_damaged(self, chunk: ChunkRecord, reason: str) -> None:
        """A chunk found damaged: the drive is damaged, whatever else is on it (damage outranks unexpected files)."""
        self.damaged_chunks.append(DamagedChunk(chunk.id, chunk.segment, chunk.offset, chunk.stored_size, reason))
        if self.ok:
            self.status = Status.DAMAGED.value

    def hurt_paths(self) -> list[str]:
        """Every shipment path some problem of this drive hurts, sorted, once each."""
        paths = {p for chunk in self.damaged_chunks for p in chunk.paths}
        paths.update(p for problem in self.problems for p in problem.paths)
        return sorted(paths)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["hurt_paths"] = self.hurt_paths()
        return out


@dataclass
class ShipmentVerdict:
    """What the drives given together, parity drives among them, say of the shipment (docs/format.md 19.7.6):
    ``whole`` (every data drive given and intact), ``recoverable`` (what is missing or damaged, the parity drives
    given rebuild) or ``lost`` (``lost`` names the data drives, ``lost_paths`` the files, at most a thousand, the
    rest counted in ``lost_paths_more``); ``messages`` says it in lines."""

    status: str
    data_drives: int
    parity_drives: list[str]
    missing: list[str]
    damaged: list[str]
    rebuildable: list[str]
    lost: list[str]
    lost_paths: list[str]
    lost_paths_more: int
    messages: list[str]

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class VerifyReport:
    """The reports of all drives given (in the order given), what of the shipment they are, and the resend list
    for the sender."""

    drives: list[DriveReport]
    #: The drives given as a set: which of the shipment's were given, missing, given twice.
    drive_set: DriveSet | None = None
    #: How long the run took.
    seconds: float = 0.0
    #: With parity drives among the drives given: whether the shipment is whole, recoverable or lost.
    recovery: ShipmentVerdict | None = None

    @property
    def ok(self) -> bool:
        return all(report.ok for report in self.drives)

    @property
    def bytes_per_second(self) -> int:
        """The bytes all drives read per second of the run (drives checked at once add up)."""
        read = sum(round(r.bytes_per_second * r.seconds) for r in self.drives)
        return round(read / self.seconds) if self.seconds > 0 else 0

    def to_json(self) -> dict[str, Any]:
        chunks = sorted({c.id for r in self.drives for c in r.damaged_chunks})
        paths = sorted({p for r in self.drives for p in r.hurt_paths()})
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "seconds": self.seconds,
            "bytes_per_second": self.bytes_per_second,
            "drives": [report.to_json() for report in self.drives],
            "shipment": shipment_json(self.drive_set),
            "recovery": self.recovery.to_json() if self.recovery is not None else None,
            "resend": {"chunks": chunks, "paths": paths},
        }


def shipment_json(drive_set: DriveSet | None) -> dict[str, Any] | None:
    """What of the shipment was given, for --json: the shipment, its drives as the catalog lists them (null when no
    catalog was read), and the labels given, missing and given twice (with the paths)."""
    if drive_set is None or drive_set.shipment is None:
        return None
    return {
        "shipment": drive_set.shipment,
        "listed": [d.key.label for d in drive_set.listed] if drive_set.listed else None,
        "given": [key.label for key in drive_set.present()],
        "missing": [d.key.label for d in drive_set.missing()],
        "duplicated": {key.label: [d.path for d in ds] for key, ds in drive_set.duplicated().items()},
    }
