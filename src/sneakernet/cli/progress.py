"""Progress as the command line shows it on stderr: a tqdm bar on a terminal, a line now and then elsewhere.

:func:`progress_for` picks one for a command (or none: -q, --progress-every 0) and :func:`close_progress` ends
them before the command's last message.

:class:`TqdmProgress` and :class:`LineProgress` implement :class:`sneakernet.progress.Progress` and its optional
``drive(label)``: the bar and the lines name the drive being worked on, and sizes carry their unit
(``205 MB/1.00 GB``). :meth:`paused` takes the bar off the screen while the user is asked something
(``pack --swap``) and keeps that wait out of the rate. tqdm is imported only when a bar starts.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from ..units import format_duration, format_size
from .context import settings

#: The bar: what, which drive, percent, bar, sizes with units, elapsed<left, rate. ``sized`` and ``speed`` are
#: ours (see :func:`_bar_class`): tqdm's own ``n_fmt`` shows ``205M`` with no unit.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {sized} [{elapsed}<{remaining}, {speed}]"


def _bar_class() -> Any:
    """tqdm with our size fields: tqdm formats sizes by a static method its formatter calls on the base class,
    so the fields are added through ``format_dict``, which tqdm passes on to ``BAR_FORMAT``."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    class SizedBar(tqdm):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            fields: dict[str, Any] = super().format_dict
            # The smoothed rate, or before there is one (and in the last draw of a short run) the average.
            elapsed = fields.get("elapsed") or 0
            rate = fields.get("rate") or (self.n / elapsed if elapsed and self.n else None)
            fields["sized"] = f"{format_size(self.n)}/{format_size(self.total or 0)}"
            fields["speed"] = f"{format_size(rate)}/s" if rate else "?/s"
            return fields

    return SizedBar


class TqdmProgress:
    """A tqdm bar on stderr: the drive being worked on, bytes done of all with their units, rate and ETA."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Any = None

    def start(self, total_bytes: int) -> None:
        self.bar = _bar_class()(
            total=total_bytes, desc=self.description, bar_format=BAR_FORMAT, file=sys.stderr, dynamic_ncols=True,
            smoothing=0.1,
        )  # fmt: skip

    def drive(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{self.description} {label}")

    def advance(self, done_bytes: int) -> None:
        if self.bar is not None:
            self.bar.update(done_bytes)

    def echo(self, line: str) -> None:
        """Print ``line`` on stdout without the bar drawn through it."""
        if self.bar is None:
            click.echo(line)
            return
        self.bar.clear()
        click.echo(line)
        self.bar.refresh()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The bar off its line (a prompt starts on a line of its own) and its clock stopped until the end."""
        if self.bar is None:
            yield
            return
        self.bar.clear()
        stopped = time.time()
        try:
            yield
        finally:
            # tqdm's clock is time.time; elapsed, the average and the smoothed rate all count from these two.
            waited = time.time() - stopped
            self.bar.start_t += waited
            self.bar.last_print_t += waited
            self.bar.refresh()

    def close(self) -> None:
        """End the bar, leaving its last state on screen; once (a second call, e.g. after Ctrl-C, draws nothing)."""
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()


class LineProgress:
    """When stderr is not a terminal (a log, cron, nohup): one line every ``every`` seconds, as rclone's --stats,
    e.g. ``sneakernet: verify drive-0002: 205 MB/1.00 GB (20%), 51.2 MB/s, 16 s left``."""

    def __init__(self, description: str, every: float) -> None:
        self.description = description
        self.every = every
        self.label = ""
        self.total = 0
        self.done = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()  # verify and restore advance from their worker threads

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes
        self.started = self.last = time.monotonic()

    def drive(self, label: str) -> None:
        self.label = label

    def advance(self, done_bytes: int) -> None:
        with self.lock:
            self.done += done_bytes
            now = time.monotonic()
            if now - self.last < self.every:
                return
            self.last = now
            line = self.line(now)
        click.echo(line, err=True)

    def line(self, now: float) -> str:
        what = f"{self.description} {self.label}".rstrip()
        percent = f" ({100 * self.done // self.total}%)" if self.total else ""
        rate = self.done / max(now - self.started, 1e-9)
        left = f", {format_duration((self.total - self.done) / rate)} left" if rate and self.total > self.done else ""
        return (
            f"sneakernet: {what}: {format_size(self.done)}/{format_size(self.total)}{percent}, "
            f"{format_size(rate)}/s{left}"
        )

    def echo(self, line: str) -> None:
        click.echo(line)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        stopped = time.monotonic()
        try:
            yield
        finally:
            waited = time.monotonic() - stopped
            self.started += waited
            self.last += waited

    def close(self) -> None:
        pass


ShownProgress = TqdmProgress | LineProgress


#: How often a command whose stderr is not a terminal prints a progress line (--progress-every), in seconds.
PROGRESS_EVERY = 30.0


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


def close_progress(ctx: click.Context) -> None:
    """End the command's bars before its last message: a bar the library left open (Ctrl-C) would otherwise be
    drawn again below the message when the process exits."""
    for progress in settings(ctx).pop("progress", []):
        progress.close()
