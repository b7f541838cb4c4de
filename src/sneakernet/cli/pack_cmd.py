"""``sneakernet pack``: pack a source tree onto drives; with --swap, how the next drive is asked for."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from typing import TYPE_CHECKING

import click

from ..errors import DestinationError, ExitCode, UsageError
from ..options import PackOptions
from ..scan import read_exclude_file
from .command import Command
from .context import is_quiet
from .exits import fail, finish, pack_code, run
from .keys import encryption_given, encryption_options, resume_unlock
from .params import SIZE, chunking_options, profile_picker, source_of, storage_option
from .progress import ShownProgress, progress_for
from .render import print_pack_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..packer import NextDrive, NextParityDrive, PackSummary


@click.command("pack", cls=Command)
@click.argument("source", type=click.Path(file_okay=True, dir_okay=True, path_type=str))
@storage_option
@click.option(
    "--out", "out", metavar="DIR", help="Write drive directories DIR/drive-0001, DIR/drive-0002, ... (or use --drive)."
)
@click.option(
    "--drive", "drives", metavar="PATH", multiple=True, help="Fill this mounted, empty drive (repeat, in order)."
)
@click.option(
    "--at-once",
    type=click.IntRange(1, 256),
    default=1,
    metavar="N",
    help="Write N drives at the same time, each filled by a lane of its own (format version 2; docs/pack.md, "
    "Several drives at once).  [default: 1, drives filled in order]",
)
@click.option(
    "--parity",
    type=click.IntRange(0, 6),
    default=0,
    metavar="M",
    help="Also write M parity drives (OUT/parity-NNNN, or --parity-drive), computed while the data drives are "
    "written: any M of the drives can be lost (docs/pack.md, Parity drives).  [default: 0]",
)
@click.option(
    "--parity-drive",
    "parity_drives",
    metavar="PATH",
    multiple=True,
    help="With --parity M and --drive: a mounted, empty drive for the parity (repeat, M times).",
)
@click.option(
    "--parity-dir",
    metavar="DIR",
    help="With --parity: a local directory of M times a drive's size where the parity adds up until the data "
    "drives are written (needed with --drive and --swap; with --swap the parity drives are then asked for at the "
    "same mount point).  [default with --out: OUT/.parity-accumulating]",
)
@click.option(
    "--drive-size",
    type=SIZE,
    help="Size of each drive: 8TB, 500GB, 7.2TiB. Needed with --out; caps --drive's free space.",
)
@click.option(
    "--assume-ratio",
    type=click.FloatRange(0, 1, min_open=True),
    metavar="R",
    help="With --drive: accept drives that hold the data compressed to R of its size (plan's ratio) instead of "
    "uncompressed; should they run out, pack stops (exit 4) and --resume with one more --drive goes on.",
)
@chunking_options
@click.option(
    "--exclude",
    "excludes",
    metavar="PATTERN",
    multiple=True,
    help="Leave out paths matching PATTERN, a .gitignore line as git reads it (repeat; '!PATTERN' takes one back; "
    "docs/pack.md, Excludes).",
)
@click.option(
    "--exclude-from", "exclude_files", metavar="FILE", multiple=True, help="Read exclude patterns from FILE (repeat)."
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Pack as Dask tasks, a lane per worker: tcp://HOST:8786 (a running scheduler) or local:N (N processes "
    "here); needs the dask extra (docs/pack.md, On a Dask cluster).",
)
@click.option(
    "--drives-from",
    metavar="FILE",
    help="With --scheduler: FILE's lines 'WORKER PATH [PATH ...]' give each lane's worker and the drives mounted on "
    "its host (instead of --out or --drive).",
)
@click.option(
    "--work-dir",
    metavar="DIR",
    help="With --scheduler: where the walk and the lanes' entry lists go, a directory every worker sees at the "
    "same path.  [default: a temporary directory]",
)
@click.option("--swap", is_flag=True, help="One dock: swap drives at the one --drive mount point as each fills.")
@click.option(
    "--next-drive-cmd",
    metavar="CMD",
    help="With --swap, run CMD (a shell command) to put the next drive in place, instead of asking on the terminal.",
)
@click.option(
    "--catalog-dir",
    metavar="DIR",
    help="Keep a copy of the catalog here.  [default with --swap: ~/.local/share/sneakernet/catalogs]",
)
@encryption_options
@click.option("--skip-unreadable", is_flag=True, help="Skip unreadable files (recorded as skipped) instead of failing.")
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="Encoding threads, 0 for one per core.")
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted pack into the same output, with the same options."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as JSON (schema: docs/pack-summary.schema.json)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no warnings.")
@click.option(
    "--config",
    type=click.Path(path_type=str),
    metavar="FILE",
    help="Read options from this YAML profile (examples/sneakernet.yaml); options given here win.",
)
@click.pass_context
def pack_command(
    ctx: click.Context,
    source: str,
    out: str | None,
    drives: tuple[str, ...],
    at_once: int,
    parity: int,
    parity_drives: tuple[str, ...],
    parity_dir: str | None,
    drive_size: int | None,
    assume_ratio: float | None,
    chunk_size: int,
    segment_size: int,
    level: int,
    reserve: int | None,
    excludes: tuple[str, ...],
    exclude_files: tuple[str, ...],
    scheduler: str | None,
    drives_from: str | None,
    work_dir: str | None,
    swap: bool,
    next_drive_cmd: str | None,
    catalog_dir: str | None,
    encrypt_to: tuple[str, ...],
    recipients_files: tuple[str, ...],
    ask_passphrase: bool,
    passphrase_file: str | None,
    identity_file: str | None,
    cipher: str | None,
    skip_unreadable: bool,
    threads: int,
    resume: bool,
    as_json: bool,
    quiet: bool,
    config: str | None,
    storage_options: tuple[str, ...],
) -> None:
    """Pack SOURCE into drive-sized directories, each checkable on its own.

    \b
    Examples:
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB
      sneakernet pack dataset/ --drive /mnt/usb1 --drive /mnt/usb2
      sneakernet pack dataset/ --drive /mnt/usb1 --drive /mnt/usb2 --at-once 2    # both drives at the same time
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB --at-once 4 --parity 1  # + parity-0001
      sneakernet pack dataset/ --drive /mnt/usb1 --drive /mnt/usb2 --assume-ratio 0.7   # plan's ratio
      sneakernet pack dataset/ --out shipment/ --drive-size 500GB --exclude '*.tmp' --json
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB --resume    # after an interruption
      sneakernet pack dataset/ --config sneakernet.yaml --out shipment/
      sneakernet pack dataset/ --drive /mnt/usb --swap                      # one dock, asks for each drive
      sneakernet pack dataset/ --drive /mnt/usb --swap --next-drive-cmd ./mount-next.sh
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB --encrypt-to age1...   # encrypted
      sneakernet pack dataset/ --scheduler tcp://head:8786 --drives-from drives.txt   # on a Dask cluster
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB --scheduler local:4
      sneakernet pack s3://bucket/prefix --out shipment/ --drive-size 8TB   # an object store (the s3 extra)

    Exit codes: 0 packed; 1 packed, but some files changed while they were read (listed), a cluster's
    worker was lost mid-lane (its drive unfinished), or a drive written --at-once failed while the others
    finished; 2 bad input or an unreachable scheduler, nothing written; 4 a drive ran out of space; 130
    interrupted (Ctrl-C); 143 terminated (SIGTERM). After 1 (a failed drive), 4, 130 or 143 the same pack with
    --resume goes on (with 4 and --drive: one more --drive); with --at-once it keeps every complete segment.
    """
    from ..packer import pack

    pick = profile_picker(ctx, config)
    out, drives, drive_size = pick("out", out), pick("drives", drives), pick("drive_size", drive_size)
    options = PackOptions(
        chunk_size=pick("chunk_size", chunk_size),
        segment_size=pick("segment_size", segment_size),
        level=pick("level", level),
        reserve=pick("reserve", reserve),
        excludes=(*pick("excludes", excludes), *run(ctx, lambda: _exclude_files(exclude_files))),
        skip_unreadable=pick("skip_unreadable", skip_unreadable),
        threads=pick("threads", threads),
    )
    if next_drive_cmd and not swap:
        fail(ctx, "--next-drive-cmd goes with --swap", ExitCode.USAGE)
    scheduler, drives_from = pick("scheduler", scheduler), pick("drives_from", drives_from)
    if assume_ratio is not None and (swap or not (drives or drives_from)):
        fail(
            ctx,
            "--assume-ratio goes with --drive or --drives-from (--out and --swap take as many drives as needed)",
            ExitCode.USAGE,
        )
    encryption = encryption_given(
        ctx, pick("encrypt_to", encrypt_to), pick("recipients_files", recipients_files),
        pick("passphrase_file", passphrase_file), ask_passphrase, pick("cipher", cipher),
    )  # fmt: skip
    unlock = resume_unlock(ctx, identity_file, resume, encryption is not None)
    work_dir = pick("work_dir", work_dir)
    if (drives_from or work_dir) and not scheduler:
        fail(ctx, "--drives-from and --work-dir go with --scheduler", ExitCode.USAGE)
    if scheduler and catalog_dir is None:
        catalog_dir = default_catalog_dir()
    tree = source_of(ctx, source, storage_options, pick)
    progress = progress_for("pack", quiet)
    next_drive = _next_drive_asker(next_drive_cmd, progress) if swap else None
    next_parity_drive = _parity_drive_asker(next_drive_cmd, progress) if swap else None
    if swap and catalog_dir is None:
        catalog_dir = default_catalog_dir()

    packing = functools.partial(
        pack, tree, out=out, drives=drives, drive_size=drive_size, options=options, progress=progress,
        resume=resume, next_drive=next_drive, next_parity_drive=next_parity_drive, catalog_dir=catalog_dir,
        assume_ratio=assume_ratio, at_once=at_once,
        encryption=encryption, parity=pick("parity", parity), parity_drives=pick("parity_drives", parity_drives),
        parity_dir=pick("parity_dir", parity_dir), unlock=unlock,
    )  # fmt: skip

    def packed() -> PackSummary:
        if not scheduler:
            return packing()
        from ..packer.cluster import DaskLanes, read_drives_file

        hosts = read_drives_file(drives_from) if drives_from else ()
        with DaskLanes.connect(scheduler, hosts, work_dir) as cluster:
            return packing(cluster=cluster)

    summary = run(ctx, packed)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        print_pack_summary(summary, is_quiet(ctx, quiet))
    finish(ctx, pack_code(summary))


def _exclude_files(paths: tuple[str, ...]) -> list[str]:
    return [pattern for path in paths for pattern in read_exclude_file(path)]


def default_catalog_dir() -> str:
    """Where a swapping pack keeps the sender's copy of the catalog: $XDG_DATA_HOME/sneakernet/catalogs."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "sneakernet", "catalogs")


def _next_drive_asker(command: str | None, progress: ShownProgress | None) -> NextDrive:
    """How --swap gets the next drive: a hook command, or a question on the terminal. Either way the progress
    bar steps aside (the question starts on its own line) and its clock stops while the drive is swapped."""
    ask = _drive_asker(command, progress)

    def next_drive(number: int, problem: str | None) -> None:
        env = {"SNEAKERNET_DRIVE_NUMBER": str(number), "SNEAKERNET_DRIVE_LABEL": f"drive-{number:04d}"}
        ask(f"drive {number}", env, f"Drive {number - 1} is full and finished. Put in drive {number}", problem)

    return next_drive


def _parity_drive_asker(command: str | None, progress: ShownProgress | None) -> NextParityDrive:
    """How --swap --parity gets each parity drive once the data drives are done, as :func:`_next_drive_asker`
    gets data drives (the hook sees SNEAKERNET_DRIVE_LABEL=parity-NNNN)."""
    ask = _drive_asker(command, progress)

    def next_parity_drive(label: str, problem: str | None) -> None:
        prompt = f"The data drives are finished. Put in an empty drive for {label}"
        ask(label, {"SNEAKERNET_DRIVE_LABEL": label}, prompt, problem)

    return next_parity_drive


def _drive_asker(
    command: str | None, progress: ShownProgress | None
) -> Callable[[str, dict[str, str], str, str | None], None]:
    """Asks for a drive (``what``, as messages name it): runs the hook command with ``env`` added, or asks
    ``prompt`` on the terminal."""

    def by_command(what: str, env: dict[str, str], prompt: str, problem: str | None) -> None:
        assert command is not None
        if problem is not None:
            raise DestinationError(f"after --next-drive-cmd, {what} is not ready: {problem}")
        import subprocess

        with progress.paused() if progress else contextlib.nullcontext():
            result = subprocess.run(command, shell=True, env={**os.environ, **env})
        if result.returncode != 0:
            raise DestinationError(f"--next-drive-cmd exited with {result.returncode} for {what}: stopped")

    def by_terminal(what: str, env: dict[str, str], prompt: str, problem: str | None) -> None:
        if not sys.stdin.isatty():
            raise UsageError("--swap asks for each drive on the terminal: run it on one, or give --next-drive-cmd")
        with progress.paused() if progress else contextlib.nullcontext():
            if problem:
                click.echo(f"sneakernet: {problem}", err=True)
            answer = click.prompt(f"{prompt} and press Enter (q to stop)", default="", show_default=False, err=True)
        if answer.strip().lower() == "q":
            raise DestinationError(f"stopped before {what}: the drives so far are finished and checkable")

    return by_command if command else by_terminal
