"""What ``--json`` prints besides each command's own report: the schema version and the error object.

Every object a command prints under ``--json`` starts with ``"schema_version"`` (docs/*.schema.json pin it). It
goes up when a field of that output is removed or changes meaning; fields may be added without it changing. A
command that fails under ``--json`` prints :func:`error_object` on stdout (as well as its one line on stderr), so a
script reading stdout always gets JSON (docs/error.schema.json).
"""

from __future__ import annotations

from typing import Any

#: The version of the schemas in docs/*.schema.json; all outputs are at 1.
SCHEMA_VERSION = 1


def versioned(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``schema_version`` first."""
    return {"schema_version": SCHEMA_VERSION, **data}


def error_object(kind: str, message: str, exit_code: int) -> dict[str, Any]:
    """The JSON a failed command prints on stdout under ``--json``: what failed (the error's class name, e.g.
    ``UsageError``), the message of the stderr line, and the exit code."""
    return versioned({"error": {"kind": kind, "message": message, "exit_code": exit_code}})
