"""A directory's exclusive lock: ``flock`` on the directory's own descriptor, so that no lock file is left
behind and the kernel lets it go however the process ends."""

from __future__ import annotations

import fcntl
import os


class Locked(Exception):
    """Another process holds the directory's lock."""


class DirectoryLock:
    """An exclusive lock on directory ``path``, held until :meth:`release`."""

    def __init__(self, path: str, wait: bool = False) -> None:
        """Lock ``path`` now: :class:`Locked` when another process holds it (with ``wait``, once it lets go: a
        signal's exception, Ctrl-C's, ends the wait), OSError when it cannot be opened."""
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise Locked(path) from None
        except BaseException:
            os.close(self.fd)
            raise

    def release(self) -> None:
        os.close(self.fd)
