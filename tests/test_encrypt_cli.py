"""Encrypted shipments from the command line (issue 16, docs/format.md 19.8): pack --encrypt-to, --recipients-file,
--passphrase-file and the profile's keys; restore, ls and info with --identity or --passphrase-file; a wrong key
or none is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import zstandard

from conftest import drive_dirs, invoke_cli, source_entries
from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.format import CIPHER_AES_GCM, CIPHER_CHACHA
from sneakernet.options import PackOptions
from test_json import validate

#: Small chunks and segments, so that a few MB of a real tree make several drives of several segments each.
SHAPE = ("--chunk-size", "64KiB", "--segment-size", "256KiB")


def restored(dest: Path) -> dict[bytes, object]:
    """What a restore put in ``dest``, its finished record (DEST/.sneakernet) left out."""
    return {path: entry for path, entry in source_entries(dest).items() if not path.startswith(b".sneakernet")}


def header_cipher(drive: Path) -> str | None:
    """The ``cipher`` of the drive's manifest header (its first line)."""
    with zstandard.ZstdDecompressor().stream_reader((drive / "manifest.jsonl.zst").open("rb")) as plain:
        first = plain.read(4096).split(b"\n", 1)[0]
    return json.loads(first).get("cipher")


def by_hand_script() -> str:
    """docs/format.md 19.8.6's steps, as a bash script."""
    text = (Path(__file__).parents[1] / "docs" / "format.md").read_text(encoding="utf-8")
    section = text[text.index("#### 19.8.6") : text.index("### 19.9")]
    return section[section.index("```sh\n") + 6 : section.index("```\n", section.index("```sh\n") + 6)]


needs_by_hand_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("age", "zstd", "jq", "openssl", "b3sum", "bash")),
    reason="the by-hand steps need age, zstd, jq, openssl, b3sum and bash",
)


def identity_file(path: Path) -> tuple[Path, str]:
    """An age identity file (as age-keygen writes one) and its recipient."""
    identity = ShipmentIdentity.generate()
    path.write_text(f"# public key: {identity.recipient}\n{identity.secret_line()}\n")
    return path, identity.recipient


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tree: seven packages of Python's standard library, sources only (about 1.8 MB, some 100 files)."""
    root = tmp_path_factory.mktemp("real") / "tree"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("email", "json", "urllib", "logging", "asyncio", "http", "xml"):
        shutil.copytree(stdlib / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def shipped(real_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The real tree packed with --encrypt-to onto at least 3 drives: (tree, out, the receiver's identity file)."""
    work = tmp_path_factory.mktemp("shipped")
    key, recipient = identity_file(work / "key.txt")
    out = work / "out"
    code, _, err = invoke_cli("pack", real_tree, "--out", out, "--drive-size", "1100KB", *SHAPE, "--encrypt-to",
                              recipient)  # fmt: skip
    assert code == 0, err
    return real_tree, out, key


def test_no_name_nor_sample_of_the_real_tree_is_on_any_drive(shipped) -> None:
    tree, out, _ = shipped
    drives = drive_dirs(out)
    assert len(drives) >= 3
    names = {part for path in source_entries(tree) for part in path.split(b"/") if len(part) >= 5}
    samples: set[bytes] = set()
    for path in tree.rglob("*"):
        if path.is_file() and path.stat().st_size >= 64:
            data = path.read_bytes()
            samples |= {data[:32], data[len(data) // 2 : len(data) // 2 + 32], data[-32:]}
    assert len(names) > 50 and len(samples) > 200
    found = []
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path.name, needle) for needle in names | samples if needle in data]
    assert not found
    assert {header_cipher(drive) for drive in drives} == {CIPHER_AES_GCM}  # what pack writes unless told


def test_restore_with_the_identity_is_identical_and_with_another_writes_nothing(shipped, tmp_path: Path) -> None:
    tree, out, key = shipped
    drives = drive_dirs(out)
    other, _ = identity_file(tmp_path / "other.txt")
    for given in (("--identity", other), ()):
        code, stdout, err = invoke_cli("restore", *drives, "--into", tmp_path / "dest", *given)
        assert code == 2 and stdout == "" and err.count("\n") == 1, err
        assert not (tmp_path / "dest").exists()
    assert "does not open keys/recipients.age" in invoke_cli("restore", *drives, "--into", tmp_path / "d",
                                                             "--identity", other)[2]  # fmt: skip
    assert "--identity FILE" in invoke_cli("restore", *drives, "--into", tmp_path / "d")[2]
    code, _, err = invoke_cli("restore", *reversed(drives), "--into", tmp_path / "dest", "--identity", key)
    assert code == 0, err
    assert restored(tmp_path / "dest") == source_entries(tree)


def test_a_restore_drive_by_drive_and_status_between(shipped, tmp_path: Path) -> None:
    tree, out, key = shipped
    first, *rest = drive_dirs(out)
    dest = tmp_path / "dest"
    assert invoke_cli("restore", first, "--into", dest, "--identity", key)[0] == 0
    # status reads the journal on the receiver's disk: no key needed.
    code, stdout, _ = invoke_cli("status", "--json", dest)
    assert code == 3 and len(json.loads(stdout)["waiting"]) == len(rest)
    for drive in rest:
        assert invoke_cli("restore", drive, "--into", dest, "--identity", key)[0] == 0
    assert invoke_cli("status", dest)[0] == 0
    assert restored(dest) == source_entries(tree)
    assert os.listdir(dest / ".sneakernet") == ["finished.json"]  # the journal went, its sealed catalog copy too


def test_ls_and_info_with_and_without_the_key(shipped, tmp_path: Path) -> None:
    tree, out, key = shipped
    drive = drive_dirs(out)[0]
    code, stdout, _ = invoke_cli("ls", "--json", drive, "--identity", key)
    assert code == 0
    listed = {json.loads(line)["path"] for line in stdout.splitlines()}
    assert listed == {os.fsdecode(path) for path in source_entries(tree)}
    code, stdout, err = invoke_cli("ls", drive)
    assert (code, stdout, err.count("\n")) == (2, "", 1) and "encrypted shipment" in err
    code, stdout, _ = invoke_cli("info", "--json", drive)
    keyless = json.loads(stdout)
    assert code == 0 and keyless["encrypted"] is True and keyless["files"] is None and keyless["drives"] >= 3
    code, stdout, _ = invoke_cli("info", "--json", drive, "--identity", key)
    keyed = json.loads(stdout)
    assert keyed["files"] == sum(1 for path in tree.rglob("*") if path.is_file())
    assert keyed["fingerprint"] == keyless["fingerprint"]
    assert "names, sizes and contents need its key" in invoke_cli("info", drive)[1]


def test_a_passphrase_file_and_a_recipients_file_each_open_the_shipment(real_tree: Path, tmp_path: Path) -> None:
    key, recipient = identity_file(tmp_path / "key.txt")
    (tmp_path / "recipients.txt").write_text(f"# the receiver\n{recipient}\n")
    (tmp_path / "pass.txt").write_text("correct horse battery staple\n")
    out = tmp_path / "out"
    code, stdout, err = invoke_cli("pack", "--json", real_tree / "json", "--out", out, "--drive-size", "10MB", *SHAPE,
                                   "--recipients-file", tmp_path / "recipients.txt", "--passphrase-file",
                                   tmp_path / "pass.txt")  # fmt: skip
    assert code == 0, err
    # --json says to whom (how many, a passphrase or not), never a key nor which recipient.
    summary = json.loads(stdout)
    validate(summary, "pack-summary.schema.json")
    assert (summary["encrypted"], summary["encryption"]) == (
        True, {"recipients": 1, "passphrase": True, "cipher": "aes-256-gcm"},
    )  # fmt: skip
    assert recipient not in stdout and "correct horse" not in stdout and "AGE-SECRET-KEY" not in stdout
    drives = drive_dirs(out)
    assert sorted(os.listdir(drives[0] / "keys")) == ["passphrase.age", "recipients.age"]
    for n, given in enumerate((("--identity", key), ("--passphrase-file", tmp_path / "pass.txt"))):
        code, _, err = invoke_cli("restore", *drives, "--into", tmp_path / f"dest{n}", *given)
        assert code == 0, err
        assert restored(tmp_path / f"dest{n}") == source_entries(real_tree / "json")
    (tmp_path / "wrong.txt").write_text("incorrect horse\n")
    code, _, err = invoke_cli("restore", *drives, "--into", tmp_path / "dest2", "--passphrase-file",
                              tmp_path / "wrong.txt")  # fmt: skip
    assert code == 2 and "passphrase given does not open" in err and not (tmp_path / "dest2").exists()


def test_the_pack_summary_says_whom_the_shipment_is_encrypted_to(real_tree: Path, tmp_path: Path) -> None:
    _, first = identity_file(tmp_path / "a.txt")
    _, second = identity_file(tmp_path / "b.txt")
    shape = ("--drive-size", "10MB", *SHAPE)
    code, stdout, err = invoke_cli("pack", real_tree / "json", "--out", tmp_path / "sealed", *shape, "--encrypt-to",
                                   first, "--encrypt-to", second)  # fmt: skip
    assert code == 0, err
    assert "  encrypted (aes-256-gcm) to 2 recipients: verify needs no key" in stdout and first not in stdout + err
    code, stdout, err = invoke_cli("pack", "--json", real_tree / "json", "--out", tmp_path / "clear", *shape)
    assert code == 0, err
    clear = json.loads(stdout)
    validate(clear, "pack-summary.schema.json")
    assert (clear["encrypted"], clear["encryption"]) == (False, None)
    assert "encrypted" not in invoke_cli("pack", real_tree / "json", "--out", tmp_path / "clear2", *shape)[1]


def test_the_profile_encrypts_to_its_recipients(real_tree: Path, tmp_path: Path) -> None:
    key, recipient = identity_file(tmp_path / "key.txt")
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"drive_size: 10MB\nchunk_size: 64KiB\nencrypt_to:\n  - {recipient}\n")
    out = tmp_path / "out"
    assert invoke_cli("pack", real_tree / "json", "--out", out, "--config", profile)[0] == 0
    (drive,) = drive_dirs(out)
    assert json.loads((drive / "drive.json").read_text())["encrypted"] is True
    assert invoke_cli("restore", drive, "--into", tmp_path / "dest", "--identity", key)[0] == 0
    profile.write_text("drive_size: 10MB\npassphrase: hunter2\n")
    code, _, err = invoke_cli("pack", real_tree / "json", "--out", tmp_path / "o2", "--config", profile)
    assert code == 2 and "unknown key 'passphrase'" in err  # a secret has no place in a profile: passphrase_file


def test_bad_encryption_options_are_one_line_before_anything_is_written(real_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cases = [
        (("--encrypt-to", "age1notakey"), "is not a valid age X25519 recipient"),
        (("--encrypt-to", "ssh-dss AAAA"), "neither an age X25519 recipient"),
        (("--passphrase",), "--passphrase asks on the terminal"),  # the test's stdin is no terminal
        (("--passphrase-file", tmp_path / "missing.txt"), "cannot read the passphrase file"),
        (("--recipients-file", tmp_path / "bad.txt"), "bad.txt, line 2: recipient 'age1notakey' is not a valid"),
    ]
    (tmp_path / "bad.txt").write_text(f"{ShipmentIdentity.generate().recipient}\nage1notakey\n")
    for options, message in cases:
        code, _, err = invoke_cli("pack", real_tree / "json", "--out", out, "--drive-size", "10MB", *options)
        assert code == 2 and message in err and err.count("\n") == 1, (options, err)
        assert not out.exists()
    recipient = ShipmentIdentity.generate().recipient
    for options, message in (
        (("--encrypt-to", recipient, "--cipher", "aes-128-gcm"), "'aes-128-gcm' is not one of 'aes-256-gcm', 'chacha"),
        (("--cipher", CIPHER_CHACHA), "--cipher goes with --encrypt-to, --recipients-file or a passphrase"),
    ):  # click's usage errors: the usage line, then the error's one line
        code, _, err = invoke_cli("pack", real_tree / "json", "--out", out, "--drive-size", "10MB", *options)
        assert code == 2 and message in err.splitlines()[-1], (options, err)
        assert not out.exists()


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_without_the_key_checks_every_stored_byte(shipped) -> None:
    _, out, key = shipped
    drives = drive_dirs(out)
    code, stdout, _ = invoke_cli("verify", "--json", *drives)
    report = json.loads(stdout)
    assert code == 0 and all(d["status"] == "intact" for d in report["drives"])
    assert sum(d["bytes_checked"] for d in report["drives"]) == sum(
        json.loads((d / "drive.json").read_text())["stored_bytes"] for d in drives
    )
    assert all(any("names and contents need the key" in note for note in d["notes"]) for d in report["drives"])
    code, stdout, _ = invoke_cli("verify", "--json", "--deep", *drives, "--identity", key)
    report = json.loads(stdout)
    assert code == 0 and sum(d["files_checked"] for d in report["drives"]) > 50
    assert not any(d["notes"] for d in report["drives"])


def test_verify_deep_without_the_key_or_with_another_is_one_line(shipped, tmp_path: Path) -> None:
    _, out, _ = shipped
    other, _ = identity_file(tmp_path / "other.txt")
    for options, message in ((("--deep",), "--deep decodes its chunks, which needs its key"),
                             (("--identity", other), "does not open keys/recipients.age")):  # fmt: skip
        code, stdout, err = invoke_cli("verify", *drive_dirs(out), *options)
        assert code == 2 and stdout == "" and err.count("\n") == 1 and message in err, err


def test_verify_names_damage_by_chunk_without_the_key_and_by_file_with_it(shipped, tmp_path: Path) -> None:
    _, out, key = shipped
    drive = tmp_path / "drive-0001"
    shutil.copytree(drive_dirs(out)[0], drive)
    flip(drive / "segments" / "s000001.seg", 100)
    code, stdout, _ = invoke_cli("verify", "--json", drive)
    (keyless,) = json.loads(stdout)["drives"]
    assert code == 1 and keyless["status"] == "damaged"
    (chunk,) = keyless["damaged_chunks"]
    assert chunk["segment"] == "segments/s000001.seg" and chunk["paths"] == []
    code, stdout, _ = invoke_cli("verify", "--json", drive, "--identity", key)
    (keyed,) = json.loads(stdout)["drives"]
    assert code == 1 and [c["id"] for c in keyed["damaged_chunks"]] == [chunk["id"]]
    assert keyed["damaged_chunks"][0]["paths"]  # the file the chunk holds, named with the key


@pytest.mark.parametrize("name", ["index.age", "catalog.age", "keys/recipients.age"])
def test_a_damaged_sealed_file_is_found_without_the_key(shipped, tmp_path: Path, name: str) -> None:
    _, out, key = shipped
    drive = tmp_path / "drive-0001"
    shutil.copytree(drive_dirs(out)[0], drive)
    flip(drive / name, (drive / name).stat().st_size - 20)
    code, stdout, _ = invoke_cli("verify", "--json", drive)
    (report,) = json.loads(stdout)["drives"]
    assert code == 1 and report["status"] == "damaged"
    assert [p["message"] for p in report["problems"] if p["kind"] == "sealed"] == [
        f"{name} is damaged: its BLAKE3 is not the one its manifest records"
    ]
    if name != "keys/recipients.age":  # the key file itself: the key no longer opens it
        code, stdout, _ = invoke_cli("verify", "--json", drive, "--identity", key)
        assert code == 1 and json.loads(stdout)["drives"][0]["status"] == "damaged"


def test_a_stray_file_among_the_keys_is_named(shipped, tmp_path: Path) -> None:
    _, out, _ = shipped
    drive = tmp_path / "drive-0001"
    shutil.copytree(drive_dirs(out)[0], drive)
    (drive / "keys" / "extra.age").write_bytes(b"x")
    code, stdout, _ = invoke_cli("verify", "--json", drive)
    (report,) = json.loads(stdout)["drives"]
    assert code == 0 and report["unexpected"] == ["keys/extra.age"]


def test_parity_over_an_encrypted_shipment_needs_no_key(shipped, tmp_path: Path) -> None:
    tree, out, key = shipped
    drives = []
    for drive in drive_dirs(out):
        shutil.copytree(drive, tmp_path / drive.name)
        drives.append(tmp_path / drive.name)
    code, _, err = invoke_cli("parity", *drives, "--out", tmp_path, "--parity", "1")
    assert code == 0, err
    parity = tmp_path / "parity-0001"
    code, stdout, _ = invoke_cli("verify", "--json", *drives, parity)
    assert code == 0 and json.loads(stdout)["recovery"]["status"] == "whole"
    code, stdout, _ = invoke_cli("verify", "--json", *drives[1:], parity)
    recovery = json.loads(stdout)["recovery"]
    assert code == 0 and (recovery["status"], recovery["missing"]) == ("recoverable", ["drive-0001"])
    names = {part for path in source_entries(tree) for part in path.split(b"/") if len(part) >= 5}
    assert not [path for path in parity.rglob("*") if path.is_file() and any(n in path.read_bytes() for n in names)]
    # Each covered drive's sealed index is on the parity drive, listed in its B3SUMS after its manifest's copy.
    sums = (parity / "B3SUMS").read_text()
    assert [line.split("  ")[1] for line in sums.splitlines() if "drive-0002" in line] == [
        "covered/drive-0002.json", "covered/drive-0002.manifest.jsonl.zst", "covered/drive-0002.index.age"
    ]  # fmt: skip
    assert (parity / "covered/drive-0002.index.age").read_bytes() == (drives[1] / "index.age").read_bytes()
    if shutil.which("b3sum"):
        assert subprocess.run(["b3sum", "--check", "--quiet", "B3SUMS"], cwd=parity).returncode == 0
    lost_drive_through_parity(tree, drives, parity, key, tmp_path)
    # A damaged copy is named by keyless verify; the data drive's own sealed index, damaged, is repaired from it.
    shutil.copytree(parity, tmp_path / "flipped" / "parity-0001")
    flip(tmp_path / "flipped/parity-0001/covered/drive-0002.index.age", 40)
    code, stdout, _ = invoke_cli("verify", "--json", tmp_path / "flipped/parity-0001")
    problems = json.loads(stdout)["drives"][0]["problems"]
    assert code == 1 and any("covered/drive-0002.index.age is damaged" in p["message"] for p in problems), problems
    flip(drives[1] / "index.age", 40)
    assert invoke_cli("verify", drives[1])[0] == 1
    code, _, err = invoke_cli("repair", drives[1], drives[0], drives[2], parity)
    assert code == 0, err
    assert invoke_cli("verify", drives[1])[0] == 0
    assert (drives[1] / "index.age").read_bytes() == (parity / "covered/drive-0002.index.age").read_bytes()


def lost_drive_through_parity(tree: Path, drives: list[Path], parity: Path, key: Path, tmp_path: Path) -> None:
    """drive-0001 lost: restore through the parity drive with the identity is identical, without one line exit 2
    and nothing written; rebuild (no key needed) gives it back byte for byte, verified keyless."""
    others = (*drives[1:], parity)
    code, stdout, err = invoke_cli("restore", *others, "--into", tmp_path / "nokey")
    assert (code, stdout, err.count("\n")) == (2, "", 1) and "--identity FILE" in err, err
    assert not (tmp_path / "nokey").exists()
    code, _, err = invoke_cli("restore", *others, "--into", tmp_path / "dest", "--identity", key)
    assert code == 0, err
    assert restored(tmp_path / "dest") == source_entries(tree)
    code, _, err = invoke_cli("rebuild", *others, "--onto", tmp_path / "drive-0001")
    assert code == 0, err
    rebuilt = tmp_path / "drive-0001"
    lost = drives[0]
    files = sorted(str(p.relative_to(lost)) for p in lost.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(rebuilt)) for p in rebuilt.rglob("*") if p.is_file())
    assert (rebuilt / "B3SUMS").read_bytes() == (lost / "B3SUMS").read_bytes()
    assert all((rebuilt / name).read_bytes() == (lost / name).read_bytes() for name in files)
    code, stdout, _ = invoke_cli("verify", "--json", rebuilt)
    assert code == 0 and json.loads(stdout)["drives"][0]["status"] == "intact", stdout


@needs_by_hand_tools
def test_age_and_the_by_hand_steps_recover_a_file_of_the_shipment(shipped, tmp_path: Path) -> None:
    """`age -d -i key.txt` on the wrapped key, then docs/format.md 19.8.6's steps, on a drive pack wrote."""
    tree, out, key = shipped
    drive = drive_dirs(out)[-1]
    _, stdout, _ = invoke_cli("ls", "--json", drive, "--identity", key)
    listed = [json.loads(line) for line in stdout.splitlines()]
    last = [len(drive_dirs(out))]
    # A small file (one piece in one chunk, as the steps take it), wholly on the drive.
    wanted = next(e for e in listed if e["kind"] == "file" and e["drives"] == last and 1000 < e["size"] < 30_000)
    env = {**os.environ, "DRIVE": str(drive), "KEY": str(key), "FILE": wanted["path"]}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", by_hand_script()], cwd=tmp_path, env=env,
                          capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "recovered").read_bytes() == (tree / wanted["path"]).read_bytes()


def test_pack_cipher_chacha20_poly1305_is_written_checked_and_read_back(real_tree: Path, tmp_path: Path) -> None:
    """--cipher chacha20-poly1305 (for a CPU without AES instructions): every manifest header names it; verify
    without the key and with it, restore identical, a flipped byte found; the by-hand steps open it too."""
    key, recipient = identity_file(tmp_path / "key.txt")
    tree, out = real_tree, tmp_path / "out"
    code, _, err = invoke_cli("pack", tree, "--out", out, "--drive-size", "1100KB", *SHAPE, "--encrypt-to", recipient,
                              "--cipher", CIPHER_CHACHA)  # fmt: skip
    assert code == 0, err
    drives = drive_dirs(out)
    assert len(drives) >= 2 and {header_cipher(drive) for drive in drives} == {CIPHER_CHACHA}
    for given in ((), ("--deep", "--identity", key)):
        code, _, err = invoke_cli("verify", *drives, *given)
        assert code == 0, err
    code, _, err = invoke_cli("restore", *drives, "--into", tmp_path / "dest", "--identity", key)
    assert code == 0, err
    assert restored(tmp_path / "dest") == source_entries(tree)
    if all(shutil.which(tool) for tool in ("age", "zstd", "jq", "openssl", "b3sum", "bash")):
        _, stdout, _ = invoke_cli("ls", "--json", drives[0], "--identity", key)
        wanted = next(
            e for e in map(json.loads, stdout.splitlines())
            if e["kind"] == "file" and e["drives"] == [1] and 1000 < e["size"] < 30_000
        )  # fmt: skip
        env = {**os.environ, "DRIVE": str(drives[0]), "KEY": str(key), "FILE": wanted["path"]}
        (tmp_path / "hand").mkdir()
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", by_hand_script()], cwd=tmp_path / "hand", env=env,
                              capture_output=True)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert (tmp_path / "hand" / "recovered").read_bytes() == (tree / wanted["path"]).read_bytes()
    segment = sorted((drives[0] / "segments").iterdir())[0]
    flip(segment, 100)
    code, _, _ = invoke_cli("verify", drives[0], "--identity", key)
    assert code == 1


def test_the_profile_names_the_cipher_and_the_command_line_wins(real_tree: Path, tmp_path: Path) -> None:
    _, recipient = identity_file(tmp_path / "key.txt")
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"drive_size: 10MB\ncipher: chacha20-poly1305\nencrypt_to:\n  - {recipient}\n")
    source = real_tree / "json"
    assert invoke_cli("pack", source, "--out", tmp_path / "o1", "--config", profile)[0] == 0
    assert header_cipher(drive_dirs(tmp_path / "o1")[0]) == CIPHER_CHACHA
    assert invoke_cli("pack", source, "--out", tmp_path / "o2", "--config", profile, "--cipher", CIPHER_AES_GCM)[0] == 0
    assert header_cipher(drive_dirs(tmp_path / "o2")[0]) == CIPHER_AES_GCM
    profile.write_text("drive_size: 10MB\ncipher: chacha20-poly1305\n")  # a clear pack: the profile's cipher unused
    assert invoke_cli("pack", source, "--out", tmp_path / "o3", "--config", profile)[0] == 0
    (drive,) = drive_dirs(tmp_path / "o3")
    assert json.loads((drive / "drive.json").read_text())["version"] == 1 and header_cipher(drive) is None


def test_a_passphrase_file_of_a_weak_work_factor_is_refused(real_tree: Path, tmp_path: Path) -> None:
    """keys/passphrase.age made again with scrypt 2^10 (as a forger could): refused before any scrypt work."""
    from sneakernet.crypto import agefile

    (tmp_path / "pass.txt").write_text("a passphrase\n")
    out = tmp_path / "out"
    assert invoke_cli("pack", real_tree / "json", "--out", out, "--drive-size", "10MB", "--passphrase-file",
                      tmp_path / "pass.txt")[0] == 0  # fmt: skip
    (drive,) = drive_dirs(out)
    weak = agefile.scrypt_encrypt(ShipmentIdentity.generate().secret_line().encode() + b"\n", "a passphrase", 10)
    (drive / "keys" / "passphrase.age").write_bytes(weak)
    code, _, err = invoke_cli("restore", drive, "--into", tmp_path / "dest", "--passphrase-file", tmp_path / "pass.txt")
    assert code == 2 and err.count("\n") == 1 and "scrypt work factor of 2^10, below the 2^18" in err
    assert not (tmp_path / "dest").exists()


def test_plan_counts_what_encryption_adds(real_tree: Path, tmp_path: Path) -> None:
    from sneakernet.space.reserve import sealed_catalog_reservation

    shape = ("--drive-size", "1100KB", *SHAPE, "--json")
    clear = json.loads(invoke_cli("plan", real_tree, *shape)[1])
    sealed = json.loads(invoke_cli("plan", real_tree, *shape, "--encrypt")[1])
    assert (clear["encrypted"], sealed["encrypted"]) == (False, True)
    tags = sealed["stored_bytes"] - clear["stored_bytes"]
    assert tags > 0 and tags % 16 == 0  # a 16-byte tag a chunk
    assert sealed["catalog_bound"] == sealed_catalog_reservation(clear["catalog_bound"])
    assert sum(d["used_bytes"] for d in sealed["drives"]) > sum(d["used_bytes"] for d in clear["drives"]) + tags
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"encrypt_to: [{ShipmentIdentity.generate().recipient}]\n")
    assert json.loads(invoke_cli("plan", real_tree, *shape, "--config", profile)[1])["encrypted"] is True


def test_an_encrypted_pack_swapped_at_one_dock(real_tree: Path, tmp_path: Path) -> None:
    """--swap: the catalogs on the last drive only and, both, in the sender's catalog directory; every drive
    verifies without the key; the first drive restores with the sender's copy given as --catalog."""
    from sneakernet.drive.keys import Encryption
    from sneakernet.packer import pack
    from test_swap import Dock

    key, recipient = identity_file(tmp_path / "key.txt")
    dock = Dock(tmp_path)
    summary = pack(
        real_tree, drives=[str(dock.mount)], drive_size=1_100_000, next_drive=dock.next_drive,
        catalog_dir=str(tmp_path / "sender"), encryption=Encryption((recipient,)),
        options=PackOptions(chunk_size=64 * 1024, segment_size=256 * 1024),
    )  # fmt: skip
    used = dock.drives[: len(summary.drives)]
    assert len(used) >= 3
    assert [d.name for d in used if (d / "catalog.age").exists()] == [used[-1].name]
    copy = Path(summary.catalog_copy or "")
    assert copy.with_name(f"{summary.shipment}.catalog.age").read_bytes() == (used[-1] / "catalog.age").read_bytes()
    code, _, err = invoke_cli("verify", *used)
    assert code == 0, err
    dest = tmp_path / "dest"
    code, _, err = invoke_cli("restore", used[0], "--into", dest, "--catalog", copy, "--identity", key)
    assert code == 0, err
    assert invoke_cli("restore", *used[1:], "--into", dest, "--identity", key)[0] == 0
    assert restored(dest) == source_entries(real_tree)


def test_pack_parity_in_the_same_pass_over_an_encrypted_shipment(real_tree: Path, tmp_path: Path) -> None:
    """pack --parity 1 --encrypt-to: the parity drive's bytes are those sneakernet parity writes over the same data
    drives afterwards (both over the stored, encrypted bytes), and the shipment verifies whole without the key; a
    data drive lost, it is restored and rebuilt through that parity drive."""
    key, recipient = identity_file(tmp_path / "key.txt")
    out = tmp_path / "out"
    code, _, err = invoke_cli("pack", real_tree, "--out", out, "--drive-size", "1100KB", "--chunk-size", "64KiB",
                              "--segment-size", "4MiB", "--parity", "1", "--encrypt-to", recipient)  # fmt: skip
    assert code == 0, err
    drives = drive_dirs(out)
    code, stdout, _ = invoke_cli("verify", "--json", *drives, out / "parity-0001")
    assert code == 0 and json.loads(stdout)["recovery"]["status"] == "whole"
    again = tmp_path / "again"
    again.mkdir()
    for drive in drives:
        shutil.copytree(drive, again / drive.name)
    assert invoke_cli("parity", *drive_dirs(again), "--out", again, "--parity", "1")[0] == 0
    # The parity bytes (the manifests differ by when each was made).
    segments = sorted(path.name for path in (out / "parity-0001" / "segments").iterdir())
    assert segments == sorted(path.name for path in (again / "parity-0001" / "segments").iterdir())
    for name in segments:
        assert (again / "parity-0001/segments" / name).read_bytes() == (
            out / "parity-0001/segments" / name
        ).read_bytes()
    # The covered copies (sealed indexes too) are the data drives' own bytes, as sneakernet parity's are.
    for drive in drives:
        for suffix in (".json", ".manifest.jsonl.zst", ".index.age"):
            name = f"covered/{drive.name}{suffix}"
            assert (out / "parity-0001" / name).read_bytes() == (again / "parity-0001" / name).read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    lost_drive_through_parity(real_tree, drives, out / "parity-0001", key, work)


def test_an_encrypted_pack_at_once_with_parity_survives_a_lost_drive(real_tree: Path, tmp_path: Path) -> None:
    """--at-once 2 --parity 1 --encrypt-to: each lane seals its own drives with the same keys/; verify needs no
    key, a data drive lost is restored and rebuilt through the parity drive."""
    key, recipient = identity_file(tmp_path / "key.txt")
    out = tmp_path / "out"
    code, stdout, err = invoke_cli("pack", "--json", real_tree, "--out", out, "--drive-size", "1100KB",
                                   "--chunk-size", "64KiB", "--segment-size", "4MiB", "--at-once", "2", "--parity",
                                   "1", "--encrypt-to", recipient)  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["lanes"] == 2 and summary["encrypted"] is True
    drives = drive_dirs(out)
    assert len({(drive / "keys/recipients.age").read_bytes() for drive in drives}) == 1
    code, stdout, _ = invoke_cli("verify", "--json", *drives, out / "parity-0001")
    assert code == 0 and json.loads(stdout)["recovery"]["status"] == "whole"
    lost_drive_through_parity(real_tree, drives, out / "parity-0001", key, tmp_path)
