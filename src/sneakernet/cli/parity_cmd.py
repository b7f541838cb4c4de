"""``sneakernet parity``: add parity drives to a shipment's finished data drives."""

from __future__ import annotations

import json

import click

from ..errors import ExitCode
from ..options import DEFAULT_SEGMENT_SIZE
from ..units import format_size
from .command import Command
from .exits import fail, run
from .params import SIZE
from .progress import echo_line, progress_for


@click.command("parity", cls=Command)
@click.argument("drives", nargs=-1, required=True, metavar="DRIVE...")
@click.option("--out", metavar="DIR", help="Write the parity drives into DIR (DIR/parity-0001, ...).")
@click.option(
    "--drive",
    "targets",
    multiple=True,
    metavar="PATH",
    help="A parity drive to write (repeatable: as many as --parity says, per group).",
)
@click.option(
    "--parity",
    type=click.IntRange(1, 6),
    default=1,
    show_default=True,
    help="Parity drives per group: any this many of the drives may be lost.",
)
@click.option(
    "--segment-size",
    type=SIZE,
    default=DEFAULT_SEGMENT_SIZE,
    help="Most bytes per parity segment, a multiple of 4MiB.  [default: 1GiB]",
)
@click.option("--catalog", metavar="FILE", help="The shipment's catalog, when no drive given carries it.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run: keep finished parity drives, redo the rest.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as JSON (schema: docs/parity-summary.schema.json)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def parity_command(
    ctx: click.Context,
    drives: tuple[str, ...],
    out: str | None,
    targets: tuple[str, ...],
    parity: int,
    segment_size: int,
    catalog: str | None,
    resume: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Compute parity drives over every DRIVE of a packed shipment (its data drives, all of them): with M parity
    drives, any M of the data and parity drives may be lost on the way and the shipment is still whole.

    The data drives are read once, all at the same time, and left exactly as they are; each of their segments is
    checked against its manifest as it is read. A shipment already sent can be given parity this way, by the
    sender or by the receiver. Parity drives are drives: verify them as any drive.

    \b
    Examples:
      sneakernet parity shipment/drive-* --out shipment/
      sneakernet parity /mnt/d1 /mnt/d2 /mnt/d3 --parity 2 --drive /mnt/p1 --drive /mnt/p2

    Exit codes: 0 written; 1 a data drive is damaged (parity not finished); 2 bad arguments, or drives that are
    not all of one shipment's data drives; 4 a parity drive is full.
    """
    from ..packer.parity import ParityOptions, add_parity

    if out is None and not targets:
        fail(ctx, "say where the parity drives go: --out DIR, or --drive PATH for each", ExitCode.USAGE)
    options = ParityOptions(parity=parity, segment_size=segment_size, resume=resume)
    progress = progress_for("parity", quiet)
    summary = run(
        ctx,
        lambda: add_parity(drives, out=out, targets=targets, options=options, catalog=catalog, progress=progress),
    )
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
        return
    written = [drive for drive in summary.drives if not drive.kept]
    groups = ", ".join(
        f"drives {first}-{last}" if first != last else f"drive {first}" for first, last in summary.groups
    )
    echo_line(
        f"wrote {len(written)} parity drive{'s' if len(written) != 1 else ''} over {summary.data_drives} data "
        f"drive{'s' if summary.data_drives != 1 else ''} ({len(summary.groups)} group"
        f"{'s' if len(summary.groups) != 1 else ''}: {groups}); any {parity} of them may be lost"
    )
    seconds = max(summary.seconds, 1e-9)
    echo_line(f"  read {format_size(summary.read_bytes)} in {summary.seconds:.1f} s, "
              f"{format_size(summary.read_bytes / seconds)}/s ({summary.engine})")  # fmt: skip
    for drive in summary.drives:
        kept = "  (kept: finished before)" if drive.kept else ""
        echo_line(f"  {drive.label}: {drive.path}  {format_size(drive.stored_bytes)}  group {drive.group}{kept}")
