"""What a command knows of its invocation: the settings of the options every command takes (-q, -v, --debug,
--progress-every, before or after its name) and whether an option was given on the command line."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource


def settings(ctx: click.Context) -> dict[str, Any]:
    """What the options every command takes (before or after its name) set: quiet, verbose, debug, ..."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.ensure_object(dict)
    return obj


def is_quiet(ctx: click.Context, quiet: bool = False) -> bool:
    """-q/--quiet, given before the command or after it."""
    return quiet or bool(settings(ctx).get("quiet"))


def on_command_line(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not left to its default)."""
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
