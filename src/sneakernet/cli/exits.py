"""The one place where errors become exit codes: sneakernet's own errors, Ctrl-C and SIGTERM each end a command
with one line on stderr (and the JSON error object under --json) and their exit code (errors.ExitCode); anything
else is a bug and keeps its traceback."""

from __future__ import annotations

import json
import signal
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from ..errors import ExitCode, SneakernetError
from ..output import error_object
from .context import settings
from .progress import close_progress

T = TypeVar("T")


#: What an interrupted command leaves behind, and what to do, by command.
INTERRUPTED = {
    "pack": (
        "what was being written is left unfinished (.partial files, no drive.json): run the same pack with --resume "
        "to go on (finished drives are kept)"
    ),
    "verify": "run the same command again to resume (--restart to start over); nothing was written on the drive",
    "restore": "run the same command again to resume; the journal keeps everything already done",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: every clean-up that Ctrl-C runs runs for it too."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run(ctx: click.Context, action: Callable[[], T]) -> T:
    """Call the library; turn sneakernet's errors into one line on stderr and their exit code. SIGTERM is handled
    as Ctrl-C is (it ended pack with no word and exit code 143 before)."""
    # Only the main thread may set a handler (a notebook or a test may call the commands from another).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return action()
    except SneakernetError as exc:
        close_progress(ctx)
        if settings(ctx).get("debug"):
            traceback.print_exc()
        fail(ctx, str(exc), exc.exit_code, type(exc).__name__)
    except KeyboardInterrupt as exc:
        close_progress(ctx)
        hint = INTERRUPTED.get(ctx.info_name or "", "nothing was changed")
        if isinstance(exc, Terminated):
            fail(ctx, f"terminated (SIGTERM); {hint}", ExitCode.TERMINATED, "Terminated", prefix="sneakernet: ")
        fail(ctx, f"interrupted; {hint}", ExitCode.INTERRUPTED, "Interrupted", prefix="sneakernet: ")
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    raise AssertionError("unreachable")


def fail(
    ctx: click.Context, message: str, code: ExitCode, kind: str = "UsageError", prefix: str = "sneakernet: error: "
) -> NoReturn:
    """End the command: ``message`` on one line of stderr and exit ``code``; under --json, the error object
    (docs/error.schema.json) on stdout too, so a script reading stdout gets JSON either way."""
    if ctx.params.get("as_json"):
        click.echo(json.dumps(error_object(kind, message, int(code))))
    click.echo(f"{prefix}{message}", err=True)
    ctx.exit(int(code))
