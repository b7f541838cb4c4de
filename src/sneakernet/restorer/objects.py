"""Restoring into an object store (``restore DRIVE... --into s3://bucket/prefix``): :func:`restore_to_store`.

The restore is the local one, run in a local journal directory (``--journal DIR``, by default one per URL under
``$XDG_STATE_HOME/sneakernet/restores``) that holds its journal and parts, with io/objects.py's
:class:`~sneakernet.io.objects.ObjectTree` as its destination: files are uploaded once checked, the journal says
what is done, ``status DIR`` (or ``status URL``) reads it, and a killed run resumes without uploading again what
the journal had recorded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError
from ..io.atomic import write_atomic
from ..io.objects import ObjectStore, ObjectTree
from .finished import read_finished
from .journal import JOURNAL_DIR, Journal
from .report import RestoreReport
from .run import restore

#: The file in the journal's directory that names the URL it restores into (a URL, never an option or a key).
URL_RECORD = "destination.json"


def default_journal(url: str) -> str:
    """Where the journal of a restore into ``url`` is kept unless --journal says: one directory per URL."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    url = url.rstrip("/")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", url.split("://", 1)[-1]).strip("-")[:60]
    digest = hashlib.blake2b(url.encode(), digest_size=4).hexdigest()
    return os.path.join(state, "sneakernet", "restores", f"{slug}-{digest}")


def restore_to_store(
    drives: Sequence[str],
    url: str,
    *,
    journal: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    force: bool = False,
    store: ObjectStore | None = None,
    **options: Any,
) -> RestoreReport:
    """Restore what ``drives`` carry into the object store at ``url``, the journal in ``journal`` (see the
    module's docstring); ``options`` are :func:`~sneakernet.restorer.restore`'s (``include``, ``progress``,
    ``at_once``...). A prefix that already holds objects is refused unless ``force`` (its objects where the
    shipment has files are replaced), or unless this journal is a restore into it. ``store`` is for tests."""
    url = url.rstrip("/")
    directory = journal or default_journal(url)
    store = store or ObjectStore(url, storage_options)
    try:
        holds = store.check()
        _pin(directory, url)
        started = Journal.exists(directory) or read_finished(directory) is not None
        if holds and not started and not force:
            raise UsageError(
                f"{url} already holds objects and is not a restore of this journal ({directory}): give an empty "
                "prefix, or --force to restore over them (objects where the shipment has files are replaced)"
            )
        trees = functools.partial(ObjectTree, store=store)
        report = restore(drives, directory, force=force, open_destination=trees, check_space=False, **options)
    finally:
        store.close()
    report.notes += store.tally.notes(url)
    return report


def _pin(directory: str, url: str) -> None:
    """Record the URL a journal directory restores into, and refuse the journal of another URL."""
    record = os.path.join(directory, JOURNAL_DIR, URL_RECORD)
    try:
        with open(record, encoding="utf-8") as file:
            pinned = json.load(file).get("url")
    except FileNotFoundError:
        pinned = None
    except (OSError, ValueError, AttributeError):
        raise UsageError(f"{record} is not a destination record: remove it, or give another --journal") from None
    if pinned is not None and pinned != url:
        raise UsageError(f"the journal in {directory} restores into {pinned}, not {url}: give another --journal")
    if pinned is None:
        os.makedirs(os.path.dirname(record), exist_ok=True)
        write_atomic(record, json.dumps({"url": url}).encode() + b"\n")
