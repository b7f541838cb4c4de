"""``sneakernet plan``: estimate a shipment before packing it."""

from __future__ import annotations

import json

import click

from ..planner import DEFAULT_LINKS, plan
from .command import Command
from .exits import run
from .params import SIZE, chunking_options, profile_picker, source_of, storage_option
from .render import print_plan


@click.command("plan", cls=Command)
@click.argument("source", type=click.Path(path_type=str))
@storage_option
@click.option(
    "--drive-size", type=SIZE, help="Size of each drive: 8TB, 500GB, 7.2TiB (or drive_size in the --config profile)."
)
@click.option("--drives", "drive_count", type=click.IntRange(1), metavar="N", help="Say whether N drives are enough.")
@click.option(
    "--link",
    "links",
    metavar="RATE",
    multiple=True,
    help="A network link to compare with (repeat): 1Gbps, 10Gbit, 500Mbps, 100MB/s.  "
    f"[default: {', '.join(DEFAULT_LINKS)}]",
)
@click.option(
    "--rate",
    metavar="RATE",
    help="Pack at this rate instead of the one measured on the sample, e.g. 200MB/s for a USB hard drive.",
)
@click.option(
    "--drive-speed",
    metavar="RATE",
    help="How fast one drive writes and reads, e.g. 250MB/s: say how long pack, verify and restore take.",
)
@click.option(
    "--at-once",
    type=click.IntRange(1, 256),
    default=1,
    metavar="N",
    help="With --drive-speed: N drives written and read at the same time (pack --at-once N).  [default: 1]",
)
@click.option(
    "--parity",
    type=click.IntRange(0, 6),
    default=0,
    metavar="M",
    help="Say what pack --parity M adds: the parity drives, their size, the room they need while packing, and how "
    "many drives may be lost.  [default: 0]",
)
@click.option(
    "--encrypt",
    is_flag=True,
    help="Plan an encrypted shipment, as pack --encrypt-to or --passphrase packs it (a profile that encrypts does "
    "the same): each chunk's tag, the sealed index and catalog.",
)
@chunking_options
@click.option(
    "--exclude",
    "excludes",
    metavar="PATTERN",
    multiple=True,
    help="Leave out paths matching PATTERN (repeat), as pack does.",
)
@click.option(
    "--threads", type=click.IntRange(0, 256), default=0, help="Encoding threads pack will use, 0 for one per core."
)
@click.option(
    "--config",
    type=click.Path(path_type=str),
    metavar="FILE",
    help="Read pack's options from this YAML profile (its drives: how many); options given here win.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the plan as JSON (docs/plan.md; schema: docs/plan.schema.json)."
)
@click.pass_context
def plan_command(
    ctx: click.Context,
    source: str,
    drive_size: int | None,
    drive_count: int | None,
    links: tuple[str, ...],
    rate: str | None,
    drive_speed: str | None,
    at_once: int,
    parity: int,
    encrypt: bool,
    chunk_size: int,
    segment_size: int,
    level: int,
    reserve: int | None,
    excludes: tuple[str, ...],
    threads: int,
    config: str | None,
    as_json: bool,
    storage_options: tuple[str, ...],
) -> None:
    """Estimate a shipment before packing it: drives needed and how full, packing time, and the network instead.

    Reads the metadata of SOURCE and a small sample of its data (at most 128 MiB, compressed as pack would),
    never the whole of it: the sizes and times are estimates. Options mean what they mean for pack.

    \b
    Examples:
      sneakernet plan dataset/ --drive-size 8TB
      sneakernet plan dataset/ --drive-size 8TB --drives 10 --link 1Gbps --link 10Gbit
      sneakernet plan dataset/ --config sneakernet.yaml --rate 200MB/s
      sneakernet plan dataset/ --drive-size 8TB --drive-speed 250MB/s --at-once 10
      sneakernet plan dataset/ --drive-size 8TB --parity 2                 # and 2 parity drives
      sneakernet plan dataset/ --drive-size 8TB --encrypt                  # as pack --encrypt-to packs it
      sneakernet plan dataset/ --drive-size 500GB --json

    Exit codes: 0 planned (even when --drives N is not enough: see drives_suffice in --json); 2 bad input,
    such as a missing source or drives too small for the format.
    """
    pick = profile_picker(ctx, config)
    profile_drives = pick("drives", ())
    if drive_count is None and profile_drives:
        drive_count = len(profile_drives)
    tree = source_of(ctx, source, storage_options, pick)
    result = run(
        ctx,
        lambda: plan(
            tree,
            drive_size=pick("drive_size", drive_size),
            drives=drive_count,
            links=links or DEFAULT_LINKS,
            level=pick("level", level),
            chunk_size=pick("chunk_size", chunk_size),
            segment_size=pick("segment_size", segment_size),
            excludes=pick("excludes", excludes),
            reserve=pick("reserve", reserve),
            threads=pick("threads", threads),
            rate=rate,
            at_once=at_once,
            drive_speed=drive_speed,
            parity=pick("parity", parity),
            encrypted=encrypt or any(pick(key, None) for key in ("encrypt_to", "recipients_files", "passphrase_file")),
        ),
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_plan(result)
