"""Verify's saved progress: a drive's data pass resumes at its last finished segment. The state is kept off the
drive (nothing is ever written on a drive being verified), in the user's cache directory."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..durable import write_atomic


def default_state_dir() -> str:
    """Where verify keeps its progress: $SNEAKERNET_STATE_DIR, else the user's cache directory."""
    if os.environ.get("SNEAKERNET_STATE_DIR"):
        return os.environ["SNEAKERNET_STATE_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "sneakernet", "verify")


@dataclass
class VerifyState:
    """Progress of one drive's data pass, saved after every finished segment (atomically, off the drive).

    It is keyed by the manifest's BLAKE3 and the mode, so a state never applies to other data or another check.
    """

    path: str
    key: str
    done_segments: list[str] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)
    bytes_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    file_problems: list[dict[str, Any]] = field(default_factory=list)
    #: The --sample choice, so a resumed run reads the same segments even when no --seed was given.
    seed: int | None = None

    @classmethod
    def load(cls, state_dir: str, key: str) -> VerifyState:
        path = os.path.join(state_dir, key + ".json")
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
            return cls(
                path, key, raw["done_segments"], raw["damaged"], raw["bytes_checked"], raw["chunks_checked"],
                raw["files_checked"], raw["file_problems"], raw["seed"],
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path, key)

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k not in ("path", "key")}
        write_atomic(self.path, json.dumps(data).encode("utf-8"))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
