"""The ``sneakernet`` command: click commands only.

Each command parses its options, calls one library function, draws progress on stderr and prints the
summary on stdout. Only sneakernet's own errors become a one-line message and their exit code
(errors.ExitCode); anything else is a bug and keeps its traceback. ``--debug`` shows the traceback of
sneakernet's own errors too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click
from click.core import ParameterSource

from ._version import __version__
from .allocator import keep_freed_buffers
from .config import Profile, load_profile
from .errors import DestinationError, ExitCode, SneakernetError, UsageError
from .format import short_fingerprint
from .options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_SIZE, PackOptions
from .output import error_object
from .plan import DEFAULT_LINKS, Plan, format_duration, plan
from .scan import read_exclude_file
from .terminal import LineProgress, ShownProgress, TqdmProgress
from .units import counted, format_size, parse_size

if TYPE_CHECKING:
    from .pack import NextDrive, PackSummary
    from .restore import DriveOutcome, RestoreReport, ShipmentStatus
    from .verify import DriveReport, VerifyReport

# pack, restore, verify and info are imported by the commands that use them: each command starts without loading the
# others (plan, which runs in a fraction of a second, notices).

T = TypeVar("T")


class SizeType(click.ParamType):  # type: ignore[type-arg]
    """A size such as 150MB, 8TB, 7.2TiB or 4MiB (a bare 8T is refused as ambiguous)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except SneakernetError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()


#: How often a command whose stderr is not a terminal prints a progress line (--progress-every), in seconds.
PROGRESS_EVERY = 30.0


def settings(ctx: click.Context) -> dict[str, Any]:
    """What the options every command takes (before or after its name) set: quiet, verbose, debug, ..."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.ensure_object(dict)
    return obj


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def progress_for(description: str, quiet: bool = False) -> ShownProgress | None:
    """A bar on a terminal; elsewhere a line every --progress-every seconds; nothing when quiet."""
    context = click.get_current_context(silent=True)
    found = settings(context) if context else {}
    every = found.get("progress_every", PROGRESS_EVERY)
    if quiet or found.get("quiet"):
        return None
    if stderr_is_terminal():
        progress: ShownProgress = TqdmProgress(description)
    elif every > 0:
        progress = LineProgress(description, every)
    else:
        return None
    found.setdefault("progress", []).append(progress)  # closed before an error's message: see run()
    return progress


def echo_line(line: str) -> None:
    """A line on stdout while a bar may be up on stderr: the bar steps aside for it."""
    context = click.get_current_context(silent=True)
    shown = (settings(context) if context else {}).get("progress") or [None]
    if shown[-1] is None:
        click.echo(line)
    else:
        shown[-1].echo(line)


def is_quiet(ctx: click.Context, quiet: bool = False) -> bool:
    """-q/--quiet, given before the command or after it."""
    return quiet or bool(settings(ctx).get("quiet"))


#: What an interrupted command leaves behind, and what to do, by command.
INTERRUPTED = {
    "pack": (
        "what was being written is left unfinished (.partial files, no drive.json): run the same pack with --resume "
        "to go on (finished drives are kept)"
    ),
    "verify": "run the same command again to resume (--restart to start over); nothing was written on the drive",
    "restore": "run the same command again to resume; the journal keeps everything already done",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: every clean-up that Ctrl-C runs runs for it too."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run(ctx: click.Context, action: Callable[[], T]) -> T:
    """Call the library; turn sneakernet's errors into one line on stderr and their exit code. SIGTERM is handled
    as Ctrl-C is (it ended pack with no word and exit code 143 before)."""
    # Only the main thread may set a handler (a notebook or a test may call the commands from another).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return action()
    except SneakernetError as exc:
        close_progress(ctx)
        if settings(ctx).get("debug"):
            traceback.print_exc()
        fail(ctx, str(exc), exc.exit_code, type(exc).__name__)
    except KeyboardInterrupt as exc:
        close_progress(ctx)
        hint = INTERRUPTED.get(ctx.info_name or "", "nothing was changed")
        if isinstance(exc, Terminated):
            fail(ctx, f"terminated (SIGTERM); {hint}", ExitCode.TERMINATED, "Terminated", prefix="sneakernet: ")
        fail(ctx, f"interrupted; {hint}", ExitCode.INTERRUPTED, "Interrupted", prefix="sneakernet: ")
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    raise AssertionError("unreachable")


def close_progress(ctx: click.Context) -> None:
    """End the command's bars before its last message: a bar the library left open (Ctrl-C) would otherwise be
    drawn again below the message when the process exits."""
    for progress in settings(ctx).pop("progress", []):
        progress.close()


def fail(
    ctx: click.Context, message: str, code: ExitCode, kind: str = "UsageError", prefix: str = "sneakernet: error: "
) -> NoReturn:
    """End the command: ``message`` on one line of stderr and exit ``code``; under --json, the error object
    (docs/error.schema.json) on stdout too, so a script reading stdout gets JSON either way."""
    if ctx.params.get("as_json"):
        click.echo(json.dumps(error_object(kind, message, int(code))))
    click.echo(f"{prefix}{message}", err=True)
    ctx.exit(int(code))


def _setting(key: str, combine: Callable[[Any, Any], Any]) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback that records an option given after the command's name where main records it before."""

    def record(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name and on_command_line(ctx, param.name):
            found = settings(ctx)
            found[key] = combine(found.get(key), value)

    return record


def common_options() -> list[click.Option]:
    """-q, -v, --debug and --progress-every for one command: given after its name, they mean what they mean
    before it (``sneakernet verify -v D`` is ``sneakernet -v verify D``)."""
    return [
        click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_setting("quiet", lambda old, new: True),
            help="No progress bar, no warnings.",
        ),
        click.Option(
            ["-v", "--verbose"], count=True, expose_value=False,
            callback=_setting("verbose", lambda old, new: (old or 0) + new),
            help="Say what happens, drive by drive, on stderr (-vv: more).",
        ),
        click.Option(
            ["--debug"], is_flag=True, expose_value=False, callback=_setting("debug", lambda old, new: True),
            help="Show a traceback with every error.",
        ),
        click.Option(
            ["--progress-every"], type=click.FloatRange(0), metavar="SECONDS", expose_value=False,
            callback=_setting("progress_every", lambda old, new: new),
            help="When stderr is not a terminal, print a progress line this often (0: never).",
        ),
    ]  # fmt: skip


class Command(click.Command):
    """A command with the options every command takes (-q, -v, --debug, --progress-every: after its name as well
    as before), whose bad options (click's own usage errors) also print the JSON error object under --json."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        have = {opt for param in self.params for opt in param.opts}
        self.params.extend(option for option in common_options() if not have & set(option.opts))

    def invoke(self, ctx: click.Context) -> Any:
        quiet = is_quiet(ctx, bool(ctx.params.get("quiet")))  # pack, verify and restore have a -q of their own
        log_to_stderr(0 if quiet else settings(ctx).get("verbose") or 0)
        return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        as_json = "--json" in args  # before parsing, which consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if as_json:
                click.echo(json.dumps(error_object("UsageError", exc.format_message(), exc.exit_code)))
            raise


#: Profile keys that say where the shipment goes: a destination given on the command line replaces both.
DESTINATION_KEYS = ("out", "drives")


def on_command_line(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not left to its default)."""
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def profile_picker(ctx: click.Context, config: str | None) -> Callable[[str, T], T]:
    """``pick(name, value)``: an option's value from the command line when given there, else from the profile
    ``config`` (when it sets it), else the option's default. A refused profile ends the command (exit 2)."""
    profile = run(ctx, lambda: load_profile(config)) if config else Profile()
    given = profile.given()
    destination = any(on_command_line(ctx, key) for key in DESTINATION_KEYS)

    def pick(name: str, value: T) -> T:
        if name not in given or on_command_line(ctx, name) or (name in DESTINATION_KEYS and destination):
            return value
        return cast(T, given[name])

    return pick


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="sneakernet")
@click.option("--debug", is_flag=True, help="Show a traceback with every error.")
@click.option("-v", "--verbose", count=True, help="Say what happens, drive by drive, on stderr (-vv: more).")
@click.option("-q", "--quiet", "quiet_all", is_flag=True, help="No progress bars or warnings for any command.")
@click.option(
    "--progress-every",
    type=click.FloatRange(0),
    default=PROGRESS_EVERY,
    metavar="SECONDS",
    help="When stderr is not a terminal, print a progress line this often (0: never).  [default: 30]",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: int, quiet_all: bool, progress_every: float) -> None:
    """Ship datasets too big for the network on drives: pack, verify on arrival, restore.

    \b
    Examples:
      sneakernet plan dataset/ --drive-size 8TB
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB
      sneakernet -v verify /mnt/usb --fingerprint 3f9a-12bc-77d0-e145-9abc
      sneakernet restore /mnt/usb --into /data/dataset

    Exit codes: 0 success; 1 done, but data problems found (see the message); 2 bad input, nothing written;
    3 shipment incomplete; 4 out of space; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    """
    found = settings(ctx)
    found.update(quiet=quiet_all, debug=debug, verbose=verbose, progress_every=progress_every)
    keep_freed_buffers()


def log_to_stderr(verbose: int) -> None:
    """-v: the library's log on stderr (-vv: its debug messages too); none without -v, however often main runs
    in one process (the tests run it many times)."""
    library = logging.getLogger("sneakernet")
    if not verbose:
        library.handlers = []
        library.setLevel(logging.NOTSET)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sneakernet: %(message)s"))
    library.handlers = [handler]
    library.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


main.command_class = Command  # every command below: the common options, JSON errors for bad options too


def chunking_options(command: Callable[..., T]) -> Callable[..., T]:
    """The options that shape a shipment, shared by pack and plan (plan must see what pack will do)."""
    for option in reversed(
        [
            click.option(
                "--chunk-size", type=SIZE, default=DEFAULT_CHUNK_SIZE, help="Raw bytes per chunk.  [default: 4MiB]"
            ),
            click.option(
                "--segment-size",
                type=SIZE,
                default=DEFAULT_SEGMENT_SIZE,
                help="Most bytes per segment.  [default: 1GiB]",
            ),
            click.option(
                "--level", type=click.IntRange(1, 22), default=DEFAULT_LEVEL, show_default=True, help="zstd level."
            ),
            click.option(
                "--reserve", type=SIZE, help="Bytes kept free on each drive.  [default: 1% of the drive, at most 1GiB]"
            ),
        ]
    ):
        command = option(command)
    return command


@main.command("pack")
@click.argument("source", type=click.Path(file_okay=True, dir_okay=True, path_type=str))
@click.option(
    "--out", "out", metavar="DIR", help="Write drive directories DIR/drive-0001, DIR/drive-0002, ... (or use --drive)."
)
@click.option(
    "--drive", "drives", metavar="PATH", multiple=True, help="Fill this mounted, empty drive (repeat, in order)."
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
    drive_size: int | None,
    assume_ratio: float | None,
    chunk_size: int,
    segment_size: int,
    level: int,
    reserve: int | None,
    excludes: tuple[str, ...],
    exclude_files: tuple[str, ...],
    swap: bool,
    next_drive_cmd: str | None,
    catalog_dir: str | None,
    skip_unreadable: bool,
    threads: int,
    resume: bool,
    as_json: bool,
    quiet: bool,
    config: str | None,
) -> None:
    """Pack SOURCE into drive-sized directories, each checkable on its own.

    \b
    Examples:
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB
      sneakernet pack dataset/ --drive /mnt/usb1 --drive /mnt/usb2
      sneakernet pack dataset/ --drive /mnt/usb1 --drive /mnt/usb2 --assume-ratio 0.7   # plan's ratio
      sneakernet pack dataset/ --out shipment/ --drive-size 500GB --exclude '*.tmp' --json
      sneakernet pack dataset/ --out shipment/ --drive-size 8TB --resume    # after an interruption
      sneakernet pack dataset/ --config sneakernet.yaml --out shipment/
      sneakernet pack dataset/ --drive /mnt/usb --swap                      # one dock, asks for each drive
      sneakernet pack dataset/ --drive /mnt/usb --swap --next-drive-cmd ./mount-next.sh

    Exit codes: 0 packed; 1 packed, but some files changed while they were read (listed); 2 bad input,
    nothing written; 4 a drive ran out of space; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). After 4,
    130 or 143 the same pack with --resume goes on (with 4 and --drive: one more --drive).
    """
    from .pack import pack

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
    if assume_ratio is not None and (swap or not drives):
        fail(
            ctx,
            "--assume-ratio goes with --drive (--out and --swap take as many drives as the data needs)",
            ExitCode.USAGE,
        )
    progress = progress_for("pack", quiet)
    next_drive = _next_drive_asker(next_drive_cmd, progress) if swap else None
    if swap and catalog_dir is None:
        catalog_dir = default_catalog_dir()
    summary = run(
        ctx,
        lambda: pack(
            source,
            out=out,
            drives=drives,
            drive_size=drive_size,
            options=options,
            progress=progress,
            resume=resume,
            next_drive=next_drive,
            catalog_dir=catalog_dir,
            assume_ratio=assume_ratio,
        ),
    )
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        print_pack_summary(summary, is_quiet(ctx, quiet))
    if summary.changed_count:
        ctx.exit(int(ExitCode.PROBLEMS))


def _exclude_files(paths: tuple[str, ...]) -> list[str]:
    return [pattern for path in paths for pattern in read_exclude_file(path)]


def default_catalog_dir() -> str:
    """Where a swapping pack keeps the sender's copy of the catalog: $XDG_DATA_HOME/sneakernet/catalogs."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "sneakernet", "catalogs")


def _next_drive_asker(command: str | None, progress: ShownProgress | None) -> NextDrive:
    """How --swap gets the next drive: a hook command, or a question on the terminal. Either way the progress
    bar steps aside (the question starts on its own line) and its clock stops while the drive is swapped."""

    def by_command(number: int, problem: str | None) -> None:
        assert command is not None
        if problem is not None:
            raise DestinationError(f"after --next-drive-cmd, drive {number} is not ready: {problem}")
        env = {**os.environ, "SNEAKERNET_DRIVE_NUMBER": str(number)}
        import subprocess

        with progress.paused() if progress else contextlib.nullcontext():
            result = subprocess.run(command, shell=True, env=env)
        if result.returncode != 0:
            raise DestinationError(f"--next-drive-cmd exited with {result.returncode} for drive {number}: stopped")

    def by_terminal(number: int, problem: str | None) -> None:
        if not sys.stdin.isatty():
            raise UsageError("--swap asks for each drive on the terminal: run it on one, or give --next-drive-cmd")
        with progress.paused() if progress else contextlib.nullcontext():
            if problem:
                click.echo(f"sneakernet: {problem}", err=True)
            answer = click.prompt(
                f"Drive {number - 1} is full and finished. Put in drive {number} and press Enter (q to stop)",
                default="", show_default=False, err=True,
            )  # fmt: skip
        if answer.strip().lower() == "q":
            raise DestinationError(f"stopped before drive {number}: the drives so far are finished and checkable")

    return by_command if command else by_terminal


def print_pack_summary(summary: PackSummary, quiet: bool) -> None:
    if not quiet:
        for skipped in summary.skipped:
            click.echo(f"sneakernet: warning: skipped {skipped['path']}: {skipped['reason']}", err=True)
        for path in summary.changed:
            click.echo(
                f"sneakernet: warning: {path} changed while it was read; its stored bytes are what was read", err=True
            )
    lines = [
        f"packed {counted(summary.files, 'file')}, {counted(summary.dirs, 'directory', 'directories')}, "
        f"{counted(summary.symlinks, 'symlink')}, {counted(summary.hardlinks, 'hard link')} "
        f"onto {counted(len(summary.drives), 'drive')}"
        + (f" ({summary.resumed_drives} kept from before)" if summary.resumed_drives else ""),
        f"  in {format_size(summary.raw_bytes)}, out {format_size(summary.stored_bytes)} "
        f"(ratio {summary.ratio:.3f}; {format_size(summary.stored_raw_bytes)} stored uncompressed)",
        f"  {summary.seconds:.1f} s, {format_size(summary.raw_bytes / max(summary.seconds, 1e-9))}/s",
    ]
    sizes = sorted({drive["size"] for drive in summary.drives if drive.get("size")})
    if sizes:
        lines.append(f"  {_drive_sizes(sizes)}")
    if summary.excluded_entries:
        excluded = counted(summary.excluded_entries, "entry", "entries")
        lines.append(f"  excluded {excluded} ({format_size(summary.excluded_bytes)})")
    if summary.restore_record_left_out:
        lines.append("  left out .sneakernet: the record of the restore that made this tree, not data")
    if summary.skipped_count:
        lines.append(f"  skipped {counted(summary.skipped_count, 'entry', 'entries')} (see the warnings)")
    if summary.changed_count:
        lines.append(f"  {counted(summary.changed_count, 'file')} changed while read (exit code 1)")
    for drive in summary.drives:
        lines.append(f"  {drive['label']}: {drive['path']}  {format_size(drive['stored_bytes'])}")
    if summary.catalog_copy:
        lines.append(f"  the catalog is on the last drive and kept at {summary.catalog_copy}")
    lines.append(f"fingerprint: {summary.short_fingerprint}  (full: {summary.fingerprint})")
    click.echo("\n".join(lines))


def _drive_sizes(sizes: list[int]) -> str:
    """``drives of 8 TB (8,000,000,000,000 bytes)``: the size pack used, in the units of a drive's label."""
    if len(sizes) == 1:
        return f"drives of {format_size(sizes[0])} ({sizes[0]:,} bytes)"
    return f"drives of {format_size(sizes[0])} to {format_size(sizes[-1])} ({sizes[0]:,} to {sizes[-1]:,} bytes)"


@main.command("plan")
@click.argument("source", type=click.Path(path_type=str))
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
    chunk_size: int,
    segment_size: int,
    level: int,
    reserve: int | None,
    excludes: tuple[str, ...],
    threads: int,
    config: str | None,
    as_json: bool,
) -> None:
    """Estimate a shipment before packing it: drives needed and how full, packing time, and the network instead.

    Reads the metadata of SOURCE and a small sample of its data (at most 128 MiB, compressed as pack would),
    never the whole of it: the sizes and times are estimates. Options mean what they mean for pack.

    \b
    Examples:
      sneakernet plan dataset/ --drive-size 8TB
      sneakernet plan dataset/ --drive-size 8TB --drives 10 --link 1Gbps --link 10Gbit
      sneakernet plan dataset/ --config sneakernet.yaml --rate 200MB/s
      sneakernet plan dataset/ --drive-size 500GB --json

    Exit codes: 0 planned (even when --drives N is not enough: see drives_suffice in --json); 2 bad input,
    such as a missing source or drives too small for the format.
    """
    pick = profile_picker(ctx, config)
    profile_drives = pick("drives", ())
    if drive_count is None and profile_drives:
        drive_count = len(profile_drives)
    result = run(
        ctx,
        lambda: plan(
            source,
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
        ),
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_plan(result)


def print_plan(result: Plan) -> None:
    data = format_size(result.data_bytes)
    lines = [
        f"{result.source}: {counted(result.files, 'file')}, {counted(result.dirs, 'directory', 'directories')}, "
        f"{counted(result.symlinks, 'symlink')}, {counted(result.hardlinks, 'hard link')}; {data} of data",
    ]
    if result.excluded_entries:
        excluded = counted(result.excluded_entries, "entry", "entries")
        lines.append(f"  excluded {excluded} ({format_size(result.excluded_bytes)})")
    lines.append(
        f"on drives: about {format_size(result.stored_bytes)} (ratio {result.ratio:.3f}, from a sample of "
        f"{format_size(result.sample_bytes)} in {counted(result.sample_pieces, 'piece')} of "
        f"{counted(result.sample_files, 'file')}, compressed at level {result.level})"
    )
    worst = result.drives_if_nothing_compresses
    lines.append(
        f"drives of {format_size(result.drive_size)} ({format_size(result.capacity)} after the reserve): "
        f"{result.drives_needed} needed" + (f", {worst} if nothing compressed" if worst != result.drives_needed else "")
    )
    lines.extend(_fill_lines(result))
    lines.append(_room_line(result.drive_size))
    if result.drives_given is not None:
        verdict = (
            "enough"
            if result.drives_suffice
            else f"not enough: about {result.drives_needed - result.drives_given} more needed"
        )
        lines.append(f"  with {counted(result.drives_given, 'drive')}: {verdict}")
    for link in result.links:
        lines.append(f"{data}: {format_duration(link.seconds)} at {link.link.label}")
    how = (
        f"estimated from the sample on {counted(result.threads, 'thread')}; pack goes no faster than the source "
        "reads and the drives write: --rate sets that speed"
        if result.pack_rate_measured
        else "at the --rate given"
    )
    lines.append(f"packing: {format_duration(result.pack_seconds)} at {format_size(result.pack_rate)}/s ({how})")
    lines.extend(f"note: {note}" for note in result.notes)
    click.echo("\n".join(lines))


def _room_line(drive_size: int) -> str:
    """What a drive labelled ``drive_size`` leaves once formatted: --drive-size must be what is left, not the label."""
    from .plan import filesystem_room

    room = {name: format_size(size) for name, size in filesystem_room(drive_size).items()}
    return (
        f"  a drive labelled {format_size(drive_size)} leaves about {room['ext4']} on ext4 ({room['ext4 -m 0']} with "
        f"mkfs.ext4 -m 0), {room['XFS']} on XFS, {room['NTFS']} on NTFS, {room['exFAT']} on exFAT: give "
        "--drive-size what df -B1 shows on the formatted drive"
    )


def _fill_lines(result: Plan) -> list[str]:
    """How full each drive is, consecutive drives of the same fill on one line."""
    runs: list[tuple[int, int, int, int]] = []  # first, last, percent, used bytes of the first
    for drive in result.drives:
        percent = round(drive.fill * 100)
        if runs and runs[-1][2] == percent and runs[-1][1] == drive.drive - 1:
            runs[-1] = (runs[-1][0], drive.drive, percent, runs[-1][3])
        else:
            runs.append((drive.drive, drive.drive, percent, drive.used_bytes))
    lines = []
    for first, last, percent, used in runs:
        which = f"drive {first}" if first == last else f"drives {first}-{last}"
        each = "" if first == last else " each"
        lines.append(f"  {which}: {percent}% full{each} ({format_size(used)})")
    return lines


@main.command("verify")
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
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="Hashing threads, 0 for one per core.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (schema: docs/verify-report.schema.json)."
)
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
    threads: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Check each DRIVE alone, offline and read-only, and name every file that any damage hurts.

    By default every stored byte is hashed. An interrupted verify resumes where it stopped (progress is kept in
    ~/.cache/sneakernet/verify, never on the drive) unless --restart.

    \b
    Examples:
      sneakernet verify /mnt/usb
      sneakernet verify shipment/drive-* --fingerprint 3f9a-12bc-77d0-e145-9abc
      sneakernet verify /mnt/usb --quick
      sneakernet verify /mnt/usb --sample 5 --json > report.json

    Exit codes: 0 every drive intact (files that are not part of a drive are a warning); 1 damage, an
    unfinished drive or a drive of another shipment, whatever else was given; 2 bad arguments or a path that is
    not a drive (and no drive damaged).
    """
    from .verify import Mode, Status, default_state_dir, verify

    if quick and deep:
        fail(ctx, "--quick and --deep do not go together: choose one", ExitCode.USAGE)
    mode = Mode.QUICK if quick else Mode.DEEP if deep else Mode.FULL
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
            progress=progress,
            catalog=catalog,
            on_drive=None if as_json else show,
        ),
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_verify_report(report, is_quiet(ctx, quiet), shown)
    # Damage outranks a mistyped path: a script must not read "bad arguments" when a drive given is damaged.
    if any(not r.ok and r.status != Status.NOT_A_DRIVE.value for r in report.drives):
        ctx.exit(int(ExitCode.PROBLEMS))
    if any(r.status == Status.NOT_A_DRIVE.value for r in report.drives):
        ctx.exit(int(ExitCode.USAGE))


#: How many hurt paths the human report lists per problem; --json lists them all.
SHOWN_PATHS = 10


def _paths_line(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    return shown + (f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else "")


def print_verify_report(report: VerifyReport, quiet: bool, shown: dict[int, tuple[str, int]] | None = None) -> None:
    """The drives not shown as they were checked, or changed since (only the end knows a drive of another
    shipment among them), then the summary line."""
    from .verify import Status

    shown = shown or {}
    for drive in report.drives:
        if (quiet and drive.status == Status.INTACT.value) or shown.get(id(drive)) == (
            drive.status,
            len(drive.problems),
        ):
            continue
        click.echo("\n".join(verify_drive_lines(drive)))
    hurt = sorted({p for r in report.drives for p in r.hurt_paths()})
    intact = sum(r.ok for r in report.drives)
    line = f"{intact} of {counted(len(report.drives), 'drive')} intact"
    strays = sum(r.status == Status.UNEXPECTED_FILES.value for r in report.drives)
    if strays:
        line += (
            f" ({strays} with files that are not part of {'it' if strays == 1 else 'them'}: nothing of the shipment "
            "is hurt; they are left alone, delete them if they are not yours)"
        )
    if hurt:
        line += f"; {counted(len(hurt), 'file')} hurt: ask the sender to resend them (--json lists chunks and paths)"
    click.echo(line)


def verify_drive_lines(drive: DriveReport) -> list[str]:
    lines = [_drive_headline(drive)]
    if drive.fingerprint_matched and drive.fingerprint:
        lines.append(
            f"  fingerprint matched: the drive belongs to shipment {short_fingerprint(drive.fingerprint)}, "
            "the one given"
        )
    for first, last, chunk, paths in _chunk_runs(drive):
        which = f"chunk {first}" if first == last else f"chunks {first}-{last}"
        lines.append(f"  damaged {which} in {chunk.segment} from byte {chunk.offset}: {chunk.reason}")
        if paths:
            lines.append(f"    hurts: {_paths_line(paths)}")
    for problem in drive.problems:
        warning = "warning: " if problem.kind == "unexpected_file" and drive.ok else ""
        lines.append(f"  {warning}{problem.message}")
        if problem.paths:
            lines.append(f"    hurts: {_paths_line(problem.paths)}")
    lines.extend(f"  note: {note}" for note in drive.notes)
    return lines


def _chunk_runs(drive: DriveReport) -> list[tuple[int, int, Any, list[str]]]:
    """Consecutive damaged chunks of one segment with one reason, as one line each: (first, last, chunk, paths)."""
    runs: list[tuple[int, int, Any, list[str]]] = []
    for chunk in sorted(drive.damaged_chunks, key=lambda c: c.id):
        if runs:
            first, last, head, paths = runs[-1]
            if chunk.id == last + 1 and (chunk.segment, chunk.reason) == (head.segment, head.reason):
                runs[-1] = (first, chunk.id, head, paths + [p for p in chunk.paths if p not in paths])
                continue
        runs.append((chunk.id, chunk.id, chunk, list(chunk.paths)))
    return runs


def _drive_headline(drive: DriveReport) -> str:
    from .verify import Mode

    name = f"{drive.label} ({drive.path})" if drive.label else drive.path
    of = f" of {drive.drives}" if drive.drives else ""
    where = f"drive {drive.drive}{of}, " if drive.drive else ""
    checked = f"{format_size(drive.bytes_checked)} in {counted(drive.chunks_checked, 'chunk')} checked"
    if drive.mode == Mode.QUICK.value:
        checked = "sizes and manifests checked (--quick)"
    elif drive.sample_percent is not None:
        checked += f" (a {drive.sample_percent:g}% sample of segments)"
    if drive.mode == Mode.DEEP.value:
        checked += f", {counted(drive.files_checked, 'whole file')} hashed"
    if drive.resumed:
        checked += ", resumed"
    status = drive.status.upper().replace("_", " ") if not drive.ok else "intact"
    if drive.unexpected and drive.ok:
        status += f", with {counted(len(drive.unexpected), 'unexpected file')}"
    return f"{name}: {status}: {where}{checked}"


@main.command("restore")
@click.argument("drives", nargs=-1, required=True, metavar="DRIVE...")
@click.option("--into", "dest", required=True, metavar="DEST", help="The destination directory.")
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
    quiet: bool,
) -> None:
    """Restore the files DRIVE carries into DEST; run it once per drive, in any order, as drives arrive.

    A file appears under its final name only when complete and matching its BLAKE3. Running a drive twice does
    nothing; a run that was killed resumes. When every wanted entry is in, directory metadata is set, the
    journal is removed (DEST/.sneakernet keeps a record of the finished shipment: status says complete, and a
    drive of it again is a no-op) and the fingerprint is stated. Files lose their setuid and setgid bits (the
    summary counts them) unless --keep-setuid.

    \b
    Examples:
      sneakernet restore /mnt/usb --into /data/dataset
      sneakernet restore shipment/drive-* --into /data/dataset
      sneakernet restore /mnt/usb --into /data/subset --include 'images/*'
      sneakernet restore /mnt/usb --into /data/dataset --catalog shipment.catalog.jsonl.zst

    Exit codes: 0 every drive given went in cleanly (even with drives still to come); 1 a drive was refused or
    some files were damaged (named); 2 bad arguments; 4 the destination is full, or too small for the drives'
    data up front (nothing written; free space, run again).
    """
    from .restore import restore

    progress = progress_for("restore", quiet)

    shown: set[str] = set()

    def show(drive: DriveOutcome) -> None:
        """A drive's lines as soon as it is in, not after the last drive."""
        shown.add(drive.path)
        for line in restore_drive_lines(drive):
            echo_line(line)

    report = run(
        ctx,
        lambda: restore(
            drives,
            dest,
            include=includes,
            keep_journal=keep_journal,
            force=force,
            progress=progress,
            catalog=catalog,
            check_space=not no_space_check,
            on_drive=None if as_json else show,
            keep_setuid=keep_setuid,
        ),
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_restore_report(report, shown)
    if not report.clean:
        ctx.exit(int(ExitCode.PROBLEMS))


def restore_drive_lines(drive: DriveOutcome) -> list[str]:
    name = f"{drive.label} ({drive.path})"
    if drive.status == "restored":
        done = f"{counted(drive.files, 'file')} complete ({format_size(drive.bytes)})"
        lines = [f"{name}: wrote {format_size(drive.written)}; {done}"]
    else:
        lines = [f"{name}: {drive.message}"]
    lines.extend(f"  not restored: {failed}" for failed in drive.failed)
    lines.extend(f"  not restored: {collision} on this case-insensitive destination" for collision in drive.collisions)
    if drive.replaced_count:
        shown = ", ".join(drive.replaced[:SHOWN_PATHS]) + (", ..." if drive.replaced_count > SHOWN_PATHS else "")
        lines.append(f"  replaced {counted(drive.replaced_count, 'file')} the destination held (--force): {shown}")
    return lines


def print_restore_report(report: RestoreReport, shown: set[str] | None = None) -> None:
    """The lines of the drives not shown as they went in (e.g. a drive of a finished restore, which nothing is
    done with), what the whole run leaves, then where the shipment stands."""
    for drive in report.drives:
        if drive.path not in (shown or set()):
            click.echo("\n".join(restore_drive_lines(drive)))
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"  not restored: {problem}")
    if report.setid_cleared:
        click.echo(
            f"setuid/setgid bits cleared on {counted(report.setid_cleared, 'file')} (--keep-setuid keeps them, for "
            "a shipment you trust)"
        )
    print_status(report.status)


def print_status(state: ShipmentStatus) -> None:
    if state.finished:
        click.echo(
            f"shipment {short_fingerprint(state.fingerprint)} complete: every file matched its BLAKE3 "
            f"(fingerprint {state.fingerprint})"
        )
        if state.finished_at:
            only = f" (--include {' '.join(state.includes)})" if state.includes else ""
            click.echo(f"  restored into {state.dest}{only}, finished {state.finished_at}")
        return
    done = ", ".join(map(str, state.restored)) or "none yet"
    needed = "; still needed:" if state.waiting else ""
    click.echo(f"{len(state.restored)} of {counted(state.drives, 'drive')} restored (drives {done}){needed}")
    for waiting in state.waiting:
        how = {
            "partial": "restore it again from a good copy",
            "blocked": "clear the way in the destination, then restore it again",
            "reopened": "restore it again (it carries the content of included hard links)",
        }.get(waiting.state, "still needed")
        click.echo(
            f"  drive {waiting.drive} ({waiting.label}): {how}: {counted(waiting.files, 'entry', 'entries')}, "
            f"{format_size(waiting.bytes)} wait on it"
        )
    if state.failed_count:
        failed = ", ".join(state.failed[:SHOWN_PATHS])
        click.echo(f"  {counted(state.failed_count, 'file')} could not be restored: {failed}")


@main.command("status")
@click.argument("dest", metavar="DEST")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (schema: docs/status.schema.json).")
@click.pass_context
def status_command(ctx: click.Context, dest: str, as_json: bool) -> None:
    """Say which drives DEST still needs, and how many files and bytes wait on each.

    \b
    Examples:
      sneakernet status /data/dataset
      sneakernet status /data/dataset --json

    Exit codes: 0 the shipment is complete (finished, or all in with --keep-journal); 3 drives (or good copies
    of damaged drives) are still needed; 2 DEST does not exist, is a drive, or holds no restore. A script waits
    with: while sneakernet status DEST; [ $? -eq 3 ]; do sleep 60; done (until ... loops on exit 2 too).
    """
    from .restore import status

    state = run(ctx, lambda: status(dest))
    if as_json:
        click.echo(json.dumps(state.to_json(), indent=2))
    else:
        print_status(state)
    if not state.complete:
        ctx.exit(int(ExitCode.INCOMPLETE))


@main.command("ls")
@click.argument("drive", metavar="DRIVE")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: path, kind, size, first_drive, last_drive (schema: docs/ls-entry.schema.json).",
)
@click.pass_context
def ls_command(ctx: click.Context, drive: str, as_json: bool) -> None:
    """List the shipment's paths from the catalog DRIVE carries, with sizes and the drives that hold each.

    \b
    Examples:
      sneakernet ls /mnt/usb
      sneakernet ls /mnt/usb --json | grep weights

    Exit codes: 0 listed; 2 not a drive, or a drive without the catalog.
    """
    from .info import ls

    def emit() -> None:
        for entry in ls(drive):
            if as_json:
                click.echo(json.dumps(entry.to_json()))
            else:
                drives = (
                    str(entry.first_drive)
                    if entry.first_drive == entry.last_drive
                    else f"{entry.first_drive}-{entry.last_drive}"
                )
                click.echo(f"{entry.kind:8} {entry.size:>15} drive {drives:9} {entry.path}")

    run(ctx, emit)


@main.command("info")
@click.argument("drive", metavar="DRIVE")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print as JSON, the fields of the text by name (schema: docs/info.schema.json).",
)
@click.pass_context
def info_command(ctx: click.Context, drive: str, as_json: bool) -> None:
    """Say what DRIVE is: shipment, fingerprint, drive n of N, label, created, sizes.

    \b
    Examples:
      sneakernet info /mnt/usb
      sneakernet info /mnt/usb --json

    Exit codes: 0 shown; 2 not a drive.
    """
    from .info import info

    found = run(ctx, lambda: info(drive))
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
        return
    of = f" of {found.drives}" if found.drives else " (no catalog on this drive)"
    lines = [
        f"{found.label}: drive {found.drive}{of}, shipment {found.shipment}",
        f"  created {found.created} by {found.tool}",
        f"  {counted(found.segments, 'segment')}, {format_size(found.stored_bytes)} stored, "
        f"{format_size(found.raw_bytes)} of data",
    ]
    if found.fingerprint:
        lines.append(
            f"  shipment: {counted(found.files or 0, 'file')}, {format_size(found.shipment_raw_bytes or 0)} of data, "
            f"{format_size(found.shipment_stored_bytes or 0)} on drives"
        )
        lines.append(f"  fingerprint: {short_fingerprint(found.fingerprint)}  (full: {found.fingerprint})")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
