"""Restoring a shipment drive by drive, in any order: ``sneakernet.restore()`` and ``sneakernet.status()``.

Each run takes the drives it is given, checks each one whole before writing anything for it (the manifest parses
and matches drive.json and the catalog, every path is a plain relative path, no path appears twice), then writes
the files it carries. A file is assembled under a temporary name in DEST/.sneakernet/parts and appears under its
final name only once complete and matching its whole-file BLAKE3. The journal (journal.py) records what is done,
so running a drive twice is a no-op and a killed run resumes without redoing finished work. When the last drive
is in (every wanted entry of the catalog done in the journal), directory metadata is set (deepest first), the
finished record is written, the journal is removed, and the fingerprint is stated.

Durability: finished files are installed in batches. A batch's files are written, their metadata set, then
``syncfs`` (else ``os.sync()``) makes them durable, then they are renamed to their final names, then the journal
commits them. A crash at any point leaves every final name either absent, or holding the exact, synced bytes.

Modules, each importing only those before it here: ``states`` (every state, as enums), ``report`` (outcomes, status,
the report), ``journal`` (all of restore's SQL), ``finished`` (the finished record), ``includes`` (--include),
``cursor`` (a drive's raw stream), ``destination`` (DEST as a whole: its errors, free space and lock), ``parts``
(part files), ``install`` (links, recovery, the last drive's finish), ``catalog`` (the catalog copy and its
mending), ``session`` (the journal opened or started), ``check`` (a drive checked before writing), ``pieces`` (the
parts of files spanning drives) and ``drive_restorer`` (writing one drive), ``unit`` (one drive's unit of work),
``status``, ``run`` (restore()). Everything made in DEST goes through a :class:`~sneakernet.io.tree.Destination`.
"""

from __future__ import annotations

from .report import DriveOutcome, RestoreReport, ShipmentStatus
from .run import restore
from .status import status

__all__ = ["DriveOutcome", "RestoreReport", "ShipmentStatus", "restore", "status"]
