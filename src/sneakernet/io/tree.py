"""The restore destination (DEST): the :class:`Destination` protocol, the operations restore makes on it, and
:class:`SafeTree`, its implementation on a local directory: the only code that creates anything under a restore
destination, and never anywhere else.

Every path is a shipment path checked by :func:`sneakernet.validate.check_path` (relative, no ``..``, no NUL, no
empty or ``.`` component, nothing at or under the reserved top-level ``.sneakernet``) and is reached from the
destination one directory at a time with ``O_NOFOLLOW``, through directory file descriptors: a symlink anywhere
on the way, whether it was in the destination before or restore created it itself, stops the operation instead of
being followed (the tar-slip family of attacks). Final components are created or renamed relative to their
parent's descriptor, never through a path string.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
from collections import OrderedDict
from typing import Protocol

from ..format import RESERVED_NAME, show_path
from ..validate import UnsafePath, check_path
from .atomic import sync_filesystem

#: The parts directory's name in the destination's reserved directory.
PARTS_NAME = "parts"
#: Directory descriptors kept open: entries come in walk order, so a few cover the directories in use.
OPEN_DIRS = 64
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


class NameTooLong(UnsafePath):
    """A component of a shipment path longer than the destination's filesystem takes (NAME_MAX)."""


class InTheWay(UnsafePath):
    """A directory of the destination's stands where the shipment has a file: nothing wrong with the drive."""


class Destination(Protocol):
    """What restore does to its destination, beside its own directory's files (journal, records): paths are
    checked shipment paths, ``part_name`` names a file in the parts directory ``parts_fd`` (:meth:`open_parts`).
    :class:`SafeTree` is the local implementation; a test passes a fake (a subclass that fails where it wants) to
    restore instead."""

    root: str

    def close(self) -> None: ...

    def make_dir(self, path: bytes) -> None: ...

    def symlink(self, path: bytes, target: bytes) -> None: ...

    def hardlink(self, target: bytes, path: bytes) -> None: ...

    def install(self, parts_fd: int, part_name: bytes, path: bytes) -> None: ...

    def set_metadata(self, path: bytes, mode: int | None, mtime_ns: int, owner: tuple[int, int] | None) -> None: ...

    def exists(self, path: bytes) -> bool: ...

    def take_replaced(self) -> tuple[int, list[bytes]]: ...

    def folds_names(self) -> bool: ...

    def sync(self, fd: int) -> None: ...

    def open_parts(self) -> Parts: ...


class Parts(Protocol):
    """The parts directory, DEST/.sneakernet/parts, where restore assembles files under names of its own before
    they are installed: the only code that touches its files. Names are bare names in it; ``fd`` is the
    directory's descriptor (:meth:`Destination.install` renames from it). :class:`LocalParts` is the local
    implementation; a test gives a fake (a subclass that fails where it wants) through its destination's
    :meth:`Destination.open_parts`."""

    fd: int

    def create(self, name: bytes) -> int: ...

    def open(self, name: bytes, writable: bool = False) -> int: ...

    def stat(self, name: bytes) -> os.stat_result | None: ...

    def identity(self, fd: int) -> tuple[int, int] | None: ...

    def remove(self, name: bytes) -> None: ...

    def names(self) -> list[bytes]: ...

    def write(self, fd: int, data: bytes | memoryview, offset: int) -> int: ...

    def read(self, fd: int, size: int, offset: int) -> bytes: ...

    def truncate(self, fd: int, size: int) -> None: ...

    def seal(self, fd: int, mode: int, mtime_ns: int, owner: tuple[int, int] | None) -> None: ...

    def close_file(self, fd: int) -> None: ...

    def close(self) -> None: ...


class LocalParts:
    """:class:`Parts` on a local directory, reached through ``dir_fd`` (the caller's descriptor of it, which this
    object now owns): every part is made ``O_EXCL|O_NOFOLLOW`` (never a file that exists, whatever it is: a
    planted hard link or symlink is refused, not written through) and opened ``O_NOFOLLOW``, none inherited by the
    programs a hook may run."""

    #: How a part is made: 0o600 until it is finished (see :meth:`seal`).
    NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC

    def __init__(self, dir_fd: int) -> None:
        self.fd = dir_fd

    def create(self, name: bytes) -> int:
        """Make part ``name``: a descriptor open for reading and writing (OSError as the system gives it)."""
        return os.open(name, self.NEW, 0o600, dir_fd=self.fd)

    def open(self, name: bytes, writable: bool = False) -> int:
        """Open the existing part ``name`` without following a symlink (OSError: missing, or not openable)."""
        mode = os.O_RDWR if writable else os.O_RDONLY | os.O_NONBLOCK  # a FIFO put there never blocks the read
        return os.open(name, mode | os.O_NOFOLLOW | _CLOEXEC, dir_fd=self.fd)

    def stat(self, name: bytes) -> os.stat_result | None:
        """``name`` itself (a symlink not followed); None when there is none."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def identity(self, fd: int) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of the open part ``fd``; None when it is not a regular file."""
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None

    def remove(self, name: bytes) -> None:
        """Remove ``name`` (gone already: nothing to do)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def names(self) -> list[bytes]:
        """Every name in the directory (as many as files spanning drives in progress, and one batch)."""
        return [os.fsencode(name) for name in os.listdir(self.fd)]

    def write(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        """One ``pwrite`` into a part: how many bytes it took (a filling disk takes fewer)."""
        return os.pwrite(fd, data, offset)

    def read(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def seal(self, fd: int, mode: int, mtime_ns: int, owner: tuple[int, int] | None) -> None:
        """A finished part's owner (when given), permission bits and mtime, as its file will have them."""
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        os.utime(fd, ns=(mtime_ns, mtime_ns))

    def close_file(self, fd: int) -> None:
        os.close(fd)

    def close(self) -> None:
        os.close(self.fd)


class DestinationFactory(Protocol):
    """Opens the destination of a restore (:class:`SafeTree` itself, or a fake's class)."""

    def __call__(self, root: str, note_replaced: bool = False, listed: int = 100) -> Destination: ...


class SafeTree:
    """Creates directories, files, symlinks and hard links under ``root`` without following any symlink below it
    (``root`` itself, named by the user, may be one: ``--into /data/current`` with ``current -> v3``)."""

    def __init__(self, root: str, note_replaced: bool = False, listed: int = 100) -> None:
        self.root = root
        self.root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        self._dirs: OrderedDict[bytes, int] = OrderedDict()
        #: With ``note_replaced`` (a destination that held files before, --force), every file of the destination
        #: that an install or a hard link replaces is counted, and the first ``listed`` named: a stat of each name
        #: first, which an empty destination does not pay for.
        self.note_replaced = note_replaced
        self.listed = listed
        self.replaced: list[bytes] = []
        self.replaced_count = 0
        try:
            #: The longest name the destination takes: a longer one is refused as an entry, not met as ENAMETOOLONG.
            self.name_max = os.fpathconf(self.root_fd, "PC_NAME_MAX")
        except (OSError, ValueError):
            self.name_max = 255

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.root_fd)

    def parent(self, path: bytes, create: bool = True) -> tuple[int, bytes]:
        """``(descriptor of the parent directory, final name)`` of a checked shipment path."""
        parts = check_path(path)
        self._check_length(path, parts[-1])
        return self.directory(b"/".join(parts[:-1]), create), parts[-1]

    def _check_length(self, path: bytes, name: bytes) -> None:
        if len(name) > self.name_max:
            raise NameTooLong(
                f"{show_path(path)!r} has a name of {len(name)} bytes, longer than the {self.name_max} the "
                "destination's filesystem takes"
            )

    def directory(self, path: bytes, create: bool = True) -> int:
        """A descriptor of directory ``path`` (b"" is the root), made as needed (mode 0o755, fixed later).

        A loop, not a recursion over the parents: a shipment path may have thousands of components. It starts
        from the deepest ancestor already open (in walk order, the parent) and opens one component at a time.
        """
        if not path:
            return self.root_fd
        cached = self._dirs.get(path)
        if cached is not None:
            self._dirs.move_to_end(path)
            return cached
        parts = check_path(path)
        # ends[i]: the length of the prefix of path made of its first i + 1 components.
        ends = [end - 1 for end in itertools.accumulate(len(part) + 1 for part in parts)]
        fd, start = self.root_fd, 0
        for depth in range(len(parts) - 2, -1, -1):
            found = self._dirs.get(path[: ends[depth]])
            if found is not None:
                self._dirs.move_to_end(path[: ends[depth]])
                fd, start = found, depth + 1
                break
        for depth in range(start, len(parts)):
            prefix = path[: ends[depth]]
            self._check_length(prefix, parts[depth])
            fd = self._open_child(fd, parts[depth], prefix, create)
            self._dirs[prefix] = fd
            # The oldest is closed; never the one just opened nor its parent, the newest two.
            if len(self._dirs) > OPEN_DIRS:
                os.close(self._dirs.popitem(last=False)[1])
        return fd

    def _open_child(self, parent_fd: int, name: bytes, path: bytes, create: bool) -> int:
        """The directory ``name`` in ``parent_fd`` (``path`` from the root), made if missing and ``create``."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
            # Made meanwhile, or a symlink: the open below refuses the latter.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent_fd)
            return self._open_existing_dir(path, name, parent_fd)
        except OSError as exc:
            raise self._not_a_directory(path, exc) from exc

    def _open_existing_dir(self, path: bytes, name: bytes, parent_fd: int) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            raise self._not_a_directory(path, exc) from exc

    def _not_a_directory(self, path: bytes, exc: OSError) -> Exception:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            return UnsafePath(f"{show_path(path)!r} is a symlink or a file in the destination, not a directory")
        return exc

    def make_dir(self, path: bytes) -> None:
        self.directory(path)

    def install(self, parts_fd: int, part_name: bytes, path: bytes) -> None:
        """Rename a finished part file onto its final name (replacing a file, never a directory)."""
        parent_fd, name = self.parent(path)
        replacing = self.note_replaced and self._a_file_at(parent_fd, name)
        try:
            os.rename(part_name, name, src_dir_fd=parts_fd, dst_dir_fd=parent_fd)
        except IsADirectoryError:
            # POSIX rename() refuses a file onto a directory (EISDIR): no stat of every name beforehand.
            raise self._a_directory(path) from None
        if replacing:
            self._replaced(path)

    @staticmethod
    def _a_file_at(parent_fd: int, name: bytes) -> bool:
        """Whether ``name`` holds something that is not a directory (what a rename onto it replaces)."""
        try:
            return not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def _replaced(self, path: bytes) -> None:
        self.replaced_count += 1
        if len(self.replaced) < self.listed:
            self.replaced.append(path)

    def take_replaced(self) -> tuple[int, list[bytes]]:
        """What was replaced since the last call: how many, and the first names."""
        taken = (self.replaced_count, self.replaced)
        self.replaced_count, self.replaced = 0, []
        return taken

    def symlink(self, path: bytes, target: bytes) -> None:
        """Create a symlink with ``target`` verbatim (an existing identical one is kept)."""
        parent_fd, name = self.parent(path)
        try:
            os.symlink(target, name, dir_fd=parent_fd)
        except FileExistsError:
            if self._readlink(parent_fd, name) != target:
                raise UnsafePath(f"{show_path(path)!r} already exists in the destination") from None

    def hardlink(self, target: bytes, path: bytes) -> None:
        """Link ``path`` to the regular file ``target`` (both shipment paths); the target must not be a symlink."""
        cached_fd, target_name = self.parent(target, create=False)
        # A copy: reaching the link's parent may open more directories than the cache keeps, which would close
        # (and let the kernel reuse) the cached descriptor.
        target_fd = os.dup(cached_fd)
        try:
            st = os.stat(target_name, dir_fd=target_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(
                    f"hard link {show_path(path)!r} names {show_path(target)!r}, which is not a regular file"
                )
            parent_fd, name = self.parent(path)
            try:
                os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            except FileExistsError:
                existing = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
                if (existing.st_dev, existing.st_ino) != (st.st_dev, st.st_ino):
                    self._refuse_directory(parent_fd, name, path)
                    os.unlink(name, dir_fd=parent_fd)
                    os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
                    self._replaced(path)
        finally:
            os.close(target_fd)

    def set_metadata(self, path: bytes, mode: int | None, mtime_ns: int, owner: tuple[int, int] | None) -> None:
        """Owner, permission bits and mtime of ``path`` itself (a symlink's own times; its mode is ignored)."""
        parent_fd, name = self.parent(path, create=False)
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent_fd, follow_symlinks=False)
        if mode is not None and not is_link:
            # Linux has no chmod that refuses symlinks (lchmod); the name was just seen not to be one, and
            # restore is the only writer in the destination.
            os.chmod(name, mode, dir_fd=parent_fd)
        os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=parent_fd, follow_symlinks=False)

    def folds_names(self) -> bool:
        """Whether the destination's filesystem merges names that differ in case or Unicode normalisation: a probe
        in restore's own directory (``RESERVED_NAME``), made ``O_EXCL|O_NOFOLLOW`` after a stale one is removed."""
        directory = os.path.join(self.root, RESERVED_NAME)
        probe = os.path.join(directory, "Probe-\u00e9")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)  # left by a killed run, or a symlink: never written through
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o600))
            folded = os.path.exists(os.path.join(directory, "probe-\u00e9")) or os.path.exists(
                os.path.join(directory, "Probe-e\u0301")
            )
        finally:
            os.remove(probe)
        return folded

    def open_parts(self) -> LocalParts:
        """Restore's parts directory (``.sneakernet/parts``), each level opened with ``O_NOFOLLOW`` from the root: a
        symlink put in place of either directory is refused (OSError ELOOP or ENOTDIR), never followed."""
        top = os.open(RESERVED_NAME, _DIR_FLAGS, dir_fd=self.root_fd)
        try:
            return LocalParts(os.open(PARTS_NAME, _DIR_FLAGS, dir_fd=top))
        finally:
            os.close(top)

    def sync(self, fd: int) -> None:
        """Make what was written and renamed on ``fd``'s filesystem durable (syncfs, else sync)."""
        sync_filesystem(fd)

    def exists(self, path: bytes) -> bool:
        try:
            parent_fd, name = self.parent(path, create=False)
            os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except (FileNotFoundError, UnsafePath):
            return False
        return True

    @staticmethod
    def _readlink(parent_fd: int, name: bytes) -> bytes | None:
        try:
            return os.readlink(name, dir_fd=parent_fd)
        except OSError:
            return None

    @staticmethod
    def _refuse_directory(parent_fd: int, name: bytes, path: bytes) -> None:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise SafeTree._a_directory(path)

    @staticmethod
    def _a_directory(path: bytes) -> InTheWay:
        return InTheWay(f"{show_path(path)!r} is a directory in the destination, the shipment has a file there")
