"""The golden fixtures of parity and encrypted shipments (tests/fixtures/make_format_v2_written.py) read as they were
written: a release that stops reading them fails here. Their tree is made again by the script's write_tree."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from conftest import invoke_cli as cli
from test_restore import assert_same_tree

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_format_v2_written import ENCRYPTED_DIR, IDENTITY_FILE, PARITY_DIR, write_tree  # noqa: E402


def copied(fixture: Path, tmp_path: Path) -> list[Path]:
    """The fixture's drives, copied (reading never writes to a drive, but a failing release might)."""
    shutil.copytree(fixture / "shipment", tmp_path / "shipment")
    return sorted((tmp_path / "shipment").iterdir())


def test_the_parity_fixture_verifies_and_restores_with_a_data_drive_missing(tmp_path: Path) -> None:
    drives = copied(PARITY_DIR, tmp_path)
    assert [d.name for d in drives] == ["drive-0001", "drive-0002", "parity-0001"]
    code, out, err = cli("verify", *drives)
    assert code == 0, (out, err)
    write_tree(tmp_path / "tree")
    code, _, err = cli("restore", drives[1], drives[2], "--into", tmp_path / "dest")  # drive-0001 lost
    assert code == 0, err
    assert_same_tree(tmp_path / "tree", tmp_path / "dest")


def test_the_encrypted_fixture_verifies_without_the_key_and_restores_with_it(tmp_path: Path) -> None:
    drives = copied(ENCRYPTED_DIR, tmp_path)
    code, out, err = cli("verify", *drives)
    assert code == 0, (out, err)
    write_tree(tmp_path / "tree")
    identity = ENCRYPTED_DIR / IDENTITY_FILE
    code, _, err = cli("restore", *drives, "--into", tmp_path / "dest", "--identity", identity)
    assert code == 0, err
    assert_same_tree(tmp_path / "tree", tmp_path / "dest")
    code, _, err = cli("restore", *drives, "--into", tmp_path / "none")
    assert code == 2 and not (tmp_path / "none").exists(), err
