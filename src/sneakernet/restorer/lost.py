"""Restoring with data drives missing (docs/format.md 19.7.6; issue 15): the parity drives among the drives given
make every data drive of their groups that was not given readable through them (a
:class:`~sneakernet.drive.parity.lost.LostDriveReader`: chunks rebuilt on the fly, each checked against its recorded
BLAKE3 before restore uses it), restored after the drives that did arrive, as any drive is, with no spare drive
needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from ..drive import DriveReader
from ..drive.parity.reader import ParityDriveReader
from ..drive.role import drive_role
from ..errors import FormatError

if TYPE_CHECKING:  # imported by open_drives when parity drives stand in for missing ones (rebuilder, ISA-L)
    from ..drive.parity.lost import LostDriveReader


def open_drives(
    paths: Sequence[str], stack: ExitStack, open_reader: Callable[[str], DriveReader] = DriveReader
) -> tuple[list[DriveReader], list[str]]:
    """The readers of the drives ``paths`` (each data drive opened by ``open_reader``): the data drives given, then
    (when parity drives are among them) one reader for each data drive they cover that was not given; and a note for
    each of those naming what its data is rebuilt from. What is opened is closed by ``stack``."""
    roles = [drive_role(path) for path in paths]
    data = [path for path, role in zip(paths, roles, strict=True) if role == "data"]
    parity = _parity_drives([path for path, role in zip(paths, roles, strict=True) if role == "parity"], bool(data))
    # Without parity drives that read as such, each drive is read (and a parity drive refused) as a data drive.
    readers = [open_reader(path) for path in (data if parity else paths)]
    for reader in readers:
        stack.callback(reader.close)
    if not parity:
        return readers, []
    # An encrypted shipment's lost drives read with the identity its drives given were opened with: their sealed
    # index from the parity drives' covered/ copies (docs/format.md 19.7.4), their chunks rebuilt as stored.
    identity = next((reader.identity for reader in readers if reader.identity is not None), None)
    from ..drive.parity.lost import ParitySet  # see the TYPE_CHECKING import

    parity_set = ParitySet(data, parity)
    stack.callback(parity_set.close)
    notes = []
    for group, cover in parity_set.lost():
        lost = parity_set.open_lost(group, cover, identity)
        stack.callback(lost.close)
        readers.append(lost)
        notes.append(rebuilt_note(lost))
    return readers, notes


def _parity_drives(paths: list[str], with_data: bool) -> list[ParityDriveReader]:
    """The parity drives ``paths``; given without any data drive (a shipment of as many data drives as parity
    drives, all lost), only when every one reads whole as a parity drive, else none."""
    if with_data:
        return [ParityDriveReader(path) for path in paths]
    try:
        readers = [ParityDriveReader(path) for path in paths]
        for reader in readers:
            reader.index()
    except FormatError:
        return []
    return readers


def rebuilt_note(lost: LostDriveReader) -> str:
    return f"{lost.cover.label} was not given: its data is rebuilt from {', '.join(sorted(lost.sources))}"
