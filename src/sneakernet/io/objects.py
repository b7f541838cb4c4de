"""A restore destination in an object store, named by URL (``s3://bucket/prefix``): :class:`ObjectTree`.

Restore keeps everything of its own in a local directory (its journal and its parts: ``restore --journal DIR``),
and this destination puts each finished file in the store as an object, so the rest of restore is the same:

- A file is uploaded from its part only once restore has checked the part's BLAKE3 (that is when it installs it),
  by the filesystem's own upload: for S3 one PUT, or for a large object a multipart upload completed only after its
  last part is in (an upload that fails is aborted). No object ever appears under its key with bytes that are not
  the file's: a killed restore leaves at most an unfinished multipart upload, which S3 never shows under the key
  (a bucket's lifecycle rule AbortIncompleteMultipartUpload removes its parts).
- Uploads run on :data:`UPLOADS` threads while restore goes on; :meth:`ObjectTree.sync`, which restore calls
  before its journal records a batch of files as done, waits for them and only then removes their parts: a file
  the journal calls done is in the store, and a killed run uploads again only what its journal had not recorded.
- What an object store cannot hold is handled so: directories are the key prefixes (an empty directory is not
  kept), a hard link is a copy of its target's object (made by the store, without its bytes passing through
  here), a symlink is skipped; modes, owners and mtimes are not kept (S3 sets its own LastModified). The counts
  are given in the report's notes (:class:`Tally`).

Credentials and storage options are io/remote.py's; none is ever written to the journal, the report or a message.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DestinationError
from ..format import show_path
from ..units import counted
from ..validate import UnsafePath
from .remote import _reason, open_filesystem, retried
from .tree import SafeTree

#: Uploads in flight per destination: each holds at most two :data:`PART_SIZE` of bytes (a single PUT reads its
#: file whole below that; a multipart upload reads one part at a time).
UPLOADS = 4
#: The part size of a multipart upload (S3's smallest is 5 MiB): objects of twice this or more go in parts.
PART_SIZE = 8 << 20
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass
class Tally:
    """What the store could not hold as the shipment has it, counted over the drives of one run."""

    #: The paths, not a count: a hard link can be made again (a drive gone over twice).
    symlinks: set[bytes] = field(default_factory=set)
    hardlinks: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: set[bytes], path: bytes) -> None:
        with self.lock:
            kind.add(path)

    def notes(self, url: str) -> list[str]:
        notes = [
            f"{url} keeps files as objects: modes, owners, mtimes and empty directories are not kept "
            "(docs/restore.md, Into an object store)"
        ]
        if self.symlinks:
            notes.append(f"{counted(len(self.symlinks), 'symlink')} skipped: an object store holds no symlinks")
        if self.hardlinks:
            notes.append(f"{counted(len(self.hardlinks), 'hard link')} stored as copies of their targets' objects")
        return notes


class ObjectStore:
    """The store a restore writes into: its filesystem, the keys under the prefix, the upload threads."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None, filesystem: Any = None) -> None:
        self.url = url.rstrip("/")
        if filesystem is None:
            filesystem, self.base = open_filesystem(self.url, storage_options or {})
        else:
            self.base = self.url.split("://", 1)[-1]
        self.fs = filesystem
        self.s3 = self.url.split("://", 1)[0].lower() in ("s3", "s3a")
        self.tally = Tally()
        self.pool = concurrent.futures.ThreadPoolExecutor(UPLOADS, thread_name_prefix="sneakernet-upload")

    def key(self, path: bytes) -> str:
        """The key of shipment path ``path``; a name that is not UTF-8 cannot be a key (UnsafePath: not installed)."""
        try:
            return f"{self.base}/{path.decode('utf-8')}"
        except UnicodeDecodeError:
            raise UnsafePath(f"{show_path(path)}: its name is not UTF-8, which an object key must be") from None

    def check(self) -> bool:
        """Raises :class:`DestinationError` (one line, exit 2) when the store cannot be reached or refuses the
        credentials; whether the prefix already holds objects."""
        bucket = self.base.split("/", 1)[0]
        try:
            retried(lambda: self.fs.ls(bucket, detail=False))
            self.fs.invalidate_cache(bucket)
            held = retried(lambda: self.fs.ls(self.base, detail=False)) if "/" in self.base else True
            self.fs.invalidate_cache(self.base)
        except FileNotFoundError:
            if "/" not in self.base:
                raise DestinationError(f"{self.url} does not exist: make the bucket first") from None
            return False
        except PermissionError as exc:
            raise DestinationError(
                f"access to {self.url} refused ({_reason(exc)}): check the credentials (environment, ~/.aws, "
                "--storage-option)"
            ) from None
        except Exception as exc:
            raise DestinationError(f"cannot reach {self.url}: {_reason(exc)}") from None
        return bool(held)

    def upload(self, local: str, key: str) -> None:
        extra = {"chunksize": PART_SIZE} if self.s3 else {}
        retried(lambda: self.fs.put_file(local, key, **extra))

    def copy(self, source: str, target: str) -> None:
        retried(lambda: self.fs.copy(source, target))

    def exists(self, key: str) -> bool:
        return bool(retried(lambda: self.fs.exists(key)))

    def failed(self, path: bytes, exc: BaseException, journal: str) -> DestinationError:
        return DestinationError(
            f"cannot upload {show_path(path)} to {self.url}: {_reason(exc)}; the journal in {journal} keeps every "
            "object already uploaded: run the same restore again"
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Upload:
    future: concurrent.futures.Future[None]
    parts_fd: int
    part: bytes
    path: bytes


class ObjectTree(SafeTree):
    """:class:`~sneakernet.io.tree.Destination` in an object store; ``root`` is the local directory of restore's
    journal and parts (:class:`SafeTree` over it gives the parts directory), ``store`` where the files go."""

    def __init__(self, root: str, note_replaced: bool = False, listed: int = 100, *, store: ObjectStore) -> None:
        super().__init__(root, note_replaced, listed)
        self.store = store
        self.uploads: deque[_Upload] = deque()

    def make_dir(self, path: bytes) -> None:
        """Directories are the key prefixes of the files in them."""

    def symlink(self, path: bytes, target: bytes) -> None:
        self.store.tally.add(self.store.tally.symlinks, path)

    def hardlink(self, target: bytes, path: bytes) -> None:
        self.sync(-1)  # the target's upload first
        try:
            self.store.copy(self.store.key(target), self.store.key(path))
        except (UnsafePath, FileNotFoundError):
            raise
        except Exception as exc:
            raise self.store.failed(path, exc, self.root) from exc
        self.store.tally.add(self.store.tally.hardlinks, path)

    def install(self, parts_fd: int, part_name: bytes, path: bytes) -> None:
        """Start uploading the checked part ``part_name`` as the object of ``path``; :meth:`sync` waits for it."""
        key = self.store.key(path)
        fd = os.open(part_name, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=parts_fd)

        def upload() -> None:
            try:
                # The part by its descriptor: what restore hashed, whatever is put at its name meanwhile.
                self.store.upload(f"/proc/self/fd/{fd}", key)
            finally:
                os.close(fd)

        self.uploads.append(_Upload(self.store.pool.submit(upload), parts_fd, part_name, path))
        while len(self.uploads) > 2 * UPLOADS:
            self._reap(self.uploads.popleft())

    def _reap(self, upload: _Upload) -> None:
        """Wait for one upload; once it is in the store, its part goes (as a rename would take it away)."""
        try:
            upload.future.result()
        except Exception as exc:
            self._abandon()
            raise self.store.failed(upload.path, exc, self.root) from exc
        with contextlib.suppress(FileNotFoundError):
            os.unlink(upload.part, dir_fd=upload.parts_fd)

    def _abandon(self) -> None:
        """An upload failed: the others are waited for (their parts stay, the journal uploads them next run)."""
        while self.uploads:
            upload = self.uploads.popleft()
            upload.future.cancel()
            concurrent.futures.wait([upload.future])

    def sync(self, fd: int) -> None:
        """Every upload started is in the store (restore calls this before its journal says the files are done)."""
        while self.uploads:
            self._reap(self.uploads.popleft())

    def set_metadata(self, path: bytes, mode: int | None, mtime_ns: int, owner: tuple[int, int] | None) -> None:
        """An object keeps no mode, owner nor mtime of ours."""

    def exists(self, path: bytes) -> bool:
        try:
            return self.store.exists(self.store.key(path))
        except UnsafePath:
            return False
        except Exception as exc:
            raise self.store.failed(path, exc, self.root) from exc

    def take_replaced(self) -> tuple[int, list[bytes]]:
        return 0, []

    def folds_names(self) -> bool:
        return False  # keys are bytes: a.txt and A.txt are two objects

    def close(self) -> None:
        try:
            self._abandon()
        finally:
            super().close()
