"""``sneakernet info``: what a drive is."""

from __future__ import annotations

import json

import click

from .command import Command
from .exits import run
from .keys import key_options, unlock_given
from .render import print_info


@click.command("info", cls=Command)
@click.argument("drive", metavar="DRIVE")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print as JSON, the fields of the text by name (schema: docs/info.schema.json).",
)
@key_options
@click.pass_context
def info_command(ctx: click.Context, drive: str, as_json: bool) -> None:
    """Say what DRIVE is: shipment, fingerprint, drive n of N, label, created, sizes.

    \b
    Examples:
      sneakernet info /mnt/usb
      sneakernet info /mnt/usb --json
      sneakernet info /mnt/usb --identity key.txt     # an encrypted shipment, its totals too

    Exit codes: 0 shown; 2 not a drive.
    """
    from ..info import info

    key = unlock_given(ctx)

    found = run(ctx, lambda: info(drive, key))
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
        return
    print_info(found)
