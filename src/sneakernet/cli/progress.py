"""Progress as the command line shows it on stderr: a tqdm bar on a terminal, a line now and then elsewhere.

:func:`progress_for` picks one for a command (or none: -q, --progress-every 0) and :func:`close_progress` ends
them before the command's last message.

:class:`TqdmProgress` and :class:`LineProgress` implement :class:`sneakernet.progress.Progress` and its optional
``drive(label)``: the bar and the lines name the drive being worked on, and sizes carry their unit
(``205 MB/1.00 GB``). :meth:`paused` takes the bar off the screen while the user is asked something
(``pack --swap``) and keeps that wait out of the rate. tqdm is imported only when a bar starts.

Both are also :class:`sneakernet.progress.DrivesProgress`, for verify and restore of several drives at once:
``open_drive(label, total)`` from each drive's thread. While one drive is worked on at a time they show what
``drive(label)`` shows; once two are at once, the total bar (or line) with the ETA comes first and each open
drive has a line of its own under it: its label, bytes and rate (``drive-0002:  20%|##   | 50 MB/250 MB
[12.8 MB/s]``). Every method takes the progress's lock: the drives' threads call them at the same time.
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
#: A drive's line under the total bar, with several drives at once: its share, bytes and rate (the ETA is the
#: total's).
DRIVE_BAR_FORMAT = "  {desc}: {percentage:3.0f}%|{bar}| {sized} [{speed}]"


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
    """A tqdm bar on stderr: the drive being worked on, bytes done of all with their units, rate and ETA; with
    several drives at once, a line per drive under it (see the module's docstring)."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Any = None
        self.lock = threading.RLock()
        #: The drives open (see :meth:`open_drive`), in the order they were opened.
        self.drives: list[TqdmDrive] = []
        #: Whether two drives were ever open at once: from then on each open drive has its own line.
        self.several = False

    def start(self, total_bytes: int) -> None:
        with self.lock:
            self.bar = _bar_class()(
                total=total_bytes, desc=self.description, bar_format=BAR_FORMAT, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1,
            )  # fmt: skip

    def drive(self, label: str) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.set_description_str(f"{self.description} {label}")

    def advance(self, done_bytes: int) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.update(done_bytes)

    def open_drive(self, label: str, total_bytes: int) -> TqdmDrive:
        with self.lock:
            drive = TqdmDrive(self, label, total_bytes)
            self.drives.append(drive)
            if len(self.drives) == 1 and not self.several:
                self.drive(label)  # one drive at a time: the total bar names it, as it always did
            elif self.bar is not None:
                if not self.several:
                    self.several = True
                    self.bar.set_description_str(self.description)
                for shown in self.drives:
                    shown.show()
            return drive

    def _slot(self) -> int:
        """The first line under the total bar that no open drive's line takes."""
        taken = {drive.slot for drive in self.drives}
        return next(slot for slot in range(1, len(taken) + 2) if slot not in taken)

    def _bars(self) -> list[Any]:
        return [b for b in [self.bar, *(drive.bar for drive in self.drives)] if b is not None]

    def echo(self, line: str) -> None:
        """Print ``line`` on stdout without the bars drawn through it."""
        with self.lock:
            bars = self._bars()
            for bar in bars:
                bar.clear()
            click.echo(line)
            for bar in bars:
                bar.refresh()

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
        with self.lock:
            for drive in list(self.drives):
                drive.close()
            bar, self.bar = self.bar, None
            if bar is not None:
                bar.close()


class TqdmDrive:
    """One drive of a :class:`TqdmProgress`: its bytes go to the total bar and, with several drives at once, to its
    own line (which goes when the drive is done: the drive's result is printed instead)."""

    def __init__(self, progress: TqdmProgress, label: str, total: int) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self.bar: Any = None
        self.slot = 0

    def show(self) -> None:
        """Give the drive its line under the total bar (called under the progress's lock)."""
        if self.bar is not None:
            return
        self.slot = self.progress._slot()
        self.bar = _bar_class()(
            total=self.total, desc=self.label, bar_format=DRIVE_BAR_FORMAT, file=sys.stderr, dynamic_ncols=True,
            smoothing=0.1, position=self.slot, leave=False, initial=self.done,
        )  # fmt: skip

    def advance(self, done_bytes: int) -> None:
        with self.progress.lock:
            self.done += done_bytes
            if self.progress.bar is not None:
                self.progress.bar.update(done_bytes)
            if self.bar is not None:
                self.bar.update(done_bytes)

    def close(self) -> None:
        with self.progress.lock:
            if self in self.progress.drives:
                self.progress.drives.remove(self)
            bar, self.bar = self.bar, None
            if bar is not None:
                bar.close()


class LineProgress:
    """When stderr is not a terminal (a log, cron, nohup): one line every ``every`` seconds, as rclone's --stats,
    e.g. ``sneakernet: verify drive-0002: 205 MB/1.00 GB (20%), 51.2 MB/s, 16 s left``; with several drives at once,
    the total's line (``sneakernet: verify: ...``) then one per open drive (``sneakernet:   drive-0002: 50 MB/250
    MB (20%), 12.8 MB/s``)."""

    def __init__(self, description: str, every: float) -> None:
        self.description = description
        self.every = every
        self.label = ""
        self.total = 0
        self.done = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()  # verify and restore advance from their worker threads
        self.drives: list[LineDrive] = []
        self.several = False

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes
        self.started = self.last = time.monotonic()

    def drive(self, label: str) -> None:
        self.label = label

    def advance(self, done_bytes: int) -> None:
        with self.lock:
            lines = self._count(done_bytes)
        if lines:
            click.echo("\n".join(lines), err=True)

    def _count(self, done_bytes: int) -> list[str]:
        """Count ``done_bytes`` (under the lock); the lines to print, if it is time."""
        self.done += done_bytes
        now = time.monotonic()
        if now - self.last < self.every:
            return []
        self.last = now
        if not self.several:
            return [self.line(now)]
        return [self.line(now), *(drive.line(now) for drive in self.drives)]

    def open_drive(self, label: str, total_bytes: int) -> LineDrive:
        with self.lock:
            drive = LineDrive(self, label, total_bytes)
            self.drives.append(drive)
            if len(self.drives) > 1 and not self.several:
                self.several, self.label = True, ""
            elif not self.several:
                self.label = label
            return drive

    def line(self, now: float) -> str:
        what = f"{self.description} {self.label}".rstrip()
        return f"sneakernet: {what}: {_amounts(self.done, self.total, now - self.started, eta=True)}"

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


class LineDrive:
    """One drive of a :class:`LineProgress`."""

    def __init__(self, progress: LineProgress, label: str, total: int) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def advance(self, done_bytes: int) -> None:
        with self.progress.lock:
            self.done += done_bytes
            lines = self.progress._count(done_bytes)
        if lines:
            click.echo("\n".join(lines), err=True)

    def line(self, now: float) -> str:
        return f"sneakernet:   {self.label}: {_amounts(self.done, self.total, now - self.started, eta=False)}"

    def close(self) -> None:
        with self.progress.lock:
            if self in self.progress.drives:
                self.progress.drives.remove(self)


def _amounts(done: int, total: int, seconds: float, eta: bool) -> str:
    """``205 MB/1.00 GB (20%), 51.2 MB/s`` and, with ``eta``, ``, 16 s left``."""
    percent = f" ({100 * done // total}%)" if total else ""
    rate = done / max(seconds, 1e-9)
    left = f", {format_duration((total - done) / rate)} left" if eta and rate and total > done else ""
    return f"{format_size(done)}/{format_size(total)}{percent}, {format_size(rate)}/s{left}"


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
