"""``sneakernet rebuild``: a lost data drive written again, from the other drives and parity, onto a new drive."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..errors import ExitCode
from ..units import format_size
from .command import Command
from .exits import run
from .progress import echo_line, progress_for

if TYPE_CHECKING:
    from ..drive.parity.rebuild import RebuildResult


@click.command("rebuild", cls=Command)
@click.argument("drives", nargs=-1, required=True, metavar="DRIVE...")
@click.option("--onto", required=True, metavar="PATH", help="The empty drive (directory) to write the lost drive onto.")
@click.option(
    "--lost", metavar="LABEL", help="The drive to rebuild (drive-0003, 3, or parity-0001) when several are missing."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (schema: docs/rebuild-result.schema.json)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def rebuild_command(
    ctx: click.Context, drives: tuple[str, ...], onto: str, lost: str | None, as_json: bool, quiet: bool
) -> None:
    """Rebuild the data drive missing from the DRIVEs given (the shipment's data drives that arrived and its
    parity drives) onto the empty drive PATH: the same segments, manifest, drive.json, catalog and B3SUMS, byte
    for byte, so that it verifies and restores as the original did. A lost parity drive (--lost parity-0002, or
    the one missing when every data drive is given) is computed again from all the data drives of its group and
    one of its other parity drives, byte for byte too.

    Every chunk rebuilt is checked against the BLAKE3 its manifest records before it is written: a damaged or
    wrong parity drive can stop a rebuild, never put a wrong byte on the drive. Interrupted, run it again onto the
    same PATH: the segments already written are kept.

    \b
    Examples:
      sneakernet rebuild /mnt/d1 /mnt/d2 /mnt/d4 /mnt/p1 --onto /mnt/new
      sneakernet rebuild shipment/drive-* shipment/parity-* --lost drive-0003 --onto /mnt/new

    Exit codes: 0 rebuilt; 1 chunks that cannot be rebuilt (too many drives lost or damaged over them; the files
    they hold are named; the new drive is left unfinished); 2 bad arguments; 4 the new drive is full.
    """
    from ..drive.parity.recover import rebuild

    progress = progress_for("rebuild", quiet)
    result = run(ctx, lambda: rebuild(drives, onto, lost, progress))
    report(result, as_json, "rebuilt")
    if not result.finished:
        ctx.exit(int(ExitCode.PROBLEMS))


def report(result: RebuildResult, as_json: bool, done: str) -> None:
    """What rebuild or repair did, as lines or JSON."""
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    if result.finished:
        echo_line(f"{done} {result.label} onto {result.path} from {', '.join(result.sources)}")
    else:
        echo_line(f"{result.label} could not be {done} whole onto {result.path}: it is left unfinished")
    echo_line(
        f"  segments: {result.segments_written} written, {result.segments_kept} kept; "
        f"{result.chunks_rebuilt} chunks rebuilt ({result.chunks_mended} mended byte by byte), "
        f"{format_size(result.bytes_written)} written"
    )
    if result.files_written:
        echo_line(f"  also written: {', '.join(result.files_written)}")
    if result.chunks_lost:
        echo_line(f"  {len(result.chunks_lost)} chunks cannot be rebuilt; the files with bytes in them:")
        for path in result.files_lost:
            echo_line(f"    {path}")
