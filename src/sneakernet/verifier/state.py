"""Verify's saved progress: a drive's data pass resumes at its last finished segment. The state is plain data
(:class:`VerifyState`); where it is kept is a :class:`StateStore`: today's :class:`StateDir`, a directory off the
drive (nothing is ever written on a drive being verified), by default in the user's cache directory."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..io.atomic import write_atomic


def default_state_dir() -> str:
    """Where verify keeps its progress: $SNEAKERNET_STATE_DIR, else the user's cache directory."""
    if os.environ.get("SNEAKERNET_STATE_DIR"):
        return os.environ["SNEAKERNET_STATE_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "sneakernet", "verify")


@dataclass
class VerifyState:
    """Progress of one drive's data pass, saved after every finished segment.

    It is keyed by the manifest's BLAKE3 and the mode, so a state never applies to other data or another check.
    """

    key: str
    done_segments: list[str] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)
    bytes_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    file_problems: list[dict[str, Any]] = field(default_factory=list)
    #: The --sample choice, so a resumed run reads the same segments even when no --seed was given.
    seed: int | None = None


class StateStore(Protocol):
    """Where verify keeps its progress between runs, each state under its key."""

    def load(self, key: str) -> VerifyState:
        """The state saved under ``key``, or a new one when none is (or it cannot be read)."""

    def save(self, state: VerifyState) -> None:
        """Keep ``state`` under its key, replacing what was there at once (a crash leaves the old or the new)."""

    def clear(self, key: str) -> None:
        """Forget the state under ``key``, if any."""

    def holds(self, prefix: str) -> bool:
        """Whether a state whose key starts with ``prefix`` is kept."""


class StateDir:
    """The states as JSON files of a directory, each written atomically and durably."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _file(self, key: str) -> str:
        return os.path.join(self.path, key + ".json")

    def load(self, key: str) -> VerifyState:
        try:
            with open(self._file(key), encoding="utf-8") as handle:
                raw = json.load(handle)
            return VerifyState(
                key, raw["done_segments"], raw["damaged"], raw["bytes_checked"], raw["chunks_checked"],
                raw["files_checked"], raw["file_problems"], raw["seed"],
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return VerifyState(key)

    def save(self, state: VerifyState) -> None:
        os.makedirs(self.path, exist_ok=True)
        data = {k: v for k, v in asdict(state).items() if k != "key"}
        write_atomic(self._file(state.key), json.dumps(data).encode("utf-8"))

    def clear(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._file(key))

    def holds(self, prefix: str) -> bool:
        try:
            saved = os.listdir(self.path)
        except OSError:
            return False
        return any(name.startswith(prefix) for name in saved)
