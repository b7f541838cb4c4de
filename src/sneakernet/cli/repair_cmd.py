"""``sneakernet repair``: a damaged data or parity drive mended in place from the other drives (and parity)."""

from __future__ import annotations

import click

from ..errors import ExitCode
from .command import Command
from .exits import run
from .progress import progress_for
from .rebuild_cmd import report


@click.command("repair", cls=Command)
@click.argument("drive", metavar="DRIVE")
@click.argument("others", nargs=-1, required=True, metavar="OTHER...")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (schema: docs/rebuild-result.schema.json)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def repair_command(ctx: click.Context, drive: str, others: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Repair the drive DRIVE in place from the OTHER drives of its shipment (its other data drives and its
    parity drives): every segment whose BLAKE3 is not the one its manifest records is written again, its intact
    chunks taken from DRIVE and its damaged ones rebuilt from parity, or mended byte by byte where parity points
    at its wrong bytes (when other drives are damaged in the same stripes), each checked against its recorded
    BLAKE3; a damaged or missing drive.json, manifest, catalog or B3SUMS is written again from the parity drives'
    copies. A parity drive DRIVE is mended from every data drive of its group, which must be intact (repair them
    first): its segments and copies that differ from what they give are written again. Everything intact is left
    untouched.

    \b
    Examples:
      sneakernet repair /mnt/d3 /mnt/d1 /mnt/d2 /mnt/d4 /mnt/p1
      sneakernet repair shipment/drive-0002 shipment/drive-* shipment/parity-*

    Exit codes: 0 repaired (or nothing to repair); 1 chunks that cannot be rebuilt (the files they hold are named;
    they stay as they read, the other damaged chunks of their segments mended: run repair again once the other
    drives are repaired); 2 bad arguments; 4 the drive is full.
    """
    from ..drive.parity.recover import repair

    progress = progress_for("repair", quiet)
    result = run(ctx, lambda: repair(drive, others, progress))
    report(result, as_json, "repaired")
    if not result.finished:
        ctx.exit(int(ExitCode.PROBLEMS))
