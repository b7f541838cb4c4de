"""Encrypted packs end to end (issue 16, docs/format.md 19.8): ``pack(encryption=...)`` writes format version 2
drives whose every byte shows nothing of the tree, which read back whole with the receiver's key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import zstandard

from conftest import drive_dirs, source_entries, unpack
from sneakernet.crypto.keys import ShipmentIdentity
from sneakernet.drive import DriveReader
from sneakernet.drive.keys import Encryption, Unlock
from sneakernet.drive.sealed_catalog import read_sealed_catalog
from sneakernet.errors import UsageError, WrongKey
from sneakernet.format import (
    CATALOG_NAME,
    READERS,
    SEALED_CATALOG_NAME,
    CatalogEntry,
    CatalogSummary,
    SealedRecord,
)
from sneakernet.format.fingerprint import body_fingerprint
from sneakernet.io.store import LocalStore
from sneakernet.options import PackOptions
from sneakernet.packer import pack


@pytest.fixture(scope="module")
def receiver() -> ShipmentIdentity:
    return ShipmentIdentity.generate()


def small_options() -> PackOptions:
    return PackOptions(chunk_size=64 * 1024, segment_size=512 * 1024)


@pytest.fixture
def packed(tmp_path: Path, edge_tree: Path, receiver: ShipmentIdentity):
    out = tmp_path / "out"
    summary = pack(
        edge_tree, out=str(out), drive_size=2_000_000, options=small_options(),
        encryption=Encryption((receiver.recipient,)),
    )  # fmt: skip
    return edge_tree, out, summary


def test_an_encrypted_pack_reads_back_whole_with_the_key(packed, receiver: ShipmentIdentity) -> None:
    tree, out, summary = packed
    drives = drive_dirs(out)
    assert len(drives) >= 3 and len(summary.drives) == len(drives)
    for drive in drives:
        label = json.loads((drive / "drive.json").read_text())
        assert (label["version"], label["encrypted"], label["lane"]) == (2, True, 1)
    key = Unlock(identity=receiver.secret_line())
    unpacked = unpack(drives, lambda path: DriveReader(path, key=key, versions=READERS))
    assert unpacked.entries == source_entries(tree)


def test_no_name_path_or_content_of_the_tree_is_on_any_drive(packed) -> None:
    tree, out, _ = packed
    names = {part for entry in source_entries(tree) for part in entry.split(b"/") if len(part) >= 4}
    samples = []
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size >= 64:
            data = path.read_bytes()
            samples += [data[:32], data[len(data) // 2 : len(data) // 2 + 32]]
    found = []
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path.name, s) for s in names | set(samples) if s in data]
    assert not found


def test_the_public_catalog_pins_the_sealed_one_and_its_fingerprint_is_its_body(
    packed, receiver: ShipmentIdentity
) -> None:
    _, out, summary = packed
    drive = drive_dirs(out)[-1]
    lines = zstandard.ZstdDecompressor().decompressobj().decompress((drive / CATALOG_NAME).read_bytes())
    lines = lines.splitlines(True)
    header, body = json.loads(lines[0]), lines[1:]
    assert header["fingerprint"] == summary.fingerprint == body_fingerprint(body)
    assert json.loads(body[0]) == {"type": "summary", "drives": len(summary.drives), "lanes": 1}
    sealed = SealedRecord.from_json(json.loads(body[-2]))
    assert sealed.name == SEALED_CATALOG_NAME
    copies = {(d / SEALED_CATALOG_NAME).read_bytes() for d in drive_dirs(out)}
    assert len(copies) == 1
    records = list(read_sealed_catalog(LocalStore(drive), _identity(drive, receiver), sealed,
                                       summary.shipment))  # fmt: skip
    assert isinstance(records[0], CatalogSummary) and records[0].files == summary.files
    assert sum(isinstance(r, CatalogEntry) for r in records) == summary.files + summary.dirs + summary.symlinks + (
        summary.hardlinks
    )
    sums = (drive / "B3SUMS").read_text()
    for name in (CATALOG_NAME, SEALED_CATALOG_NAME, "index.age", "keys/recipients.age"):
        assert f"  {name}\n" in sums


def _identity(drive: Path, receiver: ShipmentIdentity) -> ShipmentIdentity:
    reader = DriveReader(str(drive), key=Unlock(identity=receiver.secret_line()), versions=READERS)
    assert reader.identity is not None
    return reader.identity


def test_another_key_opens_nothing(packed) -> None:
    _, out, _ = packed
    with pytest.raises(WrongKey):
        DriveReader(
            str(drive_dirs(out)[0]), key=Unlock(identity=ShipmentIdentity.generate().secret_line()), versions=READERS
        )


def test_an_encrypted_pack_resumed_at_one_dock_is_refused_up_front(tmp_path: Path, receiver) -> None:
    # Resumed packs of one lane or --at-once are tests/test_encrypt_resume.py's; a swapped one is refused.
    (tmp_path / "src").mkdir()
    (tmp_path / "dock").mkdir()
    with pytest.raises(UsageError, match="--resume of an encrypted --swap pack is not supported yet"):
        pack(tmp_path / "src", drives=[str(tmp_path / "dock")], drive_size=10**9, resume=True,
             next_drive=lambda number, problem: None, encryption=Encryption((receiver.recipient,)))  # fmt: skip
    assert os.listdir(tmp_path / "dock") == []
