"""Crafting shipments by hand, following docs/format.md, so that hostile or odd drives look valid.

A shipment is given as a list of drives; each drive is a list of items: :class:`Chunk` objects (each becomes a
chunk record and its stored bytes in ``segments/s000001.seg``) and record dicts (``file``, ``dir``, ``symlink``,
``hardlink``, ``skipped``). A record's ``chunk`` field may hold a :class:`Chunk` object, replaced by its id when
written. Paths may be ``bytes`` or ``str``; they are encoded as the format says (``path`` or ``path_b64``).

Everything a reader checks is made consistent: chunk ids, offsets and hashes, the segment record, the end
record, drive.json (manifest size and BLAKE3), the catalog (drive records, entries, fingerprint) and B3SUMS.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import zstandard

from sneakernet.chunks.compress import store_frame
from sneakernet.drive.parity.reader import ParityDriveReader
from sneakernet.format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    SEGMENTS_DIR,
    DriveLabel,
    EndRecord,
    checksum_lines,
    drive_label,
    encode_path,
    fingerprint,
    segment_name,
)
from sneakernet.format.checksums import parse_checksums
from sneakernet.format.container import RecordWriter
from sneakernet.format.parity import ParitySegmentRecord, PBlockRecord

CREATED = "2026-01-02T03:04:05Z"
TOOL = "craft 1"
CHUNK_SIZE = 256 * 1024
MTIME_NS = 1_600_000_000_987_654_321


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


class RecordFileWriter(RecordWriter):
    """A record file written straight to a new file at ``path`` (a test's: no ``.partial``, no fsync, which the
    drive layer adds through its store); :meth:`close` returns the size and BLAKE3 and closes the file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.file = open(path, "xb")  # noqa: SIM115 - closed in close() and abort()
        super().__init__(self.file)

    def close(self) -> tuple[int, str]:
        result = super().close()
        self.file.close()
        return result

    def abort(self) -> None:
        """Close the file as it stands: no end record, the frame not finished."""
        self.file.close()


@dataclass
class Chunk:
    """A chunk of ``raw`` bytes. ``stored`` overrides the frame (default: a store frame of ``raw``); ``raw_size``
    overrides the size the record declares (default: ``len(raw)``)."""

    raw: bytes
    stored: bytes | None = None
    raw_size: int | None = None
    method: str = "store"
    id: int = -1
    #: Write the chunk record with ``type`` as its last key rather than its first.
    type_last: bool = False
    #: Overrides the offset its record declares (default: where its bytes are written in the segment).
    offset: int | None = None

    def frame(self) -> bytes:
        return self.stored if self.stored is not None else store_frame(self.raw)


def _path(out: dict[str, Any], key: str, value: bytes | str) -> None:
    encode_path(key, value if isinstance(value, bytes) else value.encode("utf-8"), out)


def meta(mode: int, mtime_ns: int = MTIME_NS, uid: int = 0, gid: int = 0) -> dict[str, int]:
    return {"mode": mode, "mtime_ns": mtime_ns, "uid": uid, "gid": gid}


def file_rec(
    path: bytes | str,
    data: bytes,
    chunk: Chunk | None,
    chunk_offset: int = 0,
    mode: int = 0o644,
    **overrides: Any,
) -> dict[str, Any]:
    """The single, final piece of a whole file stored at ``chunk_offset`` of ``chunk`` (None when empty)."""
    out: dict[str, Any] = {"type": "file"}
    _path(out, "path", path)
    out.update(
        offset=0,
        length=len(data),
        chunk=chunk if data else -1,
        chunk_offset=chunk_offset if data else 0,
        final=True,
        size=len(data),
        blake3=b3(data),
        **meta(mode),
    )
    out.update(overrides)
    return out


def dir_rec(path: bytes | str, mode: int = 0o755) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "dir"}
    _path(out, "path", path)
    out.update(meta(mode))
    return out


def symlink_rec(path: bytes | str, target: bytes | str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "symlink"}
    _path(out, "path", path)
    _path(out, "target", target)
    out.update(meta(0o777))
    return out


def hardlink_rec(path: bytes | str, target: bytes | str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "hardlink"}
    _path(out, "path", path)
    _path(out, "target", target)
    return out


def small_files(files: list[tuple[bytes | str, bytes]]) -> list[Any]:
    """One group chunk holding ``files`` back to back, then their records (the order pack writes them in)."""
    raw = b"".join(data for _, data in files)
    chunk = Chunk(raw)
    items: list[Any] = [chunk]
    offset = 0
    for path, data in files:
        items.append(file_rec(path, data, chunk, offset))
        offset += len(data)
    return items


def _catalog_entries(records: list[dict[str, Any]], drive: int, first: dict[str, int]) -> list[dict[str, Any]]:
    entries = []
    for record in records:
        key = record.get("path", record.get("path_b64"))
        path_field = {k: v for k, v in record.items() if k in ("path", "path_b64")}
        kind = record["type"]
        if kind == "file":
            if not record["final"]:
                first.setdefault(key, drive)
                continue
            size, start = record["size"], first.pop(key, drive)
        elif kind == "symlink":
            target = record.get("target")
            size = len(target.encode("utf-8")) if target is not None else 0
            start = drive
        elif kind in ("dir", "hardlink"):
            size, start = 0, drive
        else:
            continue
        entries.append({"type": "entry", **path_field, "kind": kind, "size": size, "first_drive": start,
                        "last_drive": drive})  # fmt: skip
    return entries


def write_shipment(
    out: Path,
    drives: list[list[Any]],
    shipment: str | None = None,
    catalog: bool = True,
    catalog_edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    catalog_header: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the drives ``out/drive-0001`` ... and return their paths (see the module docstring); ``catalog_edit``
    may change the catalog's entry records before they are written (the catalog is still consistent with its
    fingerprint: a lying catalog)."""
    shipment = shipment or uuid.uuid4().hex
    next_id = 0
    paths: list[Path] = []
    labels: list[DriveLabel] = []
    all_records: list[list[dict[str, Any]]] = []
    files = raw_bytes = 0
    for number, items in enumerate(drives, start=1):
        path = out / drive_label(number)
        (path / SEGMENTS_DIR).mkdir(parents=True)
        records: list[dict[str, Any]] = []
        segment = bytearray()
        chunk_count = drive_raw = 0
        for item in items:
            if isinstance(item, Chunk):
                item.id = next_id
                next_id += 1
                frame = item.frame()
                raw_size = item.raw_size if item.raw_size is not None else len(item.raw)
                offset = len(segment) if item.offset is None else item.offset
                chunk_record = {"type": "chunk", "id": item.id, "segment": segment_name(1), "offset": offset,
                                "stored_size": len(frame), "raw_size": raw_size, "method": item.method,
                                "stored_blake3": b3(frame), "raw_blake3": b3(item.raw)}  # fmt: skip
                if item.type_last:  # valid JSON, not what writers write (docs/format.md, section 5)
                    chunk_record["type"] = chunk_record.pop("type")
                records.append(chunk_record)
                segment += frame
                chunk_count += 1
                drive_raw += raw_size
        # Entry records after all the drive's chunks keep the order rules simple (a file after its chunks).
        for item in items:
            if isinstance(item, dict):
                record = dict(item)
                if isinstance(record.get("chunk"), Chunk):
                    record["chunk"] = record["chunk"].id
                if record["type"] == "file" and record.get("final"):
                    files += 1
                    raw_bytes += record["size"]
                records.append(record)
        sums: list[tuple[str, str]] = []
        if chunk_count:
            (path / segment_name(1)).write_bytes(bytes(segment))
            sums.append((segment_name(1), b3(bytes(segment))))
            records.append({"type": "segment", "name": segment_name(1), "size": len(segment),
                            "blake3": b3(bytes(segment)), "chunks": chunk_count})  # fmt: skip
        header = {"type": "header", "format": "sneakernet-manifest", "shipment": shipment, "drive": number,
                  "created": CREATED, "chunk_size": CHUNK_SIZE, "segment_size": 2**30, "tool": TOOL,
                  "version": 1}  # fmt: skip
        writer = RecordFileWriter(path / MANIFEST_NAME)
        writer.write(header)
        for record in records:
            writer.write(record)
        writer.write({"type": "end", "records": len(records) + 2})
        size, digest = writer.close()
        label = DriveLabel(shipment, number, drive_label(number), CREATED, TOOL, size, digest, 1 if chunk_count else 0,
                           len(segment), drive_raw)  # fmt: skip
        label_bytes = label.to_bytes()
        (path / DRIVE_LABEL_NAME).write_bytes(label_bytes)
        sums += [(MANIFEST_NAME, digest), (DRIVE_LABEL_NAME, b3(label_bytes))]
        (path / CHECKSUMS_NAME).write_bytes(checksum_lines(sums))
        paths.append(path)
        labels.append(label)
        all_records.append(records)
    if catalog:
        write_catalog(paths, labels, all_records, files, raw_bytes, catalog_edit, catalog_header)
    return paths


def write_catalog(
    paths: list[Path],
    labels: list[DriveLabel],
    records: list[list[dict[str, Any]]],
    files: int,
    raw_bytes: int,
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    header: dict[str, Any] | None = None,
) -> None:
    first = paths[0] / CATALOG_NAME
    writer = RecordFileWriter(first)
    writer.write({"type": "header", "format": "sneakernet-catalog", "shipment": labels[0].shipment,
                  "drives": len(labels), "fingerprint": fingerprint(lb.manifest_blake3 for lb in labels),
                  "created": CREATED, "tool": TOOL, "files": files, "raw_bytes": raw_bytes,
                  "stored_bytes": sum(lb.stored_bytes for lb in labels), "version": 1, **(header or {})})  # fmt: skip
    for label in labels:
        writer.write({"type": "drive", "drive": label.drive, "label": label.label,
                      "manifest_size": label.manifest_size, "manifest_blake3": label.manifest_blake3,
                      "stored_bytes": label.stored_bytes})  # fmt: skip
    first_drive: dict[str, int] = {}
    entries = [
        entry
        for label, drive_records in zip(labels, records, strict=True)
        for entry in _catalog_entries(drive_records, label.drive, first_drive)
    ]
    for entry in edit(entries) if edit else entries:
        writer.write(entry)
    writer.write({"type": "end", "records": writer.records + 1})
    _, digest = writer.close()
    data = first.read_bytes()
    for path in paths:
        (path / CATALOG_NAME).write_bytes(data)
        sums = (path / CHECKSUMS_NAME).read_bytes()
        (path / CHECKSUMS_NAME).write_bytes(sums + f"{digest}  {CATALOG_NAME}\n".encode("ascii"))


def drop_catalog(drive: Path) -> None:
    """Remove the catalog from a drive and its line from B3SUMS, as on a drive packed before the catalog."""
    (drive / CATALOG_NAME).unlink()
    lines = (drive / CHECKSUMS_NAME).read_bytes().splitlines(keepends=True)
    (drive / CHECKSUMS_NAME).write_bytes(
        b"".join(line for line in lines if not line.endswith(b"  " + b"catalog.jsonl.zst\n"))
    )


def spanning_file(pieces: list[tuple[int, bytes]], size: int, data: bytes) -> list[list[Any]]:
    """Drives each holding one piece ``(offset, bytes)`` of ``span.bin`` (the last one final, of ``size`` and the
    BLAKE3 of ``data``)."""
    drives: list[list[Any]] = []
    for number, (offset, piece) in enumerate(pieces, 1):
        chunk = Chunk(piece) if piece else None
        record = file_rec("span.bin", piece, chunk, offset=offset, size=size, blake3=blake3.blake3(data).hexdigest())
        if number < len(pieces):
            record["final"] = False
            for key in ("size", "blake3", "mode", "mtime_ns", "uid", "gid"):
                del record[key]
        drives.append([*([chunk] if chunk else []), record])
    return drives


# --- hostile zstd frames --------------------------------------------------------------------------------------


def rle_frame(content_size: int, actual_size: int, byte: int = 0) -> bytes:
    """A zstd frame that declares ``content_size`` (8-byte Frame_Content_Size) but holds ``actual_size`` bytes of
    ``byte`` as RLE blocks of 128 KiB: 4 bytes per block, so a few KiB describe a GiB."""
    window_log = 27  # a window of 128 MiB, so blocks of 128 KiB are legal
    descriptor = 0b11 << 6  # FCS flag 3: an 8-byte content size; no single segment, so a window descriptor
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out += bytes([descriptor, (window_log - 10) << 3])
    out += struct.pack("<Q", content_size)
    block = 128 * 1024
    remaining = actual_size
    while True:
        size = min(block, remaining)
        remaining -= size
        last = remaining == 0
        out += (last | (1 << 1) | (size << 3)).to_bytes(3, "little") + bytes([byte])
        if last:
            return bytes(out)


def zstd_frame(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(raw)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def tree_of(root: Path) -> list[str]:
    """Every name below ``root`` (relative, sorted), symlinks not followed: to see that nothing appeared."""
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            names.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(names)


def forge_parity(drive: Path, rng: random.Random) -> None:
    """Rewrite a parity drive's segments with random bytes and every hash over them to match (a hostile drive)."""
    reader = ParityDriveReader(str(drive))
    index = reader.index()
    block = index.header.block_size
    stripe = 0
    records: list[dict[str, object]] = [index.header.to_json(), *(c.to_json() for c in index.covers)]
    segments = []
    for segment in index.segments:
        data = rng.randbytes(segment.size)
        (drive / segment.name).write_bytes(data)
        for at in range(0, segment.size, block):
            records.append(PBlockRecord(stripe, blake3.blake3(data[at : at + block]).hexdigest()).to_json())
            stripe += 1
        forged = ParitySegmentRecord(segment.name, segment.size, blake3.blake3(data).hexdigest(), segment.blocks)
        records.append(forged.to_json())
        segments.append(forged)
    with open(drive / MANIFEST_NAME, "wb") as sink:
        writer = RecordWriter(sink)
        for record in records:
            writer.write(record)
        writer.write(EndRecord(writer.records + 1).to_json())
        size, digest = writer.close()
    label = DriveLabel.from_bytes((drive / "drive.json").read_bytes(), versions={2})
    label_bytes = dataclasses.replace(label, manifest_size=size, manifest_blake3=digest).to_bytes()
    (drive / "drive.json").write_bytes(label_bytes)
    sums = dict(parse_checksums((drive / CHECKSUMS_NAME).read_bytes()).entries)
    sums.update({s.name: s.blake3 for s in segments})
    sums.update({MANIFEST_NAME: digest, "drive.json": blake3.blake3(label_bytes).hexdigest()})
    (drive / CHECKSUMS_NAME).write_bytes(checksum_lines(list(sums.items())))
    assert ParityDriveReader(str(drive)).index().header == index.header  # it reads as a good parity drive
