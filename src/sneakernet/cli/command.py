"""The click command class every sneakernet command is made with: the options every command takes, after its
name as well as before it, the library's log on stderr for -v, and the JSON error object for click's own usage
errors under --json."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from ..output import error_object
from .context import is_quiet, on_command_line, settings


def _setting(key: str, combine: Callable[[Any, Any], Any]) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback that records an option given after the command's name where main records it before."""

    def record(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name and on_command_line(ctx, param.name):
            found = settings(ctx)
            found[key] = combine(found.get(key), value)

    return record


def common_options() -> list[click.Option]:
    """-q, -v, --debug and --progress-every for one command: given after its name, they mean what they mean
    before it (``sneakernet verify -v D`` is ``sneakernet -v verify D``)."""
    return [
        click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_setting("quiet", lambda old, new: True),
            help="No progress bar, no warnings.",
        ),
        click.Option(
            ["-v", "--verbose"], count=True, expose_value=False,
            callback=_setting("verbose", lambda old, new: (old or 0) + new),
            help="Say what happens, drive by drive, on stderr (-vv: more).",
        ),
        click.Option(
            ["--debug"], is_flag=True, expose_value=False, callback=_setting("debug", lambda old, new: True),
            help="Show a traceback with every error.",
        ),
        click.Option(
            ["--progress-every"], type=click.FloatRange(0), metavar="SECONDS", expose_value=False,
            callback=_setting("progress_every", lambda old, new: new),
            help="When stderr is not a terminal, print a progress line this often (0: never).",
        ),
    ]  # fmt: skip


class Command(click.Command):
    """A command with the options every command takes (-q, -v, --debug, --progress-every: after its name as well
    as before), whose bad options (click's own usage errors) also print the JSON error object under --json."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        have = {opt for param in self.params for opt in param.opts}
        self.params.extend(option for option in common_options() if not have & set(option.opts))

    def invoke(self, ctx: click.Context) -> Any:
        quiet = is_quiet(ctx, bool(ctx.params.get("quiet")))  # pack, verify and restore have a -q of their own
        log_to_stderr(0 if quiet else settings(ctx).get("verbose") or 0)
        return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        as_json = "--json" in args  # before parsing, which consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if as_json:
                click.echo(json.dumps(error_object("UsageError", exc.format_message(), exc.exit_code)))
            raise


def log_to_stderr(verbose: int) -> None:
    """-v: the library's log on stderr (-vv: its debug messages too); none without -v, however often main runs
    in one process (the tests run it many times)."""
    library = logging.getLogger("sneakernet")
    if not verbose:
        library.handlers = []
        library.setLevel(logging.NOTSET)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sneakernet: %(message)s"))
    library.handlers = [handler]
    library.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
