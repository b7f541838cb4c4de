"""What a pack did (:class:`PackSummary`), for the human summary and ``--json``, built once packing is over from
what each part counted on its own thread (:class:`ReadTally`, the writer's drives and chunks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..format import short_fingerprint
from ..output import versioned

#: How many paths a summary lists for each kind of problem; the counts are always complete.
LISTED_PATHS = 100


@dataclass
class PackSummary:
    """What pack did, for the human summary and ``--json``: made whole when the pack is over, never shared by
    threads."""

    shipment: str
    fingerprint: str
    drives: list[dict[str, Any]]
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    stored_raw_bytes: int = 0
    chunks: int = 0
    excluded_entries: int = 0
    excluded_bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    changed: list[str] = field(default_factory=list)
    changed_count: int = 0
    seconds: float = 0.0
    #: Drives a resumed pack kept from the interrupted one.
    resumed_drives: int = 0
    #: Unfinished drives a resumed pack of several lanes went on writing, and their complete segments it kept.
    continued_drives: int = 0
    kept_segments: int = 0
    #: Segment bytes a resumed pack kept: of the finished drives and the complete segments of unfinished ones
    #: (those alone: ``kept_unfinished_bytes``); and the segment bytes found after them, written again.
    kept_bytes: int = 0
    kept_unfinished_bytes: int = 0
    rewritten_bytes: int = 0
    #: The sender's copy of the catalog, when one was asked for (one dock: only the last drive carries it).
    catalog_copy: str | None = None
    #: The source is a restored tree: its top-level .sneakernet held only a finished restore's record, left out.
    restore_record_left_out: bool = False
    #: Lanes written at once (format version 2, pack --at-once); 1 for a pack that filled its drives in order.
    lanes: int = 1
    #: pack --parity: the parity drives written (label, path, group, row, stored_bytes, kept by a resumed pack).
    parity_drives: list[dict[str, Any]] = field(default_factory=list)
    #: An encrypted shipment (docs/format.md 19.8): to how many recipients its identity is wrapped, and whether a
    #: passphrase opens it too; never a key nor a recipient's text. None for a shipment in the clear.
    encryption: dict[str, Any] | None = None

    @property
    def encrypted(self) -> bool:
        return self.encryption is not None

    @property
    def short_fingerprint(self) -> str:
        return short_fingerprint(self.fingerprint)

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.raw_bytes if self.raw_bytes else 1.0

    def to_json(self) -> dict[str, Any]:
        out = versioned(self.__dict__)
        out.update(short_fingerprint=self.short_fingerprint, ratio=round(self.ratio, 4), encrypted=self.encrypted)
        out["rate_bytes_per_second"] = round(self.raw_bytes / self.seconds) if self.seconds else None
        return out


@dataclass
class ReadTally:
    """What reading the source found, counted by the one thread that reads it (:class:`SourceReader`); pack reads
    it once that thread has ended, into the :class:`PackSummary`."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    raw_bytes: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    changed: list[str] = field(default_factory=list)
    changed_count: int = 0

    def note_skipped(self, path: bytes, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < LISTED_PATHS:
            self.skipped.append({"path": _show(path), "reason": reason})

    def note_changed(self, path: bytes) -> None:
        self.changed_count += 1
        if len(self.changed) < LISTED_PATHS:
            self.changed.append(_show(path))


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")
