"""The ``sneakernet`` group: the options given before a command's name, and the commands.

Each command starts without loading the others' modules, nor their library modules (pack, restore, verify and info
are imported by the command that uses them): a command's module is imported when the command runs (COMMANDS).
plan, which runs in a fraction of a second, notices, and so does verify's CPU time on a small drive.
"""

from __future__ import annotations

import importlib

import click

from .._version import __version__
from ..allocator import keep_freed_buffers
from .command import Command
from .context import settings
from .progress import PROGRESS_EVERY

#: Each command's module in this package and its click command there, imported only when the command runs (or
#: when a listing needs them all, as ``sneakernet --help`` does): ``verify`` loads neither pack's options nor the
#: planner that plan and info render.
COMMANDS = {
    "pack": ("pack_cmd", "pack_command"),
    "parity": ("parity_cmd", "parity_command"),
    "plan": ("plan_cmd", "plan_command"),
    "verify": ("verify_cmd", "verify_command"),
    "restore": ("restore_cmd", "restore_command"),
    "rebuild": ("rebuild_cmd", "rebuild_command"),
    "repair": ("repair_cmd", "repair_command"),
    "status": ("status_cmd", "status_command"),
    "ls": ("ls_cmd", "ls_command"),
    "info": ("info_cmd", "info_command"),
}


class Group(click.Group):
    """The ``sneakernet`` group, whose commands (:data:`COMMANDS`) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, name = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f".{module}", __package__), name)
            assert command.name == cmd_name, f"{module}.{name} is {command.name!r}, not {cmd_name!r}"
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in COMMANDS:
            self.all_commands()  # no such command: click suggests the nearest of those imported, so import them all
        return super().resolve_command(ctx, args)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command by name, all imported (for the tests and the generated docs that list them)."""
        ctx = click.Context(self)
        return {name: command for name in self.list_commands(ctx) if (command := self.get_command(ctx, name))}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
