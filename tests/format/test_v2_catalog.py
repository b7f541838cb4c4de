"""format/ version 2 across drives (docs/format.md 19.3-19.6): the lanes of a shipment (LaneTable: successors, a
file's chain, next_drive), a catalog's order and agreement (CatalogCheck, every refusal), and the fingerprint over
the catalog body (parity records left out), checked against zstd | tail | grep | b3sum as the spec says."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import blake3
import pytest

from craft import RecordFileWriter
from sneakernet.format import (
    CatalogBodyHasher,
    CatalogCheck,
    CatalogDrive,
    CatalogEntry,
    CatalogHeader,
    CatalogParity,
    CatalogSummary,
    EndRecord,
    LaneTable,
    SealedRecord,
    body_fingerprint,
    drive_label,
)
from sneakernet.format.container import encode_record

H1 = "0123456789abcdef" * 4
H2 = "fedcba9876543210" * 4

# Two lanes: lane 1 is drives 1, 3, 4; lane 2 is drives 2, 5 (numbers given as drives open, 19.3).
LANES = {1: (1, 1), 2: (2, 1), 3: (1, 2), 4: (1, 3), 5: (2, 2)}


def drives() -> list[CatalogDrive]:
    return [
        CatalogDrive(d, drive_label(d), 100 + d, H1, 1000 * d, lane=lane, lane_seq=seq)
        for d, (lane, seq) in LANES.items()
    ]


def entries() -> list[CatalogEntry]:
    return [
        CatalogEntry(b"a", "dir", 0, 1, 1, pieces=1),
        CatalogEntry(b"a/x", "file", 10, 1, 1, pieces=1),
        CatalogEntry(b"b/big", "file", 20, 2, 5, pieces=2),  # lane 2: drive 2 then 5
        CatalogEntry(b"a/huge", "file", 30, 1, 4, pieces=3),  # lane 1: drives 1, 3, 4
    ]


def catalog(**summary: Any) -> list[Any]:
    files = [e for e in entries() if e.kind == "file"]
    totals = {"files": len(files), "raw_bytes": sum(e.size for e in files), "stored_bytes": 15000}
    records: list[Any] = [CatalogSummary(drives=5, lanes=2, **{**totals, **summary}), *drives()]
    records += [CatalogParity(1, "parity-0001", 1, 0, 9, H2, 4 << 20), *sorted(entries(), key=lambda e: e.drive)]
    return [*records, EndRecord(len(records) + 2)]


def problems_of(records: list[Any]) -> list[str]:
    check = CatalogCheck()
    found = [p for record in records for p in check.add(record)]
    return found + check.finish()


# --- lanes -----------------------------------------------------------------------------------------------------


def test_lane_table_follows_each_lane() -> None:
    table = LaneTable.of(drives())
    assert table.finish(2) == []
    assert [table.successor(d) for d in (1, 2, 3, 4, 5)] == [3, 5, 4, None, None]
    assert table.chain(1, 3) == [1, 3, 4]
    assert table.chain(2, 2) == [2, 5]
    assert table.chain(3, 3) is None  # lane 1 ends after drive 4
    assert table.chain(9, 1) is None  # no such drive
    assert table.position(5) == (2, 2) and table.position(6) is None


def test_a_hostile_piece_count_walks_no_further_than_the_lane() -> None:
    # A chain of 10^5 pieces in a lane of three drives stops after three steps.
    assert LaneTable.of(drives()).chain(1, 100_000) is None


def test_next_drive_must_be_the_next_of_the_lane() -> None:
    table = LaneTable.of(drives())
    assert table.next_drive_problem(1, 3) is None
    assert (
        table.next_drive_problem(1, 2)
        == "a piece on drive 1 continues on drive 2, but drive 1 is followed in its lane by drive 3"
    )
    assert (
        table.next_drive_problem(4, 5) == "a piece on drive 4 continues on drive 5, but drive 4 is the last of its lane"
    )


@pytest.mark.parametrize(
    ("positions", "lanes", "problem"),
    [
        ({1: (1, 1), 2: (1, 1)}, 1, "drives 1 and 2 are both drive 1 of lane 1"),
        ({1: (1, 1), 2: (1, 3)}, 1, "lane 1 has 2 drives but no drive 2"),
        ({1: (1, 1), 2: (2, 1)}, 1, "drive 2 is in lane 2, beyond the 1 lanes"),
        ({1: (1, 1), 2: (1, 2)}, 2, "lane 2 has no drive"),
        ({1: (1, 2)}, 1, "lane 1 has 1 drives but no drive 1"),
    ],
)
def test_lanes_must_be_whole(positions: dict[int, tuple[int, int]], lanes: int, problem: str) -> None:
    table = LaneTable()
    found = [p for d, (lane, seq) in positions.items() for p in table.add(d, lane, seq)]
    assert any(problem in p for p in found + table.finish(lanes))


# --- the catalog's order and agreement -------------------------------------------------------------------------


def test_a_good_catalog_has_no_problem() -> None:
    assert problems_of(catalog()) == []
    # Without parity records, and sealed (encrypted: a summary without totals, no entries).
    assert problems_of([r for r in catalog() if not isinstance(r, CatalogParity)]) == []
    sealed = [CatalogSummary(5, 2), *drives(), SealedRecord("catalog.age", 10, H2), EndRecord(9)]
    assert problems_of(sealed) == []


def swap(records: list[Any], i: int, j: int) -> list[Any]:
    out = list(records)
    out[i], out[j] = out[j], out[i]
    return out


def replaced(records: list[Any], index: int, record: Any) -> list[Any]:
    return [record if i == index else r for i, r in enumerate(records)]


GOOD = catalog()
BAD_CATALOGS = [
    (GOOD[1:], "a drive record before the summary"),
    ([GOOD[0], *GOOD], "a second summary record"),
    (swap(GOOD, 1, 2), "drive record 2 where drive 1 comes"),
    ([r for r in GOOD if not (isinstance(r, CatalogDrive) and r.drive == 5)], "4 drive records for the summary's 5"),
    (replaced(GOOD, 0, CatalogSummary(4, 2, 3, 60, 15000)), "drive record 5 beyond the summary's 4 drives"),
    (replaced(GOOD, 5, replace(GOOD[5], lane_seq=1)), "drives 2 and 5 are both drive 1 of lane 2"),
    (replaced(GOOD, 4, replace(GOOD[4], lane_seq=4)), "lane 1 has 3 drives but no drive 3"),
    (replaced(GOOD, 0, CatalogSummary(5, 3, 3, 60, 15000)), "lane 3 has no drive"),
    (swap(GOOD, 5, 6), "drive record 5 after the parity records or entries"),
    (swap(GOOD, 6, 7), "parity record 1 after the entries"),
    (replaced(GOOD, 6, replace(GOOD[6], drive=2, label="parity-0002")), "parity record 2 where parity drive 1"),
    (swap(GOOD, 9, 10), "entry 'a/huge' of drive 4 comes after drive 5's"),  # drive order broken
    (replaced(GOOD, 10, CatalogEntry(b"b/big", "file", 20, 2, 5, pieces=3)), "3 pieces from drive 2"),
    (replaced(GOOD, 10, CatalogEntry(b"b/big", "file", 20, 1, 5, pieces=2)), "cannot end on drive 5 (lane 2"),
    (replaced(GOOD, 10, CatalogEntry(b"b/big", "file", 20, 2, 9, pieces=2)), "names drive 9, which the catalog"),
    (replaced(GOOD, 0, CatalogSummary(5, 2, 4, 60, 15000)), "the summary's files is 4, the records give 3"),
    (replaced(GOOD, 0, CatalogSummary(5, 2, 3, 61, 15000)), "the summary's raw_bytes is 61, the records give 60"),
    (replaced(GOOD, 0, CatalogSummary(5, 2, 3, 60, 1)), "the summary's stored_bytes is 1, the records give 15000"),
    (replaced(GOOD, 0, CatalogSummary(5, 2)), "a summary without totals in a catalog that is not sealed"),
    ([*GOOD[:-1], SealedRecord("catalog.age", 1, H1), GOOD[-1]], "a sealed record beside entries"),
    (
        [CatalogSummary(5, 2, 0, 0, 15000), *drives(), SealedRecord("catalog.age", 1, H1), EndRecord(9)],
        "a sealed catalog's summary states its totals",
    ),
    (
        [CatalogSummary(5, 2), *drives(), SealedRecord("catalog.age", 1, H1), *entries()[:1], EndRecord(9)],
        "entries beside the sealed catalog",
    ),
    (GOOD[:-1], "the catalog has no end record"),
    ([*GOOD, GOOD[-1]], "records after the end record"),
    ([], "the catalog has no summary record"),
]


@pytest.mark.parametrize(("records", "problem"), BAD_CATALOGS)
def test_a_bad_catalog_is_refused(records: list[Any], problem: str) -> None:
    found = problems_of(records)
    assert any(problem in p for p in found), found


# --- the fingerprint -------------------------------------------------------------------------------------------


def body_lines(records: list[Any]) -> list[bytes]:
    return [encode_record(r.to_json()) for r in records]


def test_fingerprint_leaves_out_the_header_and_parity_records_only() -> None:
    lines = body_lines(GOOD)
    kept = b"".join(line for line in lines[:-1] if not line.startswith(b'{"type":"parity"'))
    assert body_fingerprint(lines) == blake3.blake3(kept).hexdigest()
    # Parity added later: the same fingerprint.
    more = body_lines([*GOOD[:7], CatalogParity(2, "parity-0002", 1, 1, 9, H1, 4 << 20), *GOOD[7:-1]])
    more.append(encode_record(EndRecord(GOOD[-1].records + 1).to_json()))  # the end record counts it
    assert body_fingerprint(more) == body_fingerprint(lines)
    # An entry rewritten, or a drive record: another fingerprint (version 1 pinned no entry).
    assert body_fingerprint(body_lines(replaced(GOOD, 8, replace(GOOD[8], size=11)))) != body_fingerprint(lines)
    assert body_fingerprint(body_lines(replaced(GOOD, 3, replace(GOOD[3], manifest_size=1)))) != body_fingerprint(lines)


@pytest.mark.skipif(shutil.which("b3sum") is None or shutil.which("zstd") is None, reason="needs b3sum and zstd")
def test_fingerprint_by_hand_as_the_spec_says(tmp_path: Path) -> None:
    lines = body_lines(GOOD)
    hasher = CatalogBodyHasher()
    for line in lines:
        hasher.update(line)
    header = CatalogHeader("23601d4db6d84f21953992d105c27e0c", 0, hasher.hexdigest(), "c", "t", 0, 0, 0, version=2)
    path = tmp_path / "catalog.jsonl.zst"
    writer = RecordFileWriter(path)
    writer.write(header.to_json())
    for line in lines:
        writer.write_line(line)
    writer.close()
    by_hand = subprocess.run(
        f"zstd -dc {path} | tail -n +2 | head -n -1 | grep -v '^{{\"type\":\"parity\"' | b3sum --no-names",
        shell=True, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert by_hand == header.fingerprint
