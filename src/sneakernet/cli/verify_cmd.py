"""``sneakernet verify``: check drives on arrival, each drive's lines as soon as it is checked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..errors import ExitCode
from .command import Command
from .context import is_quiet
from .exits import fail, finish, run, verify_code
from .keys import key_options, unlock_given
from .progress import echo_line, progress_for
from .render import print_verify_report, verify_drive_lines

if TYPE_CHECKING:
    from ..verifier import DriveReport


@click.command("verify", cls=Command)
@click.argument("drives", nargs=-1, required=True, metavar="DRIVE...")
@click.option("--quick", is_flag=True, help="Sizes, manifests, checksum file and catalog only: no data is read.")
@click.option("--deep", is_flag=True, help="Also decompress every chunk and check whole-file hashes.")
@click.option(
    "--sample",
    type=click.FloatRange(0, 100, min_open=True),
    metavar="PERCENT",
    help="Read a random sample of segments.",
)
@click.option("--seed", type=int, help="Seed of --sample's choice, to repeat a sample.")
@click.option(
    "--fingerprint",
    "expected",
    metavar="HASH",
    help="The fingerprint pack printed (16+ hex digits, dashes allowed): the drive must belong to it.",
)
@click.option(
    "--catalog",
    metavar="FILE",
    help="The shipment's catalog, for drives that do not carry it (a --swap pack's): checks --fingerprint.",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted verify.")
@click.option(
    "--at-once",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Check up to N drives at the same time. Default: drives on different devices at once, drives sharing one "
    "device one after another.",
)
@click.option(
    "--threads",
    type=click.IntRange(0, 256),
    default=0,
    help="Hashing threads, 0 for one per core; shared out among the drives checked at once.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (schema: docs/verify-report.schema.json)."
)
@key_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only problems.")
@click.pass_context
def verify_command(
    ctx: click.Context,
    drives: tuple[str, ...],
    quick: bool,
    deep: bool,
    sample: float | None,
    seed: int | None,
    expected: str | None,
    catalog: str | None,
    restart: bool,
    at_once: int | None,
    threads: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Check each DRIVE alone, offline and read-only, and name every file that any damage hurts.

    By default every stored byte is hashed. Drives on different devices are checked at the same time, each
    drive's result printed as soon as it is done; the drives of the shipment that were not given are named. An
    interrupted verify resumes where it stopped (progress is kept in ~/.cache/sneakernet/verify, never on the
    drive) unless --restart. An encrypted shipment's drives are checked without its key as far as their stored
    bytes go (damage named by chunk and segment: names need the key); with --identity or the passphrase, as any.

    \b
    Examples:
      sneakernet verify /mnt/usb
      sneakernet verify shipment/drive-* --fingerprint 3f9a-12bc-77d0-e145-9abc
      sneakernet verify /mnt/usb --quick
      sneakernet verify /mnt/usb --sample 5 --json > report.json
      sneakernet verify /mnt/usb1 /mnt/usb2 /mnt/usb3 /mnt/usb4
      sneakernet verify /mnt/usb --deep --identity key.txt    # an encrypted shipment, names and contents too

    Exit codes: 0 every drive intact (files that are not part of a drive are a warning); 1 damage, an
    unfinished drive or a drive of another shipment, whatever else was given; 2 bad arguments or a path that is
    not a drive (and no drive damaged).
    """
    from ..verifier import Mode, Status, default_state_dir, verify

    if quick and deep:
        fail(ctx, "--quick and --deep do not go together: choose one", ExitCode.USAGE)
    mode = Mode.QUICK if quick else Mode.DEEP if deep else Mode.FULL
    key = unlock_given(ctx)
    progress = progress_for("verify", quiet)
    shown: dict[int, tuple[str, int]] = {}

    def show(drive: DriveReport) -> None:
        """A drive's lines as soon as it is checked, not after the last drive."""
        shown[id(drive)] = (drive.status, len(drive.problems))
        if not (is_quiet(ctx, quiet) and drive.status == Status.INTACT.value):
            for line in verify_drive_lines(drive):
                echo_line(line)

    report = run(
        ctx,
        lambda: verify(
            drives,
            mode=mode,
            expected_fingerprint=expected,
            sample_percent=sample,
            seed=seed,
            state_dir=default_state_dir(),
            restart=restart,
            threads=threads,
            at_once=at_once,
            progress=progress,
            catalog=catalog,
            on_drive=None if as_json else show,
            key=key,
        ),
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_verify_report(report, is_quiet(ctx, quiet), shown)
    finish(ctx, verify_code(report))
