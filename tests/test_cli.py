"""The command line: every refusal is one line and a documented exit code; the summary and --json."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import disk_usage, drive_dirs, write_file
from conftest import invoke_cli as run
from sneakernet import __version__
from sneakernet.cli import main


@pytest.fixture
def src(tmp_path: Path) -> Path:
    write_file(tmp_path / "src" / "a.txt", b"hello\n" * 1000)
    write_file(tmp_path / "src" / "b.bin", os.urandom(300_000))
    return tmp_path / "src"


def test_pack_prints_summary_and_fingerprint(src: Path, tmp_path: Path) -> None:
    code, out, err = run("pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB")
    assert code == 0, err
    assert "packed 2 files" in out and "onto 1 drive" in out
    assert "fingerprint: " in out
    assert len(drive_dirs(tmp_path / "out")) == 1


def test_pack_json(src: Path, tmp_path: Path) -> None:
    code, out, _ = run("pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["files"] == 2 and summary["raw_bytes"] == 306_000
    assert len(summary["fingerprint"]) == 64 and summary["short_fingerprint"] == "-".join(
        summary["fingerprint"][i : i + 4] for i in range(0, 20, 4)
    )
    assert [d["label"] for d in summary["drives"]] == ["drive-0001"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["pack", "{missing}", "--out", "{out}", "--drive-size", "1GB"], 2, "does not exist"),
        (["pack", "{file}", "--out", "{out}", "--drive-size", "1GB"], 2, "not a directory"),
        (["pack", "{src}", "--out", "{out}", "--drive-size", "100KB"], 2, "drive size too small"),
        (["pack", "{src}", "--out", "{out}"], 2, "--out needs --drive-size"),
        (["pack", "{src}"], 2, "give either --out DIR or at least one --drive PATH"),
        (["pack", "{src}", "--out", "{out}", "--drive-size", "lots"], 2, "cannot read size 'lots'"),
        (
            ["pack", "{src}", "--out", "{out}", "--drive-size", "1GB", "--level", "30"],
            2,
            "30 is not in the range 1<=x<=22",
        ),
        (["pack", "{src}", "--out", "{out}", "--drive-size", "1GB", "--chunk-size", "1KiB"], 2, "chunk size"),
        (["pack", "{src}", "--drive", "{missing}"], 2, "is not a directory: mount the drive"),
        (["pack", "{src}", "--out", "{file}", "--drive-size", "1GB"], 2, "output {file} is not a directory"),
        (["pack", "{src}", "--out", "{dangling}", "--drive-size", "1GB"], 2, "is a symlink to nothing"),
        (["plan", "{dangling}", "--drive-size", "1GB"], 2, "does not exist"),
        (["pack", "{src}", "--out", "/proc/sneakernet-out", "--drive-size", "1GB"], 2, "cannot make the output"),
    ],
)
def test_refusals_are_one_line_with_exit_code(
    src: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    write_file(tmp_path / "file", b"x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    names = {
        "src": src, "out": tmp_path / "out", "missing": tmp_path / "missing", "file": tmp_path / "file",
        "dangling": tmp_path / "dangling",
    }  # fmt: skip
    got_code, out, err = run(*(a.format(**names) for a in args))
    assert got_code == code
    assert message.format(**names) in err
    assert "Traceback" not in err and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 3  # click's own usage errors add a usage line and a hint
    assert not (tmp_path / "out" / "drive-0001").exists()


def test_refuses_existing_shipment_and_keeps_it(src: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    assert run("pack", str(src), "--out", out, "--drive-size", "1GB")[0] == 0
    manifest = (tmp_path / "out" / "drive-0001" / "manifest.jsonl.zst").read_bytes()
    code, _, err = run("pack", str(src), "--out", out, "--drive-size", "1GB")
    assert code == 2 and err.strip() == (
        f"sneakernet: error: output {out} already holds a shipment: choose an empty directory or drive"
    )
    assert (tmp_path / "out" / "drive-0001" / "manifest.jsonl.zst").read_bytes() == manifest


def test_changed_file_exits_1_with_warning(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from fakesource import FaultySource

    def touch(path: bytes, data: bytes) -> None:
        os.utime(src / "a.txt", ns=(1, 1))

    # pack reads the directory it is given as a LocalSource: it gets one that touches a.txt after every read.
    packer = importlib.import_module("sneakernet.packer")
    monkeypatch.setattr(packer, "LocalSource", lambda path: FaultySource(path, after_read=touch))
    code, out, err = run("pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB")
    assert code == 1
    assert "warning: a.txt changed while it was read" in err
    assert "1 file changed while read" in out


def test_skipped_special_file_warns(src: Path, tmp_path: Path) -> None:
    os.mkfifo(src / "fifo")
    code, _, err = run("pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB")
    assert code == 0
    assert "warning: skipped fifo: special file (FIFO, socket or device)" in err
    code, _, err = run("pack", str(src), "--out", str(tmp_path / "out2"), "--drive-size", "1GB", "--quiet")
    assert code == 0 and err == ""


def test_debug_shows_traceback(tmp_path: Path) -> None:
    code, _, err = run(
        "--debug", "pack", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--drive-size", "1GB"
    )
    assert code == 2 and "Traceback" in err and "does not exist" in err


def test_version_and_help_with_examples() -> None:
    for flag in ("--version", "-V"):
        code, out, _ = run(flag)
        assert code == 0 and out == f"sneakernet, version {__version__}\n"
    code, out, _ = run("pack", "--help")
    assert code == 0 and "Examples:" in out and "sneakernet pack dataset/ --out shipment/ --drive-size 8TB" in out
    code, out, _ = run("--help")
    assert code == 0 and "Exit codes" in out


def test_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "sneakernet", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


def test_drives_that_cannot_hold_the_data(src: Path, tmp_path: Path) -> None:
    (tmp_path / "usb").mkdir()
    write_file(src / "c.bin", os.urandom(2_000_000))
    args = ["--drive-size", "1.5MB", "--chunk-size", "256KiB", "--reserve", "0"]
    code, _, err = run("pack", str(src), "--drive", str(tmp_path / "usb"), *args)
    assert code == 2 and "add drives" in err
    assert list((tmp_path / "usb").iterdir()) == []


SMALL_DRIVES = ("--drive-size", "2MB", "--chunk-size", "256KiB", "--reserve", "0")


def test_drives_refused_name_assume_ratio_and_out(tmp_path: Path) -> None:
    # Drives that would hold the data compressed were refused with raw byte counts and only "add drives".
    rng = random.Random(5)
    write_file(tmp_path / "src" / "text.txt", " ".join(rng.choice(["alpha", "beta"]) for _ in range(400_000)).encode())
    write_file(tmp_path / "src" / "noise.bin", rng.randbytes(1_500_000))
    drives = [tmp_path / "d1", tmp_path / "d2"]
    for drive in drives:
        drive.mkdir()
    given = [arg for drive in drives for arg in ("--drive", str(drive))]
    code, _, err = run("pack", tmp_path / "src", *given, *SMALL_DRIVES)
    assert code == 2 and all(list(drive.iterdir()) == [] for drive in drives)
    assert re.search(r"the 2 drives given hold about [0-9.]+ MB after overhead; the source has 3.\d+ MB left", err)
    assert "--assume-ratio R" in err and "--out DIR --drive-size SIZE" in err
    code, out, err = run("pack", tmp_path / "src", *given, *SMALL_DRIVES, "--assume-ratio", "0.6")
    assert code == 0, err
    assert "onto 2 drives" in out and run("verify", *drives)[0] == 0
    code, _, err = run("pack", tmp_path / "src", "--out", tmp_path / "out", *SMALL_DRIVES, "--assume-ratio", "0.6")
    assert code == 2 and "--assume-ratio goes with --drive" in err


def test_assume_ratio_that_runs_out_stops_with_4_and_resumes_onto_one_more_drive(tmp_path: Path) -> None:
    data = random.Random(6).randbytes(3_000_000)  # does not compress: 0.5 is too hopeful
    write_file(tmp_path / "src" / "noise.bin", data)
    drives = [tmp_path / f"d{n}" for n in (1, 2, 3)]
    for drive in drives:
        drive.mkdir()
    given = [arg for drive in drives[:2] for arg in ("--drive", str(drive))]
    code, out, err = run("pack", tmp_path / "src", *given, *SMALL_DRIVES, "--assume-ratio", "0.5")
    assert code == 4 and out == ""
    assert "the 2 drives given are full" in err and "--resume and one more --drive PATH" in err
    assert all((drive / "drive.json").exists() and not (drive / "catalog.jsonl.zst").exists() for drive in drives[:2])
    code, out, err = run("pack", tmp_path / "src", *given, "--drive", drives[2], *SMALL_DRIVES, "--resume")
    assert code == 0, err
    assert "onto 3 drives (2 kept from before)" in out
    assert run("verify", *drives)[0] == 0
    code, _, err = run("restore", *drives, "--into", tmp_path / "dest")
    assert code == 0, err
    assert (tmp_path / "dest" / "noise.bin").read_bytes() == data


def test_a_bare_letter_drive_size_is_refused_and_the_summary_states_the_size(src: Path, tmp_path: Path) -> None:
    # "--drive-size 100M" was read as 100 MiB: the drive came out at 100,691,968 bytes and did not fit its drive.
    out = tmp_path / "out"
    code, stdout, err = run("pack", src, "--out", out, "--drive-size", "100M")
    assert code == 2 and stdout == "" and not out.exists()
    assert "'100M' is ambiguous: write 100MB (100,000,000 bytes, as drive labels count) or 100MiB" in err
    profile = tmp_path / "p.yaml"
    profile.write_text("drive_size: 8T\n")
    code, _, err = run("pack", src, "--out", out, "--config", profile)
    assert code == 2 and "drive_size" in err and "'8T' is ambiguous" in err and not out.exists()
    code, stdout, err = run("pack", src, "--out", out, "--drive-size", "2MB", "--chunk-size", "256KiB")
    assert code == 0, err
    assert "  drives of 2 MB (2,000,000 bytes)" in stdout.splitlines()
    assert all(disk_usage(drive) <= 2_000_000 for drive in drive_dirs(out))
    assert [
        d["size"]
        for d in json.loads(
            run("pack", src, "--out", tmp_path / "o2", "--drive-size", "2MB", "--chunk-size", "256KiB", "--json")[1]
        )["drives"]
    ] == [2_000_000]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_names_the_drive_with_sizes_in_units(monkeypatch: pytest.MonkeyPatch) -> None:
    from sneakernet.cli.progress import LineProgress, TqdmProgress, progress_for

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = progress_for("pack", quiet=False)
    assert isinstance(progress, TqdmProgress)
    assert progress_for("pack", quiet=True) is None
    progress.start(1_000_000_000)
    progress.drive("drive-0002")
    progress.advance(205_000_000)
    progress.close()
    assert "pack drive-0002:  20%" in terminal.getvalue() and "205 MB/1 GB" in terminal.getvalue()
    assert re.search(r"205 MB/1 GB \[[0-9:]+<[0-9:?]+, [0-9.]+ [kMGT]?B/s\]$", terminal.getvalue().strip())
    progress.close()  # a second close (after Ctrl-C, the library's own) draws nothing more
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_for("pack", quiet=False), LineProgress)


def test_swap_prompt_on_its_own_line_and_its_wait_not_in_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from sneakernet.cli.progress import TqdmProgress

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = TqdmProgress("pack")
    progress.start(100_000_000)
    progress.advance(10_000_000)
    with progress.paused():
        terminal.write("Put in drive 2")
        time.sleep(0.3)
    assert terminal.getvalue().split("Put in drive 2")[0].endswith("\r")  # the bar's line cleared first
    assert progress.bar.format_dict["elapsed"] < 0.25
    progress.close()


def test_pack_rate_leaves_out_the_wait_for_the_next_drive(tmp_path: Path) -> None:
    from sneakernet import PackOptions, pack

    write_file(tmp_path / "src" / "a.bin", os.urandom(2_500_000))
    mount, shelf = tmp_path / "mnt", tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "usb1").mkdir()
    mount.symlink_to(shelf / "usb1")

    def slow_person(number: int, problem: str | None) -> None:
        time.sleep(0.5)
        (shelf / f"usb{number}").mkdir()
        mount.unlink()
        mount.symlink_to(shelf / f"usb{number}")

    summary = pack(
        tmp_path / "src", drives=[str(mount)], drive_size=2_000_000, next_drive=slow_person,
        options=PackOptions(chunk_size=256 * 1024, reserve=0),
    )  # fmt: skip
    waited = 0.5 * (len(summary.drives) - 1)
    assert waited and summary.seconds < waited


def test_progress_lines_when_stderr_is_not_a_terminal(src: Path, tmp_path: Path) -> None:
    """As rclone's --stats: a line every --progress-every seconds, naming the drive, sizes with units; each
    drive's result line as soon as that drive is done, not after the last one."""
    write_file(src / "c.bin", os.urandom(2_000_000))
    code, _, err = run("pack", src, "--out", tmp_path / "out", "--drive-size", "1.5MB", "--chunk-size", "256KiB")
    assert code == 0 and err == ""  # the default: a line every 30 s, none in a run this short
    drives = drive_dirs(tmp_path / "out")
    assert len(drives) >= 2
    result = CliRunner().invoke(main, ["verify", "--progress-every", "1e-9", *map(str, drives)])
    assert result.exit_code == 0
    lines = result.output.splitlines()  # stdout and stderr as they came
    sizes = r"[\d.]+ [kKM]?B/[\d.]+ MB \(\d+%\), [\d.]+ [kKM]?B/s"
    assert re.fullmatch(rf"sneakernet: verify drive-0001: {sizes}.*", lines[0])
    first_done = next(i for i, line in enumerate(lines) if line.startswith("drive-0001 (") and "intact" in line)
    second_started = next(i for i, line in enumerate(lines) if line.startswith("sneakernet: verify drive-0002"))
    assert first_done < second_started
    dest = tmp_path / "dest"
    result = CliRunner().invoke(main, ["--progress-every", "1e-9", "restore", *map(str, drives), "--into", str(dest)])
    lines = result.output.splitlines()
    first_done = next(i for i, line in enumerate(lines) if line.startswith("drive-0001 (") and "wrote" in line)
    second_started = next(i for i, line in enumerate(lines) if line.startswith("sneakernet: restore drive-0002"))
    assert result.exit_code == 0 and first_done < second_started
    assert lines[-1].startswith("shipment ") and sum(line.startswith("drive-0001 (") for line in lines) == 1
    result = CliRunner().invoke(main, ["verify", "--progress-every", "0", "-q", str(drives[0])])
    assert result.exit_code == 0 and result.stderr == ""


def test_common_options_after_the_command_name(src: Path, tmp_path: Path) -> None:
    code, _, err = run("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB", "-v")
    assert code == 0 and "sneakernet: drive-0001: filling" in err
    drive = tmp_path / "out" / "drive-0001"
    code, _, err = run("verify", drive, "--verbose")
    assert code == 0 and "verifying" in err
    code, _, err = run("verify", drive, "-v", "-q")
    assert code == 0 and err == ""
    code, _, err = run("info", tmp_path / "missing", "--debug")
    assert code == 2 and "Traceback" in err
    for command in (["plan", src, "--drive-size", "1GB"], ["info", drive], ["ls", drive], ["status", tmp_path]):
        code, _, err = run(*command, "-q")
        assert code in (0, 2) and "no such option" not in err, command
    for name, command in main.all_commands().items():
        assert {"-q", "-v", "--debug"} <= {opt for param in command.params for opt in param.opts}, name


def test_ctrl_c_leaves_no_bar_drawn_after_the_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gc
    import importlib

    def interrupted(*args: object, progress: Any = None, **kwargs: object) -> None:
        progress.start(1_000_000)
        progress.advance(400_000)
        raise KeyboardInterrupt  # the bar left open, as a Ctrl-C in the middle of a drive leaves it

    monkeypatch.setattr(importlib.import_module("sneakernet.restorer"), "restore", interrupted)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main.main(["restore", str(tmp_path), "--into", str(tmp_path / "d")], standalone_mode=False)
    gc.collect()  # a bar still open would be closed, and drawn, now
    assert code == 130
    after = terminal.getvalue().split("sneakernet: interrupted;", 1)[1]
    assert "%|" not in after and after.count("\n") == 1, repr(after)


def test_verbose_says_what_happens_drive_by_drive(src: Path, tmp_path: Path) -> None:
    code, _, err = run("-v", "pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB")
    assert code == 0
    assert "sneakernet: drive-0001: filling" in err and "drive-0001 finished at" in err
    code, _, err = run("-v", "verify", str(tmp_path / "out" / "drive-0001"))
    assert code == 0 and "verifying" in err and "intact" in err


def test_quiet_before_the_command_silences_warnings(src: Path, tmp_path: Path) -> None:
    os.mkfifo(src / "fifo")
    code, out, err = run("-q", "pack", str(src), "--out", str(tmp_path / "out"), "--drive-size", "1GB")
    assert code == 0 and err == "" and "packed" in out


@pytest.mark.skipif(sys.platform != "linux", reason="mallopt is glibc's")
def test_freed_chunk_buffers_are_kept_for_reuse() -> None:
    from sneakernet.allocator import keep_freed_buffers

    assert keep_freed_buffers() is True
    assert keep_freed_buffers() is True  # once: later calls change nothing


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_package_gives_its_functions_whatever_was_imported_first() -> None:
    """``pack``, ``verify``, ``restore`` and ``info`` are both functions of the package and its modules, and the
    package imports them on first use: importing a module first must not put it in the function's place."""
    code = (
        "import sneakernet.verifier, sneakernet.restorer\n"
        "import sneakernet\n"
        "from sneakernet.packer import PackOptions\n"
        "import sneakernet.info as info\n"
        "names = ('pack', 'verify', 'restore', 'info', 'ls', 'status', 'Mode', 'PackOptions', 'PackSummary')\n"
        "print(' '.join(type(getattr(sneakernet, name)).__name__ for name in names), type(info).__name__)\n"
    )
    assert _python(code) == "function function function function function function EnumType type type function"
    assert _python("import sneakernet; print(sorted(set(sneakernet.__all__) - set(dir(sneakernet))))") == "[]"
    with pytest.raises(subprocess.CalledProcessError):
        _python("import sneakernet; sneakernet.no_such_name")


def test_the_command_line_loads_only_what_a_command_uses() -> None:
    """plan runs in a fraction of a second: loading restore and verify besides would be a tenth of it."""
    loaded = _python(
        "import sys, sneakernet.cli\n"
        "print(' '.join(m for m in ('sneakernet.restorer', 'sneakernet.verifier', 'sneakernet.info', 'subprocess')"
        " if m in sys.modules))"
    )
    assert loaded == ""


#: Runs the command line in a fresh interpreter and prints its exit code and which of NOT_FOR_VERIFY it imported.
LOADED_BY = """
import sys
from sneakernet.cli import main
try:
    main(sys.argv[2:], prog_name="sneakernet")
except SystemExit as end:
    print(end.code, " ".join(sorted(m for m in sys.argv[1].split() if m in sys.modules)))
"""

#: What checking an unencrypted drive never needs: pack and its writer, plan's estimates (imported by plan's and
#: info's rendering), restore, the other commands, the crypt extra (cryptography, pyrage), and, with no parity
#: drive among the drives given, parity's record types, reader and verdict.
NOT_FOR_VERIFY = (
    "sneakernet.packer sneakernet.planner sneakernet.restorer sneakernet.drive.writer sneakernet.drive.sealed "
    "sneakernet.crypto cryptography pyrage sneakernet.cli.pack_cmd sneakernet.cli.plan_cmd sneakernet.cli.info_cmd "
    "sneakernet.cli.restore_cmd sneakernet.format.parity sneakernet.drive.parity.reader sneakernet.verifier.parity"
)


def test_verify_and_restore_load_only_what_they_need(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify's and restore's start-up is paid on every run (a sixth of verify's CPU on a 200 MB shipment): each
    imports the command it runs and the reading side of the drive layer, not every command's modules, the writer's
    crypt extra or parity's rebuilding."""
    monkeypatch.setenv("SNEAKERNET_STATE_DIR", str(tmp_path / "state"))
    assert run("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB", "-q")[0] == 0
    (drive,) = drive_dirs(tmp_path / "out")
    for args in (["-q", "verify", str(drive)], ["verify", str(drive), "--deep", "--json"]):
        done = subprocess.run([sys.executable, "-c", LOADED_BY, NOT_FOR_VERIFY, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].strip() == "0", (args, done.stdout.splitlines()[-1])
    # Restore of drives that all arrived: neither verify, pack, plan, nor the lost-drive machinery of parity (the
    # rebuilder, ISA-L's engine and its library search through importlib.metadata and subprocess).
    not_for_restore = (
        "sneakernet.packer sneakernet.planner sneakernet.verifier sneakernet.drive.writer sneakernet.drive.parity.lost "
        "sneakernet.drive.parity.rebuilder sneakernet.parity.engine importlib.metadata subprocess cryptography pyrage "
        "sneakernet.cli.pack_cmd sneakernet.cli.verify_cmd"
    )
    args = ["-q", "restore", str(drive), "--into", str(tmp_path / "dest")]
    done = subprocess.run([sys.executable, "-c", LOADED_BY, not_for_restore, *args], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[-1].strip() == "0", done.stdout + done.stderr
    assert (tmp_path / "dest" / "a.txt").read_bytes() == b"hello\n" * 1000
    # The check is not blind: the same script names what pack loads.
    args = ["-q", "pack", str(src), "--out", str(tmp_path / "again"), "--drive-size", "1GB"]
    done = subprocess.run([sys.executable, "-c", LOADED_BY, NOT_FOR_VERIFY, *args], capture_output=True, text=True)
    assert "sneakernet.packer" in done.stdout and "sneakernet.cli.pack_cmd" in done.stdout, done.stdout
    # A pack of one lane does not load multiprocessing (a pack of several lanes starts their processes with it).
    for lanes, loaded in (("1", "0"), ("2", "0 concurrent.futures.process multiprocessing")):
        args = ["-q", "pack", str(src), "--out", str(tmp_path / f"lanes-{lanes}"), "--drive-size", "1GB"]
        not_for_one_lane = "multiprocessing concurrent.futures.process"
        done = subprocess.run(
            [sys.executable, "-c", LOADED_BY, not_for_one_lane, *args, "--at-once", lanes],
            capture_output=True,
            text=True,
        )
        assert done.stdout.splitlines()[-1].strip() == loaded, done.stdout + done.stderr


# --- messages that point the right way ---------------------------------------------------------------------------

#: Runs the command line with SIGTERM sent to itself at the third chunk a drive takes.
#: The command line, SIGTERMed as the third chunk is written to a segment: pack writes its drives through
#: packer.LocalStore (the drive store's seam), here a FaultyStore (tests/fakestore.py) that sends the signal.
SIGTERM_AT_THIRD_CHUNK = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fakestore import FaultyStore
import sneakernet.packer as packer
from sneakernet.cli import main
calls = []
def third_chunk(event, name):
    if event == "write" and name.endswith(".seg"):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
packer.LocalStore = lambda path: FaultyStore(path, after=third_chunk)
main(sys.argv[1:], prog_name="sneakernet")
"""


def test_sigterm_and_ctrl_c_end_pack_saying_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SIGTERM ended pack with 143 and no word; Ctrl-C's message did not say --resume.
    write_file(tmp_path / "src" / "noise.bin", random.Random(8).randbytes(3_000_000))
    args = ["pack", str(tmp_path / "src"), "--out", str(tmp_path / "out"), *SMALL_DRIVES]
    done = subprocess.run([sys.executable, "-c", SIGTERM_AT_THIRD_CHUNK, *args], capture_output=True, text=True)
    assert done.returncode == 143, done.stderr
    assert done.stderr.startswith("sneakernet: terminated (SIGTERM); what was being written is left unfinished")
    assert "run the same pack with --resume" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "drive-0001" / "drive.json").exists()
    code, _, err = run(*args, "--resume")
    assert code == 0, err
    assert run("verify", *drive_dirs(tmp_path / "out"))[0] == 0

    import sneakernet.packer as packer
    from fakestore import FaultyStore

    # Ctrl-C as the first byte is written to the drive, through the drive store's seam.
    monkeypatch.setattr(
        packer,
        "LocalStore",
        lambda path: FaultyStore(path, fail_write=1, fault=KeyboardInterrupt()),
    )
    code, _, err = run("pack", tmp_path / "src", "--out", tmp_path / "out2", *SMALL_DRIVES)
    assert code == 130 and err.startswith("sneakernet: interrupted; ") and "--resume" in err


def test_restore_names_both_shipments(src: Path, tmp_path: Path) -> None:
    # "this drive is from another shipment than the restore in progress" named neither.
    first, second = tmp_path / "first", tmp_path / "second"
    write_file(src / "noise.bin", random.Random(9).randbytes(3_000_000))
    assert run("pack", src, "--out", first, *SMALL_DRIVES)[0] == 0
    write_file(tmp_path / "other" / "x.txt", b"another dataset\n")
    code, out, _ = run("pack", tmp_path / "other", "--out", second, "--drive-size", "1GB", "--json")
    other = json.loads(out)
    ours = json.loads(run("info", first / "drive-0001", "--json")[1])
    assert run("restore", first / "drive-0001", "--into", tmp_path / "dest")[0] == 0
    code, out, _ = run("restore", second / "drive-0001", "--into", tmp_path / "dest")
    assert code == 1
    assert (
        f"this drive is of another shipment than the restore in progress: the drive's is {other['shipment']} "
        f"(fingerprint {other['short_fingerprint']}), the destination's {ours['shipment']} (fingerprint "
        f"{ours['short_fingerprint']})"
    ) in out


def test_info_and_ls_of_an_out_directory_suggest_one_drive(src: Path, tmp_path: Path) -> None:
    # They suggested OUT/drive-*, which they do not take.
    assert run("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB")[0] == 0
    for command in ("info", "ls"):
        code, _, err = run(command, tmp_path / "out")
        assert code == 2 and "drive-*" not in err
        assert f"holds drives (drive-0001): give one of them, e.g. {tmp_path / 'out' / 'drive-0001'}" in err
    assert "e.g. " + str(tmp_path / "out" / "drive-*") in run("verify", tmp_path / "out")[1]


def test_ls_of_a_drive_of_an_unfinished_pack_says_so(tmp_path: Path) -> None:
    write_file(tmp_path / "src" / "noise.bin", random.Random(6).randbytes(3_000_000))
    drives = [tmp_path / "d1", tmp_path / "d2"]
    for drive in drives:
        drive.mkdir()
    given = [arg for drive in drives for arg in ("--drive", str(drive))]
    assert run("pack", tmp_path / "src", *given, *SMALL_DRIVES, "--assume-ratio", "0.5")[0] == 4
    code, out, err = run("ls", drives[0])
    assert code == 2 and out == ""
    assert "the pack that wrote it has not finished" in err and "run the same pack with --resume" in err


def mounted_tmpfs(path: Path, options: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    return path


def test_restore_into_a_read_only_destination_says_nothing_was_written(src: Path, tmp_path: Path) -> None:
    # It said "the journal keeps everything already done" where nothing was done.
    assert run("pack", src, "--out", tmp_path / "out", "--drive-size", "1GB")[0] == 0
    read_only = mounted_tmpfs(tmp_path / "ro", "ro,size=1m")
    try:
        code, _, err = run("restore", tmp_path / "out" / "drive-0001", "--into", read_only / "dest")
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)
    assert code == 2 and "Read-only file system" in err
    assert "nothing was written" in err and "journal keeps" not in err


def test_restore_refuses_up_front_what_does_not_fit(tmp_path: Path) -> None:
    # It filled DEST's parts area before failing.
    write_file(tmp_path / "src" / "noise.bin", random.Random(7).randbytes(3_000_000))
    assert run("pack", tmp_path / "src", "--out", tmp_path / "out", "--drive-size", "1GB")[0] == 0
    small = mounted_tmpfs(tmp_path / "small", "size=2m")
    try:
        code, _, err = run("restore", tmp_path / "out" / "drive-0001", "--into", small / "dest")
        left = sorted(p.name for p in (small / "dest").iterdir())
        parts = list((small / "dest" / ".sneakernet" / "parts").iterdir())
        forced = run("restore", tmp_path / "out" / "drive-0001", "--into", small / "dest", "--no-space-check")
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert code == 4 and left == [".sneakernet"] and parts == []
    assert re.search(
        r"^sneakernet: error: drive-0001 carries 3 MB of data and the destination \S+ has 2.\d+ MB free", err
    )
    assert "nothing of drive-0001 was written" in err
    assert forced[0] == 4 and "is full" in forced[2]  # past the check, the disk fills as before


def test_plurals_and_sizes_in_human_units(tmp_path: Path) -> None:
    write_file(tmp_path / "one" / "a.txt", b"hello\n")
    write_file(tmp_path / "one" / "skip.tmp", b"x")
    out_dir = tmp_path / "out"
    code, out, _ = run("pack", tmp_path / "one", "--out", out_dir, "--drive-size", "1GB", "--exclude", "*.tmp")
    assert code == 0 and "packed 1 file, 0 directories" in out and "excluded 1 entry (1 B)" in out
    drive = out_dir / "drive-0001"
    code, out, _ = run("info", drive)
    assert code == 0 and "1 segment," in out and "shipment: 1 file," in out
    code, out, _ = run("verify", "--deep", drive)
    assert code == 0 and "1 whole file hashed" in out and "1 of 1 drive intact" in out
    code, _, err = run("plan", tmp_path / "one", "--drive-size", "150KB", "--chunk-size", "4MiB")
    assert code == 2 and "a drive can take 148 KB after the reserve, the format needs at least 4.99 MB" in err
    code, _, err = run("pack", tmp_path / "one", "--out", tmp_path / "o2", "--drive-size", "150KB")
    assert code == 2 and "can take 148 KB after the reserve, the format needs at least 4.99 MB" in err


def test_a_finished_verify_exits_with_damage_before_a_path_that_is_not_a_drive() -> None:
    from types import SimpleNamespace

    from sneakernet.cli.exits import verify_code
    from sneakernet.errors import ExitCode
    from sneakernet.verifier import Status

    def report(*statuses: Status) -> Any:
        ok = (Status.INTACT, Status.UNEXPECTED_FILES)
        return SimpleNamespace(drives=[SimpleNamespace(status=s.value, ok=s in ok) for s in statuses], recovery=None)

    assert verify_code(report(Status.INTACT, Status.UNEXPECTED_FILES)) == ExitCode.OK
    assert verify_code(report(Status.INTACT, Status.NOT_A_DRIVE)) == ExitCode.USAGE
    assert verify_code(report(Status.NOT_A_DRIVE, Status.DAMAGED)) == ExitCode.PROBLEMS
    assert verify_code(report(Status.WRONG_SHIPMENT)) == ExitCode.PROBLEMS
