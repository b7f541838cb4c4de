"""The checks every record parser shares: a field of an exact JSON type, a natural number, a BLAKE3 hex digest;
problems are collected, then refused at once."""

from __future__ import annotations

import json
from typing import Any

from ..errors import FormatError
from .names import HEX64


def typed(raw: dict[str, Any], name: str, kind: type, problems: list[str]) -> Any:
    value = raw.get(name)
    # ``type(...) is``: exact types, so JSON true is never taken for an integer (and it is the fast path).
    if type(value) is not kind:
        problems.append(f"{name!r} missing or not {kind.__name__}")
        return None
    return value


def natural(raw: dict[str, Any], name: str, problems: list[str]) -> int:
    value = raw.get(name)
    if type(value) is int and value >= 0:
        return value
    value = typed(raw, name, int, problems)
    if value is not None:
        problems.append(f"{name!r} is negative")
    return 0


def bounded(raw: dict[str, Any], name: str, low: int, high: int, problems: list[str]) -> int:
    """An integer field within ``low`` ... ``high`` (version 2's drive numbers, lanes, pieces: docs/format.md
    19.9), checked as it is parsed so that nothing is sized by a hostile number."""
    value = raw.get(name)
    if type(value) is int and low <= value <= high:
        return value
    if typed(raw, name, int, problems) is not None:
        problems.append(f"{name!r} is {value}, outside {low} ... {high}")
    return low


def hex_digest(raw: dict[str, Any], name: str, problems: list[str]) -> str:
    value = typed(raw, name, str, problems)
    if value is not None and not HEX64.fullmatch(value):
        problems.append(f"{name!r} is not 64 lowercase hex digits")
    return value or ""


def check(record_type: str, problems: list[str]) -> None:
    if problems:
        raise FormatError(f"bad {record_type} record: " + "; ".join(problems))


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """The JSON object a small file such as drive.json holds; a FormatError naming ``what`` when it is none."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise FormatError(f"{what} is not a JSON object")
    return raw
