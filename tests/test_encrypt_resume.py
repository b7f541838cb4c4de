"""pack --resume of an encrypted pack, one lane and --at-once 2 (issue 16, docs/format.md 19.8.1, 19.10): SIGKILLed
while it writes, the same pack resumed with the receiver's identity keeps the finished drives, writes the rest again
under fresh segment keys, and gives a shipment that verifies without the key and restores identical with it; and no
(segment key, nonce) pair is ever used twice, over every chunk either run sealed (tests/noncelog/sitecustomize.py
records each pair as it is used, in every process) and every chunk on the drives."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import blake3
import pytest

from conftest import invoke_cli as cli
from conftest import write_file
from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.drive.keys import Unlock, unlock
from sneakernet.drive.sealed import SealedReader
from sneakernet.format import DRIVE_LABEL_NAME, INDEX_NAME, MANIFEST_NAME
from sneakernet.format.container import read_records
from sneakernet.io.store import LocalStore
from test_restore import assert_same_tree

TESTS = Path(__file__).parent
CHUNK, SEGMENT, DRIVE = 64 * 1024, 256 * 1024, 1_200_000

#: argv: source, out, lanes, seconds each segment write is slowed by, "resume" or "fresh", identity file.
SLOW_PACK = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakestore import SlowDrives
from sneakernet import PackOptions, pack
from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.drive.keys import Encryption, Unlock
if __name__ == "__main__":
    key = open(sys.argv[6]).read()
    recipient = ShipmentIdentity.from_secret_line(key.strip().splitlines()[-1]).recipient
    summary = pack(sys.argv[1], out=sys.argv[2], drive_size={DRIVE},
         options=PackOptions(chunk_size={CHUNK}, segment_size={SEGMENT}, reserve=0), at_once=int(sys.argv[3]),
         open_store=SlowDrives(float(sys.argv[4])), encryption=Encryption((recipient,)),
         resume=sys.argv[5] == "resume", unlock=Unlock(identity=key))
    print(summary.resumed_drives, summary.rewritten_bytes)
"""


def make_source(root: Path, seed: int) -> Path:
    """Incompressible files of 30-200 KB, small ones, and a large one spanning drives."""
    rng = random.Random(seed)
    for i in range(30):
        write_file(root / f"d{i % 3}" / f"f{i:02d}.bin", rng.randbytes(rng.randrange(30_000, 200_000)))
    for i in range(15):
        write_file(root / "small" / f"s{i:02d}.txt", rng.randbytes(rng.randrange(1, 3000)))
    write_file(root / "d1" / "large.bin", rng.randbytes(1_500_000))
    return root


def run_pack(src: Path, out: Path, lanes: int, key: Path, log: Path, how: str, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "noncelog"), os.environ.get("PYTHONPATH", "")]),
           "SNEAKERNET_NONCE_LOG": str(log)}  # fmt: skip
    argv = [sys.executable, "-c", SLOW_PACK, str(src), str(out), str(lanes), str(delay), how, str(key)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


def kill_mid_pack(src: Path, out: Path, lanes: int, key: Path, log: Path) -> None:
    """SIGKILL the slowed pack once a drive is finished and another, unfinished, holds a complete segment."""
    process = run_pack(src, out, lanes, key, log, "fresh", delay=0.05)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            drives = list(out.glob("drive-*")) if out.exists() else []
            finished = [d for d in drives if (d / DRIVE_LABEL_NAME).exists()]
            writing = [d for d in drives if not (d / DRIVE_LABEL_NAME).exists() and list(d.glob("segments/*.seg"))]
            if finished and writing:
                break
            time.sleep(0.01)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -9, "the pack ended before it could be killed: slow it down"


def drive_pairs(drive: Path, identity: ShipmentIdentity) -> list[tuple[str, int]]:
    """Every chunk of ``drive`` as (BLAKE3 of its segment's key, its nonce): the segment keys from the sealed
    index, each chunk's nonce its place among its segment's chunks in the public manifest (19.8.2)."""
    store = LocalStore(str(drive))
    keys = {
        raw["segment"]: blake3.blake3(bytes.fromhex(raw["key"])).hexdigest()
        for raw in SealedReader(store, INDEX_NAME, identity, "index").records()
        if raw is not None and raw.get("type") == "segment_key"
    }
    pairs, places = [], Counter[str]()
    with open(drive / MANIFEST_NAME, "rb") as manifest:
        for raw in read_records(manifest, "manifest"):
            if raw is not None and raw.get("type") == "chunk":
                pairs.append((keys[raw["segment"]], places[raw["segment"]]))
                places[raw["segment"]] += 1
    return pairs


@pytest.mark.parametrize("lanes", [1, 2])
def test_an_encrypted_pack_killed_then_resumed_reuses_no_nonce(tmp_path: Path, lanes: int) -> None:
    src = make_source(tmp_path / "src", seed=lanes)
    identity = ShipmentIdentity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"# public key: {identity.recipient}\n{identity.secret_line()}\n")
    out, log = tmp_path / "out", tmp_path / "pairs.log"
    kill_mid_pack(src, out, lanes, key, log)
    used_before = log.read_text().splitlines()
    assert used_before, "the killed pack sealed chunks"
    resumed = run_pack(src, out, lanes, key, log, "resume")
    stdout, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    kept_drives, _ = map(int, stdout.split())
    assert kept_drives >= 1  # the finished drives kept (the unfinished one written again: see the pairs below)
    drives = sorted(out.glob("drive-*"))
    # Without the key every stored byte checks; with it, the tree comes back identical.
    assert cli("verify", *drives)[0] == 0
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest", "--identity", key)
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")
    # No (key, nonce) pair twice: over every chunk both runs sealed, and over every chunk on the drives.
    used = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    assert [pair for pair, count in used.items() if count > 1] == []
    shipment = unlock(LocalStore(str(drives[0])), Unlock(identity=key.read_text()))
    on_drives = [pair for drive in drives for pair in drive_pairs(drive, shipment)]
    assert len(on_drives) == len(set(on_drives)) > 0
    # The record is complete: every pair on the drives is one it holds (those of the kept drives the killed run's).
    assert {(digest, str(nonce)) for digest, nonce in on_drives} <= set(used)
    assert len(used) > len(on_drives)  # the unfinished drive's chunks were sealed again, under other keys


def test_resuming_an_encrypted_pack_without_its_key_is_one_line(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", seed=3)
    receiver = ShipmentIdentity.generate()
    out = tmp_path / "out"
    shape = ("--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "256KiB", "--reserve", "0")
    assert cli("pack", src, "--out", out, *shape, "--encrypt-to", receiver.recipient)[0] == 0
    (out / "drive-0002" / DRIVE_LABEL_NAME).unlink()  # as if the pack had stopped writing drive 2
    before = sorted(str(p) for p in out.rglob("*"))
    code, stdout, err = cli("pack", src, "--out", out, *shape, "--encrypt-to", receiver.recipient, "--resume")
    assert (code, stdout, err.count("\n")) == (2, "", 1) and "--identity FILE" in err, err
    other = tmp_path / "other.txt"
    other.write_text(ShipmentIdentity.generate().secret_line() + "\n")
    code, _, err = cli("pack", src, "--out", out, *shape, "--encrypt-to", receiver.recipient, "--resume",
                       "--identity", other)  # fmt: skip
    assert (code, err.count("\n")) == (2, 1) and "does not open" in err, err
    assert sorted(str(p) for p in out.rglob("*")) == before  # nothing touched
    code, _, err = cli("pack", src, "--out", tmp_path / "o2", *shape, "--encrypt-to", receiver.recipient,
                       "--identity", other)  # fmt: skip
    assert code == 2 and "--identity goes with --resume" in err
    assert json.loads(cli("pack", "--json", src, "--out", tmp_path / "o3", *shape)[1])["encrypted"] is False


def test_resuming_a_clear_pack_with_encryption_is_refused(tmp_path: Path) -> None:
    """--encrypt-to on the resume of a pack that was not encrypted: refused, not a shipment half in the clear."""
    src = make_source(tmp_path / "src", seed=4)
    out = tmp_path / "out"
    shape = ("--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "256KiB", "--reserve", "0")
    assert cli("pack", src, "--out", out, *shape, "--at-once", "2")[0] == 0
    (sorted(out.glob("drive-*"))[-1] / DRIVE_LABEL_NAME).unlink()  # the last drive opened: unfinished
    code, _, err = cli("pack", src, "--out", out, *shape, "--at-once", "2", "--resume", "--encrypt-to",
                       ShipmentIdentity.generate().recipient)  # fmt: skip
    assert (code, err.count("\n")) == (2, 1) and "drives are not encrypted: give its options" in err, err
    assert all(not (drive / "keys").exists() for drive in out.glob("drive-*"))


@pytest.mark.parametrize("how", ["passphrase", "identity"])
def test_resume_from_the_command_line_with_the_passphrase_or_an_identity(tmp_path: Path, how: str) -> None:
    """A pack whose last drive never got its drive.json, resumed by the same command: with the passphrase it packs
    to (no other key needed), or --encrypt-to with --identity; the summary says what the drives' keys/ say."""
    src = make_source(tmp_path / "src", seed=5)
    identity = ShipmentIdentity.generate()
    (tmp_path / "key.txt").write_text(identity.secret_line() + "\n")
    (tmp_path / "pass.txt").write_text("correct horse battery staple\n")
    if how == "passphrase":
        keys: tuple[object, ...] = ("--passphrase-file", tmp_path / "pass.txt")
        resume_keys, opens = keys, keys
    else:
        keys = ("--encrypt-to", identity.recipient)
        resume_keys, opens = (*keys, "--identity", tmp_path / "key.txt"), ("--identity", tmp_path / "key.txt")
    out = tmp_path / "out"
    shape = ("--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "256KiB", "--reserve", "0")
    assert cli("pack", src, "--out", out, *shape, *keys)[0] == 0
    drives = sorted(out.glob("drive-*"))
    (drives[-1] / DRIVE_LABEL_NAME).unlink()
    code, stdout, err = cli("pack", "--json", src, "--out", out, *shape, *resume_keys, "--resume")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["resumed_drives"] == len(drives) - 1 and summary["encrypted"] is True
    assert summary["encryption"] == {
        "recipients": int(how == "identity"), "passphrase": how == "passphrase", "cipher": "aes-256-gcm",
    }  # fmt: skip
    # Every drive, kept or written again, carries the interrupted pack's very key file.
    assert len({key.read_bytes() for key in out.glob("drive-*/keys/*.age")}) == 1
    assert cli("verify", *sorted(out.glob("drive-*")))[0] == 0
    code, _, err = cli("restore", *sorted(out.glob("drive-*")), "--into", tmp_path / "dest", *opens)
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")


def test_a_resume_with_another_cipher_is_refused_and_with_the_same_one_completes(tmp_path: Path) -> None:
    """Every drive of a shipment names one cipher (docs/format.md 19.8.2): a pack written with --cipher
    chacha20-poly1305 and resumed without it (AES-256-GCM) is refused in one line, nothing touched; resumed with it,
    the new drive names it too and the shipment restores identical."""
    src = make_source(tmp_path / "src", seed=6)
    identity = ShipmentIdentity.generate()
    (tmp_path / "key.txt").write_text(identity.secret_line() + "\n")
    keys = ("--encrypt-to", identity.recipient, "--identity", tmp_path / "key.txt")
    out = tmp_path / "out"
    shape = ("--drive-size", str(DRIVE), "--chunk-size", "64KiB", "--segment-size", "256KiB", "--reserve", "0")
    assert cli("pack", src, "--out", out, *shape, *keys[:2], "--cipher", "chacha20-poly1305")[0] == 0
    drives = sorted(out.glob("drive-*"))
    assert len(drives) >= 2
    (drives[-1] / DRIVE_LABEL_NAME).unlink()
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    code, _, err = cli("pack", src, "--out", out, *shape, *keys, "--resume")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{drives[0]} was packed with --cipher chacha20-poly1305: give the same options" in err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    code, _, err = cli("pack", src, "--out", out, *shape, *keys, "--cipher", "chacha20-poly1305", "--resume")
    assert code == 0, err
    for drive in sorted(out.glob("drive-*")):
        with open(drive / MANIFEST_NAME, "rb") as handle:
            assert next(read_records(handle, "manifest"))["cipher"] == "chacha20-poly1305"  # type: ignore[index]
    code, _, err = cli("restore", *sorted(out.glob("drive-*")), "--into", tmp_path / "dest", *keys[2:])
    assert code == 0, err
    assert_same_tree(src, tmp_path / "dest")
