"""Parameters shared by several commands: sizes as people type them, the options that shape a shipment (pack
and plan), and the YAML profile's values for options not given on the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from ..config import Profile, load_profile
from ..errors import SneakernetError
from ..options import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_SIZE
from ..units import parse_size
from .context import on_command_line
from .exits import run

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
