"""drive/driveset.py: a shipment's drives given, missing, twice, by lane, and the groups that take turns."""

from __future__ import annotations

from sneakernet.drive import DriveKey, DriveSet, GivenDrive, ListedDrive, same_drive_groups
from sneakernet.format import CatalogDrive, CatalogParity, DriveLabel

DIGEST = "ab" * 32


def label(number: int, shipment: str = "s1") -> DriveLabel:
    return DriveLabel(shipment, number, f"drive-{number:04d}", "2026-12-03T17:00:00Z", "t", 10, DIGEST, 1, 5, 5)


def listed(*numbers: int) -> list[ListedDrive]:
    return [ListedDrive.of(CatalogDrive(n, f"drive-{n:04d}", 10, DIGEST, 5)) for n in numbers]


def test_keys_name_and_order_data_drives_before_parity_drives() -> None:
    keys = [DriveKey("parity", 1), DriveKey("data", 12), DriveKey("data", 3)]
    assert [k.label for k in sorted(keys)] == ["drive-0003", "drive-0012", "parity-0001"]
    assert DriveKey("data", 12345).label == "drive-12345"


def test_present_missing_twice_strangers_and_not_drives() -> None:
    given = [
        GivenDrive.of("/a", label(3)),
        GivenDrive.of("/b", label(1)),
        GivenDrive.of("/c", label(3)),
        GivenDrive.of("/d", label(2, "other")),
        GivenDrive.of("/e", None),
    ]
    drives = DriveSet.build(given, {"s1": listed(1, 2, 3, 4), "other": listed(1, 2)})
    assert drives.shipment == "s1"
    assert [k.label for k in drives.present()] == ["drive-0001", "drive-0003"]
    assert {k.label: [d.path for d in ds] for k, ds in drives.duplicated().items()} == {"drive-0003": ["/a", "/c"]}
    assert [d.label for d in drives.missing()] == ["drive-0002", "drive-0004"]
    assert [d.path for d in drives.strangers()] == ["/d"]
    assert [d.path for d in drives.not_drives()] == ["/e"]


def test_without_a_catalog_nothing_is_known_missing() -> None:
    drives = DriveSet.build([GivenDrive.of("/a", label(2))])
    assert drives.missing() == [] and drives.listed == []
    assert DriveSet.build([GivenDrive.of("/x", None)]).shipment is None


def test_the_shipment_is_the_one_most_drives_are_of_and_on_a_tie_the_first_given() -> None:
    tie = [GivenDrive.of("/a", label(1, "t")), GivenDrive.of("/b", label(1, "s"))]
    assert DriveSet.build(tie).shipment == "t"
    assert DriveSet.build([*tie, GivenDrive.of("/c", label(2, "s"))]).shipment == "s"


def test_lanes_list_each_lanes_data_drives_in_lane_order() -> None:
    given = [
        GivenDrive("/p", "s", DriveKey("parity", 1)),
        GivenDrive("/c", "s", DriveKey("data", 4), lane=1, lane_seq=2),
        GivenDrive("/a", "s", DriveKey("data", 1), lane=1, lane_seq=1),
        GivenDrive("/b", "s", DriveKey("data", 2), lane=2, lane_seq=1),
    ]
    assert DriveSet.build(given).lanes() == {
        1: [DriveKey("data", 1), DriveKey("data", 4)],
        2: [DriveKey("data", 2)],
    }
    # Version 1 drives: one lane, in drive order.
    assert DriveSet.build([GivenDrive.of("/b", label(2)), GivenDrive.of("/a", label(1))]).lanes() == {
        1: [DriveKey("data", 1), DriveKey("data", 2)]
    }


def test_groups_join_the_copies_of_a_drive_and_what_must_go_together() -> None:
    given = [GivenDrive.of("/a", label(1)), GivenDrive.of("/b", label(2)), GivenDrive.of("/c", label(1))]
    assert same_drive_groups(given) == [[0, 2], [1]]
    assert same_drive_groups(given, ["x", "y", "y"]) == [[0, 1, 2]]  # /c joins /a as a copy and /b by device
    assert same_drive_groups([GivenDrive("/x"), GivenDrive("/y")]) == [[0], [1]]


def test_version_2_drives_and_parity_drives_by_their_role_and_lane() -> None:
    parity = DriveLabel("s", 1, "parity-0001", "c", "t", 10, DIGEST, 1, 5, 0, version=2, role="parity")
    data = DriveLabel("s", 3, "drive-0003", "c", "t", 10, DIGEST, 1, 5, 5, version=2, lane=2, lane_seq=1)
    given = [GivenDrive.of("/p", parity), GivenDrive.of("/d", data)]
    assert [(g.key, g.lane, g.lane_seq) for g in given] == [
        (DriveKey("parity", 1), None, None),
        (DriveKey("data", 3), 2, 1),
    ]
    catalog = [
        ListedDrive.of(CatalogDrive(3, "drive-0003", 10, DIGEST, 5, lane=2, lane_seq=1)),
        ListedDrive.of(CatalogDrive(1, "drive-0001", 10, DIGEST, 5, lane=1, lane_seq=1)),
        ListedDrive.of(CatalogParity(1, "parity-0001", 1, 0, 10, DIGEST, 5)),
        ListedDrive.of(CatalogParity(2, "parity-0002", 1, 1, 10, DIGEST, 5)),
    ]
    drives = DriveSet.build(given, {"s": catalog})
    assert [d.key.label for d in drives.listed] == ["drive-0001", "drive-0003", "parity-0001", "parity-0002"]
    assert [d.key.label for d in drives.missing()] == ["drive-0001", "parity-0002"]
    assert drives.lanes() == {2: [DriveKey("data", 3)]}
