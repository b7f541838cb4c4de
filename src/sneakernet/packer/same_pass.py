"""pack --parity M: parity computed in the same pass as the data drives (docs/format.md 19.10).

While pack writes the data drives (one after another, or several at once in lanes), every stored byte is added into
M parity rows in a local work directory (drive/parity/accumulator.py); no data drive is read again. Once every data
drive and the catalog are written, each parity drive is written from its row by the writer ``sneakernet parity`` uses
(packer/parity.py's group pass), reading of the data drives only their drive.json and manifest (the ``covered/``
copies), so that the parity drives are byte-identical to what ``sneakernet parity`` writes for the same data drives
(with the same creation time: pack gives its parity drives the shipment's).

The catalog gets no ``parity`` records: it is written before the parity drives are, as when parity is added after
the shipment left (19.5, 19.7.7), and every parity drive carries a copy of it.

Parity is computed again from the data drives, as ``sneakernet parity`` does, where the rows cannot be trusted or do
not fit one group: a resumed pack (what a stopped pack had added is unknown), or more than 251 data drives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..drive.catalog import copy_catalog
from ..drive.parity.accumulator import AccumulatorSpec, ParityAccumulator, empty_rows, remove_rows
from ..drive.parity.writer import ParityDriveWriter
from ..errors import DestinationError, UsageError
from ..format import CATALOG_NAME, DRIVE_LABEL_NAME, INDEX_NAME, MANIFEST_NAME, parity_label
from ..format.parity import COVERED_DIR
from ..io.atomic import copy_atomic
from ..io.store import DriveStore
from ..parity.engine import ParityCode, load_backend
from ..parity.layout import stripe_count
from ..parity.matrix import MAX_COLUMNS
from ..progress import NullProgress, Progress
from .parity import (
    ParityDriveResult,
    ParityOptions,
    _catalog_on,
    _check_catalog,
    _data_drives,
    _finished,
    _Group,
    _parity_paths,
    add_parity,
)
from .targets import DriveTargets

#: Where parity accumulates by default with --out: a directory of the output, removed once the parity drives are
#: written.
OUT_WORK_DIR = ".parity-accumulating"


@dataclass(frozen=True)
class SamePassParity:
    """pack --parity's parity drives as set up before packing: the rows' work directory, the parity drives (paths
    in row order, and which a resumed pack finished), how they are written."""

    spec: AccumulatorSpec
    targets: tuple[str, ...]
    finished: tuple[bool, ...]
    options: ParityOptions
    #: With --out, the output directory: parity drives beyond one group's go there too (OUT/parity-NNNN).
    out: str | None = None
    #: A resumed pack: rows from before the stop are not trusted; parity is computed from the drives at the end.
    recompute: bool = False
    #: One dock (--swap): the parity drives go in one after another at the data drives' mount point, and the
    #: data drives' drive.json and manifest are kept in the work directory as each is finished.
    swap: bool = False

    @property
    def lane_spec(self) -> AccumulatorSpec | None:
        """What the data drives' writers add into (None: nothing, the parity is computed at the end)."""
        return None if self.recompute else self.spec

    def accumulator(self) -> ParityAccumulator | None:
        spec = self.lane_spec
        return ParityAccumulator(spec) if spec is not None else None


def prepare_parity(
    parity: int | ParityOptions,
    *,
    out: str | None,
    parity_drives: Sequence[str],
    parity_dir: str | None,
    segment_size: int,
    resume: bool,
    swap: str | None,
) -> SamePassParity | None:
    """Check pack's parity options and the parity drives before anything is written; None without parity.

    ``parity`` is M (parity segments of pack's ``segment_size``) or the options of ``sneakernet parity``. With --out
    the parity drives are OUT/parity-NNNN and the rows accumulate in OUT/.parity-accumulating (or ``parity_dir``);
    with --drive they are ``parity_drives`` (M mounted, empty drives) and the rows accumulate in ``parity_dir``, a
    local directory with room for M times a data drive's stored bytes. With ``swap`` (the one mount point of a
    --swap pack) they are swapped in there after the last data drive, and ``parity_dir`` also keeps each data
    drive's drive.json and manifest as it is finished (the parity drives' ``covered/`` copies)."""
    if not parity:
        if parity_drives or parity_dir:
            raise UsageError("--parity-drive and --parity-dir go with --parity M")
        return None
    if isinstance(parity, ParityOptions):
        options = dataclasses.replace(parity, resume=resume)
    else:
        options = ParityOptions(parity=parity, segment_size=segment_size, resume=resume)
        if segment_size % options.block_size:
            raise UsageError(
                f"with --parity, --segment-size must be a multiple of the {options.block_size >> 20}MiB parity "
                "block (the parity drives' segments are that size too)"
            )
    options.check()
    if options.group_size != MAX_COLUMNS:
        raise UsageError(
            "pack --parity puts the data drives in groups of 251: add smaller groups with sneakernet parity"
        )
    m = options.parity
    if swap is not None:
        if parity_drives or parity_dir is None:
            raise UsageError(
                "pack --parity --swap needs --parity-dir DIR, a local directory with room for M times a drive's stored "
                "bytes (the parity drives are swapped in at the same mount point after the data drives: no "
                "--parity-drive)"
            )
        targets = [swap] * m
        work = parity_dir
    elif out is not None:
        if parity_drives:
            raise UsageError("with --out the parity drives are OUT/parity-NNNN: --parity-drive goes with --drive")
        targets = _parity_paths(out, (), m)
        work = parity_dir or os.path.join(out, OUT_WORK_DIR)
    else:
        if parity_dir is None:
            raise UsageError(
                "pack --parity onto --drive needs --parity-dir DIR, a local directory with room for M times a drive's "
                "stored bytes, where the parity accumulates before it is written to the parity drives"
            )
        targets = _parity_paths(None, parity_drives, m)
        work = parity_dir
    finished = tuple(False for _ in targets) if swap else tuple(_finished(path, resume) for path in targets)
    spec = AccumulatorSpec(work, m, options.block_size)
    if not resume:
        _empty_rows(spec)
    return SamePassParity(spec, tuple(targets), finished, options, out, recompute=resume, swap=swap is not None)


def _empty_rows(spec: AccumulatorSpec) -> None:
    try:
        empty_rows(spec)
    except OSError as exc:
        raise DestinationError(f"cannot make the parity work directory {spec.path}: {exc.strerror}") from exc


#: Asked for the next parity drive at a swapping pack's mount point: ``(label, problem with what is mounted or
#: None)``; returns once an empty drive is there, or raises to stop.
NextParityDrive = Callable[[str, "str | None"], None]


def finish_parity(
    parity: SamePassParity,
    data_drives: Sequence[str],
    created: str,
    progress: Progress | None = None,
    catalog: str | None = None,
    next_drive: NextParityDrive | None = None,
    ahead: Sequence[ParityDriveWriter] | None = None,
) -> list[ParityDriveResult]:
    """Write the parity drives once every data drive and the catalog are: from the accumulated rows, sealed first
    (each block's BLAKE3 kept, each block written checked against it), or (a resumed pack, more than one group)
    computed from the data drives as ``sneakernet parity`` does. ``catalog``: the catalog's file when the data drives
    given carry none (--swap: ``data_drives`` are then the copies kept in the work directory, and each parity drive
    is asked for with ``next_drive`` before it is written). ``ahead``: the parity drives' writers that wrote their
    first blocks while the data drives were written (packer/ahead.py), by row."""
    progress = progress or NullProgress()
    if parity.recompute or len(data_drives) > parity.options.group_size:
        for writer in ahead or ():
            writer.abort()
        if parity.swap:
            raise UsageError(
                "a --swap pack's parity is added up as it packs, over at most 251 data drives: add the parity of "
                "more with sneakernet parity DRIVE... once the data drives can be mounted together"
            )
        summary = add_parity(
            data_drives,
            out=parity.out,
            targets=() if parity.out else parity.targets,
            options=dataclasses.replace(parity.options, resume=True),
            progress=progress,
            created=created,
        )
        remove_rows(parity.spec)
        return summary.drives
    readers = _data_drives(data_drives)
    catalog = catalog or _catalog_on(readers)
    catalog_blake3 = _check_catalog(catalog, readers)
    code = ParityCode(len(readers), parity.options.parity, load_backend())
    # With one dock each parity drive is written alone once it is in place; else all at once.
    passes = [[row] for row in range(parity.options.parity)] if parity.swap else [list(range(parity.options.parity))]
    accumulator = ParityAccumulator(parity.spec, adding=False)
    drives: list[ParityDriveResult] = []
    try:
        accumulator.seal(stripe_count((r.label.stored_bytes for r in readers), parity.options.block_size))
        for rows in passes:
            finished = [row not in rows or parity.finished[row] for row in range(parity.options.parity)]
            if parity.swap:
                assert next_drive is not None, "a --swap pack asks for its parity drives"
                _swap_in(parity.targets[rows[0]], parity_label(rows[0] + 1), next_drive)
                # A reader reads its manifest from the copy it last pinned, on the parity drive gone from the dock.
                readers = _data_drives(data_drives)
            group = _Group(1, readers, list(parity.targets), finished, 0, parity.options, created)
            written = group.write(code, progress, accumulated=accumulator, ahead=ahead)
            group.finish(catalog, catalog_blake3)
            drives += [written[row] for row in rows]
    finally:
        accumulator.close()
    if parity.swap:  # the kept manifests and catalog: every parity drive now holds its own copies
        shutil.rmtree(os.path.join(parity.spec.path, COVERED_DIR), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(parity.spec.path, CATALOG_NAME))
    remove_rows(parity.spec)
    return drives


def _swap_in(mount: str, label: str, next_drive: NextParityDrive) -> None:
    """Have an empty drive put in at ``mount`` for the parity drive ``label``: ask until one is there."""
    problem: str | None = None
    while True:
        next_drive(label, problem)
        problem = DriveTargets.not_ready(mount)
        if problem is None:
            return


def keep_covered(parity: SamePassParity, store: DriveStore, label: str) -> str:
    """Keep a swapped drive's drive.json and manifest in the work directory (``covered/LABEL``), where the parity
    drives' ``covered/`` copies are taken from once the data drives are gone from the dock; its path."""
    path = os.path.join(parity.spec.path, COVERED_DIR, label)
    try:
        os.makedirs(path, exist_ok=True)
        # An encrypted drive's sealed index goes to covered/ too (its names and segment keys, 19.7.4).
        sealed = (INDEX_NAME,) if store.stat(INDEX_NAME) is not None else ()
        for name in (*sealed, MANIFEST_NAME, DRIVE_LABEL_NAME):
            with store.open(name) as original:
                copy_atomic(original, os.path.join(path, name))
    except OSError as exc:
        raise DestinationError(f"cannot keep {label}'s manifest in {parity.spec.path}: {exc.strerror}") from exc
    return path


def keep_catalog(parity: SamePassParity, store: DriveStore) -> str:
    """The catalog of a swapped pack's last drive, copied into the work directory for the parity drives."""
    path = os.path.join(parity.spec.path, CATALOG_NAME)
    copy_catalog(store, path)
    return path


__all__ = ["NextParityDrive", "SamePassParity", "finish_parity", "keep_catalog", "keep_covered", "prepare_parity"]
