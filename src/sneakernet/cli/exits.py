"""The one place where a command's end becomes its exit code (errors.ExitCode).

sneakernet's own errors, Ctrl-C and SIGTERM each end a command with one line on stderr (and the JSON error object
under --json) and their exit code; anything else is a bug and keeps its traceback. A command that runs to its end
exits with what its report says (:func:`pack_code`, :func:`verify_code`, :func:`restore_code`,
:func:`status_code`: the exit-code lines of each command's --help).
"""

from __future__ import annotations

import json
import signal
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from ..errors import ExitCode, SneakernetError
from ..output import error_object
from .context import settings
from .progress import close_progress

if TYPE_CHECKING:
    from ..packer import PackSummary
    from ..restorer import RestoreReport, ShipmentStatus
    from ..verifier import VerifyReport

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


def finish(ctx: click.Context, code: ExitCode) -> None:
    """End a command that ran to its end with ``code`` (nothing to do for OK: click exits 0)."""
    if code != ExitCode.OK:
        ctx.exit(int(code))


def pack_code(summary: PackSummary) -> ExitCode:
    """1 when files changed while they were read (they are listed), else 0."""
    return ExitCode.PROBLEMS if summary.changed_count else ExitCode.OK


def verify_code(report: VerifyReport) -> ExitCode:
    """1 for damage, an unfinished drive or a drive of another shipment; else 2 for a path that is not a drive;
    else 0. Damage outranks a mistyped path: a script must not read "bad arguments" when a drive given is damaged."""
    from ..verifier import Status

    if any(not r.ok and r.status != Status.NOT_A_DRIVE.value for r in report.drives):
        return ExitCode.PROBLEMS
    if report.recovery is not None and report.recovery.status == "lost":
        return ExitCode.PROBLEMS  # drives missing beyond what the parity drives given rebuild
    if any(r.status == Status.NOT_A_DRIVE.value for r in report.drives):
        return ExitCode.USAGE
    return ExitCode.OK


def restore_code(report: RestoreReport) -> ExitCode:
    """1 when a drive was refused or some files were damaged, else 0 (even with drives still to come)."""
    return ExitCode.OK if report.clean else ExitCode.PROBLEMS


def status_code(state: ShipmentStatus) -> ExitCode:
    """3 while drives (or good copies of damaged drives) are still needed, 0 once the shipment is complete."""
    return ExitCode.OK if state.complete else ExitCode.INCOMPLETE
