"""``sneakernet ls``: the shipment's paths from the catalog a drive carries."""

from __future__ import annotations

import json

import click

from .command import Command
from .exits import run
from .keys import key_options, unlock_given
from .render import ls_line


@click.command("ls", cls=Command)
@click.argument("drive", metavar="DRIVE")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: path, kind, size, first_drive, last_drive (schema: docs/ls-entry.schema.json).",
)
@key_options
@click.pass_context
def ls_command(ctx: click.Context, drive: str, as_json: bool) -> None:
    """List the shipment's paths from the catalog DRIVE carries, with sizes and the drives that hold each.

    \b
    Examples:
      sneakernet ls /mnt/usb
      sneakernet ls /mnt/usb --json | grep weights
      sneakernet ls /mnt/usb --identity key.txt       # an encrypted shipment

    Exit codes: 0 listed; 2 not a drive, or a drive without the catalog.
    """
    from ..info import ls

    key = unlock_given(ctx)

    def emit() -> None:
        for entry in ls(drive, key):
            if as_json:
                click.echo(json.dumps(entry.to_json()))
            else:
                click.echo(ls_line(entry))

    run(ctx, emit)
