"""Packing onto several drives at once: the walk cut into lanes (space/lanes.py), one process per lane
(lane.py), the drive numbers given out as drives open, and, once every lane is done, the version 2 catalog merged
from the lanes' entry lists in drive number order and written to every drive (docs/format.md 19.3-19.6).

This module is the coordinating process's side: it starts the lanes, relays their progress, and merges what they
return. A lane that fails stops alone; the others finish their drives, and the run then raises the failed lane's
error (the catalog is not written: the shipment is detectably unfinished, every finished drive checkable alone).
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from .._version import __version__
from ..drive.catalog import catalog_body, copy_catalog, finish_shipment
from ..drive.parity.accumulator import AccumulatorSpec
from ..errors import ExitCode, LaneStopped
from ..format import FORMAT_VERSION_2, CatalogHeader, DriveLabel, body_fingerprint
from ..io.source import KIND_FILE, LocalSource, SourceEntry, Unreadable
from ..io.store import DriveStore, LocalStore
from ..options import PackOptions
from ..progress import DriveProgress, Progress, open_drive
from ..scan import ScanTotals
from ..space.lanes import LaneRange, cut_lanes, entry_weight
from .ahead import ParityAhead
from .lane import LaneDrive, LaneDrives, LaneResult, LaneTask, init_lane_process, pack_lane
from .lane_resume import LaneResume, LanesFound, ResumeTally
from .same_pass import SamePassParity, finish_parity
from .summary import LISTED_PATHS, PackSummary, ReadTally
from .targets import DriveTargets

if TYPE_CHECKING:  # the crypt extra, for an encrypted pack only
    from ..drive.sealed import ShipmentSealing

log = logging.getLogger(__name__)


def walk_weights(entries: Iterator[SourceEntry | Unreadable], ratio: float = 1.0) -> Iterator[int]:
    """Each entry's lane weight (:func:`~sneakernet.space.lanes.entry_weight`) in walk order: a file's data at
    ``ratio``, once per inode (a further name of a hard-linked file stores nothing), plus its record."""
    linked: set[tuple[int, int]] = set()
    for entry in entries:
        data = 0
        if isinstance(entry, SourceEntry) and entry.kind == KIND_FILE:
            data = entry.size
            if entry.nlink > 1:
                key = (entry.dev, entry.ino)
                data = 0 if key in linked else data
                linked.add(key)
        yield entry_weight(len(entry.path), data, ratio)


def cut_walk(entries: Any, lanes: int, ratio: float = 1.0) -> list[LaneRange]:
    """The lanes of the walk that ``entries()`` gives (called twice: once to weigh it all, once to cut it)."""
    total = sum(walk_weights(entries(), ratio))
    return list(cut_lanes(walk_weights(entries(), ratio), lanes, total))


@dataclass
class LanesOutcome:
    """The lanes' results merged: every drive in number order, the reader's counts, the catalog's body."""

    drives: list[LaneDrive]
    labels: list[DriveLabel]
    tally: ReadTally
    chunks: int
    stored_raw_bytes: int
    lanes: int


def run_lanes(
    tasks: list[LaneTask], progress: Progress, last: int | None = None, free: list[int] | None = None,
    total_bytes: int = 0, shares: dict[int, int] | None = None, beside: Callable[[], None] | None = None,
) -> list[LaneResult]:  # fmt: skip
    """Run every lane in a process of its own at once; their results in lane order. New drive numbers follow
    ``last`` (by default the lanes' first drives, 1 ... L); a resumed pack gives out the ``free`` ones first.
    ``beside`` is called once the lanes' processes are made (it may start a thread: pack --parity's ahead.py).

    The lanes start before this process starts a thread (:func:`lane_context`: forked, when nothing else runs
    here). Then ``progress`` is started with ``total_bytes`` and the lanes' progress messages are relayed to it by a
    thread of this process: each drive being written has its own :func:`~sneakernet.progress.open_drive`, sized by
    what is left of its lane's estimated bytes (``shares``, by lane).
    """
    # multiprocessing (and its connections, subprocess, sockets) is imported by a pack of several lanes only: a
    # fifth of a one-lane pack's start-up.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = lane_context()
    counter = context.Value("q", last or len(tasks))  # numbers 1 ... L are the lanes' first drives
    free_numbers = context.Array("q", free or [], lock=False)  # guarded by the counter's lock
    given = context.Value("q", 0, lock=False)
    halt = context.RawValue("q", 0)  # the lanes' stop flag (lane.LaneHalt)
    messages = context.Queue()
    initargs = (counter, messages, os.getpid(), free_numbers, given, halt)
    pool = ProcessPoolExecutor(len(tasks), mp_context=context, initializer=init_lane_process, initargs=initargs)
    relay: threading.Thread | None = None
    try:
        # With fork, every lane's process is made at the first submit, before the pool's own thread starts.
        futures = [pool.submit(pack_lane, task) for task in tasks]
        if beside is not None:
            beside()
        progress.start(total_bytes)
        relay = threading.Thread(
            target=_relay, args=(messages, progress, shares or {}), name="sneakernet-lane-progress", daemon=True
        )
        relay.start()
        try:
            return [future.result() for future in futures]
        except BrokenProcessPool as exc:
            # The pool ends every lane's process when one dies: each drive being written stays unfinished.
            raise LaneStopped(
                "a lane's process ended abruptly (killed, or out of memory?), and with it every lane still "
                "writing: their drives are unfinished; run the same pack with --resume to complete them"
            ) from exc
    except BaseException:
        # Interrupted here (SIGTERM, Ctrl-C) or a lane's process lost: stop the lanes now rather than let them run
        # on unseen. A lane killed mid-drive leaves that drive without drive.json: unfinished, as a crash leaves it.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if relay is not None:
            messages.put(None)
            relay.join()


#: What a fork server imports once, before it forks the lanes: the caller's main module (as ``spawn`` would in
#: every lane; a script must keep its pack() under ``if __name__ == "__main__":``) and the lane's code.
FORKSERVER_PRELOAD = ["__main__", "sneakernet.packer.lane"]


def lane_context() -> Any:
    """The ``multiprocessing`` context the lanes start in.

    ``fork`` when this process runs no other thread, native ones included (Linux's /proc/self/task: the command
    line's case, whose progress and relay threads start after the lanes): a lane then starts in milliseconds, with
    nothing to import, and no lock can be held by a thread that is not copied. Else ``forkserver`` (a fresh
    interpreter started once, which imports the main module and sneakernet once and forks each lane from it), else
    ``spawn`` (an interpreter and its imports per lane: about 0.3 s of CPU a lane).
    """
    import multiprocessing  # see run_lanes

    if single_threaded():
        return multiprocessing.get_context("fork")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


def single_threaded() -> bool:
    """Whether this process runs one thread only, as the kernel counts them (False where it cannot tell)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def start_lane_server() -> None:
    """Start the fork server now, while the walk is scanned (its imports take a few tenths of a second), if the
    lanes are to start from one."""
    context = lane_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _relay(messages: Any, progress: Progress, shares: dict[int, int]) -> None:
    """Hand the lanes' messages to ``progress`` (:class:`LaneRelay`) until the queue ends."""
    relay = LaneRelay(progress, shares)
    try:
        while True:
            try:
                message = messages.get()
            except (EOFError, OSError, queue.Empty):
                return
            if message is None:
                return
            relay.tell(message)
    finally:
        relay.close()


class LaneRelay:
    """The lanes' progress messages (lane.py's QueueProgress) told to ``progress``: ``("drive", lane, label)`` as a
    lane opens a drive (its own line, the lane's previous drive done), ``("bytes", lane, n)`` as it reads; a drive's
    line is sized by what is left of its lane's estimated bytes (``shares``, by lane). Messages come from one
    thread at a time (the local relay's, or a cluster client's event loop)."""

    def __init__(self, progress: Progress, shares: dict[int, int]) -> None:
        self.progress = progress
        self.shares = shares
        self.drives: dict[int, DriveProgress] = {}
        self.done: dict[int, int] = {}
        #: The drive each lane began last (a lost lane's unfinished drive).
        self.began: dict[int, str] = {}

    def tell(self, message: tuple[str, int, Any]) -> None:
        kind, lane, value = message
        if kind == "bytes":
            self.done[lane] = self.done.get(lane, 0) + value
            drive = self.drives.get(lane)
            (drive or self.progress).advance(value)
            return
        if lane in self.drives:
            self.drives.pop(lane).close()
        self.began[lane] = value
        left = max(self.shares.get(lane, 0) - self.done.get(lane, 0), 0)
        self.drives[lane] = open_drive(self.progress, value, left)

    def close(self) -> None:
        for drive in self.drives.values():
            drive.close()
        self.drives = {}


def merge_lanes(results: list[LaneResult]) -> LanesOutcome:
    """The lanes' results as one shipment's: raises the first failed lane's error once every lane has ended (after
    logging each failure; a lane halted by another's failure, lane.LaneHalt, is not the one told); else every
    drive in number order, which must be 1 ... K without gaps."""
    failed = [result for result in results if result.error is not None]
    for result in failed:
        assert result.error is not None
        log.error("lane %d stopped: %s", result.lane, result.error.message)
    if failed:
        first = next((r for r in failed if r.error is not None and not r.error.halted), failed[0])
        assert first.error is not None
        error = first.error.error()
        finished = [r.lane for r in results if r.error is None]
        # Lanes halted mid-way by the first's failure (lane.LaneHalt) wrote on too, up to then.
        wrote = finished or [r.lane for r in failed if r is not first and r.error and r.error.halted]
        if finished or len(failed) > 1:
            done = ", ".join(map(str, finished)) or "none"
            stopped = ", ".join(str(r.lane) for r in failed)
            message = f"{first.error.message} (lanes stopped: {stopped}; lanes that finished: {done})"
            # Exit code 2 says nothing was written: here the other lanes wrote drives (exit 1, LaneStopped).
            kind = LaneStopped if error.exit_code == ExitCode.USAGE and wrote else type(error)
            error = kind(message)
        raise error
    drives = sorted((drive for result in results for drive in result.drives), key=lambda d: d.drive_label.drive)
    labels = [drive.drive_label for drive in drives]
    numbers = [label.drive for label in labels]
    if numbers != list(range(1, len(labels) + 1)):
        raise numbering_gap(numbers)
    tally = ReadTally()
    for result in results:
        _add_tally(tally, result.tally)
    return LanesOutcome(
        drives=drives,
        labels=labels,
        tally=tally,
        chunks=sum(r.chunks for r in results),
        stored_raw_bytes=sum(r.stored_raw_bytes for r in results),
        lanes=len(results),
    )


def numbering_gap(numbers: list[int]) -> LaneStopped:
    """The error of lanes that finished their drives numbered ``numbers`` with a gap (docs/format.md 19.3: 1 ... K).

    A resumed pack gives the numbers its interrupted run gave out to drives that kept nothing to its lanes first;
    a lane that no longer needs them (the drives or the source are not as they were: larger drives, files gone)
    leaves one unused below a kept drive's. Every drive is finished, but the catalog cannot be written over a gap:
    said in one line (it was an AssertionError)."""
    missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
    shown = ", ".join(map(str, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return LaneStopped(
        f"the lanes finished their drives but left drive number {shown} unused (the resumed pack needed fewer "
        "drives than the interrupted one had begun: other drives or another source?), so no catalog was written: "
        "resume with the drives and source of the interrupted pack, or empty the drives and pack again"
    )


def _add_tally(total: ReadTally, lane: ReadTally) -> None:
    for name in ("files", "dirs", "symlinks", "hardlinks", "raw_bytes", "skipped_count", "changed_count"):
        setattr(total, name, getattr(total, name) + getattr(lane, name))
    total.skipped = (total.skipped + lane.skipped)[:LISTED_PATHS]
    total.changed = (total.changed + lane.changed)[:LISTED_PATHS]


def merge_entries(outcome: LanesOutcome, entries_files: dict[int, str], merged: BinaryIO) -> None:
    """The catalog's entry lines of every drive, in drive number order (docs/format.md 19.5), copied into
    ``merged`` from each lane's file (``entries_files``, by lane) a drive's range at a time: memory does not grow
    with the shipment."""
    for drive, label in zip(outcome.drives, outcome.labels, strict=True):
        assert label.lane is not None
        start, end = drive.entries
        with open(entries_files[label.lane], "rb") as lines:
            lines.seek(start)
            left = end - start
            while left > 0:
                block = lines.read(min(left, 1 << 20))
                if not block:
                    raise AssertionError(f"lane {label.lane}'s entries end before drive {label.drive}'s range")
                merged.write(block)
                left -= len(block)


def catalog_header(shipment: str, fingerprint: str, created: str, outcome: LanesOutcome) -> CatalogHeader:
    """The version 2 catalog's header: shipment, fingerprint, created, tool (its counts are the summary's)."""
    tally = outcome.tally
    return CatalogHeader(
        shipment=shipment,
        drives=len(outcome.labels),
        fingerprint=fingerprint,
        created=created,
        tool=f"sneakernet {__version__}",
        files=tally.files,
        raw_bytes=tally.raw_bytes,
        stored_bytes=sum(label.stored_bytes for label in outcome.labels),
        version=FORMAT_VERSION_2,
        lanes=outcome.lanes,
    )


def lane_options(options: PackOptions, lanes: int) -> PackOptions:
    """A lane's options: unless told how many threads to encode on, each lane takes its share of the cores."""
    if options.threads:
        return options
    return replace(options, threads=max(1, (os.cpu_count() or 1) // lanes))


#: Lanes up to which each keeps a pack alone's chunks in flight (its workers + 2, as many read ahead) and its heap
#: of freed chunk buffers (allocator.keep_freed_buffers); with more, each keeps its workers + 1, reads one ahead
#: and gives freed buffers back (allocator.give_back_freed_buffers). Measured, 400 MB onto 10 drives at once in a
#: tmpfs, 4 MiB chunks: the processes' PSS summed at its peak 470 MB with neither, 285 MB with both.
FULL_PIPELINE_LANES = 2


def lane_in_flight(lanes: int, workers: int) -> int | None:
    """The chunks a lane keeps in flight (None: as a pack alone) when ``lanes`` lanes of ``workers`` run at once."""
    return None if lanes <= FULL_PIPELINE_LANES else workers + 1


def lane_tasks(
    ranges: list[LaneRange], spool: str, source: str, options: PackOptions, drives: LaneDrives, shipment: str,
    created: str, catalog_size: int, work_dir: str, open_store: Callable[[str], DriveStore] = LocalStore,
    parity: AccumulatorSpec | None = None,
) -> list[LaneTask]:  # fmt: skip
    """One task per lane; each lane's catalog entry lines go to ``work_dir/lane-N.entries``."""
    per_lane = lane_options(options, len(ranges))
    in_flight = lane_in_flight(len(ranges), per_lane.workers)

    def task(r: LaneRange) -> LaneTask:
        return LaneTask(
            lane=r.lane, start=r.start, stop=r.stop, spool=spool, source=source, options=per_lane, drives=drives,
            shipment=shipment, created=created, catalog_size=catalog_size,
            entries_path=os.path.join(work_dir, f"lane-{r.lane}.entries"), open_store=open_store, parity=parity,
            in_flight=in_flight,
        )  # fmt: skip

    return [task(r) for r in ranges]


class LaneRunner(Protocol):
    """Where the lanes run: processes of this host (:class:`LocalLanes`), or tasks on a Dask cluster
    (packer/cluster.py). ``run`` runs every lane at once, their results in lane order, and starts ``progress`` with
    ``total_bytes`` once they are under way (``shares``: each lane's estimated bytes, by lane); ``finish`` writes
    the merged catalog (``header``, the lanes' entry lines ``merged``) to every drive, and to ``copy_to`` when
    given."""

    def run(
        self, tasks: list[LaneTask], progress: Progress, total_bytes: int = 0, shares: dict[int, int] | None = None
    ) -> list[LaneResult]: ...

    def finish(
        self, lanes: Lanes, outcome: LanesOutcome, header: CatalogHeader, merged: BinaryIO, copy_to: str | None
    ) -> None: ...

    def resumed(self, last: int, free: list[int]) -> LaneRunner:
        """This runner for a resumed pack: new drive numbers after ``last``, the ``free`` ones first."""
        ...


class LocalLanes:
    """Each lane in a process of this host (:func:`run_lanes`), the catalog written by this process; new drive
    numbers after ``last``, the ``free`` ones first (a resumed pack's, see :func:`run_lanes`)."""

    def __init__(self, last: int | None = None, free: list[int] | None = None) -> None:
        self.last = last
        self.free = free

    def run(
        self, tasks: list[LaneTask], progress: Progress, total_bytes: int = 0, shares: dict[int, int] | None = None,
        beside: Callable[[], None] | None = None,
    ) -> list[LaneResult]:  # fmt: skip
        return run_lanes(tasks, progress, self.last, self.free, total_bytes, shares, beside)

    def resumed(self, last: int, free: list[int]) -> LocalLanes:
        return LocalLanes(last, free)

    def finish(
        self, lanes: Lanes, outcome: LanesOutcome, header: CatalogHeader, merged: BinaryIO, copy_to: str | None
    ) -> None:
        stores = [lanes.open_store(drive.path) for drive in outcome.drives]
        checksums = [drive.checksums for drive in outcome.drives]
        finish_shipment(stores, outcome.labels, checksums, header, lanes.catalog_size, merged)
        if copy_to:
            copy_catalog(stores[-1], copy_to)


@dataclass(frozen=True)
class Lanes:
    """A pack onto several drives at once, as pack() has set it up: the source, the walk's spool (a file the
    lanes read), the work directory, the drives, the options, the lanes cut, the shipment's identity and the
    catalog's reservation."""

    source: LocalSource
    spool: str
    work: str
    targets: DriveTargets
    options: PackOptions
    ranges: list[LaneRange]
    shipment: str
    created: str
    catalog_size: int
    open_store: Callable[[str], DriveStore] = LocalStore
    #: pack --parity: the parity accumulated by the lanes as they write, then written to the parity drives.
    parity: SamePassParity | None = None
    runner: LaneRunner = field(default_factory=LocalLanes)
    #: A resumed pack: the drives the interrupted one left, by lane (lane_resume.py).
    found: LanesFound | None = None
    #: An encrypted pack (docs/format.md 19.8): the shipment's identity and key files, the same on every lane's
    #: drives; each lane draws its own segment keys.
    sealing: ShipmentSealing | None = None

    def tasks(self) -> list[LaneTask]:
        targets = self.targets
        drives = LaneDrives(targets.out, tuple(targets.drives), targets.drive_size, targets.reserve)
        tasks = lane_tasks(
            self.ranges, self.spool, os.fsdecode(self.source.root), self.options, drives, self.shipment,
            self.created, self.catalog_size, self.work, self.open_store,
            self.parity.lane_spec if self.parity is not None else None,
        )  # fmt: skip
        if self.sealing is not None:
            spec = self.sealing.spec()
            tasks = [replace(task, sealing=spec) for task in tasks]
        if self.found is None:
            return tasks
        return [replace(task, resume=self.found.lanes.get(task.lane, LaneResume())) for task in tasks]


def pack_in_lanes(
    lanes: Lanes, totals: ScanTotals, progress: Progress, catalog_dir: str | None, started: float,
    restore_record_left_out: bool,
) -> PackSummary:  # fmt: skip
    """Pack ``lanes`` at once, then write the merged version 2 catalog to every drive (and to ``catalog_dir``)."""
    tasks = lanes.tasks()
    log.info("packing %d lanes at once: %s", len(tasks), ", ".join(f"{t.stop - t.start} entries" for t in tasks))
    found = lanes.found
    shares = {r.lane: r.weight for r in lanes.ranges}
    runner = lanes.runner
    if found is not None:
        runner = runner.resumed(found.last, found.free)  # the numbers a resumed pack gives out
    # pack --parity onto drives written at once: the parity drives written as the lanes go (ahead.py).
    parity = lanes.parity
    local = isinstance(runner, LocalLanes)
    ahead = ParityAhead(parity, len(tasks)) if parity and local and ParityAhead.fits(parity, len(tasks)) else None
    try:
        if ahead is not None:
            assert isinstance(runner, LocalLanes)
            results = runner.run(tasks, progress, totals.unique_bytes, shares, beside=ahead.start)
        else:
            results = runner.run(tasks, progress, totals.unique_bytes, shares)
    except BaseException:
        if ahead is not None:
            ahead.abort()
        raise
    finally:
        progress.close()
    written_ahead = ahead.stop() if ahead is not None else None
    outcome = merge_lanes(results)
    resumed = ResumeTally()
    for result in results:
        resumed.add(result.resumed)
    catalog_copy = os.path.join(catalog_dir, f"{lanes.shipment}.catalog.jsonl.zst") if catalog_dir else None
    with tempfile.TemporaryFile(prefix="sneakernet-catalog-", dir=lanes.work) as merged:
        merge_entries(outcome, {t.lane: t.entries_path for t in tasks}, merged)
        header = catalog_header(lanes.shipment, "", lanes.created, outcome)
        if lanes.sealing is not None:
            header = _finish_sealed(lanes, outcome, header, merged, catalog_copy)
        else:
            # The fingerprint of version 2 is the catalog body's (docs/format.md 19.6), hashed before it is written.
            header = replace(header, fingerprint=body_fingerprint(catalog_body(header, outcome.labels, merged)))
            lanes.runner.finish(lanes, outcome, header, merged, catalog_copy)
        fingerprint = header.fingerprint
    drives = [d.path for d in outcome.drives]
    parity_results = finish_parity(parity, drives, lanes.created, ahead=written_ahead) if parity else []
    tally = outcome.tally
    return PackSummary(
        shipment=lanes.shipment,
        fingerprint=fingerprint,
        drives=[_drive_summary(drive, label) for drive, label in zip(outcome.drives, outcome.labels, strict=True)],
        files=tally.files,
        dirs=tally.dirs,
        symlinks=tally.symlinks,
        hardlinks=tally.hardlinks,
        raw_bytes=tally.raw_bytes,
        stored_bytes=header.stored_bytes,
        stored_raw_bytes=outcome.stored_raw_bytes,
        chunks=outcome.chunks,
        excluded_entries=totals.excluded_entries,
        excluded_bytes=totals.excluded_bytes,
        skipped=tally.skipped,
        skipped_count=tally.skipped_count,
        changed=tally.changed,
        changed_count=tally.changed_count,
        seconds=time.monotonic() - started,
        catalog_copy=catalog_copy,
        restore_record_left_out=restore_record_left_out,
        lanes=outcome.lanes,
        parity_drives=[result.to_json() for result in parity_results],
        resumed_drives=resumed.finished_drives,
        continued_drives=resumed.continued_drives,
        kept_segments=resumed.kept_segments,
        kept_bytes=resumed.finished_bytes + resumed.kept_bytes,
        kept_unfinished_bytes=resumed.kept_bytes,
        rewritten_bytes=resumed.rewritten_bytes,
    )


def _finish_sealed(
    lanes: Lanes, outcome: LanesOutcome, header: CatalogHeader, merged: BinaryIO, copy_to: str | None
) -> CatalogHeader:
    """An encrypted shipment's catalogs (the sealed one and the public one that pins it) on every drive, and in
    ``copy_to`` with its ``.age`` beside; the header with the fingerprint of the public catalog's body."""
    from ..drive.sealed_catalog import finish_sealed_shipment  # the crypt extra, for an encrypted pack only

    assert lanes.sealing is not None
    stores = [lanes.open_store(drive.path) for drive in outcome.drives]
    checksums = [drive.checksums for drive in outcome.drives]
    header = finish_sealed_shipment(stores, outcome.labels, checksums, header, lanes.sealing.keys.identity, merged)
    if copy_to:
        copy_catalog(stores[-1], copy_to)
    return header


def _drive_summary(drive: LaneDrive, label: DriveLabel) -> dict[str, Any]:
    return {
        "drive": label.drive,
        "label": label.label,
        "lane": label.lane,
        "lane_seq": label.lane_seq,
        "path": drive.path,
        "segments": label.segments,
        "stored_bytes": label.stored_bytes,
        "raw_bytes": label.raw_bytes,
        "manifest_blake3": label.manifest_blake3,
        "size": drive.size,
        **drive_rate(label.stored_bytes, drive.seconds),
    }


def drive_rate(stored_bytes: int, seconds: float | None) -> dict[str, Any]:
    """A drive's ``seconds`` (from its first byte to its label, None for a drive this run did not write) and its
    write rate, ``bytes_per_second`` (stored bytes over those seconds)."""
    rate = round(stored_bytes / seconds) if seconds else None
    return {"seconds": round(seconds, 3) if seconds is not None else None, "bytes_per_second": rate}


__all__ = [
    "LaneRunner",
    "Lanes",
    "LanesOutcome",
    "LocalLanes",
    "cut_walk",
    "merge_entries",
    "merge_lanes",
    "pack_in_lanes",
    "run_lanes",
]
