"""The one journal writer of drives restored at once: :class:`JournalDesk`.

SQLite's connection belongs to the thread that opened it (restore's own, which also checks each drive and
finishes the shipment). While drives are written at once, each on a thread of its own, that thread serves the
journal: the drives' threads hand it their calls through a :class:`JournalClient` and it runs them one at a time,
in the order they came. So every journal change is one writer's, as in a restore of one drive, and a drive's own
calls keep their order: what it added is what its next lookup sees.

Changes that return nothing (an entry added, a state set, a piece recorded) are handed over without waiting for
them; a drive waits only for what it asks (a lookup) and for a commit, and learns then of a change that failed.
A commit makes every drive's changes so far durable, not only the committing drive's: restore records a change
only once what it says is on disk (a file's state after its bytes are synced, a piece after it was written), so
any moment's journal is one that a killed run resumes from.
"""

from __future__ import annotations

import queue
import threading
import types
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, cast

from .journal import Journal

#: Journal methods whose calls a drive does not wait for (they return nothing; a failure is raised by the drive's
#: next call that waits). Their arguments must not change once handed over: every caller passes new objects.
UNANSWERED = frozenset(
    {
        "add_entry", "set_final", "set_state", "set_states", "set_parts", "drop_parts", "add_piece", "drop_pieces",
        "set_drive", "add_alias",
    }
)  # fmt: skip

_Call = tuple[str, tuple[Any, ...], dict[str, Any], "Future[Any]"]


class Stopped(Exception):
    """The run stops (another drive's work failed, or the user interrupted it): this drive's work ends here, what
    the journal recorded kept as after a kill."""


class JournalDesk:
    """Serves ``journal`` (opened on this thread) to the threads of drives restored at once: see the module."""

    def __init__(self, journal: Journal, stop: threading.Event) -> None:
        self.journal = journal
        #: Set by :meth:`stop` (and by whoever else stops the run): the drives' work ends at its next check.
        self.stopping = stop
        self.owner = threading.get_ident()
        #: Calls handed over, in order; None: a drive's work ended (see :meth:`serve`).
        self.calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()

    def client(self) -> Journal:
        """What a drive's thread uses as its journal (its calls served here, in order)."""
        return cast(Journal, JournalClient(self))

    def stop(self) -> None:
        """The run stops: every call from now on fails with :class:`Stopped`, so that each drive's work ends at
        once, changing nothing more."""
        self.stopping.set()

    def serve(self, works: Iterable[Future[Any]], done: Callable[[Future[Any]], None]) -> None:
        """Run the calls the drives' threads hand over until every one of ``works`` (their work) has ended;
        ``done`` is told of each as it ends, on this thread."""
        pending = list(works)
        for work in pending:
            work.add_done_callback(lambda _: self.calls.put(None))
        while pending:
            call = self.calls.get()
            if call is None:
                for work in [w for w in pending if w.done()]:
                    pending.remove(work)
                    done(work)
                continue
            self._run(call)

    def _run(self, call: _Call) -> None:
        name, args, kwargs, answer = call
        if self.stopping.is_set():
            answer.set_exception(Stopped())
            return
        try:
            result = getattr(self.journal, name)(*args, **kwargs)
            if isinstance(result, types.GeneratorType):
                result = list(result)  # a generator runs on the connection: here, not on the drive's thread
        except BaseException as exc:  # handed to the caller, which raises it
            answer.set_exception(exc)
        else:
            answer.set_result(result)


class JournalClient:
    """A drive thread's journal: each method call runs on the :class:`JournalDesk`'s thread (directly when made
    on that thread itself); attributes that are not methods (``dest``) are the journal's."""

    def __init__(self, desk: JournalDesk) -> None:
        self._desk = desk
        #: Calls handed over without waiting, whose failure is not yet known.
        self._unanswered: list[Future[Any]] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._desk.journal, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, args, kwargs)

        return call

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        desk = self._desk
        if threading.get_ident() == desk.owner:
            return getattr(desk.journal, name)(*args, **kwargs)
        answer: Future[Any] = Future()
        desk.calls.put((name, args, kwargs, answer))
        if name in UNANSWERED:
            self._unanswered.append(answer)
            return None
        result = answer.result()
        # Served in order: every call handed over before this one has run.
        unanswered, self._unanswered = self._unanswered, []
        for earlier in unanswered:
            if (failure := earlier.exception()) is not None:
                raise failure
        return result
