"""verifier/drive.py: one drive's check as a unit of work, sharing only the services of ``Shared`` (and those of
its thread, ``Scratch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craft import small_files, write_shipment
from sneakernet.progress import NullProgress, serialized
from sneakernet.verifier import Settings, StateDir, verify
from sneakernet.verifier.catalog import CatalogMemo
from sneakernet.verifier.data import HashAhead
from sneakernet.verifier.drive import DriveVerifier, Scratch, Shared


def test_a_drive_checked_alone_reports_what_verify_reports(tmp_path: Path) -> None:
    drives = write_shipment(
        tmp_path / "ship",
        [small_files([(f"a/f{i}.txt", b"x" * (10 + i)) for i in range(4)]), small_files([("b/g.txt", b"y" * 99)])],
    )
    (drives[1] / "stray.txt").write_bytes(b"stray\n")
    whole = verify([str(d) for d in drives], threads=1)
    shared, scratch = Shared(serialized(NullProgress())), Scratch(HashAhead(1))
    try:
        alone = [DriveVerifier(str(d), Settings(workers=1), shared, scratch).run() for d in drives]
    finally:
        shared.close()
        scratch.close()
    assert [untimed(r.to_json()) for r in alone] == [untimed(r.to_json()) for r in whole.drives]
    assert [r.status for r in alone] == ["intact", "unexpected_files"]


def untimed(report: dict[str, Any]) -> dict[str, Any]:
    """A drive's --json without its time and rate, which differ between two runs."""
    return {k: v for k, v in report.items() if k not in ("seconds", "bytes_per_second")}


class CountingMemo(CatalogMemo):
    """A thread's catalog memo, counting the catalogs parsed whole (each gets a table of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []

    def new_table(self) -> str:
        self.tables.append(super().new_table())
        return self.tables[-1]


def test_the_drives_of_a_thread_parse_their_catalog_once(tmp_path: Path) -> None:
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a")]), small_files([("b.txt", b"b")])])
    memo = CountingMemo()
    shared, scratch = Shared(serialized(NullProgress())), Scratch(HashAhead(1), memo)
    try:
        reports = [DriveVerifier(str(d), Settings(workers=1), shared, scratch).run() for d in drives]
    finally:
        shared.close()
        scratch.close()
    assert [r.ok for r in reports] == [True, True]
    assert memo.tables == ["catalog_0"]  # the second drive's catalog (the same bytes) came from the memo


def test_a_state_directory_may_be_given_as_a_path(tmp_path: Path) -> None:
    """verify(state_dir=) takes a directory (str or path-like, as before the StateStore seam) or a store."""
    drives = write_shipment(tmp_path / "ship", [small_files([("a.txt", b"a" * 1000)])])
    for given in (tmp_path / "as-path", str(tmp_path / "as-str"), StateDir(str(tmp_path / "as-store"))):
        assert verify([str(d) for d in drives], state_dir=given).ok
