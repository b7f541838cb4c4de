"""The destination directory as a whole: its errors as the user reads them, its free space, its lock, and the
refusal of a destination nested with a drive."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator

from ..drive import DriveReader
from ..errors import OutOfSpace, UsageError
from ..io.atomic import write_error
from ..io.lock import DirectoryLock, Locked
from ..units import format_size
from .journal import JOURNAL_NAME, Journal

CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def journal_error(exc: sqlite3.OperationalError, dest: str) -> Exception:
    if "full" in str(exc).lower():
        return space_error(OSError(errno.ENOSPC, str(exc)), dest)
    return exc


def space_error(exc: OSError, dest: str) -> Exception:
    """What a failed write into the destination tells the user: full, or what else (never a traceback)."""
    # Only a journal keeps anything: a destination that could not even take one (read-only) holds nothing of it.
    kept = (
        "the journal keeps everything already done"
        if os.path.exists(os.path.join(Journal.directory(dest), JOURNAL_NAME))
        else "nothing was written"
    )
    where = f" ({os.fsdecode(exc.filename)})" if exc.filename else ""
    return write_error(
        exc,
        f"the destination {dest} is full ({exc.strerror}): free space and run the same restore again; {kept}",
        f"cannot write into the destination {dest}: {exc.strerror or exc}{where}; fix that and run the same "
        f"restore again ({kept})",
    )


def check_room(label: str, needed: int, dest: str) -> None:
    """Refuse a drive whose data does not fit in the destination's free space, before anything of it is written:
    a restore that fills the destination stops half way, with its parts area full, to be freed and run again.

    ``needed`` is the data bytes of the drive's chunks, from its manifest once checked (drive.json's count is not
    trusted); a drive partly restored by a killed run counts whole. Files are written once, under
    .sneakernet/parts, then renamed into place on the same filesystem.
    """
    try:
        free = shutil.disk_usage(dest).free
    except OSError:
        return
    if needed > free:
        raise OutOfSpace(
            f"{label} carries {format_size(needed)} of data and the destination {dest} has {format_size(free)} free: "
            f"free {format_size(needed - free)} or more (or --include a part, or --no-space-check on a filesystem "
            f"that compresses), then run the same restore again; nothing of {label} was written"
        )


def refuse_nested(readers: list[DriveReader], dest: str) -> None:
    """A destination inside one of the drives (it would write onto the drive) or a drive inside the destination
    (it would restore into what it reads from) is refused before anything is written. Directories are compared
    by device and inode up from each real path, so a symlink or a bind mount of either is caught too."""
    existing = os.path.abspath(dest)
    while not os.path.exists(existing):  # DEST is made if missing: its nearest existing ancestor decides
        existing = os.path.dirname(existing)
    dest_ancestors = _ancestor_ids(existing)
    dest_id = dest_ancestors[0] if existing == os.path.abspath(dest) else None
    for reader in readers:
        drive_ancestors = _ancestor_ids(reader.path)
        if drive_ancestors[0] in dest_ancestors:
            raise UsageError(
                f"the destination {dest} is inside the drive {reader.path}: restoring there would write onto the "
                "drive; give a destination outside every drive"
            )
        if dest_id is not None and dest_id in drive_ancestors:
            raise UsageError(
                f"the drive {reader.path} is inside the destination {dest}: give a destination that holds no drive "
                "(or move the drive out of it)"
            )


def _ancestor_ids(path: str) -> list[tuple[int, int]]:
    """(st_dev, st_ino) of ``path`` and of every directory above its real path, up to /."""
    ids = []
    current = os.path.realpath(path)
    while True:
        info = os.stat(current)
        ids.append((info.st_dev, info.st_ino))
        parent = os.path.dirname(current)
        if parent == current:
            return ids
        current = parent


@contextlib.contextmanager
def only_restore_into(dest: str, wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the destination directory itself while restoring into it (io/lock.py): a second
    restore into the same destination (a second terminal, a drive that arrived meanwhile) never races this one
    over the journal and the parts. It is refused, or with ``wait`` (told why, once) it waits until the lock is
    let go, then restores (the first run's work is in the journal it then opens)."""
    try:
        os.makedirs(dest, exist_ok=True)
        try:
            lock = DirectoryLock(dest)
        except Locked:
            if wait is None:
                raise UsageError(
                    f"another restore is writing into {dest}: let it finish, then run this one (one run takes "
                    "several drives: give them all to it)"
                ) from None
            wait(
                f"another restore is writing into {dest}: waiting for it to end, then restoring these drives "
                "(Ctrl-C stops waiting; nothing is written meanwhile)"
            )
            lock = DirectoryLock(dest, wait=True)
    except OSError as exc:
        raise space_error(exc, dest) from exc
    try:
        yield
    finally:
        lock.release()
