"""Packing a source tree into drive directories: ``sneakernet.pack()``.

The pipeline: scan the tree once into a spool (totals, problems, the catalog's size bound), refuse bad input
before anything is written (checks.py), then read files in walk order into chunks (reader.py, with
chunks/chunker.py), encode chunks on a pool of threads (chunks/pipeline.py: zstd and BLAKE3 release the GIL), and
hand them in order to :class:`~sneakernet.packer.shipment.ShipmentWriter`, which fills one drive after another
(space/budget.py) through :class:`~sneakernet.drive.DriveWriter`. Last, the catalog and the fingerprint are
written to every drive. A resumed pack first replays what its finished drives hold (resume.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..chunks.codec import ChunkCodec
from ..drive.catalog import catalog_body, copy_catalog, finish_shipment
from ..drive.files import clear_unfinished
from ..errors import DestinationError, UsageError
from ..format import DRIVE_LABEL_NAME, CatalogHeader, body_fingerprint, fingerprint
from ..io.remote import is_url, open_source
from ..io.source import LocalSource, Source
from ..io.store import DriveStore, LocalStore
from ..options import PackOptions
from ..progress import NullProgress, Progress
from ..scan import scan
from ..space.reserve import sealed_catalog_reservation
from .checks import _check_space, _refuse_bad_input
from .coordinator import Lanes, cut_walk, drive_rate, pack_in_lanes, start_lane_server
from .lane_resume import ResumeTally, find_lane_drives, keep_next_drive
from .parity import ParityOptions
from .pipeline import run_pipeline
from .resume import FinishedDrives, find_finished
from .same_pass import NextParityDrive, finish_parity, keep_catalog, keep_covered, prepare_parity
from .shipment import ShipmentWriter
from .summary import PackSummary
from .targets import DriveTargets, NextDrive

if TYPE_CHECKING:  # the crypt extra is loaded only by an encrypted pack, the dask extra by a cluster pack
    from ..drive.keys import Encryption, Unlock
    from ..drive.sealed import ShipmentSealing
    from .cluster import DaskLanes


def pack(
    source: str | os.PathLike[str] | Source,
    *,
    out: str | None = None,
    drives: Sequence[str] = (),
    drive_size: int | None = None,
    options: PackOptions | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    next_drive: NextDrive | None = None,
    catalog_dir: str | None = None,
    assume_ratio: float | None = None,
    open_store: Callable[[str], DriveStore] | None = None,
    at_once: int = 1,
    encryption: Encryption | None = None,
    parity: int | ParityOptions = 0,
    parity_drives: Sequence[str] = (),
    parity_dir: str | None = None,
    cluster: DaskLanes | None = None,
    next_parity_drive: NextParityDrive | None = None,
    unlock: Unlock | None = None,
) -> PackSummary:
    """Pack the tree at ``source`` into ``out/drive-NNNN`` directories of ``drive_size`` bytes, or onto the
    mounted ``drives`` in order (each up to its free space or ``drive_size``, whichever is smaller).

    ``source`` is a directory, or a :class:`~sneakernet.io.source.Source` that pack reads through (a local
    directory is read as a :class:`~sneakernet.io.source.LocalSource`).

    Raises a :class:`~sneakernet.errors.SneakernetError` subclass for every refusal, before anything is
    written when the problem is visible up front. ``summary.changed`` lists files that changed while they were
    read: their stored bytes and hashes agree with each other, but may be a mix of old and new content.

    With ``resume``, an interrupted pack into the same output continues (see resume.py): its finished drives are
    re-checked and kept, the result is the shipment an uninterrupted run would have written.

    With ``next_drive`` (one dock), every drive goes in at the one mount point ``drives[0]``: when a drive is
    full, ``next_drive`` is called until an empty drive is there. Only the last drive can then carry the catalog;
    ``catalog_dir`` is where the sender keeps a copy of it, ``<shipment>.catalog.jsonl.zst``
    (``summary.catalog_copy``).

    Given ``drives`` must together hold the data uncompressed, or, with ``assume_ratio`` R (stored bytes per byte
    of data, as plan estimates it), R of it: should they run out, :class:`~sneakernet.errors.OutOfSpace` is raised
    with every drive so far finished, and ``resume`` with one more drive goes on.

    ``open_store`` gives the store (io/store.py) through which each drive directory is written: a local directory
    (:class:`~sneakernet.io.store.LocalStore`) unless a test hands in one that fails.

    With ``at_once`` N above 1, N drives are written at the same time (format version 2, docs/format.md 19.3): the
    walk is cut into N lanes of similar estimated size (at ``assume_ratio``, else uncompressed), each packed by a
    process of its own onto drives of its own (coordinator.py). A lane that fails stops alone: the others finish
    their drives, then its error is raised. Fewer lanes than N are cut when the walk cannot fill N; with one lane,
    the shipment is version 1 as without ``at_once``.

    With ``encryption`` (recipients, a passphrase) the shipment is encrypted (docs/format.md 19.8): format version
    2; a fresh shipment identity, wrapped for them in every drive's keys/; chunks sealed, each segment file under a
    fresh random key, the manifest and catalog split into public and sealed parts. Swapped at one dock, its catalogs
    go on the last drive and, both, into ``catalog_dir``. Written at once (``at_once``), each lane seals its own
    drives. Resumed, the drives the interrupted pack finished are read with the key (``unlock``, or the passphrase
    of ``encryption``) and kept, and its unfinished drives written again from their start under fresh keys.

    With ``parity`` M, M parity drives are written too (docs/format.md 19.7, 19.10; same_pass.py), their parity added
    up while the data drives are written: ``out/parity-NNNN``, or the mounted ``parity_drives`` (then ``parity_dir``,
    a local directory of M times a drive's stored bytes, holds the parity until the data drives are done). They are
    the drives ``sneakernet parity`` writes for these data drives (``summary.parity_drives``). With ``next_drive``
    (one dock) and ``parity_dir``, the parity drives are swapped in after the last data drive, each asked for with
    ``next_parity_drive(label, problem)`` (default: ``next_drive`` with the numbers after the data drives').

    With ``cluster`` (:class:`~sneakernet.packer.cluster.DaskLanes`), the lanes are Dask tasks on its workers
    (packer/cluster.py): one lane per worker onto ``out`` or ``drives`` (which every worker sees; ``at_once`` N
    above 1 cuts N lanes), or, when the cluster was given a drives file's lanes, each lane onto its own drives on
    its worker's host (give neither ``out`` nor ``drives`` then).
    """
    open_store = open_store or LocalStore
    options = options or PackOptions()
    # An encrypted pack resumed is packed as lanes are (one lane, or --at-once's), whose resume keeps version 2
    # drives (lane_resume.py): the one-lane resume keeps version 1 ones only.
    sealed_resume = encryption is not None and resume
    if encryption is not None:
        if sealed_resume and next_drive is not None:
            raise UsageError("--resume of an encrypted --swap pack is not supported yet: pack again from the start")
        if cluster is not None:
            raise UsageError(
                "--scheduler does not go with an encrypted pack yet (the shipment's key would travel to the workers): "
                "pack with --at-once on this host"
            )
        options = dataclasses.replace(options, format_version=2)
    progress = progress or NullProgress()
    started = time.monotonic()
    options.check()
    if resume and options.format_version >= 2 and not sealed_resume:
        # Resuming replays the finished drives' records, whose chunk ids version 2 counts per drive (19.4).
        raise UsageError("resuming a pack of format version 2 is not supported yet: pack again from the start")
    hosts = cluster is not None and bool(cluster.hosts)
    if cluster is not None:
        at_once = at_once if at_once > 1 and not hosts else cluster.lanes
        if hosts and (out or drives):
            raise UsageError("--drives-from names every drive and its worker: give neither --out nor --drive")
        if hosts and resume:
            raise UsageError(
                "--resume of a pack with --drives-from is not supported yet: empty the drives and pack again (with "
                "--out or --drive, --scheduler packs resume)"
            )
        if parity:
            raise UsageError(
                "--parity does not go with --scheduler yet: pack with --scheduler, then run sneakernet parity on the "
                "drives"
            )
    # A drives file's drives are on the workers' hosts: checked there, once the work directory is made.
    targets = None if hosts else DriveTargets(out, drives, drive_size, options.reserve, resume, next_drive)
    same_pass = prepare_parity(
        parity, out=out, parity_drives=parity_drives, parity_dir=parity_dir, segment_size=options.segment_size,
        resume=resume, swap=drives[0] if next_drive is not None and drives else None,
    )  # fmt: skip
    # A local directory by the name LocalSource (a test swaps it here), a URL through io/remote.py.
    tree = LocalSource(source) if isinstance(source, str | os.PathLike) and not is_url(source) else open_source(source)
    work = _lanes_work_dir(at_once, tree, next_drive, resume, cluster, lanes=sealed_resume)
    if work and cluster is None:
        start_lane_server()  # its imports overlap the scan
    own_record = tree.restore_record_excludes()
    try:
        totals, spool = scan(tree, options.excludes + own_record, os.path.join(work, "walk.spool") if work else None)
    except BaseException:
        if work:
            shutil.rmtree(work, ignore_errors=True)
        raise
    kept_dir: str | None = None
    try:
        if cluster is not None:
            assert work is not None and isinstance(tree, LocalSource)
            checked = cluster.check(work, os.fsdecode(tree.root), drive_size, options.reserve)
            targets = checked or targets
        assert targets is not None
        _refuse_bad_input(totals, options, tree)
        ranges = cut_walk(spool.entries, at_once, assume_ratio or 1.0) if work else []
        laned = len(ranges) > 1 or cluster is not None or sealed_resume
        sealing = None
        if encryption is not None:
            # Resumed, the interrupted pack's identity and key files (opened with the key given); else fresh ones.
            sealing = _resumed_sealing(encryption, unlock, out, drives, options) if resume else None
            sealing = sealing or _sealing(encryption, options)
        key = sealing.keys.identity if sealing is not None else None
        found = find_lane_drives(out, list(drives), len(ranges), key) if resume and laned else None
        if found is not None and found.encrypted not in (None, sealing is not None):
            # Checked before any lane starts: a shipment is encrypted on every drive or on none (19.8).
            how = "encrypted" if found.encrypted else "not encrypted"
            raise UsageError(f"cannot resume: the interrupted pack's drives are {how}: give its options")
        finished = (
            find_finished(targets.drive_paths(), options.chunk_size, options.segment_size, options.level)
            if resume and found is None
            else FinishedDrives()
        )
        # A resumed pack of lanes keeps drives anywhere in the numbering: the drives given are not refused as too
        # small for what is left (a lane that runs out stops alone, and --resume with more drives goes on).
        catalog_size = _check_space(targets, totals, options, finished, assume_ratio, refuse=found is None)
        if sealing is not None:
            catalog_size = sealed_catalog_reservation(catalog_size)
        created = (found and found.created) or (finished.labels[0].created if finished.labels else _now())
        shipment = (found and found.shipment) or finished.shipment or uuid.uuid4().hex
        if out:
            try:
                os.makedirs(out, exist_ok=True)
            except OSError as exc:
                raise DestinationError(f"cannot make the output directory {out}: {exc.strerror}") from exc
        if laned:
            assert isinstance(tree, LocalSource) and work is not None
            spool.sync()
            lanes = Lanes(
                tree, spool.path or "", work, targets, options, ranges, shipment, created, catalog_size, open_store,
                same_pass, found=found, sealing=sealing,
                **({"runner": cluster} if cluster is not None else {}),
            )  # fmt: skip
            summary = pack_in_lanes(lanes, totals, progress, catalog_dir, started, bool(own_record))
            summary.encryption = sealing.summary() if sealing is not None else None
            return summary
        kept, resumed = None, ResumeTally()
        if resume:
            later = list(targets.drive_paths())[len(finished.labels) :]
            if later:
                kept_dir = tempfile.mkdtemp(prefix="sneakernet-kept-")  # the kept records' copy, off the drive
                copy = os.path.join(kept_dir, "records")
                number = len(finished.labels) + 1
                kept = keep_next_drive(later[0], number, finished.shipment, options, open_store, copy, resumed)
            for path in later[1 if kept else 0 :]:
                resumed.rewritten_bytes += clear_unfinished(open_store(path))
            if kept is not None and not finished.labels:
                shipment, created = kept.header.shipment, kept.header.created
        writer = ShipmentWriter(targets, options, catalog_size, shipment, created, open_store)
        replayed = writer.take_over(finished, kept) if finished.labels or kept else None
        writer.progress = progress
        writer.sealing = sealing
        writer.parity = same_pass.accumulator() if same_pass is not None else None
        covered: list[str] = []  # --swap --parity: each data drive's manifest, kept as it leaves the dock
        if same_pass is not None and same_pass.swap:
            swapping = same_pass
            writer.on_finished = lambda drive, label: covered.append(keep_covered(swapping, drive.store, label.label))
        progress.start(totals.unique_bytes)
        try:
            codec = ChunkCodec(options.level, sealing.cipher if sealing is not None else None)
            tally, chunks = run_pipeline(tree, spool.entries(), writer, options, progress, replayed, codec=codec)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.close()
            if writer.parity is not None:
                writer.parity.close()
    finally:
        spool.close()
        for temporary in (work, kept_dir):
            if temporary:
                shutil.rmtree(temporary, ignore_errors=True)
    drive_paths = [
        os.path.join(out, label.label) if out else drives[0 if next_drive else label.drive - 1]
        for label in writer.labels
    ]
    stored_bytes = sum(label.stored_bytes for label in writer.labels)
    catalog_copy = None
    try:
        header = CatalogHeader(
            shipment=shipment,
            drives=len(writer.labels),
            fingerprint=fingerprint(label.manifest_blake3 for label in writer.labels),
            created=writer.labels[0].created,
            tool=writer.labels[0].tool,
            files=tally.files,
            raw_bytes=tally.raw_bytes,
            stored_bytes=stored_bytes,
            version=options.format_version,
            lanes=1 if options.format_version >= 2 else None,
        )
        stores = [open_store(path) for path in drive_paths]
        if sealing is not None:
            from ..drive.sealed_catalog import finish_sealed_shipment

            # The public catalog's body, which the fingerprint hashes, pins catalog.age (docs/format.md 19.8.3).
            header = finish_sealed_shipment(
                stores, writer.labels, writer.checksums, header, sealing.keys.identity, writer.catalog_lines,
                swapped=next_drive is not None,
            )  # fmt: skip
        else:
            if header.version >= 2:
                # The fingerprint of version 2 is the catalog body's (docs/format.md 19.6), hashed before it is written.
                body = body_fingerprint(catalog_body(header, writer.labels, writer.catalog_lines))
                header = dataclasses.replace(header, fingerprint=body)
            finish_shipment(
                stores, writer.labels, writer.checksums, header, catalog_size, writer.catalog_lines,
                swapped=next_drive is not None,
            )  # fmt: skip
        shipment_fingerprint = header.fingerprint
        if catalog_dir:
            catalog_copy = os.path.join(catalog_dir, f"{shipment}.catalog.jsonl.zst")
            copy_catalog(stores[-1], catalog_copy)
    finally:
        writer.catalog_lines.close()
    parity_results = []
    if same_pass is not None and same_pass.swap:
        assert next_drive is not None
        count = len(writer.labels)
        ask = next_parity_drive or (lambda label, problem: next_drive(count + int(label.rsplit("-", 1)[1]), problem))
        catalog = keep_catalog(same_pass, stores[-1])
        parity_results = finish_parity(same_pass, covered, writer.labels[0].created, catalog=catalog, next_drive=ask)
    elif same_pass is not None:
        parity_results = finish_parity(same_pass, drive_paths, writer.labels[0].created)
    return PackSummary(
        shipment=shipment,
        fingerprint=shipment_fingerprint,
        drives=_drive_summaries(drive_paths, writer),
        files=tally.files,
        dirs=tally.dirs,
        symlinks=tally.symlinks,
        hardlinks=tally.hardlinks,
        raw_bytes=tally.raw_bytes,
        stored_bytes=stored_bytes,
        stored_raw_bytes=writer.stored_raw_bytes,
        chunks=chunks,
        excluded_entries=totals.excluded_entries,
        excluded_bytes=totals.excluded_bytes,
        skipped=tally.skipped,
        skipped_count=tally.skipped_count,
        changed=tally.changed,
        changed_count=tally.changed_count,
        seconds=time.monotonic() - started - targets.waited,
        resumed_drives=len(finished.labels),
        continued_drives=resumed.continued_drives,
        kept_segments=resumed.kept_segments,
        kept_bytes=sum(label.stored_bytes for label in finished.labels) + resumed.kept_bytes,
        kept_unfinished_bytes=resumed.kept_bytes,
        rewritten_bytes=resumed.rewritten_bytes,
        catalog_copy=catalog_copy,
        restore_record_left_out=bool(own_record),
        parity_drives=[result.to_json() for result in parity_results],
        encryption=sealing.summary() if sealing is not None else None,
    )


def _lanes_work_dir(
    at_once: int, tree: Source, next_drive: NextDrive | None, resume: bool, cluster: DaskLanes | None = None,
    lanes: bool = False,
) -> str | None:  # fmt: skip
    """A temporary directory for the lanes' files (the walk's spool, each lane's entry lines), or None for a pack
    of one lane (unless ``lanes``: packed as lanes are); refuses what lanes cannot do. A cluster's lanes have it in
    the cluster's work directory, which its workers see."""
    if at_once < 1:
        raise UsageError(f"--at-once must be at least 1, not {at_once}")
    if at_once == 1 and cluster is None and not lanes:
        return None
    if next_drive is not None:
        raise UsageError("--at-once writes several drives at the same time, --swap one after another at one dock")
    if not isinstance(tree, LocalSource):
        raise UsageError("--at-once packs a local directory only")
    where = cluster.work_dir if cluster is not None else None
    try:
        return tempfile.mkdtemp(prefix="sneakernet-lanes-", dir=where)
    except OSError as exc:
        raise UsageError(f"cannot make a work directory in {where}: {exc.strerror}") from exc


def _sealing(encryption: Encryption, options: PackOptions) -> ShipmentSealing:
    """The keys and sealing of an encrypted pack: a fresh shipment identity, wrapped for its recipients."""
    from ..drive.sealed import ShipmentSealing

    return ShipmentSealing.new(encryption.wrap(), options.level, encryption.cipher)


def _resumed_sealing(
    encryption: Encryption, unlock: Unlock | None, out: str | None, drives: Sequence[str], options: PackOptions
) -> ShipmentSealing | None:
    """A resumed encrypted pack's sealing: the interrupted pack's identity, opened from the key files of the drives
    it left (finished drives first) with ``unlock`` or, without one, the passphrase it packs with; None when no drive
    holds any (nothing to keep: a fresh shipment)."""
    from ..drive.keys import Unlock
    from ..drive.sealed import resumed_sealing

    paths = list(drives)
    if out and os.path.isdir(out) and not paths:
        paths = sorted(os.path.join(out, n) for n in os.listdir(out) if n.startswith("drive-"))
    paths.sort(key=lambda path: not os.path.exists(os.path.join(path, DRIVE_LABEL_NAME)))
    given = unlock or (Unlock(passphrase=encryption.passphrase) if encryption.passphrase else None)
    stores = (LocalStore(path) for path in paths)
    return resumed_sealing(stores, given, options.level, encryption.cipher)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _drive_summaries(paths: list[str], writer: ShipmentWriter) -> list[dict[str, Any]]:
    """Each drive of the shipment, as the summary lists it."""
    return [
        {
            "drive": label.drive,
            "label": label.label,
            "path": path,
            "segments": label.segments,
            "stored_bytes": label.stored_bytes,
            "raw_bytes": label.raw_bytes,
            "manifest_blake3": label.manifest_blake3,
            # None for a drive kept from an interrupted pack (--resume): its size was not measured this time.
            "size": writer.sizes.get(label.drive),
            **drive_rate(label.stored_bytes, writer.seconds.get(label.drive)),
        }
        for path, label in zip(paths, writer.labels, strict=False)
    ]


__all__ = ["NextDrive", "NextParityDrive", "PackOptions", "PackSummary", "pack"]
