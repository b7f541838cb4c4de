"""Packing on a Dask cluster (issue 20): each lane a task on the worker whose host has its drives.

The client (this process) does what a local pack onto several drives at once does (coordinator.py): it scans the
source once, cuts the walk into lanes, merges the lanes' catalog entry lines and writes the catalog. What changes is
where the lanes run: each is a Dask task running :func:`~sneakernet.packer.lane.run_lane`, the code a local lane's
process runs, on the worker its drives are plugged into (``--drives-from``: one lane per line, pinned to that
line's worker), or on any worker of the cluster when every host sees the drives (``--out``, ``--drive``). The
drive numbers' count (docs/format.md 19.3) is kept on the scheduler, a Dask ``Variable`` under a ``Lock``; the
lanes' progress comes back as worker events the client relays to its progress.

Every host reads the source, the walk's spool and writes the lanes' entry lines at the same paths as the client:
the source on a filesystem every host mounts, the work directory too (``work_dir``; by default a temporary
directory, which only the workers of this host see). Each is checked on every worker before anything is written.

``distributed`` is imported only here, and only when a cluster pack is asked for: the ``dask`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from ..drive.catalog import copy_catalog, install_catalog, write_catalog
from ..errors import ClusterError, DestinationError, SneakernetError, UsageError, WorkerLost
from ..format import CatalogHeader
from ..io.store import DriveStore, LocalStore
from ..progress import Progress
from .coordinator import LaneRelay, Lanes, LanesOutcome
from .lane import DriveNumbers, LaneDrives, LaneError, LaneResult, LaneTask, QueueProgress, run_lane
from .targets import DriveSlot, DriveTargets

log = logging.getLogger(__name__)

#: Seconds to reach a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = 5
#: Seconds between two looks of a lane at the client's stop flag (Ctrl-C, SIGTERM on the client).
STOP_CHECK = 1.0
DASK_EXTRA = "--scheduler needs Dask: pip install 'sneakernet[dask]'"


@dataclass(frozen=True)
class HostLane:
    """One line of a drives file: a lane packed by ``worker`` (a worker's address, its name, or its host) onto
    ``drives``, mounted on that worker's host, filled one after another."""

    worker: str
    drives: tuple[str, ...]


def parse_scheduler(text: str) -> str:
    """``--scheduler``'s value checked: ``local:N`` (a cluster of N processes on this host) or a scheduler's
    address (``tcp://HOST:8786``, ``tls://...``)."""
    if text.startswith("local:"):
        count = text[len("local:") :]
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise UsageError(f"--scheduler {text}: local:N takes N worker processes, 1 to 256")
        return text
    if "://" not in text:
        raise UsageError(f"--scheduler {text} is neither local:N nor a scheduler's address such as tcp://HOST:8786")
    return text


def read_drives_file(path: str) -> tuple[HostLane, ...]:
    """The lanes of a drives file: a line per lane, ``WORKER PATH [PATH ...]`` (shell quoting; ``#`` comments),
    the drives of that lane on that worker's host in the order they are filled."""
    try:
        with open(path, encoding="utf-8") as lines:
            text = lines.read()
    except OSError as exc:
        raise UsageError(f"cannot read the drives file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"the drives file {path} is not UTF-8 text") from exc
    lanes: list[HostLane] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: {exc}") from exc
        if not words:
            continue
        if len(words) < 2:
            raise UsageError(f"{path}:{number}: a line is WORKER PATH [PATH ...], the worker then its drives")
        lanes.append(HostLane(words[0], tuple(words[1:])))
    if not lanes:
        raise UsageError(f"the drives file {path} names no drives: give a line WORKER PATH [PATH ...] per lane")
    paths = [(lane.worker, drive) for lane in lanes for drive in lane.drives]
    if len(set(paths)) != len(paths):
        raise UsageError(f"the drives file {path} names a drive twice")
    return tuple(lanes)


@dataclass(frozen=True)
class HostDrives(LaneDrives):
    """A lane's own drives (a drives file's line): the lane fills them in order, whatever numbers its drives take
    (19.3: numbers are given as drives open, by the client)."""

    pool: tuple[str, ...] = ()
    #: Drive number -> path, as this lane's drives were opened (in the lane's process: the task's own copy).
    given: dict[int, str] = field(default_factory=dict, compare=False)

    def slot(self, index: int, kept: int = 0) -> DriveSlot | None:
        if index not in self.given:
            if len(self.given) == len(self.pool):
                return None
            self.given[index] = self.pool[len(self.given)]
        slot = LaneDrives(None, (self.given[index],), self.drive_size, self.reserve).slot(1, kept)
        return replace(slot, index=index) if slot is not None else None

    def path(self, index: int) -> str:
        return self.given[index]


class ClusterTargets(DriveTargets):
    """The drives of a drives file, as pack's space checks see them: their room was measured by a task on each
    host (this process may not see them), nothing is looked at here."""

    def __init__(self, slots: list[DriveSlot], drive_size: int | None, reserve: int | None) -> None:
        # Not DriveTargets.__init__: it checks the drives where this process runs; the hosts checked them.
        self.next_drive = None
        self.waited = 0.0
        self.out = None
        self.drives = [slot.path for slot in slots]
        self.drive_size = drive_size
        self.reserve = reserve
        self.resume = False
        self._slots = slots

    def known_slots(self) -> list[DriveSlot]:
        return list(self._slots)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(DASK_EXTRA) from exc
    return distributed


class DaskLanes:
    """A pack's lanes run as tasks on the Dask cluster of ``client`` (see the module's docstring).

    ``hosts`` (a drives file's lines) pins each lane to its worker, with its drives; without, the lanes write the
    pack's ``--out`` or ``--drive`` drives, which every worker sees, one lane per worker. ``work_dir`` is where the
    walk's spool and the lanes' entry lines go: a directory every worker sees at the same path.
    """

    def __init__(
        self, client: Any, hosts: Sequence[HostLane] = (), work_dir: str | None = None, *,
        starting: Callable[[], Any] | None = None, workers: int = 0,
    ) -> None:  # fmt: skip
        """``client``: a ``distributed.Client``; or None with ``starting``, which waits for the client of a cluster
        of ``workers`` workers starting meanwhile (:meth:`connect`: while pack scans the source)."""
        self._client = client
        self._starting = starting
        self.hosts = tuple(hosts)
        self.work_dir = work_dir
        self._expected = workers
        self._workers: dict[str, dict[str, Any]] = {}
        #: Each lane's workers (addresses), by lane number; all workers when the lanes are not pinned.
        self.pins: list[list[str]] = []
        #: The last drive each lane began, told by its progress: named when its worker is lost.
        self._began: dict[int, str] = {}
        #: A resumed pack's drive numbers (lane_resume.py's LanesFound): new ones after ``last``, ``free`` first.
        self.last: int | None = None
        self.free: list[int] = []
        if client is not None:
            self._ready()

    @property
    def client(self) -> Any:
        """The cluster's client, once it is up."""
        if self._client is None:
            assert self._starting is not None
            self._client = self._starting()
            self._ready()
        return self._client

    def _ready(self) -> None:
        self._workers = self._scheduler_workers()
        if not self._workers:
            raise ClusterError(f"the Dask scheduler at {self._client.scheduler.address} has no worker")
        self.pins = [self._resolve(lane.worker) for lane in self.hosts]

    @classmethod
    @contextlib.contextmanager
    def connect(
        cls, scheduler: str, hosts: Sequence[HostLane] = (), work_dir: str | None = None
    ) -> Iterator[DaskLanes]:
        """The lanes of a cluster: ``local:N`` starts N worker processes on this host for the time of the pack (a
        thread per lane of a worker in ``hosts``); an address connects to a running scheduler."""
        distributed = _import_distributed()
        import dask

        scheduler = parse_scheduler(scheduler)
        with contextlib.ExitStack() as stack:
            if scheduler.startswith("local:"):
                # A lane's worker lost must not run the lane again on a fresh worker: its drive is unfinished. The
                # workers start from a fork server that imported Dask once: a cluster up in about 2 s, not 4-7 (spawn:
                # each worker imports Dask and sneakernet anew), without forking this process and its threads.
                settings = {
                    "distributed.scheduler.allowed-failures": 0,
                    "distributed.worker.multiprocessing-method": "forkserver",
                }
                stack.enter_context(dask.config.set(settings))
                workers = int(scheduler[len("local:") :])
                lanes_per_worker = max([sum(h.worker == w.worker for h in hosts) for w in hosts] or [1])
                starting = _LocalStart(distributed, workers, lanes_per_worker)
                stack.callback(starting.close)
                yield cls(None, hosts, work_dir, starting=starting.wait, workers=workers)
                return
            else:
                try:
                    client = stack.enter_context(distributed.Client(scheduler, timeout=CONNECT_TIMEOUT))
                except (OSError, TimeoutError) as exc:
                    raise ClusterError(
                        f"cannot reach the Dask scheduler at {scheduler} ({exc}): check the address and that "
                        "`dask scheduler` runs there"
                    ) from exc
            yield cls(client, hosts, work_dir)

    @property
    def lanes(self) -> int:
        """How many lanes this cluster packs: one per line of the drives file, else one per worker."""
        return len(self.hosts) or (len(self._workers) if self._client is not None else self._expected)

    def _scheduler_workers(self) -> dict[str, dict[str, Any]]:
        return dict(self.client.scheduler_info(n_workers=-1)["workers"])

    def _resolve(self, worker: str) -> list[str]:
        """The addresses of the workers a drives file's ``worker`` names: by address, name, or host."""
        found = [address for address, info in self._workers.items() if worker in (address, str(info.get("name")))]
        found = found or [address for address, info in self._workers.items() if info.get("host") == worker]
        if not found:
            known = ", ".join(sorted(str(info.get("name")) for info in self._workers.values()))
            raise ClusterError(f"no worker {worker} is connected to the Dask scheduler (its workers: {known})")
        return found

    def _all(self) -> list[str]:
        return sorted(self._workers)

    def check(self, work: str, source: str, drive_size: int | None, reserve: int | None) -> ClusterTargets | None:
        """Before anything is written: every worker that will pack sees the work directory ``work`` (a token
        written here, read there) and the source; with a drives file, each lane's drives are checked on their host
        as pack checks given drives, their room measured (the targets of pack's space check)."""
        client = self.client  # a local cluster started meanwhile: up now
        token = secrets.token_hex(16)
        with open(os.path.join(work, TOKEN_NAME), "w") as handle:
            handle.write(token)
        workers = sorted({a for pin in self.pins for a in pin}) if self.hosts else self._all()
        client.run(_check_worker, work, token, source, workers=workers)
        if not self.hosts:
            return None
        slots: list[DriveSlot] = []
        for lane, pin in zip(self.hosts, self.pins, strict=True):
            future = client.submit(
                _check_drives, lane.drives, drive_size, reserve, workers=pin, allow_other_workers=False, pure=False
            )
            slots.extend(_result(future))
        return ClusterTargets(slots, drive_size, reserve)

    def run(
        self, tasks: list[LaneTask], progress: Progress, total_bytes: int = 0, shares: dict[int, int] | None = None
    ) -> list[LaneResult]:
        """Every lane as a task at once; their results in lane order (a lane whose worker was lost: its error)."""
        progress.start(total_bytes)
        distributed = _import_distributed()
        # Names of this run's own (a resumed pack is the same shipment: its lanes must not meet the stopped run's
        # stop flag, count, or tasks, which the scheduler may still hold under their keys).
        run = f"sneakernet-{tasks[0].shipment}-{secrets.token_hex(4)}"
        numbers, topic = f"{run}-drives", f"{run}-progress"
        stop = distributed.Event(f"{run}-stop", client=self.client)
        # Numbers 1 ... L are the lanes' first drives; later drives take the next (19.3); a resumed pack gives out
        # first the numbers of drives left with nothing kept (lane_resume.py), so the drives end up 1 ... K.
        distributed.Variable(numbers, client=self.client).set([self.last or len(tasks), list(self.free)])
        relay = LaneRelay(progress, shares or {})
        self._began = relay.began
        self.client.subscribe_topic(topic, lambda event: relay.tell(event[1]))
        futures = []
        try:
            for task in tasks:
                pin = self.pins[task.lane - 1] if self.hosts else None
                futures.append(
                    self.client.submit(
                        cluster_lane,
                        self._lane_task(task),
                        numbers,
                        topic,
                        stop.name,
                        workers=pin,
                        allow_other_workers=False,
                        pure=False,
                        key=f"{run}-lane-{task.lane}",
                    )
                )
            results = [self._lane_result(task, future) for task, future in zip(tasks, futures, strict=True)]
        except BaseException:
            # Interrupted here: the lanes stop at their next look at the flag, their drives left unfinished.
            stop.set()
            self.client.cancel(futures)
            raise
        finally:
            # The lanes' last events may still be on their way: they are counted before the bar closes.
            time.sleep(0.2)
            self.client.unsubscribe_topic(topic)
            relay.close()
        return results

    def resumed(self, last: int, free: list[int]) -> DaskLanes:
        self.last, self.free = last, list(free)
        return self

    def _lane_task(self, task: LaneTask) -> LaneTask:
        if not self.hosts:
            return task
        drives = task.drives
        own = HostDrives(None, (), drives.drive_size, drives.reserve, pool=self.hosts[task.lane - 1].drives)
        return replace(task, drives=own)

    def _lane_result(self, task: LaneTask, future: Any) -> LaneResult:
        """The lane's result once its task ends; its error when its worker is lost (the scheduler says so, or, when
        the lane is pinned to workers of which none is left, its task could never run again)."""
        distributed = _import_distributed()
        while True:
            try:
                result: LaneResult = future.result(timeout=STOP_CHECK)
                return result
            except (distributed.KilledWorker, distributed.comm.CommClosedError) as exc:
                log.debug("lane %d: %r", task.lane, exc)
                break
            except TimeoutError:
                if self.hosts and not set(self.pins[task.lane - 1]) & set(self._scheduler_workers()):
                    future.cancel()
                    break
        return LaneResult(task.lane, error=_lost(task.lane, self._began.get(task.lane), not self.hosts))

    def finish(
        self, lanes: Lanes, outcome: LanesOutcome, header: CatalogHeader, merged: BinaryIO, copy_to: str | None
    ) -> None:
        """The catalog written once, here, into the work directory (and the sender's copy from it); then each host
        copies it onto its own drives with their final B3SUMS, by a task on its worker."""
        if not self.hosts:
            from .coordinator import LocalLanes

            LocalLanes().finish(lanes, outcome, header, merged, copy_to)
            return
        written = os.path.join(lanes.work, "catalog")
        os.mkdir(written)
        digest = write_catalog([LocalStore(written)], outcome.labels, header, lanes.catalog_size, merged)
        if copy_to:
            copy_catalog(LocalStore(written), copy_to)
        by_lane: dict[int, list[tuple[str, list[tuple[str, str]]]]] = {}
        for drive, label in zip(outcome.drives, outcome.labels, strict=True):
            assert label.lane is not None
            by_lane.setdefault(label.lane, []).append((drive.path, drive.checksums))
        futures = [
            self.client.submit(
                _install,
                written,
                drives,
                digest,
                lanes.open_store,
                workers=self.pins[lane - 1],
                allow_other_workers=False,
                pure=False,
            )
            for lane, drives in sorted(by_lane.items())
        ]
        for future in futures:
            _result(future)


class _LocalStart:
    """A LocalCluster of ``workers`` processes (``threads`` threads each) and its client, started on a thread of its
    own so that the cluster comes up while pack scans the source; :meth:`wait` gives the client (or raises what
    the start raised), :meth:`close` ends both."""

    def __init__(self, distributed: Any, workers: int, threads: int) -> None:
        self.distributed = distributed
        self.workers = workers
        self.threads = threads
        self.cluster: Any = None
        self.client: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="sneakernet-dask-start", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        try:
            # The scheduler's HTTP server on any free port: Dask's 8787 may be another cluster's.
            self.cluster = self.distributed.LocalCluster(
                n_workers=self.workers, threads_per_worker=self.threads, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR,
            )  # fmt: skip
            self.client = self.distributed.Client(self.cluster)
        except BaseException as exc:  # handed to the pack's thread by wait()
            self.error = exc

    def wait(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise ClusterError(f"cannot start a local Dask cluster: {self.error}") from self.error
        return self.client

    def close(self) -> None:
        self.thread.join()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


#: The work directory's token, written by the client and read by every worker (they see the same directory).
TOKEN_NAME = "cluster-token"


def _result(future: Any) -> Any:
    """A check's or finishing task's result; its SneakernetError raised here as it was raised there."""
    return future.result()


def _lost(lane: int, drive: str | None, resumable: bool) -> LaneError:
    """A lane's error when its worker was lost; ``resumable``: its pack can be resumed (not yet with a drives file)."""
    where = f"{drive} is unfinished" if drive else "its drive is unfinished"
    then = (
        "run the same pack with --resume to go on"
        if resumable
        else "empty the drives and pack again (--resume of a pack with --drives-from is not supported yet)"
    )
    return LaneError(
        WorkerLost.__name__,
        f"the worker packing lane {lane} was lost: {where}, the other lanes' drives are finished; {then}",
    )


# --- what runs on the workers -------------------------------------------------------------------------------


def _check_worker(work: str, token: str, source: str) -> None:
    """On a worker: it sees the client's work directory (the same token) and the source."""
    try:
        with open(os.path.join(work, TOKEN_NAME)) as handle:
            seen = handle.read()
    except OSError:
        seen = None
    if seen != token:
        raise ClusterError(
            f"a worker on {os.uname().nodename} does not see the work directory {work}: give --work-dir on a "
            "filesystem every host mounts at the same path"
        )
    if not os.path.isdir(source):
        raise ClusterError(
            f"a worker on {os.uname().nodename} does not see the source {source}: every host must mount it at the "
            "same path"
        )


def _check_drives(drives: tuple[str, ...], drive_size: int | None, reserve: int | None) -> list[DriveSlot]:
    """On a lane's worker: its drives checked as pack checks given drives (empty, writable, no shipment), and
    their room."""
    return DriveTargets(None, drives, drive_size, reserve).known_slots()


def _install(
    written: str, drives: list[tuple[str, list[tuple[str, str]]]], digest: str, open_store: Callable[[str], DriveStore]
) -> None:
    """On a lane's worker: the catalog onto its drives, then their B3SUMS."""
    install_catalog(LocalStore(written), [open_store(path) for path, _ in drives], [s for _, s in drives], digest)


class EventQueue:
    """A lane's progress messages sent to the client as worker events (the ``put`` of lane.py's QueueProgress);
    also where the lane looks, at most every :data:`STOP_CHECK` seconds, whether the client asked it to stop.

    Made on the task's thread, ``put`` from any (the pipeline's reader calls it): the worker and its client are
    taken here, where Dask knows them (``Worker.log_event`` and a client's calls may be made from other threads)."""

    def __init__(self, topic: str, stop: str) -> None:
        distributed = _import_distributed()
        self.topic = topic
        self.worker = distributed.get_worker()
        self.stop = distributed.Event(stop, client=distributed.get_client())
        self.looked = 0.0

    def put(self, message: tuple[str, int, Any]) -> None:
        self.worker.log_event(self.topic, message)
        now = time.monotonic()
        if now - self.looked >= STOP_CHECK:
            self.looked = now
            if self.stop.is_set():
                raise DestinationError("stopped: the pack was interrupted on the client")


class ClusterNumbers(DriveNumbers):
    """The drive numbers' count on the scheduler (a Dask Variable under a Lock): what
    :class:`~sneakernet.packer.lane.DriveNumbers` is for lanes in processes of one host."""

    def __init__(self, name: str) -> None:
        super().__init__(None)
        self.name = name

    def take(self) -> int:
        distributed = _import_distributed()
        with distributed.Lock(f"{self.name}-lock"):
            count = distributed.Variable(self.name)
            last, free = count.get()
            number = free.pop(0) if free else last + 1
            count.set([max(last, number), free])
        return int(number)


def cluster_lane(task: LaneTask, numbers: str, topic: str, stop: str) -> LaneResult:
    """One lane as a Dask task: :func:`~sneakernet.packer.lane.run_lane` with the cluster's drive numbers and
    progress. Run a second time (its first worker lost, the scheduler retrying it), it packs nothing: the drive
    the first run was writing is unfinished, and writing the lane again over it is resume's work, not a retry's."""
    started = os.path.join(os.path.dirname(task.entries_path), f"lane-{task.lane}.started")
    try:
        os.close(os.open(started, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return LaneResult(task.lane, error=_lost(task.lane, None, not isinstance(task.drives, HostDrives)))
    try:
        return run_lane(task, ClusterNumbers(numbers), QueueProgress(EventQueue(topic, stop), task.lane))
    except SneakernetError as exc:  # raised before the lane's writer began (its own errors are in the result)
        return LaneResult(task.lane, error=LaneError(type(exc).__name__, str(exc)))


__all__ = ["ClusterTargets", "DaskLanes", "HostLane", "parse_scheduler", "read_drives_file"]
