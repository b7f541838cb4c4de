"""Profiles (--config FILE): every key, strict refusals naming key and line, flags over the file, pack and plan."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from conftest import drive_dirs, unpack, write_file
from conftest import invoke_cli as run
from sneakernet.config import KEYS, Profile, load_profile
from sneakernet.drive import DriveReader
from sneakernet.errors import UsageError
from sneakernet.format import ManifestHeader

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sneakernet.yaml"


def profile(tmp_path: Path, text: str, name: str = "sneakernet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- reading a profile --------------------------------------------------------------------------------------

EVERY_KEY = """\
# every key, sizes both ways
drive_size: 8TB
chunk_size: 8MiB
segment_size: 2147483648
level: 19
reserve: 0
excludes:
  - "*.tmp"
  - cache/
skip_unreadable: true
threads: 4
out: shipment/
drives: [/mnt/usb1, /mnt/usb2]
encrypt_to: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
recipients_files: [receivers.txt]
passphrase_file: passphrase.txt
cipher: chacha20-poly1305
parity: 2
parity_drives: [/mnt/usb9, /mnt/usb10]
parity_dir: /var/tmp/parity
scheduler: tcp://head:8786
drives_from: drives.txt
work_dir: /cluster/tmp
storage_options: {endpoint_url: "http://127.0.0.1:9000", anon: false}
"""


def test_every_key(tmp_path: Path) -> None:
    loaded = load_profile(profile(tmp_path, EVERY_KEY))
    assert loaded == Profile(
        drive_size=8 * 10**12,
        chunk_size=8 * 2**20,
        segment_size=2**31,
        level=19,
        reserve=0,
        excludes=("*.tmp", "cache/"),
        skip_unreadable=True,
        threads=4,
        out="shipment/",
        drives=("/mnt/usb1", "/mnt/usb2"),
        encrypt_to=("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",),
        recipients_files=("receivers.txt",),
        passphrase_file="passphrase.txt",
        cipher="chacha20-poly1305",
        parity=2,
        parity_drives=("/mnt/usb9", "/mnt/usb10"),
        parity_dir="/var/tmp/parity",
        scheduler="tcp://head:8786",
        drives_from="drives.txt",
        work_dir="/cluster/tmp",
        storage_options={"endpoint_url": "http://127.0.0.1:9000", "anon": False},
    )
    assert set(loaded.given()) == set(KEYS)


def test_example_profile_shows_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in KEYS:
        assert re.search(rf"^{key}:", text, re.MULTILINE), f"examples/sneakernet.yaml does not show {key}"
        assert re.search(rf"^#.*\n{key}:", text, re.MULTILINE), f"examples/sneakernet.yaml: {key} has no comment"
    loaded = load_profile(EXAMPLE)
    assert loaded.drive_size == 8 * 10**12 and loaded.excludes and loaded.drives is None
    # The example encrypts nothing: its encryption keys are shown commented, set to null; so are the parity drives.
    assert set(loaded.given()) == set(KEYS) - {
        "drives",
        "encrypt_to",
        "recipients_files",
        "passphrase_file",
        "parity_drives",
        "parity_dir",
        "scheduler",
        "drives_from",
        "work_dir",
        "storage_options",
    }


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n", "level: null\nreserve: ~\n"])
def test_empty_profile(tmp_path: Path, text: str) -> None:
    assert load_profile(profile(tmp_path, text)) == Profile()


def test_sizes_as_numbers_and_strings(tmp_path: Path) -> None:
    loaded = load_profile(profile(tmp_path, "drive_size: 500GB\nchunk_size: 65536\nreserve: 7.5 MiB\n"))
    assert (loaded.drive_size, loaded.chunk_size, loaded.reserve) == (500 * 10**9, 65536, int(7.5 * 2**20))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("level: 3\ndrive-size: 8TB\n", 2, "unknown key 'drive-size' (did you mean drive_size?)"),
        ("level: 3\n\nexclude: ['*.tmp']\n", 3, "unknown key 'exclude' (did you mean excludes?)"),
        ("compression: zstd\n", 1, "unknown key 'compression'; the keys are drive_size, chunk_size"),
        ("12: 3\n", 1, "key 12 is not an option name"),
        ("level: 3\nlevel: 4\n", 2, "key 'level' is given twice (first on line 1)"),
        ("level: 3\ndrive_size: lots\n", 2, "drive_size: cannot read size 'lots'"),
        ("drive_size: 8 TBytes\n", 1, "drive_size: cannot read size '8 TBytes'"),
        ("drive_size: 1.5\n", 1, "drive_size: give a size such as 8TB, 500GB, 4MiB or a number of bytes, not 1.5"),
        ("drive_size: 0\n", 1, "drive_size: must be at least 1 B, not 0 B"),
        ("storage_options: [a]\n", 1, "storage_options: give a mapping of fsspec option names to values"),
        ("storage_options: {a: [1]}\n", 1, "storage_options: a: give a string, a number, true/false or a mapping"),
        ("drive_size: true\n", 1, "drive_size: give a size such as 8TB"),
        ("drive_size: [8TB]\n", 1, "drive_size: give a size such as 8TB, 500GB, 4MiB or a number of bytes, not a list"),
        ("chunk_size: 1KiB\n", 1, "chunk_size: must be between 65536 and 67108864 bytes (64KiB to 64MiB)"),
        ("reserve: -1\n", 1, "reserve: must be at least 0 B, not -1 B"),
        ("\n\nlevel: 30\n", 3, "level: must be from 1 to 22, not 30"),
        ("level: fast\n", 1, "level: give a whole number from 1 to 22, not 'fast'"),
        ("level: 3.0\n", 1, "level: give a whole number from 1 to 22, not 3.0"),
        ("threads: 1000\n", 1, "threads: must be from 0 to 256, not 1000"),
        ("skip_unreadable: maybe\n", 1, "skip_unreadable: give true or false, not 'maybe'"),
        ("cipher: aes-128-gcm\n", 1, "cipher: give one of aes-256-gcm, chacha20-poly1305, not 'aes-128-gcm'"),
        ("cipher: [aes-256-gcm]\n", 1, "cipher: give one of aes-256-gcm, chacha20-poly1305, not a list"),
        ("excludes: '*.tmp'\n", 1, "excludes: give a list of patterns (one '- item' a line, or [a, b]), not '*.tmp'"),
        ("excludes:\n  - '*.tmp'\n  - 3\n", 2, "excludes: every item must be a pattern (a string), not 3"),
        ("drives: /mnt/usb\n", 1, "drives: give a list of drive paths"),
        ("out: {a: 1}\n", 1, "out: give a path, not a mapping"),
        ("out: ''\n", 1, "out: give a path, not ''"),
    ],
)
def test_bad_key_or_value_names_key_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = profile(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"profile {path}, line {line}: "), str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- drive_size: 8TB\n", "line 1: the profile must be a mapping of option names to values"),
        ("8TB\n", "line 1: the profile must be a mapping of option names to values (drive_size: 8TB, one a line), "),
        ("level: [3\n", "not valid YAML: "),
        ("level: 3\n---\nlevel: 4\n", "not valid YAML: "),
        (
            "level: !!python/object/apply:os.system ['true']\n",
            "line 1: not valid YAML: could not determine a constructor",
        ),
        ("level: *missing\n", "not valid YAML: found undefined alias"),
    ],
)
def test_not_a_profile(tmp_path: Path, text: str, message: str) -> None:
    path = profile(tmp_path, text)
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"profile {path}")


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"profile .*missing.yaml does not exist: give the path of a YAML file"):
        load_profile(tmp_path / "missing.yaml")
    with pytest.raises(UsageError, match=r"cannot read profile .*: Is a directory"):
        load_profile(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"out: caf\xe9\n")
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        load_profile(tmp_path / "latin1.yaml")


def test_anchors_and_aliases_are_plain_yaml(tmp_path: Path) -> None:
    loaded = load_profile(profile(tmp_path, "excludes: &common ['*.tmp']\ndrives: *common\n"))
    assert loaded.excludes == loaded.drives == ("*.tmp",)


# --- pack --config ------------------------------------------------------------------------------------------


@pytest.fixture
def src(tmp_path: Path) -> Path:
    rng = random.Random(5)
    write_file(tmp_path / "src" / "data" / "a.txt", b"alpha beta\n" * 20_000)
    write_file(tmp_path / "src" / "data" / "noise.bin", rng.randbytes(700_000))
    write_file(tmp_path / "src" / "data" / "scratch.tmp", b"temporary\n")
    write_file(tmp_path / "src" / "logs" / "run.log", b"log line\n" * 10)
    return tmp_path / "src"


def headers(out: Path) -> list[ManifestHeader]:
    found = []
    for drive in drive_dirs(out):
        header = next(DriveReader(str(drive)).records())
        assert isinstance(header, ManifestHeader)
        found.append(header)
    return found


def test_pack_with_config_end_to_end(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "shipment"
    config = profile(
        tmp_path,
        f"drive_size: 1MB\nchunk_size: 128KiB\nlevel: 7\nreserve: 0\nexcludes: ['*.tmp', logs/]\nout: {out}\n",
    )
    code, stdout, err = run("pack", src, "--config", config, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["files"] == 2 and summary["excluded_entries"] == 2
    assert len(drive_dirs(out)) == len(summary["drives"]) >= 2
    assert {(h.chunk_size, h.level) for h in headers(out)} == {(128 * 1024, 7)}
    paths = set(unpack(drive_dirs(out)).entries)
    assert b"data/a.txt" in paths and b"data/scratch.tmp" not in paths and b"logs" not in paths
    assert all(sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) <= 1_000_000 for d in drive_dirs(out))


def test_flags_override_the_profile(src: Path, tmp_path: Path) -> None:
    config = profile(
        tmp_path,
        "drive_size: 1MB\nchunk_size: 128KiB\nlevel: 19\nexcludes: ['*.tmp']\nout: never-used/\n",
    )
    out = tmp_path / "shipment"
    # --level 3 is the default value, given on purpose: a flag on the command line wins even then.
    code, _, err = run(
        "pack", src, "--config", config, "--out", out, "--level", "3", "--exclude", "*.log", "--drive-size", "5MB"
    )
    assert code == 0, err
    assert not (tmp_path / "never-used").exists() and not Path("never-used").exists()
    assert len(drive_dirs(out)) == 1  # 5MB from the command line, not 1MB
    assert {(h.chunk_size, h.level) for h in headers(out)} == {(128 * 1024, 3)}
    paths = set(unpack(drive_dirs(out)).entries)
    assert b"data/scratch.tmp" in paths  # the command line's --exclude replaced the profile's list
    assert b"logs/run.log" not in paths


def test_profile_drives_and_command_line_out(src: Path, tmp_path: Path) -> None:
    usb1, usb2 = tmp_path / "usb1", tmp_path / "usb2"
    usb1.mkdir()
    usb2.mkdir()
    config = profile(tmp_path, f"drive_size: 2MB\nchunk_size: 128KiB\ndrives: [{usb1}, {usb2}]\n")
    code, out, err = run("pack", src, "--config", config, "--json")
    assert code == 0, err
    assert json.loads(out)["drives"][0]["path"] == str(usb1) and (usb1 / "drive.json").exists()
    # --out on the command line replaces the profile's destination (its drives), instead of clashing with it.
    code, _, err = run("pack", src, "--config", config, "--out", tmp_path / "elsewhere")
    assert code == 0, err
    assert drive_dirs(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drive_size: 8TB\nlevle: 3\n", "line 2: unknown key 'levle' (did you mean level?)"),
        ("out: shipment/\ndrive_size: 8 TeraBytes\n", "line 2: drive_size: cannot read size '8 TeraBytes'"),
        ("[drive_size, 8TB]\n", "line 1: the profile must be a mapping"),
    ],
)
def test_pack_refuses_a_bad_profile(src: Path, tmp_path: Path, text: str, message: str) -> None:
    config = profile(tmp_path, text)
    code, out, err = run("pack", src, "--config", config, "--out", tmp_path / "out")
    assert code == 2
    assert out == "" and err == f"sneakernet: error: profile {config}, {message}" + err.split(message, 1)[1]
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_pack_refuses_a_missing_profile(src: Path, tmp_path: Path) -> None:
    code, _, err = run("pack", src, "--config", tmp_path / "nope.yaml", "--out", tmp_path / "out")
    assert code == 2
    assert err == f"sneakernet: error: profile {tmp_path / 'nope.yaml'} does not exist: give the path of a YAML file\n"


def test_a_profile_value_pack_itself_refuses(src: Path, tmp_path: Path) -> None:
    """Values that only fail together (segment smaller than a chunk) are refused by pack, in one line."""
    config = profile(tmp_path, "drive_size: 1GB\nchunk_size: 1MiB\nsegment_size: 64KiB\n")
    code, _, err = run("pack", src, "--config", config, "--out", tmp_path / "out")
    assert (
        code == 2
        and err == "sneakernet: error: segment size must be at least the chunk size (plus a few bytes of framing)\n"
    )


# --- plan --config ------------------------------------------------------------------------------------------


def test_plan_with_config(src: Path, tmp_path: Path) -> None:
    config = profile(
        tmp_path,
        "drive_size: 1MB\nchunk_size: 128KiB\nlevel: 5\nexcludes: ['*.tmp']\ndrives: [/mnt/a, /mnt/b, /mnt/c]\n",
    )
    code, out, err = run("plan", src, "--config", config, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["drive_size"], report["chunk_size"], report["level"]) == (1_000_000, 128 * 1024, 5)
    assert report["excluded_entries"] == 1 and report["drives_given"] == 3
    code, out, _ = run(
        "plan", src, "--config", config, "--drive-size", "2MB", "--drives", "1", "--level", "3", "--json"
    )
    report = json.loads(out)
    assert (report["drive_size"], report["level"], report["drives_given"]) == (2_000_000, 3, 1)
    assert report["chunk_size"] == 128 * 1024


def test_plan_refuses_a_bad_profile(src: Path, tmp_path: Path) -> None:
    config = profile(tmp_path, "drive_size: 1MB\nthreads: many\n")
    code, out, err = run("plan", src, "--config", config)
    assert code == 2 and out == ""
    assert (
        err == f"sneakernet: error: profile {config}, line 2: threads: give a whole number from 0 to 256, not 'many'\n"
    )
