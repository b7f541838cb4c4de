"""Shipment paths as the format writes them (``"path"`` for UTF-8, else ``"path_b64"``), shows them in messages,
and the reserved top-level name."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from typing import Any

from ..errors import FormatError
from .names import RESERVED_NAME


def encode_path(key: str, path: bytes, out: dict[str, Any]) -> None:
    """Store ``path`` under ``key`` when it is UTF-8, else under ``key + '_b64'``."""
    try:
        out[key] = path.decode("utf-8")
    except UnicodeDecodeError:
        out[key + "_b64"] = base64.b64encode(path).decode("ascii")


def decode_path(key: str, raw: dict[str, Any]) -> bytes:
    value = raw.get(key)
    if type(value) is str and key + "_b64" not in raw:  # the usual case first: a UTF-8 path
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass  # refused below, with its reason
    if key in raw and key + "_b64" in raw:
        raise FormatError(f"record has both {key!r} and {key}_b64")
    if key in raw:
        value = raw[key]
        if not isinstance(value, str):
            raise FormatError(f"field {key!r} is not a string")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # A lone surrogate would give a second spelling of a path that path_b64 spells: refuse it.
            raise FormatError(f"field {key!r} holds a lone surrogate; non-UTF-8 paths go in {key}_b64") from exc
    if key + "_b64" in raw:
        try:
            return base64.b64decode(raw[key + "_b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"field {key}_b64 is not valid base64") from exc
    raise FormatError(f"record has no {key!r}")


#: Printable ASCII without the two characters JSON escapes: such a path is its own JSON string.
_PLAIN = re.compile(rb"[\x20-\x21\x23-\x5b\x5d-\x7e]*")


def path_json(key: str, path: bytes) -> str:
    """``"key":"path"`` (or ``"key_b64":"..."``) exactly as ``json.dumps`` of :func:`encode_path` writes it, fast
    for the usual plain path (pack writes one or two per file)."""
    if _PLAIN.fullmatch(path):
        return f'"{key}":"{path.decode("ascii")}"'
    out: dict[str, Any] = {}
    encode_path(key, path, out)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=True)[1:-1]


def show_path(path: bytes) -> str:
    """A path for messages: UTF-8 where possible, backslash escapes for the rest, newlines visible."""
    return path.decode("utf-8", "backslashreplace").replace("\n", "\\n")


def fold_name(name: bytes) -> str:
    """How a case-insensitive, normalising filesystem sees a name."""
    return unicodedata.normalize("NFC", name.decode("utf-8", "surrogateescape")).casefold()


def is_reserved(path: bytes) -> bool:
    """Whether a shipment path is, or lies under, :data:`RESERVED_NAME` (in any case or normalisation: on a
    destination that folds names, ``.SneakerNet/parts`` is restore's own parts directory)."""
    first = path.split(b"/", 1)[0]
    return first.startswith(b".") and fold_name(first) == RESERVED_NAME
