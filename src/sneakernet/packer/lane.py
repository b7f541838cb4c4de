"""One lane of a pack, end to end, in a process of its own: :func:`pack_lane` (docs/format.md 19.3-19.4).

A lane is a contiguous run of the walk's entries written onto its own drives, one after another, by its own
pipeline and writer. Lanes run in processes, not threads, so that a lane's per-file work (opening, reading and
hashing small files, building records) does not share one interpreter lock with the others. Everything that
crosses the process boundary is plain data: a :class:`LaneTask` in, a :class:`LaneResult` out. The one thing the
lanes share while they run is the count of drive numbers, held by the coordinating process (:class:`DriveNumbers`),
and the progress they report through a queue.

A lane that fails (an I/O error, a full drive) stops alone: its error comes back in its result, as plain data, and
the other lanes go on.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import errors
from ..allocator import give_back_freed_buffers
from ..chunks.codec import ChunkCodec
from ..drive.parity.accumulator import AccumulatorSpec, ParityAccumulator
from ..errors import DestinationError, SneakernetError
from ..format import DriveLabel, drive_label
from ..io.source import KIND_FILE, LocalSource, SourceEntry, Unreadable
from ..io.store import DriveStore, LocalStore
from ..options import PackOptions
from ..progress import NullProgress, Progress
from ..scan import read_spool
from ..space.budget import default_reserve
from .lane_resume import LaneResume, ResumeTally, take_over_lane
from .pipeline import run_pipeline
from .resume import Replayed
from .shipment import Lane, ShipmentWriter
from .summary import ReadTally
from .targets import DriveSlot

if TYPE_CHECKING:  # the crypt extra, for an encrypted pack only
    from ..drive.sealed import SealingSpec


@dataclass(frozen=True)
class LaneDrives:
    """Where a shipment's drives go, as plain data for a lane's process: ``OUT/drive-NNNN`` of ``drive_size`` (the
    ``out`` form), or the mounted ``drives``, drive number *n* on ``drives[n - 1]`` (19.3: drives given up front are
    numbered in the order given)."""

    out: str | None
    drives: tuple[str, ...]
    drive_size: int | None
    reserve: int | None

    def slot(self, index: int, kept: int = 0) -> DriveSlot | None:
        """Drive number ``index``'s place and room (``kept`` bytes already on it count as room: a resumed pack's
        kept segments); None when the given drives are used up."""
        if self.out:
            assert self.drive_size is not None
            size = self.drive_size
            return DriveSlot(index, os.path.join(self.out, drive_label(index)), size - self._reserve(size), size)
        if index > len(self.drives):
            return None
        path = self.drives[index - 1]
        free = shutil.disk_usage(path).free + kept
        size = min(free, self.drive_size) if self.drive_size else free
        return DriveSlot(index, path, size - self._reserve(size), size)

    def path(self, index: int) -> str:
        """Where drive number ``index`` is."""
        return os.path.join(self.out, drive_label(index)) if self.out else self.drives[index - 1]

    def _reserve(self, size: int) -> int:
        return self.reserve if self.reserve is not None else default_reserve(size)


@dataclass(frozen=True)
class LaneTask:
    """What one lane's process is given: the lane, its entries (``start`` ... ``stop - 1`` of the walk spooled at
    ``spool``), the source's root, the options, the drives, the shipment's identity, the catalog's reservation, and
    the file its catalog entry lines go to."""

    lane: int
    start: int
    stop: int
    spool: str
    source: str
    options: PackOptions
    drives: LaneDrives
    shipment: str
    created: str
    catalog_size: int
    entries_path: str
    #: How each drive directory is opened for writing (a class or function a lane's process can import).
    open_store: Callable[[str], DriveStore] = LocalStore
    #: pack --parity: where the lanes add their drives' stored bytes into the parity rows (drive/parity/accumulator.py).
    parity: AccumulatorSpec | None = None
    #: A resumed pack: the drives of this lane the interrupted one left (lane_resume.py).
    resume: LaneResume | None = None
    #: Chunks the lane's pipeline keeps in flight, fewer than a pack alone's when many lanes share the memory
    #: (coordinator.lane_in_flight); None: a pack alone's.
    in_flight: int | None = None
    #: An encrypted shipment (docs/format.md 19.8): its identity and key files, which every lane writes the same.
    sealing: SealingSpec | None = None


@dataclass(frozen=True)
class LaneDrive:
    """One drive a lane finished: its label (drive.json's fields), path, B3SUMS entries, size before the reserve,
    where its catalog entry lines lie in the lane's entries file, and the seconds it was being written."""

    label: dict[str, Any]
    path: str
    checksums: list[tuple[str, str]]
    size: int | None
    entries: tuple[int, int]
    seconds: float | None = None

    @property
    def drive_label(self) -> DriveLabel:
        # A label this sneakernet has just written, read back: both versions are accepted.
        return DriveLabel.from_json(self.label, versions=(1, 2))


@dataclass(frozen=True)
class LaneError:
    """Why a lane stopped: the error's class name in :mod:`sneakernet.errors`, and its message; ``halted`` when it
    stopped only because another lane's failure dooms the shipment (:class:`LaneHalt`)."""

    kind: str
    message: str
    halted: bool = False

    def error(self) -> SneakernetError:
        """The error again, of its class (a :class:`SneakernetError` whose class is not known: the root)."""
        cls = getattr(errors, self.kind, SneakernetError)
        if not (isinstance(cls, type) and issubclass(cls, SneakernetError)):
            cls = SneakernetError
        return cls(self.message)


@dataclass
class LaneResult:
    """What a lane did: its finished drives in order, what its reader counted, its chunks, the stored-as-is raw
    bytes; ``error`` when it stopped early (its drives so far are finished, the one it was writing is not)."""

    lane: int
    drives: list[LaneDrive] = field(default_factory=list)
    tally: ReadTally = field(default_factory=ReadTally)
    chunks: int = 0
    stored_raw_bytes: int = 0
    error: LaneError | None = None
    #: What a resumed lane kept of the interrupted pack's drives and wrote again.
    resumed: ResumeTally = field(default_factory=ResumeTally)


class DriveNumbers:
    """The count of data drive numbers, kept by the coordinating process and shared by the lanes' processes
    (docs/format.md 19.3): lane *i*'s first drive is drive *i*, every later drive takes the next free number when
    it is opened. ``counter`` is a ``multiprocessing`` integer with a lock, made by the coordinator; a resumed pack
    gives out first the numbers of ``free`` (a ``multiprocessing`` array: numbers an interrupted pack gave out to
    drives that hold nothing kept), ``given`` counting those taken, so that the drives end up numbered 1 ... K."""

    def __init__(self, counter: Any, free: Any = None, given: Any = None) -> None:
        self.counter = counter
        self.free = free
        self.given = given

    def take(self) -> int:
        with self.counter.get_lock():
            if self.free is not None and self.given is not None and self.given.value < len(self.free):
                self.given.value += 1
                return int(self.free[self.given.value - 1])
            self.counter.value += 1
            return int(self.counter.value)


class LaneHalt:
    """The lanes' shared stop flag: a byte of shared memory (a ``multiprocessing`` RawValue made by the
    coordinator), 0 until a lane whose failure dooms the whole shipment (the source changed, :func:`dooms_all`)
    writes its number there. Every lane looks at it as it reads (:class:`QueueProgress`, at each file and chunk:
    a read of shared memory, no lock) and stops at once: the others no longer write on, for minutes, drives that
    can never be part of a shipment."""

    def __init__(self, flag: Any) -> None:
        self.flag = flag

    def set(self, lane: int) -> None:
        self.flag.value = lane

    def check(self) -> None:
        if self.flag.value:
            raise LaneHalted(f"stopped: lane {self.flag.value} failed")


class LaneHalted(errors.LaneStopped):
    """A lane stopped by :class:`LaneHalt`: another lane's error is the one to tell."""


def dooms_all(exc: BaseException) -> bool:
    """Whether a lane's failure stops every lane: a source error (the source is every lane's; on resume, "the
    source changed since the interrupted pack"). A drive's failure (I/O error, full) stops its lane alone."""
    return isinstance(exc, errors.SourceError)


class QueueProgress:
    """A lane's progress, sent to the coordinating process through ``queue``: bytes in batches of at least
    :data:`PROGRESS_BATCH` (a message per small file would cost more than the file), and the drive begun; at every
    call, the lanes' stop flag looked at (``halt``, :class:`LaneHalt`)."""

    def __init__(self, queue: Any, lane: int, halt: LaneHalt | None = None) -> None:
        self.queue = queue
        self.lane = lane
        self._pending = 0
        self.halt = halt

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        if self.halt is not None:
            self.halt.check()
        self._pending += done_bytes
        if self._pending >= PROGRESS_BATCH:
            self.queue.put(("bytes", self.lane, self._pending))
            self._pending = 0

    def drive(self, label: str) -> None:
        if self.halt is not None:
            self.halt.check()
        self.queue.put(("drive", self.lane, label))

    def close(self) -> None:
        if self._pending:
            self.queue.put(("bytes", self.lane, self._pending))
            self._pending = 0


#: Bytes a lane reads between two progress messages: 4 MiB, a chunk.
PROGRESS_BATCH = 4 * 2**20

# Set in each lane's process by :func:`init_lane_process` (a pool's initializer: what a process inherits).
_numbers: DriveNumbers | None = None
_queue: Any = None
_halt: LaneHalt | None = None


def init_lane_process(
    counter: Any, queue: Any, coordinator: int | None = None, free: Any = None, given: Any = None, halt: Any = None
) -> None:
    """A lane process's start: the shared drive numbers (:class:`DriveNumbers`), the progress queue and the lanes'
    stop flag (``halt``, :class:`LaneHalt`); and it dies with the coordinating process ``coordinator`` (a pack
    killed with SIGKILL must not leave lanes writing on unseen)."""
    global _numbers, _queue, _halt
    quiet_lane_signals()
    _die_with_parent(coordinator)
    _numbers, _queue = DriveNumbers(counter, free, given), queue
    _halt = LaneHalt(halt) if halt is not None else None


def quiet_lane_signals() -> None:
    """A lane's process ends on SIGTERM without a word and leaves Ctrl-C to the coordinating process.

    A forked lane inherits the command line's SIGTERM handler, which raises in Python: a lane ended by the pool
    (another lane lost) or by a stray kill printed multiprocessing's traceback of it on stderr, and the pack ended
    as "terminated" rather than with its one line. With the default action the process just ends, its drive left
    unfinished as a crash leaves it, and the coordinator says so once (LaneStopped). Ctrl-C reaches every process
    of the terminal's group: the coordinator stops the lanes itself (run_lanes), so a lane ignores SIGINT rather
    than print a KeyboardInterrupt of its own."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: prctl's option to get a signal when the parent ends (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _die_with_parent(coordinator: int | None) -> None:
    """Have the kernel kill this process when its parent ends (Linux; elsewhere nothing is done), and end now if
    the parent or the coordinating process ``coordinator`` is already gone.

    The parent is the coordinator itself (``spawn``) or the fork server it started (``forkserver``), which ends
    when the coordinator does: either way the lane dies with the pack."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if coordinator is not None and (os.getppid() != parent or not _alive(coordinator)):
        os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def lane_entries(
    entries: Iterator[SourceEntry | Unreadable], start: int, stop: int, hardlinks: dict[tuple[int, int], bytes]
) -> Iterator[SourceEntry | Unreadable]:
    """The entries ``start`` ... ``stop - 1`` of the walk; while passing the ones before, the first name of each
    hard-linked file among them goes into ``hardlinks``, so that a further name in this lane becomes a link to it
    (19.4: a hard link's target is the file's first name in walk order, which may lie in another lane)."""
    for index, entry in enumerate(entries):
        if index >= stop:
            return
        if index >= start:
            yield entry
        elif isinstance(entry, SourceEntry) and entry.kind == KIND_FILE and entry.nlink > 1:
            hardlinks.setdefault((entry.dev, entry.ino), entry.path)


def pack_lane(task: LaneTask) -> LaneResult:
    """Pack lane ``task.lane`` onto its drives (run in a lane's process, after :func:`init_lane_process`; called
    directly with a single process, it takes drive numbers from ``numbers``)."""
    assert _numbers is not None, "init_lane_process first"
    progress: Progress = QueueProgress(_queue, task.lane, _halt) if _queue is not None else NullProgress()
    return run_lane(task, _numbers, progress, _halt)


def run_lane(task: LaneTask, numbers: DriveNumbers, progress: Progress, halt: LaneHalt | None = None) -> LaneResult:
    """One lane end to end, in this process: what :func:`pack_lane` runs. A failure that dooms every lane
    (:func:`dooms_all`) sets ``halt``, the lanes' stop flag."""
    result = LaneResult(task.lane)
    if task.in_flight is not None:
        # One of many lanes: no heap of freed chunk buffers kept in each (a forked lane inherits the command
        # line's keep_freed_buffers).
        give_back_freed_buffers()
    options = task.options
    with open(task.entries_path, "w+b") as lines:
        writer = ShipmentWriter(
            task.drives, options, task.catalog_size, task.shipment, task.created, task.open_store,
            lane=Lane(task.lane, numbers.take), catalog_lines=lines,
        )  # fmt: skip
        writer.progress = progress
        writer.parity = ParityAccumulator(task.parity) if task.parity is not None else None
        # Each lane draws its own segment keys (fresh random ones, one per segment file it opens).
        writer.sealing = task.sealing.sealing(options.level) if task.sealing is not None else None
        codec = ChunkCodec(options.level, writer.sealing.cipher) if writer.sealing is not None else None
        hardlinks: dict[tuple[int, int], bytes] = {}
        entries = lane_entries(read_spool(task.spool), task.start, task.stop, hardlinks)
        try:
            replayed = _take_over(task, writer, result) if task.resume is not None else None
            result.tally, result.chunks = run_pipeline(
                LocalSource(task.source), entries, writer, options, progress, replayed, hardlinks=hardlinks,
                codec=codec, in_flight=task.in_flight,
            )  # fmt: skip
            writer.finish()
        except (SneakernetError, OSError) as exc:
            writer.abort()
            if halt is not None and dooms_all(exc):
                halt.set(task.lane)
            result.error = _lane_error(exc)
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.close()
            if writer.parity is not None:
                writer.parity.close()
        result.stored_raw_bytes = writer.stored_raw_bytes
        for label, sums in zip(writer.labels, writer.checksums, strict=True):
            path, size = task.drives.path(label.drive), writer.sizes.get(label.drive)
            lines_at = writer.entry_ranges.get(label.drive, (0, 0))  # none when a resumed lane failed taking it over
            seconds = writer.seconds.get(label.drive)
            result.drives.append(LaneDrive(label.to_json(), path, sums, size, lines_at, seconds))
    return result


def _take_over(task: LaneTask, writer: ShipmentWriter, result: LaneResult) -> Iterator[Replayed]:
    """A resumed lane's drives checked and taken over by its writer: the records to replay."""
    assert task.resume is not None
    key = writer.sealing.keys.identity if writer.sealing is not None else None
    taken = take_over_lane(
        task.resume, task.lane, task.shipment, task.options, task.open_store, task.entries_path + ".kept", key
    )
    result.resumed = taken.tally
    return writer.take_over(taken.finished, taken.kept, taken.next_number)


def _lane_error(exc: SneakernetError | OSError) -> LaneError:
    if isinstance(exc, LaneHalted):
        return LaneError(errors.LaneStopped.__name__, str(exc), halted=True)
    if isinstance(exc, SneakernetError):
        return LaneError(type(exc).__name__, str(exc))
    # An OSError the drive's writer did not name (it names its own): said as a destination's failure.
    return LaneError(DestinationError.__name__, f"lane failed: {exc.strerror or exc}")


__all__ = ["DriveNumbers", "LaneDrives", "LaneResult", "LaneTask", "pack_lane", "run_lane"]
