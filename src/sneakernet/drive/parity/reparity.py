"""A lost parity drive computed again (docs/format.md 19.7.6: "a lost parity drive is recomputed from the data
drives"), byte-identical: its header taken from a parity drive of its group that survives (the same run wrote them
all with one ``created``, ``tool``, block and segment size), with the lost one's row and number; its blocks encoded
again from every data drive of the group, each data segment checked against its manifest as it is read; written by
the parity writer itself (:class:`~sneakernet.drive.parity.writer.ParityDriveWriter`), so its files are the bytes
it wrote.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

from ...errors import FormatError, UsageError
from ...format import DRIVE_LABEL_NAME, INDEX_NAME, MANIFEST_NAME, PARTIAL_SUFFIX, SEGMENTS_DIR, parity_label
from ...format.parity import COVERED_DIR, covered_index_name, covered_label_name, covered_manifest_name
from ...io.store import KeepingStore
from ...parity.engine import ParityCode
from ...progress import Progress
from ..files import file_blake3
from ..stream import StoredStream
from .lost import ParityGroup, copy_checked, sealed_index, segments_of
from .rebuild import RebuildResult
from .writer import ParityDriveWriter


def parity_number(group: ParityGroup, row: int) -> int:
    """The number of the parity drive of ``row`` in ``group``, as ``sneakernet parity`` numbers them (M per group,
    group after group), once the surviving ones are found to be numbered so."""
    m = group.header.parity_drives
    for present, reader in group.rows.items():
        if reader.label.drive != (group.number - 1) * m + present + 1:
            raise FormatError(f"{reader.label.label} is not numbered as sneakernet numbers parity drives")
    return (group.number - 1) * m + row + 1


def lost_rows(group: ParityGroup) -> list[int]:
    return [row for row in range(group.header.parity_drives) if row not in group.rows]


def repair_parity_drive(group: ParityGroup, row: int, progress: Progress) -> RebuildResult:
    """Mend the parity drive of ``row`` of ``group`` (given among its parity drives) in place: its blocks encoded
    again from every data drive of the group (which must be intact: repair them first), and only its files whose
    bytes differ from what that gives written again (each as ``.partial``, renamed over it); the rest untouched."""
    store = KeepingStore(group.rows[row].path)
    result = write_parity_drive(group, row, store.path, progress, store)
    result.segments_kept = sum(name.startswith(SEGMENTS_DIR + "/") for name in store.kept)
    result.segments_written = sum(name.startswith(SEGMENTS_DIR + "/") for name in store.written)
    result.files_written += [name for name in store.written if not name.startswith(SEGMENTS_DIR + "/")]
    result.bytes_written = sum(found.size for name in store.written if (found := store.stat(name)) is not None)
    return result


def write_parity_drive(
    group: ParityGroup, row: int, target: str, progress: Progress, store: KeepingStore | None = None
) -> RebuildResult:
    """Write the parity drive of ``row`` of ``group`` onto the empty directory ``target`` (or through ``store``,
    a repair's); every data drive of the group must be given, and one of its parity drives (whose header the lost
    one shares)."""
    number = parity_number(group, row)
    label = parity_label(number)
    missing = [c.label for c in group.covers if c.drive not in group.data]
    if missing:
        raise UsageError(f"recomputing {label} needs every data drive of its group: {', '.join(missing)} not given")
    if not group.rows:
        raise UsageError(f"recomputing {label} byte for byte needs another parity drive of its group")
    source = group.rows.get(row, next(iter(group.rows.values())))
    header = replace(source.index().header, drive=number, row=row)
    result = RebuildResult(label, target, sorted(r.label.label for r in group.data.values()))
    _clear_partials(target)
    os.makedirs(os.path.join(target, COVERED_DIR), exist_ok=True)
    for cover in group.covers:
        # The copies the drive holds: its data drive's own files, else a parity drive's, checked against the covers.
        holder = group.data[cover.drive]
        for name, own, size, digest in (
            (covered_label_name(cover.label), DRIVE_LABEL_NAME, cover.drive_json_size, cover.drive_json_blake3),
            (covered_manifest_name(cover.label), MANIFEST_NAME, cover.manifest_size, cover.manifest_blake3),
        ):
            copy = os.path.join(target, name)
            if store is not None and _digest(copy) == (size, digest):
                continue  # a repair keeps an intact copy as it is
            sources = [holder.file(own), *(r.file(name) for r in group.rows.values())]
            if not any(copy_checked(path, copy, size, digest) for path in sources):
                raise FormatError(f"no drive given holds an intact copy of {name}")
            result.files_written.append(name)
        _copy_index(target, cover.label, holder.file(INDEX_NAME), group, store is not None, result)
    streams = [
        StoredStream(reader.path, reader.label.label, segments_of(reader))
        for reader in (group.data[c.drive] for c in group.covers)
    ]
    code = ParityCode(group.group.k, group.group.m)
    block = header.block_size
    data = [memoryview(bytearray(block)) for _ in streams]
    out = [memoryview(bytearray(block))]
    writer = ParityDriveWriter(target, label, header, group.covers, store)
    try:
        for _stripe in range(header.stripes):
            progress.advance(sum(stream.read_into(view) for stream, view in zip(streams, data, strict=True)))
            code.encode_into(data, out, [row])
            writer.write(out[0])
            result.bytes_written += block
        for stream in streams:
            stream.check_end()  # every data segment read to its end, so checked against its manifest
        catalog = source.catalog
        writer.finish(catalog, file_blake3(catalog)[1] if os.path.exists(catalog) else None)
    except BaseException:
        writer.abort()
        raise
    finally:
        for stream in streams:
            stream.close()
    result.segments_written = len(writer.segments)
    result.finished = True
    return result


def _copy_index(target: str, label: str, own: str, group: ParityGroup, repair: bool, result: RebuildResult) -> None:
    """An encrypted data drive's sealed index copied as its ``covered/`` copy (from the data drive, else a parity
    drive's copy), checked against the ``sealed`` record of the manifest copy just made; nothing for a clear one."""
    name = covered_index_name(label)
    pinned = sealed_index(os.path.join(target, covered_manifest_name(label)))
    if pinned is None:
        return
    copy = os.path.join(target, name)
    if repair and _digest(copy) == (pinned.size, pinned.blake3):
        return
    sources = [own, *(r.file(name) for r in group.rows.values())]
    if not any(copy_checked(path, copy, pinned.size, pinned.blake3) for path in sources):
        raise FormatError(f"no drive given holds an intact copy of {name}")
    result.files_written.append(name)


def _digest(path: str) -> tuple[int, str] | None:
    try:
        return file_blake3(path)
    except OSError:
        return None


def _clear_partials(target: str) -> None:
    """What an interrupted run left as ``.partial`` (the writer opens its files exclusively)."""
    for folder in (target, os.path.join(target, SEGMENTS_DIR), os.path.join(target, COVERED_DIR)):
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                if name.endswith(PARTIAL_SUFFIX):
                    os.remove(os.path.join(folder, name))
