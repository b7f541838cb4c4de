"""Profiles: pack's options in a YAML file (``--config sneakernet.yaml``), ``sneakernet.config.load_profile()``.

A profile is a mapping of option names to values; every key is optional and the command line overrides it
(cli/params.py merges). Reading is strict, so that a typo cannot silently pack with a default: an unknown
key, a key given twice, or a value of the wrong kind is refused with the key and its line. YAML is read with
``yaml.SafeLoader`` only (no tags that build Python objects), through its node API, which keeps line numbers.
This module reads and checks; it packs nothing.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .errors import SneakernetError, UsageError
from .format import CIPHERS, MAX_CHUNK_SIZE
from .options import MIN_CHUNK_SIZE
from .units import format_size, parse_size

if TYPE_CHECKING:
    import yaml

#: zstd's levels, as ``--level`` takes them.
MAX_LEVEL = 22
#: The most encoding threads, as ``--threads`` takes them.
MAX_THREADS = 256
#: The most parity drives a group has (docs/format.md 19.7.1).
MAX_PARITY = 6


@dataclass(frozen=True)
class Profile:
    """The options a profile sets; None for every key it leaves out (or sets to null)."""

    drive_size: int | None = None
    chunk_size: int | None = None
    segment_size: int | None = None
    level: int | None = None
    reserve: int | None = None
    excludes: tuple[str, ...] | None = None
    skip_unreadable: bool | None = None
    threads: int | None = None
    out: str | None = None
    drives: tuple[str, ...] | None = None
    #: Encryption (docs/format.md 19.8): public keys and files of them; a passphrase only by file, never here.
    encrypt_to: tuple[str, ...] | None = None
    recipients_files: tuple[str, ...] | None = None
    passphrase_file: str | None = None
    #: The chunks' cipher (docs/format.md 19.8.2), one of format.CIPHERS; pack's default when left out.
    cipher: str | None = None
    #: pack --parity M, --parity-drive, --parity-dir (docs/pack.md, Parity drives).
    parity: int | None = None
    parity_drives: tuple[str, ...] | None = None
    parity_dir: str | None = None
    #: A cluster pack (docs/pack.md, "On a Dask cluster"): --scheduler, --drives-from, --work-dir.
    scheduler: str | None = None
    drives_from: str | None = None
    work_dir: str | None = None
    #: A URL source's fsspec options (``endpoint_url: http://minio:9000``, ``profile: archive``): never secrets,
    #: which belong in the environment or ~/.aws, as a profile is a file people share.
    storage_options: dict[str, Any] | None = None

    def given(self) -> dict[str, Any]:
        """The keys the profile sets, with their values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


KEYS = tuple(f.name for f in fields(Profile))


class _Refused(Exception):
    """A value's problem, before the key and line are put in front of it."""


def _size(minimum: int, maximum: int | None = None, what: str = "") -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _Refused(f"give a size such as 8TB, 500GB, 4MiB or a number of bytes, not {_shown(value)}")
        if isinstance(value, str):
            try:
                value = parse_size(value)
            except SneakernetError as exc:
                raise _Refused(str(exc)) from exc
        if value < minimum or (maximum is not None and value > maximum):
            raise _Refused(what or f"must be at least {format_size(minimum)}, not {format_size(value)}")
        return int(value)

    return check


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Refused(f"give a whole number from {low} to {high}, not {_shown(value)}")
        if not low <= value <= high:
            raise _Refused(f"must be from {low} to {high}, not {value}")
        return value

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused(f"give true or false, not {_shown(value)}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Refused(f"give a path, not {_shown(value)}")
    return value


def _texts(what: str) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise _Refused(f"give a list of {what}s (one '- item' a line, or [a, b]), not {_shown(value)}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise _Refused(f"every item must be a {what} (a string), not {_shown(item)}")
        return tuple(value)

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Refused(f"give one of {', '.join(choices)}, not {_shown(value)}")
        return str(value)

    return check


def _storage_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Refused(f"give a mapping of fsspec option names to values (endpoint_url: ...), not {_shown(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise _Refused(f"every key must be an option name, not {_shown(key)}")
        if not isinstance(item, str | int | float | bool | dict) or item is None:
            raise _Refused(f"{key}: give a string, a number, true/false or a mapping, not {_shown(item)}")
    return dict(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "drive_size": _size(1),
    "chunk_size": _size(
        MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, f"must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes (64KiB to 64MiB)"
    ),
    "segment_size": _size(1),
    "level": _integer(1, MAX_LEVEL),
    "reserve": _size(0),
    "excludes": _texts("pattern"),
    "skip_unreadable": _flag,
    "threads": _integer(0, MAX_THREADS),
    "out": _text,
    "drives": _texts("drive path"),
    "encrypt_to": _texts("public key"),
    "recipients_files": _texts("recipients file path"),
    "passphrase_file": _text,
    "cipher": _choice(CIPHERS),
    "parity": _integer(0, MAX_PARITY),
    "parity_drives": _texts("parity drive path"),
    "parity_dir": _text,
    "scheduler": _text,
    "drives_from": _text,
    "work_dir": _text,
    "storage_options": _storage_options,
}
assert set(_CHECKS) == set(KEYS)


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and check the profile at ``path``.

    Raises :class:`UsageError` with one line naming the file, the line and the key for: a missing or unreadable
    file, YAML that does not parse, a document that is not a mapping, an unknown key, a key given twice, a bad
    value. An empty file is an empty profile.
    """
    name = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UsageError(f"profile {name} does not exist: give the path of a YAML file") from None
    except UnicodeDecodeError:
        raise UsageError(f"profile {name} is not UTF-8 text: give a YAML file") from None
    except OSError as exc:
        raise UsageError(f"cannot read profile {name}: {exc.strerror}") from exc
    import yaml  # here, not at the top: yaml is most of the start-up of commands that read no profile

    loader = yaml.SafeLoader(text)
    try:
        return _profile(name, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "not YAML"
        raise UsageError(f"profile {name}{where}: not valid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"profile {name}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _profile(name: str, loader: yaml.SafeLoader) -> Profile:
    import yaml

    root = loader.get_single_node()
    if root is None or (isinstance(root, yaml.ScalarNode) and loader.construct_object(root) is None):
        return Profile()  # an empty document
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise UsageError(
            f"profile {name}, line {root.start_mark.line + 1}: the profile must be a mapping of option names to "
            f"values (drive_size: 8TB, one a line), not {kind}"
        )
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise UsageError(f"profile {name}, line {line}: key {key!r} is not an option name")
        if key not in _CHECKS:
            close = difflib.get_close_matches(key.replace("-", "_"), KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"profile {name}, line {line}: unknown key {key!r}{hint}; the keys are {', '.join(KEYS)}")
        if key in lines:
            raise UsageError(f"profile {name}, line {line}: key {key!r} is given twice (first on line {lines[key]})")
        lines[key] = line
        value = loader.construct_object(value_node, deep=True)
        if value is None:
            continue
        try:
            values[key] = _CHECKS[key](value)
        except _Refused as exc:
            raise UsageError(f"profile {name}, line {value_node.start_mark.line + 1}: {key}: {exc}") from None
    return Profile(**values)


__all__ = ["KEYS", "Profile", "load_profile"]
