"""A drive's role by its drive.json (:func:`is_parity_drive`, :func:`drive_role`), told before either reader parses
anything: apart from the parity drive reader (parity/reader.py) so that verify and restore, which ask it of every
drive, import no parity record types for a shipment without parity drives."""

from __future__ import annotations

from ..errors import FormatError
from ..format import DRIVE_LABEL_NAME, ROLE_DATA, ROLE_PARITY
from ..format.fields import json_object
from ..format.names import is_parity_label
from ..io.store import DriveStore, LocalStore
from .reader import LABEL_LIMIT


def label_bytes(store: DriveStore) -> bytes | None:
    """drive.json's bytes (at most LABEL_LIMIT + 1), None when there is none or it cannot be read."""
    try:
        with store.open(DRIVE_LABEL_NAME) as handle:
            return handle.read(LABEL_LIMIT + 1)
    except OSError:
        return None


def is_parity_drive(path: str) -> bool:
    """Whether ``path``'s drive.json says it is a parity drive (False for anything else, a damaged one included:
    the data drive reader then says what is wrong)."""
    data = label_bytes(LocalStore(path))
    if data is None or len(data) > LABEL_LIMIT:
        return False
    try:
        return is_parity_label(json_object(data, DRIVE_LABEL_NAME))
    except FormatError:
        return False


def drive_role(path: str) -> str:
    """``"parity"`` when the drive at ``path`` is a parity drive by its drive.json, else ``"data"`` (whose reader
    then checks everything else, a missing or damaged drive.json included)."""
    return ROLE_PARITY if is_parity_drive(path) else ROLE_DATA
