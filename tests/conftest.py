"""Shared fixtures: a generated source tree with the edge cases pack must handle, and a test-only reader that
reassembles every file from drive directories (so pack's output is checked byte for byte without restore)."""

from __future__ import annotations

import errno
import os
import random
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import blake3
import pytest
from click.testing import CliRunner

from sneakernet.cli import main
from sneakernet.drive import DriveReader
from sneakernet.format import ChunkRecord, DirRecord, FileRecord, HardlinkRecord, SkippedRecord, SymlinkRecord
from sneakernet.restorer.drive_restorer import SETID_BITS

#: Fixed mtimes with nanoseconds, so a lost sub-second part shows.
MTIME_NS = 1_700_000_000_123_456_789


def write_file(path: Path, data: bytes, mode: int = 0o644, mtime_ns: int = MTIME_NS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def make_edge_tree(root: Path, big_size: int = 3_000_000, seed: int = 7) -> Path:
    """A tree with every kind of entry pack must handle; ``big_size`` should exceed one test drive."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(40):
        words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "tensor"]) for _ in range(rng.randint(1, 400)))
        write_file(root / "text" / f"doc{i:03d}.jsonl", (words + "\n").encode())
    write_file(root / "images" / "noise.png", rng.randbytes(200_000))
    write_file(root / "arrays" / "big.npy", rng.randbytes(big_size))
    write_file(root / "empty.txt", b"")
    write_file(root / "readonly.txt", b"do not touch\n", mode=0o444)
    write_file(root / "tool.sh", b"#!/bin/sh\necho hi\n", mode=0o4755)
    write_file(root / "line\nbreak.txt", b"a name with a newline\n")
    write_file(root / os.fsdecode(b"latin1-\xe9t\xe9.txt"), b"not utf-8 name\n")
    (root / "empty-dir" / "nested-empty").mkdir(parents=True)
    os.symlink("text/doc000.jsonl", root / "link-relative")
    os.symlink("/etc/hostname", root / "link-absolute")
    os.symlink("does/not/exist", root / "link-dangling")
    os.symlink("text", root / "link-to-dir")
    os.link(root / "text" / "doc001.jsonl", root / "hardlink-to-doc001")
    return root


@pytest.fixture
def edge_tree(tmp_path: Path) -> Path:
    return make_edge_tree(tmp_path / "src")


@dataclass(frozen=True)
class Entry:
    kind: str
    data: bytes = b""
    mode: int = 0
    mtime_ns: int = 0


def source_entries(root: Path) -> dict[bytes, Entry]:
    """What a faithful shipment of ``root`` must hold (hard links read as the bytes they share)."""
    out: dict[bytes, Entry] = {}
    top = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = Entry("symlink", os.readlink(full), 0, st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Entry("dir", b"", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = Entry("file", Path(os.fsdecode(full)).read_bytes(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


def as_restored(entries: dict[bytes, Entry]) -> dict[bytes, Entry]:
    """What restore installs for ``entries`` by default: files without their setuid/setgid bits (SETID_BITS)."""
    return {path: restored_entry(entry) for path, entry in entries.items()}


def restored_entry(entry: Entry) -> Entry:
    return replace(entry, mode=restored_mode(entry.kind, entry.mode))


def restored_mode(kind: str, mode: int) -> int:
    """The permission bits restore gives an entry of ``kind`` by default (a directory keeps its setgid bit)."""
    return mode & ~SETID_BITS if kind == "file" else mode


@dataclass
class Unpacked:
    entries: dict[bytes, Entry]
    hardlinks: dict[bytes, bytes]
    skipped: dict[bytes, str]
    changed: set[bytes]
    #: drive number -> paths whose bytes (or entry) that drive carries
    drive_paths: dict[int, set[bytes]]


def unpack(drives: Iterable[Path], open_drive: Callable[[str], DriveReader] = DriveReader) -> Unpacked:
    """Reassemble every entry from the drives (each opened by ``open_drive``), checking every hash on the way.
    Version 1 chunk ids count across the shipment (a piece goes on into the next drive's); version 2's per drive."""
    chunks: dict[tuple[int, int], tuple[DriveReader, ChunkRecord]] = {}
    pieces: dict[bytes, list[tuple[int, FileRecord]]] = {}
    result = Unpacked({}, {}, {}, set(), {})
    for drive in drives:
        reader = open_drive(str(drive))
        per_drive = reader.label.drive if reader.label.version >= 2 else 0
        carried = result.drive_paths.setdefault(reader.label.drive, set())
        for record in reader.records():
            if isinstance(record, ChunkRecord):
                chunks[per_drive, record.id] = (reader, record)
            elif isinstance(record, FileRecord):
                pieces.setdefault(record.path, []).append((per_drive, record))
                carried.add(record.path)
            elif isinstance(record, DirRecord):
                result.entries[record.path] = Entry("dir", b"", record.meta.mode, record.meta.mtime_ns)
            elif isinstance(record, SymlinkRecord):
                result.entries[record.path] = Entry("symlink", record.target, 0, record.meta.mtime_ns)
            elif isinstance(record, HardlinkRecord):
                result.hardlinks[record.path] = record.target
            elif isinstance(record, SkippedRecord):
                result.skipped[record.path] = record.reason
    for path, placed in pieces.items():
        placed.sort(key=lambda p: p[1].offset)
        records = [record for _, record in placed]
        final = records[-1]
        assert final.final and sum(1 for r in records if r.final) == 1, path
        data = b"".join(_piece_bytes(drive, r, chunks) for drive, r in placed)
        assert len(data) == final.size and blake3.blake3(data).hexdigest() == final.blake3, path
        assert final.meta is not None
        result.entries[path] = Entry("file", data, final.meta.mode, final.meta.mtime_ns)
        if final.changed:
            result.changed.add(path)
    for path, target in result.hardlinks.items():
        result.entries[path] = result.entries[target]
    return result


def _piece_bytes(
    drive: int, record: FileRecord, chunks: dict[tuple[int, int], tuple[DriveReader, ChunkRecord]]
) -> bytes:
    out, chunk_id, skip = [], record.chunk, record.chunk_offset
    remaining = record.length
    while remaining:
        reader, chunk = chunks[drive, chunk_id]
        raw = reader.read_chunk(chunk)[skip : skip + remaining]
        out.append(raw)
        remaining -= len(raw)
        chunk_id, skip = chunk_id + 1, 0
    return b"".join(out)


def drive_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.startswith("drive-"))


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk below ``path``, as ``du`` counts them."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        total += os.lstat(dirpath).st_blocks * 512
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def invoke_cli(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    """Run the CLI in-process: exit code, stdout, stderr; an exception other than an exit is raised, not hidden."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def inode_groups(root: Path) -> set[frozenset[bytes]]:
    """The sets of paths that are hard links of one file."""
    groups: dict[tuple[int, int], set[bytes]] = {}
    top = os.fsencode(root)
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                groups.setdefault((info.st_dev, info.st_ino), set()).add(os.path.relpath(full, top))
    return {frozenset(group) for group in groups.values() if len(group) > 1}


def fill_up(mount: Path, leave: int = 4096) -> None:
    """Fill the filesystem at ``mount`` with a file, then give back ``leave`` bytes (a page on tmpfs)."""
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(bytes(1 << 16))
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def make_chain(root: Path, depth: int, files_every: int = 0) -> None:
    """``depth`` nested directories ``d`` below ``root``, made through descriptors (the deepest paths are longer
    than the kernel takes, PATH_MAX); with ``files_every``, a file ``z`` at every level whose depth is a multiple
    of it. Remove with :func:`remove_chain` (shutil.rmtree recurses)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            if files_every and level % files_every == 0:
                os.close(os.open("z", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def remove_chain(root: Path) -> None:
    """Remove a chain of directories ``d`` below ``root`` without recursion: each level is moved up to ``root``
    before the one above it, now holding at most a file ``z`` or a symlink ``s``, is removed."""
    name, moved = "d", 0
    while os.path.lexists(root / name):
        below = None
        if os.path.lexists(root / name / "d"):
            below = f"up{moved}"
            moved += 1
            os.rename(root / name / "d", root / below)
        for leaf in os.listdir(root / name):
            os.unlink(root / name / leaf)
        os.rmdir(root / name)
        if below is None:
            return
        name = below


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one (making 10,000 directories on a disk takes seconds), else tmp_path."""
    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="sneakernet-test-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """moto's S3 server in a process of its own (tests/s3server.py), one for a test module (it takes a second or
    two to start)."""
    from s3server import S3Server

    s3 = S3Server()
    try:
        yield s3
    finally:
        s3.close()


@pytest.fixture
def bucket(server: Any) -> str:
    """A new bucket of its own for each test."""
    name = f"b-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user's ~/.aws, AWS_PROFILE or key reaches a test (``pytestmark = pytest.mark.usefixtures(...)``);
    journals of URL restores under tmp_path."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
