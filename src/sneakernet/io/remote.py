"""A source in an object store or any fsspec filesystem, named by URL (``s3://bucket/prefix``): :class:`RemoteSource`.

It gives pack and plan what :class:`~sneakernet.io.source.LocalSource` gives them, the entries of a tree in walk
order (docs/format.md 6.2) and its files' bytes, so the rest of pack is the same:

- The tree is the keys under the prefix, ``/`` cutting them into directories (the key prefixes). It is walked as
  a local tree is, one listing per directory level (a delimiter listing), each level's names sorted by their
  bytes, a directory before what it holds: only one listing per level is in memory, and the order is the one the
  format requires (a flat listing sorts ``a.txt`` before ``a/x``; the walk order puts ``a/x`` first).
- An object has its size, its LastModified as mtime, mode 0644 (directories 0755), the packing user as owner, and
  its version (the version id of a versioned bucket, else the ETag) folded into the entry's ``ino``: objects have
  no inode and are never hard links (``nlink`` 1), and the spool keeps the version without a field of its own.
  When an object's version, size or LastModified after its bytes were read is not what the listing said, the file
  changed while it was read and pack handles it as it handles a local file that changed (stored as read, named
  in a warning, exit 1).
- Reads are ranged requests of :data:`RANGE_SIZE` made ahead of the reader on a pool of :data:`REQUESTS` threads,
  across objects (many small objects are fetched at once), never more than :data:`AHEAD_BYTES` held: memory is
  bounded whatever the objects' sizes. Each request is retried with backoff on transient errors.

fsspec (and the filesystem's own package: s3fs for ``s3://``) is imported only when a URL is given; missing, the
message names the extra to install. Credentials are whatever the filesystem finds (environment, ~/.aws,
profiles) or ``storage_options``; none of them is ever put in a record, a message or a file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import hashlib
import importlib
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ..errors import SourceError, UsageError
from ..patterns import Excluder
from .source import KIND_DIR, KIND_FILE, Excluded, LocalSource, Source, SourceEntry, Unreadable

T = TypeVar("T")

#: The extra that brings each protocol's package, named in the message when it is missing.
EXTRA_BY_PROTOCOL = {"s3": "s3", "s3a": "s3"}
#: One ranged GET: large enough that a request's latency is small beside its transfer, small enough that several
#: are in flight within :data:`AHEAD_BYTES` (the test server, which reads a whole object for each range, served
#: 8 MiB ranges at 160-220 MB/s and 16 MiB ones at 290-360 MB/s: bench/remote.py --raw).
RANGE_SIZE = 16 << 20
#: Bytes requested ahead of the reader and not yet taken by it, at most (one range more may be in flight when it
#: is the only one): with the pipeline's own chunks and the HTTP client's copies of each body, pack's peak RSS
#: was 250 MB over 64 MiB objects (bench/remote.py; 128 MiB here gave 333 MB), 80 MB of it the loaded modules.
AHEAD_BYTES = 48 << 20
#: Requests in flight at once: an object store answers each after a latency, so many small objects are fetched
#: side by side (16 were no faster against the test server, and held more memory).
REQUESTS = 8
#: Files looked ahead of the reader at most (their entries are held meanwhile).
AHEAD_FILES = 2048
#: Attempts of one request, and the first wait between two (doubling, at most :data:`MAX_BACKOFF` seconds).
ATTEMPTS = 5
BACKOFF = 0.25
MAX_BACKOFF = 4.0
FILE_MODE = 0o644
DIR_MODE = 0o755


def open_filesystem(url: str, storage_options: Mapping[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path in it; :class:`UsageError` naming the extra when fsspec or
    the protocol's package is missing, or the protocol is unknown."""
    protocol = url.split("://", 1)[0].lower()
    extra = EXTRA_BY_PROTOCOL.get(protocol, "remote")
    try:
        fsspec = importlib.import_module("fsspec")
    except ImportError:
        raise UsageError(f"{protocol}:// needs the '{extra}' extra: pip install 'sneakernet[{extra}]'") from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options))
    except ImportError:
        hint = f"pip install 'sneakernet[{extra}]'" if extra != "remote" else "install fsspec's package for it"
        raise UsageError(f"{protocol}:// needs a package that is not installed: {hint}") from None
    except ValueError as exc:
        raise UsageError(f"{url}: {_reason(exc)}") from None
    except TypeError as exc:
        raise UsageError(f"a --storage-option that {protocol}:// does not take: {_reason(exc)}") from None
    return fs, path.rstrip("/")


def parse_storage_options(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``key=value`` pairs as fsspec takes them; a value that reads as JSON (``true``, ``8``, ``{"a": 1}``) is that
    value, any other is the text."""
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--storage-option takes key=value, not {pair.split('=')[0]!r}...")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def _reason(exc: BaseException) -> str:
    """An exception as one line, without anything a credential could be in (only its first line, cut short)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _transient(exc: BaseException) -> bool:
    """Whether a failed request is worth another try: not a missing object, a refusal of the credentials, nor a
    range past the end of an object (it shrank: that it changed is told by its version)."""
    if isinstance(exc, OSError) and exc.errno == errno.EINVAL:
        return False
    return not isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError)


def retried(call: Callable[[], T], attempts: int | None = None) -> T:
    """``call()``, tried again after a growing wait when it fails with a transient error (:data:`ATTEMPTS` tries
    in all unless ``attempts`` says)."""
    attempts = attempts or ATTEMPTS
    delay = BACKOFF
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not _transient(exc):
                raise
        time.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
    raise AssertionError("unreachable")


def version_of(info: Mapping[str, Any]) -> str | None:
    """An object's version as the listing or a HEAD gives it: the version id, else the ETag (else None)."""
    for key in ("VersionId", "version_id", "generation", "ETag", "etag", "md5Hash"):
        value = info.get(key)
        if value:
            return str(value)
    return None


def version_number(version: str | None) -> int:
    """A version folded into 63 bits (the entry's ``ino``); 0 when the store gives none."""
    if version is None:
        return 0
    return int.from_bytes(hashlib.blake2b(version.encode(), digest_size=8).digest(), "big") >> 1


def mtime_of(info: Mapping[str, Any]) -> int:
    """An object's modification time in nanoseconds (LastModified, or what the filesystem calls it); 0 if none."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "timeModified", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return int(value.timestamp() * 1_000_000) * 1000
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1_000_000_000)
        if isinstance(value, str):
            try:
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000
            except ValueError:
                continue
    return 0


@dataclass(frozen=True)
class RemoteStat:
    """An object's metadata as pack reads it (the fields of :class:`~sneakernet.io.source.FileStat`, and its
    version, compared before and after a read)."""

    st_size: int
    st_mtime_ns: int
    st_mode: int
    st_uid: int
    st_gid: int
    st_version: int

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> RemoteStat:
        return cls(
            int(info.get("size") or 0), mtime_of(info), stat.S_IFREG | FILE_MODE, os.getuid(), os.getgid(),
            version_number(version_of(info)),
        )  # fmt: skip


#: A URL is a scheme and ``://``; anything else is a local path (``C:/x`` and ``./s3:`` included).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: object) -> bool:
    """Whether ``text`` names a source or destination by URL (``s3://...``, ``gs://...``, ``memory://...``)."""
    return isinstance(text, str) and bool(_URL.match(text))


def open_source(source: str | os.PathLike[str] | Source, storage_options: Mapping[str, Any] | None = None) -> Source:
    """The source pack and plan read: ``source`` itself when it is one, a URL's tree through fsspec (io/remote.py,
    an optional extra, imported only then; ``storage_options`` as fsspec takes them), else a local directory."""
    if not isinstance(source, str | os.PathLike):
        return source
    if is_url(source):
        return RemoteSource(str(source), storage_options)
    return LocalSource(source)


class RemoteSource:
    """The tree under a URL, read through fsspec (see the module's docstring)."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None, filesystem: Any = None) -> None:
        self.url = url.rstrip("/")
        self.root = self.url.encode()
        if filesystem is None:
            filesystem, self._base = open_filesystem(self.url, storage_options or {})
        else:
            self._base = url.split("://", 1)[-1].rstrip("/")
        self.fs = filesystem
        self._uid, self._gid = os.getuid(), os.getgid()
        self._started_ns = time.time_ns()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._ahead: _Ahead | None = None

    # -- the walk
    def key(self, path: bytes) -> str:
        """The filesystem path of the shipment path ``path``."""
        return f"{self._base}/{path.decode('utf-8', 'surrogateescape')}" if path else self._base

    def _list(self, rel: bytes) -> list[dict[str, Any]]:
        key = self.key(rel)
        listing: list[dict[str, Any]] = retried(lambda: self.fs.ls(key, detail=True))
        # A listing kept in fsspec's cache would make the walk's memory grow with the tree.
        self.fs.invalidate_cache(key)
        return listing

    def check(self) -> None:
        """Raises :class:`SourceError` (one line, exit 2) when there is no tree at the URL or it cannot be read."""
        try:
            info = retried(lambda: self.fs.info(self._base))
        except FileNotFoundError:
            raise SourceError(f"source {self.url} does not exist: give the bucket and prefix to pack") from None
        except PermissionError as exc:
            raise SourceError(
                f"access to {self.url} refused ({_reason(exc)}): check the credentials (environment, ~/.aws, "
                "--storage-option)"
            ) from None
        except Exception as exc:
            raise SourceError(f"cannot read {self.url}: {_reason(exc)}") from None
        if info.get("type") != "directory":
            raise SourceError(f"source {self.url} is an object, not a prefix: give the prefix that holds it")

    def walk(self, excluder: Excluder | None) -> Iterator[SourceEntry | Excluded | Unreadable]:
        self.check()
        return self._walk(excluder)

    def _walk(self, excluder: Excluder | None) -> Iterator[SourceEntry | Excluded | Unreadable]:
        stack: list[Iterator[SourceEntry | Unreadable]] = [self._level(b"")]
        while stack:
            for item in stack[-1]:
                if isinstance(item, Unreadable):
                    yield item
                    continue
                is_dir = item.kind == KIND_DIR
                if excluder is not None and excluder.excludes(item.path, is_dir):
                    yield Excluded(item)
                    continue
                yield item
                if is_dir:
                    stack.append(self._level(item.path))
                    break
            else:
                stack.pop()

    def _level(self, rel: bytes) -> Iterator[SourceEntry | Unreadable]:
        """The entries of one directory level, sorted by name."""
        try:
            listing = self._list(rel)
        except Exception as exc:
            yield Unreadable(rel or b".", _reason(exc))
            return
        prefix = self.key(rel).rstrip("/") + "/"
        named: dict[bytes, list[dict[str, Any]]] = {}
        for info in listing:
            full = str(info.get("name", "")).rstrip("/")
            if not full.startswith(prefix):
                continue  # the level itself (a directory marker object), or something outside it
            named.setdefault(full[len(prefix) :].encode("utf-8", "surrogateescape"), []).append(info)
        for name in sorted(named):
            path = rel + b"/" + name if rel else name
            infos = named[name]
            if b"/" in name or name in (b".", b".."):
                yield Unreadable(path, "its key is not a path a drive can hold (an empty, '.' or '..' component)")
                continue
            if len(infos) > 1 and any(i.get("type") != "directory" for i in infos):
                # S3 allows an object "a" beside objects "a/...": a tree cannot hold both under one name.
                yield Unreadable(path, "an object and a prefix of the same name: rename one of them")
                continue
            yield self._entry(path, infos[0])

    def _entry(self, path: bytes, info: Mapping[str, Any]) -> SourceEntry:
        if info.get("type") == "directory":
            # A prefix has no time of its own: the scan's.
            fields = (path, KIND_DIR, 0, DIR_MODE, self._started_ns, self._uid, self._gid, 0, 0, 1)
        else:
            version = version_number(version_of(info))
            fields = (path, KIND_FILE, int(info.get("size") or 0), FILE_MODE, mtime_of(info), self._uid, self._gid, 0,
                      version, 1)  # fmt: skip
        return tuple.__new__(SourceEntry, fields)

    def walk_stats(self, excluder: Excluder | None) -> Iterator[tuple[bytes, os.stat_result] | Excluded | Unreadable]:
        self.check()
        for item in self._walk(excluder):
            if isinstance(item, SourceEntry):
                kind = stat.S_IFDIR if item.kind == KIND_DIR else stat.S_IFREG
                yield item.path, os.stat_result(
                    (kind | item.mode, item.ino, 0, 1, item.uid, item.gid, item.size, 0, item.mtime_ns // 10**9,
                     item.mtime_ns // 10**9)
                )  # fmt: skip
            else:
                yield item

    # -- questions the scan and the checks ask
    def readable(self, path: bytes) -> bool:
        return True  # an object the listing shows is readable, or its read fails with the reason

    def restore_record_excludes(self) -> tuple[str, ...]:
        return ()  # a restore into an object store keeps its record in its local journal directory

    def is_file(self, path: bytes) -> bool:
        try:
            return bool(self.fs.isfile(self.key(path)))
        except Exception:
            return False

    def readlink(self, path: bytes) -> bytes:
        raise FileNotFoundError(path)  # an object store holds no symlinks

    # -- reading
    def ahead(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[SourceEntry | Unreadable]:
        """``entries`` as they are, while the bytes of the files among the next of them are fetched ahead of the
        reader (which then opens them in the same order)."""
        ahead = self._ahead = _Ahead(self, entries)
        try:
            yield from ahead
        finally:
            ahead.close()
            self._ahead = None
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(REQUESTS, thread_name_prefix="sneakernet-fetch")
        return self._pool

    def fetch(self, path: bytes, start: int, size: int) -> bytes:
        """``size`` bytes of the object at ``path`` from ``start`` (fewer at its end), retried."""
        key = self.key(path)
        try:
            return bytes(retried(lambda: self.fs.cat_file(key, start=start, end=start + size)))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return b""  # past the end: the object shrank since it was listed
            raise

    def head(self, path: bytes) -> RemoteStat:
        key = self.key(path)
        return RemoteStat.of(retried(lambda: self.fs.info(key)))

    def open(self, path: bytes) -> RemoteFile:
        scheduled = self._ahead.take(path) if self._ahead is not None else None
        # Opened outside the look-ahead (plan's sample reads a piece of each file with read_at): its metadata is
        # asked for only when wanted, a request saved per file.
        return RemoteFile(self, scheduled or _Scheduled(path, None))


@dataclass
class _Scheduled:
    """A file whose ranges are requested ahead: ``before`` is its metadata from the listing, ``ranges`` the
    requests made and not yet read, in order, ``after`` the HEAD made once its last range was in."""

    path: bytes
    #: None until asked for, for a file opened outside the look-ahead.
    before: RemoteStat | None
    ranges: deque[tuple[int, concurrent.futures.Future[bytes]]] = field(default_factory=deque)
    next_offset: int = 0
    after: concurrent.futures.Future[RemoteStat] | None = None

    @property
    def size(self) -> int:
        assert self.before is not None
        return self.before.st_size

    @property
    def all_requested(self) -> bool:
        return self.next_offset >= self.size


class _Ahead:
    """The look-ahead over the entries: files in walk order with their requests, within :data:`AHEAD_BYTES`.

    Everything here runs on the reader's thread (the pool's threads only make requests), so it needs no lock."""

    def __init__(self, source: RemoteSource, entries: Iterator[SourceEntry | Unreadable]) -> None:
        self.source = source
        self.entries = entries
        self.waiting: deque[SourceEntry | Unreadable] = deque()
        self.files: deque[_Scheduled] = deque()
        self.held = 0
        self.done = False

    def __iter__(self) -> Iterator[SourceEntry | Unreadable]:
        while True:
            self.schedule()
            if not self.waiting and not self._pull():
                return
            yield self.waiting.popleft()

    def schedule(self) -> None:
        """Request more ranges, in order, while the bytes held stay within the budget."""
        while True:
            last = self.files[-1] if self.files else None
            if last is not None and not last.all_requested:
                size = min(RANGE_SIZE, last.size - last.next_offset)
                if self.held and self.held + size > AHEAD_BYTES:
                    return
                self._request(last, size)
                continue
            if len(self.files) >= AHEAD_FILES or len(self.waiting) >= AHEAD_FILES or not self._pull():
                return

    def _pull(self) -> bool:
        """One more entry from the walk into the look-ahead (its file scheduled); False at the end."""
        if self.done:
            return False
        entry = next(self.entries, None)
        if entry is None:
            self.done = True
            return False
        self.waiting.append(entry)
        if isinstance(entry, SourceEntry) and entry.kind == KIND_FILE:
            before = RemoteStat(entry.size, entry.mtime_ns, stat.S_IFREG | entry.mode, entry.uid, entry.gid, entry.ino)
            scheduled = _Scheduled(entry.path, before)
            self.files.append(scheduled)
            if before.st_size == 0:
                self._finish(scheduled, [])
        return True

    def _request(self, file: _Scheduled, size: int) -> None:
        pool = self.source.pool()
        future = pool.submit(self.source.fetch, file.path, file.next_offset, size)
        file.ranges.append((size, future))
        file.next_offset += size
        self.held += size
        if file.all_requested:
            self._finish(file, [f for _, f in file.ranges])

    def _finish(self, file: _Scheduled, requests: list[concurrent.futures.Future[bytes]]) -> None:
        """The HEAD that tells whether the object changed, made once every range of it is in (the requests were
        made before it on the same first-in first-out pool, so waiting for them never blocks the pool)."""

        def after() -> RemoteStat:
            concurrent.futures.wait(requests)
            return self.source.head(file.path)

        file.after = self.source.pool().submit(after)

    def take(self, path: bytes) -> _Scheduled | None:
        """The scheduled file ``path``, the files before it that the reader did not open dropped (a resumed pack
        replays files without reading them). It stays first until :meth:`closed`, its later ranges requested as
        the budget allows."""
        if not any(file.path == path for file in self.files):
            return None
        while self.files[0].path != path:
            self.drop(self.files.popleft())
        return self.files[0]

    def closed(self, file: _Scheduled) -> None:
        if self.files and self.files[0] is file:
            self.drop(self.files.popleft())

    def release(self, size: int) -> None:
        self.held -= size

    def drop(self, file: _Scheduled) -> None:
        for size, future in file.ranges:
            future.cancel()
            self.held -= size
        file.ranges.clear()
        if file.after is not None:
            file.after.cancel()

    def close(self) -> None:
        while self.files:
            self.drop(self.files.popleft())


class RemoteFile:
    """An object open for reading (:class:`~sneakernet.io.source.SourceFile`): its bytes from the ranges fetched
    ahead, then from requests of its own if more is asked for."""

    def __init__(self, source: RemoteSource, scheduled: _Scheduled) -> None:
        self.source = source
        self.scheduled = scheduled
        self.buffer = memoryview(b"")
        self.stats = 0

    def stat(self) -> RemoteStat:
        """The listing's metadata the first time (what the walk saw), then the object's once it was read."""
        self.stats += 1
        if self.stats == 1:
            return self._before()
        before = self._before()
        try:
            if self.scheduled.after is not None:
                return self.scheduled.after.result()
            return self.source.head(self.scheduled.path)
        except FileNotFoundError:
            # Gone once read: what was read is stored, as a file that changed.
            return dataclasses.replace(before, st_size=-1)
        except Exception as exc:
            raise self._error(exc) from exc

    def _before(self) -> RemoteStat:
        if self.scheduled.before is None:
            try:
                self.scheduled.before = self.source.head(self.scheduled.path)
            except FileNotFoundError:
                raise
            except Exception as exc:
                raise self._error(exc) from exc
        return self.scheduled.before

    def _error(self, exc: BaseException) -> SourceError:
        shown = self.source.url + "/" + self.scheduled.path.decode("utf-8", "replace")
        return SourceError(
            f"cannot read {shown}: {_reason(exc)}; the store kept failing after {ATTEMPTS} tries: run the same pack "
            "again (with --resume where it was written)"
        )

    def read(self, size: int, expected: int | None = None) -> bytes:
        parts: list[bytes | memoryview] = []
        got = 0
        while got < size:
            if not self.buffer and not self._refill(size - got):
                break
            piece = self.buffer[: size - got]
            self.buffer = self.buffer[len(piece) :]
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def _refill(self, wanted: int) -> bool:
        """Take the next range fetched ahead (or fetch one); False at the end of the object as listed."""
        scheduled = self.scheduled
        ahead = self.source._ahead
        try:
            if scheduled.ranges:
                size, future = scheduled.ranges.popleft()
                data = future.result()
                if ahead is not None:
                    ahead.release(size)
                    ahead.schedule()
            elif scheduled.next_offset < self._before().st_size:
                size = min(max(wanted, RANGE_SIZE), scheduled.size - scheduled.next_offset)
                data = self.source.fetch(scheduled.path, scheduled.next_offset, size)
                scheduled.next_offset += size
            else:
                return False
        except FileNotFoundError:
            return False  # gone while read: the bytes so far are what it holds (stat then tells it changed)
        except Exception as exc:
            raise self._error(exc) from exc
        self.buffer = memoryview(data)
        return bool(data)

    def read_at(self, offset: int, size: int) -> bytes:
        """Bytes past what the listing said are never asked for: a grown object has another version, which the
        second :meth:`stat` tells."""
        known = self.scheduled.before
        end = offset + size if known is None else min(offset + size, known.st_size)
        if offset >= end:
            return b""
        try:
            return self.source.fetch(self.scheduled.path, offset, end - offset)
        except Exception as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        ahead = self.source._ahead
        if ahead is not None:
            ahead.closed(self.scheduled)
        self.buffer = memoryview(b"")
