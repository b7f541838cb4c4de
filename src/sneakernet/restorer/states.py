"""Every state restore names, as enums whose values are the strings stored in the journal and written in --json
(docs/restore.md): the journal's entries and drives, a drive's outcome in a run, why a drive is still needed."""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    """A state: a string equal to its value, and ``str()`` and f-strings give the value (as on Python 3.10)."""

    def __str__(self) -> str:
        return str(self.value)


class EntryState(State):
    """The state of a path in the journal (the ``entries`` table), as stored."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    #: Verified and synced, being renamed to the final name: a run killed meanwhile completes it on resume.
    INSTALLING = "installing"


class DriveState(State):
    """The state of a drive in the journal (the ``drives`` table), as stored; a drive not in it is missing."""

    DONE = "done"
    #: Some entries failed (damaged bytes, a name that collides): a good copy of the drive finishes them.
    PARTIAL = "partial"
    #: Its entries were kept out only by what the destination holds: this drive again, once the way is clear.
    BLOCKED = "blocked"
    #: Restored before a later drive showed that it carries the content of a wanted hard link (under
    #: ``--include``, the link's target left out): it must be restored again, which writes only that content.
    REOPENED = "reopened"


class OutcomeStatus(State):
    """What a run did with a drive (:attr:`DriveOutcome.status`; the same strings in --json)."""

    RESTORED = "restored"
    #: Restored before (or the destination's restore finished): nothing to do.
    ALREADY = "already"
    #: Refused whole before anything of it was written (another shipment, a manifest that fails its checks).
    REFUSED = "refused"
    #: Some entries could not be restored (damaged bytes, names that collide).
    DAMAGED = "damaged"
    #: Its entries were kept out only by what the destination holds (journal state and report status alike).
    BLOCKED = "blocked"
    #: It failed half way while read (an I/O error: pulled out, a failing disk); what it wrote is kept, it (or a
    #: copy) again finishes it.
    UNREADABLE = "unreadable"


class WaitState(State):
    """Why a drive is still needed (:attr:`WaitingDrive.state`): the journal's state of a drive not done."""

    MISSING = "missing"
    #: Damaged: a good copy is needed.
    PARTIAL = "partial"
    #: The destination was in the way.
    BLOCKED = "blocked"
    #: Restored before a later drive showed it carries an included hard link's content: restore it again.
    REOPENED = "reopened"
