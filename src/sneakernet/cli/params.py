"""Parameters shared by several commands: sizes as people type them, the options that shape a shipment (pack
and plan), and the YAML profile's values for options not given on the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from ..config import Profile, load_profile
from ..errors import SneakernetError
from ..options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_SIZE
from ..units import parse_size
from .context import on_command_line
from .exits import run

if TYPE_CHECKING:
    from ..io.source import Source

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


#: Profile keys that say where the shipment goes: a destination given on the command line replaces both.
DESTINATION_KEYS = ("out", "drives")


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


def storage_option(command: Callable[..., T]) -> Callable[..., T]:
    """``--storage-option KEY=VALUE``: an option of a URL's filesystem, as fsspec takes it (repeatable)."""
    return click.option(
        "--storage-option",
        "storage_options",
        metavar="KEY=VALUE",
        multiple=True,
        help="With a URL (s3://bucket/prefix): an option of its filesystem as fsspec takes it, e.g. "
        "endpoint_url=http://127.0.0.1:9000 or profile=NAME (repeat; a value that reads as JSON is that value). "
        "Credentials come from the environment, ~/.aws and profiles as usual.",
    )(command)


def source_of(ctx: click.Context, source: str, pairs: tuple[str, ...], pick: Callable[[str, Any], Any]) -> str | Source:
    """SOURCE as pack and plan read it: a local path as it is, a URL opened with its storage options (the
    profile's ``storage_options`` unless --storage-option is given; a missing extra or a refused option ends the
    command in one line, exit 2)."""
    from ..io.remote import is_url, open_source, parse_storage_options

    given = pick("storage_options", pairs)
    if not is_url(source):
        if pairs:
            raise click.UsageError("--storage-option goes with a URL source (s3://bucket/prefix)", ctx)
        return source
    options = run(ctx, lambda: parse_storage_options(given)) if isinstance(given, tuple) else dict(given)
    tree: Source = run(ctx, lambda: open_source(source, options))
    return tree
