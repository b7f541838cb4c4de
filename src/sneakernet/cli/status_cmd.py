"""``sneakernet status``: which drives a destination still needs."""

from __future__ import annotations

import json

import click

from .command import Command
from .exits import finish, run, status_code
from .render import print_status


@click.command("status", cls=Command)
@click.argument("dest", metavar="DEST")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (schema: docs/status.schema.json).")
@click.option(
    "--journal",
    metavar="DIR",
    help="With a URL (restore --into s3://...): the restore's journal directory, if it was given to restore.",
)
@click.pass_context
def status_command(ctx: click.Context, dest: str, as_json: bool, journal: str | None) -> None:
    """Say which drives DEST still needs, and how many files and bytes wait on each.

    \b
    Examples:
      sneakernet status /data/dataset
      sneakernet status /data/dataset --json
      sneakernet status s3://bucket/dataset --journal ~/dataset.journal

    Exit codes: 0 the shipment is complete (finished, or all in with --keep-journal); 3 drives (or good copies
    of damaged drives) are still needed; 2 DEST does not exist, is a drive, or holds no restore. A script waits
    with: while sneakernet status DEST; [ $? -eq 3 ]; do sleep 60; done (until ... loops on exit 2 too).
    """
    from ..io.remote import is_url
    from ..restorer import status

    if is_url(dest):
        # A restore into an object store keeps its journal in a local directory: that is what status reads.
        from ..restorer.objects import default_journal

        dest = journal or default_journal(dest)
    elif journal:
        raise click.UsageError("--journal goes with a URL (s3://bucket/prefix)", ctx)
    state = run(ctx, lambda: status(dest))
    if as_json:
        click.echo(json.dumps(state.to_json(), indent=2))
    else:
        print_status(state)
    finish(ctx, status_code(state))
