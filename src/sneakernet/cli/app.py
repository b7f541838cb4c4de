"""The ``sneakernet`` group: the options given before a command's name, and the commands.

Each command starts without loading the others' library modules (pack, restore, verify and info are imported by
the command that uses them): plan, which runs in a fraction of a second, notices.
"""

from __future__ import annotations

import click

from .._version import __version__
from ..allocator import keep_freed_buffers
from .command import Command
from .context import settings
from .info_cmd import info_command
from .ls_cmd import ls_command
from .pack_cmd import pack_command
from .parity_cmd import parity_command
from .plan_cmd import plan_command
from .progress import PROGRESS_EVERY
from .rebuild_cmd import rebuild_command
from .repair_cmd import repair_command
from .restore_cmd import restore_command
from .status_cmd import status_command
from .verify_cmd import verify_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="sneakernet")
@click.option("--debug", is_flag=True, help="Show a traceback with every error.")
@click.option("-v", "--verbose", count=True, help="Say what happens, drive by drive, on stderr (-vv: more).")
@click.option("-q", "--quiet", "quiet_all", is_flag=True, help="No progress bars or warnings for any command.")
@click.option(
    "--progress-every",
    type=click.FloatRange(0),
    default=PROGRESS_EVERY,
    metavar="SECONDS",
    help="When stderr is not a terminal, print a progress line this often (0: never).  [default: 30]",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: int, quiet_all: bool, progress_every: float) -> None:
    """Ship datasets too big for the network on drives: pack, verify on arrival, restore.

    \b
    Examples:
      sneakernet plan dataset/ --drive-size 8TB
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB
      sneakernet -v verify /mnt/usb --fingerprint 3f9a-12bc-77d0-e145-9abc
      sneakernet restore /mnt/usb --into /data/dataset

    Exit codes: 0 success; 1 done, but data problems found (see the message); 2 bad input, nothing written;
    3 shipment incomplete; 4 out of space; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    """
    found = settings(ctx)
    found.update(quiet=quiet_all, debug=debug, verbose=verbose, progress_every=progress_every)
    keep_freed_buffers()


main.command_class = Command  # a command added with @main.command: the common options, JSON errors for bad options
for command in (
    pack_command,
    parity_command,
    plan_command,
    verify_command,
    restore_command,
    rebuild_command,
    repair_command,
    status_command,
    ls_command,
    info_command,
):
    main.add_command(command)
