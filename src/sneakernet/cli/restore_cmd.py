"""``sneakernet restore``: restore what drives carry into a destination, each drive's lines as soon as it is in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .command import Command
from .exits import finish, restore_code, run
from .keys import key_options, unlock_given
from .params import storage_option
from .progress import echo_line, progress_for
from .render import print_restore_report, restore_drive_lines

if TYPE_CHECKING:
    from ..restorer import DriveOutcome, RestoreReport


@click.command("restore", cls=Command)
@click.argument("drives", nargs=-1, required=True, metavar="DRIVE...")
@click.option(
    "--into",
    "dest",
    required=True,
    metavar="DEST",
    help="The destination directory, or an object store's URL (s3://bucket/prefix; the s3 extra): each file an "
    "object, uploaded once checked (docs/restore.md, Into an object store).",
)
@click.option(
    "--journal",
    metavar="DIR",
    help="With a URL destination: the local directory of the journal and the parts of files in progress.  "
    "[default: $XDG_STATE_HOME/sneakernet/restores/<url>]",
)
@storage_option
@click.option(
    "--include",
    "includes",
    metavar="PATTERN",
    multiple=True,
    help="Restore only the paths PATTERN matches and what is below them (repeat; later runs: the same or none): a glob "
    "over the whole path, as tar's: '*' any run of bytes, '/' included; '?' any one byte; '[a-z]' one of a class, "
    "'[!a-z]' one not; no escapes ('[*]' is a '*'); a trailing '/' dropped. E.g. 'images', 'runs/0?', '*.txt'.",
)
@click.option(
    "--catalog",
    metavar="FILE",
    help="The shipment's catalog (e.g. the sender's copy of a --swap pack), for drives that do not carry it.",
)
@click.option("--keep-journal", is_flag=True, help="Keep DEST/.sneakernet once the shipment is complete.")
@click.option(
    "--keep-setuid",
    is_flag=True,
    help="Keep files' setuid and setgid bits (cleared by default): only for a shipment from a sender you trust.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a non-empty DEST that holds no restore of this shipment: its files where the shipment has "
    "files are replaced (counted and named in the report); the rest is left alone.",
)
@click.option(
    "--no-space-check",
    is_flag=True,
    help="Restore even when the drives' data exceeds DEST's free space (a compressing filesystem); a full DEST then "
    "stops it with exit 4.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (schema: docs/restore-report.schema.json)."
)
@click.option(
    "--at-once",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Write up to N drives at the same time. Default: drives on different devices at once, drives sharing one "
    "device one after another.",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="While another restore writes into DEST, exit 2 at once instead of waiting for it to end.",
)
@key_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def restore_command(
    ctx: click.Context,
    drives: tuple[str, ...],
    dest: str,
    includes: tuple[str, ...],
    catalog: str | None,
    keep_journal: bool,
    keep_setuid: bool,
    force: bool,
    no_space_check: bool,
    as_json: bool,
    at_once: int | None,
    no_wait: bool,
    quiet: bool,
    journal: str | None,
    storage_options: tuple[str, ...],
) -> None:
    """Restore the files DRIVE carries into DEST; give the drives at hand at once (those on different devices are
    read at the same time, --at-once N for more), or run it per drive, in any order, as drives arrive.

    A file appears under its final name only when complete and matching its BLAKE3. Running a drive twice does
    nothing; a run that was killed resumes. When every wanted entry is in, directory metadata is set, the
    journal is removed (DEST/.sneakernet keeps a record of the finished shipment: status says complete, and a
    drive of it again is a no-op) and the fingerprint is stated. Files lose their setuid and setgid bits (the
    summary counts them) unless --keep-setuid. While another restore writes into DEST, this one says so and waits
    for it to end (--no-wait: exit 2 instead). A drive that fails while read (an I/O error) stops alone: the
    others go on.

    \b
    Examples:
      sneakernet restore /mnt/usb --into /data/dataset
      sneakernet restore shipment/drive-* --into /data/dataset
      sneakernet restore /mnt/usb --into /data/subset --include 'images/*'
      sneakernet restore /mnt/usb --into /data/dataset --catalog shipment.catalog.jsonl.zst
      sneakernet restore /mnt/usb --into s3://bucket/dataset --journal ~/dataset.journal
      sneakernet restore /mnt/usb --into /data/dataset --identity key.txt    # an encrypted shipment

    Exit codes: 0 every drive given went in cleanly (even with drives still to come); 1 a drive was refused,
    failed while read, or some files were damaged (named); 2 bad arguments (or another restore running, with
    --no-wait; an encrypted shipment without its key, or with a wrong one: nothing written); 4 the destination
    is full, or too small for the drives' data up front (nothing written; free space, run again).
    """
    key = unlock_given(ctx)
    progress = progress_for("restore", quiet)

    shown: set[str] = set()

    def show(drive: DriveOutcome) -> None:
        """A drive's lines as soon as it is in, not after the last drive."""
        shown.add(drive.path)
        for line in restore_drive_lines(drive):
            echo_line(line)

    into = _destination(ctx, dest, journal, storage_options)
    report = run(
        ctx,
        lambda: into(
            drives,
            include=includes,
            keep_journal=keep_journal,
            force=force,
            progress=progress,
            catalog=catalog,
            check_space=not no_space_check,
            on_drive=None if as_json else show,
            keep_setuid=keep_setuid,
            wait=None if no_wait else _waiting,
            at_once=at_once,
            key=key,
        ),
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_restore_report(report, shown)
    finish(ctx, restore_code(report))


def _destination(
    ctx: click.Context, dest: str, journal: str | None, pairs: tuple[str, ...]
) -> Callable[..., RestoreReport]:
    """How the drives are restored: into a local directory, or into an object store with a local journal."""
    from ..io.remote import is_url, parse_storage_options

    if not is_url(dest):
        if journal or pairs:
            raise click.UsageError("--journal and --storage-option go with a URL destination (s3://bucket/prefix)", ctx)
        from ..restorer import restore

        return lambda drives, **options: restore(drives, dest, **options)
    from ..restorer.objects import restore_to_store

    storage = run(ctx, lambda: parse_storage_options(pairs))

    def into_store(drives: tuple[str, ...], **options: Any) -> RestoreReport:
        options.pop("check_space", None)  # the journal's directory holds only the files in progress
        return restore_to_store(drives, dest, journal=journal, storage_options=storage, **options)

    return into_store


def _waiting(message: str) -> None:
    click.echo(f"sneakernet: {message}", err=True)
