"""The finished record (DEST/.sneakernet/finished.json): what a finished restore leaves when its journal goes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._version import __version__
from ..errors import UsageError
from ..format import FINISHED_NAME
from ..io.atomic import write_atomic
from .journal import Journal
from .report import ShipmentStatus

#: The finished record's format name and version (docs/restore.md, "The finished record").
FINISHED_FORMAT = "sneakernet-finished"
FINISHED_VERSION = 1


@dataclass(frozen=True)
class FinishedRecord:
    """DEST/.sneakernet/finished.json: what a finished restore leaves when its journal goes, so that ``status``
    says complete and a drive of the shipment restored again is a no-op instead of a refusal or a new restore."""

    shipment: str
    fingerprint: str
    drives: int
    labels: list[str]
    includes: list[str]
    files: int
    finished: str
    tool: str = f"sneakernet {__version__}"

    def to_json(self) -> dict[str, Any]:
        return {"format": FINISHED_FORMAT, "version": FINISHED_VERSION, **self.__dict__}

    @classmethod
    def from_json(cls, raw: Any) -> FinishedRecord:
        if not isinstance(raw, dict) or raw.get("format") != FINISHED_FORMAT:
            raise ValueError(f"not a {FINISHED_FORMAT} record")
        if raw.get("version") != FINISHED_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, this sneakernet reads version {FINISHED_VERSION}")
        fields = {"shipment": str, "fingerprint": str, "drives": int, "labels": list, "includes": list, "files": int,
                  "finished": str, "tool": str}  # fmt: skip
        for name, kind in fields.items():
            if not isinstance(raw.get(name), kind) or isinstance(raw.get(name), bool):
                raise ValueError(f"{name!r} is missing or not a {kind.__name__}")
        return cls(**{name: raw[name] for name in fields})

    def status(self, dest: str) -> ShipmentStatus:
        return ShipmentStatus(
            dest, self.shipment, self.fingerprint, self.drives, list(range(1, self.drives + 1)), [], [], 0,
            complete=True, finished=True, finished_at=self.finished, includes=self.includes,
        )  # fmt: skip


def read_finished(dest: str) -> FinishedRecord | None:
    """The finished record in ``dest``, None when there is none; a damaged one is refused in one line."""
    path = os.path.join(Journal.directory(dest), FINISHED_NAME)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return FinishedRecord.from_json(json.loads(raw))
    except ValueError as exc:
        raise UsageError(
            f"{path} is damaged ({exc}): it says a restore into {dest} finished; remove it to restore into {dest} again"
        ) from exc


def write_finished(journal: Journal) -> None:
    """Durably (written under a temporary name, fsynced, renamed, the directory fsynced) before the journal goes."""
    record = FinishedRecord(
        shipment=journal.get_json("shipment"),
        fingerprint=journal.get_json("fingerprint"),
        drives=int(journal.get_json("drives")),
        labels=journal.get_json("labels"),
        includes=journal.get_json("includes") or [],
        files=int(journal.get_json("files") or 0),
        finished=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    directory = Journal.directory(journal.dest)
    write_atomic(os.path.join(directory, FINISHED_NAME), (json.dumps(record.to_json(), indent=2) + "\n").encode())
