"""Progress of several drives at once (sneakernet/progress.py and cli/progress.py): one line per drive under the
total, the total with its ETA; one drive at a time shown as it always was."""

from __future__ import annotations

import io
import re
import sys
import threading

import pytest

from sneakernet.cli.progress import LineProgress, TqdmProgress
from sneakernet.progress import DrivesProgress, begin_drive, open_drive, serialized


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_line_per_drive_under_the_total_once_two_drives_are_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = TqdmProgress("verify")
    progress.start(3_000_000_000)
    first = progress.open_drive("drive-0001", 1_000_000_000)
    first.advance(100_000_000)
    assert progress.bar.desc == "verify drive-0001" and first.bar is None  # one drive: as before
    second = progress.open_drive("drive-0002", 2_000_000_000)
    second.advance(500_000_000)
    assert progress.bar.desc == "verify" and progress.bar.n == 600_000_000
    assert (first.bar.n, second.bar.n) == (100_000_000, 500_000_000)
    assert (first.slot, second.slot) == (1, 2)
    progress.echo("drive-0009: intact")  # a result line: the bars step aside, then are drawn again
    shown = terminal.getvalue()
    assert re.search(r"\r  drive-0001:  10%\|#[ ]+\| 100 MB/1 GB \[([0-9.]+ [kKMGTP]?B|\?)/s\]", shown)
    assert re.search(r"\r  drive-0002:  25%\|##5[ ]+\| 500 MB/2 GB \[([0-9.]+ [kKMGTP]?B|\?)/s\]", shown)
    first.close()
    third = progress.open_drive("drive-0003", 10)
    assert third.slot == 1  # the line drive-0001 left
    progress.close()
    assert progress.drives == [] and third.bar is None


def test_lines_per_drive_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    progress = LineProgress("verify", every=0)
    progress.start(3_000_000)
    first = progress.open_drive("drive-0001", 1_000_000)
    first.advance(250_000)
    assert capsys.readouterr().err.splitlines()[0].startswith("sneakernet: verify drive-0001: 250 KB/3 MB (8%), ")
    second = progress.open_drive("drive-0002", 2_000_000)
    second.advance(1_000_000)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"sneakernet: verify: 1.25 MB/3 MB \(41%\), [0-9.]+ [KMGT]?B/s, .* left", lines[0])
    assert re.fullmatch(r"sneakernet:   drive-0001: 250 KB/1 MB \(25%\), [0-9.]+ [KMGT]?B/s", lines[1])
    assert re.fullmatch(r"sneakernet:   drive-0002: 1 MB/2 MB \(50%\), [0-9.]+ [KMGT]?B/s", lines[2])
    first.close()
    second.advance(1)
    assert len(capsys.readouterr().err.splitlines()) == 2  # the total and drive-0002


class Plain:
    """A progress of the three methods and drive(label), as a library user writes it: not thread-safe."""

    def __init__(self) -> None:
        self.done = 0
        self.labels: list[str] = []
        self.inside = 0
        self.overlapped = False

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        self.inside += 1
        self.overlapped = self.overlapped or self.inside > 1
        done = self.done
        threading.Event().wait(0.0001)  # a thread switch here would lose bytes without the lock
        self.done = done + done_bytes
        self.inside -= 1

    def drive(self, label: str) -> None:
        self.labels.append(label)

    def close(self) -> None:
        pass


def test_a_plain_progress_is_told_from_one_thread_at_a_time() -> None:
    plain = Plain()
    shown = serialized(plain)
    assert isinstance(shown, DrivesProgress) and serialized(shown) is shown

    def drive(label: str) -> None:
        progress = open_drive(shown, label, 100)
        for _ in range(200):
            progress.advance(1)
        progress.close()

    threads = [threading.Thread(target=drive, args=(f"drive-000{n}",)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert plain.done == 800 and not plain.overlapped
    assert sorted(plain.labels) == [f"drive-000{n}" for n in range(1, 5)]


def test_open_drive_on_a_plain_progress_names_the_drive_and_counts_its_bytes() -> None:
    plain = Plain()
    progress = open_drive(plain, "drive-0007", 10)
    progress.advance(4)
    assert plain.labels == ["drive-0007"] and plain.done == 4
    begin_drive(plain, "drive-0008")
    assert plain.labels[-1] == "drive-0008"
