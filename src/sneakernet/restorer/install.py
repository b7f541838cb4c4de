"""Installing: hard links made now or left pending, the installs a killed run had started, and what the last
drive finishes (pending links settled, directory metadata)."""

from __future__ import annotations

import contextlib
import os
import stat

from ..format import show_path
from ..io.tree import Destination, Parts
from ..validate import UnsafePath
from .journal import Journal
from .parts import legacy_part_name
from .states import EntryState


def link_pending_or_now(journal: Journal, tree: Destination, path: bytes, target: bytes) -> str | None:
    """Create hard link ``path`` now if its target is installed, else leave it pending in the journal (its target
    may be on a drive still to come). Returns why it cannot be made, if it cannot."""
    target_entry = journal.entry(target)
    if target_entry is None or (target_entry.state != EntryState.DONE and target_entry.kind == "file"):
        return None
    if target_entry.kind != "file":
        return f"is a hard link to {show_path(target)}, a {target_entry.kind}, not a regular file"
    try:
        tree.hardlink(target, path)
    except (UnsafePath, FileNotFoundError) as exc:
        return f"cannot be linked: {exc}"
    journal.set_state(path, EntryState.DONE)
    return None


def link_waiting(journal: Journal, tree: Destination, target: bytes) -> None:
    """Hard links that were waiting for ``target``."""
    for path in journal.links_waiting_for(target):
        problem = link_pending_or_now(journal, tree, path, target)
        if problem is not None:
            journal.set_state(path, EntryState.FAILED)


def recover_installing(journal: Journal, tree: Destination, parts: Parts) -> None:
    """Finish the installs a killed run had started: parts that were verified and synced but maybe not renamed
    (each the part the journal recorded for it, and the very file when its identity was recorded)."""
    for entry in list(journal.entries("file", EntryState.INSTALLING)):
        known = journal.part(entry.path)
        name, identity = (known[0], known[1:]) if known else (legacy_part_name(entry.path), (None, None))
        st = parts.stat(name)  # None: renamed before the kill
        if st is not None and not (stat.S_ISREG(st.st_mode) and identity in ((None, None), (st.st_dev, st.st_ino))):
            # Not the part that was hashed: never installed (nor left to be taken for it).
            with contextlib.suppress(OSError):
                parts.remove(name)
            journal.set_state(entry.path, EntryState.FAILED)
            journal.drop_pieces(entry.path)
            journal.drop_parts([entry.path])
            continue
        if st is not None:
            tree.install(parts.fd, name, entry.path)
        journal.set_state(entry.path, EntryState.DONE)
        journal.drop_pieces(entry.path)
        journal.drop_parts([entry.path])
        link_waiting(journal, tree, entry.path)
    # What install started is in place before the journal says so (an object store's uploads run on threads).
    tree.sync(parts.fd)
    journal.commit()


def settle_links(journal: Journal, tree: Destination) -> list[str]:
    """Every drive is in: each pending hard link is made now, or recorded as failed (its target never came).
    Returns what could not be done."""
    failures = []
    for entry in list(journal.entries("hardlink", EntryState.PENDING)):
        assert entry.target is not None
        problem = link_pending_or_now(journal, tree, entry.path, entry.target)
        if problem is None and not tree.exists(entry.path):
            problem = f"is a hard link to {show_path(entry.target)}, which is not in the shipment"
        if problem is not None:
            journal.set_state(entry.path, EntryState.FAILED)
            failures.append(f"{show_path(entry.path)} {problem}")
    journal.commit()
    return failures


def finish_directories(journal: Journal, tree: Destination) -> None:
    """Every wanted entry is in: directory metadata, deepest first (their mtimes last of all)."""
    owner = os.geteuid() == 0
    for path, mode, mtime_ns, uid, gid in journal.directories_deepest_first():
        tree.set_metadata(path, mode, mtime_ns, (uid, gid) if owner else None)
    journal.set("finished", "true")
    journal.commit()
