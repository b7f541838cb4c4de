"""The exception hierarchy and the exit codes the command line maps it to.

Every failure a user can cause or meet is a subclass of :class:`SneakernetError` that carries its exit code
and a message a person can act on (what is wrong, then what to do). The CLI prints ``str(error)`` on one
line and exits with ``error.exit_code``; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The one table of exit codes; docs/cli.md documents each."""

    OK = 0
    #: The job ran, but found or caused a data problem (damage, files that changed while read).
    PROBLEMS = 1
    #: Bad input or a refusal before anything was written.
    USAGE = 2
    #: The shipment is not complete yet (drives still missing).
    INCOMPLETE = 3
    #: A drive or the destination ran out of space.
    NO_SPACE = 4
    #: Interrupted by the user (Ctrl-C); what was written is detectably incomplete.
    INTERRUPTED = 130
    #: Ended by SIGTERM (kill, a service manager, a shutdown), handled as Ctrl-C is: 128 + 15, as shells report it.
    TERMINATED = 143


class SneakernetError(Exception):
    """Root of every error sneakernet raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(SneakernetError):
    """A bad option value or combination (e.g. an unparsable size)."""

    exit_code = ExitCode.USAGE


class SourceError(SneakernetError):
    """The source tree is missing, not a directory, or has unreadable files."""

    exit_code = ExitCode.USAGE


class DestinationError(SneakernetError):
    """The output or drive cannot take a shipment (already holds one, too small, not writable)."""

    exit_code = ExitCode.USAGE


class LaneStopped(DestinationError):
    """A drive written at once with others failed (an I/O error, say): its lane stopped, the other lanes finished
    their drives; the same pack with --resume completes it."""

    exit_code = ExitCode.PROBLEMS


class FormatError(SneakernetError):
    """A drive's files do not follow docs/format.md (damaged, truncated, or not sneakernet's)."""

    exit_code = ExitCode.PROBLEMS


class IntegrityError(FormatError):
    """Damaged bytes: a chunk, segment or manifest whose BLAKE3 is not the one recorded for it (bit rot, a cut or
    overwritten file), apart from a malformed file (:class:`FormatError`). A FormatError still, with its exit code:
    every caller that refuses malformed drives refuses damaged ones."""


class NotADrive(DestinationError):
    """A path given as a drive is not a directory, or holds no sneakernet files at all."""

    #: The drive directories found inside it (pack --out's directory given instead of its drives).
    drives: tuple[str, ...] = ()


class UnfinishedDrive(FormatError):
    """A drive whose packing never finished: no drive.json (it may hold .partial files)."""


class UnsupportedVersion(FormatError):
    """A drive written by a format version this sneakernet does not read."""

    exit_code = ExitCode.USAGE


class OutOfSpace(SneakernetError):
    """A drive filled before its declared size (ENOSPC, quota, smaller than labelled)."""

    exit_code = ExitCode.NO_SPACE


class DriveUnreadable(SneakernetError):
    """A drive that fails while it is read (an I/O error of the device: pulled out, a failing disk): the work on
    that drive stops; restore goes on with the other drives and reports it."""

    exit_code = ExitCode.PROBLEMS


class ClusterError(SneakernetError):
    """A cluster pack (``--scheduler``) that cannot start: the scheduler unreachable, the ``dask`` extra missing, a
    worker of the drives file not connected, a worker that does not see the source or the work directory."""

    exit_code = ExitCode.USAGE


class WorkerLost(SneakernetError):
    """A cluster pack's worker lost while its lane packed (killed, its host down): that lane's drive being written
    is unfinished, the other lanes finished theirs; the shipment has no catalog yet."""

    exit_code = ExitCode.PROBLEMS


class CryptoError(SneakernetError):
    """Key material that cannot be used: a bad recipient, identity or passphrase, a wrapped key file that is not
    age's or too weak, or the ``crypt`` extra missing. Its message never holds a secret."""

    exit_code = ExitCode.USAGE


class KeyNeeded(CryptoError):
    """An encrypted shipment's drive read where its names or contents are needed, and no key given."""


class WrongKey(CryptoError):
    """The identity or passphrase given does not open the shipment's wrapped key: nothing was read further."""


class AuthenticationFailed(FormatError):
    """Encrypted bytes whose tag does not match: damaged, or moved from another place (another chunk, segment,
    drive or shipment), or described by a sealed index that lies (docs/format.md 19.8.2)."""
